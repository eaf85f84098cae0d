"""The plugin with pytest-xdist, ``--import-mode=importlib``, assertion rewriting, and
table-driven APIs of a stand-in package guarded by the import hook."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.plugin.conftest import Inner

TITLE = "*= neuron_guard: preview and deprecated items used =*"


class TestXdist:
    """``-n 2``: workers send per-test usage, the controller prints one merged summary."""

    def test_merged_summary(self, inner: Inner) -> None:
        """Tests on both workers and module-level uses of both appear in one summary."""
        inner.files(
            test_a="""
                import os
                from helper import beta_api

                beta_api()

                def test_a1():
                    beta_api()

                def test_a2():
                    beta_api()
                    beta_api()
            """,
            test_b="""
                import pytest
                from helper import alpha_api, beta_api

                @pytest.mark.parametrize("i", range(4))
                def test_b(i):
                    beta_api()
                    alpha_api()
            """,
        )
        result = inner.subprocess("-n", "2", "--neuron-guard=warn", "-p", "no:randomly")
        result.assert_outcomes(passed=6)
        out = result.stdout.str()
        assert out.count("neuron_guard: preview and deprecated items used") == 1
        result.stdout.fnmatch_lines(
            [
                TITLE,
                "alpha api helper.alpha_api: 4 uses (4 warned) in 4 tests",
                "beta api helper.beta_api: 9 uses (9 warned) in 6 tests",
                "    test_a.py::test_a1 (1)",
                "    test_a.py::test_a2 (2)",
                "    test_b.py::test_b[0] (1)",
                "    test_b.py::test_b[1] (1)",
                "    test_b.py::test_b[2] (1)",
                "    test_b.py::test_b[3] (1)",
                "    (outside tests) (2)",
            ]
        )

    def test_strict_and_marker_on_workers(self, inner: Inner) -> None:
        """The mode and the marker reach the workers: marked passes, unmarked fails."""
        inner.files(
            test_a="""
                import pytest
                from helper import beta_api

                @pytest.mark.neuron_guard_allow("beta")
                def test_marked():
                    beta_api()

                def test_unmarked():
                    beta_api()
            """
        )
        result = inner.subprocess("-n", "2", "--neuron-guard=strict")
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(
            [
                "*PreviewError: beta API 'helper.beta_api' is not allowed in strict mode*",
                TITLE,
                "beta api helper.beta_api: 2 uses (1 allowed, 1 raised) in 2 tests",
            ]
        )


class TestImportModes:
    """The plugin neither fights assertion rewriting nor ``--import-mode=importlib``."""

    GUARDED_IN_TEST = """
        import pytest
        import neuron_guard

        @neuron_guard.tier("beta")
        def local_beta():
            return 1

        @pytest.mark.neuron_guard_allow("beta")
        def test_rewritten():
            assert local_beta() == 2

        def test_unmarked():
            local_beta()
    """

    @pytest.mark.parametrize("mode", ["prepend", "importlib"])
    def test_guard_and_rewriting(self, inner: Inner, mode: str) -> None:
        """A ``@tier`` API in the test module is guarded, and asserts are still rewritten."""
        inner.files(test_a=self.GUARDED_IN_TEST)
        result = inner.run(f"--import-mode={mode}", "--neuron-guard=strict")
        result.assert_outcomes(failed=2)
        result.stdout.fnmatch_lines(
            [
                "*assert 1 == 2",
                "*where 1 = local_beta()",
                "*PreviewError: beta API 'test_a.local_beta' is not allowed in strict mode*",
            ]
        )

    def test_no_rewrite_warning_when_imported_at_start_up(
        self, inner: Inner, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The start-up file imports neuron_guard before pytest: no PytestAssertRewriteWarning."""
        monkeypatch.setenv("NEURON_GUARD", "warn")
        inner.files(
            test_a="""
                import sys

                def test_imported_early():
                    assert "neuron_guard" in sys.modules
            """
        )
        result = inner.subprocess("-W", "error::pytest.PytestAssertRewriteWarning")
        result.assert_outcomes(passed=1)
        assert "cannot be rewritten" not in result.stdout.str() + result.stderr.str()


TABLE = """
schema = 1

[[api]]
name = "fakesdk.experimental.fancy"
tier = "beta"
source = "plugin test table"

[[api]]
name = "fakesdk.legacy"
tier = "stable"
deprecated = "2.20"
replacement = "fakesdk.experimental.fancy"
source = "plugin test table"
"""


class TestTableDrivenApi:
    """A stand-in package guarded by the import hook from a table in NEURON_GUARD_TABLES."""

    @pytest.fixture
    def sdk(self, inner: Inner, monkeypatch: pytest.MonkeyPatch) -> Inner:
        """``fakesdk`` (never decorated) and a table classifying two of its APIs."""
        pkg = inner.pytester.mkpydir("fakesdk")
        (pkg / "experimental.py").write_text("def fancy():\n    return 42\n")
        (pkg / "__init__.py").write_text(
            '"""Stand-in SDK package for the plugin tests."""\n\n'
            "def legacy():\n    return 'old'\n"
        )
        table = inner.pytester.path / "table.toml"
        table.write_text(TABLE)
        monkeypatch.setenv("NEURON_GUARD_TABLES", str(table))
        inner.files(
            test_sdk="""
                import pytest
                import fakesdk
                from fakesdk.experimental import fancy

                def test_unmarked():
                    assert fancy() == 42

                @pytest.mark.neuron_guard_allow("api:fakesdk.experimental.*")
                def test_marked(neuron_guard_events):
                    assert fancy() == 42
                    assert fancy() == 42
                    assert neuron_guard_events.count("fakesdk.experimental.fancy", "allow") == 2

                def test_deprecated():
                    assert fakesdk.legacy() == "old"
            """
        )
        return inner

    def test_strict_run(self, sdk: Inner) -> None:
        """Strict: the unmarked test fails with the PreviewError message, the marked passes."""
        result = sdk.subprocess("--neuron-guard=strict", "-W", "default")
        result.assert_outcomes(passed=2, failed=1, warnings=1)
        result.stdout.fnmatch_lines(
            [
                "*test_unmarked*",
                "*PreviewError: beta API 'fakesdk.experimental.fancy' is not allowed in strict*",
            ]
        )
        result.stdout.fnmatch_lines(
            [
                TITLE,
                "beta api fakesdk.experimental.fancy: 3 uses (2 allowed, 1 raised) in 2 tests",
                "    test_sdk.py::test_marked (2)",
                "    test_sdk.py::test_unmarked (1)",
                "stable api fakesdk.legacy: 1 use (1 deprecation warned) in 1 test",
                "    test_sdk.py::test_deprecated (1)",
            ]
        )

    def test_warn_run_under_xdist(self, sdk: Inner) -> None:
        """Warn mode with ``-n 2``: everything passes and the controller merges the counts."""
        result = sdk.subprocess("-n", "2", "--neuron-guard=warn", "-W", "default")
        result.assert_outcomes(passed=3, warnings=2)
        result.stdout.fnmatch_lines(
            [
                TITLE,
                "beta api fakesdk.experimental.fancy: 3 uses (2 allowed, 1 warned) in 2 tests",
            ]
        )
