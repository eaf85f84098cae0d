"""The pytest plugin: catch preview use in test suites first.

Registered under the ``pytest11`` entry point, so it is active wherever neuron_guard is
installed (``-p no:neuron_guard`` turns it off). It adds:

* ``--neuron-guard=off|warn|strict`` (ini ``neuron_guard_mode``; the option wins) and
  ``--neuron-guard-allow=PATTERN`` (ini ``neuron_guard_allow``; both add up). They are
  applied before conftest files and test modules are imported, and shown in the report
  header. Without them the plugin leaves the mode the environment set.
* the marker ``@pytest.mark.neuron_guard_allow("beta", "env:NEURON_FOO", ...)`` on a test,
  a class or a module (``pytestmark``): the patterns apply while that test's setup, call
  and teardown run, and only then;
* the fixture ``neuron_guard_events``: the events of the current test only;
* a terminal summary: every preview or deprecated item used, its tier, how many uses and
  which tests used it (merged on the controller under pytest-xdist).

Warn-once is per process, so the plugin counts uses per test from the exact counts of
:func:`neuron_guard.events`, never from warnings.

Added in 0.1.0.
"""

from __future__ import annotations

import builtins
import sys
from typing import TYPE_CHECKING, Any

import pytest

import neuron_guard
from neuron_guard._config import parse_patterns
from neuron_guard._errors import ConfigError
from neuron_guard._state import runtime
from neuron_guard._types import Event, Mode

if TYPE_CHECKING:
    from collections.abc import Generator, Iterator

    from _pytest.nodes import Node
    from _pytest.terminal import TerminalReporter

    from neuron_guard._config import Settings

__all__ = ["PreviewEvents"]

MARKER = "neuron_guard_allow"
#: Where uses outside every test go in the summary (imports, collection).
OUTSIDE = "(outside tests)"
_MODES = ("off", "warn", "strict")

if TYPE_CHECKING:
    #: (kind, name, tier, action): one line of :func:`neuron_guard.events`.
    Key = tuple[str, str, str, str]
    Counts = dict[Key, int]
    #: What crosses process boundaries (xdist): ``[kind, name, tier, action, count]`` rows.
    Rows = list[list[Any]]

_APPLIED = pytest.StashKey["_Applied"]()
_SESSION = pytest.StashKey["_Session"]()
_PATTERNS = pytest.StashKey["tuple[str, ...]"]()


# -- counting -------------------------------------------------------------------------


def _counts() -> tuple[Counts, dict[Key, Event]]:
    """The process's use counts now, by key, and the event behind each key."""
    counts: Counts = {}
    latest: dict[Key, Event] = {}
    for ev in neuron_guard.events():
        key = (ev.kind, ev.name, ev.tier or "", ev.action)
        counts[key] = counts.get(key, 0) + ev.count
        latest[key] = ev
    return counts, latest


def _delta(now: Counts, before: Counts) -> Counts:
    """Uses between two snapshots.

    A count below its earlier value means the counts were reset in between (a test
    helper called ``clear_events``); every use it shows then happened since.
    """
    out: Counts = {}
    for key, n in now.items():
        prev = before.get(key, 0)
        d = n - prev if n >= prev else n
        if d > 0:
            out[key] = d
    return out


def _add(into: Counts, more: Counts) -> None:
    for key, n in more.items():
        into[key] = into.get(key, 0) + n


def _to_rows(counts: Counts) -> Rows:
    return [[*key, n] for key, n in sorted(counts.items())]


def _from_rows(rows: Any) -> Counts:
    out: Counts = {}
    for row in rows or ():
        kind, name, tier, action, n = row
        key = (str(kind), str(name), str(tier), str(action))
        out[key] = out.get(key, 0) + int(n)
    return out


# -- options and mode -------------------------------------------------------------------


def _mode_arg(value: str) -> str:
    low = value.strip().lower()
    if low not in _MODES:
        import argparse

        msg = f"invalid mode {value!r}; valid values are 'off', 'warn', 'strict'"
        raise argparse.ArgumentTypeError(msg)
    return low


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("neuron_guard", "neuron_guard: Neuron preview (alpha/beta) items")
    group.addoption(
        "--neuron-guard",
        dest="neuron_guard",
        metavar="off|warn|strict",
        type=_mode_arg,
        default=None,
        help="mode of the guard for this run: off, warn (once per item) or strict (raise); "
        "overrides the ini 'neuron_guard_mode' and the NEURON_GUARD environment variable",
    )
    group.addoption(
        "--neuron-guard-allow",
        dest="neuron_guard_allow",
        metavar="PATTERN",
        action="append",
        default=[],
        help="allow preview items matching PATTERN for the whole run ('beta', 'alpha', "
        "'api:GLOB', 'env:NAME', ...; repeatable, comma-separated); adds to the ini "
        "'neuron_guard_allow'",
    )
    parser.addini(
        "neuron_guard_mode",
        "neuron_guard mode for the test run: off, warn or strict (--neuron-guard wins)",
        default="",
    )
    parser.addini(
        "neuron_guard_allow",
        "neuron_guard allow patterns for the whole test run, one per line",
        type="linelist",
        default=[],
    )


class _Applied:
    """What the plugin changed at start-up, to show it and to undo it."""

    def __init__(self, saved: Settings, mode: str | None, source: str | None) -> None:
        self.saved = saved
        self.mode = mode
        self.source = source
        self.changed = False
        self.baseline: Counts = {}


def _option(config: pytest.Config, name: str) -> Any:
    """An option's value, also before ``config.option`` is filled (early hooks)."""
    early = getattr(config, "known_args_namespace", None)
    if early is not None and hasattr(early, name):
        return getattr(early, name)
    return getattr(config.option, name, None)


def _apply(config: pytest.Config) -> None:
    """Apply ``--neuron-guard``/``neuron_guard_mode`` and the allow options (once per run)."""
    if _APPLIED in config.stash:
        return
    applied = _Applied(runtime.settings, None, None)
    config.stash[_APPLIED] = applied
    applied.baseline, _ = _counts()  # uses from here on (conftest imports too) are this run's
    opt = _option(config, "neuron_guard")
    ini = str(config.getini("neuron_guard_mode") or "").strip()
    if opt:
        applied.mode, applied.source = opt, "--neuron-guard"
    elif ini:
        try:
            applied.mode = str(Mode.parse(ini, where="ini neuron_guard_mode"))
        except ConfigError as exc:
            raise pytest.UsageError(f"neuron_guard: {exc}") from None
        applied.source = "ini neuron_guard_mode"
    patterns: list[str] = []
    for values, origin in (
        (config.getini("neuron_guard_allow") or [], "ini neuron_guard_allow"),
        (_option(config, "neuron_guard_allow") or [], "--neuron-guard-allow"),
    ):
        if not values:
            continue
        try:
            parse_patterns(values, origin=origin)
        except ConfigError as exc:
            raise pytest.UsageError(f"neuron_guard: {exc}") from None
        patterns.extend(values)
    if applied.mode is None and not patterns:
        return
    if applied.mode is not None and applied.mode != "off":
        _warn_if_off_at_start(config, applied)
    try:
        neuron_guard.configure(mode=applied.mode, allow=patterns or None)
    except ConfigError as exc:  # NEURON_GUARD_LOCK refused it, in strict mode
        raise pytest.UsageError(f"neuron_guard: {exc}") from None
    applied.changed = True


def _warn_if_off_at_start(config: pytest.Config, applied: _Applied) -> None:
    """``off`` at start-up is for the whole process: say what the plugin cannot turn on."""
    if not runtime.off_at_start:
        return
    base = runtime.baseline
    origin = base.origins.get("mode", "the environment") if base is not None else "NEURON_GUARD"
    users = sorted(
        name
        for name, mod in list(sys.modules.items())
        if not name.startswith("neuron_guard")
        and getattr(mod, "__dict__", None) is not None
        and (
            mod.__dict__.get("neuron_guard") is neuron_guard
            or mod.__dict__.get("tier") is neuron_guard.tier
        )
    )
    where = f" (already imported: {', '.join(users)})" if users else ""
    msg = (
        f"neuron_guard: mode 'off' from {origin} is for the whole process, and it was set "
        f"before {applied.source}={applied.mode} could apply: the import hook is not "
        f"installed, and objects decorated with @tier while it was off stay unguarded{where}; "
        "unset NEURON_GUARD (or remove mode = 'off' from [tool.neuron_guard]) for a full guard"
    )
    config.issue_config_time_warning(pytest.PytestConfigWarning(msg), stacklevel=2)


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    _apply(early_config)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    _apply(config)  # when loaded too late for the hook above (e.g. from a conftest)
    config.addinivalue_line(
        "markers",
        f"{MARKER}(*patterns): allow neuron_guard preview items matching the patterns "
        "('beta', 'alpha', 'api:GLOB', 'env:NAME', ...) while this test runs",
    )
    session = _Session(config)
    config.stash[_SESSION] = session
    config.pluginmanager.register(session, "neuron_guard-session")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistHooks(session), "neuron_guard-xdist")


def pytest_unconfigure(config: pytest.Config) -> None:
    applied = config.stash.get(_APPLIED, None)
    if applied is not None and applied.changed:
        runtime.set_settings(applied.saved)  # in-process runs (pytester) get their mode back


def pytest_report_header(config: pytest.Config) -> str:
    s = runtime.settings
    applied = config.stash.get(_APPLIED, None)
    origin = s.origins.get("mode", "default")
    if applied is not None and applied.mode is not None:
        if str(s.mode) == applied.mode:
            origin = applied.source or origin
        else:
            origin += f"; {applied.source}={applied.mode} refused by NEURON_GUARD_LOCK"
    line = f"neuron_guard: mode {s.mode} ({origin})"
    if s.allow:
        line += ", allow " + ", ".join(p.text for p in s.allow)
    if runtime.off_at_start and s.mode is not Mode.OFF:
        line += " [import hook inactive: off at start-up]"
    return line


# -- the marker ----------------------------------------------------------------------------


def _marker_patterns(item: Node) -> tuple[str, ...]:
    """The item's allow patterns (function, class and module markers), validated.

    Raises :class:`ConfigError` naming the test and the pattern.
    """
    out: list[str] = []
    for mark in item.iter_markers(MARKER):
        where = f"@pytest.mark.{MARKER} on {item.nodeid}"
        if mark.kwargs:
            msg = f"{where} takes patterns only, not keyword arguments {sorted(mark.kwargs)}"
            raise ConfigError(msg, source=where, key="allow")
        if not mark.args:
            msg = f"{where} needs at least one pattern, e.g. {MARKER}('beta')"
            raise ConfigError(msg, source=where, key="allow")
        pats = parse_patterns(mark.args, origin=where)
        out.extend(p.text for p in pats)
    return tuple(out)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    """Turn a bad marker pattern into a collection error of the module that holds it."""
    outcome = yield
    if outcome.excinfo is not None:
        return
    rep = outcome.get_result()
    if not rep.passed:
        return
    errors = []
    for node in rep.result or ():
        if not isinstance(node, pytest.Item):
            continue
        try:
            node.stash[_PATTERNS] = _marker_patterns(node)
        except ConfigError as exc:
            errors.append(f"neuron_guard: {exc}")
    if errors:
        rep.outcome = "failed"
        rep.longrepr = "\n".join(errors)
        rep.result = []


def _in_scope(item: pytest.Item) -> Iterator[None]:
    """Run one phase of ``item`` (the ``yield``) inside its markers' ``allow()`` scope."""
    patterns = item.stash.get(_PATTERNS, None)
    if patterns is None:  # an item no collector reported (a plugin made it)
        patterns = item.stash[_PATTERNS] = _marker_patterns(item)
    if not patterns:
        yield
        return
    with neuron_guard.allow(*patterns):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    yield from _in_scope(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    yield from _in_scope(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    yield from _in_scope(item)


# -- per-test usage and the summary -------------------------------------------------------------


class _Session:
    """Per-run state: counts per phase, usage per test, the summary."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.last = dict(config.stash[_APPLIED].baseline)
        self.current: Counts = {}  # the running test's uses so far
        self.outside: Counts = {}
        self.by_test: dict[Key, dict[str, int]] = {}
        self.worker = hasattr(config, "workerinput")

    def take(self) -> Counts:
        """Uses since the last call."""
        now, _ = _counts()
        d = _delta(now, self.last)
        self.last = now
        return d

    def live(self) -> tuple[Counts, dict[Key, Event]]:
        """The running test's uses so far, and the latest event of each key."""
        now, latest = _counts()
        total = dict(self.current)
        _add(total, _delta(now, self.last))
        return total, latest

    def record(self, nodeid: str, counts: Counts) -> None:
        for key, n in counts.items():
            tests = self.by_test.setdefault(key, {})
            tests[nodeid] = tests.get(nodeid, 0) + n

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Iterator[None]:
        _add(self.outside, self.take())
        self.current = {}
        yield
        self.current = {}

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item) -> Generator[None, Any, None]:
        outcome = yield
        d = self.take()
        if not d:
            return
        if outcome.excinfo is not None:  # no report to carry them
            _add(self.outside, d)
            return
        _add(self.current, d)
        rep = outcome.get_result()
        # a plain attribute: pytest-xdist sends a report's attributes to the controller
        rep.neuron_guard_usage = _to_rows(d)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        rows = getattr(report, "neuron_guard_usage", None)
        if rows:
            self.record(report.nodeid, _from_rows(rows))

    def pytest_sessionfinish(self) -> None:
        _add(self.outside, self.take())
        if self.worker:
            out = getattr(self.config, "workeroutput", None)
            if out is not None:
                out["neuron_guard_outside"] = _to_rows(self.outside)

    def pytest_terminal_summary(self, terminalreporter: TerminalReporter) -> None:
        if self.worker:
            return
        _add(self.outside, self.take())
        by_test = {k: dict(v) for k, v in self.by_test.items()}
        for key, n in self.outside.items():
            tests = by_test.setdefault(key, {})
            tests[OUTSIDE] = tests.get(OUTSIDE, 0) + n
        lines = _summary_lines(by_test, verbose=self.config.get_verbosity() > 0)
        if not lines:
            return
        terminalreporter.write_sep("=", "neuron_guard: preview and deprecated items used")
        for line in lines:
            terminalreporter.write_line(line)


_ACTION_WORDS = {
    "warn": "warned",
    "raise": "raised",
    "allow": "allowed",
    "deprecated": "deprecation warned",
    "removed": "removed, ignored",
}
_TIER_ORDER = {"alpha": 0, "beta": 1, "stable": 2}
_MAX_TESTS = 10


def _summary_lines(by_test: dict[Key, dict[str, int]], *, verbose: bool) -> list[str]:
    """One block per item: ``TIER KIND NAME: N uses (...) in M tests`` and the tests."""
    items: dict[tuple[str, str, str], dict[str, dict[str, int]]] = {}
    for (kind, name, tier, action), tests in by_test.items():
        if kind == "config":  # a change the lock refused, not an item
            continue
        items.setdefault((kind, name, tier), {})[action] = tests
    lines: list[str] = []
    order = sorted(items, key=lambda k: (_TIER_ORDER.get(k[2], 3), k[0], k[1]))
    for kind, name, tier in order:
        actions = items[(kind, name, tier)]
        per_test: dict[str, int] = {}
        for tests in actions.values():
            for nodeid, n in tests.items():
                per_test[nodeid] = per_test.get(nodeid, 0) + n
        total = sum(per_test.values())
        how = ", ".join(
            f"{sum(actions[a].values())} {_ACTION_WORDS.get(a, a)}" for a in sorted(actions)
        )
        n_tests = sum(1 for t in per_test if t != OUTSIDE)
        label = f"{tier} {kind}" if tier else kind
        uses = "use" if total == 1 else "uses"
        tests_word = "test" if n_tests == 1 else "tests"
        where = f"in {n_tests} {tests_word}" if n_tests else "outside tests"
        lines.append(f"{label} {name}: {total} {uses} ({how}) {where}")
        names = sorted(per_test, key=lambda t: (t == OUTSIDE, t))
        shown = names if verbose else names[:_MAX_TESTS]
        lines.extend(f"    {t} ({per_test[t]})" for t in shown)
        if len(shown) < len(names):
            lines.append(f"    ... and {len(names) - len(shown)} more (-v lists them all)")
    return lines


class _XdistHooks:
    """Hooks only pytest-xdist's controller knows; registered only when xdist is present."""

    def __init__(self, session: _Session) -> None:
        self.session = session

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        out = getattr(node, "workeroutput", None) or {}
        _add(self.session.outside, _from_rows(out.get("neuron_guard_outside")))


# -- the fixture ----------------------------------------------------------------------------------


class PreviewEvents:
    """The preview and deprecated items the current test used (``neuron_guard_events``).

    ``list`` holds one :class:`neuron_guard.Event` per (item, action) used since the test
    started (its fixtures' setup included), with ``count`` = the uses in this test;
    ``file``/``line`` are the first use in the process. ``clear()`` forgets the uses so
    far. Iterating and ``len()`` work on ``list``.

    Added in 0.1.0.
    """

    def __init__(self, session: _Session) -> None:
        self._session = session
        self._base: Counts = {}

    @property
    def list(self) -> builtins.list[Event]:
        counts, latest = self._session.live()
        out = []
        for key, n in _delta(counts, self._base).items():
            ev = latest.get(key)
            if ev is None or ev.kind == "config":
                continue
            out.append(
                Event(ev.kind, ev.name, ev.tier, ev.action, ev.file, ev.line, n, ev.pid, ev.trigger)
            )
        return out

    def count(self, name: str, action: str | None = None) -> int:
        """How many times this test used ``name`` (with ``action``, if given)."""
        return sum(e.count for e in self.list if e.name == name and action in (None, e.action))

    def clear(self) -> None:
        """Forget the uses so far: ``list`` shows only later ones."""
        self._base, _ = self._session.live()

    def __iter__(self) -> Iterator[Event]:
        return iter(self.list)

    def __len__(self) -> int:
        return len(self.list)

    def __repr__(self) -> str:
        return f"<neuron_guard_events {self.list!r}>"


@pytest.fixture
def neuron_guard_events(request: pytest.FixtureRequest) -> PreviewEvents:
    """The events of the current test only: which preview items it used, how often."""
    return PreviewEvents(request.config.stash[_SESSION])
