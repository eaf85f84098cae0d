"""Fuzzing the parsers: every input gives a result or a documented error, never another one."""

from __future__ import annotations

import datetime
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from neuron_guard import ConfigError
from neuron_guard._config import Pattern, parse_patterns
from neuron_guard._flags import find_flag, split_shell
from neuron_guard._table import KEYS, Entry, load_file, parse_table
from neuron_guard._types import Tier

# -- strategies ------------------------------------------------------------------------

#: Values TOML can produce (tomllib gives exactly these types).
toml_scalars = st.one_of(
    st.text(max_size=20),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True),
    st.booleans(),
    st.datetimes(),
    st.dates(),
    st.times(),
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)

KINDS = list(KEYS)
ALL_KEYS = sorted({k for keys in KEYS.values() for k in keys})

tiers = st.sampled_from(
    ["alpha", "beta", "stable", "Beta", " beta", "BETA ", "gamma", "", "stabel"]
)
names = st.one_of(
    st.sampled_from(["torch_neuronx.trace", "NEURON_FOO", "--enable-foo", "pkg", "a.b.*", ""]),
    st.text(max_size=15),
)
specs = st.one_of(
    st.sampled_from(["<2.25", ">=1.0,<2", "==2.*", "~=1.4", "", "<", "!!", "===x", ">=1.0;"]),
    st.text(max_size=10),
)
versions = st.one_of(
    st.sampled_from(["2.24", "1!2.0", "1.0.post1", "x", "", "2.24.0rc1"]), st.text(max_size=8)
)
str_lists = st.lists(
    st.one_of(
        st.sampled_from(
            ["env:NEURON_CC_FLAGS", "api:a.b:c", "api:a.b", "cli:neuronx-cc", "flag:--x", "x:"]
        ),
        st.text(max_size=10),
    ),
    max_size=4,
)


def _value_for(key: str) -> st.SearchStrategy[Any]:
    typ = {k: t for keys in KEYS.values() for k, t in keys.items()}[key]
    by_type: dict[str, st.SearchStrategy[Any]] = {
        "str": names,
        "module": st.sampled_from(["a.b", "a-b", "1a", "ok", ""]),
        "tier": tiers,
        "spec": specs,
        "version": versions,
        "workload": st.sampled_from(["training", "inference", "Training", ""]),
        "strlist": str_lists,
        "triggers": str_lists,
        "carriers": str_lists,
    }
    # mostly well-typed, sometimes anything TOML can hold
    return st.one_of(by_type[typ], by_type[typ], toml_values)


@st.composite
def entries(draw: st.DrawFn) -> dict[str, Any]:
    keys = draw(st.lists(st.sampled_from([*ALL_KEYS, "tierr", "nmae"]), unique=True, max_size=6))
    raw: dict[str, Any] = {}
    if draw(st.booleans()):
        raw["name"] = draw(names)
    if draw(st.booleans()) or draw(st.booleans()):
        raw["tier"] = draw(tiers)
    for key in keys:
        raw[key] = draw(_value_for(key)) if key in ALL_KEYS else draw(toml_values)
    return raw


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for kind in draw(
        st.lists(st.sampled_from([*KINDS, "apis", "schema"]), unique=True, max_size=4)
    ):
        if kind == "schema":
            doc["schema"] = draw(st.one_of(st.integers(-1, 3), toml_values))
        elif kind in KEYS and draw(st.integers(0, 9)):
            doc[kind] = draw(st.lists(entries(), max_size=4))
        else:
            doc[kind] = draw(toml_values)
    return doc


def outcome(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, str | None]:
    """``(result, None)``, or ``(None, message)`` when ``fn`` raised ConfigError (only)."""
    try:
        return fn(*args, **kwargs), None
    except ConfigError as exc:
        return None, str(exc)


def _check_entries(result: list[Entry]) -> None:
    for e in result:
        assert isinstance(e, Entry)
        assert isinstance(e.name, str)
        assert e.name.strip()
        assert e.tier in (Tier.ALPHA, Tier.BETA, Tier.STABLE)
        assert isinstance(e.key, tuple)


# -- the table parser ---------------------------------------------------------------------


class TestTableParser:
    """parse_table/load_file: a valid table or a ConfigError, never another exception."""

    @given(documents())
    @example({"api": [{"name": "a.b", "tier": " beta"}]})
    @example({"api": [{"name": "a.b", "tier": "BETA "}]})
    @example({"api": [{"name": "a.b", "tier": "beta", "versions": "<2", "package": "x"}]})
    @example({"schema": True})
    @example({"schema": 2.0})
    def test_documents(self, doc: dict[str, Any]) -> None:
        """Random TOML-shaped documents either parse into entries or raise ConfigError."""
        result, error = outcome(parse_table, doc, "fuzz.toml")
        if error is not None:
            assert "fuzz.toml" in error
            return
        _check_entries(result)

    @given(st.sampled_from(KINDS), entries())
    def test_single_entries(self, kind: str, raw: dict[str, Any]) -> None:
        """One random entry of any kind: an Entry or a ConfigError naming the entry."""
        result, error = outcome(parse_table, {kind: [raw]}, "one.toml")
        if error is not None:
            assert "one.toml" in error
            return
        assert len(result) == 1
        _check_entries(result)

    @given(st.text(alphabet=string.printable + "é\x00\ud7ff", max_size=200))
    @example('[[api]]\nname = "a"\ntier = "beta"\n')
    @example("[[api]\n")
    @example('[[api]]\nname = "a"\ntier = " stable "\n')
    def test_toml_text(self, tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
        """Random text in a table file: entries or a ConfigError naming the file."""
        path = tmp_path_factory.mktemp("t") / "table.toml"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        result, error = outcome(load_file, str(path))
        if error is not None:
            assert str(path) in error
            return
        _check_entries(result)

    @given(st.binary(max_size=120))
    def test_bytes(self, tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
        """Arbitrary bytes (invalid UTF-8 included) never escape as anything but ConfigError."""
        path = tmp_path_factory.mktemp("b") / "table.toml"
        path.write_bytes(data)
        try:
            load_file(str(path))
        except ConfigError:
            pass

    def test_padded_tier_is_accepted_exactly_once(self) -> None:
        """A tier with spaces around it validates and then builds its Entry (regression)."""
        (entry,) = parse_table({"api": [{"name": "a.b", "tier": " Beta "}]}, "pad.toml")
        assert entry.tier is Tier.BETA


# -- allow patterns -------------------------------------------------------------------------

pattern_text = st.one_of(
    st.text(max_size=30),
    st.builds(
        lambda p, g: f"{p}:{g}",
        st.sampled_from(
            ["api", "env", "flag", "package", "feature", "model", "API", "bogus", "", "-x", "a.b"]
        ),
        st.text(max_size=10),
    ),
)


class TestAllowPatterns:
    """parse_patterns: patterns or a ConfigError; a parsed pattern can always be matched."""

    @given(st.one_of(pattern_text, st.lists(pattern_text, max_size=5)))
    @example("api:")
    @example(" , ,")
    @example("beta,ALPHA")
    @example("flag:--x_y*")
    def test_parse(self, value: str | list[str]) -> None:
        """Any string or list of strings: a tuple of Patterns or a ConfigError."""
        pats, error = outcome(parse_patterns, value, origin="fuzz")
        if error is not None:
            assert "fuzz" in error
            return
        for p in pats:
            assert isinstance(p, Pattern)
            for kind in ("api", "env", "flag", "package"):
                for tier in ("alpha", "beta", "stable", None):
                    assert p.matches(kind, "torch_neuronx.trace", tier) in (True, False)

    @given(
        st.lists(
            st.one_of(st.integers(), st.none(), st.binary(max_size=4), pattern_text), max_size=4
        )
    )
    def test_non_strings(self, value: list[Any]) -> None:
        """A non-string item in a list is a ConfigError, not a TypeError."""
        try:
            pats = parse_patterns(value, origin="fuzz")
        except ConfigError:
            return
        assert all(isinstance(p, Pattern) for p in pats)


# -- the flag tokenizer ------------------------------------------------------------------------

shellish = st.lists(
    st.sampled_from([*" \t\n'\"\\=-_abcxyzO1$`é", "--", "-O", "--enable-foo", "--enable_foo"]),
    max_size=30,
).map("".join)


class TestFlagTokenizer:
    """split_shell/find_flag never raise, and a clean line round-trips through quoting."""

    @given(st.one_of(shellish, st.text(max_size=60)))
    @example("'unbalanced")
    @example('"a\\')
    @example("\\")
    @example("--a='b c' --a=d")
    @example("--no_cache--cache_dir=x")
    def test_split(self, text: str) -> None:
        """Tokens are strings; the error, if any, is a short note (never an exception)."""
        tokens, error = split_shell(text)
        assert all(isinstance(t, str) for t in tokens)
        assert error is None or isinstance(error, str)

    @given(st.lists(st.text(alphabet="abc-_=O1 ", max_size=8), min_size=1, max_size=6))
    def test_quoted_round_trip(self, words: list[str]) -> None:
        """Words joined with shlex.quote come back unchanged, with no error."""
        import shlex

        tokens, error = split_shell(" ".join(shlex.quote(w) for w in words))
        assert error is None
        assert tokens == words

    @given(
        st.lists(
            st.one_of(
                shellish, st.sampled_from(["--enable-foo", "--enable_foo=1", "-O1", "-", "--"])
            ),
            max_size=8,
        ),
        st.lists(st.sampled_from(["--enable-foo", "-O", "--x", "-", "--", "-ab", ""]), max_size=3),
    )
    def test_find(self, tokens: list[str], spellings: list[str]) -> None:
        """find_flag gives (bool, str | None) for any tokens and spellings."""
        present, value = find_flag(tokens, spellings)
        assert isinstance(present, bool)
        assert value is None or isinstance(value, str)
        if not present:
            assert value is None

    @given(shellish)
    def test_no_prefix_match(self, text: str) -> None:
        """--enable-foo is never found in a line whose only candidate is --enable-foobar."""
        tokens, _ = split_shell(text.replace("enable", "") + " --enable-foobar=1 --enable_foobar")
        assert find_flag(tokens, ["--enable-foo"]) == (False, None)


# -- the report merger (when _report lands) -----------------------------------------------------


def _merger() -> Any:
    from neuron_guard import _report

    fn = getattr(_report, "merge", None) or getattr(_report, "merge_paths", None)
    if fn is None:
        pytest.skip("neuron_guard._report has no merge function yet")
    return fn


json_values = st.one_of(
    st.text(max_size=8),
    st.integers(-5, 10**20),
    st.none(),
    st.booleans(),
    st.floats(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
item_records = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.one_of(st.sampled_from(["api", "env"]), json_values),
        "name": st.one_of(st.sampled_from(["a.b", "NEURON_X"]), json_values),
        "tier": st.one_of(st.sampled_from(["beta", "alpha"]), json_values),
        "action": st.one_of(st.sampled_from(["warn", "raise", "allow"]), json_values),
        "count": json_values,
        "file": json_values,
        "line": json_values,
        "pid": json_values,
    },
)
records = st.one_of(
    item_records.map(lambda d: {**d, "type": "first"}),
    st.lists(item_records, max_size=3).map(lambda items: {"type": "counts", "items": items}),
    st.fixed_dictionaries(
        {"type": st.just("process")},
        optional={"host": json_values, "pid": json_values, "rank": json_values},
    ),
    st.dictionaries(st.sampled_from(["type", "items", "pid"]), json_values, max_size=3),
)


def _dump(rec: Any) -> str:
    import json

    return json.dumps(rec)  # allows Infinity and NaN, as a corrupt writer might


jsonl_lines = st.one_of(st.text(max_size=40), records.map(_dump), st.just("1e400"))


class TestReportMerger:
    """Random, corrupt and truncated JSON Lines never crash the merger."""

    @given(st.lists(jsonl_lines, max_size=12), st.integers(0, 400))
    @example(
        [
            '{"type": "counts", "items": [{"kind": "api", "name": "x", "action": "warn", "count": Infinity}]}'
        ],
        0,
    )
    @example(['{"type": "first", "kind": "api", "name": "x", "action": "warn", "pid": 1e400}'], 0)
    @example(['{"type": "process", "host": "h", "pid": -Infinity, "rank": [1]}', "{}"], 0)
    def test_merge(
        self, tmp_path_factory: pytest.TempPathFactory, lines: list[str], cut: int
    ) -> None:
        """A file of random lines, cut anywhere: merging returns (it may skip lines)."""
        merge = _merger()
        d = tmp_path_factory.mktemp("rep")
        text = "\n".join(lines)
        (d / "host-1.jsonl").write_text(text[: cut or None], encoding="utf-8")
        (d / "host-2.jsonl").write_bytes(b"\xff\xfe{\n")
        summary = merge([str(d)])
        import io

        from neuron_guard import _report

        _report.write_text(summary, io.StringIO())
        for name in ("write_json", "to_json", "as_json"):
            render = getattr(_report, name, None)
            if render is not None:
                out = io.StringIO()
                render(summary, out)


def test_dates_are_not_names() -> None:
    """A TOML date where a name belongs is a ConfigError naming the key."""
    with pytest.raises(ConfigError, match="'name'"):
        parse_table({"api": [{"name": datetime.date(2024, 1, 1), "tier": "beta"}]}, "d.toml")


def test_path_sanity(tmp_path: Path) -> None:
    """A missing table file is a ConfigError naming the path."""
    with pytest.raises(ConfigError, match="cannot read"):
        load_file(str(tmp_path / "missing.toml"))
