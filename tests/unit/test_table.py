"""Tier tables: validation errors name file, entry and key; merging; the embedded table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from neuron_guard import ConfigError
from neuron_guard._table import (
    KEYS,
    Table,
    load_embedded,
    load_embedded_toml,
    load_file,
    parse_table,
)

ROOT = Path(__file__).resolve().parents[2]


def one(kind: str = "api", **keys: Any) -> dict[str, Any]:
    entry = {"name": "pkg.mod.fn", "tier": "beta", **keys}
    return {kind: [entry]}


class TestValidation:
    @pytest.mark.parametrize(
        ("doc", "fragments"),
        [
            (
                one(tierr="beta"),
                ["[[api]] #1 'pkg.mod.fn'", "unknown key 'tierr'", "did you mean 'tier'?"],
            ),
            ({"apis": []}, ["unknown kind 'apis'", "did you mean 'api'?"]),
            (one(tier="gamma"), ["'tier' must be 'alpha', 'beta' or 'stable'"]),
            (one(versions="<<2"), ["'versions' is not a valid PEP 440 specifier: '<<2'"]),
            (one(sdk=2.25), ["'sdk' must be a PEP 440 version specifier string"]),
            (one(deprecated="two"), ["'deprecated' is not a valid PEP 440 version: 'two'"]),
            (one(values=["x"]), ["'values' on an api entry needs 'argument'"]),
            (one(versions="<2", sdk="<2.25"), ["either 'versions'", "or 'sdk', not both"]),
            ({"api": [{"tier": "beta"}]}, ["[[api]] #1", "missing required key 'name'"]),
            ({"api": [{"name": "x"}]}, ["missing required key 'tier'"]),
            ({"api": [{"name": "", "tier": "beta"}]}, ["'name' must be a non-empty string"]),
            (one("env", argument="x"), ["unknown key 'argument'; valid keys for env"]),
            (one("flag", carriers=["shell:x"]), ["carrier 'shell:x' must be"]),
            (one("flag", carriers=["api:torch_neuronx.trace"]), ["must name the argument"]),
            (one("feature", triggers=["envv:X"]), ["trigger 'envv:X' must be 'KIND:NAME'"]),
            (one("model", workload="serving"), ["'workload' must be 'training' or 'inference'"]),
            (one("package", module="not a module"), ["'module' must be a dotted module name"]),
            ({"api": {"name": "x"}}, ["'api' must be an array of tables ([[api]])"]),
            ({"schema": 2}, ["needs schema 2", "understands schema 1"]),
            ({"schema": "1"}, ["'schema' must be a positive integer"]),
            (
                {"api": [{"name": "a", "tier": "beta"}, {"name": "a", "tier": "alpha"}]},
                ["[[api]] #2 'a'", "duplicates entry #1"],
            ),
        ],
    )
    def test_errors_name_file_entry_and_key(
        self, doc: dict[str, Any], fragments: list[str]
    ) -> None:
        """Every bad table is a ConfigError that says where and what."""
        with pytest.raises(ConfigError) as info:
            parse_table(doc, "my/table.toml")
        text = str(info.value)
        assert text.startswith("my/table.toml: ")
        for fragment in fragments:
            assert fragment in text
        assert info.value.source == "my/table.toml"

    def test_every_key_of_every_kind_is_accepted(self) -> None:
        """A table using every documented key parses into entries."""
        doc = {
            "schema": 1,
            "api": [
                {"name": "p.f", "tier": "beta", "package": "p", "versions": "<2", "source": "s"},
                {"name": "p.f", "argument": "a", "values": ["1"], "tier": "alpha", "sdk": "<2.25"},
            ],
            "env": [
                {
                    "name": "NEURON_X",
                    "tier": "beta",
                    "values": ["1"],
                    "deprecated": "2.24",
                    "removed": "2.25",
                    "replacement": "r",
                }
            ],
            "flag": [
                {
                    "name": "--x",
                    "tier": "alpha",
                    "aliases": ["-x"],
                    "values": ["v"],
                    "carriers": ["env:NEURON_CC_FLAGS", "api:p.f:args", "cli:neuronx-cc"],
                }
            ],
            "package": [{"name": "p-q", "module": "p_q", "tier": "beta", "note": "n"}],
            "feature": [{"name": "cache", "tier": "beta", "triggers": ["env:NEURON_X"]}],
            "model": [
                {
                    "name": "m",
                    "framework": "f",
                    "library": "l",
                    "workload": "training",
                    "tier": "beta",
                    "triggers": ["api:p.f"],
                }
            ],
        }
        entries = parse_table(doc, "t")
        assert [e.kind for e in entries] == [
            "api",
            "api",
            "env",
            "flag",
            "package",
            "feature",
            "model",
        ]
        assert entries[1].display_name == "p.f:a"
        assert entries[4].import_name == "p_q"

    def test_tier_is_case_insensitive(self) -> None:
        """tier = "Beta" is beta."""
        [entry] = parse_table(one(tier="Beta"), "t")
        assert entry.tier == "beta"

    def test_file_errors(self, tmp_path: Path) -> None:
        """A missing file and broken TOML are ConfigErrors naming the file."""
        with pytest.raises(ConfigError, match="cannot read tier table"):
            load_file(str(tmp_path / "missing.toml"))
        bad = tmp_path / "bad.toml"
        bad.write_text("[[api]\nname=")
        with pytest.raises(ConfigError, match=r"bad\.toml: not valid TOML"):
            load_file(str(bad))


class TestMerge:
    def test_later_sources_override_by_kind_name_argument(self) -> None:
        """A later source replaces every entry of the same (kind, name, argument)."""
        first = parse_table(
            {
                "api": [
                    {"name": "a", "tier": "beta", "sdk": "<2"},
                    {"name": "a", "tier": "stable", "sdk": ">=2"},
                    {"name": "a", "argument": "x", "tier": "alpha"},
                    {"name": "b", "tier": "alpha"},
                ]
            },
            "first",
        )
        second = parse_table({"api": [{"name": "a", "tier": "alpha"}]}, "second")
        table = Table([("first", first), ("second", second)])
        got = sorted((e.display_name, str(e.tier), e.origin) for e in table.entries)
        assert got == [("a", "alpha", "second"), ("a:x", "alpha", "first"), ("b", "alpha", "first")]
        assert table.sources == [("first", 4), ("second", 1)]
        assert table.names("api") == frozenset({"a", "b"})
        assert table.tops() == frozenset({"a", "b"})


class TestEmbeddedTable:
    def test_validates_with_the_users_validator(self) -> None:
        """Every embedded TOML file passes parse_table (schema, keys, specifiers, duplicates)."""
        entries = load_embedded_toml()
        assert len(entries) > 300
        assert {str(e.kind) for e in entries} == set(KEYS)

    def test_every_entry_has_evidence(self) -> None:
        """No entry without a source."""
        missing = [e.label() for e in load_embedded_toml() if not e.source]
        assert missing == []

    def test_compiled_literal_matches_the_toml(self) -> None:
        """_embedded_table.py is regenerated from the TOML files (tools/compile_table.py)."""
        r = subprocess.run(
            [sys.executable, str(ROOT / "tools" / "compile_table.py"), "--check"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert r.returncode == 0, r.stderr
        compiled = [(e.kind, e.display_name, e.tier, e.versions, e.sdk) for e in load_embedded()]
        parsed = [(e.kind, e.display_name, e.tier, e.versions, e.sdk) for e in load_embedded_toml()]
        assert compiled == parsed

    def test_version_ranges_of_one_item_are_disjoint(self) -> None:
        """Entries for one item never hold for the same release."""
        from packaging.specifiers import SpecifierSet

        from neuron_guard._sdk import sdk_releases

        releases = sdk_releases()
        groups: dict[tuple[str, ...], list[Any]] = {}
        for e in load_embedded_toml():
            groups.setdefault(e.key, []).append(e)
        overlaps = []
        for key, entries in groups.items():
            sdk_ranged = [e for e in entries if e.sdk]
            for rel in releases:
                holding = [
                    e for e in sdk_ranged if SpecifierSet(e.sdk).contains(rel, prereleases=True)
                ]
                if len(holding) > 1:
                    overlaps.append((key, rel))
        assert overlaps == []


class TestUserTableCache:
    def test_an_edited_table_is_read_again(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The validated-table cache never serves a table that changed on disk."""
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        table = tmp_path / "t.toml"
        table.write_text('[[api]]\nname = "a.b"\ntier = "beta"\n')
        assert [(e.name, e.tier) for e in load_file(str(table))] == [("a.b", "beta")]
        assert list((tmp_path / "cache" / "neuron_guard" / "tables").iterdir())
        assert [(e.name, e.tier) for e in load_file(str(table))] == [("a.b", "beta")]
        table.write_text('[[api]]\nname = "a.b"\ntier = "alpha"\nsource = "edited"\n')
        assert [(e.name, e.tier, e.source) for e in load_file(str(table))] == [
            ("a.b", "alpha", "edited")
        ]
        table.write_text('[[api]]\nname = "a.b"\ntierr = "alpha"\n')
        with pytest.raises(ConfigError, match="unknown key 'tierr'"):
            load_file(str(table))

    def test_a_corrupt_cache_is_ignored(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Garbage in the cache directory falls back to parsing the table."""
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
        table = tmp_path / "t.toml"
        table.write_text('[[env]]\nname = "NEURON_X"\ntier = "beta"\n')
        load_file(str(table))
        for f in (tmp_path / "cache" / "neuron_guard" / "tables").iterdir():
            f.write_bytes(b"\x00garbage")
        assert [e.name for e in load_file(str(table))] == ["NEURON_X"]
