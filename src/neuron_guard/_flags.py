"""Compiler flags in strings and argument lists: a shell-like tokenizer and a flag matcher.

Pure functions, shared by the run-time carriers (:mod:`neuron_guard._environ`) and the
static scanner. The rules follow how Neuron carries flags:

* a string (``NEURON_CC_FLAGS``, ``compiler_args="..."``) is split like a shell line:
  quotes and backslash escapes; a broken string still yields every token it can;
* ``--flag=value`` and ``--flag value`` are the same; a one-letter short alias also
  takes a glued value (``-O1`` is ``-O 1``);
* ``_`` and ``-`` are interchangeable in flag names (``--enable_foo`` is ``--enable-foo``);
* matching is exact: ``--enable-foo`` never matches ``--enable-foobar``;
* when a flag is repeated, the rightmost occurrence wins (as neuronx-cc documents);
* a flag glued to the previous one by a missing space (``--no_cache--cache_dir=x``, a
  common slip when appending to ``NEURON_CC_FLAGS``) is still seen.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import TypeVar

    from ._table import Entry

    E = TypeVar("E", bound=Entry)

__all__ = ["find_flag", "match_flags", "normalize", "split_shell"]

_SPACE = " \t\r\n\f\v"


def split_shell(text: str) -> tuple[list[str], str | None]:
    """Split ``text`` like a POSIX shell line; returns ``(tokens, error)``.

    ``error`` is ``None`` for a well-formed line, else a short note ("unbalanced double
    quote", "trailing backslash"). The tokens are best-effort even then: the text after
    an unclosed quote is split on whitespace as if the quote were not there, so that a
    caller can still decide by what it can read.
    """
    tokens: list[str] = []
    error: str | None = None
    buf: list[str] = []
    in_token = False
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c in _SPACE:
            if in_token:
                tokens.append("".join(buf))
                buf = []
                in_token = False
            i += 1
        elif c == "\\":
            in_token = True
            if i + 1 < n:
                if text[i + 1] != "\n":  # backslash-newline is a line continuation
                    buf.append(text[i + 1])
                i += 2
            else:
                error = error or "trailing backslash"
                buf.append(c)
                i += 1
        elif c in "'\"":
            in_token = True
            end = _closing_quote(text, i + 1, c)
            if end < 0:
                error = error or f"unbalanced {'single' if c == chr(39) else 'double'} quote"
                # best effort: read the rest as if the quote were not there
                rest, _ = split_shell(text[i + 1 :].replace(c, " "))
                if rest:
                    buf.append(rest[0])
                    tokens.append("".join(buf))
                    tokens.extend(rest[1:])
                elif buf:
                    tokens.append("".join(buf))
                return tokens, error
            body = text[i + 1 : end]
            if c == '"':
                body = _unescape_double(body)
            buf.append(body)
            i = end + 1
        else:
            in_token = True
            buf.append(c)
            i += 1
    if in_token:
        tokens.append("".join(buf))
    return tokens, error


def _closing_quote(text: str, start: int, quote: str) -> int:
    """Index of the quote closing one opened before ``start``, or -1."""
    i = start
    n = len(text)
    while i < n:
        c = text[i]
        if c == quote:
            return i
        if c == "\\" and quote == '"':
            i += 2
            continue
        i += 1
    return -1


def _unescape_double(body: str) -> str:
    """Inside double quotes a backslash escapes only ``$ ` " \\`` and newline."""
    if "\\" not in body:
        return body
    out: list[str] = []
    i = 0
    n = len(body)
    while i < n:
        c = body[i]
        if c == "\\" and i + 1 < n and body[i + 1] in '$`"\\\n':
            if body[i + 1] != "\n":
                out.append(body[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def normalize(flag: str) -> str:
    """A flag name as matched: ``_`` and ``-`` are interchangeable."""
    return flag.replace("_", "-")


def _expand_glued(tokens: Sequence[str]) -> list[str]:
    """Tokens, with flags glued to a previous flag by a missing space split off."""
    out: list[str] = []
    for tok in tokens:
        if not tok.startswith("-") or tok.find("--", 2) < 0:
            out.append(tok)
            continue
        start = 0
        i = tok.find("--", 2)
        while i >= 0:
            # "--" inside a token starts a glued flag when a letter follows and the
            # character before it is not a dash ("a---b" is not two flags)
            if tok[i - 1] != "-" and i + 2 < len(tok) and tok[i + 2].isalpha():
                out.append(tok[start:i])
                start = i
            i = tok.find("--", i + 2)
        out.append(tok[start:])
    return out


def find_flag(tokens: Sequence[str], spellings: Iterable[str]) -> tuple[bool, str | None]:
    """Whether ``tokens`` carry a flag spelled one of ``spellings``, and its value.

    Returns ``(present, value)``. The value comes from ``--flag=value``, ``--flag value``
    (the next token, when it does not start with ``-``) or, for a one-letter short
    spelling such as ``-O``, ``-O1``; it is ``None`` for a bare flag. A repeated flag's
    rightmost occurrence wins. ``_``/``-`` are interchangeable; matching is exact.
    """
    names = {normalize(s) for s in spellings}
    shorts = tuple(s for s in names if len(s) == 2 and s[0] == "-" and s[1] != "-")
    toks = _expand_glued(tokens)
    present = False
    value: str | None = None
    for i, tok in enumerate(toks):
        if not tok.startswith("-") or tok == "-":
            continue
        name, eq, val = tok.partition("=")
        if normalize(name) in names:
            present = True
            if eq:
                value = val
            elif i + 1 < len(toks) and not toks[i + 1].startswith("-"):
                value = toks[i + 1]
            else:
                value = None
        elif shorts and not tok.startswith("--"):
            for s in shorts:
                if tok.startswith(s) and len(tok) > 2:
                    present = True
                    rest = tok[2:]
                    value = rest[1:] if rest.startswith("=") else rest
    return present, value


def match_flags(tokens: Sequence[str], entries: Iterable[E]) -> list[tuple[E, str | None]]:
    """The flag ``entries`` that ``tokens`` carry, each with the flag's (rightmost) value.

    An entry matches by its ``name`` or any of its ``aliases``; an entry with ``values``
    matches only when the flag's value is one of them.
    """
    out: list[tuple[E, str | None]] = []
    if not tokens:
        return out
    for entry in entries:
        present, value = find_flag(tokens, (entry.name, *entry.aliases))
        if not present:
            continue
        if entry.values is not None and value not in entry.values:
            continue
        out.append((entry, value))
    return out
