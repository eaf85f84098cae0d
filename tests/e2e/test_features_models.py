"""Features and model classes, fired by their triggers (env, flag, api, package)."""

from __future__ import annotations

import pytest

from tests.e2e import test_environ
from tests.e2e.test_environ import PRINT_EVENTS, Run, events_of

run = test_environ.run  # the fixture: the test table loaded, a mode set

CACHE = ["feature", "ng-test-cache", "beta", "warn", "env:NG_TEST_CACHE_URL"]
CACHE_VAR = ["env", "NG_TEST_CACHE_URL", "beta", "warn", None]
LLAMA = (
    "from neuronx_distributed_inference.models.llama.modeling_llama import NeuronLlamaForCausalLM\n"
)
LLAMA_TRIGGER = (
    "api:neuronx_distributed_inference.models.llama.modeling_llama.NeuronLlamaForCausalLM"
)


class TestEnvTrigger:
    def test_warn_fires_feature_and_variable(self, run: Run) -> None:
        """The feature fires as its own event, naming its trigger, before the variable."""
        r = run("import neuron_guard\n" + PRINT_EVENTS, env={"NG_TEST_CACHE_URL": "s3://b/c"})
        assert r.returncode == 0, r.stderr
        assert "beta feature 'ng-test-cache' (switched on by env:NG_TEST_CACHE_URL)" in r.stderr
        assert events_of(r) == [CACHE, CACHE_VAR]

    def test_strict_names_both(self, run: Run) -> None:
        """Strict: the error names the feature, its trigger and the feature's opt-in."""
        r = run("print('program ran')\n", mode="strict", env={"NG_TEST_CACHE_URL": "s3://b/c"})
        assert r.returncode == 1
        assert "beta feature 'ng-test-cache' (switched on by env:NG_TEST_CACHE_URL)" in r.stderr
        assert "NEURON_GUARD_ALLOW=feature:ng-test-cache" in r.stderr

    def test_allowing_the_feature_allows_its_trigger(self, run: Run) -> None:
        """``feature:NAME`` in the allow list also allows the variable that switches it on."""
        r = run(
            "import neuron_guard\n" + PRINT_EVENTS,
            mode="strict",
            env={"NG_TEST_CACHE_URL": "s3://b/c", "NEURON_GUARD_ALLOW": "feature:ng-test-*"},
        )
        assert r.returncode == 0, r.stderr
        assert events_of(r) == [
            ["feature", "ng-test-cache", "beta", "allow", "env:NG_TEST_CACHE_URL"],
            ["env", "NG_TEST_CACHE_URL", "beta", "allow", None],
        ]

    def test_allowing_the_trigger_does_not_allow_the_feature(self, run: Run) -> None:
        """``env:NAME`` allows the variable only; the feature it switches on still stops."""
        r = run(
            "print('program ran')\n",
            mode="strict",
            env={"NG_TEST_CACHE_URL": "s3://b/c", "NEURON_GUARD_ALLOW": "env:NG_TEST_CACHE_URL"},
        )
        assert r.returncode == 1
        assert "feature 'ng-test-cache'" in r.stderr

    def test_written_at_run_time(self, run: Run) -> None:
        """Setting the trigger variable at run time raises before the write, naming both."""
        code = (
            "import os, neuron_guard\n"
            "try:\n"
            "    os.environ['NG_TEST_CACHE_URL'] = 's3://b/c'\n"
            "except neuron_guard.PreviewError as exc:\n"
            "    print('refused', exc.kind, exc.name, exc.trigger)\n"
            "print('set:', 'NG_TEST_CACHE_URL' in os.environ)\n"
        )
        r = run(code, mode="strict")
        assert r.returncode == 0, r.stderr
        assert "refused feature ng-test-cache env:NG_TEST_CACHE_URL" in r.stdout
        assert "set: False" in r.stdout

    def test_deprecated_feature(self, run: Run) -> None:
        """A deprecated feature warns NeuronDeprecationWarning in strict mode and runs."""
        r = run(
            "import neuron_guard\n" + PRINT_EVENTS, mode="strict", env={"NG_TEST_OLD_FEATURE": "1"}
        )
        assert r.returncode == 0, r.stderr
        assert (
            "NeuronDeprecationWarning: feature 'ng-test-old-feature' (switched on by "
            "env:NG_TEST_OLD_FEATURE) is deprecated since 2.0"
        ) in r.stderr
        assert events_of(r) == [
            ["feature", "ng-test-old-feature", "stable", "deprecated", "env:NG_TEST_OLD_FEATURE"]
        ]


class TestFlagTrigger:
    @pytest.mark.parametrize("flags", ["--enable-turbo", "-O1 --enable_turbo"])
    def test_in_neuron_cc_flags(self, run: Run, flags: str) -> None:
        """A flag with no entry of its own still switches its feature on."""
        r = run("import neuron_guard\n" + PRINT_EVENTS, env={"NEURON_CC_FLAGS": flags})
        assert r.returncode == 0, r.stderr
        assert events_of(r) == [
            ["feature", "ng-test-turbo", "alpha", "warn", "flag:--enable-turbo"]
        ]

    def test_on_the_command_line(self, run: Run) -> None:
        """Strict: neuronx-cc started with the flag never runs."""
        from tests.e2e.test_flags import FAKE_CC

        code = (
            "import subprocess, neuron_guard\n"
            "try:\n"
            f"    subprocess.run([{str(FAKE_CC)!r}, '--enable-turbo'], check=True)\n"
            "except neuron_guard.PreviewError as exc:\n"
            "    print('refused', exc)\n"
        )
        r = run(code, mode="strict")
        assert r.returncode == 0, r.stderr
        assert "neuronx-cc ran" not in r.stdout
        assert (
            "refused alpha feature 'ng-test-turbo' (switched on by flag:--enable-turbo)" in r.stdout
        )

    def test_embedded_monitor_flag(self, run: Run, tmp_path) -> None:  # type: ignore[no-untyped-def]
        """The embedded table: neuron-monitor-prometheus.py --enable-k8s-info is a beta feature."""
        script = tmp_path / "neuron-monitor-prometheus.py"
        script.write_text("print('monitor ran')\n")
        code = (
            "import subprocess, sys, neuron_guard\n"
            f"subprocess.run([sys.executable, {str(script)!r}, '--enable-k8s-info'], check=True)\n"
            + PRINT_EVENTS
        )
        r = run(code, table=False)
        assert r.returncode == 0, r.stderr
        assert "monitor ran" in r.stdout
        assert ["feature", "neuron-monitor-k8s-info", "beta", "warn", "flag:--enable-k8s-info"] in (
            events_of(r)
        )


class TestApiAndPackageTriggers:
    def test_api_call_fires_the_feature_first(self, run: Run) -> None:
        """Calling the trigger API fires the feature before the API runs (strict: raises)."""
        code = (
            "import neuron_guard, torch_neuronx\n"
            "try:\n"
            "    with torch_neuronx.experimental.multicore_context():\n"
            "        print('inside')\n"
            "except neuron_guard.PreviewError as exc:\n"
            "    print('refused', exc.kind, exc.name, exc.trigger)\n"
        )
        r = run(code, mode="strict")
        assert r.returncode == 0, r.stderr
        assert "inside" not in r.stdout
        trigger = "api:torch_neuronx.experimental.multicore_context"
        assert f"refused feature ng-test-cores {trigger}" in r.stdout

    def test_api_call_warn(self, run: Run) -> None:
        """Warn: the feature warns once, at the caller's line; the API runs."""
        code = (
            "import neuron_guard, torch_neuronx\n"
            "for _ in range(3):\n"
            "    with torch_neuronx.experimental.multicore_context() as where:\n"
            "        print('inside', where)\n" + PRINT_EVENTS
        )
        r = run(code, env={"NEURON_GUARD_ALLOW": "api:torch_neuronx.experimental.*"})
        assert r.returncode == 0, r.stderr
        assert r.stdout.count("inside all") == 3
        assert "prog.py:3: BetaWarning: beta feature 'ng-test-cores'" in r.stderr
        feature = [e for e in events_of(r) if e[0] == "feature"]
        assert feature == [
            [
                "feature",
                "ng-test-cores",
                "beta",
                "warn",
                "api:torch_neuronx.experimental.multicore_context",
            ]
        ]

    def test_package_import(self, run: Run) -> None:
        """Importing the trigger package fires its feature (strict: the import raises)."""
        code = (
            "import neuron_guard\n"
            "try:\n"
            "    import neuronx_distributed_training\n"
            "except neuron_guard.PreviewError as exc:\n"
            "    print('refused', exc.kind, exc.name, exc.trigger)\n"
        )
        r = run(code, mode="strict", env={"NEURON_GUARD_ALLOW": "package:*"})
        assert r.returncode == 0, r.stderr
        assert (
            "refused feature ng-test-training-pkg package:neuronx-distributed-training" in r.stdout
        )

    def test_missing_package_is_no_trigger(self, run: Run) -> None:
        """A trigger package that is not installed: the ImportError stays an ImportError."""
        code = (
            "import sys, neuron_guard\n"
            "sys.path = [p for p in sys.path if 'standin_sdk' not in p]\n"
            "try:\n"
            "    import neuronx_distributed_training\n"
            "except ImportError as exc:\n"
            "    print('import error', type(exc).__name__)\n" + PRINT_EVENTS
        )
        r = run(code, mode="strict")
        assert r.returncode == 0, r.stderr
        assert "import error ModuleNotFoundError" in r.stdout
        assert events_of(r) == []

    def test_package_imported_before_the_guard(self, run: Run) -> None:
        """A trigger package already imported when the guard installs fires at install."""
        code = "import neuronx_distributed_training\nimport neuron_guard\n" + PRINT_EVENTS
        r = run(code, env={"NEURON_GUARD_ALLOW": "package:*"})
        assert r.returncode == 0, r.stderr
        assert [
            "feature",
            "ng-test-training-pkg",
            "beta",
            "warn",
            "package:neuronx-distributed-training",
        ] in (events_of(r))

    def test_embedded_neuronperf(self, run: Run) -> None:
        """The embedded table: importing neuronperf is a beta package and a beta feature."""
        r = run("import neuron_guard, neuronperf\n" + PRINT_EVENTS, table=False)
        assert r.returncode == 0, r.stderr
        assert events_of(r) == [
            ["feature", "neuronperf-custom-datasets", "beta", "warn", "package:neuronperf"],
            ["package", "neuronperf", "beta", "warn", None],
        ]


class TestModels:
    PROGRAM = "import neuron_guard\n" + LLAMA + "m = NeuronLlamaForCausalLM('/models/llama')\n"

    @pytest.mark.parametrize(
        ("workload", "tier"), [("inference", "beta"), ("training", "alpha"), (None, "alpha")]
    )
    def test_workload_picks_the_tier(self, run: Run, workload: str | None, tier: str) -> None:
        """The declared workload picks the model's tier; undeclared, the lower one applies."""
        env = {"NEURON_GUARD_WORKLOAD": workload} if workload else {}
        r = run(self.PROGRAM + PRINT_EVENTS, env=env)
        assert r.returncode == 0, r.stderr
        assert events_of(r) == [["model", "ng-test-llama", tier, "warn", LLAMA_TRIGGER]]
        declare = (
            "declare it with NEURON_GUARD_WORKLOAD=training or NEURON_GUARD_WORKLOAD=inference"
        )
        assert (declare in r.stderr) is (workload is None)

    def test_undeclared_message_says_how_to_declare(self, run: Run) -> None:
        """Strict, undeclared: the error names model, trigger, both tiers and how to declare."""
        code = (
            "import neuron_guard\n" + LLAMA + "try:\n"
            "    NeuronLlamaForCausalLM('/models/llama')\n"
            "except neuron_guard.PreviewError as exc:\n"
            "    print('refused', exc)\n"
        )
        r = run(code, mode="strict")
        assert r.returncode == 0, r.stderr
        assert (
            f"refused alpha model class 'ng-test-llama' (switched on by {LLAMA_TRIGGER})"
            in r.stdout
        )
        assert "(inference: beta, training: alpha)" in r.stdout
        assert "NEURON_GUARD_WORKLOAD=training" in r.stdout

    def test_pyproject_workload(self, run: Run, tmp_path) -> None:  # type: ignore[no-untyped-def]
        """``[tool.neuron_guard] workload`` declares it too."""
        (tmp_path / "pyproject.toml").write_text('[tool.neuron_guard]\nworkload = "inference"\n')
        r = run(self.PROGRAM + PRINT_EVENTS)
        assert r.returncode == 0, r.stderr
        assert events_of(r) == [["model", "ng-test-llama", "beta", "warn", LLAMA_TRIGGER]]

    def test_allowed_by_name(self, run: Run) -> None:
        """``model:NAME`` allows it in strict mode; the class is constructed."""
        r = run(
            self.PROGRAM + "print('built', m.model_path)\n" + PRINT_EVENTS,
            mode="strict",
            env={"NEURON_GUARD_ALLOW": "model:ng-test-llama"},
        )
        assert r.returncode == 0, r.stderr
        assert "built /models/llama" in r.stdout
        assert events_of(r) == [["model", "ng-test-llama", "alpha", "allow", LLAMA_TRIGGER]]

    def test_subclass_instantiation(self, run: Run) -> None:
        """A user subclass of the model class fires the model too."""
        code = (
            "import neuron_guard\n" + LLAMA + "class Mine(NeuronLlamaForCausalLM):\n"
            "    pass\n"
            "Mine('/m')\n" + PRINT_EVENTS
        )
        r = run(code, env={"NEURON_GUARD_WORKLOAD": "inference"})
        assert r.returncode == 0, r.stderr
        assert events_of(r) == [["model", "ng-test-llama", "beta", "warn", LLAMA_TRIGGER]]
