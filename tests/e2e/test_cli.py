"""The neuron-guard command in real processes: every verb and every exit code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import clean_env

FIXTURES = Path(__file__).parent.parent / "fixtures"
SCAN = FIXTURES / "scan"
TABLE = SCAN / "table.toml"
VERBS = ("scan", "run", "explain", "list", "env", "validate", "report", "doctor")


def script() -> str:
    """The installed console script, next to this interpreter."""
    found = shutil.which("neuron-guard", path=os.path.dirname(sys.executable))
    assert found is not None, "neuron-guard console script is not installed"
    return found


def cli(*args: str, env: dict[str, str | None] | None = None, cwd: Path | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run ``python -m neuron_guard ARGS`` with no NEURON_* variable leaking in."""
    e = clean_env(**(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "neuron_guard", *args],
        env=e, cwd=str(cwd) if cwd else None, capture_output=True, text=True, timeout=timeout,
        check=False,
    )  # fmt: skip


def with_table(**extra: str | None) -> dict[str, str | None]:
    return {"NEURON_GUARD_TABLES": str(TABLE), **extra}


def one_error_line(err: str) -> None:
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    assert err.startswith("neuron-guard: "), err


class TestEntryPoints:
    def test_console_script_runs(self) -> None:
        """The installed 'neuron-guard' script prints its version and exits 0."""
        r = subprocess.run(
            [script(), "--version"], capture_output=True, text=True, env=clean_env(), check=False
        )
        assert r.returncode == 0
        assert r.stdout.startswith("neuron-guard ")

    @pytest.mark.parametrize("verb", VERBS)
    def test_help_for_every_verb(self, verb: str) -> None:
        """Every verb has --help (exit 0)."""
        r = cli(verb, "--help")
        assert r.returncode == 0
        assert "usage: neuron-guard " + verb in r.stdout

    def test_no_verb_and_unknown_verb_are_usage_errors(self) -> None:
        """No verb or an unknown one exits 2."""
        assert cli().returncode == 2
        assert cli("frobnicate").returncode == 2

    def test_bad_mode_is_one_line_and_exit_2(self, tmp_path: Path) -> None:
        """An invalid NEURON_GUARD makes a verb that needs settings exit 2 with one line, no traceback."""
        r = cli("list", env={"NEURON_GUARD": "stirct"}, cwd=tmp_path)
        assert r.returncode == 2
        one_error_line(r.stderr)
        assert "stirct" in r.stderr


class TestScan:
    def test_findings_exit_1_with_text_lines(self, tmp_path: Path) -> None:
        """Preview items found: 'path:line:col: kind name tier' lines, a summary, exit 1."""
        r = cli("scan", str(SCAN / "tree" / "pkg"), env=with_table(), cwd=tmp_path)
        assert r.returncode == 1, r.stderr
        assert (
            f"{SCAN / 'tree' / 'pkg' / 'imports.py'}:7:1: package fake-preview-pkg beta\n"
            in r.stdout
        )
        assert "preview use(s) not allowed" in r.stdout.splitlines()[-2]

    def test_clean_tree_exits_0(self, tmp_path: Path) -> None:
        """Nothing preview in the sources: exit 0."""
        (tmp_path / "ok.py").write_text("import os\nprint(os.getcwd())\n")
        r = cli("scan", ".", env=with_table(), cwd=tmp_path)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "0 preview use(s) not allowed" in r.stdout

    def test_allow_options_and_env_make_it_pass(self, tmp_path: Path) -> None:
        """--allow and NEURON_GUARD_ALLOW add up; everything allowed exits 0."""
        r = cli("scan", str(SCAN / "tree" / "pkg"), "--allow", "beta",
                env=with_table(NEURON_GUARD_ALLOW="api:fakesdk.*,env:FAKE_NEURON_MODE"), cwd=tmp_path)  # fmt: skip
        assert r.returncode == 0, r.stdout

    def test_pyproject_allow_is_used(self, tmp_path: Path) -> None:
        """[tool.neuron_guard] allow in pyproject.toml applies to the scan."""
        (tmp_path / "pyproject.toml").write_text(
            '[tool.neuron_guard]\nallow = ["package:fake-*"]\n'
        )
        (tmp_path / "m.py").write_text("import fake_preview_pkg\n")
        r = cli("scan", "m.py", env=with_table(), cwd=tmp_path)
        assert r.returncode == 0, r.stdout

    def test_exclude_glob(self, tmp_path: Path) -> None:
        """--exclude skips matching directories; a venv is skipped without being named."""
        r = cli(
            "scan",
            str(SCAN / "tree"),
            "--exclude",
            "pkg",
            "--exclude",
            "build",
            env=with_table(),
            cwd=tmp_path,
        )
        assert r.returncode == 0, r.stdout

    def test_json_format_and_output_file(self, tmp_path: Path) -> None:
        """--format json --output FILE writes one JSON document with findings and a summary."""
        out = tmp_path / "scan.json"
        r = cli("scan", str(SCAN / "tree" / "pkg"), "--format", "json", "--output", str(out),
                env=with_table(), cwd=tmp_path)  # fmt: skip
        assert r.returncode == 1
        assert r.stdout == ""
        doc = json.loads(out.read_text())
        assert doc["summary"]["not_allowed"] == sum(
            1 for f in doc["findings"] if not f["allowed"] and f["tier"] != "stable"
        )
        assert {"path", "line", "column", "kind", "name", "tier", "rule"} <= doc["findings"][
            0
        ].keys()

    def test_missing_path_exits_2(self, tmp_path: Path) -> None:
        """A path that does not exist is a usage error."""
        r = cli("scan", "nope", cwd=tmp_path)
        assert r.returncode == 2
        one_error_line(r.stderr)

    def test_syntax_error_does_not_stop_the_scan(self, tmp_path: Path) -> None:
        """A file that does not parse is reported; the other files are scanned."""
        (tmp_path / "bad.py").write_text("def f(:\n")
        (tmp_path / "good.py").write_text("import fake_preview_pkg\n")
        r = cli("scan", ".", env=with_table(), cwd=tmp_path)
        assert r.returncode == 1
        assert "bad.py:1:" in r.stdout
        assert "syntax error" in r.stdout
        assert "good.py:1:1: package fake-preview-pkg beta" in r.stdout


class TestRun:
    def test_child_sees_the_guard_settings(self, tmp_path: Path) -> None:
        """run sets NEURON_GUARD* in the child's environment."""
        code = "import os; print(os.environ['NEURON_GUARD'], os.environ['NEURON_GUARD_ALLOW'])"
        r = cli(
            "run",
            "--mode",
            "strict",
            "--allow",
            "beta",
            "--",
            sys.executable,
            "-c",
            code,
            cwd=tmp_path,
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["strict", "beta"]

    def test_exit_code_is_the_programs(self, tmp_path: Path) -> None:
        """The program's exit code is returned."""
        r = cli("run", "--", sys.executable, "-c", "raise SystemExit(7)", cwd=tmp_path)
        assert r.returncode == 7

    def test_script_form_with_arguments(self, tmp_path: Path) -> None:
        """'run script.py args' runs the script with this interpreter, guard active."""
        (tmp_path / "s.py").write_text(
            "import sys; print('neuron_guard' in sys.modules, sys.argv[1:])\n"
        )
        r = cli("run", "s.py", "a", "b", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "True ['a', 'b']"

    def test_strict_guard_is_active_in_python_grandchildren(self, tmp_path: Path) -> None:
        """A preview package imported by a Python child of the program raises in strict mode."""
        (tmp_path / "fake_preview_pkg.py").write_text("X = 1\n")
        (tmp_path / "child.py").write_text("import fake_preview_pkg\n")
        (tmp_path / "parent.py").write_text(
            "import subprocess, sys\nsys.exit(subprocess.run([sys.executable, 'child.py']).returncode)\n"
        )
        env = with_table(PYTHONPATH=str(tmp_path))
        r = cli("run", "--mode", "strict", "parent.py", env=env, cwd=tmp_path)
        assert r.returncode == 1
        assert "PreviewImportError" in r.stderr
        assert "fake_preview_pkg" in r.stderr
        r = cli(
            "run",
            "--mode",
            "strict",
            "--allow",
            "package:fake-preview-pkg",
            "parent.py",
            env=env,
            cwd=tmp_path,
        )
        assert r.returncode == 0, r.stderr

    def test_report_option(self, tmp_path: Path) -> None:
        """run --report DIR gives every process a report file there."""
        (tmp_path / "fake_preview_pkg.py").write_text("X = 1\n")
        (tmp_path / "s.py").write_text("import fake_preview_pkg\n")
        r = cli(
            "run", "--report", "rep", "s.py", env=with_table(PYTHONPATH=str(tmp_path)), cwd=tmp_path
        )
        assert r.returncode == 0, r.stderr
        m = cli("report", "--json", "rep", cwd=tmp_path)
        assert m.returncode == 0
        [item] = json.loads(m.stdout)["items"]
        assert (item["kind"], item["name"], item["count"]) == ("package", "fake-preview-pkg", 1)

    def test_no_command_exits_2_and_missing_program_127(self, tmp_path: Path) -> None:
        """No command is a usage error (2); a program that cannot start gives 127."""
        r = cli("run", cwd=tmp_path)
        assert r.returncode == 2
        one_error_line(r.stderr)
        r = cli("run", "--", "no-such-program-xyz", cwd=tmp_path)
        assert r.returncode == 127

    def test_bad_allow_pattern_exits_2(self, tmp_path: Path) -> None:
        """A bad --allow pattern is a usage error before anything runs."""
        r = cli("run", "--allow", "bogus:x", "--", sys.executable, "-c", "pass", cwd=tmp_path)
        assert r.returncode == 2
        one_error_line(r.stderr)


class TestExplain:
    def test_known_item(self, tmp_path: Path) -> None:
        """explain shows tier, meaning, replacement, evidence, opt-in and the SDK release."""
        r = cli("explain", "fakesdk.experimental.profile", env=with_table(), cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        out = r.stdout
        assert "tier:        alpha" in out
        assert "major changes may happen" in out
        assert "replacement: fakesdk.profile" in out
        assert "evidence:    https://example.invalid/fakesdk/experimental" in out
        assert "NEURON_GUARD_ALLOW=api:fakesdk.experimental.profile" in out
        assert "installed Neuron SDK:" in out

    def test_kind_prefix_and_flag_alias(self, tmp_path: Path) -> None:
        """KIND:NAME narrows by kind; a flag is found by an alias spelled with '_'."""
        r = cli("explain", "flag:--fx_exp", env=with_table(), cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("flag --fake-experimental\n")

    def test_unknown_item_exits_2(self, tmp_path: Path) -> None:
        """An item the table does not have exits 2 with one line."""
        r = cli("explain", "no.such.thing", cwd=tmp_path)
        assert r.returncode == 2
        one_error_line(r.stderr)


class TestList:
    def test_json_filtered_by_kind_and_tier(self, tmp_path: Path) -> None:
        """list --kind --tier --json gives exactly the matching entries."""
        r = cli(
            "list", "--kind", "env", "--tier", "alpha", "--json", env=with_table(), cwd=tmp_path
        )
        assert r.returncode == 0
        entries = json.loads(r.stdout)
        assert entries
        assert {(e["kind"], e["tier"]) for e in entries} == {("env", "alpha")}
        assert "FAKE_NEURON_MODE" in {e["name"] for e in entries}

    def test_text(self, tmp_path: Path) -> None:
        """Text lists tier, kind and name per line and a count."""
        r = cli("list", "--kind", "package", env=with_table(), cwd=tmp_path)
        assert r.returncode == 0
        assert "beta    package  fake-preview-pkg\n" in r.stdout
        assert r.stdout.rstrip().endswith("entries")

    def test_bad_kind_exits_2(self, tmp_path: Path) -> None:
        """An unknown --kind is a usage error."""
        assert cli("list", "--kind", "nope", cwd=tmp_path).returncode == 2


class TestEnv:
    def test_clean_environment_exits_0(self, tmp_path: Path) -> None:
        """No preview variable set: exit 0."""
        r = cli("env", env=with_table(), cwd=tmp_path)
        assert r.returncode == 0, r.stdout

    def test_preview_variable_exits_1(self, tmp_path: Path) -> None:
        """A preview variable is reported with its tier: exit 1."""
        r = cli("env", env=with_table(FAKE_NEURON_BETA="1"), cwd=tmp_path)
        assert r.returncode == 1
        assert "beta    env      FAKE_NEURON_BETA=1: not allowed" in r.stdout

    def test_values_restrict_and_allow_patterns_pass(self, tmp_path: Path) -> None:
        """A value outside 'values' is not preview; an allowed variable does not fail."""
        r = cli("env", env=with_table(FAKE_NEURON_MODE="slow", FAKE_NEURON_BETA="1",
                                      NEURON_GUARD_ALLOW="env:FAKE_NEURON_BETA"), cwd=tmp_path)  # fmt: skip
        assert r.returncode == 0, r.stdout
        assert "FAKE_NEURON_BETA=1: allowed" in r.stdout
        assert "FAKE_NEURON_MODE" not in r.stdout

    def test_flags_in_a_carrier_and_feature_triggers(self, tmp_path: Path) -> None:
        """A preview flag in a carrier variable and a feature's trigger are reported."""
        r = cli(
            "env",
            env=with_table(FAKE_CC_FLAGS="-O2 --fake_experimental", FAKE_CACHE_URL="s3://b"),
            cwd=tmp_path,
        )
        assert r.returncode == 1
        assert "--fake-experimental in FAKE_CC_FLAGS" in r.stdout
        assert "feature  fake-cache (switched on by env:FAKE_CACHE_URL)" in r.stdout

    def test_strict_mode_does_not_stop_the_command(self, tmp_path: Path) -> None:
        """In strict mode with a preview variable set, env still runs and diagnoses."""
        r = cli("env", env=with_table(NEURON_GUARD="strict", FAKE_NEURON_BETA="1"), cwd=tmp_path)
        assert r.returncode == 1
        assert "FAKE_NEURON_BETA=1: not allowed" in r.stdout
        assert (
            "start-up check: PreviewError: beta environment variable 'FAKE_NEURON_BETA'" in r.stdout
        )
        assert "(mode strict)" in r.stdout
        assert "Warning" not in r.stderr  # the command does not warn about its own environment

    def test_console_script_is_not_stopped_either(self, tmp_path: Path) -> None:
        """The console script, like -m, runs in strict mode with a preview variable set."""
        env = clean_env(**with_table(NEURON_GUARD="strict", FAKE_NEURON_BETA="1"))
        r = subprocess.run(
            [script(), "doctor"], env=env, cwd=tmp_path, capture_output=True, text=True, check=False
        )
        assert r.returncode == 0, r.stdout + r.stderr
        assert "start-up check: PreviewError" in r.stdout


class TestValidate:
    def test_effective_tables_are_valid(self, tmp_path: Path) -> None:
        """The embedded table and a user table validate: exit 0."""
        r = cli("validate", "--no-stale", env=with_table(), cwd=tmp_path)
        assert r.returncode == 0, r.stdout
        assert "0 invalid table(s)" in r.stdout

    def test_schema_error_names_file_entry_and_key(self, tmp_path: Path) -> None:
        """A typo'd key is invalid: exit 1, naming the file, entry and key."""
        bad = tmp_path / "bad.toml"
        bad.write_text('[[api]]\nname = "a.b"\ntierr = "beta"\n')
        r = cli("validate", str(bad), cwd=tmp_path)
        assert r.returncode == 1
        assert str(bad) in r.stdout
        assert "[[api]] #1 'a.b'" in r.stdout
        assert "'tierr'" in r.stdout

    def test_stale_entries_are_listed(self, tmp_path: Path) -> None:
        """An api entry whose module is importable but lacks the name is stale; absent packages are not."""
        t = tmp_path / "t.toml"
        t.write_text(
            '[[api]]\nname = "json.no_such_function"\ntier = "beta"\n'
            '[[api]]\nname = "json.dumps"\ntier = "beta"\n'
            '[[api]]\nname = "os.path.join"\nargument = "no_such_arg"\ntier = "beta"\n'
            '[[api]]\nname = "not_installed_pkg_xyz.f"\ntier = "beta"\n'
            '[[package]]\nname = "not-installed-pkg-xyz"\ntier = "beta"\n'
        )
        r = cli("validate", str(t), cwd=tmp_path)
        assert r.returncode == 0, r.stdout
        stale = [line for line in r.stdout.splitlines() if line.startswith("stale:")]
        assert len(stale) == 2, r.stdout
        assert "json.no_such_function" in stale[0]
        assert "no attribute 'no_such_function'" in stale[0]
        assert "no argument 'no_such_arg'" in stale[1]

    def test_missing_table_exits_2(self, tmp_path: Path) -> None:
        """A table path that does not exist is a usage error."""
        r = cli("validate", "nope.toml", cwd=tmp_path)
        assert r.returncode == 2
        one_error_line(r.stderr)


class TestDoctor:
    def test_active_guard_exits_0(self, tmp_path: Path) -> None:
        """With NEURON_GUARD set, doctor shows mode, patterns with origins, tables, start-up file."""
        r = cli(
            "doctor", env=with_table(NEURON_GUARD="strict", NEURON_GUARD_ALLOW="beta"), cwd=tmp_path
        )
        assert r.returncode == 0, r.stdout
        out = r.stdout
        assert "mode: strict (from env NEURON_GUARD)" in out
        assert "  beta (from env NEURON_GUARD_ALLOW)" in out
        assert f"  {TABLE}: 11 entries" in out
        assert "neuron_guard.pth (installed)" in out
        assert "active: yes" in out
        assert "patched in this process:" in out
        assert "Neuron SDK:" in out

    def test_unset_mode_exits_1(self, tmp_path: Path) -> None:
        """NEURON_GUARD unset: the start-up file does nothing, exit 1 with the reason."""
        r = cli("doctor", cwd=tmp_path)
        assert r.returncode == 1
        assert "NEURON_GUARD is unset" in r.stdout

    def test_invalid_configuration_is_diagnosed_not_fatal(self, tmp_path: Path) -> None:
        """A bad NEURON_GUARD value is diagnosed (exit 1), never a crash of the command."""
        r = cli("doctor", env={"NEURON_GUARD": "stirct"}, cwd=tmp_path)
        assert r.returncode == 1
        assert "Traceback" not in r.stderr
        assert "INVALID" in r.stdout
        assert "stirct" in r.stdout
