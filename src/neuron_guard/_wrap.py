"""``@tier(...)`` and the guards it (and the import hook) put around objects.

The steady state of a guard is one ``try: n += 1`` on a closure cell: the slow path in
:mod:`neuron_guard._state` runs only while the counter is ``None``.
"""

from __future__ import annotations

import sys

from ._errors import ConfigError
from ._policy import ItemInfo
from ._state import Item, runtime
from ._types import Kind, Mode, Tier

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, TypeVar

    T = TypeVar("T")

__all__ = ["guard_callable", "guard_class", "guard_object", "is_guard", "set_class_attr", "tier"]

_CO_COROUTINE = 0x80
_CO_GENERATOR = 0x20
_CO_ASYNC_GENERATOR = 0x200
#: Marks the objects we made, so nothing is ever wrapped twice.
_GUARD_ATTR = "__neuron_guard_item__"


def is_guard(obj: Any) -> bool:
    """True when ``obj`` is a guard made by neuron_guard."""
    try:
        return isinstance(obj.__dict__.get(_GUARD_ATTR), Item)
    except AttributeError:
        return False


_WRAPPER_ASSIGNMENTS = ("__module__", "__name__", "__qualname__", "__doc__", "__annotations__")


def update_wrapper(guard: Any, func: Any) -> None:
    """:func:`functools.update_wrapper`, without importing functools at start-up."""
    for attr in _WRAPPER_ASSIGNMENTS:
        try:
            value = getattr(func, attr)
        except AttributeError:
            continue
        try:
            setattr(guard, attr, value)
        except (AttributeError, TypeError):
            pass
    try:
        guard.__dict__.update(getattr(func, "__dict__", {}))
    except (AttributeError, TypeError):
        pass
    guard.__wrapped__ = func


def _finish(guard: Any, func: Any, it: Item) -> Any:
    """Copy ``func``'s metadata onto ``guard`` and register its counter cell with ``it``.

    Returns the cell, which the guard's slow path hands to :meth:`Runtime.use`.
    """
    update_wrapper(guard, func)
    cell = guard.__closure__[guard.__code__.co_freevars.index("n")]
    with runtime.lock:
        it.cells.append(cell)
    setattr(guard, _GUARD_ATTR, it)
    return cell


def _function_guard(func: Callable[..., Any], it: Item) -> Callable[..., Any]:
    n: int | None = None
    use = runtime.use

    def guard(*args: Any, **kwargs: Any) -> Any:
        nonlocal n
        try:
            n += 1  # type: ignore[operator]
        except TypeError:
            __tracebackhide__ = True  # pytest shows the user's frame, not ours
            use(it, cell)
        return func(*args, **kwargs)

    cell: Any = _finish(guard, func, it)
    return guard


def _coroutine_guard(func: Callable[..., Any], it: Item) -> Callable[..., Any]:
    n: int | None = None
    use = runtime.use

    async def guard(*args: Any, **kwargs: Any) -> Any:
        nonlocal n
        try:
            n += 1  # type: ignore[operator]
        except TypeError:
            __tracebackhide__ = True  # pytest shows the user's frame, not ours
            use(it, cell)
        return await func(*args, **kwargs)

    cell: Any = _finish(guard, func, it)
    return guard


def _generator_guard(func: Callable[..., Any], it: Item) -> Callable[..., Any]:
    n: int | None = None
    use = runtime.use

    def guard(*args: Any, **kwargs: Any) -> Any:
        nonlocal n
        try:
            n += 1  # type: ignore[operator]
        except TypeError:
            __tracebackhide__ = True  # pytest shows the user's frame, not ours
            use(it, cell)
        return (yield from func(*args, **kwargs))

    cell: Any = _finish(guard, func, it)
    return guard


def _async_generator_guard(func: Callable[..., Any], it: Item) -> Callable[..., Any]:
    n: int | None = None
    use = runtime.use

    async def guard(*args: Any, **kwargs: Any) -> Any:
        nonlocal n
        try:
            n += 1  # type: ignore[operator]
        except TypeError:
            __tracebackhide__ = True  # pytest shows the user's frame, not ours
            use(it, cell)
        agen = func(*args, **kwargs)
        try:
            value = await agen.__anext__()
        except StopAsyncIteration:
            return
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                await agen.aclose()
                raise
            except BaseException as exc:
                try:
                    value = await agen.athrow(exc)
                except StopAsyncIteration:
                    return
            else:
                try:
                    value = await agen.asend(sent)
                except StopAsyncIteration:
                    return

    cell: Any = _finish(guard, func, it)
    return guard


def guard_callable(func: Callable[..., Any], it: Item) -> Callable[..., Any]:
    """A guard around a plain, coroutine, generator or async generator function.

    It keeps the function's coroutine/generator nature, its ``__name__``,
    ``__qualname__``, ``__doc__``, ``__module__`` and (through ``__wrapped__``) signature.
    """
    code = getattr(func, "__code__", None)
    flags = code.co_flags if code is not None else 0
    if flags & _CO_ASYNC_GENERATOR:
        return _async_generator_guard(func, it)
    if flags & _CO_COROUTINE:
        return _coroutine_guard(func, it)
    if flags & _CO_GENERATOR:
        return _generator_guard(func, it)
    return _function_guard(func, it)


def guard_class(cls: type, it: Item) -> type:
    """Guard instantiation of ``cls`` in place: the class stays the same object.

    An immutable (C-implemented) type cannot be changed: it gets a wrapt proxy instead,
    which ``isinstance`` and ``issubclass`` see through.

    ``isinstance``, ``issubclass``, subclassing and pickling keep working; subclasses
    are guarded too, through the ``__init__`` they inherit or call with ``super()``.
    """
    own = cls.__dict__.get("__init__")
    if own is not None and is_guard(own):
        return cls
    new_init = _function_guard(own, it) if own is not None else _inherited_init_guard(cls, it)
    try:
        set_class_attr(cls, "__init__", new_init)
    except TypeError:
        # an immutable (C) type: guard it through wrapt's transparent proxy instead
        proxy: type = _opaque_guard(cls, it)
        return proxy
    set_class_attr(cls, _GUARD_ATTR, it)
    return cls


def set_class_attr(cls: type, name: str, value: Any) -> None:
    """Set a class attribute past a metaclass ``__setattr__`` written in Python.

    C metaclasses (ctypes structures, pybind11 classes) refuse ``type.__setattr__``
    ("can't apply this __setattr__"): they get a plain ``setattr``.
    """
    try:
        type.__setattr__(cls, name, value)
    except TypeError:
        setattr(cls, name, value)


def _inherited_init_guard(cls: type, it: Item) -> Callable[..., Any]:
    parent = None
    for base in cls.__mro__[1:]:
        if "__init__" in base.__dict__:
            parent = base.__dict__["__init__"]
            break
    n: int | None = None
    use = runtime.use
    klass: Any = cls
    takes_no_args = parent is object.__init__ and klass.__new__ is object.__new__
    if takes_no_args:

        def __init__(self: Any) -> None:
            nonlocal n
            try:
                n += 1  # type: ignore[operator]
            except TypeError:
                __tracebackhide__ = True
                use(it, cell)

    else:

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:  # type: ignore[misc]
            nonlocal n
            try:
                n += 1  # type: ignore[operator]
            except TypeError:
                __tracebackhide__ = True
                use(it, cell)
            sup = super(klass, self).__init__
            if getattr(sup, "__objclass__", None) is object:  # object.__init__ takes no arguments
                sup()
            else:
                sup(*args, **kwargs)

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    __init__.__module__ = cls.__module__
    if parent is not None and parent is not object.__init__:
        __init__.__wrapped__ = parent  # type: ignore[attr-defined]
    cell: Any = __init__.__closure__[__init__.__code__.co_freevars.index("n")]  # type: ignore[index]
    with runtime.lock:
        it.cells.append(cell)
    setattr(__init__, _GUARD_ATTR, it)
    return __init__


def _default_name(obj: Any) -> str:
    target = obj
    for attr in ("__func__", "fget", "func"):
        inner = getattr(target, attr, None)
        if inner is not None and not isinstance(target, type):
            target = inner
            break
    module = getattr(target, "__module__", None) or "?"
    qual = (
        getattr(target, "__qualname__", None) or getattr(target, "__name__", None) or repr(target)
    )
    return f"{module}.{qual}"


_BUILTIN_FUNCTION = type(len)


def guard_object(obj: Any, it: Item, *, module_level: bool = False) -> Any:
    """Guard any supported object with item ``it`` (used by ``@tier`` and the import hook).

    ``module_level``: the guard will be a module attribute, never a class attribute, so a
    C function can be guarded by a plain closure (a class attribute would bind it as a
    method; there, and for callable objects, wrapt's proxy keeps it transparent).
    """
    if isinstance(obj, type):
        return guard_class(obj, it)
    if isinstance(obj, (staticmethod, classmethod)):
        return type(obj)(guard_object(obj.__func__, it))
    if isinstance(obj, property):
        return property(
            None if obj.fget is None else guard_object(obj.fget, it),
            None if obj.fset is None else guard_object(obj.fset, it),
            None if obj.fdel is None else guard_object(obj.fdel, it),
            obj.__doc__,
        )
    functools = sys.modules.get("functools")
    if functools is not None and isinstance(obj, functools.cached_property):
        return functools.cached_property(guard_object(obj.func, it))
    if is_guard(obj):
        return obj
    if hasattr(obj, "__code__"):
        return guard_callable(obj, it)
    if module_level and type(obj) is _BUILTIN_FUNCTION:
        return _function_guard(obj, it)
    if callable(obj):
        return _opaque_guard(obj, it)
    msg = f"@tier cannot guard {obj!r}: it is neither callable, a class nor a property"
    raise TypeError(msg)


def _opaque_guard(obj: Any, it: Item) -> Any:
    """C-implemented callables and callable objects: wrapt keeps them transparent."""
    import wrapt

    cell = it.new_cell()
    use = runtime.use

    def wrapper(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        v = cell.cell_contents
        if v is None:
            use(it, cell)
        else:
            cell.cell_contents = v + 1
        return wrapped(*args, **kwargs)

    proxy = wrapt.FunctionWrapper(obj, wrapper)
    try:
        setattr(proxy, _GUARD_ATTR, it)
    except (AttributeError, TypeError):
        pass
    return proxy


def tier(
    t: str | Tier,
    *,
    name: str | None = None,
    replacement: str | None = None,
    reason: str | None = None,
) -> Callable[[T], T]:
    """Classify the decorated function, method, property or class as ``t``.

    ``@tier("beta")`` warns on first use (warn mode) or raises :class:`PreviewError`
    before the body runs (strict mode) unless the item is allowed. ``@tier("stable")``
    returns the object itself. ``name`` defaults to ``module.qualname``; ``replacement``
    and ``reason`` go into every message. An unknown tier is a :class:`ConfigError` here.

    Added in 0.1.0.
    """
    level = Tier.parse(t, where="@tier(...)")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        msg = f"@tier(name=...) must be a non-empty string, not {name!r}"
        raise ConfigError(msg, key="name", value=name)

    def decorate(obj: T) -> T:
        if level is Tier.STABLE or runtime.settings.mode is Mode.OFF:
            return obj
        info = ItemInfo(
            Kind.API,
            name or _default_name(obj),
            level,
            replacement=replacement,
            reason=reason,
            source="@tier decorator",
        )
        return guard_object(obj, runtime.item(info))  # type: ignore[no-any-return]

    return decorate
