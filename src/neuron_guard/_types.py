"""Tiers, modes, kinds, what each tier means for each kind, and event records.

Tiers, modes and kinds are ``str`` subclasses with one canonical instance per value: they
compare equal to (and print as) their lower-case names, as a ``StrEnum`` would, without
the cost of importing :mod:`enum` at start-up.
"""

from __future__ import annotations

from ._errors import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, ClassVar

__all__ = ["Event", "Kind", "Mode", "Tier", "meaning"]


class _Name(str):
    """A closed set of lower-case names; ``Cls("x")`` returns the canonical member."""

    __slots__ = ()
    _members: ClassVar[dict[str, Any]]
    _order: ClassVar[tuple[str, ...]]

    def __new__(cls, value: object) -> Any:
        try:
            return cls._members[value]  # type: ignore[index]
        except (KeyError, TypeError, AttributeError):
            pass
        valid = ", ".join(repr(v) for v in cls._order)
        msg = f"{value!r} is not a valid {cls.__name__}; valid values are {valid}"
        raise ValueError(msg)

    @classmethod
    def _define(cls, *values: str) -> None:
        cls._order = values
        cls._members = {}
        for v in values:
            member = str.__new__(cls, v)
            cls._members[v] = member
            setattr(cls, v.upper(), member)

    @classmethod
    def members(cls) -> tuple[Any, ...]:
        return tuple(cls._members[v] for v in cls._order)

    @property
    def value(self) -> str:
        return str.__str__(self)

    @property
    def rank(self) -> int:
        return self._order.index(str.__str__(self))

    def __str__(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self.value.upper()}: {self.value!r}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.value,))

    __hash__ = str.__hash__


class Tier(_Name):
    """``alpha < beta < stable``; alpha and beta are *preview* tiers."""

    __slots__ = ()
    ALPHA: ClassVar[Tier]
    BETA: ClassVar[Tier]
    STABLE: ClassVar[Tier]

    @property
    def preview(self) -> bool:
        return self is not Tier.STABLE

    def _cmp(self, other: object) -> int | None:
        if isinstance(other, Tier):
            return self.rank - other.rank
        return None

    def __lt__(self, other: object) -> bool:
        d = self._cmp(other)
        return NotImplemented if d is None else d < 0

    def __le__(self, other: object) -> bool:
        d = self._cmp(other)
        return NotImplemented if d is None else d <= 0

    def __gt__(self, other: object) -> bool:
        d = self._cmp(other)
        return NotImplemented if d is None else d > 0

    def __ge__(self, other: object) -> bool:
        d = self._cmp(other)
        return NotImplemented if d is None else d >= 0

    __hash__ = _Name.__hash__

    @classmethod
    def parse(cls, value: object, *, where: str = "tier") -> Tier:
        """Return the tier named by ``value`` (case-insensitive) or raise :class:`ConfigError`."""
        if isinstance(value, Tier):
            return value
        if isinstance(value, str):
            member = cls._members.get(value.strip().lower())
            if member is not None:
                return member  # type: ignore[no-any-return]
        msg = f"unknown tier {value!r} in {where}; valid tiers are 'alpha', 'beta', 'stable'"
        raise ConfigError(msg, key="tier", value=value)


class Mode(_Name):
    """What the guard does with a preview item: nothing, warn once, or raise."""

    __slots__ = ()
    OFF: ClassVar[Mode]
    WARN: ClassVar[Mode]
    STRICT: ClassVar[Mode]

    @classmethod
    def parse(cls, value: object, *, where: str = "NEURON_GUARD") -> Mode:
        if isinstance(value, Mode):
            return value
        if isinstance(value, str):
            member = cls._members.get(value.strip().lower())
            if member is not None:
                return member  # type: ignore[no-any-return]
        msg = (
            f"invalid mode {value!r} in {where}; valid values are 'off', 'warn', 'strict' "
            "(unset means 'warn')"
        )
        raise ConfigError(msg, source=where, key="mode", value=value)


class Kind(_Name):
    """The kinds of item the Neuron classification covers."""

    __slots__ = ()
    API: ClassVar[Kind]
    ENV: ClassVar[Kind]
    FLAG: ClassVar[Kind]
    PACKAGE: ClassVar[Kind]
    FEATURE: ClassVar[Kind]
    MODEL: ClassVar[Kind]

    @property
    def label(self) -> str:
        return _KIND_LABEL[self.value]


Tier._define("alpha", "beta", "stable")
Mode._define("off", "warn", "strict")
Kind._define("api", "env", "flag", "package", "feature", "model")

_KIND_LABEL = {
    "api": "API",
    "env": "environment variable",
    "flag": "flag",
    "package": "package",
    "feature": "feature",
    "model": "model class",
}

_API = {
    "alpha": "API contract: major changes may happen; backward compatibility: no",
    "beta": "API contract: minor changes may happen; backward compatibility: no",
    "stable": (
        "API contract: incremental changes without breaking the contract; backward "
        "compatibility: yes (breaking changes announced at least one month ahead)"
    ),
}
_PRODUCT = {
    "alpha": "testing: basic; {what}: basic; performance: not stated",
    "beta": "testing: basic; {what}: minimum viable product (MVP); performance: not stated",
    "stable": (
        "testing: standard product testing; {what}: incremental additions or changes in "
        "new releases; performance: tested"
    ),
}
_MODEL = {
    "alpha": "accuracy/convergence: not validated; throughput/latency: not stated",
    "beta": "accuracy/convergence: validated; throughput/latency: not stated",
    "stable": "accuracy/convergence: validated; throughput/latency: tested",
}

_MEANING: dict[str, dict[str, str]] = {
    "api": _API,
    "env": _API,
    "flag": _API,
    "package": {t: m.format(what="features") for t, m in _PRODUCT.items()},
    "feature": {t: m.format(what="functionality") for t, m in _PRODUCT.items()},
    "model": _MODEL,
}


def meaning(kind: str, tier: str) -> str:
    """What ``tier`` means for an item of ``kind``, per the Neuron classification."""
    text = _MEANING[str(kind)][str(tier)]
    if str(tier) != "stable":
        text += "; not for production use"
    return text


class Event:
    """One kind of use of one preview or deprecated item in this process.

    ``count`` is how many times it was used with this ``action`` (``"warn"``, ``"raise"``,
    ``"allow"``, ``"deprecated"``, ``"removed"``, or ``"refused"`` for a call the lock
    refused); ``file``/``line`` are the first caller's. Compares and unpacks like a tuple.
    """

    __slots__ = ("action", "count", "file", "kind", "line", "name", "pid", "tier", "trigger")
    _fields = ("kind", "name", "tier", "action", "file", "line", "count", "pid", "trigger")

    def __init__(
        self,
        kind: str,
        name: str,
        tier: str | None,
        action: str,
        file: str | None,
        line: int | None,
        count: int,
        pid: int,
        trigger: str | None = None,
    ) -> None:
        self.kind = kind
        self.name = name
        self.tier = tier
        self.action = action
        self.file = file
        self.line = line
        self.count = count
        self.pid = pid
        self.trigger = trigger

    def _astuple(self) -> tuple[Any, ...]:
        return tuple(getattr(self, f) for f in self._fields)

    def _asdict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self._fields}

    def __iter__(self) -> Iterator[Any]:
        return iter(self._astuple())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Event):
            return self._astuple() == other._astuple()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._astuple())

    def __repr__(self) -> str:
        inner = ", ".join(f"{f}={getattr(self, f)!r}" for f in self._fields)
        return f"Event({inner})"
