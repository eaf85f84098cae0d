"""The ``neuron-guard`` command (also ``python -m neuron_guard``).

``main_parser()`` builds the argparse parser, ``main(argv)`` runs one verb and returns
its exit code, ``entrypoint()`` serves the console script. Library errors become one
line on stderr (no traceback) and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import IO, TYPE_CHECKING, Any

from ._errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._config import Settings
    from ._table import Entry, Table

__all__ = ["EXIT_FOUND", "EXIT_OK", "EXIT_USAGE", "entrypoint", "main", "main_parser"]

EXIT_OK = 0
#: Preview items found (scan, env), an invalid table (validate), an inactive guard (doctor).
EXIT_FOUND = 1
#: A usage or configuration error (also an unknown item for ``explain``).
EXIT_USAGE = 2
#: ``run``: the command could not be started (as a shell says).
EXIT_NOT_FOUND = 127

KINDS = ("api", "env", "flag", "package", "feature", "model")
TIERS = ("alpha", "beta", "stable")


class _UsageError(Exception):
    """A bad command line that argparse could not catch; exit 2 with one line."""


def _say(msg: str) -> None:
    sys.stderr.write(f"neuron-guard: {msg}\n")


# -- shared helpers --------------------------------------------------------------------


def _settings(allow: Sequence[str] = ()) -> Settings:
    from ._config import resolve

    return resolve(allow=list(allow) or None)


def _table(settings: Settings) -> Table:
    from ._table import load_table

    return load_table(settings)


class _Output:
    """``--output FILE`` (``-`` or none: stdout), as a context manager."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self.stream: IO[str] = sys.stdout

    def __enter__(self) -> IO[str]:
        if self.path and self.path != "-":
            try:
                self.stream = open(self.path, "w", encoding="utf-8")
            except OSError as exc:
                msg = f"cannot write {self.path!r}: {exc.strerror or exc}"
                raise _UsageError(msg) from None
        return self.stream

    def __exit__(self, *exc: object) -> None:
        if self.stream is not sys.stdout:
            self.stream.close()


def _tier_of(entries: list[Entry]) -> Entry | None:
    from ._table import pick

    return pick(entries)


# -- scan -------------------------------------------------------------------------------


def cmd_scan(args: argparse.Namespace) -> int:
    from ._scan import build_index, scan_paths
    from ._scan_output import WRITERS

    settings = _settings()
    table = _table(settings)
    idx = build_index(table, settings, args.allow)
    result = scan_paths(args.paths, idx, exclude=args.exclude, jobs=args.jobs)
    with _Output(args.output) as out:
        WRITERS[args.format](result, out)
    for path, line, col, msg in result.errors if args.format != "text" or args.output else ():
        _say(f"{path}:{line}:{col}: {msg}")
    return EXIT_FOUND if result.failing else EXIT_OK


# -- run ----------------------------------------------------------------------------------


def _child_env(args: argparse.Namespace) -> dict[str, str]:
    from ._config import parse_patterns
    from ._types import Mode

    env = dict(os.environ)
    mode = args.mode or env.get("NEURON_GUARD", "").strip() or "warn"
    env["NEURON_GUARD"] = str(Mode.parse(mode, where="--mode" if args.mode else "NEURON_GUARD"))
    if args.allow:
        parse_patterns(args.allow, origin="--allow")  # a typo is a usage error, here
        allow = [p for p in (env.get("NEURON_GUARD_ALLOW", ""), *args.allow) if p.strip()]
        env["NEURON_GUARD_ALLOW"] = ",".join(allow)
    if args.report:
        env["NEURON_GUARD_REPORT"] = os.path.abspath(args.report)
    return env


def _command(cmd: list[str]) -> list[str]:
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        msg = "run needs a command: neuron-guard run [OPTIONS] -- CMD [ARGS...] or run script.py"
        raise _UsageError(msg)
    if cmd[0].endswith((".py", ".pyw")) and os.path.isfile(cmd[0]):
        return [sys.executable, *cmd]
    return cmd


def _warn_if_inactive(cmd: list[str], env: dict[str, str]) -> None:
    """When ``cmd`` runs another Python that lacks the start-up file, say so (one line)."""
    import shutil
    import subprocess

    name = os.path.basename(cmd[0]).lower()
    if not name.startswith("python"):
        return
    exe = shutil.which(cmd[0], path=env.get("PATH"))
    if exe is None or os.path.realpath(exe) == os.path.realpath(sys.executable):
        return
    probe = "import sys; sys.exit(0 if 'neuron_guard' in sys.modules else 3)"
    quiet = dict(env, NEURON_GUARD="warn")  # the probe itself must not stop at start-up
    try:
        code = subprocess.call(
            [exe, "-c", probe],
            env=quiet,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return
    if code == 3:
        _say(
            f"{exe} does not load neuron_guard at start-up (neuron-guard is not installed "
            "in its environment): the guard is not active in it; install neuron-guard there"
        )


def cmd_run(args: argparse.Namespace) -> int:
    import subprocess

    env = _child_env(args)
    cmd = _command(list(args.command))
    _warn_if_inactive(cmd, env)
    try:
        proc = subprocess.Popen(cmd, env=env)
    except OSError as exc:
        _say(f"cannot run {cmd[0]!r}: {exc.strerror or exc}")
        return EXIT_NOT_FOUND
    while True:
        try:
            code = proc.wait()
            break
        except KeyboardInterrupt:  # the child got the SIGINT too: wait for its exit code
            continue
    return 128 - code if code < 0 else code


# -- explain, list ---------------------------------------------------------------------------


def _split_kind(name: str) -> tuple[str | None, str]:
    prefix, sep, rest = name.partition(":")
    if sep and prefix in KINDS and rest:
        return prefix, rest
    return None, name


def _applies(e: Entry) -> str:
    from ._table import holds, installed_version

    if e.versions:
        dist = e.package or (e.name if str(e.kind) == "package" else None)
        have = installed_version(dist) if dist else None
        where = f"{dist} {e.versions}"
        state = f"installed {have}" if have else "not installed"
        return f"{where} ({state}; {'applies here' if holds(e) else 'does not apply here'})"
    if e.sdk:
        return f"Neuron SDK {e.sdk} ({'applies here' if holds(e) else 'does not apply here'})"
    return "all versions"


def cmd_explain(args: argparse.Namespace) -> int:
    from ._sdk import installed_sdk_release
    from ._types import Kind, meaning

    settings = _settings()
    table = _table(settings)
    kind, name = _split_kind(args.name)
    found = [e for e in table.find(name) if kind is None or str(e.kind) == kind]
    if not found:
        _say(f"unknown item {args.name!r}: not in the effective table; see 'neuron-guard list'")
        return EXIT_USAGE
    out = sys.stdout
    for i, e in enumerate(found):
        if i:
            out.write("\n")
        out.write(f"{e.kind} {e.display_name}\n")
        out.write(f"  tier:        {e.tier} ({Kind(e.kind).label})\n")
        out.write(f"  meaning:     {meaning(e.kind, e.tier)}\n")
        out.write(f"  versions:    {_applies(e)}\n")
        for label, value in (
            ("values", ", ".join(e.values) if e.values else None),
            ("aliases", ", ".join(e.aliases) if e.aliases else None),
            ("carriers", ", ".join(e.carriers) if e.carriers else None),
            ("triggers", ", ".join(e.triggers) if e.triggers else None),
            ("module", e.module),
            ("framework", e.framework),
            ("library", e.library),
            ("workload", e.workload),
            ("replacement", e.replacement),
            ("deprecated", e.deprecated),
            ("removed", e.removed),
            ("note", e.note),
            ("evidence", e.source),
        ):
            if value:
                out.write(f"  {label + ':':<12} {value}\n")
        out.write(f"  table:       {e.origin}\n")
        if e.tier.preview:
            out.write(f"  opt in:      NEURON_GUARD_ALLOW={e.kind}:{e.display_name}\n")
    rel = installed_sdk_release()
    sdk = rel.version or "unknown"
    if rel.version and not rel.exact:
        sdk += " (one of " + ", ".join(rel.candidates) + ")" if rel.candidates else ""
    out.write(f"\ninstalled Neuron SDK: {sdk}; {rel.reason}\n")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    settings = _settings()
    table = _table(settings)
    entries = [
        e
        for e in table.entries
        if (args.kind is None or str(e.kind) == args.kind)
        and (args.tier is None or str(e.tier) == args.tier)
    ]
    entries.sort(key=lambda e: (str(e.kind), e.display_name, e.versions or "", e.sdk or ""))
    if args.json:
        import json

        json.dump([e.as_dict() for e in entries], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    for e in entries:
        extra = []
        if e.versions:
            extra.append(f"{e.package or e.name} {e.versions}")
        if e.sdk:
            extra.append(f"sdk {e.sdk}")
        if e.workload:
            extra.append(e.workload)
        if e.deprecated:
            extra.append(f"deprecated {e.deprecated}")
        tail = f"  ({'; '.join(extra)})" if extra else ""
        sys.stdout.write(f"{e.tier:<7} {e.kind:<8} {e.display_name}{tail}\n")
    sys.stdout.write(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}\n")
    return EXIT_OK


# -- env ------------------------------------------------------------------------------------


def cmd_env(args: argparse.Namespace) -> int:
    from ._environ import environment_findings
    from ._policy import ItemInfo, allowed_by
    from ._state import runtime

    settings = _settings()
    table = _table(settings)
    bad = 0
    shown = 0
    allowed_features = set()
    uses = environment_findings(table, settings, dict(os.environ))
    for e, _what, _trigger in uses:
        if str(e.kind) in ("feature", "model"):
            info = ItemInfo(e.kind, e.name, e.tier)
            if allowed_by(info, settings.allow, by_name_only=True):
                allowed_features.add(e.name)
    for e, what, trigger in uses:
        if not (e.tier.preview or e.deprecated):
            continue
        shown += 1
        info = ItemInfo(e.kind, e.display_name, e.tier)
        ok = allowed_by(info, settings.allow) if e.tier.preview else True
        via = f" (switched on by {trigger})" if trigger else ""
        if e.tier.preview:
            state = "allowed" if ok else "not allowed"
            if not ok:
                bad += 1
        else:
            state = f"deprecated since {e.deprecated}"
            if e.replacement:
                state += f"; use {e.replacement!r}"
        sys.stdout.write(f"{e.tier:<7} {e.kind:<8} {what}{via}: {state}\n")
    err = runtime.startup_error
    if err is not None:
        sys.stdout.write(f"start-up check: {type(err).__name__}: {err}\n")
    sys.stdout.write(
        f"{shown} preview or deprecated item(s) in the environment, {bad} not allowed "
        f"(mode {settings.mode})\n"
    )
    return EXIT_FOUND if bad else EXIT_OK


# -- validate ---------------------------------------------------------------------------------


def _stale(e: Entry) -> str | None:
    """Why an api entry names something the installed package does not have, or None."""
    import importlib
    import importlib.util

    name = e.name
    if name.endswith(".*"):
        name = name[:-2]
    parts = name.split(".")
    try:
        if importlib.util.find_spec(parts[0]) is None:
            return None  # not installed: absent, not stale
    except (ImportError, ValueError):
        return None
    module = None
    for i in range(len(parts), 0, -1):
        mod_name = ".".join(parts[:i])
        try:
            module = importlib.import_module(mod_name)
        except ImportError:
            continue
        except Exception as exc:  # a package that fails to import: not our finding
            return f"cannot check: importing {mod_name!r} failed: {type(exc).__name__}"
        obj: Any = module
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                return f"{getattr(obj, '__name__', mod_name)!s} has no attribute {attr!r}"
            obj = getattr(obj, attr)
        if e.argument:
            import inspect

            try:
                params = inspect.signature(obj).parameters
            except (TypeError, ValueError):
                return None
            kinds = {p.kind for p in params.values()}
            if e.argument not in params and inspect.Parameter.VAR_KEYWORD not in kinds:
                return f"{name} has no argument {e.argument!r}"
        return None
    return f"no module of {name!r} can be imported"


def _sources_to_validate(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """``(label, loader)`` pairs: the named files, or every source of the effective table."""
    from ._table import _entry_point_tables, embedded_toml_files, load_file

    def file_loader(path: str) -> Any:
        return lambda: load_file(path)

    if args.tables:
        for path in args.tables:
            if not os.path.isfile(path):
                msg = f"table {path!r} does not exist"
                raise _UsageError(msg)
        return [(p, file_loader(p)) for p in args.tables]
    settings = _settings()
    out: list[tuple[str, Any]] = [(p, file_loader(p)) for p in embedded_toml_files()]
    out += [(p, file_loader(p)) for p in settings.tables]
    out.append(
        (
            "entry points neuron_guard.tables",
            lambda: [e for _, entries in _entry_point_tables() for e in entries],
        )
    )
    return out


def cmd_validate(args: argparse.Namespace) -> int:
    from ._state import runtime
    from ._types import Mode

    invalid = 0
    stale = 0
    total = 0
    # importing packages to check them must not warn or raise in this process
    saved = runtime.settings
    runtime.set_settings(saved.with_(mode=Mode.OFF))
    try:
        for label, load in _sources_to_validate(args):
            try:
                entries = load()
            except ConfigError as exc:
                invalid += 1
                sys.stdout.write(f"invalid: {exc}\n")
                continue
            total += len(entries)
            if args.no_stale:
                continue
            for e in entries:
                if str(e.kind) != "api":
                    continue
                why = _stale(e)
                if why is not None:
                    stale += 1
                    sys.stdout.write(f"stale: {e.label()}: {why}\n")
            del label
    finally:
        runtime.set_settings(saved)
    sys.stdout.write(
        f"{total} entries checked: {invalid} invalid table(s), {stale} stale entr"
        f"{'y' if stale == 1 else 'ies'}\n"
    )
    return EXIT_FOUND if invalid else EXIT_OK


# -- report -----------------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    from ._report import merge, write_text

    summary = merge(args.paths)
    for f, n, why in summary.skipped:
        _say(f"skipped {f}:{n}: {why}")
    with _Output(args.output) as out:
        if args.json:
            import json

            json.dump(summary.as_dict(), out, indent=2)
            out.write("\n")
        else:
            write_text(summary, out)
    return EXIT_OK


# -- doctor -----------------------------------------------------------------------------------


def _pth_files() -> list[str]:
    import site
    import sysconfig

    dirs: list[str] = []
    try:
        dirs.extend(site.getsitepackages())
    except AttributeError:  # pragma: no cover - old virtualenv's site.py
        pass
    dirs.append(sysconfig.get_paths()["purelib"])
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    seen: list[str] = []
    for d in dirs:
        path = os.path.join(d, "neuron_guard.pth")
        if os.path.isfile(path) and path not in seen:
            seen.append(path)
    return seen


def cmd_doctor(args: argparse.Namespace) -> int:
    from . import _hook
    from ._sdk import installed_sdk_release
    from ._state import runtime
    from ._version import __version__

    out = sys.stdout
    problems: list[str] = []
    out.write(f"neuron-guard {__version__} on Python {sys.version.split()[0]} ({sys.executable})\n")
    try:
        settings = _settings()
    except ConfigError as exc:
        out.write(f"configuration: INVALID: {exc}\n")
        problems.append("the configuration is invalid: every guarded process would stop")
        settings = None
    if settings is not None:
        origins = settings.origins
        out.write(f"mode: {settings.mode} (from {origins.get('mode', 'default')})\n")
        if settings.allow:
            out.write("allow patterns:\n")
            for p in settings.allow:
                out.write(f"  {p.text} (from {p.origin})\n")
        else:
            out.write("allow patterns: none\n")
        out.write(f"lock: {'on' if settings.lock else 'off'}\n")
        if settings.workload:
            out.write(f"workload: {settings.workload} (from {origins.get('workload')})\n")
        rep = f"{settings.report} (from {origins.get('report')})" if settings.report else "off"
        out.write(f"report: {rep}\n")
        for note in settings.notes:
            out.write(f"note: {note}\n")
        try:
            table = _table(settings)
            out.write("tables:\n")
            for origin, count in table.sources:
                out.write(f"  {origin}: {count} entries\n")
        except ConfigError as exc:
            out.write(f"tables: INVALID: {exc}\n")
            problems.append("a tier table is invalid")
    pths = _pth_files()
    env_mode = os.environ.get("NEURON_GUARD", "").strip().lower()
    if pths:
        out.write(f"start-up file: {pths[0]} (installed)\n")
    else:
        out.write("start-up file: neuron_guard.pth is NOT installed in this interpreter\n")
        problems.append(
            "neuron_guard.pth is not installed: only programs that 'import neuron_guard' "
            "are guarded (reinstall neuron-guard from a wheel)"
        )
    if env_mode in ("warn", "strict"):
        out.write(f"  active: yes, NEURON_GUARD={env_mode} activates it in every Python process\n")
    elif env_mode == "off":
        out.write("  active: no, NEURON_GUARD=off\n")
        problems.append("NEURON_GUARD=off: the guard is off in every process")
    elif env_mode:
        out.write(
            f"  active: no, NEURON_GUARD={env_mode!r} is invalid (processes stop at start-up)\n"
        )
        problems.append("NEURON_GUARD is invalid")
    else:
        out.write(
            "  active: no, NEURON_GUARD is unset: the start-up file does nothing and only "
            "'import neuron_guard' activates the guard (set NEURON_GUARD=warn or strict)\n"
        )
        problems.append("NEURON_GUARD is unset")
    hook = _hook.current()
    patched = list(hook.patched) if hook is not None else []
    if patched:
        out.write(f"patched in this process: {len(patched)}\n")
        for owner, attr, _orig, _guard in patched:
            owner_name = getattr(owner, "__name__", type(owner).__name__)
            out.write(f"  {owner_name}.{attr}\n")
    else:
        state = "hook installed" if hook is not None else "no hook installed"
        out.write(f"patched in this process: nothing ({state}; no guarded package imported)\n")
    rel = installed_sdk_release()
    out.write(f"Neuron SDK: {rel.version or 'unknown'}; {rel.reason}\n")
    err = runtime.startup_error
    if err is not None:
        out.write(f"start-up check: {type(err).__name__}: {err}\n")
        if isinstance(err, ConfigError):
            problems.append("the start-up configuration is invalid")
    if problems:
        out.write("verdict: the guard would NOT be active: " + "; ".join(problems) + "\n")
        return EXIT_FOUND
    out.write("verdict: the guard is active in every Python process of this interpreter\n")
    return EXIT_OK


# -- the parser ---------------------------------------------------------------------------------


def main_parser() -> argparse.ArgumentParser:
    """The ``neuron-guard`` argument parser, one sub-command per verb."""
    from ._version import __version__

    parser = argparse.ArgumentParser(
        prog="neuron-guard",
        description="Enforce the AWS Neuron SDK's Alpha/Beta/Stable classification.",
        epilog="Exit codes: 0 ok, 1 found (see each verb), 2 usage or configuration error.",
    )
    parser.add_argument("--version", action="version", version=f"neuron-guard {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True

    p = sub.add_parser(
        "scan",
        help="static scan of Python sources (exit 1 if preview found)",
        description="Scan Python sources for preview and deprecated items.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="files or directories")
    p.add_argument("--format", choices=("text", "json", "sarif"), default="text")
    p.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
    p.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="PATTERN",
        help="allow pattern (repeatable), added to NEURON_GUARD_ALLOW and pyproject",
    )
    p.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="skip paths matching GLOB (repeatable)",
    )
    p.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=None,
        metavar="N",
        help="worker processes (default: the usable CPUs)",
    )
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser(
        "run",
        help="run a program with the guard active in it and its children",
        description="Run CMD (or a script) under the guard; exits with its code.",
    )
    p.add_argument("--mode", choices=("off", "warn", "strict"), default=None)
    p.add_argument("--allow", action="append", default=[], metavar="PATTERN")
    p.add_argument("--report", metavar="DIR", help="one JSON Lines report per process here")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ...")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("explain", help="what the table says about an item (exit 2 if unknown)")
    p.add_argument("name", metavar="NAME", help="item name, or KIND:NAME")
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("list", help="the effective table")
    p.add_argument("--kind", choices=KINDS)
    p.add_argument("--tier", choices=TIERS)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("env", help="check this environment's variables (exit 1 if preview)")
    p.set_defaults(func=cmd_env)

    p = sub.add_parser("validate", help="check tier tables and stale entries (exit 1 if invalid)")
    p.add_argument("tables", nargs="*", metavar="TABLE")
    p.add_argument("--no-stale", action="store_true", help="skip the stale-entry check")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("report", help="merge per-process reports")
    p.add_argument("paths", nargs="+", metavar="PATH", help="report files or directories")
    p.add_argument("--json", action="store_true")
    p.add_argument("--output", "-o", metavar="FILE")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("doctor", help="is the guard active here? (exit 1 if not)")
    p.set_defaults(func=cmd_doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one verb; returns the exit code (2 for usage and configuration errors)."""
    parser = main_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or argparse's own usage error
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return int(args.func(args))
    except (ConfigError, _UsageError) as exc:
        _say(f"error: {exc}")
        return EXIT_USAGE
    except BrokenPipeError:  # `neuron-guard list | head`
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - no flush error at exit
        except OSError:
            pass
        return EXIT_OK
    except KeyboardInterrupt:
        return 130


def entrypoint() -> None:
    """The console script and ``python -m neuron_guard``."""
    sys.exit(main())
