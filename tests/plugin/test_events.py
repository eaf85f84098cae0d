"""The ``neuron_guard_events`` fixture: the events of the current test only."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.plugin.conftest import Inner


class TestEventsFixture:
    """Per-test counts, exact even though warn-once is per process."""

    def test_counts_only_this_test(self, inner: Inner) -> None:
        """Uses of earlier tests are not in a later test's events."""
        inner.files(
            test_a="""
                from helper import beta_api

                def test_first():
                    beta_api()
                    beta_api()

                def test_second(neuron_guard_events):
                    assert list(neuron_guard_events) == []
                    beta_api()
                    (ev,) = neuron_guard_events.list
                    assert (ev.kind, ev.name, ev.tier, ev.action, ev.count) == (
                        "api", "helper.beta_api", "beta", "warn", 1
                    )
            """
        )
        inner.run("--neuron-guard=warn", "-p", "no:randomly").assert_outcomes(passed=2, warnings=1)

    def test_counts_are_exact_after_the_warning(self, inner: Inner) -> None:
        """Only the first use warns, but every use is counted."""
        inner.files(
            test_a="""
                from helper import beta_api

                def test_many(neuron_guard_events):
                    for _ in range(5):
                        beta_api()
                    assert neuron_guard_events.count("helper.beta_api") == 5
                    assert neuron_guard_events.count("helper.beta_api", "warn") == 5
                    assert neuron_guard_events.count("helper.beta_api", "raise") == 0
                    assert len(neuron_guard_events) == 1
            """
        )
        inner.run("--neuron-guard=warn").assert_outcomes(passed=1, warnings=1)

    def test_actions_of_a_marked_strict_test(self, inner: Inner) -> None:
        """In a strict run, allowed uses and refused ones are separate events."""
        inner.files(
            test_a="""
                import pytest
                import neuron_guard
                from helper import alpha_api, beta_api

                @pytest.mark.neuron_guard_allow("api:helper.beta_api")
                def test_mixed(neuron_guard_events):
                    beta_api()
                    beta_api()
                    with pytest.raises(neuron_guard.PreviewError):
                        alpha_api()
                    got = sorted((e.name, e.action, e.count) for e in neuron_guard_events)
                    assert got == [
                        ("helper.alpha_api", "raise", 1),
                        ("helper.beta_api", "allow", 2),
                    ]
            """
        )
        inner.run("--neuron-guard=strict").assert_outcomes(passed=1)

    def test_fixture_setup_uses_are_included(self, inner: Inner) -> None:
        """Uses in the setup of the test's other fixtures count for the test."""
        inner.files(
            test_a="""
                import pytest
                from helper import beta_api

                @pytest.fixture
                def early():
                    beta_api()

                def test_after_fixture(early, neuron_guard_events):
                    assert neuron_guard_events.count("helper.beta_api") == 1
            """
        )
        inner.run("--neuron-guard=warn").assert_outcomes(passed=1, warnings=1)

    def test_clear(self, inner: Inner) -> None:
        """``clear()`` forgets the uses so far."""
        inner.files(
            test_a="""
                from helper import beta_api

                def test_clear(neuron_guard_events):
                    beta_api()
                    neuron_guard_events.clear()
                    assert neuron_guard_events.list == []
                    beta_api()
                    assert neuron_guard_events.count("helper.beta_api") == 1
            """
        )
        inner.run("--neuron-guard=warn").assert_outcomes(passed=1, warnings=1)

    def test_first_use_location(self, inner: Inner) -> None:
        """An event carries the file and line of the first use."""
        inner.files(
            test_a="""
                from helper import beta_api

                def test_where(neuron_guard_events):
                    beta_api()
                    (ev,) = neuron_guard_events
                    assert ev.file == __file__
                    assert ev.line == 4
            """
        )
        inner.run("--neuron-guard=warn").assert_outcomes(passed=1, warnings=1)
