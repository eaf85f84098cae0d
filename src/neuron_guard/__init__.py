"""neuron_guard: enforce the AWS Neuron SDK's Alpha/Beta/Stable classification at run time.

``import neuron_guard`` activates the guard (warn mode unless ``NEURON_GUARD`` says
otherwise); ``NEURON_GUARD=strict`` makes preview items raise unless opted in; library
authors classify their own APIs with ``@tier("beta")``.

PYTEST_DONT_REWRITE: the start-up file can import this package before pytest starts, so
pytest (which marks the packages of its plugins for assertion rewriting) must leave it be.
"""

from __future__ import annotations

from ._activate import Installation, allow, configure, events, install
from ._config import Settings
from ._errors import (
    AlphaWarning,
    BetaWarning,
    ConfigError,
    NeuronDeprecationWarning,
    PreviewError,
    PreviewImportError,
    PreviewWarning,
)
from ._types import Event, Kind, Mode, Tier

__all__ = [
    "AlphaWarning",
    "BetaWarning",
    "ConfigError",
    "Event",
    "Installation",
    "Kind",
    "Mode",
    "NeuronDeprecationWarning",
    "PreviewError",
    "PreviewImportError",
    "PreviewWarning",
    "Settings",
    "Tier",
    "__version__",
    "allow",
    "configure",
    "events",
    "install",
    "tier",
]

for _cls in (Installation, Settings, Event, Kind, Mode, Tier, allow):
    _cls.__module__ = "neuron_guard"
del _cls


def __getattr__(name: str) -> Any:
    if name == "tier":  # imported on first use: start-up stays cheap
        from ._wrap import tier

        globals()["tier"] = tier
        return tier
    if name == "__version__":
        from ._version import __version__

        return __version__
    msg = f"module 'neuron_guard' has no attribute {name!r}"
    raise AttributeError(msg)


from ._activate import install_at_import as _install_at_import  # noqa: E402

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ._wrap import tier

_install_at_import()
