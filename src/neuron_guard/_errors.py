"""The warnings and errors of neuron_guard's public contract.

Every class here is re-exported from :mod:`neuron_guard`; this module imports nothing
of ours so that every other module can import it.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, ClassVar

__all__ = [
    "AlphaWarning",
    "BetaWarning",
    "ConfigError",
    "NeuronDeprecationWarning",
    "PreviewError",
    "PreviewImportError",
    "PreviewWarning",
]


class PreviewWarning(UserWarning):
    """A preview (alpha or beta) item was used: the base of the two below."""

    slug: ClassVar[str] = "preview-warning"


class AlphaWarning(PreviewWarning):
    """An alpha item was used: major changes may happen, no backward compatibility."""

    slug: ClassVar[str] = "alpha-warning"


class BetaWarning(PreviewWarning):
    """A beta item was used: minor changes may happen, no backward compatibility."""

    slug: ClassVar[str] = "beta-warning"


class NeuronDeprecationWarning(FutureWarning):
    """A deprecated item (of any tier) was used.

    A :class:`FutureWarning`, the category Python shows end users by default.
    """

    slug: ClassVar[str] = "deprecated"


class _GuardError(Exception):
    """Shared base: a stable short code (``slug``) for docs and the CLI."""

    slug: ClassVar[str] = "error"


class PreviewError(_GuardError, RuntimeError):
    """A preview item that is not allowed was used in strict mode (raised before it runs).

    ``kind`` and ``tier`` compare equal to their lower-case names (``"api"``, ``"beta"``).
    ``explanation`` says what the tier means for the kind; ``remedy`` is the exact opt-in.
    Instances pickle, so they cross process boundaries.
    """

    slug = "preview"

    def __init__(
        self,
        message: str = "",
        *,
        kind: Any = None,
        name: str | None = None,
        tier: Any = None,
        explanation: str = "",
        remedy: str = "",
        trigger: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name
        self.tier = tier
        self.explanation = explanation
        self.remedy = remedy
        self.trigger = trigger

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, self.__dict__.copy()))

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class PreviewImportError(PreviewError, ImportError):
    """A preview package that is not allowed was imported in strict mode.

    An :class:`ImportError`, so ``try: import x except ImportError:`` fallbacks keep
    working; ``.name`` is the module, as for any ImportError.
    """

    slug = "preview-import"


class ConfigError(_GuardError, ValueError):
    """Bad configuration: mode, allow pattern, table, or a call that the lock refuses.

    ``source`` is the file or variable it came from, ``entry`` the table entry, ``key`` the
    offending key and ``value`` the offending value, where they apply.
    """

    slug = "config"

    def __init__(
        self,
        message: str = "",
        *,
        source: str | None = None,
        entry: str | None = None,
        key: str | None = None,
        value: Any = None,
    ) -> None:
        super().__init__(message)
        self.source = source
        self.entry = entry
        self.key = key
        self.value = value

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, self.__dict__.copy()))


def _rebuild(
    cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]
) -> BaseException:
    exc = cls(*args)
    exc.__dict__.update(state)
    return exc


for _cls in (
    PreviewWarning,
    AlphaWarning,
    BetaWarning,
    NeuronDeprecationWarning,
    PreviewError,
    PreviewImportError,
    ConfigError,
):
    _cls.__module__ = "neuron_guard"
del _cls
