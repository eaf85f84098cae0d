"""Settings: resolved in one place, from defaults, ``pyproject.toml``, env vars and arguments."""

from __future__ import annotations

import os

from ._errors import ConfigError
from ._types import Kind, Mode, Tier

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any

__all__ = ["Pattern", "Settings", "find_pyproject", "parse_patterns", "resolve"]

_KIND_NAMES = tuple(k.value for k in Kind.members())
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
WORKLOADS = ("training", "inference")


def normalize_flag(name: str) -> str:
    """Flags compare with ``_`` and ``-`` interchangeable."""
    return name.replace("_", "-")


class Pattern:
    """One allow pattern: a tier keyword (``beta``, ``alpha``) or an optional kind and a glob."""

    __slots__ = ("_match", "glob", "kind", "origin", "text", "tier")

    def __init__(
        self,
        text: str,
        kind: Kind | None = None,
        glob: str | None = None,
        tier: Tier | None = None,
        origin: str = "",
    ) -> None:
        self.text = text
        self.kind = kind
        self.glob = glob
        self.tier = tier
        self.origin = origin
        if TYPE_CHECKING:
            self._match: Callable[[str], object]

    def __repr__(self) -> str:
        return f"Pattern({self.text!r}, origin={self.origin!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Pattern):
            return (self.text, self.origin) == (other.text, other.origin)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.text, self.origin))

    def matches(self, kind: str, name: str, tier: str | None) -> bool:
        """True when this pattern allows the item ``kind:name`` of ``tier``."""
        if self.tier is not None:
            return tier is not None and tier != "stable" and Tier(tier) >= self.tier
        if self.kind is not None and self.kind != kind:
            return False
        match = self._matcher()
        return match(normalize_flag(name) if kind == "flag" else name) is not None

    def _matcher(self) -> Callable[[str], object]:
        """The glob compiled once (fnmatch semantics, case-sensitive; ``*`` crosses dots)."""
        try:
            return self._match
        except AttributeError:
            pass
        import re
        from fnmatch import translate

        assert self.glob is not None
        glob = self.glob
        if self.kind is None or self.kind == "flag":
            # a bare glob may name a flag: compile both spellings of its dashes
            flag = normalize_flag(glob)
            rx = f"(?:{translate(glob)})|(?:{translate(flag)})" if flag != glob else translate(glob)
        else:
            rx = translate(glob)
        self._match = re.compile(rx).match
        return self._match

    def __str__(self) -> str:
        return self.text


def parse_patterns(value: str | Iterable[str], *, origin: str) -> tuple[Pattern, ...]:
    """Parse allow patterns (a comma-separated string or an iterable of them).

    Raises :class:`ConfigError` naming the bad pattern, its origin and the valid forms.
    """
    items: list[str] = []
    if isinstance(value, str):
        items = value.split(",")
    else:
        for v in value:
            item: object = v  # callers are not always type-checked
            if not isinstance(item, str):
                msg = f"allow pattern {v!r} from {origin} is not a string"
                raise ConfigError(msg, source=origin, key="allow", value=v)
            items.extend(v.split(","))
    out: list[Pattern] = []
    for raw in items:
        text = raw.strip()
        if not text:
            continue
        out.append(_parse_one(text, origin))
    return tuple(out)


def _parse_one(text: str, origin: str) -> Pattern:
    low = text.lower()
    if low in ("alpha", "beta"):
        return Pattern(text=low, tier=Tier(low), origin=origin)
    prefix, sep, rest = text.partition(":")
    valid = ", ".join(f"'{k}:'" for k in _KIND_NAMES)
    if sep and prefix.lower() in _KIND_NAMES:
        glob = rest.strip()
        if not glob:
            msg = (
                f"allow pattern {text!r} from {origin} has nothing after {prefix + ':'!r}; "
                f"write e.g. '{prefix}:NAME' or '{prefix}:NAME.*'"
            )
            raise ConfigError(msg, source=origin, key="allow", value=text)
        return Pattern(text=text, kind=Kind(prefix.lower()), glob=glob, origin=origin)
    if sep and not prefix.startswith(("-", "*")) and "." not in prefix:
        msg = (
            f"allow pattern {text!r} from {origin} has unknown prefix {prefix + ':'!r}; "
            f"valid prefixes are {valid}, or 'alpha'/'beta', or a bare name glob"
        )
        raise ConfigError(msg, source=origin, key="allow", value=text)
    return Pattern(text=text, glob=text, origin=origin)


class Settings:
    """The effective configuration (immutable). ``origins`` says where each setting came from."""

    __slots__ = (
        "allow",
        "dedupe",
        "lock",
        "mode",
        "notes",
        "origins",
        "pyproject",
        "report",
        "tables",
        "workload",
    )

    def __init__(
        self,
        mode: Mode = Mode.WARN,
        allow: tuple[Pattern, ...] = (),
        dedupe: bool = True,
        lock: bool = False,
        tables: tuple[str, ...] = (),
        report: str | None = None,
        workload: str | None = None,
        pyproject: str | None = None,
        origins: Mapping[str, str] | None = None,
        notes: tuple[str, ...] = (),
    ) -> None:
        set_ = object.__setattr__
        set_(self, "mode", mode)
        set_(self, "allow", allow)
        set_(self, "dedupe", dedupe)
        set_(self, "lock", lock)
        set_(self, "tables", tables)
        set_(self, "report", report)
        set_(self, "workload", workload)
        set_(self, "pyproject", pyproject)
        set_(self, "origins", dict(origins or {}))
        set_(self, "notes", notes)

    if TYPE_CHECKING:
        mode: Mode
        allow: tuple[Pattern, ...]
        dedupe: bool
        lock: bool
        tables: tuple[str, ...]
        report: str | None
        workload: str | None
        pyproject: str | None
        origins: Mapping[str, str]
        notes: tuple[str, ...]

    def __setattr__(self, name: str, value: object) -> None:
        msg = "Settings are immutable; use with_(...) or neuron_guard.configure(...)"
        raise AttributeError(msg)

    def with_(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied."""
        values = {k: getattr(self, k) for k in self.__slots__}
        values.update(changes)
        return Settings(**values)

    def __repr__(self) -> str:
        allow = ",".join(p.text for p in self.allow)
        return f"Settings(mode={self.mode.value!r}, allow={allow!r}, lock={self.lock})"


def find_pyproject(start: str | None = None) -> str | None:
    """The nearest ``pyproject.toml`` at or above ``start`` (default: the working directory)."""
    try:
        here = os.path.abspath(start or os.getcwd())
    except OSError:  # the working directory was removed
        return None
    while True:
        candidate = os.path.join(here, "pyproject.toml")
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


_PYPROJECT_KEYS = ("mode", "allow", "tables", "workload", "dedupe", "report")


def read_pyproject(path: str) -> dict[str, Any]:
    """The ``[tool.neuron_guard]`` table of ``path``, validated; ``{}`` when it has none.

    The file is only parsed as TOML when it mentions ``tool.neuron_guard``, so projects
    that do not configure neuron_guard pay no TOML import at start-up.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        msg = f"cannot read {path}: {exc.strerror or exc}"
        raise ConfigError(msg, source=path) from exc
    if b"neuron_guard" not in data:
        return {}
    from ._compat import load_toml, toml_error

    try:
        doc = load_toml(data)
    except (toml_error(), UnicodeDecodeError) as exc:
        msg = f"{path} is not valid TOML: {exc}"
        raise ConfigError(msg, source=path) from exc
    section = doc.get("tool", {}).get("neuron_guard", {})
    if not isinstance(section, dict):
        msg = f"{path}: [tool.neuron_guard] must be a table"
        raise ConfigError(msg, source=path, key="tool.neuron_guard")
    for key in section:
        if key not in _PYPROJECT_KEYS:
            msg = (
                f"{path}: unknown key {key!r} in [tool.neuron_guard]; valid keys are "
                + ", ".join(repr(k) for k in _PYPROJECT_KEYS)
            )
            raise ConfigError(msg, source=path, entry="tool.neuron_guard", key=key)
    return dict(section)


def _bool(value: str, name: str) -> bool:
    low = value.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    msg = f"invalid value {value!r} for {name}; use 1/0, on/off, true/false"
    raise ConfigError(msg, source=name, key=name, value=value)


def _workload(value: object, where: str) -> str:
    if isinstance(value, str) and value.strip().lower() in WORKLOADS:
        return value.strip().lower()
    msg = f"invalid workload {value!r} in {where}; valid values are 'training', 'inference'"
    raise ConfigError(msg, source=where, key="workload", value=value)


def resolve(
    *,
    environ: Mapping[str, str] | None = None,
    cwd: str | None = None,
    mode: Mode | str | None = None,
    allow: str | Iterable[str] | None = None,
    use_pyproject: bool = True,
) -> Settings:
    """Resolve the settings, in this order (later wins):

    1. defaults: mode ``warn``, no allow patterns, dedupe on, no lock;
    2. ``[tool.neuron_guard]`` of the nearest ``pyproject.toml`` above ``cwd``
       (``mode``, ``allow``, ``tables``, ``workload``, ``dedupe``, ``report``);
    3. the ``NEURON_GUARD*`` environment variables;
    4. the explicit arguments (``configure(mode=..., allow=...)``).

    Allow patterns are *added up* across sources (each keeps its origin). Under
    ``NEURON_GUARD_LOCK=1`` the ``pyproject.toml`` may only narrow: its mode applies only
    when stricter, its allow patterns are ignored, its tables are added.
    """
    env = os.environ if environ is None else environ
    origins: dict[str, str] = {"mode": "default"}
    notes: list[str] = []
    s = Settings()

    lock_raw = env.get("NEURON_GUARD_LOCK")
    lock = bool(lock_raw) and _bool(lock_raw or "", "NEURON_GUARD_LOCK")
    if lock:
        origins["lock"] = "env NEURON_GUARD_LOCK"

    env_mode_raw = env.get("NEURON_GUARD", "")
    env_mode = Mode.parse(env_mode_raw, where="NEURON_GUARD") if env_mode_raw.strip() else None

    pyproject = find_pyproject(cwd) if use_pyproject else None
    allow_list: list[Pattern] = []
    tables: list[str] = []  # NEURON_GUARD_TABLES first, then pyproject's: later ones override
    py_tables: list[str] = []
    pmode: Mode | None = None
    if pyproject is not None:
        section = read_pyproject(pyproject)
        where = f"{pyproject} [tool.neuron_guard]"
        base = os.path.dirname(pyproject)
        if "mode" in section:
            pmode = Mode.parse(section["mode"], where=f"{where} mode")
        if "allow" in section:
            pats = parse_patterns(_str_list(section["allow"], where, "allow"), origin=where)
            if lock and pats:
                notes.append(f"{where}: allow ignored: NEURON_GUARD_LOCK lets it only narrow")
            else:
                allow_list.extend(pats)
        if "tables" in section:
            for t in _str_list(section["tables"], where, "tables"):
                py_tables.append(os.path.normpath(os.path.join(base, t)))
            origins["tables"] = where
        if "workload" in section:
            s = s.with_(workload=_workload(section["workload"], f"{where} workload"))
            origins["workload"] = where
        if "dedupe" in section:
            if not isinstance(section["dedupe"], bool):
                msg = f"{where}: 'dedupe' must be true or false, not {section['dedupe']!r}"
                raise ConfigError(msg, source=pyproject, key="dedupe", value=section["dedupe"])
            s = s.with_(dedupe=section["dedupe"])
            origins["dedupe"] = where
        if "report" in section:
            rep = section["report"]
            if not isinstance(rep, str):
                msg = f"{where}: 'report' must be a directory path string, not {rep!r}"
                raise ConfigError(msg, source=pyproject, key="report", value=rep)
            s = s.with_(report=os.path.join(base, rep))
            origins["report"] = where

    if env_mode is not None:
        s = s.with_(mode=env_mode)
        origins["mode"] = "env NEURON_GUARD"
    if pmode is not None:
        pwhere = f"{pyproject} [tool.neuron_guard]"
        if env_mode is None and not lock:
            s = s.with_(mode=pmode)
            origins["mode"] = pwhere
        elif lock and pmode.rank > s.mode.rank:
            s = s.with_(mode=pmode)
            origins["mode"] = f"{pwhere} (narrows under NEURON_GUARD_LOCK)"
        elif lock and pmode.rank < s.mode.rank:
            notes.append(f"{pwhere}: mode {pmode} ignored: NEURON_GUARD_LOCK lets it only narrow")
    if env.get("NEURON_GUARD_ALLOW"):
        allow_list.extend(
            parse_patterns(env["NEURON_GUARD_ALLOW"], origin="env NEURON_GUARD_ALLOW")
        )
    if env.get("NEURON_GUARD_DEDUPE"):
        s = s.with_(dedupe=_bool(env["NEURON_GUARD_DEDUPE"], "NEURON_GUARD_DEDUPE"))
        origins["dedupe"] = "env NEURON_GUARD_DEDUPE"
    if env.get("NEURON_GUARD_TABLES"):
        tables.extend(p for p in env["NEURON_GUARD_TABLES"].split(os.pathsep) if p)
        origins["tables"] = "env NEURON_GUARD_TABLES"
    if env.get("NEURON_GUARD_REPORT"):
        s = s.with_(report=env["NEURON_GUARD_REPORT"])
        origins["report"] = "env NEURON_GUARD_REPORT"
    if env.get("NEURON_GUARD_WORKLOAD"):
        s = s.with_(workload=_workload(env["NEURON_GUARD_WORKLOAD"], "NEURON_GUARD_WORKLOAD"))
        origins["workload"] = "env NEURON_GUARD_WORKLOAD"

    if mode is not None:
        s = s.with_(mode=Mode.parse(mode, where="configure(mode=...)"))
        origins["mode"] = "configure()"
    if allow is not None:
        allow_list.extend(parse_patterns(allow, origin="configure()"))

    return s.with_(
        allow=tuple(allow_list),
        lock=lock,
        tables=tuple(tables + py_tables),
        pyproject=pyproject,
        origins=origins,
        notes=tuple(notes),
    )


def _str_list(value: object, where: str, key: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    msg = f"{where}: {key!r} must be a string or a list of strings, not {value!r}"
    raise ConfigError(msg, source=where, key=key, value=value)
