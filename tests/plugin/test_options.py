"""The plugin's options, ini keys and report header: ``--neuron-guard``, ``neuron_guard_mode``,
``--neuron-guard-allow``, ``neuron_guard_allow``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.plugin.conftest import Inner

USES_BETA = """
    from helper import beta_api

    def test_beta():
        assert beta_api() == "beta"
"""

REPORTS_MODE = """
    from neuron_guard._state import runtime

    def test_mode():
        print("MODE=" + str(runtime.settings.mode))
"""


class TestModeOption:
    """``--neuron-guard=off|warn|strict``."""

    def test_strict_fails_a_beta_use(self, inner: Inner) -> None:
        """Strict mode: an unmarked test using a beta API fails with the PreviewError message."""
        inner.files(test_a=USES_BETA)
        result = inner.run("--neuron-guard=strict")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                "*PreviewError: beta API 'helper.beta_api' is not allowed in strict mode*"
                "NEURON_GUARD_ALLOW=api:helper.beta_api*",
            ]
        )

    def test_warn_passes_with_a_beta_warning(self, inner: Inner) -> None:
        """Warn mode: the test passes and the BetaWarning shows in the warnings summary."""
        inner.files(test_a=USES_BETA)
        result = inner.run("--neuron-guard=warn")
        result.assert_outcomes(passed=1, warnings=1)
        result.stdout.fnmatch_lines(["*BetaWarning: beta API 'helper.beta_api' is a developer*"])

    def test_off_passes_silently(self, inner: Inner) -> None:
        """Off mode: no warning, no error, no summary."""
        inner.files(test_a=USES_BETA)
        result = inner.run("--neuron-guard=off")
        result.assert_outcomes(passed=1)
        result.stdout.no_fnmatch_line("*BetaWarning*")
        result.stdout.no_fnmatch_line("*neuron_guard: preview*")

    def test_value_is_case_insensitive(self, inner: Inner) -> None:
        """``--neuron-guard=STRICT`` is strict mode."""
        inner.files(test_a=USES_BETA)
        inner.run("--neuron-guard=STRICT").assert_outcomes(failed=1)

    def test_bad_value_is_a_usage_error(self, inner: Inner) -> None:
        """An unknown mode stops the run with a usage error naming the valid values."""
        inner.files(test_a=USES_BETA)
        result = inner.run("--neuron-guard=strcit")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*invalid mode 'strcit'*'off', 'warn', 'strict'*"])

    def test_mode_is_restored_after_the_run(self, inner: Inner) -> None:
        """The mode the plugin set lasts for the run only (in-process runs get theirs back)."""
        from neuron_guard._state import runtime

        before = runtime.settings.mode
        inner.files(test_a=REPORTS_MODE)
        result = inner.run("-s", "--neuron-guard=strict")
        result.stdout.fnmatch_lines(["*MODE=strict*"])
        assert runtime.settings.mode == before


class TestModeIni:
    """ini ``neuron_guard_mode``, and the option winning over it."""

    def test_ini_strict(self, inner: Inner) -> None:
        """``neuron_guard_mode = strict`` fails an unmarked beta use."""
        inner.ini("neuron_guard_mode = strict\n")
        inner.files(test_a=USES_BETA)
        result = inner.run()
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*PreviewError: beta API 'helper.beta_api'*"])

    def test_option_wins_over_ini(self, inner: Inner) -> None:
        """``--neuron-guard=warn`` beats ``neuron_guard_mode = strict``."""
        inner.ini("neuron_guard_mode = strict\n")
        inner.files(test_a=USES_BETA)
        result = inner.run("--neuron-guard=warn")
        result.assert_outcomes(passed=1, warnings=1)
        result.stdout.fnmatch_lines(["neuron_guard: mode warn (--neuron-guard)"])

    def test_bad_ini_value_is_a_usage_error(self, inner: Inner) -> None:
        """A typo in the ini key must not weaken the run: usage error naming the key."""
        inner.ini("neuron_guard_mode = strikt\n")
        inner.files(test_a=USES_BETA)
        result = inner.run()
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*invalid mode 'strikt' in ini neuron_guard_mode*"])


class TestEnvironmentMode:
    """Without the option or ini key the plugin leaves the mode the environment set."""

    def test_env_strict_applies_without_option(
        self, inner: Inner, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``NEURON_GUARD=strict`` (start-up file) stays strict: the plugin changes nothing."""
        monkeypatch.setenv("NEURON_GUARD", "strict")
        inner.files(test_a=USES_BETA)
        result = inner.subprocess()
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            ["neuron_guard: mode strict (env NEURON_GUARD)", "*PreviewError: beta API*"]
        )

    def test_option_overrides_env(self, inner: Inner, monkeypatch: pytest.MonkeyPatch) -> None:
        """``--neuron-guard=warn`` beats ``NEURON_GUARD=strict`` (without the lock)."""
        monkeypatch.setenv("NEURON_GUARD", "strict")
        inner.files(test_a=USES_BETA)
        result = inner.subprocess("--neuron-guard=warn")
        result.assert_outcomes(passed=1, warnings=1)

    def test_lock_refuses_a_weaker_mode(
        self, inner: Inner, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Under ``NEURON_GUARD_LOCK=1`` a weaker ``--neuron-guard`` is a usage error."""
        monkeypatch.setenv("NEURON_GUARD", "strict")
        monkeypatch.setenv("NEURON_GUARD_LOCK", "1")
        inner.files(test_a=USES_BETA)
        result = inner.subprocess("--neuron-guard=warn")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*refused: NEURON_GUARD_LOCK=1*"])

    def test_warns_when_off_at_start_up(
        self, inner: Inner, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``NEURON_GUARD=off`` then ``--neuron-guard=strict``: a config warning names the
        module that imported neuron_guard while the guard was off."""
        monkeypatch.setenv("NEURON_GUARD", "off")
        inner.files(
            conftest="""
                import helper
            """,
            test_a=USES_BETA,
        )
        result = inner.subprocess("--neuron-guard=strict", "-p", "helper")
        result.stdout.fnmatch_lines(
            [
                "*PytestConfigWarning: neuron_guard: mode 'off' from env NEURON_GUARD is for "
                "the whole process*objects decorated with @tier while it was off stay "
                "unguarded (already imported: helper)*",
            ]
        )
        result.stdout.fnmatch_lines(["*import hook inactive: off at start-up*"])


class TestModeReachesConftest:
    """The mode is set before conftest files and test modules import guarded code."""

    @pytest.mark.parametrize("how", ["option", "ini"])
    def test_conftest_use_at_import_sees_strict(self, inner: Inner, how: str) -> None:
        """A beta call while conftest.py is imported already raises, whether strict mode
        comes from ``--neuron-guard=strict`` or ``neuron_guard_mode = strict``."""
        args = ["--neuron-guard=strict"] if how == "option" else []
        if how == "ini":
            inner.ini("neuron_guard_mode = strict\n")
        inner.files(
            conftest="""
                import helper
                helper.beta_api()
            """,
            test_a="""
                def test_nothing():
                    pass
            """,
        )
        result = inner.subprocess(*args)
        assert result.ret != 0
        assert "beta API 'helper.beta_api' is not allowed in strict mode" in (
            result.stdout.str() + result.stderr.str()
        )

    def test_module_level_use_fails_collection(self, inner: Inner) -> None:
        """A beta call at a test module's import time is a collection error in strict mode."""
        inner.files(
            test_a="""
                import helper
                helper.beta_api()

                def test_nothing():
                    pass
            """
        )
        result = inner.run("--neuron-guard=strict")
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*PreviewError: beta API 'helper.beta_api'*"])


class TestAllowOption:
    """``--neuron-guard-allow`` and ini ``neuron_guard_allow``: run-wide opt-ins."""

    def test_option_allows(self, inner: Inner) -> None:
        """``--neuron-guard-allow=beta`` lets a strict run use beta APIs."""
        inner.files(test_a=USES_BETA)
        result = inner.run("--neuron-guard=strict", "--neuron-guard-allow=beta")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["neuron_guard: mode strict (--neuron-guard), allow beta"])

    def test_ini_allows(self, inner: Inner) -> None:
        """``neuron_guard_allow`` lines are allow patterns for the run."""
        inner.ini(
            """
            neuron_guard_mode = strict
            neuron_guard_allow =
                api:helper.beta_*
            """
        )
        inner.files(test_a=USES_BETA)
        inner.run().assert_outcomes(passed=1)

    def test_option_and_ini_add_up(self, inner: Inner) -> None:
        """The ini allows the beta API, the option the alpha one: both pass."""
        inner.ini("neuron_guard_allow = api:helper.beta_api\n")
        inner.files(
            test_a="""
                from helper import alpha_api, beta_api

                def test_both():
                    assert beta_api() == "beta"
                    assert alpha_api() == "alpha"
            """
        )
        result = inner.run("--neuron-guard=strict", "--neuron-guard-allow", "api:helper.alpha_api")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(
            [
                "neuron_guard: mode strict (--neuron-guard), allow api:helper.beta_api, api:helper.alpha_api"
            ]
        )

    def test_allow_narrowly(self, inner: Inner) -> None:
        """``--neuron-guard-allow=beta`` does not allow an alpha API."""
        inner.files(
            test_a="""
                from helper import alpha_api

                def test_alpha():
                    alpha_api()
            """
        )
        result = inner.run("--neuron-guard=strict", "--neuron-guard-allow=beta")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*PreviewError: alpha API 'helper.alpha_api'*"])

    def test_bad_option_pattern_is_a_usage_error(self, inner: Inner) -> None:
        """An unknown prefix in ``--neuron-guard-allow`` stops the run, naming it."""
        inner.files(test_a=USES_BETA)
        result = inner.run("--neuron-guard-allow=apii:helper.*")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(
            ["*allow pattern 'apii:helper.*' from --neuron-guard-allow has unknown prefix*"]
        )

    def test_bad_ini_pattern_is_a_usage_error(self, inner: Inner) -> None:
        """An unknown prefix in ``neuron_guard_allow`` stops the run, naming the ini key."""
        inner.ini("neuron_guard_allow = envv:NEURON_FOO\n")
        inner.files(test_a=USES_BETA)
        result = inner.run()
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*'envv:NEURON_FOO' from ini neuron_guard_allow*"])


class TestHeader:
    """The report header shows the effective mode and where it came from."""

    def test_header_names_the_ini(self, inner: Inner) -> None:
        """The ini key is named as the mode's origin."""
        inner.ini("neuron_guard_mode = off\n")
        inner.files(test_a=USES_BETA)
        inner.run().stdout.fnmatch_lines(["neuron_guard: mode off (ini neuron_guard_mode)"])

    def test_header_without_option(self, inner: Inner) -> None:
        """With nothing set, ``import neuron_guard`` made it warn mode by default."""
        inner.files(test_a=USES_BETA)
        result = inner.subprocess()
        result.stdout.fnmatch_lines(["neuron_guard: mode warn (default)"])
