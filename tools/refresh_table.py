#!/usr/bin/env python3
"""Diff the labels in a checkout of the Neuron docs against neuron_guard's embedded tier table.

    python tools/refresh_table.py /path/to/aws-neuron-sdk [--since REV] [--table DIR] [--json]

Lists every documentation line that carries a tier or lifecycle label (alpha, beta,
experimental, developer/public/private preview, deprecated, removed, end of support, ...)
with its path:line, then compares with the table:

* **new**: labelled lines that no table entry cites and that name nothing the table knows;
* **stale**: table sources whose file is gone, whose line is past the end of the file, or
  whose line carries no label and no entry name any more and sits under no labelled
  heading. With ``--since REV`` (the docs revision the table was last refreshed against) a
  stale source whose old text is still in the file is reported with the line it moved to.

``--since REV`` also limits the new-label listing to files changed since REV. The docs
checkout must be a git work tree for ``--since``. Exit status: 0, or 1 with ``--check``
when anything is new or stale.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python < 3.11
    import tomli as tomllib

DEFAULT_TABLE = Path(__file__).resolve().parents[1] / "src" / "neuron_guard" / "data" / "neuron"

TEXT_SUFFIXES = {".rst", ".md", ".txt", ".py", ".inc"}
SKIP_DIRS = {".git", "_static", "_templates", "images", "static", "node_modules", "_build"}

PREVIEW = re.compile(
    r"(?<![\w.-])(alpha|beta|experimental)(?![\w-])"
    r"|developer preview|public preview|private preview",
    re.IGNORECASE,
)
LIFECYCLE = re.compile(
    r"deprecat\w*|no longer\b|end[- ]of[- ]support|end[- ]of[- ]life|end support|last supported"
    r"|will be removed|has been removed|have been removed|\bremoved\b|maintenance mode",
    re.IGNORECASE,
)
BACKTICKED = re.compile(r"`+([^`]+?)`+")
ENV_NAME = re.compile(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]{2,}\b")
FLAG_NAME = re.compile(r"(?<![\w-])--[a-z][\w-]+")
DOTTED = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+(\(\))?$")


@dataclass
class Label:
    path: str
    line: int
    labels: list[str]
    names: list[str]
    text: str


@dataclass
class Entry:
    table: str
    kind: str
    name: str
    source: str
    argument: str | None = None


@dataclass
class Stale:
    table: str
    kind: str
    name: str
    source: str
    reason: str
    moved_to: str | None = None


@dataclass
class Report:
    labelled: int = 0
    new: list[Label] = field(default_factory=list)
    stale: list[Stale] = field(default_factory=list)


def iter_doc_files(root: Path, only: set[str] | None) -> list[Path]:
    files: list[Path] = []
    for directory, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(names):
            path = Path(directory, name)
            if path.suffix not in TEXT_SUFFIXES:
                continue
            rel = path.relative_to(root).as_posix()
            if only is None or rel in only:
                files.append(path)
    return files


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8", errors="replace").splitlines()


def label_words(text: str) -> list[str]:
    found = [m.group(0).lower() for m in PREVIEW.finditer(text)]
    found += [m.group(0).lower() for m in LIFECYCLE.finditer(text)]
    return sorted(set(found))


def names_in(text: str) -> list[str]:
    names: set[str] = set()
    for match in BACKTICKED.finditer(text):
        token = match.group(1).strip().lstrip("~").split("<")[0].strip()
        if DOTTED.match(token):
            names.add(token.removesuffix("()"))
        elif FLAG_NAME.fullmatch(token.split("=")[0]):
            names.add(token.split("=")[0])
    names.update(ENV_NAME.findall(text))
    names.update(FLAG_NAME.findall(text))
    return sorted(names)


def scan_docs(root: Path, only: set[str] | None) -> list[Label]:
    labels: list[Label] = []
    for path in iter_doc_files(root, only):
        rel = path.relative_to(root).as_posix()
        for number, text in enumerate(read_lines(path), 1):
            words = label_words(text)
            if words:
                labels.append(Label(rel, number, words, names_in(text), text.strip()[:200]))
    return labels


def load_table(directory: Path) -> list[Entry]:
    entries: list[Entry] = []
    for path in sorted(directory.glob("*.toml")):
        with path.open("rb") as handle:
            document: dict[str, Any] = tomllib.load(handle)
        for kind, items in document.items():
            if not isinstance(items, list):
                continue
            for item in items:
                entries.append(
                    Entry(
                        path.name,
                        kind,
                        str(item.get("name", "")),
                        str(item.get("source", "")),
                        item.get("argument"),
                    )
                )
    return entries


def split_source(source: str) -> tuple[str, int] | None:
    path, _, line = source.rpartition(":")
    if not path or not line.isdigit() or source.startswith(("http://", "https://")):
        return None
    return path, int(line)


def name_hints(entry: Entry) -> list[str]:
    """Strings whose presence on the cited line shows it still speaks of the entry."""
    hints = {entry.name}
    if entry.kind == "api":
        parts = entry.name.rstrip(".*").split(".")
        hints.add(parts[-1])
        if len(parts) > 1:
            hints.add(".".join(parts[-2:]))
    if entry.argument:
        hints.add(entry.argument)
    return [hint for hint in hints if len(hint) >= 3]


UNDERLINE = re.compile(r"^([=\-~^\"'`#*+])\1{2,}\s*$")


def headings_above(lines: list[str], number: int) -> list[str]:
    """Titles of the RST/Markdown headings above a line, nearest first."""
    titles: list[str] = []
    for index in range(min(number, len(lines)) - 1, 0, -1):
        text = lines[index]
        above = lines[index - 1].strip()
        if UNDERLINE.match(text) and above and not UNDERLINE.match(above):
            titles.append(above)
    titles += [
        text.lstrip("#").strip() for text in reversed(lines[:number]) if text.startswith("#")
    ]
    return titles


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
    ).stdout


def check_sources(root: Path, entries: list[Entry], since: str | None) -> list[Stale]:
    stale: list[Stale] = []
    cache: dict[str, list[str] | None] = {}
    for entry in entries:
        where = split_source(entry.source)
        if where is None:
            continue
        rel, number = where
        if rel not in cache:
            path = root / rel
            cache[rel] = read_lines(path) if path.is_file() else None
        lines = cache[rel]
        reason = None
        if lines is None:
            reason = "file gone"
        elif number > len(lines):
            reason = f"line past end of file ({len(lines)} lines)"
        else:
            text = lines[number - 1]
            mentions = any(hint.lower() in text.lower() for hint in name_hints(entry))
            under_label = any(label_words(title) for title in headings_above(lines, number))
            if not label_words(text) and not mentions and not under_label:
                reason = "line carries no label, no entry name, and no labelled heading above"
        if reason is None:
            continue
        moved = None
        if since is not None and lines is not None:
            moved = find_moved(root, since, rel, number, lines)
        stale.append(Stale(entry.table, entry.kind, entry.name, entry.source, reason, moved))
    return stale


def find_moved(root: Path, since: str, rel: str, number: int, lines: list[str]) -> str | None:
    try:
        old = git(root, "show", f"{since}:{rel}").splitlines()
    except subprocess.CalledProcessError:
        return None
    if number > len(old) or not old[number - 1].strip():
        return None
    wanted = old[number - 1].strip()
    hits = [index for index, text in enumerate(lines, 1) if text.strip() == wanted]
    if not hits:
        return None
    best = min(hits, key=lambda index: abs(index - number))
    return f"{rel}:{best}"


def build_report(root: Path, table: Path, since: str | None) -> Report:
    only = None
    if since is not None:
        only = set(git(root, "diff", "--name-only", since, "--", ".").split())
    entries = load_table(table)
    cited = {entry.source for entry in entries}
    known = {entry.name for entry in entries}
    known_short = {name.rsplit(".", 1)[-1] for name in known if "." in name}
    labels = scan_docs(root, only)
    new = [
        label
        for label in labels
        if f"{label.path}:{label.line}" not in cited
        and not any(name in known or name.rsplit(".", 1)[-1] in known_short for name in label.names)
    ]
    return Report(len(labels), new, check_sources(root, entries, since))


def print_text(report: Report) -> None:
    print(f"== labelled lines in the docs: {report.labelled}")
    print(f"== labelled lines not in the table: {len(report.new)}")
    per_file: dict[str, int] = {}
    for label in report.new:
        per_file[label.path] = per_file.get(label.path, 0) + 1
    for path, count in sorted(per_file.items(), key=lambda item: (-item[1], item[0]))[:20]:
        print(f"  {count:5d}  {path}")
    for label in report.new:
        names = f" names: {', '.join(label.names)}" if label.names else ""
        print(f"{label.path}:{label.line}  [{', '.join(label.labels)}]{names}")
        print(f"    {label.text}")
    print(f"== table sources that no longer carry their label: {len(report.stale)}")
    for item in report.stale:
        moved = f" (moved to {item.moved_to})" if item.moved_to else ""
        print(f"{item.table}: {item.kind} {item.name} -> {item.source}: {item.reason}{moved}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("docs", type=Path, help="checkout of aws-neuron/aws-neuron-sdk")
    parser.add_argument("--since", help="docs revision the table was last refreshed against")
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE, help="directory of TOML files")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--check", action="store_true", help="exit 1 when anything is new or stale")
    args = parser.parse_args(argv)
    if not args.docs.is_dir():
        parser.error(f"not a directory: {args.docs}")
    if not args.table.is_dir():
        parser.error(f"no table directory: {args.table}")
    report = build_report(args.docs, args.table, args.since)
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        print_text(report)
    return 1 if args.check and (report.new or report.stale) else 0


if __name__ == "__main__":
    sys.exit(main())
