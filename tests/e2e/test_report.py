"""Per-process reports in real processes: multiprocessing under fork and spawn, SIGKILL."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import pytest

from neuron_guard._report import merge

WORK = """
import neuron_guard
from neuron_guard import tier

@tier("beta")
def step(x):
    return x * 2
"""

POOL = """
import multiprocessing as mp, sys, warnings
warnings.simplefilter("ignore")
import work

if __name__ == "__main__":
    work.step(0)
    pool = mp.get_context(sys.argv[1]).Pool(2)
    print(sum(pool.map(work.step, range(20), chunksize=1)))
    if sys.argv[2] == "close":
        pool.close()
    else:
        pool.terminate()  # what 'with Pool() as pool:' does on exit
    pool.join()
"""


def items(report_dir: Path) -> dict[str, dict[str, object]]:
    summary = merge([str(report_dir)])
    assert summary.skipped == []
    return {i["name"]: i for i in summary.as_dict()["items"]}


@pytest.mark.skipif(sys.platform == "win32", reason="fork is POSIX only")
class TestMultiprocessing:
    @pytest.mark.parametrize("method", ["fork", "spawn"])
    @pytest.mark.parametrize("ending", ["close", "terminate"])
    def test_pool_counts_merge_exactly(
        self, run_python, tmp_path: Path, method: str, ending: str
    ) -> None:
        """Every use in the parent and in the pool workers is counted once in the merged report."""
        if method == "fork" and "fork" not in __import__("multiprocessing").get_all_start_methods():
            pytest.skip("no fork here")
        (tmp_path / "work.py").write_text(WORK)
        rep = tmp_path / "rep"
        r = run_python(
            POOL,
            env={"NEURON_GUARD": "warn", "NEURON_GUARD_REPORT": str(rep)},
            args=[method, ending],
        )
        assert r.returncode == 0, r.stderr
        item = items(rep)["work.step"]
        if ending == "close":
            assert item["count"] == 21
        else:
            # terminate() kills the workers (SIGTERM, default disposition): their first uses
            # are on disk already, their later counts are not
            assert int(item["processes"]) <= int(item["count"]) <= 21
        assert item["processes"] >= 2  # the parent and at least one worker
        assert item["tier"] == "beta"

    def test_worker_killed_after_first_use_is_still_reported(
        self, run_python, tmp_path: Path
    ) -> None:
        """A process killed with SIGKILL right after its first use still has that use on disk."""
        (tmp_path / "work.py").write_text(WORK)
        rep = tmp_path / "rep"
        code = """
            import multiprocessing as mp, os, signal, warnings
            warnings.simplefilter("ignore")
            import work

            def victim():
                work.step(1)
                os.kill(os.getpid(), signal.SIGKILL)

            if __name__ == "__main__":
                p = mp.get_context("fork").Process(target=victim)
                p.start()
                p.join()
                print(p.exitcode)
        """
        r = run_python(code, env={"NEURON_GUARD": "warn", "NEURON_GUARD_REPORT": str(rep)})
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == str(-signal.SIGKILL)
        item = items(rep)["work.step"]
        assert item["count"] == 1
        assert item["processes"] == 1

    def test_forked_child_counts_only_its_own_uses(self, run_python, tmp_path: Path) -> None:
        """A child forked after the parent's uses reports its own uses, not the inherited ones."""
        (tmp_path / "work.py").write_text(WORK)
        rep = tmp_path / "rep"
        code = """
            import os, warnings
            warnings.simplefilter("ignore")
            import work
            for i in range(5):
                work.step(i)
            pid = os.fork()
            if pid == 0:
                work.step(1)
                os._exit(0)   # like a multiprocessing fork child: no atexit
            os.waitpid(pid, 0)
        """
        r = run_python(code, env={"NEURON_GUARD": "warn", "NEURON_GUARD_REPORT": str(rep)})
        assert r.returncode == 0, r.stderr
        assert items(rep)["work.step"]["count"] == 6
        files = sorted(rep.iterdir())
        assert len(files) == 2


class TestReportFiles:
    def test_one_file_per_process_with_header_first_and_counts(
        self, run_python, tmp_path: Path
    ) -> None:
        """A process writes its header, each first use at once, and its counts at exit."""
        (tmp_path / "work.py").write_text(WORK)
        rep = tmp_path / "rep"
        code = """
            import warnings
            warnings.simplefilter("ignore")
            import work
            for i in range(3):
                work.step(i)
        """
        r = run_python(
            code, env={"NEURON_GUARD": "warn", "NEURON_GUARD_REPORT": str(rep), "RANK": "5"}
        )
        assert r.returncode == 0, r.stderr
        [f] = list(rep.iterdir())
        assert "-rank5-" in f.name
        types = [json.loads(line)["type"] for line in f.read_text().splitlines()]
        assert types == ["process", "first", "counts"]
        assert items(rep)["work.step"]["ranks"] == ["5"]

    def test_no_file_when_nothing_preview_is_used(self, run_python, tmp_path: Path) -> None:
        """A process that uses no preview item leaves no report file."""
        rep = tmp_path / "rep"
        r = run_python(
            "import neuron_guard\n", env={"NEURON_GUARD": "warn", "NEURON_GUARD_REPORT": str(rep)}
        )
        assert r.returncode == 0, r.stderr
        assert list(rep.iterdir()) == []
