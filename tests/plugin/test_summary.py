"""The terminal summary (items, tiers, uses, tests) and ``-p no:neuron_guard``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.plugin.conftest import Inner

TITLE = "*= neuron_guard: preview and deprecated items used =*"


class TestSummary:
    """Per preview item: its tier, how many uses, which tests used it."""

    def test_items_tiers_counts_and_tests(self, inner: Inner) -> None:
        """Counts come from the exact per-test counts, not from the (once-only) warnings."""
        inner.files(
            test_a="""
                from helper import alpha_api, beta_api

                def test_one():
                    beta_api()
                    beta_api()

                def test_two():
                    beta_api()
                    alpha_api()

                def test_none():
                    pass
            """
        )
        result = inner.run("--neuron-guard=warn")
        result.assert_outcomes(passed=3, warnings=2)
        result.stdout.fnmatch_lines(
            [
                TITLE,
                "alpha api helper.alpha_api: 1 use (1 warned) in 1 test",
                "    test_a.py::test_two (1)",
                "beta api helper.beta_api: 3 uses (3 warned) in 2 tests",
                "    test_a.py::test_one (2)",
                "    test_a.py::test_two (1)",
            ]
        )
        result.stdout.no_fnmatch_line("*test_none*")

    def test_actions_are_broken_down(self, inner: Inner) -> None:
        """A strict run with a marked test shows allowed and raised uses apart."""
        inner.files(
            test_a="""
                import pytest
                from helper import beta_api

                @pytest.mark.neuron_guard_allow("beta")
                def test_marked():
                    beta_api()
                    beta_api()

                def test_unmarked():
                    beta_api()
            """
        )
        result = inner.run("--neuron-guard=strict")
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(
            [
                TITLE,
                "beta api helper.beta_api: 3 uses (2 allowed, 1 raised) in 2 tests",
                "    test_a.py::test_marked (2)",
                "    test_a.py::test_unmarked (1)",
            ]
        )

    def test_uses_outside_tests(self, inner: Inner) -> None:
        """A use while a module is imported is listed as outside tests."""
        inner.files(
            test_a="""
                from helper import beta_api

                beta_api()

                def test_one():
                    beta_api()
            """
        )
        result = inner.run("--neuron-guard=warn")
        result.stdout.fnmatch_lines(
            [
                "beta api helper.beta_api: 2 uses (2 warned) in 1 test",
                "    test_a.py::test_one (1)",
                "    (outside tests) (1)",
            ]
        )

    def test_only_outside_tests(self, inner: Inner) -> None:
        """An item used only while a conftest is imported is counted too."""
        inner.files(
            conftest="""
                import helper

                helper.beta_api()
            """,
            test_a="""
                def test_plain():
                    pass
            """,
        )
        result = inner.run("--neuron-guard=warn")
        result.stdout.fnmatch_lines(
            [
                TITLE,
                "beta api helper.beta_api: 1 use (1 warned) outside tests",
                "    (outside tests) (1)",
            ]
        )

    def test_long_lists_are_cut_unless_verbose(self, inner: Inner) -> None:
        """Ten tests are listed by default; ``-v`` lists them all."""
        inner.files(
            test_a="""
                import pytest
                from helper import beta_api

                @pytest.mark.parametrize("i", range(12))
                def test_many(i):
                    beta_api()
            """
        )
        result = inner.run("--neuron-guard=warn")
        result.stdout.fnmatch_lines(
            [
                "beta api helper.beta_api: 12 uses (12 warned) in 12 tests",
                "    ... and 2 more (-v lists them all)",
            ]
        )
        verbose = inner.run("--neuron-guard=warn", "-v")
        verbose.stdout.fnmatch_lines(["    test_a.py::test_many[11] (1)"])
        verbose.stdout.no_fnmatch_line("*more (-v lists them all)*")

    def test_no_summary_without_uses(self, inner: Inner) -> None:
        """Nothing used, nothing printed."""
        inner.files(
            test_a="""
                def test_plain():
                    pass
            """
        )
        result = inner.run("--neuron-guard=strict")
        result.assert_outcomes(passed=1)
        result.stdout.no_fnmatch_line(TITLE)


class TestDisabled:
    """``-p no:neuron_guard`` disables the plugin entirely."""

    def test_no_header_no_summary(self, inner: Inner) -> None:
        """No header line, no summary; the warning itself still comes from the guard."""
        inner.files(
            test_a="""
                from helper import beta_api

                def test_one():
                    beta_api()
            """
        )
        result = inner.run("-p", "no:neuron_guard")
        result.assert_outcomes(passed=1, warnings=1)
        result.stdout.no_fnmatch_line("neuron_guard: mode*")
        result.stdout.no_fnmatch_line(TITLE)

    def test_option_is_unknown(self, inner: Inner) -> None:
        """``--neuron-guard`` is not an option any more."""
        result = inner.run("-p", "no:neuron_guard", "--neuron-guard=strict")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*unrecognized arguments: --neuron-guard=strict*"])

    def test_marker_is_unknown(self, inner: Inner) -> None:
        """Under ``--strict-markers`` the marker is not registered any more."""
        inner.files(
            test_a="""
                import pytest

                @pytest.mark.neuron_guard_allow("beta")
                def test_marked():
                    pass
            """
        )
        # a subprocess: pytest caches known marker names per process
        result = inner.subprocess("-p", "no:neuron_guard", "--strict-markers")
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*'neuron_guard_allow' not found in `markers`*"])

    def test_fixture_is_unknown(self, inner: Inner) -> None:
        """The fixture goes with the plugin."""
        inner.files(
            test_a="""
                def test_events(neuron_guard_events):
                    pass
            """
        )
        result = inner.run("-p", "no:neuron_guard")
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*fixture 'neuron_guard_events' not found*"])
