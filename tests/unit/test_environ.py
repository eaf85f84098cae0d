"""environment_findings: what an environment switches on, as the start-up check sees it."""

from __future__ import annotations

from pathlib import Path

from neuron_guard._config import resolve
from neuron_guard._environ import environment_findings
from neuron_guard._table import Table, load_file

TABLE = """
schema = 1

[[env]]
name = "FAKE_BETA"
tier = "beta"

[[env]]
name = "FAKE_MODE"
tier = "alpha"
values = ["fast"]

[[env]]
name = "FAKE_STABLE"
tier = "stable"

[[flag]]
name = "--fake-exp"
tier = "beta"
carriers = ["env:FAKE_FLAGS"]

[[feature]]
name = "fake-cache"
tier = "beta"
triggers = ["env:FAKE_CACHE_URL"]

[[feature]]
name = "fake-fast"
tier = "alpha"
triggers = ["flag:--fast-path"]

[[feature]]
name = "fake-chained"
tier = "beta"
triggers = ["feature:fake-cache"]
"""


def findings(tmp_path: Path, environ: dict[str, str]) -> list[tuple[str, str, str | None]]:
    path = tmp_path / "t.toml"
    path.write_text(TABLE)
    table = Table([(str(path), load_file(str(path)))])
    settings = resolve(environ={}, cwd=str(tmp_path), use_pyproject=False)
    return [(f"{e.kind}:{e.name}", what, trig) for e, what, trig in
            environment_findings(table, settings, environ)]  # fmt: skip


class TestEnvironmentFindings:
    def test_clean_environment_finds_nothing(self, tmp_path: Path) -> None:
        """Unrelated and stable variables are not findings."""
        assert findings(tmp_path, {"HOME": "/root", "FAKE_STABLE": "1"}) == []

    def test_variables_and_their_values(self, tmp_path: Path) -> None:
        """A preview variable is found; one restricted to values only with a listed value."""
        env = {"FAKE_BETA": "", "FAKE_MODE": "slow"}
        assert findings(tmp_path, env) == [("env:FAKE_BETA", "FAKE_BETA=", None)]
        env["FAKE_MODE"] = "fast"
        assert ("env:FAKE_MODE", "FAKE_MODE=fast", None) in findings(tmp_path, env)

    def test_flag_in_a_carrier(self, tmp_path: Path) -> None:
        """A flag in an env: carrier is found, spelled as the table spells it."""
        got = findings(tmp_path, {"FAKE_FLAGS": "-O2 --fake_exp"})
        assert got == [("flag:--fake-exp", "--fake-exp in FAKE_FLAGS", None)]

    def test_env_trigger_without_an_entry_of_its_own(self, tmp_path: Path) -> None:
        """An env: trigger switches its feature on (and the feature it triggers) though the
        variable has no entry."""
        got = findings(tmp_path, {"FAKE_CACHE_URL": "s3://bucket"})
        assert got == [
            ("feature:fake-cache", "fake-cache", "env:FAKE_CACHE_URL"),
            ("feature:fake-chained", "fake-chained", "feature:fake-cache"),
        ]

    def test_flag_trigger_in_neuron_cc_flags(self, tmp_path: Path) -> None:
        """A flag trigger counts in NEURON_CC_FLAGS, as at run time."""
        got = findings(tmp_path, {"NEURON_CC_FLAGS": "--fast-path -O1"})
        assert got == [("feature:fake-fast", "fake-fast", "flag:--fast-path")]
