"""``install()``, ``configure()``, ``allow()`` and ``events()``: the guard's life cycle.

``import neuron_guard`` calls :func:`install` once; the ``.pth`` start-up file calls
:func:`startup`. Both are idempotent.
"""

from __future__ import annotations

import os
import sys
from contextvars import ContextVar, Token

from ._config import Pattern, Settings, parse_patterns, resolve
from ._errors import ConfigError
from ._state import caller_frame, runtime, scoped_allow
from ._types import Event, Mode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, Callable, TypeVar

    F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["Installation", "allow", "configure", "events", "install", "install_at_import"]


class Installation:
    """What :func:`install` set up; ``uninstall()`` (or leaving the ``with`` block) undoes it."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    @property
    def active(self) -> bool:
        return runtime.installed

    def add(self, undo: Callable[[], None]) -> None:
        self._undo.append(undo)

    def uninstall(self) -> None:
        """Remove the import hook, restore patched objects and stop checking (idempotent)."""
        with runtime.lock:
            while self._undo:
                fn = self._undo.pop()
                try:
                    fn()
                except Exception as exc:  # undo the rest whatever happens
                    runtime.internal_error("uninstall", exc)
            runtime.installed = False
            runtime.set_settings(runtime.settings.with_(mode=Mode.OFF))

    def __enter__(self) -> Installation:
        return self

    def __exit__(self, *exc: object) -> None:
        self.uninstall()

    def __repr__(self) -> str:
        state = "active" if runtime.installed else "inactive"
        return f"<neuron_guard.Installation {state} mode={runtime.settings.mode}>"


_installation = Installation()


def install() -> Installation:
    """Activate the guard from the environment and ``pyproject.toml`` (idempotent).

    Reads the settings (see :func:`neuron_guard._config.resolve` for the order), loads
    the tier tables and installs the import hook. ``NEURON_GUARD=off`` installs nothing.
    A bad ``NEURON_GUARD`` value is a :class:`ConfigError`: a typo must never weaken
    production. In strict mode any failure to load tables or configuration raises (fail
    closed); in warn mode it is reported on one stderr line and the program goes on.
    """
    with runtime.lock:
        if runtime.installed:
            return _installation
        if os.environ.get("NEURON_GUARD", "").strip().lower() == "off":
            # off is for the whole process: nothing is read, nothing is installed
            settings = Settings(mode=Mode.OFF, origins={"mode": "env NEURON_GUARD"})
        else:
            settings = resolve()
        runtime.baseline = settings
        runtime.installed = True
        if settings.mode is Mode.OFF:
            runtime.off_at_start = True
            runtime.set_settings(settings)
            return _installation
        runtime.set_settings(settings)
        _activate_components(settings)
    return _installation


def _activate_components(settings: Settings) -> None:
    """Install the hook (tables, env checks) and the report writer.

    Fails closed in strict mode (the error propagates) and open otherwise. A
    :class:`PreviewError` (a preview item found at start-up) always propagates.
    """
    from ._errors import PreviewError

    reapply_warning_filters()
    if settings.report:
        try:
            from . import _report

            undo = _report.install(settings)
            if undo is not None:
                _installation.add(undo)
        except Exception as exc:
            runtime.internal_error("starting the report", exc)
    try:
        from . import _hook

        _installation.add(_hook.install(settings))
    except PreviewError:
        raise
    except Exception as exc:
        runtime.internal_error("loading tier tables", exc)


def configure(
    mode: Mode | str | None = None,
    allow: str | Iterable[str] | None = None,
) -> Settings:
    """Change the mode and/or the allow patterns at run time; returns the new settings.

    ``allow`` replaces the patterns given by earlier ``configure()`` calls; patterns from
    the environment and ``pyproject.toml`` stay. Under ``NEURON_GUARD_LOCK=1`` a call that
    would widen the mode or the allow list raises :class:`ConfigError` in strict mode and
    is ignored (and recorded as an event) otherwise.
    """
    frame = caller_frame(2)
    with runtime.lock:
        current = runtime.settings
        new = resolve(mode=mode if mode is not None else current.mode, allow=allow)
        base = runtime.baseline
        if current.lock and base is not None:
            widened = []
            if new.mode.rank < base.mode.rank:
                widened.append(f"mode {new.mode}")
            base_allow = {p.text for p in base.allow}
            extra = [p.text for p in new.allow if p.text not in base_allow]
            if extra:
                widened.append("allow " + ", ".join(repr(x) for x in extra))
            if widened:
                _refuse(f"configure({', '.join(widened)})", frame)
                keep_mode = new.mode if new.mode.rank >= base.mode.rank else current.mode
                new = new.with_(mode=keep_mode, allow=base.allow)
        first_activation = current.mode is Mode.OFF and new.mode is not Mode.OFF
        runtime.set_settings(new)
        if not runtime.installed:
            runtime.installed = True
            runtime.baseline = runtime.baseline or new
        if first_activation and not runtime.off_at_start and not _installation._undo:
            _activate_components(new)
        return new


def _refuse(what: str, frame: Any) -> None:
    file, line = (frame.f_code.co_filename, frame.f_lineno) if frame is not None else (None, None)
    ev = Event("config", what, None, "refused", file, line, 1, os.getpid())
    runtime.lock_events.append(ev)
    if runtime.settings.mode is Mode.STRICT:
        msg = (
            f"{what} refused: NEURON_GUARD_LOCK=1 froze the mode and allow list that the "
            "environment set; change NEURON_GUARD / NEURON_GUARD_ALLOW instead"
        )
        raise ConfigError(msg, source="NEURON_GUARD_LOCK", value=what)


class allow:
    """Opt in to preview items, in a scope: a context manager and a decorator.

    ``with neuron_guard.allow("beta", "api:pkg.mod.*"): ...`` or
    ``@neuron_guard.allow("env:NEURON_FOO")`` on a sync or ``async`` function. The scope
    lives in a :class:`contextvars.ContextVar`, so other threads and asyncio tasks never
    see it. Under ``NEURON_GUARD_LOCK=1`` a scope that widens the allow list raises
    :class:`ConfigError` in strict mode and does nothing (recorded as an event) in warn mode.
    """

    def __init__(self, *patterns: str) -> None:
        self.patterns: tuple[Pattern, ...] = parse_patterns(patterns, origin="allow()")
        self._tokens: ContextVar[tuple[Token[tuple[Pattern, ...]] | None, ...]] = ContextVar(
            "neuron_guard_allow_tokens", default=()
        )

    def __repr__(self) -> str:
        return "neuron_guard.allow(" + ", ".join(repr(p.text) for p in self.patterns) + ")"

    def _effective(self) -> tuple[Pattern, ...]:
        s = runtime.settings
        base = runtime.baseline
        if not s.lock or base is None:
            return self.patterns
        known = {p.text for p in base.allow}
        extra = [p for p in self.patterns if p.text not in known]
        if extra:
            _refuse(repr(self), caller_frame(3))
            return ()
        return self.patterns

    def __enter__(self) -> allow:
        pats = self._effective()
        token = scoped_allow.set(scoped_allow.get() + pats) if pats else None
        self._tokens.set((*self._tokens.get(), token))
        return self

    def __exit__(self, *exc: object) -> None:
        stack = self._tokens.get()
        if not stack:
            return
        self._tokens.set(stack[:-1])
        token = stack[-1]
        if token is not None:
            scoped_allow.reset(token)

    def __call__(self, func: F) -> F:
        import functools

        code = getattr(func, "__code__", None)
        flags = code.co_flags if code is not None else 0
        if flags & 0x80:  # coroutine function: the scope lives in the task running it

            @functools.wraps(func)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self:
                    return await func(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]
        if flags & (0x20 | 0x200):
            msg = (
                f"allow() cannot decorate the generator function {func.__qualname__!r}: "
                "a scope cannot follow a generator between yields; use 'with allow(...)' "
                "around the code that iterates it"
            )
            raise TypeError(msg)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self:
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def events() -> list[Event]:
    """Every use of a preview or deprecated item so far in this process.

    One :class:`Event` per (item, action), in order of first use, with the exact count
    and the first caller's file and line.
    """
    return runtime.events()


_NG_CATEGORIES = (
    "PreviewWarning",
    "AlphaWarning",
    "BetaWarning",
    "NeuronDeprecationWarning",
)


def reapply_warning_filters() -> None:
    """Re-apply ``-W``/``PYTHONWARNINGS`` filters that name neuron_guard categories.

    CPython parses them before site-packages is importable and drops a filter whose
    category it cannot import yet.
    """
    opts = [o for o in sys.warnoptions if "neuron_guard" in o]
    if not opts:
        return
    import warnings

    from . import _errors

    for opt in opts:
        parts = [p.strip() for p in opt.split(":")]
        parts += [""] * (5 - len(parts))
        action, message, category, module, lineno = parts[:5]
        cat_name = category.rsplit(".", 1)[-1]
        if not category.startswith("neuron_guard") or cat_name not in _NG_CATEGORIES:
            continue
        actions = {"error", "ignore", "always", "default", "module", "once"}
        full = next((a for a in actions if a.startswith(action)), None) if action else "default"
        if full is None:
            continue
        try:
            line = int(lineno) if lineno else 0
        except ValueError:
            continue
        import re

        warnings.filterwarnings(
            full,  # type: ignore[arg-type]
            message=re.escape(message),
            category=getattr(_errors, cat_name),
            module=(re.escape(module) + r"\Z") if module else "",
            lineno=line,
        )


def install_at_import() -> None:
    """What ``import neuron_guard`` runs: :func:`install`, with the start-up rules.

    Imported from the ``.pth`` start-up file (while ``site`` runs), a bad configuration
    or, in strict mode, a preview item found at start-up stops the process (exit 2 or 1)
    with the error on stderr: an exception in a ``.pth`` line would only be printed by
    ``site`` and the program would run unguarded. The ``neuron-guard`` command itself is
    never stopped, so that ``doctor`` and ``env`` can diagnose the environment.
    """
    from ._errors import PreviewError

    try:
        if _is_own_cli():
            _install_quietly()
        else:
            install()
    except (PreviewError, ConfigError) as exc:
        if _is_own_cli():
            runtime.startup_error = exc
            return
        if _in_site():
            _die(exc, 1 if isinstance(exc, PreviewError) else 2)
        raise
    except Exception as exc:
        if _is_own_cli():
            runtime.startup_error = exc
            return
        if _in_site() and os.environ.get("NEURON_GUARD", "").strip().lower() == "strict":
            _die(exc, 1)
        raise


def _install_quietly() -> None:
    """:func:`install` for the ``neuron-guard`` command: its own environment is what
    ``env`` and ``doctor`` report, so the start-up checks must not also warn about it."""
    import warnings

    from ._errors import NeuronDeprecationWarning, PreviewWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PreviewWarning)
        warnings.simplefilter("ignore", NeuronDeprecationWarning)
        install()


def _in_site() -> bool:
    """True while ``site`` processes ``.pth`` files (we were imported from one)."""
    f: Any = sys._getframe(1)
    while f is not None:
        code = f.f_code
        if code.co_name == "addpackage" and code.co_filename.endswith(("site.py", "<frozen site>")):
            return True
        f = f.f_back
    return False


def _is_own_cli() -> bool:
    """Whether this process is the ``neuron-guard`` command (script or ``-m neuron_guard``).

    Matches the program's base name, not a substring of a path, so that
    ``python ~/neuron-guard-demo/train.py`` is still guarded.
    """
    argv = [str(a) for a in (getattr(sys, "orig_argv", None) or _process_argv())[:4]]
    for i, arg in enumerate(argv):
        base = os.path.basename(arg).lower()
        if base in ("neuron-guard", "neuron-guard.exe", "neuron-guard-script.py"):
            return True
        if arg == "-mneuron_guard" or (arg == "-m" and argv[i + 1 : i + 2] == ["neuron_guard"]):
            return True
    return False


def _process_argv() -> list[str]:
    """The interpreter's own command line before 3.10 (no ``sys.orig_argv``).

    While ``site`` runs, ``sys.argv`` of ``python -m neuron_guard`` is ``['-m', ...]``:
    the module name is only in the process's command line.
    """
    try:
        with open("/proc/self/cmdline", "rb") as fh:
            raw = fh.read()
    except OSError:
        return list(sys.argv)
    return [os.fsdecode(a) for a in raw.split(b"\0") if a] or list(sys.argv)


def _die(exc: BaseException, code: int) -> None:
    if _is_own_cli():
        return
    try:
        sys.stderr.write(f"neuron_guard: {type(exc).__name__}: {exc}\n")
        sys.stderr.flush()
    finally:
        os._exit(code)
