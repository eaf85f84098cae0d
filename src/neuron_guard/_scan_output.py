"""Writers of a scan's result (``neuron-guard scan --format``): text, JSON and SARIF.

One writer per format behind one small protocol: it takes the :class:`ScanResult` of
:func:`neuron_guard._scan.scan_paths` and an open text stream.
"""

from __future__ import annotations

import os
from typing import IO, TYPE_CHECKING, Any

from ._types import Kind

if TYPE_CHECKING:
    from typing import Protocol

    from ._scan import Rule, ScanResult

    class Writer(Protocol):
        """A scan report writer: one per output format."""

        def __call__(self, result: ScanResult, out: IO[str]) -> None: ...


__all__ = ["WRITERS", "write_json", "write_sarif", "write_text"]


def write_text(result: ScanResult, out: IO[str]) -> None:
    """``path:line:col: kind name tier`` per use that matters, then a summary line."""
    shown = [f for f in result.findings if f.allowed_by is None]
    for f in sorted(shown, key=lambda f: (f.path, f.line, f.column)):
        r = f.rule
        extra = []
        if f.trigger:
            extra.append(f"switched on by {f.trigger}")
        if r.deprecated:
            extra.append(f"deprecated since {r.deprecated}")
        if r.versions:
            extra.append(f"for versions {r.versions}")
        if r.replacement:
            extra.append(f"use {r.replacement!r}")
        tail = f" ({'; '.join(extra)})" if extra else ""
        out.write(f"{f.path}:{f.line}:{f.column}: {r.kind} {r.name} {r.tier}{tail}\n")
    for path, line, col, msg in result.errors:
        out.write(f"{path}:{line}:{col}: error: {msg}\n")
    failing = len(result.failing)
    allowed = sum(1 for f in result.findings if f.allowed_by is not None)
    deprecated = sum(1 for f in result.findings if not f.rule.preview)
    out.write(
        f"{failing} preview use(s) not allowed, {allowed} allowed, {deprecated} deprecated "
        f"in {result.files} file(s); {len(result.errors)} error(s)\n"
    )
    if failing:
        out.write("details: neuron-guard explain NAME; opt in with NEURON_GUARD_ALLOW=KIND:NAME\n")


def write_json(result: ScanResult, out: IO[str]) -> None:
    """One JSON object: ``findings``, ``errors`` and a ``summary``."""
    import json

    doc = {
        "version": 1,
        "files": result.files,
        "findings": [f.as_dict() for f in result.findings],
        "errors": [
            {"path": p, "line": n, "column": c, "message": m} for p, n, c, m in result.errors
        ],
        "summary": {
            "not_allowed": len(result.failing),
            "allowed": sum(1 for f in result.findings if f.allowed_by is not None),
            "deprecated": sum(1 for f in result.findings if not f.rule.preview),
        },
    }
    json.dump(doc, out, indent=2)
    out.write("\n")


SARIF_SCHEMA = (
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)


def _sarif_rule(r: Rule) -> dict[str, Any]:
    level = "error" if r.preview else "warning"
    what = f"{r.tier} {Kind(r.kind).label} {r.name}"
    lines = [f"{what}: {r.meaning}." if r.preview else f"{what} is deprecated."]
    if r.deprecated:
        lines.append(
            f"Deprecated in {r.deprecated}" + (f", removed in {r.removed}." if r.removed else ".")
        )
    if r.replacement:
        lines.append(f"Use {r.replacement} instead.")
    if r.versions:
        lines.append(f"Applies to versions {r.versions} (package not installed where scanned).")
    lines.append(f"To use it anyway, opt in with {r.remedy} (or `# neuron-guard: allow {r.id}`).")
    if r.source:
        lines.append(f"Evidence: {r.source}")
    text = "\n".join(lines)
    rule: dict[str, Any] = {
        "id": r.id,
        "name": "".join(p.capitalize() for p in (r.tier, r.kind)) + "Item",
        "shortDescription": {
            "text": f"{what} is {'a developer preview' if r.preview else 'deprecated'}"
        },
        "fullDescription": {"text": r.meaning},
        "help": {"text": text, "markdown": text.replace("\n", "\n\n")},
        "defaultConfiguration": {"level": level},
        "properties": {"tags": ["neuron", r.kind, r.tier], "tier": r.tier, "kind": r.kind},
    }
    if r.source and r.source.startswith(("http://", "https://")):
        rule["helpUri"] = r.source
    return rule


def _uri(path: str) -> dict[str, Any]:
    if os.path.isabs(path):
        from pathlib import Path

        return {"uri": Path(path).as_uri()}
    return {"uri": path.replace(os.sep, "/"), "uriBaseId": "%SRCROOT%"}


def write_sarif(result: ScanResult, out: IO[str]) -> None:
    """SARIF 2.1.0 for GitHub code scanning: one rule per item found, one result per use."""
    import json
    from pathlib import Path

    from ._version import __version__

    shown = [f for f in result.findings if f.allowed_by is None]
    used = sorted({f.rule.id for f in shown})
    index = {rid: i for i, rid in enumerate(used)}
    results = []
    for f in sorted(shown, key=lambda f: (f.path, f.line, f.column, f.rule.id)):
        r = f.rule
        text = f"{r.tier} {Kind(r.kind).label} '{r.name}'"
        text += f" (switched on by {f.trigger})" if f.trigger else ""
        text += " is a developer preview" if r.preview else f" is deprecated since {r.deprecated}"
        text += f"; opt in with {r.remedy}"
        results.append(
            {
                "ruleId": r.id,
                "ruleIndex": index[r.id],
                "level": "error" if r.preview else "warning",
                "message": {"text": text},
                "locations": [
                    {
                        "physicalLocation": {
                            "artifactLocation": _uri(f.path),
                            "region": {
                                "startLine": max(f.line, 1),
                                "startColumn": max(f.column, 1),
                            },
                        }
                    }
                ],
            }
        )
    notes = [
        {
            "level": "error",
            "message": {"text": msg},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": _uri(path),
                        "region": {"startLine": max(line, 1), "startColumn": max(col, 1)},
                    }
                }
            ],
        }
        for path, line, col, msg in result.errors
    ]
    doc = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "neuron-guard",
                        "version": __version__,
                        "informationUri": "https://pypi.org/project/neuron-guard/",
                        "rules": [_sarif_rule(result.rules[rid]) for rid in used],
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": Path.cwd().as_uri() + "/"}},
                "invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notes}],
                "results": results,
            }
        ],
    }
    json.dump(doc, out, indent=2)
    out.write("\n")


WRITERS: dict[str, Writer] = {"text": write_text, "json": write_json, "sarif": write_sarif}
