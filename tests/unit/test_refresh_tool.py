"""tools/refresh_table.py on a tiny fake documentation tree."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "refresh_table.py"

PAGE = """\
Foo library
===========

The ``foo.bar`` API is in beta and may change.

Plain text about ``foo.qux`` with nothing special.

``foo.baz`` (Experimental) computes things.
"""

TABLE = """\
schema = 1

[[api]]
name = "foo.bar"
tier = "beta"
source = "frameworks/foo.rst:4"

[[api]]
name = "foo.gone"
tier = "beta"
source = "frameworks/removed-page.rst:5"

[[api]]
name = "foo.other"
tier = "beta"
source = "frameworks/foo.rst:6"

[[env]]
name = "FOO_PAST_END"
tier = "alpha"
source = "frameworks/foo.rst:99"
"""


def make_tree(tmp_path: Path) -> tuple[Path, Path]:
    docs = tmp_path / "docs"
    (docs / "frameworks").mkdir(parents=True)
    (docs / "frameworks" / "foo.rst").write_text(PAGE, encoding="utf-8")
    table = tmp_path / "table"
    table.mkdir()
    (table / "foo.toml").write_text(TABLE, encoding="utf-8")
    return docs, table


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), *map(str, args)], capture_output=True, text=True, check=False
    )


def report(docs: Path, table: Path, *extra: str) -> dict[str, Any]:
    done = run(docs, "--table", table, "--json", *extra)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


class TestNewLabels:
    """Labelled documentation lines the table does not know."""

    def test_new_labelled_item_reported(self, tmp_path: Path) -> None:
        """An Experimental API absent from the table is listed with its path:line."""
        docs, table = make_tree(tmp_path)
        new = report(docs, table)["new"]
        assert [(item["path"], item["line"]) for item in new] == [("frameworks/foo.rst", 8)]
        assert new[0]["labels"] == ["experimental"]
        assert new[0]["names"] == ["foo.baz"]

    def test_cited_line_not_reported_as_new(self, tmp_path: Path) -> None:
        """A labelled line the table cites is not new, once it is in the table."""
        docs, table = make_tree(tmp_path)
        assert report(docs, table)["labelled"] == 2
        with (table / "foo.toml").open("a", encoding="utf-8") as handle:
            handle.write('\n[[api]]\nname = "foo.baz"\ntier = "alpha"\n')
            handle.write('source = "frameworks/foo.rst:8"\n')
        assert report(docs, table)["new"] == []


class TestStaleSources:
    """Table sources that no longer carry their label."""

    def test_stale_sources_reported(self, tmp_path: Path) -> None:
        """A gone file, a line past the end and an unlabelled line are stale; labelled is not."""
        docs, table = make_tree(tmp_path)
        stale = {item["name"]: item["reason"] for item in report(docs, table)["stale"]}
        assert set(stale) == {"foo.gone", "foo.other", "FOO_PAST_END"}
        assert stale["foo.gone"] == "file gone"
        assert stale["FOO_PAST_END"].startswith("line past end of file")
        assert "no label" in stale["foo.other"]

    def test_text_output_and_check_status(self, tmp_path: Path) -> None:
        """The text report names both sections; --check exits 1 when something is found."""
        docs, table = make_tree(tmp_path)
        done = run(docs, "--table", table)
        assert done.returncode == 0
        assert "frameworks/foo.rst:8  [experimental] names: foo.baz" in done.stdout
        assert "foo.toml: api foo.gone -> frameworks/removed-page.rst:5: file gone" in done.stdout
        assert run(docs, "--table", table, "--check").returncode == 1

    @pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
    def test_since_finds_moved_line(self, tmp_path: Path) -> None:
        """With --since, a cited line pushed down by an edit is reported with its new place."""
        docs, table = make_tree(tmp_path)
        (table / "foo.toml").write_text(
            textwrap.dedent(
                """\
                schema = 1

                [[api]]
                name = "foo.bar"
                tier = "beta"
                source = "frameworks/foo.rst:4"
                """
            ),
            encoding="utf-8",
        )

        def git(*args: str) -> None:
            subprocess.run(
                ["git", "-C", str(docs), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                check=True,
                capture_output=True,
            )

        git("init", "-q")
        git("add", ".")
        git("commit", "-q", "-m", "base")
        page = docs / "frameworks" / "foo.rst"
        lines = page.read_text(encoding="utf-8").splitlines(keepends=True)
        lines[2:2] = ["Intro paragraph.\n", "\n", "Another one.\n"]
        page.write_text("".join(lines), encoding="utf-8")
        result = report(docs, table, "--since", "HEAD")
        assert [item["moved_to"] for item in result["stale"]] == ["frameworks/foo.rst:7"]
