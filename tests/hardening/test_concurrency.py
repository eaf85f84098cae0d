"""Concurrency: racing first uses, isolated opt-in scopes, parallel guarded imports."""

from __future__ import annotations

import asyncio
import json
import threading
import warnings
from pathlib import Path
from typing import Any, Callable

import pytest

import neuron_guard
from neuron_guard import BetaWarning, PreviewError

THREADS = 16
CALLS = 500
JOIN_TIMEOUT = 60.0


def race(n: int, body: Callable[[int], None]) -> list[BaseException]:
    """Run ``body(i)`` in ``n`` threads released together; join with a timeout.

    Returns the exceptions the threads raised; fails the test if one never finishes.
    """
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait(JOIN_TIMEOUT)
            body(i)
        except BaseException as exc:  # collected and asserted on by the caller
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(JOIN_TIMEOUT)
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"threads never finished (deadlock?): {stuck}"
    return errors


def counts(name: str) -> dict[str, int]:
    return {e.action: e.count for e in neuron_guard.events() if e.name == name}


class TestRacingFirstUse:
    """Many threads reaching a guarded item's first use at the same moment."""

    def test_one_warning_exact_count(self) -> None:
        """16 threads x 500 calls: exactly one BetaWarning and a count of 8000."""
        neuron_guard.configure(mode="warn")

        @neuron_guard.tier("beta", name="race.first_use")
        def f(x: int) -> int:
            return x

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            errors = race(THREADS, lambda i: [f(i) for _ in range(CALLS)] and None)
        assert errors == []
        assert [w.category for w in caught] == [BetaWarning]
        assert counts("race.first_use") == {"warn": THREADS * CALLS}

    def test_strict_every_call_raises_and_is_counted(self, strict: Any) -> None:
        """Strict: every racing call raises before the body runs, and every one is counted."""
        ran = []

        @neuron_guard.tier("beta", name="race.strict")
        def f() -> None:
            ran.append(1)

        def body(i: int) -> None:
            for _ in range(50):
                with pytest.raises(PreviewError):
                    f()

        assert race(THREADS, body) == []
        assert ran == []
        assert counts("race.strict") == {"raise": THREADS * 50}

    def test_counts_survive_settings_changes(self) -> None:
        """configure() flipping the allow list under load loses no use: totals stay exact."""
        neuron_guard.configure(mode="warn")

        @neuron_guard.tier("beta", name="race.flip")
        def f() -> None:
            pass

        stop = threading.Event()

        def flipper() -> None:
            allowed = False
            while not stop.is_set():
                allowed = not allowed
                neuron_guard.configure(mode="warn", allow="api:race.flip" if allowed else ())

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = threading.Thread(target=flipper, daemon=True)
            t.start()
            try:
                errors = race(8, lambda i: [f() for _ in range(2000)] and None)
            finally:
                stop.set()
                t.join(JOIN_TIMEOUT)
        assert not t.is_alive()
        assert errors == []
        seen = counts("race.flip")
        assert set(seen) <= {"warn", "allow"}
        assert sum(seen.values()) == 8 * 2000


class TestScopesAreIsolated:
    """allow() scopes live in contextvars: other threads and tasks never see them."""

    def test_threads(self, strict: Any) -> None:
        """Threads inside allow() run the item; threads outside raise, all at once."""

        @neuron_guard.tier("beta", name="scope.threads")
        def f() -> str:
            return "ran"

        results: dict[int, str] = {}

        def body(i: int) -> None:
            for _ in range(100):
                if i % 2:
                    with neuron_guard.allow("api:scope.threads"):
                        results[i] = f()
                else:
                    try:
                        f()
                        results[i] = "leaked"
                        return
                    except PreviewError:
                        results[i] = "raised"

        assert race(THREADS, body) == []
        assert {results[i] for i in range(1, THREADS, 2)} == {"ran"}
        assert {results[i] for i in range(0, THREADS, 2)} == {"raised"}
        c = counts("scope.threads")
        assert c == {"allow": THREADS // 2 * 100, "raise": THREADS // 2 * 100}

    def test_asyncio_tasks(self, strict: Any) -> None:
        """Tasks interleaved at every await: only the task that opted in may call."""

        @neuron_guard.tier("beta", name="scope.tasks")
        def f() -> str:
            return "ran"

        async def opted_in(turns: list[str]) -> list[str]:
            out = []
            with neuron_guard.allow("api:scope.tasks"):
                for _ in range(20):
                    out.append(f())
                    turns.append("in")
                    await asyncio.sleep(0)
            return out

        @neuron_guard.allow("beta")
        async def decorated(turns: list[str]) -> list[str]:
            out = []
            for _ in range(20):
                out.append(f())
                turns.append("deco")
                await asyncio.sleep(0)
            return out

        async def outsider(turns: list[str]) -> list[str]:
            out = []
            for _ in range(20):
                try:
                    f()
                    out.append("leaked")
                except PreviewError:
                    out.append("raised")
                turns.append("out")
                await asyncio.sleep(0)
            return out

        async def main() -> tuple[list[str], ...]:
            turns: list[str] = []
            res = await asyncio.gather(opted_in(turns), outsider(turns), decorated(turns))
            # the tasks really interleaved
            assert turns[:3] != ["in"] * 3
            return tuple(res)

        a, b, c = asyncio.run(asyncio.wait_for(main(), JOIN_TIMEOUT))
        assert a == ["ran"] * 20
        assert b == ["raised"] * 20
        assert c == ["ran"] * 20


STANDIN_PACKAGE = {
    "__init__.py": '"""Stand-in package for the hardening tests (not a real SDK)."""\n'
    "from .mod0 import f0\n",
    **{
        f"mod{i}.py": (
            f'"""Stand-in module {i}."""\n'
            "import time\n"
            f"def f{i}(x):\n    return x\n"
            f"class C{i}:\n    def __init__(self, x):\n        self.x = x\n"
            "time.sleep(0.01)  # widen the window in which imports overlap\n"
        )
        for i in range(8)
    },
    "preview_pkg/__init__.py": '"""A stand-in preview package."""\nVALUE = 1\n',
}


def write_standin(root: Path) -> Path:
    pkg = root / "hard_standin"
    for rel, text in STANDIN_PACKAGE.items():
        path = pkg / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    table = root / "hard_table.toml"
    lines = []
    for i in range(8):
        for name in (f"hard_standin.mod{i}.f{i}", f"hard_standin.mod{i}.C{i}"):
            lines += ["[[api]]", f'name = "{name}"', 'tier = "beta"', ""]
    lines += [
        "[[package]]",
        'name = "hard-standin-preview"',
        'module = "hard_standin.preview_pkg"',
        'tier = "alpha"',
        "",
    ]
    table.write_text("\n".join(lines))
    return table


PARALLEL_IMPORTS = """
import importlib, json, sys, threading, warnings
import hard_standin  # the package itself first: see TestImportDuringParentImport

caught = []
warnings.showwarning = lambda msg, cat, *a, **k: caught.append((cat.__name__, str(msg)[:60]))
warnings.simplefilter("always")
N = 16
barrier = threading.Barrier(N)
results = {}

def work(i):
    barrier.wait(30)
    out = []
    try:
        mod = importlib.import_module(f"hard_standin.mod{i % 8}")
        for _ in range(100):
            getattr(mod, f"f{i % 8}")(1)
            getattr(mod, f"C{i % 8}")(1)
        out.append("ok")
    except Exception as exc:
        out.append(f"{type(exc).__name__}: {exc}"[:80])
    try:
        importlib.import_module("hard_standin.preview_pkg")
        out.append("preview imported")
    except ImportError as exc:
        out.append(type(exc).__name__)
    results[i] = out

threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(N)]
for t in threads:
    t.start()
for t in threads:
    t.join(60)
alive = [t.name for t in threads if t.is_alive()]
import neuron_guard
import hard_standin
ev = [[e.name, e.action, e.count] for e in neuron_guard.events()]
print(json.dumps({"alive": alive, "results": results, "events": ev, "warnings": caught,
                  "reexport_guarded": hasattr(hard_standin.f0, "__wrapped__")}))
"""


class TestParallelImports:
    """Guarded modules imported from many threads at once, in a real process (.pth start-up)."""

    @pytest.mark.parametrize("mode", ["warn", "strict"])
    def test_threads_import_guarded_modules(
        self, run_python: Any, tmp_path: Path, mode: str
    ) -> None:
        """16 threads import 8 guarded modules and a preview package: no deadlock, exact counts."""
        table = write_standin(tmp_path)
        r = run_python(
            PARALLEL_IMPORTS,
            env={"NEURON_GUARD": mode, "NEURON_GUARD_TABLES": str(table)},
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["alive"] == []
        assert "internal error" not in r.stderr
        assert out["reexport_guarded"]
        events = {(n, a): c for n, a, c in out["events"]}
        if mode == "warn":
            assert all(res == ["ok", "preview imported"] for res in out["results"].values())
            for i in range(8):
                # two threads per module, 100 calls each
                assert events[(f"hard_standin.mod{i}.f{i}", "warn")] == 200
                assert events[(f"hard_standin.mod{i}.C{i}", "warn")] == 200
            names = [m for _, m in out["warnings"]]
            assert len(names) == len(set(names)) == 17, names  # one per item and the package
        else:
            for res in out["results"].values():
                assert res[0].startswith("PreviewError"), res
                assert res[1] == "PreviewImportError"
            for i in range(8):
                # each thread raised on its first call, before the loop went on
                assert events[(f"hard_standin.mod{i}.f{i}", "raise")] == 2
            assert events[("hard-standin-preview", "raise")] == 16


SLOW_PARENT = {
    "slow_parent/__init__.py": (
        '"""Stand-in package whose body is slow: a thread imports a submodule meanwhile."""\n'
        "import sys\n"
        "sys.modules['__main__'].in_body.set()\n"
        "sys.modules['__main__'].release.wait(2)  # lets the other thread reach the import system\n"
        "from . import mod0\n"
    ),
    "slow_parent/mod0.py": "X = 0\n",
    "slow_parent/mod1.py": "def f1(x):\n    return x\n",
}

IMPORT_DURING_PARENT_IMPORT = """
import importlib, threading
in_body = threading.Event()
release = threading.Event()

def submodule():
    in_body.wait(10)
    threading.Timer(0.5, release.set).start()
    importlib.import_module("slow_parent.mod1")

t1 = threading.Thread(target=importlib.import_module, args=("slow_parent",), daemon=True)
t2 = threading.Thread(target=submodule, daemon=True)
t1.start(); t2.start()
t1.join(10); t2.join(10)
print("stuck" if t1.is_alive() or t2.is_alive() else "done")
"""


class TestImportDuringParentImport:
    """A guarded submodule imported while another thread still runs its package's body."""

    def test_no_deadlock(self, run_python: Any, tmp_path: Path) -> None:
        """Both imports finish (no deadlock between the module lock and the import lock)."""
        for rel, text in SLOW_PARENT.items():
            (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / rel).write_text(text)
        table = tmp_path / "slow.toml"
        table.write_text('[[api]]\nname = "slow_parent.mod1.f1"\ntier = "beta"\n')
        r = run_python(
            IMPORT_DURING_PARENT_IMPORT,
            env={"NEURON_GUARD": "warn", "NEURON_GUARD_TABLES": str(table)},
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "done"
