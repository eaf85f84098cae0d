"""Version shims, each imported only when first needed (start-up time matters)."""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["distribution_version", "entry_points", "load_toml"]


def load_toml(data: bytes) -> dict[str, Any]:
    """Parse TOML bytes with tomllib (3.11+) or tomli."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.9/3.10 only
        import tomli as tomllib
    return tomllib.loads(data.decode("utf-8"))


def toml_error() -> type[Exception]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    return tomllib.TOMLDecodeError


def _metadata() -> Any:
    if sys.version_info >= (3, 10):
        import importlib.metadata as md
    else:  # pragma: no cover
        import importlib_metadata as md
    return md


def distribution_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or None when it is not installed."""
    md = _metadata()
    try:
        return str(md.version(name))
    except md.PackageNotFoundError:
        return None


def entry_points(group: str) -> list[Any]:
    """Entry points of ``group`` (the 3.10+ selection API on every version)."""
    return list(_metadata().entry_points(group=group))
