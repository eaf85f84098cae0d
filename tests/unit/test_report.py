"""Report files: names, merging, corrupt lines; the CLI 'report' verb in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neuron_guard._cli import main
from neuron_guard._report import merge, report_file_name


def write(path: Path, *records: object, tail: str = "") -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)


def proc(pid: int, rank: str | None = None, host: str = "h1") -> dict[str, object]:
    return {"type": "process", "host": host, "pid": pid, "rank": rank}


def first(name: str, file: str, line: int, pid: int, action: str = "warn") -> dict[str, object]:
    return {"type": "first", "kind": "api", "name": name, "tier": "beta", "action": action,
            "file": file, "line": line, "pid": pid}  # fmt: skip


def counts(pid: int, **by_name: int) -> dict[str, object]:
    items = [{"kind": "api", "name": n, "tier": "beta", "action": "warn", "count": c,
              "file": "a.py", "line": 1} for n, c in by_name.items()]  # fmt: skip
    return {"type": "counts", "pid": pid, "items": items}


class TestFileName:
    def test_carries_host_pid_and_ranks(self) -> None:
        """The name has the pid, RANK, LOCAL_RANK and the xdist worker when set."""
        name = report_file_name(
            {"RANK": "3", "LOCAL_RANK": "1", "PYTEST_XDIST_WORKER": "gw2"}, pid=42
        )
        assert name.startswith("neuron-guard-")
        assert name.endswith(".jsonl")
        assert "-42-rank3-local1-gw2-" in name

    def test_two_names_never_collide(self) -> None:
        """Two processes with the same pid (reused) still get different files."""
        assert report_file_name({}, pid=7) != report_file_name({}, pid=7)


class TestMerge:
    def test_counts_processes_ranks_and_first_sites(self, tmp_path: Path) -> None:
        """Per item: total count over processes, process count, ranks, distinct first call sites."""
        write(
            tmp_path / "a.jsonl", proc(1, "0"), first("m.f", "a.py", 3, 1), counts(1, **{"m.f": 5})
        )
        write(
            tmp_path / "b.jsonl", proc(2, "1"), first("m.f", "b.py", 9, 2), counts(2, **{"m.f": 2})
        )
        summary = merge([str(tmp_path)])
        [item] = summary.as_dict()["items"]
        assert item["count"] == 7
        assert item["processes"] == 2
        assert item["ranks"] == ["0", "1"]
        assert item["first_seen"] == ["a.py:3", "b.py:9"]
        assert {"kind", "name", "tier", "count", "processes", "first_seen"} <= item.keys()

    def test_first_use_without_counts_counts_once(self, tmp_path: Path) -> None:
        """A process killed before its counts were written still reports its first use."""
        write(tmp_path / "a.jsonl", proc(1), first("m.f", "a.py", 3, 1))
        [item] = merge([str(tmp_path / "a.jsonl")]).as_dict()["items"]
        assert (item["count"], item["processes"]) == (1, 1)

    def test_last_counts_record_wins(self, tmp_path: Path) -> None:
        """Counts are cumulative: a second flush replaces the first, it does not add."""
        write(tmp_path / "a.jsonl", proc(1), first("m.f", "a.py", 3, 1),
              counts(1, **{"m.f": 2}), counts(1, **{"m.f": 4}))  # fmt: skip
        [item] = merge([str(tmp_path)]).as_dict()["items"]
        assert item["count"] == 4

    def test_truncated_and_corrupt_lines_are_reported_and_skipped(self, tmp_path: Path) -> None:
        """A half-written last line and a garbage line are listed in 'skipped'; the rest merges."""
        write(tmp_path / "a.jsonl", proc(1), first("m.f", "a.py", 3, 1), tail='{"type": "cou')
        (tmp_path / "b.jsonl").write_text('not json\n{"type": "first", "kind": "api"}\n')
        summary = merge([str(tmp_path)])
        skipped = summary.as_dict()["skipped"]
        assert [(Path(s["file"]).name, s["line"]) for s in skipped] == [
            ("a.jsonl", 3),
            ("b.jsonl", 1),
            ("b.jsonl", 2),
        ]
        assert skipped[0]["error"] == "truncated line"
        assert summary.as_dict()["items"][0]["count"] == 1

    def test_missing_path_is_a_config_error(self, tmp_path: Path) -> None:
        """Merging a path that does not exist is a configuration error."""
        from neuron_guard import ConfigError

        with pytest.raises(ConfigError, match="does not exist"):
            merge([str(tmp_path / "nope")])


class TestReportVerb:
    def test_json_output(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """'report --json' prints an object whose items have the documented keys."""
        write(tmp_path / "a.jsonl", proc(1), first("m.f", "a.py", 3, 1), counts(1, **{"m.f": 3}))
        assert main(["report", "--json", str(tmp_path)]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["items"][0]["name"] == "m.f"
        assert doc["items"][0]["count"] == 3

    def test_text_output_and_skipped_lines_on_stderr(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Text output names each item; a corrupt line is one stderr line."""
        write(tmp_path / "a.jsonl", proc(1), first("m.f", "a.py", 3, 1), tail="{")
        assert main(["report", str(tmp_path)]) == 0
        out, err = capsys.readouterr()
        assert "beta api m.f" in out
        assert "first seen at a.py:3" in out
        assert "skipped" in err
        assert "truncated line" in err

    def test_missing_path_exits_2(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A missing report path is a usage error: exit 2, one line on stderr."""
        assert main(["report", str(tmp_path / "nope")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert "does not exist" in err
