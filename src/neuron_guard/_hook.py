"""The import hook: guard third-party modules that nobody decorated, driven by the table.

One ``sys.meta_path`` finder, :class:`_Finder`, first in line:

* for a module outside every guarded top-level package it answers ``None`` after one set
  look-up: unrelated imports cost nothing measurable;
* for a module the table needs (a prefix of an API's dotted name, a preview package, a
  trigger, or any module of a package that already holds guards), it finds the module's
  spec with the other finders (given the parent's ``__path__``, never importing anything)
  and wraps the loader. Before the module body runs, the loader decides preview packages
  (strict: :class:`PreviewImportError` before any of the package's code runs); after it
  ran, the loader replaces the table's APIs with guards, and the same objects wherever the
  package re-exports them.

This replaces wrapt's post-import hook finder, which calls ``importlib.util.find_spec``
while Python holds its global import lock and so can deadlock with a thread that is still
running the package's ``__init__`` (tests/hardening/test_concurrency.py), and whose import
(~80 ms for wrapt 2.x) would dominate the cost of importing a guarded package. wrapt's own
post-import hooks registered by other libraries still run: the loader notifies wrapt after
each module it handled.
"""

from __future__ import annotations

import _thread
import sys

from ._errors import PreviewError, PreviewImportError
from ._policy import ItemInfo
from ._state import Item, fork_child_locks, runtime
from ._table import Entry, Table, group, load_table, removed_now, resolver

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

    from ._config import Settings

__all__ = ["Hook", "current", "install"]

_MISSING = object()


def debug(msg: str) -> None:
    """Log at debug level, without importing :mod:`logging` for it."""
    hook = _current
    if hook is not None:
        hook.notes.append(msg)
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.getLogger("neuron_guard").debug(msg)


class _Target:
    """Everything the table says about one dotted API name."""

    __slots__ = ("args", "name", "whole")

    def __init__(self, name: str) -> None:
        self.name = name
        self.whole: list[Entry] = []
        self.args: dict[str, list[Entry]] = {}


class Hook:
    """The installed import hook (one per process; see :func:`current`)."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.lock = _thread.RLock()
        fork_child_locks.append(self._new_lock)
        self.active = True
        self.notes: list[str] = []
        self.patched: list[tuple[Any, str, Any, Any]] = []  # (owner, attr, original, guard)
        self.guards: dict[int, tuple[Any, Any]] = {}  # id(original) -> (original, guard)
        self.targets: dict[str, _Target] = {}
        #: module name -> (attribute path, target) for every target that module may hold
        self.by_module: dict[str, list[tuple[list[str], _Target]]] = {}
        self.wildcards: list[tuple[str, list[Entry]]] = []
        self.packages: dict[str, list[Entry]] = {}
        self.arg_inspectors: dict[str, list[tuple[str, Callable[[Any], None]]]] = {}
        #: called with a module's name right before its body runs (env re-checks, triggers)
        self.module_listeners: list[Callable[[str], None]] = []
        self.built = False
        #: top-level modules we watch (from the table's index: nothing is built yet)
        self.tops: set[str] = set(table.tops())
        self.api_tops: set[str] = set()
        self._package_resolvers: dict[str, Callable[[], Entry | None]] = {}
        self._wrap_modules: set[str] = set()
        self._generation: dict[str, int] = {}  # top -> how many guards it holds
        self._scanned: dict[str, int] = {}  # module -> generation of its last re-export scan
        self._importing: set[str] = set()  # top-level packages whose __init__ is running
        self._pending: dict[str, list[tuple[str, list[str], _Target]]] = {}
        self._done: set[str] = set()  # targets guarded already
        self._finder = _Finder(self)

    def _new_lock(self) -> None:
        self.lock = _thread.RLock()
        self._finder._local.clear()

    def build(self) -> None:
        """Build the look-ups from the table's entries (once: on the first watched import)."""
        if self.built:
            return
        self.built = True
        for key, entries in group(self.table.of_kind("api")).items():
            name = key[1]
            if name.endswith(".*"):
                self.wildcards.append((name[:-2], entries))
                continue
            t = self.targets.setdefault(name, _Target(name))
            arg = key[2]
            if arg:
                t.args[arg] = entries
            else:
                t.whole = entries
        for target, inspectors in self.arg_inspectors.items():
            t = self.targets.setdefault(target, _Target(target))
            for arg, _fn in inspectors:
                t.args.setdefault(arg, [])
        for t in self.targets.values():
            self._index_target(t)
        for entries in group(self.table.of_kind("package")).values():
            self.packages[entries[0].import_name] = entries
        self.api_tops |= {n.partition(".")[0] for n in self.targets} | {
            w.partition(".")[0] for w, _ in self.wildcards
        }
        self.tops |= self.api_tops | {m.partition(".")[0] for m in self.packages}
        self._package_resolvers = {m: resolver(es) for m, es in self.packages.items()}
        self._wrap_modules |= set(self.packages)

    def _index_target(self, t: _Target) -> None:
        parts = t.name.split(".")
        for i in range(1, len(parts)):
            module = ".".join(parts[:i])
            self.by_module.setdefault(module, []).append((parts[i:], t))
            self._wrap_modules.add(module)

    # -- registration (flag carriers, triggers) -------------------------------------------

    def add_arg_inspector(self, target: str, argument: str, fn: Callable[[Any], None]) -> None:
        """Call ``fn(value)`` whenever ``target`` is called with ``argument`` (flag carriers)."""
        self.arg_inspectors.setdefault(target, []).append((argument, fn))
        top = target.partition(".")[0]
        self.api_tops.add(top)
        self.tops.add(top)
        if self.built:
            fresh = target not in self.targets
            t = self.targets.setdefault(target, _Target(target))
            t.args.setdefault(argument, [])
            if fresh:
                self._index_target(t)

    def add_call_listener(self, target: str, fn: Callable[[], None]) -> None:
        """Call ``fn()`` before every call of ``target`` (feature and model triggers)."""

        def on_call(_value: Any) -> None:
            fn()

        self.add_arg_inspector(target, "", on_call)  # "": called whatever the arguments

    def listen_to(self, module: str) -> None:
        """Have the module listeners see ``module``'s import (a ``package:`` trigger)."""
        self._wrap_modules.add(module)
        self.tops.add(module.partition(".")[0])

    # -- life cycle ------------------------------------------------------------------

    def start(self) -> None:
        sys.meta_path.insert(0, self._finder)
        loaded = sorted(m for m in list(sys.modules) if m.partition(".")[0] in self.tops)
        if loaded:
            # modules imported before the guard: patch them at once, parents first
            self.build()
            for name in loaded:
                module = sys.modules.get(name)
                if module is not None:
                    self.after_exec(module, rescan=False)
            for top in {m.partition(".")[0] for m in loaded}:
                self._rescan_top(top)

    def stop(self) -> None:
        from ._wrap import set_class_attr

        self.active = False
        try:
            sys.meta_path.remove(self._finder)
        except ValueError:
            pass
        with self.lock:
            for owner, attr, original, _guard in reversed(self.patched):
                try:
                    if original is _MISSING:
                        delattr(owner, attr)
                    elif isinstance(owner, type):
                        set_class_attr(owner, attr, original)
                    else:
                        setattr(owner, attr, original)
                except (AttributeError, TypeError):
                    pass
            self.patched.clear()
            self.guards.clear()

    # -- the finder's side --------------------------------------------------------------

    def wants(self, fullname: str) -> bool:
        """Whether the loader of ``fullname`` must be wrapped (the table needs to see it)."""
        top = fullname.partition(".")[0]
        if fullname == top or fullname in self._wrap_modules or self._generation.get(top):
            return True
        for base, _ in self.wildcards:
            if fullname.startswith(base + "."):
                return True
        return any(fullname.startswith(m + ".") for m in self.packages)

    # -- the loader's side ----------------------------------------------------------------

    def before_exec(self, fullname: str) -> None:
        """Right before a watched module's body runs: listeners, then preview packages."""
        for fn in self.module_listeners:
            try:
                fn(fullname)
            except Exception as exc:
                if isinstance(exc, PreviewError):
                    raise
                runtime.internal_error(f"module listener for {fullname}", exc)
        if self.packages:
            self._check_package(fullname)

    def _check_package(self, fullname: str) -> None:
        for module, get in self._package_resolvers.items():
            if fullname != module and not fullname.startswith(module + "."):
                continue
            entry = get()
            if entry is None or not (entry.tier.preview or entry.deprecated):
                continue
            it = self.item_for(entry, name=entry.name)
            try:
                runtime.use(it, None)
            except PreviewImportError as exc:
                exc.name = fullname
                raise

    def item_for(
        self,
        entry: Entry,
        name: str | None = None,
        *,
        trigger: str | None = None,
        workload_note: str | None = None,
    ) -> Item:
        info = ItemInfo(
            entry.kind,
            name or entry.display_name,
            entry.tier,
            replacement=entry.replacement,
            source=entry.source,
            deprecated=entry.deprecated,
            removed=entry.removed,
            removed_now=removed_now(entry),
            trigger=trigger,
            workload_note=workload_note,
        )
        return runtime.item(info)

    # -- the post-import side -------------------------------------------------------

    def after_exec(self, module: Any, *, rescan: bool = True) -> None:
        """After a watched module's body ran: patch its APIs and the re-exports."""
        if not self.active:
            return
        name: str = getattr(module, "__name__", "")
        top = name.partition(".")[0]
        try:
            with self.lock:
                before = self._generation.get(top, 0)
                self._patch_module(module)
                if name == top:
                    self._retry_pending(top)
                if not rescan:
                    return
                grew = self._generation.get(top, 0) != before
                if name == top or (grew and top not in self._importing):
                    self._rescan_top(top)  # the package is complete: every module once
                elif self._generation.get(top):
                    self._scan_module(name, module, top)
        except Exception as exc:
            runtime.internal_error(f"patching {name!r}", exc)

    def _patch_module(self, module: Any) -> None:
        mod_name: str = getattr(module, "__name__", "")
        prefix = mod_name + "."
        for path, target in self.by_module.get(mod_name, ()):
            if len(path) > 1 and (prefix + path[0]) in sys.modules:
                continue  # the submodule's own import (a longer prefix) handles it
            self._patch_target(module, path, target)
        for base, entries in self.wildcards:
            if mod_name == base or mod_name.startswith(base + "."):
                self._patch_wildcard(module, entries)

    def _retry_pending(self, top: str) -> None:
        """Targets missing when their module ran may exist once the package is complete."""
        for mod_name, path, target in self._pending.pop(top, ()):
            module = sys.modules.get(mod_name)
            if module is not None and target.name not in self._done:
                self._patch_target(module, path, target, retry=True)

    def _rescan_top(self, top: str) -> None:
        gen = self._generation.get(top, 0)
        if not gen:
            return
        prefix = top + "."
        for name, module in list(sys.modules.items()):
            if module is not None and (name == top or name.startswith(prefix)):
                self._scan_module(name, module, top)

    def _scan_module(self, name: str, module: Any, top: str) -> None:
        gen = self._generation.get(top, 0)
        if self._scanned.get(name) == gen:
            return
        self._scanned[name] = gen
        try:
            namespace = vars(module)
        except TypeError:
            return
        guards = self.guards
        for attr, value in list(namespace.items()):
            hit = guards.get(id(value))
            if hit is not None and hit[0] is value:
                self._set(module, attr, value, hit[1])

    def _add_guard(self, original: Any, guard: Any, top: str) -> None:
        self.guards[id(original)] = (original, guard)
        self._generation[top] = self._generation.get(top, 0) + 1

    def _set(self, owner: Any, attr: str, original: Any, guard: Any) -> None:
        if guard is original:
            return
        try:
            setattr(owner, attr, guard)
        except (AttributeError, TypeError) as exc:
            debug(f"cannot patch {attr!r} on {owner!r}: {exc}")
            return
        self.patched.append((owner, attr, original, guard))

    def _patch_target(
        self, module: Any, path: list[str], target: _Target, *, retry: bool = False
    ) -> Any:
        from ._wrap import guard_object, is_guard

        owner: Any = module
        for part in path[:-1]:
            owner = _lookup(owner, part)
            if owner is _MISSING:
                return self._missing(module, path, target, part, retry)
        attr = path[-1]
        raw = owner.__dict__.get(attr, _MISSING) if isinstance(owner, type) else _MISSING
        value = raw if raw is not _MISSING else _lookup(owner, attr)
        if value is _MISSING:
            return self._missing(module, path, target, attr, retry)
        if type(value).__name__ == "module":
            debug(f"{target.name}: names a module, not an API (use a [[package]] entry); skipped")
            return None
        if not callable(value) and not hasattr(type(value), "__get__"):
            debug(f"{target.name}: is {type(value).__name__}, not an API; skipped")
            return None
        if is_guard(value) or id(value) in self.guards:
            return None
        old_init = value.__dict__.get("__init__", _MISSING) if isinstance(value, type) else None
        guard = value
        whole = resolver(target.whole)() if target.whole else None
        module_level = not isinstance(owner, type)
        if whole is not None and (whole.tier.preview or whole.deprecated):
            guard = guard_object(value, self.item_for(whole), module_level=module_level)
        checks = self._arg_checks(target, value)
        if checks:
            try:
                guard = _with_argument_checks(guard, value, checks)
            except TypeError as exc:  # an immutable type's __init__
                debug(f"{target.name}: its arguments cannot be checked ({exc}); skipped")
        self._done.add(target.name)
        if guard is value:
            if not isinstance(value, type):
                return None
            new_init = value.__dict__.get("__init__", _MISSING)
            if new_init is old_init:
                return None
            # guarded in place: every name of the class sees it; remember for uninstall
            self.patched.append((value, "__init__", old_init, new_init))
            return value
        self._add_guard(value, guard, module.__name__.partition(".")[0])
        self._set(owner, attr, value, guard)
        return value

    def _missing(
        self, module: Any, path: list[str], target: _Target, part: str, retry: bool
    ) -> None:
        top = module.__name__.partition(".")[0]
        if not retry and top in self._importing:
            # the package may still add it (lazy attributes, late assignments): try again
            # once its __init__ has finished
            self._pending.setdefault(top, []).append((module.__name__, path, target))
            return
        debug(f"{target.name}: {part!r} not found in the installed version; skipped")
        return

    def _arg_checks(self, target: _Target, value: Any) -> list[tuple[str, Callable[[Any], None]]]:
        checks: list[tuple[str, Callable[[Any], None]]] = []
        for arg, entries in target.args.items():
            entry = resolver(entries)() if entries else None
            if entry is not None and (entry.tier.preview or entry.deprecated):
                checks.append((arg, _argument_firer(self.item_for(entry), entry, value, arg)))
        for arg, fn in self.arg_inspectors.get(target.name, ()):
            checks.append((arg, fn))
        return checks

    def _patch_wildcard(self, module: Any, entries: list[Entry]) -> None:
        from ._wrap import guard_object, is_guard

        entry = resolver(entries)()
        if entry is None or not (entry.tier.preview or entry.deprecated):
            return
        mod_name = module.__name__
        public = getattr(module, "__all__", None)
        for attr, value in list(vars(module).items()):
            if attr.startswith("_") or (public is not None and attr not in public):
                continue
            if not (isinstance(value, type) or callable(value)) or type(value).__name__ == "module":
                continue
            if getattr(value, "__module__", None) != mod_name or is_guard(value):
                continue
            if id(value) in self.guards:
                continue
            it = self.item_for(entry, name=f"{mod_name}.{attr}")
            guard = guard_object(value, it, module_level=True)
            self._add_guard(value, guard, mod_name.partition(".")[0])
            if guard is not value:
                self._set(module, attr, value, guard)


def _lookup(owner: Any, attr: str) -> Any:
    """``getattr(owner, attr)``, or ``_MISSING``: a lazy attribute whose import fails
    (an optional dependency that is not installed) is absent, not an error of the guard."""
    try:
        return getattr(owner, attr, _MISSING)
    except Exception as exc:
        debug(f"{attr!r} of {owner!r} cannot be read ({type(exc).__name__}: {exc}); skipped")
        return _MISSING


def _find_real_spec(fullname: str, path: Any, target: Any, skip: Any) -> Any:
    """The spec the other finders give ``fullname`` (what the import system would use).

    Imports nothing: the parent's ``__path__`` comes from the import system. wrapt's
    post-import finder is skipped (it would call ``importlib.util.find_spec``, which can
    deadlock under the import lock); wrapt's hooks still run after the module loads.
    """
    for finder in list(sys.meta_path):
        if finder is skip or type(finder).__name__ == "ImportHookFinder":
            continue
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        spec = find(fullname, path, target)
        if spec is not None:
            return spec
    return None


class _GuardedLoader:
    """Wraps a module's real loader: decide before the body runs, patch after it ran.

    The module only ever sees its real loader (``__loader__``, ``__spec__.loader``).
    """

    def __init__(self, loader: Any, hook: Hook) -> None:
        self.loader = loader
        self.hook = hook

    def create_module(self, spec: Any) -> Any:
        create = getattr(self.loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: Any) -> None:
        loader = self.loader
        try:
            module.__loader__ = loader
            if getattr(module.__spec__, "loader", None) is self:
                module.__spec__.loader = loader
        except AttributeError:
            pass
        hook = self.hook
        name: str = module.__name__
        top = name.partition(".")[0]
        if hook.active:
            hook.before_exec(name)
        is_top = name == top
        if is_top:
            hook._importing.add(top)
        try:
            loader.exec_module(module)
        finally:
            if is_top:
                hook._importing.discard(top)
        hook.after_exec(module)
        wrapt = sys.modules.get("wrapt")
        notify = getattr(wrapt, "notify_module_loaded", None)
        if notify is not None:
            notify(module)  # post-import hooks other libraries registered with wrapt

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)

    def __repr__(self) -> str:
        return f"<neuron_guard loader for {self.loader!r}>"


def _argument_firer(it: Item, entry: Entry, func: Any, arg: str) -> Callable[[Any], None]:
    default = _default_of(func, arg)
    values = entry.values
    cell = it.new_cell()
    use = runtime.use

    def fire(value: Any) -> None:
        if values is not None:
            if not _value_in(value, values):
                return
        elif default is not _MISSING and _same(value, default):
            return
        v = cell.cell_contents
        if v is None:
            use(it, cell, depth=4)
        else:
            cell.cell_contents = v + 1

    return fire


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a is b or a == b)
    except Exception:
        return False


def _value_in(value: Any, values: tuple[str, ...]) -> bool:
    text = str(value)
    if text in values:
        return True
    low = text.lower()
    return any(low == v.lower() for v in values)


def _init_of(cls: Any) -> Any:
    return cls.__init__


def _signature(func: Any) -> Any:
    import inspect

    target = _init_of(func) if isinstance(func, type) else func
    target = getattr(target, "__func__", target)
    try:
        return inspect.signature(target)
    except (TypeError, ValueError):
        return None


def _default_of(func: Any, arg: str) -> Any:
    sig = _signature(func)
    if sig is None or arg not in sig.parameters:
        return _MISSING
    default = sig.parameters[arg].default
    return _MISSING if default is sig.empty else default


def _positions(func: Any, names: list[str]) -> dict[str, int]:
    sig = _signature(func)
    if sig is None:
        return {}
    out = {}
    for i, (pname, p) in enumerate(sig.parameters.items()):
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and pname in names:
            out[pname] = i
    return out


def _with_argument_checks(
    inner: Any, original: Any, checks: list[tuple[str, Callable[[Any], None]]]
) -> Any:
    """Wrap ``inner`` so each check sees the value its argument was given in a call."""
    from ._wrap import set_class_attr, update_wrapper

    if isinstance(original, (staticmethod, classmethod)):
        func = _with_argument_checks(inner.__func__, original.__func__, checks)
        return type(original)(func)
    if isinstance(original, type):
        init = inner.__dict__.get("__init__") or _init_of(original)
        raw_init = original.__dict__.get("__init__", _init_of(original))
        guarded = _with_argument_checks(init, raw_init, checks)
        set_class_attr(original, "__init__", guarded)
        return original
    positions = _positions(original, [a for a, _ in checks])
    table = tuple((arg, positions.get(arg), fn) for arg, fn in checks)

    def guard(*args: Any, **kwargs: Any) -> Any:
        for arg, pos, fn in table:
            if not arg:
                fn(None)
            elif arg in kwargs:
                fn(kwargs[arg])
            elif pos is not None and len(args) > pos:
                fn(args[pos])
        return inner(*args, **kwargs)

    update_wrapper(guard, original)
    guard.__wrapped__ = original  # type: ignore[attr-defined]
    return guard


_current: Hook | None = None


def current() -> Hook | None:
    """The installed hook, if any."""
    return _current


class _Finder:
    """The ``sys.meta_path`` entry: one set look-up for modules we do not guard."""

    def __init__(self, hook: Hook) -> None:
        self.hook = hook
        self.tops = hook.tops
        self._local: set[int] = set()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname.partition(".")[0] not in self.tops:
            return None
        hook = self.hook
        me = _thread.get_ident()
        if me in self._local or not hook.active:
            return None
        self._local.add(me)
        try:
            hook.build()
            if not hook.wants(fullname):
                return None
            spec = _find_real_spec(fullname, path, target, self)
        finally:
            self._local.discard(me)
        if spec is None:
            return None  # not installed: the usual ModuleNotFoundError, no warning
        loader = spec.loader
        if loader is not None and hasattr(loader, "exec_module"):
            spec.loader = _GuardedLoader(loader, hook)
        return spec

    def invalidate_caches(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"<neuron_guard finder for {sorted(self.tops)!r}>"


def install(settings: Settings) -> Callable[[], None]:
    """Load the effective table and install the hook; returns the undo function."""
    global _current
    table = load_table(settings)
    hook = Hook(table)
    from . import _environ

    _environ.install(hook, settings)
    _current = hook
    hook.start()

    def undo() -> None:
        global _current
        hook.stop()
        _environ.uninstall()
        if _current is hook:
            _current = None

    return undo
