"""Tier tables: parse, validate and merge them; decide which entries hold here.

Sources, in order (later ones override earlier ones by (kind, name, argument), and for
model classes by (name, framework, library, workload)):

1. the embedded Neuron table (``data/neuron/*.toml``, pre-compiled into
   ``_embedded_table.py`` so start-up needs no TOML parser);
2. files named by ``NEURON_GUARD_TABLES`` (joined by ``os.pathsep``);
3. files named by ``[tool.neuron_guard] tables`` in ``pyproject.toml``;
4. tables published under the entry-point group ``neuron_guard.tables`` (the entry point
   names a TOML resource, ``package:path/to/file.toml``, or a callable returning a dict).
"""

from __future__ import annotations

import os

from ._errors import ConfigError
from ._types import Kind, Tier

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any, Callable

    from ._config import Settings

__all__ = ["SCHEMA", "Entry", "Table", "load_file", "load_table", "parse_table"]

#: The newest table schema this version understands.
SCHEMA = 1

_COMMON = {
    "name": "str",
    "tier": "tier",
    "source": "str",
    "package": "str",
    "versions": "spec",
    "sdk": "spec",
    "replacement": "str",
    "deprecated": "version",
    "removed": "version",
    "note": "str",
    "triggers": "triggers",
}
_EXTRA: dict[str, dict[str, str]] = {
    "api": {"argument": "str", "values": "strlist"},
    "env": {"values": "strlist"},
    "flag": {"aliases": "strlist", "values": "strlist", "carriers": "carriers"},
    "package": {"module": "module"},
    "feature": {},
    "model": {"framework": "str", "library": "str", "workload": "workload"},
}
KEYS: dict[str, dict[str, str]] = {k: {**_COMMON, **v} for k, v in _EXTRA.items()}
_TOP_KEYS = ("schema", *KEYS)
_CARRIER_KINDS = ("env", "api", "cli")


class Entry:
    """One validated table entry. ``origin`` is the table it came from, ``index`` its place."""

    __slots__ = (
        "aliases",
        "argument",
        "carriers",
        "deprecated",
        "framework",
        "index",
        "kind",
        "library",
        "module",
        "name",
        "note",
        "origin",
        "package",
        "removed",
        "replacement",
        "sdk",
        "source",
        "tier",
        "triggers",
        "values",
        "versions",
        "workload",
    )

    def __init__(self, kind: str, data: Mapping[str, Any], origin: str, index: int) -> None:
        self.kind = Kind(kind)
        self.origin = origin
        self.index = index
        self.name: str = data["name"]
        self.tier = Tier(data["tier"].strip().lower())
        self.source: str | None = data.get("source")
        self.package: str | None = data.get("package")
        self.versions: str | None = data.get("versions")
        self.sdk: str | None = data.get("sdk")
        self.replacement: str | None = data.get("replacement")
        self.deprecated: str | None = data.get("deprecated")
        self.removed: str | None = data.get("removed")
        self.note: str | None = data.get("note")
        self.triggers: tuple[str, ...] = tuple(data.get("triggers", ()))
        self.argument: str | None = data.get("argument")
        self.values: tuple[str, ...] | None = (
            tuple(data["values"]) if data.get("values") is not None else None
        )
        self.aliases: tuple[str, ...] = tuple(data.get("aliases", ()))
        self.carriers: tuple[str, ...] = tuple(data.get("carriers", ()))
        self.module: str | None = data.get("module")
        self.framework: str | None = data.get("framework")
        self.library: str | None = data.get("library")
        self.workload: str | None = data.get("workload")

    @property
    def key(self) -> tuple[str, ...]:
        """What later sources override by."""
        if self.kind is Kind.MODEL:
            return (
                "model",
                self.name,
                self.framework or "",
                self.library or "",
                self.workload or "",
            )
        return (str(self.kind), self.name, self.argument or "")

    @property
    def display_name(self) -> str:
        """The name used in messages, events and allow patterns."""
        return f"{self.name}:{self.argument}" if self.argument else self.name

    @property
    def import_name(self) -> str:
        """For a package entry, the module it is imported as."""
        return self.module or self.name.replace("-", "_")

    def label(self) -> str:
        return f"{self.origin}: [[{self.kind}]] #{self.index + 1} {self.name!r}"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": str(self.kind)}
        for key in KEYS[str(self.kind)]:
            value = getattr(self, key)
            if value is None or value == ():
                continue
            out[key] = list(value) if isinstance(value, tuple) else str(value)
        out["origin"] = self.origin
        return out

    def __repr__(self) -> str:
        extra = f" versions={self.versions!r}" if self.versions else ""
        extra += f" sdk={self.sdk!r}" if self.sdk else ""
        return f"<Entry {self.kind}:{self.display_name} {self.tier}{extra} from {self.origin}>"


# -- validation ----------------------------------------------------------------


def _fail(origin: str, where: str, key: str | None, msg: str, value: Any = None) -> ConfigError:
    text = f"{origin}: {where}: {msg}" if where else f"{origin}: {msg}"
    return ConfigError(text, source=origin, entry=where or None, key=key, value=value)


def _check_value(kind: str, key: str, typ: str, value: Any, origin: str, where: str) -> None:
    def bad(expected: str) -> ConfigError:
        return _fail(origin, where, key, f"{key!r} must be {expected}, not {value!r}", value)

    if typ in ("str", "module"):
        if not isinstance(value, str) or not value.strip():
            raise bad("a non-empty string")
        if typ == "module" and not all(p.isidentifier() for p in value.split(".")):
            raise bad("a dotted module name")
    elif typ == "tier":
        if not isinstance(value, str) or value.strip().lower() not in ("alpha", "beta", "stable"):
            raise bad("'alpha', 'beta' or 'stable'")
    elif typ == "workload":
        if value not in ("training", "inference"):
            raise bad("'training' or 'inference'")
    elif typ in ("strlist", "triggers", "carriers"):
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise bad("a list of non-empty strings")
        if typ == "triggers":
            for v in value:
                prefix, sep, rest = v.partition(":")
                if not sep or prefix not in KEYS or not rest:
                    msg = f"trigger {v!r} must be 'KIND:NAME' with KIND one of " + ", ".join(
                        repr(k) for k in KEYS
                    )
                    raise _fail(origin, where, key, msg, v)
        if typ == "carriers":
            for v in value:
                prefix, sep, rest = v.partition(":")
                if not sep or prefix not in _CARRIER_KINDS or not rest:
                    msg = (
                        f"carrier {v!r} must be 'env:VAR', 'api:DOTTED.NAME:ARGUMENT' or "
                        "'cli:PROGRAM'"
                    )
                    raise _fail(origin, where, key, msg, v)
                if prefix == "api" and rest.count(":") != 1:
                    msg = f"carrier {v!r} must name the argument: 'api:DOTTED.NAME:ARGUMENT'"
                    raise _fail(origin, where, key, msg, v)
    elif typ == "spec":
        if not isinstance(value, str):
            raise bad("a PEP 440 version specifier string such as '<2.25' or '>=1.0,<2'")
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        try:
            SpecifierSet(value)
        except InvalidSpecifier:
            msg = f"{key!r} is not a valid PEP 440 specifier: {value!r} (e.g. '<2.25', '>=1.0,<2')"
            raise _fail(origin, where, key, msg, value) from None
    elif typ == "version":
        if not isinstance(value, str):
            raise bad("a version string such as '2.24'")
        from packaging.version import InvalidVersion, Version

        try:
            Version(value)
        except InvalidVersion:
            msg = f"{key!r} is not a valid PEP 440 version: {value!r} (e.g. '2.24')"
            raise _fail(origin, where, key, msg, value) from None


def parse_table(doc: Mapping[str, Any], origin: str) -> list[Entry]:
    """Validate a parsed TOML document and return its entries.

    Raises :class:`ConfigError` naming ``origin``, the entry (kind, index and name) and
    the key for unknown kinds and keys, wrong types, bad tiers and bad specifiers.
    """
    if not isinstance(doc, dict):
        raise _fail(origin, "", None, f"a table must be a TOML document, not {type(doc).__name__}")
    schema = doc.get("schema", SCHEMA)
    if not isinstance(schema, int) or isinstance(schema, bool) or schema < 1:
        raise _fail(origin, "", "schema", f"'schema' must be a positive integer, not {schema!r}")
    if schema > SCHEMA:
        msg = (
            f"the table needs schema {schema}, this neuron_guard understands schema {SCHEMA}; "
            "upgrade neuron-guard"
        )
        raise _fail(origin, "", "schema", msg, schema)
    for top in doc:
        if top not in _TOP_KEYS:
            msg = f"unknown kind {top!r}; valid kinds are " + ", ".join(repr(k) for k in KEYS)
            hint = _suggest(top, _TOP_KEYS)
            raise _fail(origin, "", top, msg + hint, top)
    entries: list[Entry] = []
    seen: dict[tuple[Any, ...], int] = {}
    for kind, allowed in KEYS.items():
        items = doc.get(kind)
        if items is None:
            continue
        if not isinstance(items, list):
            msg = f"{kind!r} must be an array of tables ([[{kind}]]), not {type(items).__name__}"
            raise _fail(origin, "", kind, msg)
        for i, raw in enumerate(items):
            where = f"[[{kind}]] #{i + 1}"
            if not isinstance(raw, dict):
                raise _fail(origin, where, None, "each entry must be a table")
            name = raw.get("name")
            if isinstance(name, str):
                where += f" {name!r}"
            for key in raw:
                if key not in allowed:
                    msg = f"unknown key {key!r}; valid keys for {kind} are " + ", ".join(
                        repr(k) for k in allowed
                    )
                    raise _fail(origin, where, key, msg + _suggest(key, tuple(allowed)), key)
            for required in ("name", "tier"):
                if required not in raw:
                    raise _fail(origin, where, required, f"missing required key {required!r}")
            for key, value in raw.items():
                _check_value(kind, key, allowed[key], value, origin, where)
            if "argument" not in raw and "values" in raw and kind == "api":
                msg = "'values' on an api entry needs 'argument' (whose values are preview)"
                raise _fail(origin, where, "values", msg)
            if "versions" in raw and "sdk" in raw:
                msg = "give either 'versions' (with 'package') or 'sdk', not both"
                raise _fail(origin, where, "sdk", msg)
            entry = Entry(kind, raw, origin, i)
            dup = (*entry.key, entry.versions or "", entry.sdk or "")
            if dup in seen:
                msg = (
                    f"duplicates entry #{seen[dup] + 1} (same kind, name, argument and versions); "
                    "give each entry for one item disjoint 'versions' or 'sdk' ranges"
                )
                raise _fail(origin, where, "name", msg)
            seen[dup] = i
            entries.append(entry)
    return entries


def _suggest(word: str, choices: Iterable[str]) -> str:
    from difflib import get_close_matches

    close = get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def load_file(path: str) -> list[Entry]:
    """Read and validate the TOML table at ``path`` (which must exist).

    A table that validated before is read from a cache (keyed by the file's size and
    modification time, and this version of neuron_guard), so that start-up needs neither
    a TOML parser nor :mod:`packaging` for an unchanged table.
    """
    try:
        with open(path, "rb") as fh:
            stat = os.fstat(fh.fileno())
            data = fh.read()
    except OSError as exc:
        msg = f"cannot read tier table {path!r}: {exc.strerror or exc}"
        raise ConfigError(msg, source=path) from exc
    stamp = (stat.st_size, stat.st_mtime_ns, _cache_version())
    cached = _read_table_cache(path, stamp)
    if cached is not None:
        return _entries_of(((path, tuple(cached)),))
    from ._compat import load_toml, toml_error

    try:
        doc = load_toml(data)
    except (toml_error(), UnicodeDecodeError) as exc:
        msg = f"{path}: not valid TOML: {exc}"
        raise ConfigError(msg, source=path) from exc
    entries = parse_table(doc, path)
    _write_table_cache(path, stamp, [(k, doc[k]) for k in KEYS if doc.get(k)])
    return entries


def cache_dir() -> str:
    """Where neuron_guard keeps its caches (``$XDG_CACHE_HOME/neuron_guard``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "neuron_guard")


def _cache_version() -> str:
    from ._version import __version__

    return f"{__version__}/{SCHEMA}"


def _table_cache_path(path: str) -> str:
    safe = "".join(c if c.isalnum() else "_" for c in os.path.abspath(path))[-150:]
    return os.path.join(cache_dir(), "tables", safe + ".marshal")


def _read_table_cache(path: str, stamp: tuple[Any, ...]) -> Any:
    import marshal

    try:
        with open(_table_cache_path(path), "rb") as fh:
            saved = marshal.loads(fh.read())
        if isinstance(saved, tuple) and len(saved) == 3 and saved[0] == path and saved[1] == stamp:
            return saved[2]
    except (OSError, EOFError, ValueError, TypeError):
        pass
    return None


def _write_table_cache(path: str, stamp: tuple[Any, ...], kinds: list[tuple[str, Any]]) -> None:
    import marshal

    target = _table_cache_path(path)
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp = f"{target}.{os.getpid()}"
        with open(tmp, "wb") as fh:
            fh.write(marshal.dumps((path, stamp, tuple((k, tuple(v)) for k, v in kinds))))
        os.replace(tmp, target)
    except (OSError, ValueError):
        pass  # a cache we cannot write only costs time


def load_embedded() -> list[Entry]:
    """The embedded Neuron table (pre-validated; read from the compiled literal)."""
    try:
        from ._embedded_table import TABLES
    except ImportError:  # a source checkout before tools/compile_table.py ran
        return load_embedded_toml()
    return _entries_of(TABLES)


def _entries_of(tables: Any) -> list[Entry]:
    """Entries from the compiled literal: ``((origin, ((kind, (row, ...)), ...)), ...)``."""
    out: list[Entry] = []
    for origin, kinds in tables:
        for kind, rows in kinds:
            out.extend(Entry(kind, row, origin, i) for i, row in enumerate(rows))
    return out


def embedded_toml_files() -> list[str]:
    """Paths of the embedded table's TOML files, in load order."""
    base = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "neuron")
    try:
        names = sorted(n for n in os.listdir(base) if n.endswith(".toml"))
    except OSError:
        return []
    return [os.path.join(base, n) for n in names]


def load_embedded_toml() -> list[Entry]:
    """The embedded table parsed and validated from its TOML files (slow path, for tools)."""
    out: list[Entry] = []
    for path in embedded_toml_files():
        entries = load_file(path)
        rel = "neuron_guard/data/neuron/" + os.path.basename(path)
        for e in entries:
            e.origin = rel
        out.extend(entries)
    return out


def _entry_point_tables() -> list[tuple[str, list[Entry]]]:
    from ._compat import entry_points, load_toml

    out: list[tuple[str, list[Entry]]] = []
    for ep in sorted(entry_points("neuron_guard.tables"), key=lambda e: e.name):
        origin = f"entry point {ep.name} = {ep.value}"
        value = ep.value
        if ":" in value and value.split(":", 1)[1].endswith(".toml"):
            pkg, res = value.split(":", 1)
            from importlib.resources import files

            try:
                data = (files(pkg) / res).read_bytes()
            except (OSError, ModuleNotFoundError) as exc:
                msg = f"{origin}: cannot read the table resource: {exc}"
                raise ConfigError(msg, source=origin) from exc
            doc = load_toml(data)
        else:
            obj = ep.load()
            doc = obj() if callable(obj) else obj
        out.append((origin, parse_table(doc, origin)))
    return out


def index_of(entries: Iterable[Entry]) -> dict[str, Any]:
    """What start-up needs to know of a table without building it: names and tops.

    ``tools/compile_table.py`` stores this for the embedded table, so a process that
    imports nothing guarded never builds the embedded entries.
    """
    names: dict[str, list[str]] = {}
    carriers: set[str] = set()
    triggers: set[str] = set()
    tops: set[str] = set()
    count = 0
    for e in entries:
        count += 1
        names.setdefault(str(e.kind), []).append(e.name)
        carriers.update(e.carriers)
        triggers.update(e.triggers)
        if e.kind is Kind.API:
            tops.add(e.name.partition(".")[0])
        elif e.kind is Kind.PACKAGE:
            tops.add(e.import_name.partition(".")[0])
    return {
        "count": count,
        "names": {k: sorted(set(v)) for k, v in sorted(names.items())},
        "carriers": sorted(carriers),
        "triggers": sorted(triggers),
        "tops": sorted(tops),
    }


class Source:
    """One table source: its entries now, or a loader and a pre-computed index."""

    def __init__(
        self,
        origin: str,
        entries: list[Entry] | None = None,
        *,
        loader: Callable[[], list[Entry]] | None = None,
        index: Mapping[str, Any] | None = None,
    ) -> None:
        self.origin = origin
        self._entries = entries
        self._loader = loader
        self._index = index

    @property
    def entries(self) -> list[Entry]:
        if self._entries is None:
            assert self._loader is not None
            self._entries = self._loader()
        return self._entries

    @property
    def index(self) -> Mapping[str, Any]:
        if self._index is None or self._entries is not None:
            self._index = index_of(self.entries)
        return self._index


class Table:
    """The effective table: entries merged from every source, with lookups by kind.

    Built lazily: :meth:`names`, :meth:`carriers` and :meth:`tops` answer from each
    source's index, so start-up does not build the embedded table's entries.
    """

    def __init__(self, sources: Iterable[Source | tuple[str, list[Entry]]]) -> None:
        self._sources = [s if isinstance(s, Source) else Source(s[0], s[1]) for s in sources]
        self._merged: list[Entry] | None = None
        self._by_kind: dict[str, list[Entry]] = {}

    @property
    def sources(self) -> list[tuple[str, int]]:
        """``(origin, number of entries)`` for each source, in load order."""
        return [(s.origin, int(s.index["count"])) for s in self._sources]

    @property
    def entries(self) -> list[Entry]:
        if self._merged is None:
            merged: dict[tuple[str, ...], list[Entry]] = {}
            for src in self._sources:
                fresh: dict[tuple[str, ...], list[Entry]] = {}
                for e in src.entries:
                    fresh.setdefault(e.key, []).append(e)
                merged.update(fresh)  # a later source replaces every entry of the same key
            entries = [e for group in merged.values() for e in group]
            by_kind: dict[str, list[Entry]] = {}
            for e in entries:
                by_kind.setdefault(str(e.kind), []).append(e)
            self._by_kind = by_kind
            self._merged = entries
        return self._merged

    def of_kind(self, kind: str) -> list[Entry]:
        """Every entry of ``kind`` (all versions; use :func:`pick` to choose one)."""
        self.entries  # noqa: B018 - builds the merged table once
        return self._by_kind.get(kind, [])

    def names(self, kind: str) -> frozenset[str]:
        """The names of ``kind``'s entries: cheap, for start-up checks before full look-ups.

        A superset: an entry that a later source overrides is still named.
        """
        return frozenset(n for s in self._sources for n in s.index["names"].get(kind, ()))

    def carriers(self) -> frozenset[str]:
        """Every flag carrier (``env:VAR``, ``api:NAME:ARG``, ``cli:PROG``) any entry lists."""
        return frozenset(c for s in self._sources for c in s.index["carriers"])

    def triggers(self) -> frozenset[str]:
        """Every trigger (``env:VAR``, ``flag:NAME``, ``api:NAME``, ...) of features and models."""
        return frozenset(t for s in self._sources for t in s.index.get("triggers", ()))

    def tops(self) -> frozenset[str]:
        """Top-level modules that api and package entries name (the import hook watches them)."""
        return frozenset(t for s in self._sources for t in s.index["tops"])

    def find(self, name: str) -> list[Entry]:
        """Entries whose name (or ``name:argument``, or flag alias) is ``name``."""
        norm = name.replace("_", "-") if name.startswith("-") else name
        out = []
        for e in self.entries:
            if name in (e.name, e.display_name) or (
                e.kind is Kind.FLAG
                and norm
                in (
                    e.name.replace("_", "-"),
                    *(a.replace("_", "-") for a in e.aliases),
                )
            ):
                out.append(e)
        return out

    def __len__(self) -> int:
        return len(self.entries)


def load_table(settings: Settings, *, embedded: bool = True) -> Table:
    """The effective table for ``settings``: embedded, then user tables, then entry points."""
    sources: list[Source] = []
    if embedded:
        sources.append(_embedded_source())
    for path in settings.tables:
        sources.append(Source(path, load_file(path)))
    if _has_entry_points():
        sources.extend(Source(o, e) for o, e in _entry_point_tables())
    return Table(sources)


def _embedded_source() -> Source:
    try:
        from ._embedded_index import INDEX
    except ImportError:
        return Source("embedded Neuron table", load_embedded())
    return Source("embedded Neuron table", loader=load_embedded, index=INDEX)


def _has_entry_points() -> bool:
    """Whether any installed distribution declares ``neuron_guard.tables`` entry points.

    Scanning entry points imports importlib.metadata (tens of ms): skip it when no
    ``entry_points.txt`` on ``sys.path`` mentions the group. The answer for each
    directory is cached by its modification time (which changes when a distribution is
    installed, upgraded or removed there) in ``$XDG_CACHE_HOME/neuron_guard``.
    """
    import sys

    cache = os.path.join(cache_dir(), "entry-points-v1")
    known: dict[str, str] = {}
    try:
        with open(cache, encoding="utf-8") as fh:
            for line in fh:
                path, _, rest = line.rstrip("\n").rpartition("\t")
                if path:
                    known[path] = rest
    except (OSError, UnicodeDecodeError):
        pass
    found = False
    changed = False
    for base in dict.fromkeys(sys.path):
        directory = base or "."
        try:
            stamp = str(os.stat(directory).st_mtime_ns)
        except OSError:
            continue
        key = f"{os.path.abspath(directory)}\t{stamp}"
        answer = known.get(key)
        if answer is None:
            answer = "1" if _scan_entry_points(directory) else "0"
            known[key] = answer
            changed = True
        found = found or answer == "1"
    if changed:
        try:
            os.makedirs(os.path.dirname(cache), exist_ok=True)
            tmp = f"{cache}.{os.getpid()}"
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.writelines(f"{k}\t{v}\n" for k, v in list(known.items())[-64:])
            os.replace(tmp, cache)
        except OSError:
            pass
    return found


def _scan_entry_points(directory: str) -> bool:
    """Whether a distribution in ``directory`` declares a ``neuron_guard.tables`` entry point."""
    try:
        names = os.listdir(directory)
    except OSError:
        return False
    for n in names:
        if n.endswith((".dist-info", ".egg-info")):
            try:
                with open(os.path.join(directory, n, "entry_points.txt"), encoding="utf-8") as fh:
                    if "neuron_guard.tables" in fh.read():
                        return True
            except (OSError, UnicodeDecodeError):
                continue
    return False


# -- which entries hold for the installed versions -----------------------------------

_version_cache: dict[str, str | None] = {}


def installed_version(dist: str) -> str | None:
    """The installed version of distribution ``dist`` (looked up once, then cached)."""
    if dist not in _version_cache:
        from ._compat import distribution_version

        _version_cache[dist] = distribution_version(dist)
    return _version_cache[dist]


def _in_spec(version: str, spec: str) -> bool:
    from packaging.specifiers import SpecifierSet
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version) in SpecifierSet(spec, prereleases=True)
    except InvalidVersion:
        return False


def holds(entry: Entry) -> bool:
    """Whether ``entry`` applies to what is installed.

    ``versions`` is matched against the installed version of ``package`` (or of the
    package entry's own distribution); a package that is not installed means the entry
    does not hold. ``sdk`` is matched against the inferred Neuron SDK release; when the
    release cannot be told, the entry holds if any candidate release (or, with nothing
    Neuron installed, any release) matches: the cautious reading.
    """
    if entry.versions:
        dist = entry.package or (entry.name if entry.kind is Kind.PACKAGE else None)
        if dist is None:
            return True
        version = installed_version(dist)
        return version is not None and _in_spec(version, entry.versions)
    if entry.sdk:
        from ._sdk import installed_sdk_release

        release = installed_sdk_release()
        if release.version and release.exact:
            return _in_spec(release.version, entry.sdk)
        if release.candidates:
            return any(_in_spec(c, entry.sdk) for c in release.candidates)
        return True
    return True


def removed_now(entry: Entry) -> bool:
    """Whether ``entry`` is already ``removed`` in the installed package or SDK release."""
    if not entry.removed:
        return False
    if entry.package:
        version = installed_version(entry.package)
    else:
        from ._sdk import installed_sdk_release

        release = installed_sdk_release()
        version = release.version if release.exact else None
    if version is None:
        return False
    from packaging.version import InvalidVersion, Version

    try:
        return Version(version) >= Version(entry.removed)
    except InvalidVersion:
        return False


def pick(entries: list[Entry]) -> Entry | None:
    """Of several entries for one item, the one that holds (the lowest tier if several do)."""
    live = [e for e in entries if holds(e)]
    if not live:
        return None
    return min(live, key=lambda e: e.tier.rank)


def group(entries: Iterable[Entry]) -> dict[tuple[str, ...], list[Entry]]:
    out: dict[tuple[str, ...], list[Entry]] = {}
    for e in entries:
        out.setdefault(e.key, []).append(e)
    return out


def resolver(entries: list[Entry]) -> Callable[[], Entry | None]:
    """A cached ``pick(entries)``: versions are looked up the first time it is asked."""
    cache: list[Entry | None] = []

    def get() -> Entry | None:
        if not cache:
            cache.append(pick(entries))
        return cache[0]

    return get
