"""The flag tokenizer and matcher shared by the run-time carriers and the static scanner."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from neuron_guard._flags import find_flag, match_flags, normalize, split_shell
from neuron_guard._table import parse_table


def flags(**entries: dict[str, object]) -> list:  # type: ignore[type-arg]
    """Flag entries from keyword tables (name -> extra keys)."""
    doc = {
        "flag": [
            {"name": name.replace("_", "-"), "tier": "beta", **extra}
            for name, extra in entries.items()
        ]
    }
    return parse_table(doc, "test")


class TestSplitShell:
    def test_plain_and_quoted(self) -> None:
        """Whitespace splits, quotes group, backslashes escape."""
        text = "--a=1  \"--b c\" 'd e' f\\ g"
        assert split_shell(text) == (["--a=1", "--b c", "d e", "f g"], None)

    def test_double_quote_escapes(self) -> None:
        """Inside double quotes a backslash escapes only the shell's specials."""
        assert split_shell(r'"a\"b\n"') == (['a"b\\n'], None)

    def test_single_quotes_are_literal(self) -> None:
        r"""Inside single quotes a backslash is a plain character."""
        assert split_shell(r"'a\b'") == (["a\\b"], None)

    def test_quotes_join_adjacent_text(self) -> None:
        """``--f="a b"`` is one token, as in a shell."""
        assert split_shell('--f="a b" x') == (["--f=a b", "x"], None)

    def test_empty(self) -> None:
        """An empty or blank string has no tokens and no error."""
        assert split_shell("") == ([], None)
        assert split_shell("   ") == ([], None)
        assert split_shell("''") == ([""], None)

    def test_unbalanced_quote_is_best_effort(self) -> None:
        """An unclosed quote is noted; the text after it is still read."""
        tokens, error = split_shell('--a "--b c')
        assert error == "unbalanced double quote"
        assert tokens == ["--a", "--b", "c"]
        tokens, error = split_shell("--x='--y")
        assert error == "unbalanced single quote"
        assert tokens == ["--x=--y"]

    def test_trailing_backslash(self) -> None:
        """A lone trailing backslash is noted and kept."""
        assert split_shell("--a x\\") == (["--a", "x\\"], "trailing backslash")

    @given(
        st.lists(
            st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8), max_size=6
        )
    )
    def test_agrees_with_shlex_on_quoted_lines(self, words: list[str]) -> None:
        """Any line built by ``shlex.join`` splits back into its words."""
        assert split_shell(shlex.join(words)) == (words, None)


class TestFindFlag:
    @pytest.mark.parametrize(
        ("tokens", "expected"),
        [
            (["--enable-foo"], (True, None)),
            (["--enable_foo"], (True, None)),
            (["--enable-foobar"], (False, None)),
            (["--enable-fo"], (False, None)),
            (["--enable-foo=fast"], (True, "fast")),
            (["--enable-foo", "fast"], (True, "fast")),
            (["--enable-foo", "--other"], (True, None)),
            (["--enable-foo=a", "--enable-foo", "b"], (True, "b")),
            (["--enable-foo", "b", "--enable-foo=a"], (True, "a")),
            (["--enable-foo=a", "--enable-foo"], (True, None)),
            (["x", "enable-foo"], (False, None)),
        ],
    )
    def test_forms(self, tokens: list[str], expected: tuple[bool, str | None]) -> None:
        """Exact names, ``_``/``-``, ``=v`` and ``v`` values, the rightmost wins."""
        assert find_flag(tokens, ["--enable-foo"]) == expected

    def test_short_alias_takes_glued_value(self) -> None:
        """A one-letter short spelling takes a glued value: ``-O1`` is ``-O 1``."""
        assert find_flag(["-O1"], ["--optlevel", "-O"]) == (True, "1")
        assert find_flag(["-O", "2"], ["--optlevel", "-O"]) == (True, "2")
        assert find_flag(["--optlevel=3", "-O1"], ["--optlevel", "-O"]) == (True, "1")
        assert find_flag(["-o1"], ["-O"]) == (False, None)

    def test_longer_short_alias_is_exact(self) -> None:
        """``-lnc`` is matched exactly, not as ``-l`` with a glued value."""
        assert find_flag(["-lnc", "2"], ["--logical-nc-config", "-lnc"]) == (True, "2")
        assert find_flag(["-lncx"], ["-lnc"]) == (False, None)

    def test_flag_glued_to_previous_flag(self) -> None:
        """A missing space when appending (``--a--b=v``) still shows ``--b``."""
        assert find_flag(["--retry_failed_compilation--cache_dir=s3://b"], ["--cache-dir"]) == (
            True,
            "s3://b",
        )
        assert find_flag(
            ["--retry_failed_compilation--cache_dir=s3://b"], ["--retry-failed-compilation"]
        ) == (
            True,
            None,
        )
        assert find_flag(["--a---b"], ["--b", "-b"]) == (False, None)

    def test_normalize(self) -> None:
        """``_`` and ``-`` are interchangeable."""
        assert normalize("--enable_foo-bar") == "--enable-foo-bar"


class TestMatchFlags:
    def test_aliases_and_values(self) -> None:
        """Entries match by name or alias; ``values`` restrict to those values."""
        table = flags(
            __enable_foo={"aliases": ["-ef"]},
            __model_type={"values": ["transformer-inference"]},
        )
        tokens, _ = split_shell("-ef --model_type transformer-inference")
        got = [(e.name, v) for e, v in match_flags(tokens, table)]
        assert got == [("--enable-foo", None), ("--model-type", "transformer-inference")]

    def test_values_follow_the_rightmost(self) -> None:
        """A later occurrence with another value un-matches a ``values`` entry."""
        table = flags(__model_type={"values": ["transformer-inference"]})
        tokens, _ = split_shell("--model-type=transformer-inference --model-type=transformer")
        assert match_flags(tokens, table) == []

    def test_no_tokens(self) -> None:
        """Nothing to match in an empty list."""
        assert match_flags([], flags(__x={})) == []
