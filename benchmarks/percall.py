"""Per-call cost of neuron_guard's guards and of its peers, in one process.

Run by ``benchmarks/run.py`` (``python benchmarks/percall.py warn|strict ROUNDS``) in a
fresh interpreter per mode, so that each mode's numbers share one process with their
baselines. Prints one JSON object: ``{"case": minimum ns per call, ...}``.

Every case calls the same ``def f(x): return x`` shape through a different wrapper;
rounds are interleaved (every case once per round, in a shuffled order) and the minimum
over rounds is kept, the figure least disturbed by the rest of the machine.
"""

from __future__ import annotations

import functools
import json
import random
import sys
import timeit
import warnings
from typing import Any, Callable

#: One timed batch should take about this long (seconds).
BATCH_SECONDS = 0.01


def f(x: Any) -> Any:
    return x


async def af(x: Any) -> Any:
    return x


def closure(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The cheapest honest wrapper: a ``functools.wraps`` passthrough."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


def async_closure(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        return await fn(*args, **kwargs)

    return wrapper


def wrapt_passthrough(fn: Any) -> Any:
    import wrapt

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        return wrapped(*args, **kwargs)

    return wrapt.FunctionWrapper(fn, wrapper)


def drive(coro: Any) -> Any:
    """Run a coroutine that never suspends, without an event loop (its cost is the call's)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise RuntimeError("the coroutine suspended")


class Cases:
    """name -> (statement, namespace); every statement makes exactly one call."""

    def __init__(self) -> None:
        self.cases: dict[str, tuple[str, dict[str, Any]]] = {}

    def add(self, name: str, fn: Any, stmt: str = "fn(1)", **extra: Any) -> None:
        self.cases[name] = (stmt, {"fn": fn, **extra})


def peers(cases: Cases) -> None:
    """Bare, closure, wrapt and the three deprecation/preview decorators users know."""
    cases.add("bare", f)
    cases.add("closure", closure(f))
    cases.add("wrapt", wrapt_passthrough(f))
    import deprecated

    cases.add("deprecated", deprecated.deprecated(reason="bench")(f))
    import typing_extensions

    cases.add("typing_extensions", typing_extensions.deprecated("bench")(f))
    try:
        from langchain_core._api import beta
    except ImportError:  # the bench extra is not installed
        return
    cases.add("langchain_beta", beta()(f))


def method_cases(cases: Cases, guard: Callable[[Any], Any]) -> None:
    class Plain:
        def m(self, x: Any) -> Any:
            return x

    class Closed:
        @closure
        def m(self, x: Any) -> Any:
            return x

    class Wrapped:
        @wrapt_passthrough
        def m(self, x: Any) -> Any:
            return x

    class Guarded:
        @guard
        def m(self, x: Any) -> Any:
            return x

    for name, cls in (
        ("method_bare", Plain),
        ("method_closure", Closed),
        ("method_wrapt", Wrapped),
        ("method_ng", Guarded),
    ):
        cases.add(name, cls(), stmt="fn.m(1)")


def class_cases(cases: Cases, guard: Callable[[Any], Any]) -> None:
    class Plain:
        def __init__(self, x: Any) -> None:
            self.x = x

    class Closed:
        @closure
        def __init__(self, x: Any) -> None:
            self.x = x

    @guard
    class Guarded:
        def __init__(self, x: Any) -> None:
            self.x = x

    class ForWrapt:
        def __init__(self, x: Any) -> None:
            self.x = x

    cases.add("class_bare", Plain)
    cases.add("class_closure", Closed)
    cases.add("class_wrapt", wrapt_passthrough(ForWrapt))
    cases.add("class_ng", Guarded)


def async_cases(cases: Cases, guard: Callable[[Any], Any]) -> None:
    cases.add("async_bare", af, stmt="drive(fn(1))", drive=drive)
    cases.add("async_closure", async_closure(af), stmt="drive(fn(1))", drive=drive)

    async def ag(x: Any) -> Any:
        return x

    cases.add("async_ng", guard(ag), stmt="drive(fn(1))", drive=drive)


def neuron_guard_cases(cases: Cases, mode: str) -> None:
    import neuron_guard

    if mode == "warn":
        tier = neuron_guard.tier("beta")
        cases.add("ng_warn", tier(f))
        method_cases(cases, tier)
        class_cases(cases, tier)
        async_cases(cases, tier)
    else:
        # strict, NEURON_GUARD_ALLOW=api:bench.* (set by run.py): allowed items
        cases.add("ng_strict_allowed", neuron_guard.tier("beta", name="bench.allowed")(f))
        scoped = neuron_guard.tier("beta", name="scoped.f")(f)
        # the scope stays open in this thread for the whole measurement
        neuron_guard.allow("api:scoped.*").__enter__()
        cases.add("ng_scoped_allow", scoped)


def warm(cases: Cases) -> None:
    """First use of every case (the guards' one warning), then hide every warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for stmt, ns in cases.cases.values():
            exec(stmt, ns)
    warnings.simplefilter("ignore")


def measure(cases: Cases, rounds: int) -> dict[str, float]:
    timers = {}
    for name, (stmt, ns) in cases.cases.items():
        timers[name] = timeit.Timer(stmt, globals=ns)
    numbers = {}
    for name, timer in timers.items():
        per = min(timer.timeit(1000) for _ in range(3)) / 1000
        numbers[name] = max(1000, int(BATCH_SECONDS / per))
    best = {name: float("inf") for name in timers}
    order = list(timers)
    rng = random.Random(6)
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            n = numbers[name]
            t = timers[name].timeit(n) / n
            best[name] = min(best[name], t)
    return {name: round(t * 1e9, 1) for name, t in best.items()}


def main(argv: list[str]) -> int:
    mode = argv[0]
    rounds = int(argv[1]) if len(argv) > 1 else 25
    cases = Cases()
    peers(cases)
    if mode != "warn":  # the strict process only needs its own baselines
        cases.cases = {k: cases.cases[k] for k in ("bare", "closure", "wrapt")}
    neuron_guard_cases(cases, mode)
    warm(cases)
    result = measure(cases, rounds)
    import neuron_guard

    counts = {e.name: e.count for e in neuron_guard.events()}
    json.dump({"ns": result, "events": counts}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
