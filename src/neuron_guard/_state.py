"""Runtime state: the effective settings, every guarded item, its counts and events.

The fast path of a guard is a closure whose counter cell is an ``int``; the slow path
(this module) runs when the counter is ``None``: on first use, after the settings
changed, and on every use whose outcome can differ from the last (strict mode, scoped
opt-ins, warnings without dedupe).
"""

from __future__ import annotations

import _thread
import os
import sys
from contextvars import ContextVar

from ._config import Pattern, Settings
from ._errors import (
    AlphaWarning,
    BetaWarning,
    NeuronDeprecationWarning,
    PreviewError,
    PreviewImportError,
)
from ._policy import Action, ItemInfo, decide, message, remedy
from ._types import Event, Kind, Mode, meaning

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

__all__ = ["Item", "Runtime", "runtime", "scoped_allow"]

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))

#: Opt-ins of ``neuron_guard.allow(...)``, per thread and asyncio task.
scoped_allow: ContextVar[tuple[Pattern, ...]] = ContextVar("neuron_guard_allow", default=())


class _Cell:
    """Stand-in for a closure cell, for guards that keep their counter on an object."""

    __slots__ = ("cell_contents",)

    def __init__(self) -> None:
        self.cell_contents: int | None = None


class Item:
    """One guarded item at run time: its facts, counts per action, first callers."""

    __slots__ = ("cells", "counts", "fast_action", "first", "info", "last", "order", "warned")

    def __init__(self, info: ItemInfo) -> None:
        self.info = info
        self.cells: list[Any] = []
        self.counts: dict[str, int] = {}
        self.first: dict[str, tuple[str | None, int | None]] = {}
        self.fast_action = Action.OFF
        self.warned = False
        self.order = 0
        #: the last decision: (settings, scoped patterns, action, global_only); reused
        #: while neither changed (calls inside one allow() scope take the slow path)
        self.last: tuple[Any, ...] = ()

    def new_cell(self) -> _Cell:
        cell = _Cell()
        with runtime.lock:
            self.cells.append(cell)
        return cell

    def total(self, action: str) -> int:
        n = self.counts.get(action, 0)
        if action == self.fast_action:
            for c in self.cells:
                v = c.cell_contents
                if v:
                    n += v
        return n

    def __repr__(self) -> str:
        return f"<neuron_guard item {self.info.key} ({self.info.tier})>"


class _ErrorOnce:
    reported = False


def _skip_prefixes() -> tuple[str, ...]:
    out = [_PKG_DIR, "<frozen importlib", "<frozen zipimport"]
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None and getattr(asyncio, "__file__", None):
        # a coroutine run as a task: attribute it to the code that started the loop
        out.append(os.path.dirname(os.path.abspath(asyncio.__file__ or "")))
    wrapt = sys.modules.get("wrapt")
    if wrapt is not None and getattr(wrapt, "__file__", None):
        out.append(os.path.dirname(os.path.abspath(wrapt.__file__ or "")))
    return tuple(out)


def warn_at(frame: Any, msg: str, category: type[Warning]) -> None:
    """Issue a warning attributed to ``frame`` (the user's line), through the filters.

    No registry: warn-once is ours (the registry is reset by ``catch_warnings()`` and
    pytest). No ``module_globals``: a loader that cannot give source (``python -c``)
    would make the call fail.
    """
    import warnings

    if frame is None:
        warnings.warn(msg, category, stacklevel=3)
        return
    warnings.warn_explicit(
        msg,
        category,
        frame.f_code.co_filename,
        frame.f_lineno,
        module=frame.f_globals.get("__name__", "__main__"),
        registry=None,
    )


def caller_frame(depth: int = 2) -> Any:
    """The first frame outside neuron_guard, wrapt and importlib, starting ``depth`` up."""
    try:
        f: Any = sys._getframe(depth)
    except ValueError:
        return None
    skip = _skip_prefixes()
    while f is not None and f.f_code.co_filename.startswith(skip):
        f = f.f_back
    return f


class Runtime:
    """The process-wide state. One instance: :data:`runtime`."""

    def __init__(self) -> None:
        self.lock = _thread.RLock()
        self.settings = Settings()
        self.baseline: Settings | None = None  # what the environment set, frozen by the lock
        self.items: dict[tuple[str, str], Item] = {}
        self.listeners: list[Callable[[Item, str, str | None, int | None], None]] = []
        self.lock_events: list[Event] = []
        self.installed = False
        self.off_at_start = False
        self.startup_error: BaseException | None = None
        self._order = 0

    # -- items ---------------------------------------------------------------

    def item(self, info: ItemInfo) -> Item:
        """The item for ``info``, created once per (kind, name) (an existing one is reused)."""
        key = (str(info.kind), info.name)
        with self.lock:
            it = self.items.get(key)
            if it is None:
                it = Item(info)
                self.items[key] = it
            return it

    def reset_fast_paths(self) -> None:
        """Send every guard back to the slow path (settings changed), keeping counts exact."""
        with self.lock:
            for it in self.items.values():
                self._flush(it)

    def _flush(self, it: Item) -> None:
        for c in it.cells:
            v = c.cell_contents
            c.cell_contents = None
            if v:
                it.counts[it.fast_action] = it.counts.get(it.fast_action, 0) + v

    def set_settings(self, settings: Settings) -> None:
        with self.lock:
            self.settings = settings
            self.reset_fast_paths()

    # -- the slow path ---------------------------------------------------------

    def use(self, it: Item, cell: Any, depth: int = 3) -> None:
        """Record one use of ``it``; warn or raise as the settings say.

        ``cell`` is the calling guard's counter cell: it is set to ``0`` when later uses
        can take the fast path. ``depth`` is how many frames up the user's code starts.
        """
        __tracebackhide__ = True  # pytest: show the user's call, not ours
        info = it.info
        settings = self.settings
        scoped = scoped_allow.get()
        last = it.last
        if last and last[0] is settings and last[1] is scoped:
            action, global_only = last[2], last[3]
        else:
            action, global_only = decide(info, settings, scoped)
            it.last = (settings, scoped, action, global_only)
        warn_now = False
        first = False
        with self.lock:
            if settings is not self.settings:  # configure() ran meanwhile: decide again
                settings = self.settings
                action, global_only = decide(info, settings, scoped)
            if action == Action.OFF:
                if cell is not None and global_only:
                    it.fast_action = action
                    cell.cell_contents = 0
                return
            count = it.counts.get(action, 0)
            first = count == 0 and action not in it.first
            it.counts[action] = count + 1
            if action in (Action.WARN, Action.DEPRECATED, Action.REMOVED):
                warn_now = not it.warned or not settings.dedupe
                it.warned = True
                fast = settings.dedupe and global_only
            else:
                fast = action == Action.ALLOW and global_only
            if fast and cell is not None:
                self._flush(it)
                it.fast_action = action
                cell.cell_contents = 0
            if first:
                self._order += 1
                it.order = it.order or self._order
        frame = caller_frame(depth) if (first or warn_now or action == Action.RAISE) else None
        if first:
            where = (
                (frame.f_code.co_filename, frame.f_lineno) if frame is not None else (None, None)
            )
            it.first.setdefault(action, where)
            self._notify(it, action, *where)
        if action == Action.RAISE:
            raise self.error(info, action) from None
        if warn_now:
            self._warn(it, action, frame)
            if info.preview and info.deprecated is not None and action == Action.WARN:
                self._warn(it, Action.DEPRECATED, frame)

    def _warn(self, it: Item, action: str, frame: Any) -> None:

        info = it.info
        if action == Action.WARN:
            category: type[Warning] = AlphaWarning if info.tier == "alpha" else BetaWarning
        else:
            category = NeuronDeprecationWarning
        try:
            warn_at(frame, message(info, action), category)
        except BaseException as exc:
            # a filter turned the warning into an error: the next use must raise again
            with self.lock:
                it.warned = False
                self._flush(it)
            exc.__suppress_context__ = True  # not "during handling of TypeError"
            raise

    def error(self, info: ItemInfo, action: str = Action.RAISE) -> PreviewError:
        cls = PreviewImportError if info.kind is Kind.PACKAGE else PreviewError
        msg = message(info, action)
        kwargs: dict[str, Any] = {
            "kind": info.kind,
            "name": info.name,
            "tier": info.tier,
            "explanation": meaning(info.kind, info.tier),
            "remedy": remedy(info),
            "trigger": info.trigger,
        }
        if cls is PreviewImportError:
            exc = PreviewImportError(msg, **kwargs)
            exc.name = info.name
            return exc
        return cls(msg, **kwargs)

    def _notify(self, it: Item, action: str, file: str | None, line: int | None) -> None:
        for fn in list(self.listeners):
            try:
                fn(it, action, file, line)
            except Exception as exc:  # a listener must never break the guarded program
                self.internal_error(f"event listener {fn!r} failed", exc)

    # -- events ------------------------------------------------------------------

    def events(self) -> list[Event]:
        """Every (item, action) used so far in this process, in order of first use."""
        pid = os.getpid()
        out: list[tuple[int, Event]] = []
        with self.lock:
            for it in self.items.values():
                info = it.info
                for action in it.counts:
                    if action == Action.OFF:
                        continue
                    n = it.total(action)
                    if not n:
                        continue
                    file, line = it.first.get(action, (None, None))
                    ev = Event(
                        str(info.kind),
                        info.name,
                        str(info.tier),
                        action,
                        file,
                        line,
                        n,
                        pid,
                        info.trigger,
                    )
                    out.append((it.order, ev))
            lock_events = list(self.lock_events)
        out.sort(key=lambda p: p[0])
        return [e for _, e in out] + lock_events

    def clear_events(self) -> None:
        """Forget counts and warn-once state (for tests); guards stay installed."""
        with self.lock:
            for it in self.items.values():
                for c in it.cells:
                    c.cell_contents = None
                it.counts.clear()
                it.first.clear()
                it.warned = False
                it.order = 0
            self.lock_events.clear()

    # -- failure policy --------------------------------------------------------------

    def internal_error(self, what: str, exc: BaseException) -> None:
        """An error of the guard itself: strict fails closed, warn/off fail open (one line)."""
        if self.settings.mode is Mode.STRICT:
            raise exc
        if not _ErrorOnce.reported:
            _ErrorOnce.reported = True
            try:
                sys.stderr.write(
                    f"neuron_guard: internal error ({what}): {type(exc).__name__}: {exc}; "
                    "the guard goes on failing open (warn mode)\n"
                )
            except Exception:
                pass


runtime = Runtime()

#: Re-made in a forked child: a lock another thread of the parent held at the fork
#: (multiprocessing forks from its pool-handler thread) would stay held forever.
fork_child_locks: list[Callable[[], None]] = []


def _after_fork_in_child() -> None:
    runtime.lock = _thread.RLock()
    for fn in fork_child_locks:
        try:
            fn()
        except Exception:  # never break the child
            pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
