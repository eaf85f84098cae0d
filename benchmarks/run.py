"""neuron_guard benchmarks: every figure in one run, peers side by side, PASS/MISS per goal.

    python benchmarks/run.py                # everything (under 5 minutes on 2 cores)
    python benchmarks/run.py --quick        # fewer rounds, for a smoke test
    python benchmarks/run.py --only percall,startup --json out.json

Sections: per-call cost (peers and neuron_guard), interpreter start-up, import of large
real packages with a 50-entry table targeting them, static-scan throughput against bare
``ast.parse``, and the audit hook's cost per ``os.environ`` write. Every child process
runs with ``PYTHONDONTWRITEBYTECODE`` unset (a real install has ``.pyc`` files), no
``NEURON_*`` variable from outside, and a working directory without ``pyproject.toml``.
The peers come from the ``bench`` extra: ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
PY = sys.executable


# -- reporting -------------------------------------------------------------------------


class Report:
    """Rows and goal verdicts, printed as they come and kept for ``--json``."""

    def __init__(self) -> None:
        self.sections: dict[str, Any] = {}
        self.goals: list[dict[str, Any]] = []

    def title(self, text: str) -> None:
        print(f"\n== {text}", flush=True)

    def table(self, header: list[str], rows: list[list[Any]]) -> None:
        cells = [header] + [[_fmt(c) for c in r] for r in rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
        for i, r in enumerate(cells):
            print(
                "  "
                + "  ".join(
                    c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))
                )
            )
            if i == 0:
                print("  " + "  ".join("-" * w for w in widths))

    def goal(
        self,
        name: str,
        value: float | None,
        limit: float,
        *,
        at_most: bool,
        unit: str = "x",
        note: str = "",
    ) -> None:
        if value is None:
            verdict = "N/A"
        elif at_most:
            verdict = "PASS" if value <= limit else "MISS"
        else:
            verdict = "PASS" if value >= limit else "MISS"
        cmp = "<=" if at_most else ">="
        shown = "n/a" if value is None else f"{value:.2f}{unit}"
        tail = f"  {note}" if note else ""
        print(f"  {verdict:4}  {name}: {shown} (goal {cmp} {limit:g}{unit}){tail}", flush=True)
        self.goals.append(
            {
                "goal": name,
                "value": value,
                "limit": limit,
                "at_most": at_most,
                "verdict": verdict,
                "note": note,
            }
        )


def _fmt(c: Any) -> str:
    if isinstance(c, float):
        return f"{c:,.1f}" if abs(c) < 100 else f"{c:,.0f}"
    return str(c)


# -- machine and child processes ---------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    versions = {}
    for dist in ("wrapt", "deprecated", "typing_extensions", "langchain-core", "numpy", "torch"):
        versions[dist] = _dist_version(dist)
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        **{f"{k} version": v for k, v in versions.items()},
    }


def _dist_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a measured child: no NEURON_*, bytecode writing allowed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEURON_")}
    for var in (
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONWARNINGS",
        "PYTHONSTARTUP",
        "PYTHONPROFILEIMPORTTIME",
    ):
        env.pop(var, None)
    env.update(extra)
    return env


def run_child(args: list[str], env: dict[str, str], cwd: str, timeout: float = 600) -> str:
    proc = subprocess.run(
        [PY, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        shown = " ".join(a if len(a) < 60 else a[:20] + "..." for a in args)
        msg = f"child 'python {shown}' failed ({proc.returncode}):\n{proc.stderr[-2000:]}"
        raise RuntimeError(msg)
    return proc.stdout


def time_commands(
    cmds: dict[str, tuple[list[str], dict[str, str]]],
    runs: int,
    cwd: str,
    ok: tuple[int, ...] = (0,),
) -> dict[str, list[float]]:
    """Wall time of each command, ``runs`` times, interleaved; one unmeasured run first."""
    out: dict[str, list[float]] = {name: [] for name in cmds}
    for name, (args, env) in cmds.items():  # writes the .pyc files, warms the disk cache
        proc = subprocess.run([PY, *args], env=env, cwd=cwd, capture_output=True, check=False)
        if proc.returncode not in ok:
            msg = f"{name}: exit {proc.returncode}: {proc.stderr.decode(errors='replace')[-2000:]}"
            raise RuntimeError(msg)
    for _ in range(runs):
        for name, (args, env) in cmds.items():
            t0 = time.perf_counter()
            subprocess.run(
                [PY, *args],
                env=env,
                cwd=cwd,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
            )
            out[name].append(time.perf_counter() - t0)
    return out


# -- 1. per call -------------------------------------------------------------------------


def bench_percall(rep: Report, quick: bool, cwd: str) -> None:
    rounds = "8" if quick else "30"
    rep.title(f"Per call: def f(x): return x; minimum ns over {rounds} interleaved rounds")
    warn = json.loads(run_child([str(HERE / "percall.py"), "warn", rounds], child_env(), cwd))
    strict = json.loads(
        run_child(
            [str(HERE / "percall.py"), "strict", rounds],
            child_env(NEURON_GUARD="strict", NEURON_GUARD_ALLOW="api:bench.*"),
            cwd,
        )
    )
    w, s = warn["ns"], strict["ns"]
    rep.sections["percall"] = {"warn process": warn, "strict process": strict}

    def rows(
        ns: dict[str, float], names: list[tuple[str, str]], bare: str, clos: str
    ) -> list[list[Any]]:
        out = []
        base = ns[bare]
        c_over = ns[clos] - base
        for key, label in names:
            if key not in ns:
                continue
            over = ns[key] - base
            out.append(
                [
                    label,
                    ns[key],
                    f"{ns[key] / base:.1f}x",
                    over if key != bare else "-",
                    f"{over / c_over:.2f}x" if key != bare else "-",
                ]
            )
        return out

    header = ["case", "ns/call", "vs bare", "overhead ns", "overhead vs closure"]
    functions = [
        ("bare", "bare call"),
        ("closure", "functools.wraps closure passthrough"),
        ("wrapt", "wrapt.FunctionWrapper passthrough"),
        ("langchain_beta", "langchain-core @beta"),
        ("typing_extensions", "typing_extensions.deprecated"),
        ("deprecated", "deprecated.deprecated"),
        ("ng_warn", "neuron_guard @tier('beta'), warn, steady state"),
    ]
    print("  functions (warn process)")
    rep.table(header, rows(w, functions, "bare", "closure"))
    print("  functions (strict process, NEURON_GUARD_ALLOW=api:bench.*)")
    rep.table(
        header,
        rows(
            s,
            [
                ("bare", "bare call"),
                ("closure", "functools.wraps closure"),
                ("wrapt", "wrapt.FunctionWrapper passthrough"),
                ("ng_strict_allowed", "neuron_guard strict, item allowed"),
                ("ng_scoped_allow", "neuron_guard strict, inside allow() scope"),
            ],
            "bare",
            "closure",
        ),
    )
    for kind, label in (
        ("method", "methods (a.m(1))"),
        ("class", "classes (C(1))"),
        ("async", "coroutine functions (one send(None), no event loop)"),
    ):
        print(f"  {label}")
        names = [
            (f"{kind}_bare", "bare"),
            (f"{kind}_closure", "closure"),
            (f"{kind}_wrapt", "wrapt.FunctionWrapper"),
            (f"{kind}_ng", "neuron_guard"),
        ]
        rep.table(header, rows(w, names, f"{kind}_bare", f"{kind}_closure"))

    print("  goals (issue 2, item 8): overhead = ns/call - bare")
    checks = [
        ("warn steady state", w, "bare", "closure", "wrapt", "ng_warn"),
        ("strict, item allowed", s, "bare", "closure", "wrapt", "ng_strict_allowed"),
        ("method, warn", w, "method_bare", "method_closure", "method_wrapt", "method_ng"),
        # wrapt around a class costs little next to instantiation itself: no wrapt goal there
        ("class, warn", w, "class_bare", "class_closure", None, "class_ng"),
        ("async, warn", w, "async_bare", "async_closure", None, "async_ng"),
    ]
    for label, ns, bare, clos, wr, ng in checks:
        ng_over = ns[ng] - ns[bare]
        rep.goal(
            f"{label}: overhead / closure overhead",
            ng_over / (ns[clos] - ns[bare]),
            1.3,
            at_most=True,
        )
        if wr is not None:
            rep.goal(
                f"{label}: wrapt overhead / neuron_guard overhead",
                (ns[wr] - ns[bare]) / ng_over,
                3.0,
                at_most=False,
            )
    rep.goal(
        "strict inside allow() scope: overhead / closure overhead",
        (s["ng_scoped_allow"] - s["bare"]) / (s["closure"] - s["bare"]),
        1.3,
        at_most=True,
        note="(not a goal of issue 2: scoped opt-ins take the slow path on every call)",
    )
    ev = warn["events"]
    exact = all(isinstance(v, int) and v > 0 for v in ev.values())
    print(f"  events() after the run counted every call: {exact} ({sum(ev.values()):,} calls)")


# -- 2. start-up -------------------------------------------------------------------------


def bench_startup(rep: Report, quick: bool, cwd: str) -> None:
    runs = 15 if quick else 60
    rep.title(f"Start-up: {runs} interleaved runs each, wall time of the whole process")
    cmds = {
        "python -c pass": (["-c", "pass"], child_env()),
        'python -c "import neuron_guard"': (["-c", "import neuron_guard"], child_env()),
        "NEURON_GUARD=strict python -c pass": (["-c", "pass"], child_env(NEURON_GUARD="strict")),
        "NEURON_GUARD=warn python -c pass": (["-c", "pass"], child_env(NEURON_GUARD="warn")),
    }
    times = time_commands(cmds, runs, cwd)
    base_med = statistics.median(times["python -c pass"])
    base_min = min(times["python -c pass"])
    rows = []
    for name, ts in times.items():
        med, lo = statistics.median(ts), min(ts)
        rows.append([name, med * 1e3, lo * 1e3, f"{med / base_med:.2f}x", f"{lo / base_min:.2f}x"])
    rep.table(["command", "median ms", "min ms", "median vs pass", "min vs pass"], rows)
    rep.sections["startup"] = {k: [round(t * 1e3, 2) for t in v] for k, v in times.items()}
    for name in ('python -c "import neuron_guard"', "NEURON_GUARD=strict python -c pass"):
        ts = times[name]
        rep.goal(
            f"{name} (median)",
            statistics.median(ts) / base_med,
            1.5,
            at_most=True,
            note=f"min ratio {min(ts) / base_min:.2f}x",
        )


# -- 3. import of a large real package -----------------------------------------------------


PICK_TARGETS = r"""
import importlib, inspect, json, sys
pkg, n = sys.argv[1], int(sys.argv[2])
importlib.import_module(pkg)
mods = sorted(
    m for m in list(sys.modules)
    if (m == pkg or m.startswith(pkg + "."))
    and not any(p.startswith("_") for p in m.split("."))
)
per_mod = []
for m in mods:
    mod = sys.modules[m]
    try:
        names = [a for a in (getattr(mod, "__all__", None) or vars(mod)) if isinstance(a, str)]
    except TypeError:  # not a real module (torch's op namespaces)
        continue
    picked = []
    for a in sorted(set(names)):
        if a.startswith("_"):
            continue
        v = getattr(mod, a, None)
        wanted = inspect.isfunction(v) or inspect.isclass(v) or inspect.isbuiltin(v)
        if inspect.ismodule(v) or not wanted:
            continue
        if not str(getattr(v, "__module__", "") or "").startswith(pkg):
            continue
        picked.append((f"{m}.{a}", v))
    if picked:
        per_mod.append(picked)
out, seen = [], set()
while len(out) < n and any(per_mod):
    for picked in per_mod:
        while picked:
            name, v = picked.pop(0)
            if id(v) not in seen:
                seen.add(id(v))
                out.append(name)
                break
        if len(out) >= n:
            break
kinds = {}
for name in out:
    mod, _, attr = name.rpartition(".")
    v = getattr(sys.modules[mod], attr)
    k = "class" if inspect.isclass(v) else "function" if inspect.isfunction(v) else "C callable"
    kinds[k] = kinds.get(k, 0) + 1
json.dump({"targets": out, "kinds": kinds}, sys.stdout)
"""

VERIFY = r"""
import sys, importlib
importlib.import_module(sys.argv[1])
from neuron_guard._hook import current
from neuron_guard._wrap import is_guard
h = current()
print(len(h._done) if h is not None else -1)
"""


def write_table(path: Path, targets: list[str]) -> None:
    lines = ["# written by benchmarks/run.py: real attributes of the measured package", ""]
    for name in targets:
        lines += ["[[api]]", f'name = "{name}"', 'tier = "beta"', 'source = "benchmark"', ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def bench_import(rep: Report, quick: bool, cwd: str, packages: list[str]) -> None:
    rep.title("Import of a large real package, 50-entry table targeting it (warn) vs guard off")
    rep.sections["import"] = {}
    for pkg in packages:
        try:
            picked = json.loads(run_child(["-c", PICK_TARGETS, pkg, "50"], child_env(), cwd))
        except RuntimeError as exc:
            print(f"  {pkg}: not measured: {exc}")
            continue
        targets = picked["targets"]
        table = Path(cwd) / f"bench_{pkg}_table.toml"
        write_table(table, targets)
        on = child_env(NEURON_GUARD="warn", NEURON_GUARD_TABLES=str(table))
        guarded = int(run_child(["-c", VERIFY, pkg], on, cwd).strip())
        heavy = pkg == "torch"
        runs = (2 if quick else 5) if heavy else (6 if quick else 15)
        code = f"import {pkg}"
        cmds = {} if heavy else {"python -c pass": (["-c", "pass"], child_env())}
        cmds |= {
            f"{code} (guard off)": (["-c", code], child_env()),
            f"import wrapt; {code} (guard off)": (["-c", f"import wrapt; {code}"], child_env()),
            f"{code} (warn, embedded table only)": (["-c", code], child_env(NEURON_GUARD="warn")),
            f"{code} (warn + 50-entry table)": (["-c", code], on),
        }
        times = time_commands(cmds, runs, cwd)
        med = {k: statistics.median(v) for k, v in times.items()}
        off = med[f"{code} (guard off)"]
        print(
            f"  {pkg} {_dist_version(pkg)}: {len(targets)} table entries "
            f"({', '.join(f'{v} {k}' for k, v in picked['kinds'].items())}), "
            f"{guarded} objects guarded after import; {runs} interleaved runs"
        )
        rep.table(
            ["command", "median ms", "min ms", "vs guard off"],
            [[k, med[k] * 1e3, min(v) * 1e3, f"{med[k] / off:.3f}x"] for k, v in times.items()],
        )
        on_med = med[f"{code} (warn + 50-entry table)"]
        wrapt_cost = med[f"import wrapt; {code} (guard off)"] - off
        guard_cost = on_med - off
        rep.sections["import"][pkg] = {
            "targets": targets,
            "guarded": guarded,
            "ms": {k: [round(t * 1e3, 2) for t in v] for k, v in times.items()},
        }
        rep.goal(
            f"import {pkg} with a 50-entry table, guard on vs off (median)",
            on_med / off,
            1.10,
            at_most=True,
            note=f"guard adds {guard_cost * 1e3:.0f} ms, of which importing wrapt "
            f"alone is {wrapt_cost * 1e3:.0f} ms",
        )


# -- 4. scan throughput ----------------------------------------------------------------------


PARSE_ALL = r"""
import ast, os, sys
n = 0
for root, dirs, files in os.walk(sys.argv[1]):
    for f in files:
        if f.endswith(".py"):
            with open(os.path.join(root, f), "rb") as fh:
                src = fh.read()
            try:
                ast.parse(src)
            except (SyntaxError, ValueError):
                pass
            n += 1
print(n)
"""


def make_corpus(dest: Path) -> tuple[int, int]:
    """Copy the installed numpy's Python sources (a real corpus) outside the venv."""
    import importlib.util

    spec = importlib.util.find_spec("numpy")
    if spec is None or not spec.submodule_search_locations:
        src = Path(os.__file__).parent / "email"  # the stdlib, when numpy is absent
    else:
        src = Path(next(iter(spec.submodule_search_locations)))
    files = size = 0
    for path in src.rglob("*.py"):
        target = dest / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        files += 1
        size += path.stat().st_size
    return files, size


def has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def bench_scan(rep: Report, quick: bool, cwd: str) -> None:
    rep.title("Static scan throughput vs bare ast.parse (same files, whole processes)")
    corpus = Path(cwd) / "corpus"
    files, size = make_corpus(corpus)
    if not has_module("neuron_guard._scan"):
        print("  not measured: neuron_guard._scan (the scan verb) is not in this tree yet")
        rep.goal(
            "scan speed / ast.parse speed",
            None,
            0.5,
            at_most=False,
            note="measured through 'python -m neuron_guard scan PATH --format json'",
        )
        return
    runs = 2 if quick else 5
    cmds = {
        "ast.parse every file": (["-c", PARSE_ALL, str(corpus)], child_env()),
        "neuron-guard scan --format json": (
            ["-m", "neuron_guard", "scan", str(corpus), "--format", "json"],
            child_env(),
        ),
    }
    times = time_commands(cmds, runs, cwd, ok=(0, 1))
    best = {k: min(v) for k, v in times.items()}
    mb = size / 1e6
    print(f"  corpus: the installed numpy's sources, {files} files, {mb:.1f} MB; best of {runs}")
    rep.table(
        ["command", "min s", "files/s", "MB/s"],
        [[k, v, files / v, mb / v] for k, v in best.items()],
    )
    rep.sections["scan"] = {
        "files": files,
        "bytes": size,
        "s": {k: [round(t, 3) for t in v] for k, v in times.items()},
    }
    rep.goal(
        "scan speed / ast.parse speed",
        best["ast.parse every file"] / best["neuron-guard scan --format json"],
        0.5,
        at_most=False,
        note=f"{os.cpu_count()} cores available to the scan",
    )


# -- 5. audit hook per os.environ write ------------------------------------------------------


ENVIRON_WRITES = r"""
import os, sys, timeit
rounds = int(sys.argv[1])
env = os.environ
t = timeit.Timer("env['NG_BENCH_UNRELATED'] = '1'", globals={"env": env})
n = 20000
print(min(t.timeit(n) / n for _ in range(rounds)) * 1e9)
"""


def bench_environ(rep: Report, quick: bool, cwd: str) -> None:
    rep.title("Audit hook: cost of one os.environ write (an unrelated variable)")
    rounds = "10" if quick else "40"
    env_table = Path(cwd) / "bench_env_table.toml"
    env_table.write_text(
        '[[env]]\nname = "NG_BENCH_PREVIEW"\ntier = "beta"\nsource = "benchmark"\n',
        encoding="utf-8",
    )
    configs = {
        "guard off": child_env(),
        "NEURON_GUARD=warn (embedded table)": child_env(NEURON_GUARD="warn"),
        "NEURON_GUARD=strict (embedded table)": child_env(NEURON_GUARD="strict"),
        "NEURON_GUARD=warn + an [[env]] entry": child_env(
            NEURON_GUARD="warn", NEURON_GUARD_TABLES=str(env_table)
        ),
    }
    best: dict[str, float] = {}
    for _ in range(3):  # interleave whole processes too
        for name, env in configs.items():
            v = float(run_child(["-c", ENVIRON_WRITES, rounds], env, cwd))
            best[name] = min(best.get(name, v), v)
    off = best["guard off"]
    rep.table(
        ["configuration", "ns/write", "added ns", "vs off"],
        [[k, v, v - off, f"{v / off:.2f}x"] for k, v in best.items()],
    )
    rep.sections["environ"] = best
    placeholder = "addaudithook" not in (
        HERE.parent / "src" / "neuron_guard" / "_environ.py"
    ).read_text(encoding="utf-8")
    added = best["NEURON_GUARD=warn + an [[env]] entry"] - off
    note = (
        "_environ installs no audit hook yet (placeholder)"
        if placeholder
        else "perf-baseline: a no-op Python audit hook adds ~280 ns"
    )
    print(f"  added per write with the guard's audit hook: {added:.0f} ns ({note})")


# -- main -------------------------------------------------------------------------------------

SECTIONS: dict[str, Callable[..., None]] = {
    "percall": bench_percall,
    "startup": bench_startup,
    "import": bench_import,
    "scan": bench_scan,
    "environ": bench_environ,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke test)")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help="comma-separated sections: " + ", ".join(SECTIONS),
    )
    parser.add_argument(
        "--packages",
        default="numpy,torch",
        help="large packages for the import benchmark (default numpy,torch)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write every figure as JSON")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; valid: {', '.join(SECTIONS)}")
    rep = Report()
    info = machine()
    print("neuron_guard benchmarks on " + "; ".join(f"{k}: {v}" for k, v in info.items()))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ng-bench-") as cwd:
        for name in chosen:
            fn = SECTIONS[name]
            if name == "import":
                fn(rep, args.quick, cwd, [p for p in args.packages.split(",") if p])
            else:
                fn(rep, args.quick, cwd)
    elapsed = time.perf_counter() - started
    rep.title(f"Summary ({elapsed:.0f} s)")
    for g in rep.goals:
        shown = "n/a" if g["value"] is None else f"{g['value']:.2f}x"
        print(f"  {g['verdict']:4}  {g['goal']}: {shown}")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"machine": info, "elapsed_s": elapsed, "goals": rep.goals, **rep.sections},
                indent=1,
            ),
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
