"""Environment variables, flags in their carriers, and feature and model-class triggers.

What the table's ``env``, ``flag``, ``feature`` and ``model`` entries ask for, checked
where DESIGN.md's "When things are checked" says:

* **env vars** at install (against ``os.environ``), again when a guarded top-level
  package is imported (frameworks read their variables then), and on every write
  (``os.environ[...] =``, ``os.putenv``, ``update``, ``setdefault``) through an audit
  hook: ``os.environ`` writes call ``putenv``, whose audit event runs *before* the
  write, so raising there stops the write;
* **flags** wherever a carrier holds them: an env var's value (parsed like a shell
  line), an API argument (through the import hook's argument inspectors), and the
  argument list of a subprocess whose program is a ``cli:`` carrier (audit events of
  ``subprocess.Popen``, ``os.exec*``, ``os.posix_spawn``, ``os.spawn*``, ``os.system``);
* **features and model classes** when one of their triggers fires (``env:``,
  ``flag:``, ``api:``, ``package:``), as their own event naming the trigger.

Start-up only reads the table's index (names, carriers, triggers); entries are built
the first time something matches. An audit hook cannot be removed: it is added once
per process, only when the table has env vars, ``cli:`` carriers or triggers to watch,
and :func:`uninstall` makes it inert.
"""

from __future__ import annotations

import _thread
import os
import sys

from ._config import Pattern
from ._errors import PreviewError
from ._flags import find_flag, match_flags, normalize, split_shell
from ._policy import ItemInfo, allowed_by
from ._state import Item, fork_child_locks, runtime, scoped_allow, warn_at
from ._types import Mode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any, Callable

    from ._config import Settings
    from ._hook import Hook
    from ._table import Entry, Table

__all__ = ["environment_findings", "install", "uninstall"]

#: The audit events the hook looks at; every other event costs one set look-up.
_EVENTS = frozenset(
    {
        "os.putenv",
        "os.unsetenv",
        "subprocess.Popen",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.system",
    }
)
_SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh"})
_PKG_DIR = os.path.dirname(os.path.abspath(__file__))

_current: _Watch | None = None
_audit_added = False


def install(hook: Hook, settings: Settings) -> None:
    """Check the environment now and watch env vars, carriers and triggers from here on.

    In strict mode a preview variable (or flag, or feature it switches on) found in
    ``os.environ`` raises :class:`PreviewError` from here, before the program runs.
    """
    global _current, _audit_added
    if settings.mode is Mode.OFF:
        return
    watch = _Watch(hook)
    if not watch.needed:
        return
    _current = watch
    try:
        watch.startup()
    except BaseException:
        watch.active = False
        _current = None
        raise
    if watch.needs_audit and not _audit_added:
        sys.addaudithook(_audit)
        _audit_added = True


def uninstall() -> None:
    """Undo :func:`install`: the audit hook stays (it cannot be removed) but does nothing."""
    global _current
    watch = _current
    _current = None
    if watch is not None:
        watch.active = False


def _audit(event: str, args: tuple[Any, ...], _events: frozenset[str] = _EVENTS) -> None:
    """The process's one audit hook: one set look-up for events it does not watch."""
    if event not in _events:
        return
    watch = _current
    if watch is None or not watch.active:
        return
    if event == "os.putenv":  # every os.environ write: decide here, without another call
        key = args[0]
        if key not in watch.watched_bytes and key not in watch.watched:
            return
    watch.on_audit(event, args)


# -- where the user's code is ---------------------------------------------------------


def _skipped_files() -> tuple[str, ...]:
    """Files between the user's line and our hook: os, subprocess, collections.abc."""
    out = ["<frozen os>", "<frozen _collections_abc>"]
    for name in ("os", "subprocess", "_collections_abc"):
        mod = sys.modules.get(name)
        f = getattr(mod, "__file__", None)
        if f:
            out.append(f)
    return tuple(out)


def _user_frame(depth: int) -> tuple[Any, int]:
    """The first frame of the user's code ``depth`` or more frames up, and its depth.

    Skips neuron_guard, importlib and site, and the library frames between the user's
    line and an audit event (os, subprocess, collections.abc).
    """
    skip = _skipped_files()
    own = (_PKG_DIR, "<frozen importlib", "<frozen site")
    f: Any = sys._getframe(depth)
    while f is not None and (f.f_code.co_filename in skip or f.f_code.co_filename.startswith(own)):
        f = f.f_back
        depth += 1
    return f, depth


def _use(it: Item, notes: list[str]) -> None:
    """``runtime.use(it)`` attributed to the user's line; notes go into a strict error."""
    __tracebackhide__ = True
    _frame, depth = _user_frame(2)
    try:
        runtime.use(it, None, depth=1 + depth)
    except PreviewError as exc:
        if notes and exc.args:
            exc.args = (f"{exc.args[0]} [{'; '.join(notes)}]", *exc.args[1:])
        raise


def _tokens_of(value: Any) -> tuple[list[str], str | None]:
    """The flag tokens of an API argument: a string, bytes, or a list/tuple/dict of them."""
    if isinstance(value, bytes):
        value = os.fsdecode(value)
    if isinstance(value, str):
        return split_shell(value)
    if isinstance(value, dict):
        value = list(value.values())
    if not isinstance(value, (list, tuple)):
        return [], None
    tokens: list[str] = []
    error = None
    for v in value:
        if isinstance(v, bytes):
            v = os.fsdecode(v)
        if not isinstance(v, str):
            continue
        if v.startswith("-") and any(c.isspace() for c in v):
            # one element holding several flags ("--a --b"): read it as a line
            more, err = split_shell(v)
            tokens.extend(more)
            error = error or err
        else:
            tokens.append(v)
    return tokens, error


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


# -- the watch ---------------------------------------------------------------------------


class _Watch:
    """What the effective table asks to watch, and the checks themselves."""

    def __init__(self, hook: Hook) -> None:
        self.hook = hook
        self.active = True
        table = hook.table
        self.table = table
        env_names = table.names("env")
        carriers = table.carriers()
        triggers = table.triggers()
        self.env_names = env_names
        self.env_carriers = _env_carriers(carriers, triggers)
        self.programs = {c[4:] for c in carriers if c.startswith("cli:")}
        self.flag_triggers = _flag_triggers(triggers)
        if self.flag_triggers:
            # a flag that switches a feature on counts in the usual carriers too
            self.programs.add("neuronx-cc")
        self.env_triggers = {t[4:] for t in triggers if t.startswith("env:")}
        self.watched = frozenset(env_names | self.env_carriers | self.env_triggers)
        self.watched_bytes = frozenset(os.fsencode(n) for n in self.watched)
        self.package_triggers = {
            t[8:].replace("-", "_"): t for t in triggers if t.startswith("package:")
        }
        self.api_carriers = sorted(c[4:] for c in carriers if c.startswith("api:"))
        self.api_triggers = sorted(t[4:] for t in triggers if t.startswith("api:"))
        self.needs_audit = bool(self.watched or self.programs)
        self.needed = bool(
            self.needs_audit or self.package_triggers or self.api_carriers or self.api_triggers
        )
        self.seen: dict[str, str] = {}
        self.checked_tops: set[str] = set()
        self.noted: set[str] = set()
        self.lock = _thread.RLock()
        self._busy: set[int] = set()
        fork_child_locks.append(self._after_fork)
        self._spawned: dict[int, tuple[str, ...]] = {}
        # built the first time something matches
        self._resolvers: dict[tuple[str, ...], Callable[[], Entry | None]] | None = None
        self._carrier_entries: dict[str, list[Entry]] = {}
        self._by_trigger: dict[str, list[Entry]] | None = None
        self._fired: dict[tuple[str, str], Item] = {}

    def _after_fork(self) -> None:
        self.lock = _thread.RLock()
        self._busy.clear()

    # -- start-up and registration -------------------------------------------------------

    def startup(self) -> None:
        hook = self.hook
        for carrier in self.api_carriers:
            target, _, arg = carrier.rpartition(":")
            hook.add_arg_inspector(target, arg, self._api_carrier(target, arg))
        for trig in self.api_triggers:
            target, sep, arg = trig.partition(":")
            fire = self._trigger_firer("api:" + trig)
            if sep:
                hook.add_arg_inspector(target, arg, _when_given(fire))
            else:
                hook.add_call_listener(target, fire)
        if self.package_triggers or self.watched:
            for module in self.package_triggers:
                hook.listen_to(module)
            hook.module_listeners.append(self.on_module)
        self.checked_tops.update(t for t in hook.tops if t in sys.modules)
        for module, trig in self.package_triggers.items():
            if module in sys.modules:
                self._guarded(self.fire_trigger, trig, [])
        self.recheck()

    def _api_carrier(self, target: str, arg: str) -> Callable[[Any], None]:
        carrier = f"api:{target}:{arg}"
        where = f"argument {arg!r} of {target}"

        def inspect(value: Any) -> None:
            if self.active and value is not None:
                tokens, error = _tokens_of(value)
                self._guarded(self.check_tokens, carrier, tokens, error, where)

        return inspect

    def _trigger_firer(self, trigger: str) -> Callable[[], None]:
        def fire() -> None:
            if self.active:
                self._guarded(self.fire_trigger, trigger, [])

        return fire

    def _guarded(self, fn: Callable[..., None], *args: Any) -> None:
        """Run a check; a PreviewError propagates, the guard's own errors follow the policy."""
        __tracebackhide__ = True
        me = _thread.get_ident()
        if me in self._busy:  # a check that writes os.environ or warns: no recursion
            return
        self._busy.add(me)
        try:
            fn(*args)
        except (PreviewError, Warning):
            raise
        except Exception as exc:
            runtime.internal_error("checking env vars and flags", exc)
        finally:
            self._busy.discard(me)

    # -- events --------------------------------------------------------------------------

    def on_module(self, fullname: str) -> None:
        """Right before the body of a watched module runs (it was found: it is installed)."""
        if not self.active:
            return
        trig = self.package_triggers.get(fullname)
        if trig is not None:
            self._guarded(self.fire_trigger, trig, [])
        top = fullname.partition(".")[0]
        if top not in self.checked_tops:
            self.checked_tops.add(top)
            self.recheck()

    def recheck(self) -> None:
        """Check every watched variable whose value changed since it was last checked."""
        watched = self.watched
        if not watched:
            return
        environ = os.environ
        for name in [n for n in environ if n in watched]:
            value = environ.get(name)
            if value is not None and self.seen.get(name) != value:
                self._guarded(self.check_env, name, value)

    def on_audit(self, event: str, args: tuple[Any, ...]) -> None:
        __tracebackhide__ = True
        if event == "os.putenv":
            key = args[0]
            if type(key) is bytes:
                if key not in self.watched_bytes:
                    return
                name = os.fsdecode(key)
            elif key in self.watched:
                name = key
            else:
                return
            value = args[1]
            self._guarded(self.check_env, name, os.fsdecode(value))
        elif event == "os.unsetenv":
            key = args[0]
            self.seen.pop(os.fsdecode(key) if type(key) is bytes else key, None)
        elif self.programs:
            self._guarded(self.on_spawn, event, args)

    def on_spawn(self, event: str, args: tuple[Any, ...]) -> None:
        """A process is about to start: check its argument list if it is a ``cli:`` carrier."""
        if event == "os.system":
            argv, _ = split_shell(os.fsdecode(args[0]))
            executable = None
        elif event == "os.spawn":
            executable, argv = args[1], args[2]
        else:  # subprocess.Popen, os.exec, os.posix_spawn: (path, argv, ...)
            executable, argv = args[0], args[1]
        try:
            argv = [os.fsdecode(a) for a in argv]
        except TypeError:
            return
        if not argv:
            return
        me = _thread.get_ident()
        key = tuple(argv)
        if event == "subprocess.Popen":
            self._spawned[me] = key
        elif event == "os.posix_spawn" and self._spawned.pop(me, None) == key:
            return  # Popen starting its child through posix_spawn: checked already
        prog = os.path.basename(argv[0])
        if prog in _SHELLS and len(argv) >= 3 and argv[1] == "-c":
            argv, _ = split_shell(argv[2])
            if not argv:
                return
            prog = os.path.basename(argv[0])
            executable = None
        if prog.startswith("python") and len(argv) > 1 and not argv[1].startswith("-"):
            # python script.py ARGS: the script is the program
            prog, argv = os.path.basename(argv[1]), argv[1:]
        programs = self.programs
        if prog not in programs:
            if executable is None:
                return
            prog = os.path.basename(os.fsdecode(executable))
            if prog not in programs:
                return
        self.check_tokens(f"cli:{prog}", argv[1:], None, f"the command line of {prog}")

    # -- the checks ----------------------------------------------------------------------

    def check_env(self, name: str, value: str) -> None:
        """``name`` is set to ``value`` (at start-up, at a package import, or being written)."""
        notes: list[str] = []
        entry = _env_entry(self.pick(("env", name, "")), value) if name in self.env_names else None
        if value == "" and (entry is not None or name in self.env_triggers):
            note = f"{name} is set to an empty string, which still counts as set"
            self.note(note)
            notes.append(note)
        if name in self.env_triggers:
            self.fire_trigger(f"env:{name}", notes)
        if entry is not None:
            self.fire(self.hook.item_for(entry), f"env:{name}", notes)
        if name in self.env_carriers:
            tokens, error = split_shell(value)
            self.check_tokens(f"env:{name}", tokens, error, name)
        self.seen[name] = value

    def check_tokens(self, carrier: str, tokens: list[str], error: str | None, where: str) -> None:
        """Flags of the table (and flag triggers) that ``tokens`` from ``carrier`` hold."""
        notes = [f"found in {where}"]
        if error is not None:
            note = f"{where} is malformed ({error}); decided by the parts that could be read"
            self.note(note)
            notes.append(note)
        if not tokens:
            return
        for trigger in _flag_triggers_in(tokens, self.flag_triggers):
            self.fire_trigger(trigger, notes)
        entries = self.carrier_entries(carrier)
        if not entries:
            return
        for entry, _value in _flags_in(tokens, entries, self.pick):
            self.fire(self.hook.item_for(entry), f"flag:{normalize(entry.name)}", notes)

    def fire(self, it: Item, trigger: str, notes: list[str]) -> None:
        """One use of ``it``; allowed when a feature or model it switches on is allowed."""
        __tracebackhide__ = True
        extra = self.allowed_through(trigger, it.info)
        if not extra:
            _use(it, notes)
            return
        token = scoped_allow.set(scoped_allow.get() + extra)
        try:
            _use(it, notes)
        finally:
            scoped_allow.reset(token)

    def fire_trigger(
        self, trigger: str, notes: list[str], _seen: frozenset[str] = frozenset()
    ) -> None:
        """Fire every feature and model class that ``trigger`` switches on."""
        __tracebackhide__ = True
        entries = self.by_trigger().get(trigger)
        if not entries:
            return
        names: dict[tuple[str, str], list[Entry]] = {}
        for e in entries:
            names.setdefault((str(e.kind), e.name), []).append(e)
        for (kind, name), group in names.items():
            it = self.feature_item(kind, name, group, trigger)
            if it is None:
                continue
            _use(it, notes)
            own = f"{kind}:{name}"
            if own not in _seen:  # a feature may switch on another feature
                self.fire_trigger(own, notes, _seen | {trigger, own})

    # -- look-ups, built on first use ----------------------------------------------------

    def pick(self, key: tuple[str, ...]) -> Entry | None:
        """The entry of ``key`` that holds for the installed versions."""
        with self.lock:
            if self._resolvers is None:
                from ._table import group, resolver

                self._resolvers = {k: resolver(es) for k, es in group(self.table.entries).items()}
            get = self._resolvers.get(key)
        return get() if get is not None else None

    def carrier_entries(self, carrier: str) -> list[Entry]:
        with self.lock:
            got = self._carrier_entries.get(carrier)
            if got is None:
                got = [e for e in self.table.of_kind("flag") if carrier in e.carriers]
                self._carrier_entries[carrier] = got
            return got

    def by_trigger(self) -> dict[str, list[Entry]]:
        with self.lock:
            if self._by_trigger is None:
                self._by_trigger = _by_trigger(self.table)
            return self._by_trigger

    def feature_item(self, kind: str, name: str, group: list[Entry], trigger: str) -> Item | None:
        """The item of feature or model ``name`` as switched on by ``trigger`` (cached)."""
        workload = runtime.settings.workload
        key = (f"{kind}:{name}", f"{trigger}|{workload}")
        with self.lock:
            if key in self._fired:
                return self._fired[key]
        entry, note = _feature_entry(kind, group, workload)
        it = None
        if entry is not None:
            it = self.hook.item_for(entry, name, trigger=trigger, workload_note=note)
        with self.lock:
            self._fired[key] = it  # type: ignore[assignment]
        return it

    def allowed_through(self, trigger: str, info: ItemInfo) -> tuple[Pattern, ...]:
        """An allow pattern for ``info`` when a feature or model that ``trigger`` switches on
        is allowed by name (``feature:NAME`` / ``model:NAME``)."""
        entries = self.by_trigger().get(trigger)
        if not entries:
            return ()
        settings = runtime.settings
        scoped = scoped_allow.get()
        for e in entries:
            fi = ItemInfo(e.kind, e.name, e.tier)
            if allowed_by(fi, settings.allow, by_name_only=True) or (
                scoped and allowed_by(fi, scoped, by_name_only=True)
            ):
                pat = Pattern(
                    text=f"{info.kind}:{info.name}",
                    kind=info.kind,
                    glob=_glob_escape(info.name),
                    origin=f"allowed with {e.kind}:{e.name}",
                )
                return (pat,)
        return ()

    def note(self, text: str) -> None:
        """A bad value: noted once (a ``RuntimeWarning`` at the user's line, and a debug note)."""
        from ._hook import debug

        debug(text)
        if text in self.noted or runtime.settings.mode is Mode.OFF:
            return
        self.noted.add(text)
        f, _ = _user_frame(2)
        warn_at(f, f"neuron_guard: {text}", RuntimeWarning)


def _when_given(fire: Callable[[], None]) -> Callable[[Any], None]:
    """An argument inspector that fires when the argument is given a value (not None)."""

    def inspect(value: Any) -> None:
        if value is not None:
            fire()

    return inspect


def _matters(entry: Entry) -> bool:
    """Whether using ``entry`` is an event: preview, deprecated or removed."""
    return bool(entry.tier.preview or entry.deprecated or entry.removed)


def _by_workload(live: list[Entry], workload: str | None) -> tuple[list[Entry], str | None]:
    """A model's entries for the declared workload; undeclared, all (the lowest tier applies)."""
    if workload:
        return [e for e in live if e.workload in (None, workload)], None
    tiers = sorted({(e.workload, str(e.tier)) for e in live if e.workload})
    if not tiers:
        return live, None
    by = ", ".join(f"{w}: {t}" for w, t in tiers)
    note = (
        f"its tier depends on the workload ({by}) and none is declared, so the lower applies; "
        "declare it with NEURON_GUARD_WORKLOAD=training or NEURON_GUARD_WORKLOAD=inference "
        "(or workload = ... in [tool.neuron_guard])"
    )
    return live, note


# -- the matching, shared by the watch and ``neuron-guard env`` ----------------------------


def _env_carriers(carriers: Iterable[str], triggers: Iterable[str]) -> set[str]:
    """The variables whose values are read for flags (``NEURON_CC_FLAGS`` for flag triggers)."""
    out = {c[4:] for c in carriers if c.startswith("env:")}
    if any(t.startswith("flag:") for t in triggers):
        out.add("NEURON_CC_FLAGS")
    return out


def _flag_triggers(triggers: Iterable[str]) -> list[str]:
    """The ``flag:`` triggers as ``FLAG`` or ``FLAG=VALUE`` specs."""
    return sorted(t[5:] for t in triggers if t.startswith("flag:"))


def _env_entry(entry: Entry | None, value: str) -> Entry | None:
    """``entry`` of an env var set to ``value`` when that is an event (a listed value, if any)."""
    if entry is None or not _matters(entry):
        return None
    if entry.values is not None and value not in entry.values:
        return None
    return entry


def _flag_triggers_in(tokens: list[str], specs: Iterable[str]) -> list[str]:
    """The triggers (``flag:SPEC``, normalized) among ``specs`` that ``tokens`` hold."""
    out = []
    for spec in specs:
        flag, eq, want = spec.partition("=")
        present, value = find_flag(tokens, (flag,))
        if present and (not eq or value == want):
            out.append("flag:" + normalize(spec))
    return out


def _flags_in(
    tokens: list[str], entries: list[Entry], pick: Callable[[tuple[str, ...]], Entry | None]
) -> list[tuple[Entry, str | None]]:
    """The flag entries (of ``entries``, as ``pick`` resolves them) that ``tokens`` use."""
    return [
        (e, value) for e, value in match_flags(tokens, entries) if pick(e.key) is e and _matters(e)
    ]


def _by_trigger(table: Table) -> dict[str, list[Entry]]:
    """Feature and model entries by trigger (flag triggers normalized)."""
    out: dict[str, list[Entry]] = {}
    for kind in ("feature", "model"):
        for e in table.of_kind(kind):
            for t in e.triggers:
                key = "flag:" + normalize(t[5:]) if t.startswith("flag:") else t
                out.setdefault(key, []).append(e)
    return out


def _feature_entry(
    kind: str, group: list[Entry], workload: str | None
) -> tuple[Entry | None, str | None]:
    """The entry of a feature or model (``group``: its entries) that a trigger switches on,
    when that is an event, and a note on the workload."""
    from ._table import holds

    live = [e for e in group if holds(e)]
    note = None
    if kind == "model":
        live, note = _by_workload(live, workload)
    if not live:
        return None, note
    entry = min(live, key=lambda e: e.tier.rank)
    return (entry if _matters(entry) else None), note


def environment_findings(
    table: Table, settings: Settings, environ: Mapping[str, str]
) -> list[tuple[Entry, str, str | None]]:
    """``(entry, what, trigger)`` for each item that ``environ`` switches on.

    The start-up check's view of an environment, as a pure function: ``env`` entries of
    the variables set (to one of their ``values``, if listed), ``flag`` entries in the
    ``env:`` carriers, then the features and model classes (for ``settings.workload``)
    that ``env:`` and ``flag:`` triggers switch on, also through one another. ``what``
    names the use (``VAR=VALUE``, ``FLAG in VAR``, a feature's name); ``trigger`` is the
    trigger of a feature or model, None otherwise. Only uses that are events (preview,
    deprecated or removed items) are listed.
    """
    from ._table import group, pick

    groups = group(table.entries)

    def picked(key: tuple[str, ...]) -> Entry | None:
        entries = groups.get(key)
        return pick(entries) if entries else None

    env_names = table.names("env")
    carriers = _env_carriers(table.carriers(), table.triggers())
    flag_triggers = _flag_triggers(table.triggers())
    flags = table.of_kind("flag")
    direct: list[tuple[Entry, str, str | None]] = []
    in_carriers: list[tuple[Entry, str, str | None]] = []
    triggers: list[str] = []
    for name in sorted(environ):
        value = environ[name]
        entry = _env_entry(picked(("env", name, "")), value) if name in env_names else None
        if entry is not None:
            direct.append((entry, f"{name}={value}", None))
        triggers.append(f"env:{name}")
        if name not in carriers:
            continue
        tokens = split_shell(value)[0]
        if not tokens:
            continue
        triggers.extend(_flag_triggers_in(tokens, flag_triggers))
        entries = [e for e in flags if f"env:{name}" in e.carriers]
        for e, fval in _flags_in(tokens, entries, picked):
            shown = e.name if fval is None else f"{e.name}={fval}"
            in_carriers.append((e, f"{shown} in {name}", None))
    by_trigger = _by_trigger(table)
    switched: list[tuple[Entry, str, str | None]] = []
    done: set[str] = set()
    seen: set[str] = set()
    while triggers:
        trigger = triggers.pop(0)
        if trigger in seen:
            continue
        seen.add(trigger)
        names: dict[tuple[str, str], list[Entry]] = {}
        for e in by_trigger.get(trigger, ()):
            names.setdefault((str(e.kind), e.name), []).append(e)
        for (kind, name), entries in names.items():
            own = f"{kind}:{name}"
            entry, _note = _feature_entry(kind, entries, settings.workload)
            if entry is None or own in done:
                continue
            done.add(own)
            switched.append((entry, name, trigger))
            triggers.append(own)
    return direct + in_carriers + switched
