"""The import hook: guard third-party modules that nobody decorated, driven by the table.

Two pieces:

* :class:`_Finder`, a small ``sys.meta_path`` finder. For a module outside every
  guarded top-level package it answers ``None`` after one set look-up. For a preview
  *package* it decides before any of the package's code runs (strict: raises
  :class:`PreviewImportError`). For a guarded top-level package it arms wrapt's
  post-import hooks, lazily, so processes that never import one never import wrapt.
* wrapt post-import hooks that, once a module has run, replace the table's APIs with
  guards, and the same objects wherever the package re-exports them.
"""

from __future__ import annotations

import _thread
import sys

from ._policy import ItemInfo
from ._state import Item, runtime
from ._table import Entry, Table, group, load_table, removed_now, resolver
from ._types import Kind
from ._wrap import guard_object, is_guard, set_class_attr

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
        self.active = True
        self.notes: list[str] = []
        self.patched: list[tuple[Any, str, Any, Any]] = []  # (owner, attr, original, guard)
        self.guards: dict[int, tuple[Any, Any]] = {}  # id(original) -> (original, guard)
        self.targets: dict[str, _Target] = {}
        self.wildcards: list[tuple[str, list[Entry]]] = []
        self.packages: dict[str, list[Entry]] = {}
        self.arg_inspectors: dict[str, list[tuple[str, Callable[[Any], None]]]] = {}
        self.module_listeners: list[Callable[[str], None]] = []
        self.armed = False
        self.built = False
        self.hooked: set[str] = set()
        #: top-level modules we watch (from the table's index: nothing is built yet)
        self.tops: set[str] = set(table.tops())
        self.api_tops: set[str] = set()
        self._package_resolvers: dict[str, Callable[[], Entry | None]] = {}
        self._finder = _Finder(self)

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
        for entries in group(self.table.of_kind("package")).values():
            self.packages[entries[0].import_name] = entries
        self.api_tops |= {n.partition(".")[0] for n in self.targets} | {
            w.partition(".")[0] for w, _ in self.wildcards
        }
        self.tops |= self.api_tops | {m.partition(".")[0] for m in self.packages}
        self._package_resolvers = {m: resolver(es) for m, es in self.packages.items()}

    # -- arming -----------------------------------------------------------------

    def add_arg_inspector(self, target: str, argument: str, fn: Callable[[Any], None]) -> None:
        """Call ``fn(value)`` whenever ``target`` is called with ``argument`` (flag carriers)."""
        self.arg_inspectors.setdefault(target, []).append((argument, fn))
        top = target.partition(".")[0]
        self.api_tops.add(top)
        self.tops.add(top)
        if self.built:
            self.targets.setdefault(target, _Target(target)).args.setdefault(argument, [])

    def add_call_listener(self, target: str, fn: Callable[[], None]) -> None:
        """Call ``fn()`` before every call of ``target`` (feature and model triggers)."""

        def on_call(_value: Any) -> None:
            fn()

        self.add_arg_inspector(target, "", on_call)  # "": called whatever the arguments

    def start(self) -> None:
        sys.meta_path.insert(0, self._finder)
        if any(top in sys.modules for top in self.tops):
            # modules imported before the guard: patch them at once
            self.build()
            if any(top in sys.modules for top in self.api_tops):
                self.arm()

    def stop(self) -> None:
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

    def arm(self) -> None:
        """Import wrapt and register post-import hooks (once, outside every lock)."""
        if self.armed:
            return
        import inspect  # noqa: F401 - imported here, never while a lock is held

        import wrapt

        self.build()
        self.armed = True
        names: set[str] = set()
        for name in list(self.targets) + [w for w, _ in self.wildcards]:
            parts = name.split(".")
            names.update(".".join(parts[:i]) for i in range(1, len(parts)))
        names.update(w for w, _ in self.wildcards)
        for name in sorted(names):
            self._hook_module(name, wrapt)
        for mod_name in [m for m in list(sys.modules) if m.partition(".")[0] in self.api_tops]:
            self._hook_module(mod_name, wrapt)
        # keep our finder first: it registers hooks for submodules before wrapt's looks
        try:
            sys.meta_path.remove(self._finder)
        except ValueError:
            return
        sys.meta_path.insert(0, self._finder)

    def _hook_module(self, name: str, wrapt: Any) -> None:
        if name in self.hooked:
            return
        self.hooked.add(name)
        wrapt.register_post_import_hook(self._on_import, name)

    # -- the finder's side --------------------------------------------------------

    def before_import(self, fullname: str) -> None:
        self.build()
        top = fullname.partition(".")[0]
        for fn in self.module_listeners:
            try:
                fn(fullname)
            except Exception as exc:
                if type(exc).__name__ in ("PreviewError", "PreviewImportError"):
                    raise
                runtime.internal_error(f"module listener for {fullname}", exc)
        if top in self.api_tops:
            if not self.armed:
                self.arm()
            import wrapt

            self._hook_module(fullname, wrapt)
        if self.packages:
            self._check_package(fullname)

    def _check_package(self, fullname: str) -> None:
        from ._errors import PreviewImportError

        for module, get in self._package_resolvers.items():
            if fullname != module and not fullname.startswith(module + "."):
                continue
            entry = get()
            if entry is None or not (entry.tier.preview or entry.deprecated):
                continue
            if not _importable(fullname, self._finder):
                return
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

    def _on_import(self, module: Any) -> None:
        if not self.active:
            return
        try:
            with self.lock:
                self._patch_module(module)
        except Exception as exc:
            runtime.internal_error(f"patching {getattr(module, '__name__', module)!r}", exc)

    def _patch_module(self, module: Any) -> None:
        mod_name: str = getattr(module, "__name__", "")
        prefix = mod_name + "."
        new: list[Any] = []
        for name, target in self.targets.items():
            if not name.startswith(prefix):
                continue
            path = name[len(prefix) :].split(".")
            if _is_loaded_module(prefix + path[0]) and len(path) > 1:
                continue  # the submodule's own hook (deeper prefix) handles it
            done = self._patch_target(module, path, target)
            if done is not None:
                new.append(done)
        for base, entries in self.wildcards:
            if mod_name == base or mod_name.startswith(base + "."):
                new.extend(self._patch_wildcard(module, base, entries))
        # re-exports: the same objects anywhere in the same top-level package
        if new:
            top = mod_name.partition(".")[0]
            for other_name, other in list(sys.modules.items()):
                if other is not None and other_name.partition(".")[0] == top:
                    self._replace_reexports(other)
        else:
            self._replace_reexports(module)

    def _replace_reexports(self, module: Any) -> None:
        try:
            namespace = vars(module)
        except TypeError:
            return
        if not self.guards:
            return
        for attr, value in list(namespace.items()):
            hit = self.guards.get(id(value))
            if hit is not None and hit[0] is value:
                self._set(module, attr, value, hit[1])

    def _set(self, owner: Any, attr: str, original: Any, guard: Any) -> None:
        if guard is original:
            return
        try:
            setattr(owner, attr, guard)
        except (AttributeError, TypeError) as exc:
            debug(f"cannot patch {attr!r} on {owner!r}: {exc}")
            return
        self.patched.append((owner, attr, original, guard))

    def _patch_target(self, module: Any, path: list[str], target: _Target) -> Any:
        owner: Any = module
        for part in path[:-1]:
            owner = _lookup(owner, part)
            if owner is _MISSING:
                debug(f"{target.name}: {part!r} not found in the installed version; skipped")
                return None
        attr = path[-1]
        raw = owner.__dict__.get(attr, _MISSING) if isinstance(owner, type) else _MISSING
        value = raw if raw is not _MISSING else _lookup(owner, attr)
        if value is _MISSING:
            debug(f"{target.name}: not found in the installed version; skipped")
            return None
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
        if whole is not None and (whole.tier.preview or whole.deprecated):
            guard = guard_object(value, self.item_for(whole))
        checks = self._arg_checks(target, value)
        if checks:
            guard = _with_argument_checks(guard, value, checks)
        if isinstance(value, type):
            new_init = value.__dict__.get("__init__", _MISSING)
            if new_init is old_init:
                return None
            # classes are guarded in place; remember their __init__ for uninstall
            self.patched.append((value, "__init__", old_init, new_init))
        elif guard is value:
            return None
        self.guards[id(value)] = (value, guard)
        self._set(owner, attr, value, guard)
        return value

    def _arg_checks(self, target: _Target, value: Any) -> list[tuple[str, Callable[[Any], None]]]:
        checks: list[tuple[str, Callable[[Any], None]]] = []
        for arg, entries in target.args.items():
            entry = resolver(entries)() if entries else None
            if entry is not None and (entry.tier.preview or entry.deprecated):
                checks.append((arg, _argument_firer(self.item_for(entry), entry, value, arg)))
        for arg, fn in self.arg_inspectors.get(target.name, ()):
            checks.append((arg, fn))
        return checks

    def _patch_wildcard(self, module: Any, base: str, entries: list[Entry]) -> list[Any]:
        entry = resolver(entries)()
        if entry is None or not (entry.tier.preview or entry.deprecated):
            return []
        out = []
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
            info = ItemInfo(
                Kind.API,
                f"{mod_name}.{attr}",
                entry.tier,
                replacement=entry.replacement,
                source=entry.source,
                deprecated=entry.deprecated,
                removed=entry.removed,
                removed_now=removed_now(entry),
            )
            guard = guard_object(value, runtime.item(info))
            self.guards[id(value)] = (value, guard)
            if guard is not value:
                self._set(module, attr, value, guard)
            out.append(value)
        return out


def _lookup(owner: Any, attr: str) -> Any:
    """``getattr(owner, attr)``, or ``_MISSING``: a lazy attribute whose import fails
    (an optional dependency that is not installed) is absent, not an error of the guard."""
    try:
        return getattr(owner, attr, _MISSING)
    except Exception as exc:
        debug(f"{attr!r} of {owner!r} cannot be read ({type(exc).__name__}: {exc}); skipped")
        return _MISSING


def _is_loaded_module(name: str) -> bool:
    return name in sys.modules


def _importable(fullname: str, skip: Any) -> bool:
    """Whether some other finder can find ``fullname`` (so we only warn for real imports)."""
    parent = fullname.rpartition(".")[0]
    path = None
    if parent:
        pkg = sys.modules.get(parent)
        path = getattr(pkg, "__path__", None)
        if pkg is None:
            return True  # the parent is being imported by this very statement
    for finder in list(sys.meta_path):
        if finder is skip or type(finder).__name__ == "ImportHookFinder":
            continue
        find = getattr(finder, "find_spec", None)
        if find is None:
            continue
        try:
            if find(fullname, path) is not None:
                return True
        except (ImportError, ValueError):
            continue
    return False


def _argument_firer(it: Item, entry: Entry, func: Any, arg: str) -> Callable[[Any], None]:
    default = _default_of(func, arg)
    values = entry.values
    from ._state import _Cell

    cell = _Cell()
    with runtime.lock:
        it.cells.append(cell)
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

    from ._wrap import update_wrapper

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
        self._busy = _thread.allocate_lock()
        self._local: set[int] = set()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname.partition(".")[0] not in self.tops:
            return
        me = _thread.get_ident()
        if me in self._local or not self.hook.active:
            return
        self._local.add(me)
        try:
            self.hook.before_import(fullname)
        finally:
            self._local.discard(me)
        return

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
