"""The ``neuron_guard_allow`` marker: on tests, classes and modules, scoped to one test."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.plugin.conftest import Inner


class TestMarkerForms:
    """Function, class and module (``pytestmark``) markers, in a strict run."""

    def test_function_marker(self, inner: Inner) -> None:
        """The marked test passes, the unmarked one fails with the PreviewError message."""
        inner.files(
            test_a="""
                import pytest
                from helper import beta_api

                @pytest.mark.neuron_guard_allow("beta")
                def test_marked():
                    assert beta_api() == "beta"

                def test_unmarked():
                    assert beta_api() == "beta"
            """
        )
        result = inner.run("--neuron-guard=strict", "-v")
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(
            [
                "*test_a.py::test_marked PASSED*",
                "*test_a.py::test_unmarked FAILED*",
                "*PreviewError: beta API 'helper.beta_api' is not allowed in strict mode*",
            ]
        )

    def test_class_marker(self, inner: Inner) -> None:
        """A class marker covers its methods and nothing outside the class."""
        inner.files(
            test_a="""
                import pytest
                from helper import beta_api

                @pytest.mark.neuron_guard_allow("api:helper.beta_api")
                class TestAllowed:
                    def test_one(self):
                        beta_api()

                    def test_two(self):
                        beta_api()

                def test_outside():
                    beta_api()
            """
        )
        result = inner.run("--neuron-guard=strict", "-v")
        result.assert_outcomes(passed=2, failed=1)
        result.stdout.fnmatch_lines(["*test_a.py::test_outside FAILED*"])

    def test_module_marker(self, inner: Inner) -> None:
        """``pytestmark`` covers every test of its module, not those of another module."""
        inner.files(
            test_a="""
                import pytest
                from helper import beta_api

                pytestmark = pytest.mark.neuron_guard_allow("beta")

                def test_one():
                    beta_api()

                class TestInClass:
                    def test_two(self):
                        beta_api()
            """,
            test_b="""
                from helper import beta_api

                def test_other_module():
                    beta_api()
            """,
        )
        result = inner.run("--neuron-guard=strict", "-v")
        result.assert_outcomes(passed=2, failed=1)
        result.stdout.fnmatch_lines(["*test_b.py::test_other_module FAILED*"])

    def test_markers_add_up(self, inner: Inner) -> None:
        """Module and function markers combine: each test gets all that apply to it."""
        inner.files(
            test_a="""
                import pytest
                from helper import alpha_api, beta_api

                pytestmark = pytest.mark.neuron_guard_allow("api:helper.beta_api")

                @pytest.mark.neuron_guard_allow("api:helper.alpha_api")
                def test_both():
                    beta_api()
                    alpha_api()

                def test_alpha_only_module_marker():
                    alpha_api()
            """
        )
        result = inner.run("--neuron-guard=strict", "-v")
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(["*test_alpha_only_module_marker FAILED*"])

    def test_several_patterns(self, inner: Inner) -> None:
        """Several patterns in one marker, of several kinds, including a bare glob."""
        inner.files(
            test_a="""
                import pytest
                from helper import alpha_api, beta_api

                @pytest.mark.neuron_guard_allow("env:NEURON_FOO", "helper.alpha_*", "beta")
                def test_both():
                    beta_api()
                    alpha_api()
            """
        )
        inner.run("--neuron-guard=strict").assert_outcomes(passed=1)

    def test_beta_keyword_does_not_allow_alpha(self, inner: Inner) -> None:
        """``beta`` allows beta items only; an alpha API still fails."""
        inner.files(
            test_a="""
                import pytest
                from helper import alpha_api

                @pytest.mark.neuron_guard_allow("beta")
                def test_alpha():
                    alpha_api()
            """
        )
        result = inner.run("--neuron-guard=strict")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*PreviewError: alpha API 'helper.alpha_api'*"])

    def test_marker_silences_warn_mode(self, inner: Inner) -> None:
        """In warn mode a marked test's use is allowed: no BetaWarning."""
        inner.files(
            test_a="""
                import pytest
                from helper import beta_api

                @pytest.mark.neuron_guard_allow("beta")
                def test_marked():
                    beta_api()
            """
        )
        result = inner.run("--neuron-guard=warn")
        result.assert_outcomes(passed=1)
        result.stdout.no_fnmatch_line("*BetaWarning*")


class TestMarkerScope:
    """The opt-in lasts while the marked test runs (setup, call, teardown) and no longer."""

    def test_next_test_is_not_allowed(self, inner: Inner) -> None:
        """A marked test that ran first does not leak its opt-in to the next test."""
        inner.files(
            test_a="""
                import pytest
                from helper import beta_api

                @pytest.mark.neuron_guard_allow("beta")
                def test_first():
                    beta_api()

                def test_second():
                    beta_api()
            """
        )
        result = inner.run("--neuron-guard=strict", "-v", "-p", "no:randomly")
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(["*test_first PASSED*", "*test_second FAILED*"])

    def test_fixture_setup_and_teardown_are_covered(self, inner: Inner) -> None:
        """A fixture of a marked test may use the item in its setup and teardown."""
        inner.files(
            test_a="""
                import pytest
                from helper import beta_api

                @pytest.fixture
                def resource():
                    yield beta_api()
                    beta_api()

                @pytest.mark.neuron_guard_allow("beta")
                def test_marked(resource):
                    assert resource == "beta"

                def test_unmarked(resource):
                    pass
            """
        )
        result = inner.run("--neuron-guard=strict", "-v")
        result.assert_outcomes(passed=1, errors=1)
        result.stdout.fnmatch_lines(["*ERROR at setup of test_unmarked*"])

    def test_threads_do_not_inherit_the_opt_in(self, inner: Inner) -> None:
        """The opt-in is scoped with contextvars: a thread the test starts is not allowed."""
        inner.files(
            test_a="""
                import threading
                import pytest
                import neuron_guard
                from helper import beta_api

                @pytest.mark.neuron_guard_allow("beta")
                def test_thread():
                    errors = []

                    def work():
                        try:
                            beta_api()
                        except neuron_guard.PreviewError as exc:
                            errors.append(exc)

                    t = threading.Thread(target=work)
                    t.start()
                    t.join()
                    assert len(errors) == 1
                    assert beta_api() == "beta"
            """
        )
        inner.run("--neuron-guard=strict").assert_outcomes(passed=1)


class TestMarkerValidation:
    """Markers are registered, and a bad pattern fails collection with a clear error."""

    def test_strict_markers_passes(self, inner: Inner) -> None:
        """``--strict-markers`` knows the marker: the run passes."""
        inner.files(
            test_a="""
                import pytest

                @pytest.mark.neuron_guard_allow("beta")
                def test_marked():
                    pass
            """
        )
        # a subprocess: pytest caches known marker names per process
        inner.subprocess("--strict-markers").assert_outcomes(passed=1)

    def test_marker_is_listed(self, inner: Inner) -> None:
        """``pytest --markers`` documents the marker."""
        inner.run("--markers").stdout.fnmatch_lines(
            ["@pytest.mark.neuron_guard_allow(*patterns): allow neuron_guard preview items*"]
        )

    def test_bad_pattern_fails_collection(self, inner: Inner) -> None:
        """An unknown prefix is a collection error naming the test and the pattern."""
        inner.files(
            test_a="""
                import pytest

                @pytest.mark.neuron_guard_allow("beta", "apii:helper.*")
                def test_typo():
                    pass

                def test_fine():
                    pass
            """
        )
        result = inner.run("--neuron-guard=strict")
        assert result.ret == pytest.ExitCode.INTERRUPTED
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(
            [
                "*ERROR collecting test_a.py*",
                "*neuron_guard: allow pattern 'apii:helper.*' from "
                "@pytest.mark.neuron_guard_allow on test_a.py::test_typo has unknown prefix 'apii:'*",
            ]
        )

    def test_bad_module_pattern_names_each_test(self, inner: Inner) -> None:
        """A bad ``pytestmark`` pattern is reported for the module's tests, in a class too."""
        inner.files(
            test_a="""
                import pytest

                pytestmark = pytest.mark.neuron_guard_allow("env:")

                class TestX:
                    def test_in_class(self):
                        pass
            """
        )
        result = inner.run()
        assert result.ret == pytest.ExitCode.INTERRUPTED
        result.stdout.fnmatch_lines(
            [
                "*allow pattern 'env:' from @pytest.mark.neuron_guard_allow on "
                "test_a.py::TestX::test_in_class has nothing after 'env:'*"
            ]
        )

    def test_empty_marker_fails_collection(self, inner: Inner) -> None:
        """A marker without patterns is an error, not a silent no-op."""
        inner.files(
            test_a="""
                import pytest

                @pytest.mark.neuron_guard_allow()
                def test_empty():
                    pass
            """
        )
        result = inner.run()
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*on test_a.py::test_empty needs at least one pattern*"])

    def test_non_string_pattern_fails_collection(self, inner: Inner) -> None:
        """A pattern that is not a string is an error naming it."""
        inner.files(
            test_a="""
                import pytest

                @pytest.mark.neuron_guard_allow(42)
                def test_number():
                    pass
            """
        )
        result = inner.run()
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*allow pattern 42 from @pytest.mark.neuron_guard_allow*"])
