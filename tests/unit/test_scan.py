"""The static scanner in-process: resolution cases, traps, allow comments, walking rules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from neuron_guard._config import Settings, parse_patterns
from neuron_guard._scan import Index, build_index, iter_files, scan_file, scan_paths
from neuron_guard._table import load_table

SCAN = Path(__file__).parent.parent / "fixtures" / "scan"
TREE = SCAN / "tree"
TABLE = SCAN / "table.toml"


@pytest.fixture(scope="module")
def index() -> Index:
    settings = Settings(tables=(str(TABLE),))
    return build_index(load_table(settings, embedded=False), settings)


def expected(path: Path) -> set[tuple[int, str]]:
    """The ``# expect: RULE[, RULE]`` comments of a fixture file, as (line, rule id)."""
    out = set()
    for n, line in enumerate(path.read_text().splitlines(), 1):
        m = re.search(r"# expect: (.*)$", line)
        if m:
            out.update((n, rid.strip()) for rid in m.group(1).split(","))
    return out


def found(path: Path, idx: Index) -> set[tuple[int, str]]:
    _, hits, errors = scan_file(str(path), idx)
    assert errors == []
    return {(line, rid) for line, _col, ids, _t, allowed in hits if allowed is None for rid in ids}


class TestResolution:
    @pytest.mark.parametrize("name", ["imports.py", "envs.py", "flags.py", "allowed.py"])
    def test_fixture_file_findings_match_its_expect_comments(self, index: Index, name: str) -> None:
        """Each fixture file yields exactly the findings its '# expect:' comments list."""
        path = TREE / "pkg" / name
        assert found(path, index) == expected(path)

    def test_traps_yield_nothing(self, index: Index) -> None:
        """A local variable, parameter or loop variable named like a module, and flag-like substrings, are not findings."""
        assert found(TREE / "pkg" / "traps.py", index) == set()

    def test_alias_through_import_as(self, index: Index, tmp_path: Path) -> None:
        """'import a.b as c' then 'c.x' resolves to 'a.b.x'."""
        f = tmp_path / "m.py"
        f.write_text("import fakesdk.experimental as c\nc.profile()\n")
        assert found(f, index) == {(2, "api:fakesdk.experimental.profile")}

    def test_rebinding_hides_an_alias_from_then_on(self, index: Index, tmp_path: Path) -> None:
        """After 'fakesdk = other', 'fakesdk.experimental.profile' is not the API."""
        f = tmp_path / "m.py"
        f.write_text(
            "import fakesdk\nfakesdk.experimental.profile()\nfakesdk = 1\nfakesdk.experimental.profile()\n"
        )
        assert found(f, index) == {(2, "api:fakesdk.experimental.profile")}

    def test_relative_imports_are_not_table_modules(self, index: Index, tmp_path: Path) -> None:
        """'from .fakesdk import experimental' is the project's own module."""
        f = tmp_path / "m.py"
        f.write_text("from .fakesdk import experimental\nexperimental.profile()\n")
        assert found(f, index) == set()

    def test_feature_found_through_its_trigger(self, index: Index) -> None:
        """Setting a feature's trigger env var is a use of the feature, with the trigger named."""
        result = scan_paths([str(TREE / "pkg" / "envs.py")], index, jobs=1)
        feats = [f for f in result.findings if f.rule.kind == "feature"]
        assert [(f.rule.name, f.trigger) for f in feats] == [("fake-cache", "env:FAKE_CACHE_URL")]

    def test_deprecated_stable_item_is_reported_but_not_failing(self, index: Index) -> None:
        """A deprecated stable API is a finding that does not make the scan fail."""
        result = scan_paths([str(TREE / "pkg" / "imports.py")], index, jobs=1)
        old = [f for f in result.findings if f.rule.name == "fakesdk.old_fn"]
        assert old
        assert not any(f.failing for f in old)
        assert old[0].rule.replacement == "fakesdk.new_fn"


class TestAllow:
    def test_allow_pattern_from_settings(self, tmp_path: Path) -> None:
        """Allow patterns of the settings (env, pyproject) mark findings allowed."""
        settings = Settings(
            tables=(str(TABLE),),
            allow=parse_patterns("env:FAKE_*", origin="env NEURON_GUARD_ALLOW"),
        )
        idx = build_index(load_table(settings, embedded=False), settings)
        result = scan_paths([str(TREE / "pkg" / "envs.py")], idx, jobs=1)
        envs = [f for f in result.findings if f.rule.kind == "env"]
        assert envs
        assert all(f.allowed_by == "env:FAKE_* (env NEURON_GUARD_ALLOW)" for f in envs)

    def test_feature_pattern_allows_its_trigger(self, tmp_path: Path) -> None:
        """'feature:NAME' in the allow list allows the feature and the trigger's use."""
        settings = Settings(tables=(str(TABLE),))
        idx = build_index(load_table(settings, embedded=False), settings, ["feature:fake-cache"])
        result = scan_paths([str(TREE / "pkg" / "envs.py")], idx, jobs=1)
        assert not [f for f in result.failing if f.rule.kind == "feature"]

    def test_tier_keyword_allows_beta_not_alpha(self, tmp_path: Path) -> None:
        """'--allow beta' allows beta findings; alpha ones still fail."""
        settings = Settings(tables=(str(TABLE),))
        idx = build_index(load_table(settings, embedded=False), settings, ["beta"])
        result = scan_paths([str(TREE / "pkg")], idx, jobs=1)
        assert {f.rule.tier for f in result.failing} == {"alpha"}

    def test_bad_comment_pattern_is_an_error_of_that_file(
        self, index: Index, tmp_path: Path
    ) -> None:
        """A bad pattern in a comment is reported for its file; the scan goes on."""
        f = tmp_path / "m.py"
        f.write_text(
            "import fakesdk\nfakesdk.experimental.profile()  # neuron-guard: allow bogus:x\n"
        )
        _, hits, errors = scan_file(str(f), index)
        assert len(hits) == 1
        assert hits[0][4] is None
        assert errors
        assert "bogus" in errors[0][2]


class TestFiles:
    def test_skips_vcs_venv_cache_and_excludes(self, tmp_path: Path) -> None:
        """.git, __pycache__, a virtual environment and --exclude globs are not walked."""
        for d in (".git", "__pycache__", "env", "src", "gen"):
            (tmp_path / d).mkdir()
            (tmp_path / d / "m.py").write_text("x = 1\n")
        (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr\n")
        files = iter_files([str(tmp_path)], exclude=["gen"])
        assert [Path(f).relative_to(tmp_path).as_posix() for f in files] == ["src/m.py"]

    def test_named_file_is_always_scanned(self, tmp_path: Path) -> None:
        """A file named on the command line is scanned whatever its extension."""
        f = tmp_path / "tool"
        f.write_text("x = 1\n")
        assert iter_files([str(f)]) == [str(f)]

    def test_syntax_error_is_reported_and_the_scan_goes_on(
        self, index: Index, tmp_path: Path
    ) -> None:
        """A file that does not parse is an error with its line; other files are scanned."""
        (tmp_path / "bad.py").write_text("def broken(:\n    pass\n")
        (tmp_path / "good.py").write_text("import fake_preview_pkg\n")
        result = scan_paths([str(tmp_path)], index, jobs=1)
        assert [(Path(p).name, line) for p, line, _c, _m in result.errors] == [("bad.py", 1)]
        assert [f.rule.id for f in result.findings] == ["package:fake-preview-pkg"]

    def test_pool_gives_the_same_result_as_one_process(self, index: Index, tmp_path: Path) -> None:
        """Many files go through the process pool with the same findings as a serial scan."""
        for i in range(60):
            (tmp_path / f"m{i}.py").write_text(
                f"import fakesdk\nfakesdk.experimental.profile({i})\n"
            )

        def key(r: object) -> list[tuple[str, int, str]]:
            return sorted((f.path, f.line, f.rule.id) for f in r.findings)  # type: ignore[attr-defined]

        serial = scan_paths([str(tmp_path)], index, jobs=1)
        pooled = scan_paths([str(tmp_path)], index, jobs=2)
        assert len(serial.findings) == 60
        assert key(pooled) == key(serial)

    def test_missing_path_is_a_config_error(self, index: Index, tmp_path: Path) -> None:
        """A scan path that does not exist is a configuration error (exit 2 in the CLI)."""
        from neuron_guard import ConfigError

        with pytest.raises(ConfigError, match="does not exist"):
            scan_paths([str(tmp_path / "nope")], index)
