"""Placeholder: the import hook lands with the table engine."""

from __future__ import annotations


TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

from ._config import Settings


def install(settings: Settings) -> Callable[[], None]:
    return lambda: None
