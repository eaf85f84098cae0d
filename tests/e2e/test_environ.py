"""Environment variables: at start-up, at a guarded package's import, on writes; deprecations.

Every test runs a fresh interpreter with the user table ``tests/fixtures/tables/env_flags.toml``
(``NG_TEST_*`` names) on ``NEURON_GUARD_TABLES``, or with the embedded table alone.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any, Callable

import pytest

from tests.conftest import FIXTURES

TABLE = FIXTURES / "tables" / "env_flags.toml"
#: dist-info folders that make importlib.metadata report SDK 2.25's versions (neuronx-cc 2.20)
SDK_225 = FIXTURES / "standin_dists" / "sdk-2.25.0"

#: appended to a program: prints its events as one JSON line
PRINT_EVENTS = """
import json as _json, neuron_guard as _ng
print("EVENTS", _json.dumps([[e.kind, e.name, e.tier, e.action, e.trigger] for e in _ng.events()]))
"""

Run = Callable[..., "subprocess.CompletedProcess[str]"]


def events_of(r: subprocess.CompletedProcess[str]) -> list[list[Any]]:
    """The events a program printed with PRINT_EVENTS."""
    for line in r.stdout.splitlines():
        if line.startswith("EVENTS "):
            return json.loads(line[len("EVENTS ") :])  # type: ignore[no-any-return]
    raise AssertionError(f"no events printed\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}")


@pytest.fixture
def run(run_python: Run) -> Run:
    """``run_python`` with the test table loaded and ``mode`` (warn by default) set."""

    def go(
        code: str,
        mode: str = "warn",
        env: dict[str, str] | None = None,
        sdk: bool = False,
        table: bool = True,
        **kw: Any,
    ) -> subprocess.CompletedProcess[str]:
        e = {"NEURON_GUARD": mode, **(env or {})}
        if table:
            e["NEURON_GUARD_TABLES"] = str(TABLE)
        if sdk:
            e["PYTHONPATH"] = str(SDK_225)
        return run_python(code, env=e, **kw)

    return go


class TestStartup:
    def test_warn_names_the_variable(self, run: Run) -> None:
        """Warn mode: a beta variable in the environment warns once and the program runs."""
        r = run("print('ran')\nimport neuron_guard\n" + PRINT_EVENTS, env={"NG_TEST_BETA_VAR": "1"})
        assert r.returncode == 0, r.stderr
        assert "ran" in r.stdout
        assert r.stderr.count("BetaWarning: beta environment variable 'NG_TEST_BETA_VAR'") == 1
        assert events_of(r) == [["env", "NG_TEST_BETA_VAR", "beta", "warn", None]]

    def test_strict_stops_before_the_program(self, run: Run) -> None:
        """Strict: the .pth start-up exits 1 with the error on stderr; no import needed."""
        r = run("print('program ran')\n", mode="strict", env={"NG_TEST_BETA_VAR": "1"})
        assert r.returncode == 1
        assert "program ran" not in r.stdout
        assert r.stderr.startswith("neuron_guard: PreviewError: beta environment variable")
        assert "'NG_TEST_BETA_VAR'" in r.stderr
        assert "NEURON_GUARD_ALLOW=env:NG_TEST_BETA_VAR" in r.stderr
        assert "Traceback" not in r.stderr

    @pytest.mark.parametrize(
        "allow", ["env:NG_TEST_BETA_VAR", "env:NG_TEST_*", "NG_TEST_BETA_VAR", "beta"]
    )
    def test_strict_allowed(self, run: Run, allow: str) -> None:
        """Strict with an opt-in (kind glob, bare name, tier keyword) runs the program."""
        r = run(
            "print('program ran')\n" + PRINT_EVENTS,
            mode="strict",
            env={"NG_TEST_BETA_VAR": "1", "NEURON_GUARD_ALLOW": allow},
        )
        assert r.returncode == 0, r.stderr
        assert events_of(r) == [["env", "NG_TEST_BETA_VAR", "beta", "allow", None]]

    def test_beta_opt_in_does_not_allow_alpha(self, run: Run) -> None:
        """``beta`` in the allow list still stops an alpha variable."""
        r = run(
            "print('program ran')\n",
            mode="strict",
            env={"NG_TEST_ALPHA_VAR": "1", "NEURON_GUARD_ALLOW": "beta"},
        )
        assert r.returncode == 1
        assert "alpha environment variable 'NG_TEST_ALPHA_VAR'" in r.stderr

    def test_stable_and_unknown_variables_are_quiet(self, run: Run) -> None:
        """A stable variable or one the table does not know is no event."""
        r = run(PRINT_EVENTS, mode="strict", env={"NG_TEST_STABLE_VAR": "1", "NG_TEST_OTHER": "1"})
        assert r.returncode == 0, r.stderr
        assert events_of(r) == []

    @pytest.mark.parametrize(
        ("value", "stopped"), [("fast", True), ("slow", False), ("FAST", False)]
    )
    def test_values(self, run: Run, value: str, stopped: bool) -> None:
        """An entry with ``values`` is preview only for those values (exactly)."""
        r = run("print('program ran')\n", mode="strict", env={"NG_TEST_MODE": value})
        assert (r.returncode == 1) is stopped, r.stderr
        assert ("program ran" in r.stdout) is not stopped

    def test_own_cli_is_never_stopped(self, run: Run) -> None:
        """The neuron-guard command runs in strict mode with a preview variable set."""
        code = (
            "from neuron_guard._state import runtime\n"
            "print('cli ran', type(runtime.startup_error).__name__)\n"
        )
        r = run(code, mode="strict", env={"NG_TEST_BETA_VAR": "1"}, script="neuron-guard")
        assert r.returncode == 0, r.stderr
        assert "cli ran PreviewError" in r.stdout

    def test_off_checks_nothing(self, run: Run) -> None:
        """NEURON_GUARD=off: no check, no audit hook."""
        code = (
            "import os, neuron_guard\n"
            "from neuron_guard import _environ\n"
            "os.environ['NG_TEST_ALPHA_VAR'] = '1'\n"
            "print('audit hook', _environ._audit_added)\n" + PRINT_EVENTS
        )
        r = run(code, mode="off", env={"NG_TEST_BETA_VAR": "1"})
        assert r.returncode == 0, r.stderr
        assert "audit hook False" in r.stdout
        assert events_of(r) == []


class TestEmptyValue:
    def test_warn_notes_it(self, run: Run) -> None:
        """An empty preview variable counts as set; warn mode notes the empty value."""
        r = run("import neuron_guard\n" + PRINT_EVENTS, env={"NG_TEST_BETA_VAR": ""})
        assert r.returncode == 0, r.stderr
        assert (
            "RuntimeWarning: neuron_guard: NG_TEST_BETA_VAR is set to an empty string" in r.stderr
        )
        assert events_of(r) == [["env", "NG_TEST_BETA_VAR", "beta", "warn", None]]

    def test_strict_says_so(self, run: Run) -> None:
        """Strict decides by what it can read (the variable is set) and says so."""
        r = run("print('program ran')\n", mode="strict", env={"NG_TEST_BETA_VAR": ""})
        assert r.returncode == 1
        assert "NG_TEST_BETA_VAR is set to an empty string, which still counts as set" in r.stderr

    def test_empty_value_outside_values(self, run: Run) -> None:
        """An empty value is not one of an entry's ``values``: no event, no note."""
        r = run(PRINT_EVENTS, mode="strict", env={"NG_TEST_MODE": ""})
        assert r.returncode == 0, r.stderr
        assert "RuntimeWarning" not in r.stderr
        assert events_of(r) == []


class TestImportRecheck:
    # os.environ._data is the mapping behind os.environ: writing it directly skips putenv,
    # as a C extension's setenv() would; the guard sees it when a guarded package imports
    BYPASS = "import os\nos.environ._data[os.environ.encodekey('NG_TEST_BETA_VAR')] = b'1'\n"

    def test_strict_raises_at_the_import(self, run: Run) -> None:
        """A variable set behind the audit hook's back is caught when torch_neuronx imports."""
        code = (
            "import neuron_guard\n" + self.BYPASS + "print('before')\n"
            "try:\n"
            "    import torch_neuronx\n"
            "except neuron_guard.PreviewError as exc:\n"
            "    print('stopped at import:', exc.name)\n"
        )
        r = run(code, mode="strict")
        assert r.returncode == 0, r.stderr
        assert "stopped at import: NG_TEST_BETA_VAR" in r.stdout

    def test_warn_points_at_the_import(self, run: Run) -> None:
        """Warn mode attributes the warning to the import line."""
        code = "import neuron_guard\n" + self.BYPASS + "import torch_neuronx\n"
        r = run(code)
        assert r.returncode == 0, r.stderr
        assert "prog.py:4: BetaWarning: beta environment variable 'NG_TEST_BETA_VAR'" in r.stderr

    def test_unguarded_import_does_not_recheck(self, run: Run) -> None:
        """Importing a module the table does not watch checks nothing."""
        code = "import neuron_guard\n" + self.BYPASS + "import json\n" + PRINT_EVENTS
        r = run(code, mode="strict")
        assert r.returncode == 0, r.stderr
        assert events_of(r) == []


class TestWrites:
    @pytest.mark.parametrize(
        "write",
        [
            "os.environ['NG_TEST_BETA_VAR'] = '1'",
            "os.putenv('NG_TEST_BETA_VAR', '1')",
            "os.environ.update(NG_TEST_BETA_VAR='1')",
            "os.environ.update({'A_NG_TEST': 'x', 'NG_TEST_BETA_VAR': '1'})",
            "os.environ.setdefault('NG_TEST_BETA_VAR', '1')",
        ],
    )
    def test_strict_raises_before_the_write(self, run: Run, write: str) -> None:
        """Strict: the write raises PreviewError and the variable stays unset."""
        code = (
            "import os, neuron_guard\n"
            "try:\n"
            f"    {write}\n"
            "except neuron_guard.PreviewError as exc:\n"
            "    print('raised', exc.kind, exc.name, exc.remedy)\n"
            "print('set:', 'NG_TEST_BETA_VAR' in os.environ)\n"
        )
        r = run(code, mode="strict")
        assert r.returncode == 0, r.stderr
        assert "raised env NG_TEST_BETA_VAR NEURON_GUARD_ALLOW=env:NG_TEST_BETA_VAR" in r.stdout
        assert "set: False" in r.stdout

    def test_warn_points_at_the_write(self, run: Run) -> None:
        """Warn: the write happens, the warning names the user's line, once."""
        code = (
            "import os, neuron_guard\n"
            "os.environ['NG_TEST_ALPHA_VAR'] = '1'\n"
            "os.environ['NG_TEST_ALPHA_VAR'] = '2'\n"
            "print('value', os.environ['NG_TEST_ALPHA_VAR'])\n" + PRINT_EVENTS
        )
        r = run(code)
        assert r.returncode == 0, r.stderr
        assert "value 2" in r.stdout
        assert r.stderr.count("AlphaWarning") == 1
        assert "prog.py:2: AlphaWarning: alpha environment variable 'NG_TEST_ALPHA_VAR'" in r.stderr
        assert events_of(r) == [["env", "NG_TEST_ALPHA_VAR", "alpha", "warn", None]]

    def test_values_at_run_time(self, run: Run) -> None:
        """Only the listed value raises; other values are written."""
        code = (
            "import os, neuron_guard\n"
            "os.environ['NG_TEST_MODE'] = 'slow'\n"
            "try:\n"
            "    os.environ['NG_TEST_MODE'] = 'fast'\n"
            "except neuron_guard.PreviewError:\n"
            "    print('fast refused')\n"
            "print('value', os.environ['NG_TEST_MODE'])\n"
        )
        r = run(code, mode="strict")
        assert r.returncode == 0, r.stderr
        assert "fast refused" in r.stdout
        assert "value slow" in r.stdout

    def test_scoped_allow(self, run: Run) -> None:
        """``with neuron_guard.allow('env:...')`` lets the write through in strict mode."""
        code = (
            "import os, neuron_guard\n"
            "with neuron_guard.allow('env:NG_TEST_BETA_VAR'):\n"
            "    os.environ['NG_TEST_BETA_VAR'] = '1'\n"
            "print('value', os.environ['NG_TEST_BETA_VAR'])\n" + PRINT_EVENTS
        )
        r = run(code, mode="strict")
        assert r.returncode == 0, r.stderr
        assert "value 1" in r.stdout
        assert events_of(r) == [["env", "NG_TEST_BETA_VAR", "beta", "allow", None]]

    def test_uninstall_makes_the_hook_inert(self, run: Run) -> None:
        """After uninstall() the audit hook stays but checks nothing."""
        code = (
            "import os, neuron_guard\n"
            "neuron_guard.install().uninstall()\n"
            "os.environ['NG_TEST_BETA_VAR'] = '1'\n"
            "print('value', os.environ['NG_TEST_BETA_VAR'])\n" + PRINT_EVENTS
        )
        r = run(code, mode="strict")
        assert r.returncode == 0, r.stderr
        assert "value 1" in r.stdout
        assert events_of(r) == []

    def test_configure_off_at_run_time(self, run: Run) -> None:
        """configure(mode='off') stops the checks of later writes."""
        code = (
            "import os, neuron_guard\n"
            "neuron_guard.configure(mode='off')\n"
            "os.environ['NG_TEST_BETA_VAR'] = '1'\n" + PRINT_EVENTS
        )
        r = run(code, mode="strict")
        assert r.returncode == 0, r.stderr
        assert events_of(r) == []

    def test_unrelated_writes_and_deletes(self, run: Run) -> None:
        """Unrelated writes cost a set look-up and are no events; deleting then re-setting counts."""
        code = (
            "import os, neuron_guard\n"
            "for i in range(100):\n"
            "    os.environ['NG_TEST_UNRELATED'] = str(i)\n"
            "os.environ['NG_TEST_ALPHA_VAR'] = '1'\n"
            "del os.environ['NG_TEST_ALPHA_VAR']\n"
            "os.environ['NG_TEST_ALPHA_VAR'] = '1'\n"
            "import neuron_guard\n" + PRINT_EVENTS
        )
        r = run(code, env={"NEURON_GUARD_DEDUPE": "off"})
        assert r.returncode == 0, r.stderr
        assert events_of(r) == [["env", "NG_TEST_ALPHA_VAR", "alpha", "warn", None]]
        assert r.stderr.count("AlphaWarning") == 2


class TestDeprecated:
    def test_deprecated_warns_in_warn_and_strict(self, run: Run) -> None:
        """A deprecated variable warns NeuronDeprecationWarning (a FutureWarning), never raises."""
        for mode in ("warn", "strict"):
            r = run(
                "import neuron_guard\n" + PRINT_EVENTS,
                mode=mode,
                env={"NG_TEST_OLD_VAR": "1"},
                sdk=True,
            )
            assert r.returncode == 0, r.stderr
            assert (
                "NeuronDeprecationWarning: environment variable 'NG_TEST_OLD_VAR' is deprecated since 2.0"
                in r.stderr
            )
            assert "will be removed in 99.0" in r.stderr
            assert "use 'NG_TEST_NEW_VAR' instead" in r.stderr
            assert events_of(r) == [["env", "NG_TEST_OLD_VAR", "stable", "deprecated", None]]

    def test_removed_raises_in_strict(self, run: Run) -> None:
        """Strict: a variable removed at or below the installed version raises."""
        r = run("print('program ran')\n", mode="strict", env={"NG_TEST_GONE_VAR": "1"}, sdk=True)
        assert r.returncode == 1
        assert "was removed in 2.19 and is silently ignored by the installed release" in r.stderr

    def test_removed_warns_in_warn(self, run: Run) -> None:
        """Warn: a removed variable warns (action ``removed``) and the program runs."""
        r = run("import neuron_guard\n" + PRINT_EVENTS, env={"NG_TEST_GONE_VAR": "1"}, sdk=True)
        assert r.returncode == 0, r.stderr
        assert "NeuronDeprecationWarning" in r.stderr
        assert events_of(r) == [["env", "NG_TEST_GONE_VAR", "stable", "removed", None]]

    def test_removed_unknown_without_the_package(self, run: Run) -> None:
        """Without the package installed, ``removed`` cannot be told: only deprecated."""
        r = run(
            "import neuron_guard\n" + PRINT_EVENTS, mode="strict", env={"NG_TEST_GONE_VAR": "1"}
        )
        assert r.returncode == 0, r.stderr
        assert events_of(r) == [["env", "NG_TEST_GONE_VAR", "stable", "deprecated", None]]

    def test_allowed_by_name_silences_the_deprecation(self, run: Run) -> None:
        """``env:NAME`` in the allow list silences its deprecation warning."""
        r = run(
            "import neuron_guard\n" + PRINT_EVENTS,
            mode="strict",
            env={"NG_TEST_GONE_VAR": "1", "NEURON_GUARD_ALLOW": "env:NG_TEST_GONE_VAR"},
            sdk=True,
        )
        assert r.returncode == 0, r.stderr
        assert "Warning" not in r.stderr

    def test_embedded_xla_use_bf16_deprecated(self, run: Run) -> None:
        """The embedded XLA_USE_BF16=1 warns as deprecated when the SDK release is unknown."""
        r = run(
            "import neuron_guard\n" + PRINT_EVENTS,
            mode="strict",
            env={"XLA_USE_BF16": "1"},
            table=False,
        )
        assert r.returncode == 0, r.stderr
        assert "environment variable 'XLA_USE_BF16' is deprecated since 2.21" in r.stderr
        assert "torch.autocast" in r.stderr
        assert events_of(r) == [["env", "XLA_USE_BF16", "stable", "deprecated", None]]

    def test_embedded_xla_use_bf16_removed_in_225(self, run: Run) -> None:
        """With SDK 2.25 installed, strict stops XLA_USE_BF16=1 (it is silently ignored)."""
        r = run(
            "print('program ran')\n",
            mode="strict",
            env={"XLA_USE_BF16": "1"},
            sdk=True,
            table=False,
        )
        assert r.returncode == 1
        assert "'XLA_USE_BF16' was removed in 2.25" in r.stderr

    def test_embedded_xla_use_bf16_other_value(self, run: Run) -> None:
        """XLA_USE_BF16=0 is not the deprecated setting (``values = ["1"]``)."""
        r = run(PRINT_EVENTS, mode="strict", env={"XLA_USE_BF16": "0"}, sdk=True, table=False)
        assert r.returncode == 0, r.stderr
        assert events_of(r) == []

    def test_embedded_write_at_run_time(self, run: Run) -> None:
        """Writing XLA_USE_BF16=1 at run time with SDK 2.25 raises in strict mode."""
        code = (
            "import os, neuron_guard\n"
            "try:\n"
            "    os.environ['XLA_USE_BF16'] = '1'\n"
            "except neuron_guard.PreviewError as exc:\n"
            "    print('refused', exc.name)\n"
        )
        r = run(code, mode="strict", sdk=True, table=False)
        assert r.returncode == 0, r.stderr
        assert "refused XLA_USE_BF16" in r.stdout

    def test_sdk_dists_are_visible(self, run: Run) -> None:
        """The stand-in dists make neuronx-cc 2.20 visible (the removed cases rely on it)."""
        r = run("from importlib.metadata import version\nprint(version('neuronx-cc'))\n", sdk=True)
        assert r.stdout.strip() == "2.20.9961.0", r.stderr
