"""Which Neuron SDK release is installed, inferred from the installed Neuron packages.

The embedded manifest (``data/sdk_manifest.csv``) lists, for every Neuron SDK release, the
package versions it shipped. An installed environment is matched against it by *membership*:
the releases consistent with an installed ``torch-neuronx 2.7.0.2.9.9145`` are the releases
whose manifest lists exactly that version. Ordering versions with ``>=`` would be wrong for
framework-prefixed packages (``<torch version>.<neuron version>``), since one SDK ships one
build per framework line and a newer SDK's build for an older framework sorts lower.

Nothing heavy is imported at module import: ``csv``, ``importlib.metadata`` and ``packaging``
are imported inside the functions that need them, on first use.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from packaging.version import Version

__all__ = [
    "SdkRelease",
    "infer_sdk_release",
    "installed_sdk_release",
    "sdk_releases",
]

#: Packages in the manifest that are not Neuron's own (installed by people who do not use
#: Neuron too). They count only when a Neuron package is installed as well.
_SUPPORTING = frozenset({"torch-xla", "islpy"})

#: Packages whose version is ``<framework x.y.z>.<neuron component version>``.
_FRAMEWORK_PREFIXED = frozenset(
    {
        "torch-neuronx",
        "torch-neuron",
        "jax-neuronx",
        "tensorflow-neuron",
        "tensorflow-neuronx",
        "tensorflow-model-server-neuron",
        "tensorflow-model-server-neuronx",
        "libtorch-neuronx-lite",
        "mx-neuron",
        "mxnet-neuron",
    }
)

_NAME_SEPARATORS = re.compile(r"[-_.]+")


def _canonical(name: str) -> str:
    """PEP 503 name normalisation (what ``packaging.utils.canonicalize_name`` does)."""
    return _NAME_SEPARATORS.sub("-", name).lower()


def _sdk_key(release: str) -> tuple[int, ...]:
    return tuple(int(part) for part in release.split("."))


@dataclass(frozen=True)
class SdkRelease:
    """The Neuron SDK release inferred from the installed Neuron packages."""

    version: str | None
    """The release, e.g. ``"2.25.0"``; when several fit, the newest of them; ``None`` when
    nothing Neuron is installed or nothing matches."""
    exact: bool
    """True when exactly one release matches every installed Neuron package."""
    candidates: tuple[str, ...]
    """Every release consistent with what is installed (the best ones when none is fully),
    oldest first."""
    packages: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """The installed Neuron packages used (canonical name -> version)."""
    reason: str = ""
    """One line saying how the release was decided, for ``doctor`` and ``explain``."""


class _Row(NamedTuple):
    sdk: str
    text: str  # the version as written in the manifest


class _Manifest(NamedTuple):
    releases: tuple[str, ...]  # oldest first
    rows: Mapping[str, tuple[_Row, ...]]  # canonical package name -> rows


@functools.lru_cache(maxsize=1)
def _manifest() -> _Manifest:
    import csv
    import io
    from importlib.resources import files

    text = (files("neuron_guard") / "data" / "sdk_manifest.csv").read_text(encoding="utf-8")
    by_package: dict[str, list[_Row]] = {}
    releases: set[str] = set()
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    at_sdk, at_package, at_version = (
        header.index(column) for column in ("sdk_version", "package", "package_version")
    )
    for record in reader:
        if not record:
            continue
        sdk = record[at_sdk].strip()
        releases.add(sdk)
        by_package.setdefault(_canonical(record[at_package].strip()), []).append(
            _Row(sdk, record[at_version].strip())
        )
    return _Manifest(
        releases=tuple(sorted(releases, key=_sdk_key)),
        rows=MappingProxyType({name: tuple(rows) for name, rows in by_package.items()}),
    )


def sdk_releases() -> tuple[str, ...]:
    """Every SDK release in the embedded manifest, oldest first."""
    return _manifest().releases


@functools.cache
def _parse(text: str) -> Version | None:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text)
    except InvalidVersion:
        return None


def _same(listed_text: str, installed_text: str, installed: Version | None) -> bool:
    """Whether an installed version is the one the manifest lists.

    PEP 440 equality (``2.21.18209`` is ``2.21.18209.0``); a local label on the installed
    version (a wheel built as ``0.24.0.1.1.0+e8242a9``) is ignored unless the manifest names
    one itself.
    """
    listed = _parse(listed_text)
    if listed is None or installed is None:
        return listed_text == installed_text
    if listed == installed:
        return True
    if installed.local is None or listed.local is not None:
        return False
    return _parse(installed.public) == listed


def _nearest(package: str, rows: tuple[_Row, ...], installed: Version | None) -> frozenset[str]:
    """Releases shipping the closest listed version at or below an unlisted one.

    Framework-prefixed versions are compared within their framework line when the manifest
    has that line, otherwise on the Neuron part after the framework prefix. Below everything
    listed: the releases shipping the oldest listed version.
    """
    from packaging.version import Version

    if installed is None:
        return frozenset()
    pairs: list[tuple[Version, str]] = []
    for row in rows:
        listed = _parse(row.text)
        if listed is not None:
            pairs.append((listed, row.sdk))
    probe = installed
    if package in _FRAMEWORK_PREFIXED:
        line = installed.release[:3]
        same_line = [(key, sdk) for key, sdk in pairs if key.release[:3] == line]
        if same_line:
            pairs = same_line
        else:

            def suffix(version: Version) -> Version:
                return Version(".".join(map(str, version.release[3:])) or "0")

            pairs = [(suffix(key), sdk) for key, sdk in pairs if len(key.release) > 3]
            probe = suffix(installed)
    if not pairs:
        return frozenset()
    below = [key for key, _ in pairs if key <= probe]
    target = max(below) if below else min(key for key, _ in pairs)
    return frozenset(sdk for key, sdk in pairs if key == target)


def _describe(packages: Mapping[str, str], limit: int = 3) -> str:
    items = [f"{name} {version}" for name, version in sorted(packages.items())]
    if len(items) > limit:
        items = [*items[:limit], f"and {len(items) - limit} more"]
    return ", ".join(items)


def _span(releases: tuple[str, ...]) -> str:
    if len(releases) == 1:
        return f"SDK {releases[0]}"
    return f"SDK {releases[0]} .. {releases[-1]} ({len(releases)} releases)"


def infer_sdk_release(installed: Mapping[str, str]) -> SdkRelease:
    """Infer the Neuron SDK release from installed distributions (name -> version).

    Names are canonicalised; distributions the manifest does not know are ignored. Pure:
    reads only the embedded manifest.
    """
    manifest = _manifest()
    known: dict[str, str] = {}
    for name, written in installed.items():
        canonical = _canonical(name)
        if canonical in manifest.rows:
            known[canonical] = str(written).strip()
    if not any(name not in _SUPPORTING for name in known):
        return SdkRelease(None, False, (), MappingProxyType({}), "no Neuron package installed")
    packages = MappingProxyType(dict(sorted(known.items())))
    order = {release: index for index, release in enumerate(manifest.releases)}

    def ordered(releases: frozenset[str] | set[str]) -> tuple[str, ...]:
        return tuple(sorted(releases, key=order.__getitem__))

    exact_sets: dict[str, frozenset[str]] = {}
    near_sets: dict[str, frozenset[str]] = {}
    for name, text in known.items():
        version = _parse(text)
        rows = manifest.rows[name]
        listed = frozenset(row.sdk for row in rows if _same(row.text, text, version))
        if listed:
            exact_sets[name] = listed
        elif name not in _SUPPORTING:  # a non-Neuron build of torch-xla says nothing
            near = _nearest(name, rows, version)
            if near:
                near_sets[name] = near

    if (
        exact_sets
        and not near_sets
        and all(name in exact_sets or name in _SUPPORTING for name in known)
    ):
        common = frozenset.intersection(*exact_sets.values())
        if common:
            candidates = ordered(common)
            if len(candidates) == 1:
                if len(known) == 1:
                    reason = f"{_describe(packages)} shipped only in SDK {candidates[0]}"
                else:
                    reason = (
                        f"{len(known)} Neuron packages ({_describe(packages)}) "
                        f"shipped together only in SDK {candidates[0]}"
                    )
                return SdkRelease(candidates[0], True, candidates, packages, reason)
            reason = (
                f"{_describe(packages)} shipped in {_span(candidates)}; "
                f"assuming the newest, {candidates[-1]}"
            )
            return SdkRelease(candidates[-1], False, candidates, packages, reason)

    # No release fits everything: score each release by the packages it fits, exact
    # membership counting twice as much as a nearest-version guess.
    scores: dict[str, int] = {}
    for releases in exact_sets.values():
        for release in releases:
            scores[release] = scores.get(release, 0) + 2
    for releases in near_sets.values():
        for release in releases:
            scores[release] = scores.get(release, 0) + 1
    if not scores:
        return SdkRelease(
            None,
            False,
            (),
            packages,
            f"installed Neuron packages ({_describe(packages)}) match no release in the manifest",
        )
    best = max(scores.values())
    candidates = ordered({release for release, score in scores.items() if score == best})
    newest = candidates[-1]
    unlisted = sorted(set(known) - set(exact_sets))
    if unlisted:
        missing = ", ".join(f"{name} {known[name]}" for name in unlisted)
        reason = f"{missing} not in the SDK manifest; nearest: {_span(candidates)}"
    else:
        outside = sorted(name for name, releases in exact_sets.items() if newest not in releases)
        reason = (
            f"installed Neuron packages come from different SDK releases; best match "
            f"{_span(candidates)}; not shipped in {newest}: "
            + ", ".join(f"{name} {known[name]}" for name in outside)
        )
    return SdkRelease(newest, False, candidates, packages, reason)


@functools.lru_cache(maxsize=1)
def installed_sdk_release() -> SdkRelease:
    """The release inferred from this environment's installed distributions (cached)."""
    if sys.version_info >= (3, 10):
        from importlib.metadata import PackageNotFoundError, version
    else:  # pragma: no cover - exercised on Python 3.9 only
        from importlib_metadata import PackageNotFoundError, version

    found: dict[str, str] = {}
    for name in _manifest().rows:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
        except Exception:  # a broken distribution must not break start-up
            continue
    return infer_sdk_release(found)
