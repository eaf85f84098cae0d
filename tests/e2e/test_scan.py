"""neuron-guard scan end to end: SARIF 2.1.0 checked against the official schema, JSON, pool."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import clean_env

FIXTURES = Path(__file__).parent.parent / "fixtures"
#: The OASIS SARIF 2.1.0 schema (errata01), vendored unchanged from oasis-tcs/sarif-spec
#: (sarif-2.1/schema/sarif-schema-2.1.0.json).
SCHEMA = FIXTURES / "sarif-schema-2.1.0.json"
TREE = FIXTURES / "scan" / "tree"
TABLE = FIXTURES / "scan" / "table.toml"


def scan(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    e = clean_env(NEURON_GUARD_TABLES=str(TABLE), **env)
    return subprocess.run(
        [sys.executable, "-m", "neuron_guard", "scan", *args],
        env=e,
        cwd=str(cwd),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def sarif(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    cwd = tmp_path_factory.mktemp("sarif")
    (cwd / "src").symlink_to(TREE / "pkg")
    (cwd / "bad.py").write_text("def f(:\n")
    r = scan("src", "bad.py", "--format", "sarif", cwd=cwd)
    assert r.returncode == 1, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


class TestSarif:
    def test_valid_against_the_sarif_2_1_0_schema(self, sarif: dict[str, object]) -> None:
        """The output validates against the official SARIF 2.1.0 JSON schema."""
        schema = json.loads(SCHEMA.read_text())
        jsonschema.Draft4Validator.check_schema(schema)
        errors = sorted(jsonschema.Draft4Validator(schema).iter_errors(sarif), key=str)
        assert errors == []

    def test_one_rule_per_item_with_meaning_and_remedy(self, sarif: dict) -> None:
        """Each rule is a table item: id KIND:NAME, its tier meaning and opt-in as help."""
        [run] = sarif["runs"]
        rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
        rule = rules["api:fakesdk.experimental.profile"]
        assert "major changes may happen" in rule["help"]["text"]
        assert "NEURON_GUARD_ALLOW=api:fakesdk.experimental.profile" in rule["help"]["text"]
        assert rule["defaultConfiguration"]["level"] == "error"
        assert rule["helpUri"] == "https://example.invalid/fakesdk/experimental"
        assert rules["api:fakesdk.old_fn"]["defaultConfiguration"]["level"] == "warning"

    def test_one_result_per_use_with_relative_uri_and_line(self, sarif: dict) -> None:
        """Results point at the file (relative to %SRCROOT%) and line of each use."""
        [run] = sarif["runs"]
        rules = run["tool"]["driver"]["rules"]
        locs = set()
        for res in run["results"]:
            assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
            loc = res["locations"][0]["physicalLocation"]
            assert loc["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
            locs.add((loc["artifactLocation"]["uri"], loc["region"]["startLine"], res["ruleId"]))
        assert ("src/imports.py", 7, "package:fake-preview-pkg") in locs
        assert ("src/envs.py", 7, "env:FAKE_NEURON_BETA") in locs
        assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"].endswith("/")

    def test_syntax_errors_are_tool_notifications(self, sarif: dict) -> None:
        """A file that does not parse is a tool execution notification, not a result."""
        [run] = sarif["runs"]
        [note] = run["invocations"][0]["toolExecutionNotifications"]
        assert "syntax error" in note["message"]["text"]
        assert note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "bad.py"


class TestOutputs:
    def test_text_json_and_sarif_agree(self, tmp_path: Path) -> None:
        """The three formats report the same not-allowed uses."""
        (tmp_path / "src").symlink_to(TREE / "pkg")
        text = scan("src", cwd=tmp_path).stdout
        doc = json.loads(scan("src", "--format", "json", cwd=tmp_path).stdout)
        sar = json.loads(scan("src", "--format", "sarif", cwd=tmp_path).stdout)
        from_json = {(f["path"], f["line"], f["rule"]) for f in doc["findings"] if not f["allowed"]}
        from_sarif = {
            (
                r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
                r["locations"][0]["physicalLocation"]["region"]["startLine"],
                r["ruleId"],
            )
            for r in sar["runs"][0]["results"]
        }
        assert from_json == from_sarif
        text_lines = [line for line in text.splitlines() if line.startswith("src/")]
        assert len(text_lines) == len(from_json)

    def test_many_files_use_the_pool(self, tmp_path: Path) -> None:
        """A tree of many files scans through worker processes with every file's finding."""
        for i in range(120):
            (tmp_path / f"m{i:03}.py").write_text(f"import fake_preview_pkg  # {i}\n")
        r = scan(".", "--format", "json", "--jobs", "2", cwd=tmp_path)
        assert r.returncode == 1, r.stderr
        doc = json.loads(r.stdout)
        assert doc["files"] == 120
        assert sorted(f["path"] for f in doc["findings"]) == [f"m{i:03}.py" for i in range(120)]
