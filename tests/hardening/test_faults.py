"""Faults: broken tables, full disks, failing imports, shape-shifting targets, our own errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest

import neuron_guard
from neuron_guard import BetaWarning, PreviewError

from ..conftest import STANDIN_SDK, clean_env

PRINT_EVENTS = """
import json, neuron_guard
print(json.dumps([[e.name, e.action, e.count] for e in neuron_guard.events()]))
"""


def write_tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def program(*parts: str) -> str:
    """Source made of dedented parts."""
    return "\n".join(textwrap.dedent(p) for p in parts)


QUIET = "import warnings\nwarnings.simplefilter('ignore')\n"


def last_json(stdout: str) -> Any:
    return json.loads(stdout.strip().splitlines()[-1])


GUARDED_PROGRAM = {
    "gpkg/__init__.py": '"""Stand-in package for the fault tests (not a real SDK)."""\n',
    "gpkg/mod.py": "def f(x):\n    return x\n",
}
GUARDED_TABLE = '[[api]]\nname = "gpkg.mod.f"\ntier = "beta"\n'


class TestTableFiles:
    """A user table that cannot be read: strict fails closed, warn fails open with one line."""

    @pytest.mark.parametrize("shape", ["missing", "directory", "not utf-8"])
    def test_strict_fails_closed(self, run_python: Any, tmp_path: Path, shape: str) -> None:
        """Strict start-up stops before the program runs, with exit 2 and the path on stderr."""
        table = tmp_path / "user_table.toml"
        if shape == "directory":
            table.mkdir()
        elif shape == "not utf-8":
            table.write_bytes(b"[[api]]\nname = '\xff'\n")
        r = run_python(
            'print("program ran")',
            env={"NEURON_GUARD": "strict", "NEURON_GUARD_TABLES": str(table)},
        )
        assert r.returncode == 2, (r.returncode, r.stderr)
        assert "program ran" not in r.stdout
        assert str(table) in r.stderr
        assert "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1

    @pytest.mark.parametrize("shape", ["missing", "directory"])
    def test_warn_fails_open(self, run_python: Any, tmp_path: Path, shape: str) -> None:
        """Warn: one stderr line naming the table; the program runs; @tier still guards."""
        table = tmp_path / "gone.toml"
        if shape == "directory":
            table.mkdir()
        r = run_python(
            program(
                """
            import warnings
            import neuron_guard
            @neuron_guard.tier("beta", name="still.guarded")
            def f():
                return "ran"
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                print(f(), len(w))
            """,
                PRINT_EVENTS,
            ),
            env={"NEURON_GUARD": "warn", "NEURON_GUARD_TABLES": str(table)},
        )
        assert r.returncode == 0, r.stderr
        assert "ran 1" in r.stdout
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert str(table) in lines[0]
        assert last_json(r.stdout) == [["still.guarded", "warn", 1]]

    def test_table_vanishes_after_start(self, run_python: Any, tmp_path: Path) -> None:
        """A table deleted once the process started changes nothing: it was read at start-up."""
        write_tree(tmp_path, GUARDED_PROGRAM)
        table = tmp_path / "t.toml"
        table.write_text(GUARDED_TABLE)
        r = run_python(
            f"""
            import os
            os.remove({str(table)!r})
            import gpkg.mod
            try:
                gpkg.mod.f(1)
            except RuntimeError as exc:
                print(type(exc).__name__)
            """,
            env={"NEURON_GUARD": "strict", "NEURON_GUARD_TABLES": str(table)},
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "PreviewError"


class TestReportDirectory:
    """NEURON_GUARD_REPORT that cannot be written: the program and the events survive."""

    PROGRAM = program(
        """
        import neuron_guard
        fs = [neuron_guard.tier("beta", name=f"rep.f{i}")(lambda: None) for i in range(3)]
        import warnings
        warnings.simplefilter("ignore")
        for f in fs:
            for _ in range(5):
                f()
        print("program ran")
        """,
        PRINT_EVENTS,
    )

    def test_not_a_directory_warn(self, run_python: Any, tmp_path: Path) -> None:
        """Warn: a report path that is a file gives one stderr line; every use is an event."""
        blocker = tmp_path / "report"
        blocker.write_text("a file, not a directory")
        r = run_python(
            self.PROGRAM, env={"NEURON_GUARD": "warn", "NEURON_GUARD_REPORT": str(blocker)}
        )
        assert r.returncode == 0, r.stderr
        assert "program ran" in r.stdout
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert "report" in r.stderr
        assert last_json(r.stdout) == [[f"rep.f{i}", "warn", 5] for i in range(3)]

    def test_not_a_directory_strict(self, run_python: Any, tmp_path: Path) -> None:
        """Strict: the report cannot be set up, so the process stops before the program runs."""
        blocker = tmp_path / "report"
        blocker.write_text("a file, not a directory")
        r = run_python(
            'print("program ran")',
            env={"NEURON_GUARD": "strict", "NEURON_GUARD_REPORT": str(blocker)},
        )
        assert r.returncode != 0
        assert "program ran" not in r.stdout
        assert "Traceback" not in r.stderr

    @pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs RLIMIT_FSIZE (POSIX)")
    def test_disk_fills_up(self, tmp_path: Path) -> None:
        """Writes failing with EFBIG (a full disk): one stderr line, no lost event, exit 0."""
        import resource

        report = tmp_path / "reports"
        prog = tmp_path / "prog.py"
        prog.write_text(self.PROGRAM)

        def limit_file_size() -> None:  # a real write failure: the kernel refuses the bytes
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200))

        env = clean_env(
            NEURON_GUARD="warn", NEURON_GUARD_REPORT=str(report), PYTHONDONTWRITEBYTECODE="1"
        )
        env["PYTHONPATH"] = os.pathsep.join([str(STANDIN_SDK), str(tmp_path)])
        r = subprocess.run(
            [sys.executable, str(prog)],
            env=env,
            cwd=str(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=limit_file_size,
            check=False,
        )
        assert r.returncode == 0, r.stderr
        assert "program ran" in r.stdout
        assert last_json(r.stdout) == [[f"rep.f{i}", "warn", 5] for i in range(3)]
        assert r.stderr.count("internal error") == 1, r.stderr
        assert "Traceback" not in r.stderr
        files = list(report.glob("*.jsonl"))
        assert len(files) == 1
        assert files[0].stat().st_size <= 200


class TestGuardedModuleRaises:
    """A guarded module whose body raises: the user's exception, unchanged; the guard goes on."""

    FILES = {
        "bpkg/__init__.py": '"""Stand-in package for the fault tests (not a real SDK)."""\n',
        "bpkg/bad.py": """
            def f(x):
                return x
            class BoomError(LookupError):
                pass
            raise BoomError("boom", 42)
            """,
        "bpkg/good.py": "def g(x):\n    return x\n",
    }
    TABLE = """
        [[api]]
        name = "bpkg.bad.f"
        tier = "beta"

        [[api]]
        name = "bpkg.good.g"
        tier = "beta"
        """
    PROGRAM = """
        import traceback
        for attempt in (1, 2):
            try:
                import bpkg.bad
            except LookupError as exc:
                tb = traceback.extract_tb(exc.__traceback__)
                print(attempt, type(exc).__name__, exc.args, tb[-1].filename.endswith("bad.py"),
                      exc.__cause__ is None, exc.__context__ is None)
        import bpkg.good
        try:
            bpkg.good.g(1)
            print("g ran")
        except RuntimeError as exc:
            print("g", type(exc).__name__)
        """

    @pytest.mark.parametrize(
        ("mode", "expect_g"), [("warn", "g ran"), ("strict", "g PreviewError")]
    )
    def test_exception_propagates(
        self, run_python: Any, tmp_path: Path, mode: str, expect_g: str
    ) -> None:
        """The module's own error reaches the importer twice, untouched; other modules stay guarded."""
        write_tree(tmp_path, self.FILES)
        (tmp_path / "t.toml").write_text(textwrap.dedent(self.TABLE))
        r = run_python(
            program(QUIET, self.PROGRAM, PRINT_EVENTS),
            env={"NEURON_GUARD": mode, "NEURON_GUARD_TABLES": str(tmp_path / "t.toml")},
        )
        assert r.returncode == 0, r.stderr
        out = r.stdout.splitlines()
        assert out[0] == "1 BoomError ('boom', 42) True True True"
        assert out[1] == "2 BoomError ('boom', 42) True True True"
        assert out[2] == expect_g
        assert "internal error" not in r.stderr
        action = "warn" if mode == "warn" else "raise"
        assert last_json(r.stdout) == [["bpkg.good.g", action, 1]]


#: One table entry, ``morph.mod.thing``, meeting a different object in each "version".
MORPHS = {
    "function": ("def thing(x):\n    return x\n", "thing(1)", True),
    "class": ("class thing:\n    def __init__(self, x):\n        self.x = x\n", "thing(1)", True),
    "ctypes class": (
        "import ctypes\nclass thing(ctypes.Structure):\n    _fields_ = [('x', ctypes.c_int)]\n",
        "thing(x=1)",
        True,
    ),
    "C builtin": ("thing = len\n", "thing([1])", True),
    "staticmethod holder": (
        "class thing:\n    @staticmethod\n    def run():\n        return 1\n",
        "thing()",
        True,
    ),
    "constant": ("thing = 42\n", "thing + 1", False),
    "missing": ("other = 1\n", "None", False),
    "submodule": ("from . import thing\n", "thing.__name__", False),
    "lazy attribute that fails": (
        "def __getattr__(name):\n"
        "    if name.startswith('__'):\n"
        "        raise AttributeError(name)\n"
        "    raise ImportError('optional dependency missing: ' + name)\n",
        "None",
        False,
    ),
}


class TestTargetChangesShape:
    """A table entry whose target is a function in one version, a class or nothing in another."""

    @pytest.mark.parametrize("shape", sorted(MORPHS))
    @pytest.mark.parametrize("mode", ["warn", "strict"])
    def test_skipped_or_guarded(
        self, run_python: Any, tmp_path: Path, shape: str, mode: str
    ) -> None:
        """Import always succeeds; a callable target is guarded, anything else is skipped."""
        body, use, guarded = MORPHS[shape]
        write_tree(
            tmp_path,
            {
                "morph/__init__.py": '"""Stand-in package (not a real SDK)."""\n',
                "morph/thing.py": '"""A submodule named like the API."""\n',
                "morph/mod.py": body,
                "morph-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: morph\nVersion: 1.0\n",
            },
        )
        if shape == "submodule":
            (tmp_path / "morph" / "mod.py").unlink()
            write_tree(tmp_path, {"morph/mod/__init__.py": body, "morph/mod/thing.py": "X = 1\n"})
        table = tmp_path / "t.toml"
        table.write_text(
            '[[api]]\nname = "morph.mod.thing"\ntier = "beta"\npackage = "morph"\nversions = "<2"\n\n'
            '[[api]]\nname = "morph.mod.thing"\ntier = "stable"\npackage = "morph"\nversions = ">=2"\n'
        )
        r = run_python(
            program(
                QUIET,
                f"""
            import morph.mod
            from morph.mod import *
            try:
                thing = morph.mod.thing
            except (AttributeError, ImportError):
                thing = None
            try:
                print("used", repr({use})[:20])
            except RuntimeError as exc:
                print("raised", type(exc).__name__)
            """,
                PRINT_EVENTS,
            ),
            env={"NEURON_GUARD": mode, "NEURON_GUARD_TABLES": str(table)},
        )
        assert r.returncode == 0, r.stderr
        assert "internal error" not in r.stderr, r.stderr
        events = last_json(r.stdout)
        if guarded:
            action = "warn" if mode == "warn" else "raise"
            assert events == [["morph.mod.thing", action, 1]]
            if mode == "strict":
                assert "raised PreviewError" in r.stdout
        else:
            assert events == []
            assert r.stdout.startswith("used")


class TestRecursion:
    """A guarded function calling itself: exact counts, one warning, strict scopes hold."""

    def test_warn_counts_every_level(self) -> None:
        """fact(30) counts 30 uses and warns once."""
        neuron_guard.configure(mode="warn")

        @neuron_guard.tier("beta", name="rec.fact")
        def fact(n: int) -> int:
            return 1 if n <= 1 else n * fact(n - 1)

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert fact(30) == fact.__wrapped__(30)
        assert [w.category for w in caught] == [BetaWarning]
        counts = {e.action: e.count for e in neuron_guard.events() if e.name == "rec.fact"}
        # fact(30) from the test: 30 levels; fact.__wrapped__(30): its 29 inner calls
        assert counts == {"warn": 30 + 29}

    def test_strict_allowed_in_scope(self, strict: Any) -> None:
        """In strict mode inside allow(), every level runs and counts; outside, the first raises."""

        @neuron_guard.tier("beta", name="rec.strict")
        def down(n: int) -> int:
            return 0 if n == 0 else 1 + down(n - 1)

        with neuron_guard.allow("api:rec.strict"):
            assert down(25) == 25
        with pytest.raises(PreviewError):
            down(25)
        counts = {e.action: e.count for e in neuron_guard.events() if e.name == "rec.strict"}
        assert counts == {"allow": 26, "raise": 1}

    def test_generator_recursion(self) -> None:
        """A recursive guarded generator counts one use per call that is iterated."""
        neuron_guard.configure(mode="warn", allow="api:rec.gen")

        @neuron_guard.tier("beta", name="rec.gen")
        def walk(n: int) -> Any:
            yield n
            if n:
                yield from walk(n - 1)

        assert list(walk(10)) == list(range(10, -1, -1))
        counts = {e.action: e.count for e in neuron_guard.events() if e.name == "rec.gen"}
        assert counts == {"allow": 11}


INTERNAL_ERROR = """
import neuron_guard, warnings
from neuron_guard._state import runtime

def broken_listener(item, action, file, line):
    raise KeyError("listener bug")

runtime.listeners.append(broken_listener)
fs = [neuron_guard.tier("beta", name=f"ie.f{i}")(lambda: "ran") for i in range(3)]
warnings.simplefilter("ignore")
results = []
for f in fs:
    for _ in range(2):
        try:
            results.append(f())
        except KeyError:
            results.append("KeyError")
        except RuntimeError as exc:
            results.append(type(exc).__name__)
print(results)
"""


class TestInternalError:
    """An error inside the guard (a failing event listener): warn fails open, strict closed."""

    def test_warn_fails_open_reported_once(self, run_python: Any) -> None:
        """Warn: every call runs; one stderr line for three failures; no event is lost."""
        r = run_python(program(INTERNAL_ERROR, PRINT_EVENTS), env={"NEURON_GUARD": "warn"})
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[0] == str(["ran"] * 6)
        assert r.stderr.count("internal error") == 1, r.stderr
        assert "listener bug" in r.stderr
        assert last_json(r.stdout) == [[f"ie.f{i}", "warn", 2] for i in range(3)]

    def test_strict_fails_closed(self, run_python: Any) -> None:
        """Strict with the items allowed: the guard's own error stops the first call of each."""
        r = run_python(
            program(INTERNAL_ERROR, PRINT_EVENTS),
            env={"NEURON_GUARD": "strict", "NEURON_GUARD_ALLOW": "api:ie.*"},
        )
        assert r.returncode == 0, r.stderr
        results = eval(r.stdout.splitlines()[0])  # a printed list of strings
        assert results[0::2] == ["KeyError"] * 3  # first use: the listener's error, body not run
        assert results[1::2] == ["ran"] * 3  # the use was recorded: later calls are allowed
        assert last_json(r.stdout) == [[f"ie.f{i}", "allow", 2] for i in range(3)]
