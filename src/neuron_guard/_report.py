"""Per-process JSON Lines reports (``NEURON_GUARD_REPORT=DIR``) and their merge.

Writing. Each process that uses a preview or deprecated item gets one file in the
report directory, named so that no two processes collide: host, pid, ``RANK``,
``LOCAL_RANK`` and ``PYTEST_XDIST_WORKER`` when set, and a random suffix. Lines:

* ``{"type": "process", ...}``: who wrote the file (host, pid, ranks, argv), once;
* ``{"type": "first", ...}``: the first use of an item with one action, written and
  flushed at once, so a process killed by a signal or ending in ``os._exit`` (the fork
  children of :mod:`multiprocessing` do) loses no item, only later counts;
* ``{"type": "counts", "items": [...]}``: cumulative counts, written at normal exit
  (:mod:`atexit`) and at :mod:`multiprocessing` worker exit. The last one of a file
  wins. A worker killed by ``Pool.terminate()`` (which ``with Pool() as p:`` calls)
  keeps its first uses but not its later counts: catching SIGTERM in Python would let a
  worker blocked in a lock miss the signal and hang the pool (the handler runs only when
  the blocking call returns), so the default disposition is left alone.

A forked child starts a file of its own and counts only its own uses.

Merging. :func:`merge` reads files and directories of such files into one
:class:`Summary` (per item: total count, processes, ranks, first call sites); a truncated
or corrupt line is recorded in ``Summary.skipped`` and the merge goes on.
"""

from __future__ import annotations

import _thread
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import IO, Any, Callable

    from ._config import Settings
    from ._state import Item

__all__ = ["Summary", "install", "merge", "report_file_name"]

_RANK_VARS = (("RANK", "rank"), ("LOCAL_RANK", "local"), ("PYTEST_XDIST_WORKER", ""))


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def report_file_name(environ: dict[str, str] | None = None, pid: int | None = None) -> str:
    """The report file name for this process: host, pid, ranks, a random suffix."""
    import socket

    env = os.environ if environ is None else environ
    parts = ["neuron-guard", _safe(socket.gethostname() or "host"), str(pid or os.getpid())]
    for var, prefix in _RANK_VARS:
        value = env.get(var)
        if value:
            parts.append(prefix + _safe(value))
    parts.append(os.urandom(3).hex())
    return "-".join(parts) + ".jsonl"


class _Writer:
    """This process's report file: opened at the first line, one line per write."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.lock = _thread.allocate_lock()
        self.stream: IO[str] | None = None
        self.path: str | None = None
        self.active = True
        self.flushed_counts = False
        self.mp_registered = False

    # -- lines ----------------------------------------------------------------

    def _header(self) -> dict[str, Any]:
        import socket

        from ._state import runtime
        from ._version import __version__

        env = os.environ
        argv = getattr(sys, "orig_argv", None) or sys.argv
        return {
            "type": "process",
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "rank": env.get("RANK"),
            "local_rank": env.get("LOCAL_RANK"),
            "world_size": env.get("WORLD_SIZE"),
            "xdist_worker": env.get("PYTEST_XDIST_WORKER"),
            "argv": [str(a) for a in argv][:20],
            "mode": str(runtime.settings.mode),
            "neuron_guard": __version__,
        }

    def write(self, record: dict[str, Any]) -> None:
        """Append one record and flush it."""
        import json

        with self.lock:
            if not self.active:
                return
            if self.stream is None:
                os.makedirs(self.directory, exist_ok=True)
                self.path = os.path.join(self.directory, report_file_name())
                self.stream = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
                self.stream.write(json.dumps(self._header()) + "\n")
            self.stream.write(json.dumps(record) + "\n")
            self.stream.flush()

    def on_first_use(self, it: Item, action: str, file: str | None, line: int | None) -> None:
        info = it.info
        self.write(
            {
                "type": "first",
                "kind": str(info.kind),
                "name": info.name,
                "tier": str(info.tier),
                "action": action,
                "file": file,
                "line": line,
                "pid": os.getpid(),
                "trigger": info.trigger,
            }
        )

    def flush_counts(self) -> None:
        """Write this process's cumulative counts (nothing when it used nothing)."""
        from ._state import runtime

        if not self.active:
            return
        try:
            events = runtime.events()
        except Exception:  # never fail an exiting process
            return
        if not events and self.stream is None:
            return
        items = [
            {
                "kind": e.kind,
                "name": e.name,
                "tier": e.tier,
                "action": e.action,
                "count": e.count,
                "file": e.file,
                "line": e.line,
                "trigger": e.trigger,
            }
            for e in events
        ]
        try:
            self.write({"type": "counts", "pid": os.getpid(), "items": items})
            self.flushed_counts = True
        except Exception as exc:  # at exit: one line, no traceback
            _say(f"cannot write the report: {exc}")

    # -- process life cycle -------------------------------------------------------

    def after_fork_in_child(self) -> None:
        """A forked child: a file of its own, counting only its own uses."""
        if not self.active:
            return
        self.lock = _thread.allocate_lock()
        self.stream = None  # the parent's stream object is left alone (not closed twice)
        self.path = None
        self.flushed_counts = False
        self.mp_registered = False
        _forget_inherited_uses()
        mp_util = sys.modules.get("multiprocessing.util")
        if mp_util is not None:
            # runs after multiprocessing clears the finalizers inherited from the parent
            mp_util.register_after_fork(self, _Writer._in_mp_worker)

    def _in_mp_worker(self) -> None:
        """In a multiprocessing child: flush at worker exit (which ends in ``os._exit``)."""
        if self.mp_registered:
            return
        self.mp_registered = True
        mp_util = sys.modules.get("multiprocessing.util")
        if mp_util is not None:
            mp_util.Finalize(None, self.flush_counts, exitpriority=100)

    def close(self) -> None:
        with self.lock:
            self.active = False
            if self.stream is not None:
                try:
                    self.stream.close()
                except OSError:
                    pass
                self.stream = None


def _say(msg: str) -> None:
    try:
        sys.stderr.write(f"neuron_guard: {msg}\n")
    except Exception:
        pass


def _forget_inherited_uses() -> None:
    """Drop the counts a forked child inherited, keeping warn-once (not warned again)."""
    from ._state import runtime

    for it in runtime.items.values():
        for c in it.cells:
            c.cell_contents = None
        it.counts.clear()
        it.first.clear()
        it.order = 0


def install(settings: Settings) -> Callable[[], None] | None:
    """Start writing this process's report to ``settings.report``; returns the undo function."""
    import atexit

    from ._activate import _is_own_cli
    from ._state import runtime

    assert settings.report is not None
    if _is_own_cli():  # the neuron-guard command does not report on itself
        return None
    directory = os.path.abspath(settings.report)
    os.makedirs(directory, exist_ok=True)  # a bad directory shows at start-up, not at exit
    writer = _Writer(directory)
    runtime.listeners.append(writer.on_first_use)
    atexit.register(writer.flush_counts)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=writer.after_fork_in_child)

    def undo() -> None:
        if writer.on_first_use in runtime.listeners:
            runtime.listeners.remove(writer.on_first_use)
        atexit.unregister(writer.flush_counts)
        writer.close()

    return undo


# -- merging ------------------------------------------------------------------------


class _ItemSummary:
    __slots__ = ("actions", "count", "first_seen", "kind", "name", "processes", "ranks", "tier")

    def __init__(self, kind: str, name: str, tier: str | None) -> None:
        self.kind = kind
        self.name = name
        self.tier = tier
        self.count = 0
        self.actions: dict[str, int] = {}
        self.processes: set[tuple[str, int, str]] = set()
        self.ranks: set[str] = set()
        self.first_seen: list[str] = []

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "tier": self.tier,
            "count": self.count,
            "processes": len(self.processes),
            "first_seen": list(self.first_seen),
            "ranks": sorted(self.ranks, key=_rank_key),
            "actions": dict(sorted(self.actions.items())),
        }


def _rank_key(r: str) -> tuple[int, str]:
    return (int(r), "") if r.isdigit() else (1 << 30, r)


class Summary:
    """The merge of many process reports."""

    def __init__(self) -> None:
        self.files = 0
        self.processes: set[tuple[str, int, str]] = set()
        self.items: dict[tuple[str, str], _ItemSummary] = {}
        self.skipped: list[tuple[str, int, str]] = []  # (file, line number, why)

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "processes": len(self.processes),
            "items": [it.as_dict() for it in self.sorted_items()],
            "skipped": [{"file": f, "line": n, "error": why} for f, n, why in self.skipped],
        }

    def sorted_items(self) -> list[_ItemSummary]:
        order = {"alpha": 0, "beta": 1, "stable": 2}
        return sorted(
            self.items.values(),
            key=lambda i: (order.get(i.tier or "", 3), i.kind, i.name),
        )


class _Process:
    """What one report file says about its process."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.host = ""
        self.pid = 0
        self.rank: str | None = None
        self.firsts: list[dict[str, Any]] = []
        self.counts: list[dict[str, Any]] | None = None


def _report_files(paths: Iterable[str]) -> list[str]:
    out: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                out.extend(os.path.join(root, f) for f in sorted(files) if f.endswith(".jsonl"))
        elif os.path.exists(p):
            out.append(p)
        else:
            from ._errors import ConfigError

            msg = f"report path {p!r} does not exist"
            raise ConfigError(msg, source=p)
    return out


def _read(path: str, summary: Summary) -> _Process:
    import json

    proc = _Process(path)
    try:
        fh = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115
    except OSError as exc:
        summary.skipped.append((path, 0, f"cannot read: {exc.strerror or exc}"))
        return proc
    with fh:
        for n, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
                if not isinstance(rec, dict):
                    raise ValueError("not a JSON object")
                typ = rec.get("type")
                if typ == "process":
                    proc.host = str(rec.get("host") or "")
                    proc.pid = int(rec.get("pid") or 0)
                    rank = rec.get("rank")
                    proc.rank = None if rank is None else str(rank)
                elif typ == "first":
                    _check_item(rec)
                    proc.pid = proc.pid or int(rec.get("pid") or 0)
                    proc.firsts.append(rec)
                elif typ == "counts":
                    items = rec.get("items")
                    if not isinstance(items, list):
                        raise ValueError("'items' is not a list")
                    for it in items:
                        _check_item(it)
                        if int(it["count"]) < 0:
                            raise ValueError("negative count")
                    proc.pid = proc.pid or int(rec.get("pid") or 0)
                    proc.counts = items
                else:
                    raise ValueError(f"unknown record type {typ!r}")
            except (ValueError, KeyError, TypeError, OverflowError) as exc:
                why = "truncated line" if not raw.endswith("\n") else f"corrupt line: {exc}"
                summary.skipped.append((path, n, why))
    return proc


def _check_item(rec: Any) -> None:
    if not isinstance(rec, dict):
        raise ValueError("item is not a JSON object")
    for key in ("kind", "name", "action"):
        if not isinstance(rec.get(key), str):
            raise ValueError(f"missing or bad {key!r}")


def merge(paths: Iterable[str]) -> Summary:
    """Merge report files and directories of them (``.jsonl`` files, recursively).

    Raises :class:`~neuron_guard.ConfigError` for a path that does not exist.
    """
    summary = Summary()
    for path in _report_files(paths):
        summary.files += 1
        proc = _read(path, summary)
        if not proc.firsts and proc.counts is None:
            continue
        pkey = (proc.host, proc.pid, path if not proc.pid else "")
        summary.processes.add(pkey)
        per: dict[tuple[str, str, str], int] = {}
        sites: dict[tuple[str, str], list[str]] = {}
        tiers: dict[tuple[str, str], str | None] = {}
        for rec in proc.firsts:
            key = (rec["kind"], rec["name"], rec["action"])
            per[key] = max(per.get(key, 0), 1)
            tiers[key[:2]] = rec.get("tier")
            if rec.get("file"):
                sites.setdefault(key[:2], []).append(f"{rec['file']}:{rec.get('line')}")
        for rec in proc.counts or ():
            key = (rec["kind"], rec["name"], rec["action"])
            per[key] = max(per.get(key, 0), int(rec["count"]))
            tiers.setdefault(key[:2], rec.get("tier"))
            if rec.get("file") and key[:2] not in sites:
                sites[key[:2]] = [f"{rec['file']}:{rec.get('line')}"]
        for (kind, name, action), n in per.items():
            it = summary.items.get((kind, name))
            if it is None:
                it = summary.items[(kind, name)] = _ItemSummary(kind, name, tiers.get((kind, name)))
            it.count += n
            it.actions[action] = it.actions.get(action, 0) + n
            it.processes.add(pkey)
            if proc.rank is not None:
                it.ranks.add(proc.rank)
            for site in sites.get((kind, name), ()):
                if site not in it.first_seen:
                    it.first_seen.append(site)
    return summary


def write_text(summary: Summary, out: IO[str]) -> None:
    """The merged report for people: one block per item, most preview first."""
    items = summary.sorted_items()
    nproc = len(summary.processes)
    out.write(
        f"{len(items)} item(s) used by {nproc} process(es) in {summary.files} report file(s)\n"
    )
    for it in items:
        d = it.as_dict()
        actions = ", ".join(f"{a} {n}" for a, n in d["actions"].items())
        out.write(
            f"\n{it.tier or '-'} {it.kind} {it.name}\n"
            f"  count {it.count} ({actions}) in {d['processes']} process(es)"
        )
        if d["ranks"]:
            out.write(" on rank(s) " + ",".join(d["ranks"]))
        out.write("\n")
        for site in it.first_seen[:5]:
            out.write(f"  first seen at {site}\n")
        if len(it.first_seen) > 5:
            out.write(f"  ... and {len(it.first_seen) - 5} more call site(s)\n")
    for f, n, why in summary.skipped:
        out.write(f"\nskipped {f}:{n}: {why}\n")
