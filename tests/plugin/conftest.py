"""Fixtures for the pytest plugin's tests: a clean environment and guarded helper code."""

from __future__ import annotations

import os
import textwrap

import pytest

HELPER = '''
"""Guarded code for the plugin's tests (written by the test, imported by the inner run)."""
import neuron_guard

@neuron_guard.tier("beta")
def beta_api():
    return "beta"

@neuron_guard.tier("alpha")
def alpha_api():
    return "alpha"
'''


@pytest.fixture(autouse=True)
def _no_guard_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs (in-process or subprocess) see no NEURON_GUARD* variable from outside."""
    for name in list(os.environ):
        if name.startswith("NEURON_GUARD"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    monkeypatch.delenv("PYTHONWARNINGS", raising=False)


class Inner:
    """A project for an inner pytest run, with ``helper.py`` (a beta and an alpha API)."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        pytester.makepyfile(helper=HELPER)

    def files(self, **files: str) -> None:
        """Write Python files (dedented), by module name."""
        self.pytester.makepyfile(**{k: textwrap.dedent(v) for k, v in files.items()})

    def ini(self, text: str) -> None:
        """Write ``pytest.ini`` (``[pytest]`` is added)."""
        self.pytester.makeini("[pytest]\n" + textwrap.dedent(text))

    def run(self, *args: str) -> pytest.RunResult:
        """An in-process run; ``-W default`` keeps this suite's ``filterwarnings = error`` out."""
        return self.pytester.runpytest("-W", "default", *args)

    def subprocess(self, *args: str) -> pytest.RunResult:
        """A run in a fresh interpreter (for start-up behaviour and the environment)."""
        return self.pytester.runpytest_subprocess(*args, timeout=120)


@pytest.fixture
def inner(pytester: pytest.Pytester) -> Inner:
    """A project for an inner pytest run (see :class:`Inner`)."""
    return Inner(pytester)
