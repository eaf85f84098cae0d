"""Placeholder: per-process JSON Lines reports land with the CLI issue."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

    from ._config import Settings


def install(settings: Settings) -> Callable[[], None] | None:
    """Start writing this process's report when ``settings.report`` names a directory."""
    return None
