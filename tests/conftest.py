"""Shared fixtures: real subprocesses, isolated guard state, stand-in SDK packages."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

import neuron_guard
from neuron_guard._state import runtime

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures"
#: Stand-ins shaped like Neuron SDK modules (never installed; put on PYTHONPATH by tests).
STANDIN_SDK = FIXTURES / "standin_sdk"


def clean_env(**extra: str | None) -> dict[str, str]:
    """The current environment without any NEURON_GUARD* variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEURON_")}
    env.pop("PYTHONWARNINGS", None)
    for k, v in extra.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


Runner = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def run_python(tmp_path: Path) -> Runner:
    """Run Python code in a fresh interpreter: ``run_python(code, env={...}, args=[...])``.

    The code is dedented and written to ``tmp_path/prog.py``; the stand-in SDK and
    ``tmp_path`` are on ``PYTHONPATH``; no NEURON_GUARD* variable leaks in from outside.
    """

    def run(
        code: str,
        *,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
        python_args: list[str] | None = None,
        cwd: Path | None = None,
        timeout: float = 120,
        script: str = "prog.py",
    ) -> subprocess.CompletedProcess[str]:
        prog = tmp_path / script
        prog.write_text(textwrap.dedent(code))
        paths = [str(STANDIN_SDK), str(tmp_path)]
        e = clean_env(**(env or {}))
        if e.get("PYTHONPATH"):
            paths.append(e["PYTHONPATH"])
        e["PYTHONPATH"] = os.pathsep.join(paths)
        cmd = [sys.executable, *(python_args or []), str(prog), *(args or [])]
        return subprocess.run(
            cmd,
            env=e,
            cwd=str(cwd or tmp_path),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


@pytest.fixture(autouse=True)
def _isolate_guard() -> Iterator[None]:
    """Each in-process test starts from the same settings and no recorded uses."""
    saved = runtime.settings
    saved_baseline = runtime.baseline
    runtime.clear_events()
    try:
        yield
    finally:
        runtime.baseline = saved_baseline
        runtime.set_settings(saved)
        runtime.clear_events()


@pytest.fixture
def strict() -> Any:
    """Strict mode for one in-process test (the autouse fixture restores the settings)."""
    neuron_guard.configure(mode="strict")
    return neuron_guard
