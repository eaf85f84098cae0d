"""Placeholder: env vars, flags, features and model classes land with their issue."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._config import Settings
    from ._hook import Hook


def install(hook: Hook, settings: Settings) -> None:
    """Check the environment at start-up and register flag carriers with ``hook``."""


def uninstall() -> None:
    """Undo :func:`install` (an audit hook cannot be removed: it is made inert)."""
