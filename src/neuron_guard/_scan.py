"""Static scan of Python sources against the effective tier table (``neuron-guard scan``).

One AST walk per file, in source order, with a scope stack that tracks what each name is
bound to: ``import a.b as c``, ``from a import b``, ``m = importlib.import_module("a.b")``
and ``x = a.b`` make aliases; any other binding of the name (an assignment, a parameter,
a loop variable) hides it from then on, so a local variable named like a module is not
mistaken for it. The walk reports:

* ``api``: dotted references (attribute chains through aliases), ``from`` imports, and
  keyword arguments of ``api`` entries that name an ``argument``;
* ``package``: imports (also inside functions and ``try``) and ``importlib.import_module``
  / ``__import__`` with a literal;
* ``env``: string literals used with ``os.environ[...]``, ``os.getenv``,
  ``os.environ.get/setdefault/pop/update``, ``os.putenv``, ``setenv``, and ``env=``
  mappings;
* ``flag``: flags in string literals and lists of them, tokenized exactly as at run time
  (:mod:`neuron_guard._flags`);
* ``feature`` and ``model``: when one of their triggers is found.

A ``# neuron-guard: allow PATTERN[, PATTERN]`` comment allows findings on its line (a bare
``# neuron-guard: allow`` allows everything on it). Many files are scanned by a process
pool; a file that does not mention any table name is parsed but not walked.
"""

from __future__ import annotations

import ast
import os
from typing import TYPE_CHECKING, Any, Callable

from ._config import Pattern, Settings, parse_patterns
from ._errors import ConfigError
from ._flags import match_flags, normalize, split_shell
from ._table import Entry, Table, group, holds, installed_version
from ._types import Kind, Tier, meaning

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence


__all__ = ["Finding", "Rule", "ScanResult", "build_index", "scan_paths"]

SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "__pycache__",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        "node_modules",
    }
)
_ENV_READ = frozenset({"os.getenv", "os.environ.get", "os.environ.pop", "os.unsetenv"})
_ENV_WRITE = frozenset({"os.environ.setdefault", "os.putenv"})
_ENV_METHODS = frozenset({"setenv", "getenv", "putenv", "delenv", "unsetenv"})
_IMPORTERS = frozenset({"importlib.import_module", "__import__"})
_ALWAYS_TRACKED = frozenset({"os", "importlib"})
#: Scan files in a process pool from this many files on.
POOL_MIN_FILES = 48


class Rule:
    """One table item as the scan reports it (the SARIF rule)."""

    __slots__ = (
        "deprecated",
        "id",
        "kind",
        "name",
        "note",
        "removed",
        "replacement",
        "source",
        "tier",
        "values",
        "versions",
    )

    def __init__(self, entry: Entry, tier: Tier, versions: str | None) -> None:
        self.kind = str(entry.kind)
        self.name = entry.display_name
        self.id = f"{self.kind}:{self.name}"
        self.tier = str(tier)
        self.replacement = entry.replacement
        self.deprecated = entry.deprecated
        self.removed = entry.removed
        self.source = entry.source
        self.note = entry.note
        self.values = entry.values
        self.versions = versions

    @property
    def preview(self) -> bool:
        return self.tier != "stable"

    @property
    def meaning(self) -> str:
        return meaning(self.kind, self.tier)

    @property
    def remedy(self) -> str:
        return f"NEURON_GUARD_ALLOW={self.id}"


class Finding:
    """One use of a table item at a place in a file."""

    __slots__ = ("allowed_by", "column", "line", "path", "rule", "trigger")

    def __init__(
        self,
        path: str,
        line: int,
        column: int,
        rule: Rule,
        trigger: str | None,
        allowed_by: str | None,
    ) -> None:
        self.path = path
        self.line = line
        self.column = column
        self.rule = rule
        self.trigger = trigger
        self.allowed_by = allowed_by

    @property
    def failing(self) -> bool:
        """A preview item that nothing allows: makes the scan exit 1."""
        return self.rule.preview and self.allowed_by is None

    def as_dict(self) -> dict[str, Any]:
        r = self.rule
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "rule": r.id,
            "kind": r.kind,
            "name": r.name,
            "tier": r.tier,
            "trigger": self.trigger,
            "allowed": self.allowed_by is not None,
            "allowed_by": self.allowed_by,
            "deprecated": r.deprecated,
            "removed": r.removed,
            "replacement": r.replacement,
        }


class ScanResult:
    """Everything one scan found."""

    def __init__(self, rules: dict[str, Rule]) -> None:
        self.rules = rules
        self.findings: list[Finding] = []
        self.errors: list[tuple[str, int, int, str]] = []  # (path, line, column, message)
        self.files = 0

    @property
    def failing(self) -> list[Finding]:
        return [f for f in self.findings if f.failing]


# -- the index: what the walk looks for -----------------------------------------------


class Index:
    """The effective table reduced to look-ups (plain data: sent once to pool workers)."""

    def __init__(self) -> None:
        self.rules: dict[str, Rule] = {}
        self.api: dict[str, list[str]] = {}  # dotted name -> rule ids
        self.args: dict[str, dict[str, list[str]]] = {}  # dotted -> argument -> rule ids
        self.wildcards: list[tuple[str, list[str]]] = []
        self.packages: dict[str, list[str]] = {}  # module -> rule ids
        self.env: dict[str, list[str]] = {}
        self.flags: list[tuple[Entry, list[str]]] = []
        self.triggered: dict[str, list[str]] = {}  # rule id -> feature/model rule ids
        self.tracked: frozenset[str] = _ALWAYS_TRACKED  # top-level modules worth aliasing
        self.needles: tuple[bytes, ...] = ()
        self.flag_cores: tuple[bytes, ...] = ()
        self.allow: tuple[Pattern, ...] = ()


def _choose(entries: list[Entry]) -> tuple[Entry, str | None] | None:
    """The entry of one item that applies here; with its package absent, the lowest tier.

    A scan often runs where the Neuron packages are not installed (CI): then every
    version range might apply, and the cautious reading is the lowest tier.
    """
    live = [e for e in entries if holds(e)]
    if live:
        return min(live, key=lambda e: e.tier.rank), None
    absent = [e for e in entries if e.versions and not _installed(e)]
    if absent:
        low = min(absent, key=lambda e: e.tier.rank)
        return low, low.versions
    return None


def _installed(e: Entry) -> bool:
    dist = e.package or (e.name if e.kind is Kind.PACKAGE else None)
    return dist is None or installed_version(dist) is not None


def _reportable(r: Rule) -> bool:
    return r.preview or bool(r.deprecated)


def build_index(table: Table, settings: Settings, extra_allow: Sequence[str] = ()) -> Index:
    """Reduce ``table`` to the scan's look-ups, with the allow patterns of ``settings``."""
    idx = Index()
    idx.allow = tuple(settings.allow) + parse_patterns(list(extra_allow), origin="--allow")
    packages_by_name = {e.name: e.import_name for e in table.of_kind("package")}
    trigger_targets: list[tuple[str, str]] = []  # (trigger, feature/model rule id)
    for key, entries in group(table.entries).items():
        kind = key[0]
        if kind == "model" and settings.workload:
            entries = [e for e in entries if e.workload in (None, settings.workload)]
            if not entries:
                continue
        chosen = _choose(entries)
        if chosen is None:
            continue
        entry, versions = chosen
        rule = Rule(entry, entry.tier, versions)
        old = idx.rules.get(rule.id)
        if old is not None and Tier(old.tier) <= entry.tier:
            rule = old
        idx.rules[rule.id] = rule
        if kind in ("feature", "model"):
            trigger_targets.extend((t, rule.id) for t in entry.triggers)
            continue
        if not _reportable(rule):
            continue
        if kind == "api":
            if entry.argument:
                idx.args.setdefault(entry.name, {}).setdefault(entry.argument, []).append(rule.id)
            elif entry.name.endswith(".*"):
                idx.wildcards.append((entry.name[:-2], [rule.id]))
            else:
                idx.api.setdefault(entry.name, []).append(rule.id)
        elif kind == "package":
            idx.packages.setdefault(entry.import_name, []).append(rule.id)
        elif kind == "env":
            idx.env.setdefault(entry.name, []).append(rule.id)
        elif kind == "flag":
            idx.flags.append((entry, [rule.id]))
    flag_specs = {f[0].name: f for f in idx.flags}
    for trigger, rid in trigger_targets:
        if not _reportable(idx.rules[rid]):
            continue
        tkind, _, tname = trigger.partition(":")
        tid = f"{tkind}:{tname}"
        idx.triggered.setdefault(tid, []).append(rid)
        if tkind == "api":
            name, _, arg = tname.partition(":")
            if arg:
                idx.args.setdefault(name, {}).setdefault(arg, [])
            else:
                idx.api.setdefault(tname, [])
        elif tkind == "package":
            idx.packages.setdefault(packages_by_name.get(tname, tname.replace("-", "_")), [])
        elif tkind == "env":
            idx.env.setdefault(tname, [])
        elif tkind == "flag" and tname not in flag_specs:
            spec = Entry("flag", {"name": tname, "tier": "stable"}, "trigger", 0)
            flag_specs[tname] = (spec, [])
            idx.flags.append(flag_specs[tname])
    dotted = [*idx.api, *idx.args, *(w for w, _ in idx.wildcards), *idx.packages]
    tops = {d.partition(".")[0] for d in dotted}
    idx.tracked = frozenset(tops | _ALWAYS_TRACKED)
    idx.needles = tuple(sorted({n.encode() for n in (*tops, *idx.env)}))
    cores = set()
    for spec, _ in idx.flags:
        for spelling in (spec.name, *spec.aliases):
            core = normalize(spelling).lstrip("-")
            if core:
                cores.add(core.encode())
    idx.flag_cores = tuple(sorted(cores))
    return idx


# -- the walk -------------------------------------------------------------------------


class _Scope(dict):  # type: ignore[type-arg]
    """Names bound in one scope: a dotted path for an alias, ``None`` for anything else."""

    __slots__ = ("is_class",)

    def __init__(self, is_class: bool = False) -> None:
        super().__init__()
        self.is_class = is_class


def _longest_prefix(name: str, table: dict[str, list[str]]) -> tuple[str, list[str]] | None:
    """The longest dotted prefix of ``name`` (``name`` itself included) that ``table`` has."""
    cut = len(name)
    while cut > 0:
        prefix = name[:cut]
        ids = table.get(prefix)
        if ids is not None:
            return prefix, ids
        cut = name.rfind(".", 0, cut)
    return None


def _literal(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


class _Walker:
    """One file's walk; ``hits`` collects ``(line, column, rule ids, trigger id)``."""

    def __init__(self, idx: Index) -> None:
        self.idx = idx
        self.scopes: list[_Scope] = [_Scope()]
        self.hits: list[tuple[int, int, list[str], str]] = []
        self.in_handler = 0
        self.flag_entries = [spec for spec, _ in idx.flags]
        self.flag_ids = {id(spec): ids for spec, ids in idx.flags}

    # -- scopes --

    def lookup(self, name: str) -> str | None:
        scopes = self.scopes
        for i in range(len(scopes) - 1, -1, -1):
            s = scopes[i]
            if s.is_class and i != len(scopes) - 1:
                continue
            if name in s:
                return s[name]  # type: ignore[no-any-return]
        return None

    def bind(self, name: str, target: str | None) -> None:
        scope = self.scopes[-1]
        if target is None and self.in_handler and scope.get(name):
            return  # "except ImportError: torch_neuronx = None" keeps the alias
        scope[name] = target

    def bind_target(self, node: ast.AST, value: ast.AST | None = None) -> None:
        if isinstance(node, ast.Name):
            self.bind(node.id, self.resolve_value(value) if value is not None else None)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for elt in node.elts:
                self.bind_target(elt)
        elif isinstance(node, ast.Starred):
            self.bind_target(node.value)
        elif isinstance(node, ast.Subscript):
            self.env_subscript(node, value)
            self.visit(node)
        else:
            self.visit(node)

    def dotted(self, node: ast.AST) -> str | None:
        """The dotted path an expression refers to through aliases, or None."""
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        base = self.lookup(node.id)
        if base is None:
            return "__import__" if node.id == "__import__" and not parts else None
        parts.append(base)
        return ".".join(reversed(parts))

    def resolve_value(self, node: ast.AST) -> str | None:
        if isinstance(node, (ast.Name, ast.Attribute)):
            return self.dotted(node)
        if isinstance(node, ast.Call) and node.args and self.dotted(node.func) in _IMPORTERS:
            mod = _literal(node.args[0])
            if mod and mod.partition(".")[0] in self.idx.tracked:
                return mod
        return None

    # -- findings --

    def hit(self, node: ast.AST, rule_ids: list[str], trigger_id: str) -> None:
        ids = list(rule_ids) + self.idx.triggered.get(trigger_id, [])
        if ids:
            self.hits.append(
                (getattr(node, "lineno", 1), getattr(node, "col_offset", 0), ids, trigger_id)
            )

    def check_dotted(self, name: str, node: ast.AST) -> None:
        found = _longest_prefix(name, self.idx.api)
        if found is not None:
            self.hit(node, found[1], f"api:{found[0]}")
            return
        for base, ids in self.idx.wildcards:
            if name.startswith(base + ".") and not name[len(base) + 1 :].startswith("_"):
                self.hit(node, ids, f"api:{name}")
                return

    def check_module(self, module: str, node: ast.AST) -> None:
        found = _longest_prefix(module, self.idx.packages)
        if found is not None:
            self.hit(node, found[1], f"package:{found[0]}")

    def check_env(self, name_node: ast.AST | None, value: ast.AST | None) -> None:
        name = _literal(name_node)
        if name is None or name_node is None:
            return
        ids = self.idx.env.get(name)
        if ids is None:
            return
        self.hit(name_node, self.by_value(ids, _literal(value)), f"env:{name}")

    def by_value(self, ids: list[str], value: str | None) -> list[str]:
        """The rules that a literal ``value`` switches on (``values`` restricts some)."""
        if value is None:
            return ids
        rules = self.idx.rules
        return [i for i in ids if not rules[i].values or value in (rules[i].values or ())]

    def check_flags(self, node: ast.AST, tokens: list[str]) -> None:
        for entry, _value in match_flags(tokens, self.flag_entries):
            self.hit(node, self.flag_ids[id(entry)], f"flag:{entry.name}")

    def might_carry_flag(self, text: str) -> bool:
        if "-" not in text:
            return False
        norm = normalize(text).encode("utf-8", "replace")
        return any(c in norm for c in self.idx.flag_cores)

    def env_subscript(self, node: ast.Subscript, value: ast.AST | None) -> None:
        key = node.slice
        if self.dotted(node.value) == "os.environ" or _literal(key) in self.idx.env:
            self.check_env(key, value)

    def env_mapping(self, node: ast.AST) -> None:
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values):
                self.check_env(k, v)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "dict"
        ):
            for kw in node.keywords:
                if kw.arg:
                    self.check_env(ast.copy_location(ast.Constant(kw.arg), kw), kw.value)
            for arg in node.args:
                self.env_mapping(arg)

    # -- the visit --

    def visit(self, node: ast.AST) -> None:
        meth = _DISPATCH.get(node.__class__)
        if meth is not None:
            meth(self, node)
            return
        for field in node._fields:
            value = getattr(node, field, None)
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST):
                        self.visit(item)
            elif isinstance(value, ast.AST):
                self.visit(value)

    def visit_list(self, nodes: Iterable[ast.AST | None]) -> None:
        for n in nodes:
            if n is not None:
                self.visit(n)

    def v_import(self, node: ast.Import) -> None:
        for alias in node.names:
            name = alias.name
            self.check_module(name, node)
            tracked = name.partition(".")[0] in self.idx.tracked
            if alias.asname:
                self.bind(alias.asname, name if tracked else None)
            else:
                top = name.partition(".")[0]
                self.bind(top, top if tracked else None)

    def v_import_from(self, node: ast.ImportFrom) -> None:
        mod = node.module or ""
        tracked = not node.level and mod.partition(".")[0] in self.idx.tracked
        if tracked:
            self.check_module(mod, node)
        for alias in node.names:
            if alias.name == "*":
                continue
            full = f"{mod}.{alias.name}"
            if tracked:
                self.check_module(full, node)
                self.check_dotted(full, node)
            self.bind(alias.asname or alias.name, full if tracked else None)

    def v_function(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> None:
        args = node.args
        self.visit_list(args.defaults)
        self.visit_list(args.kw_defaults)
        if not isinstance(node, ast.Lambda):
            self.visit_list(node.decorator_list)
            all_args = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
            self.visit_list([a.annotation for a in all_args if a is not None])
            if node.returns is not None:
                self.visit(node.returns)
            self.bind(node.name, None)
        scope = _Scope()
        for a in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg):
            if a is not None:
                scope[a.arg] = None
        self.scopes.append(scope)
        saved, self.in_handler = self.in_handler, 0
        try:
            if isinstance(node, ast.Lambda):
                self.visit(node.body)
            else:
                self.visit_body(node.body)
        finally:
            self.scopes.pop()
            self.in_handler = saved

    def visit_body(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            self.visit(stmt)

    def v_class(self, node: ast.ClassDef) -> None:
        self.visit_list(node.decorator_list)
        self.visit_list(node.bases)
        self.visit_list(node.keywords)
        self.bind(node.name, None)
        self.scopes.append(_Scope(is_class=True))
        try:
            self.visit_body(node.body)
        finally:
            self.scopes.pop()

    def v_assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for t in node.targets:
            self.bind_target(t, node.value)

    def v_ann_assign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
        self.visit(node.annotation)
        self.bind_target(node.target, node.value)

    def v_aug_assign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        self.bind_target(node.target)

    def v_for(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self.bind_target(node.target)
        self.visit_body(node.body)
        self.visit_body(node.orelse)

    def v_with(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self.bind_target(item.optional_vars)
        self.visit_body(node.body)

    def v_handler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self.bind(node.name, None)
        self.in_handler += 1
        try:
            self.visit_body(node.body)
        finally:
            self.in_handler -= 1

    def v_named_expr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self.bind_target(node.target, node.value)

    def v_comprehension(self, node: Any) -> None:
        self.scopes.append(_Scope())
        try:
            for gen in node.generators:
                self.visit(gen.iter)
                self.bind_target(gen.target)
                self.visit_list(gen.ifs)
            if isinstance(node, ast.DictComp):
                self.visit(node.key)
                self.visit(node.value)
            else:
                self.visit(node.elt)
        finally:
            self.scopes.pop()

    def v_name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            target = self.lookup(node.id)
            if target is not None:
                self.check_dotted(target, node)
        else:
            self.bind(node.id, None)

    def v_attribute(self, node: ast.Attribute) -> None:
        full = self.dotted(node)
        if full is not None:
            self.check_dotted(full, node)
            return
        self.visit(node.value)

    def v_call(self, node: ast.Call) -> None:
        func = self.dotted(node.func)
        args = node.args
        if func is not None:
            if func in _ENV_READ and args:
                self.check_env(args[0], None)
            elif func in _ENV_WRITE and args:
                self.check_env(args[0], args[1] if len(args) > 1 else None)
            elif func == "os.environ.update":
                for a in args:
                    self.env_mapping(a)
                self.env_mapping(ast.Call(ast.Name("dict", ast.Load()), [], node.keywords))
            elif func in _IMPORTERS and args:
                mod = _literal(args[0])
                if mod:
                    self.check_module(mod, args[0])
            arg_targets = self.idx.args.get(func)
            if arg_targets:
                for kw in node.keywords:
                    ids = arg_targets.get(kw.arg or "")
                    if ids is None:
                        continue
                    val = _literal(kw.value)
                    self.hit(kw, self.by_value(ids, val), f"api:{func}:{kw.arg}")
        elif isinstance(node.func, ast.Attribute) and node.func.attr in _ENV_METHODS and args:
            self.check_env(args[0], args[1] if len(args) > 1 else None)
        for kw in node.keywords:
            if kw.arg == "env":
                self.env_mapping(kw.value)
        self.visit(node.func)
        self.visit_list(args)
        self.visit_list(node.keywords)

    def v_subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.ctx, ast.Load):
            self.env_subscript(node, None)
        self.visit(node.value)
        self.visit(node.slice)

    def v_constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, str) and self.idx.flag_cores and self.might_carry_flag(value):
            self.check_flags(node, split_shell(value)[0])

    def v_sequence(self, node: ast.List | ast.Tuple) -> None:
        strings = [_literal(e) for e in node.elts]
        texts = [s for s in strings if s is not None]
        if texts and self.idx.flag_cores and any(self.might_carry_flag(s) for s in texts):
            tokens: list[str] = []
            for s in strings:
                if s is None:
                    tokens.append("")
                elif any(c.isspace() for c in s):
                    tokens.extend(split_shell(s)[0])
                else:
                    tokens.append(s)
            self.check_flags(node, tokens)
        for e, s in zip(node.elts, strings):
            if s is None:
                self.visit(e)

    def v_expr(self, node: ast.Expr) -> None:
        if _literal(node.value) is None:  # a bare string is a docstring, not a carrier
            self.visit(node.value)

    def v_dict(self, node: ast.Dict) -> None:
        if any(
            k is None and self.dotted(v) == "os.environ" for k, v in zip(node.keys, node.values)
        ):
            self.env_mapping(node)  # {**os.environ, "NAME": "1"}
        self.visit_list(node.keys)
        self.visit_list(node.values)


_DISPATCH: dict[type, Callable[[_Walker, Any], None]] = {
    ast.Import: _Walker.v_import,
    ast.ImportFrom: _Walker.v_import_from,
    ast.FunctionDef: _Walker.v_function,
    ast.AsyncFunctionDef: _Walker.v_function,
    ast.Lambda: _Walker.v_function,
    ast.ClassDef: _Walker.v_class,
    ast.Assign: _Walker.v_assign,
    ast.AnnAssign: _Walker.v_ann_assign,
    ast.AugAssign: _Walker.v_aug_assign,
    ast.For: _Walker.v_for,
    ast.AsyncFor: _Walker.v_for,
    ast.With: _Walker.v_with,
    ast.AsyncWith: _Walker.v_with,
    ast.ExceptHandler: _Walker.v_handler,
    ast.NamedExpr: _Walker.v_named_expr,
    ast.ListComp: _Walker.v_comprehension,
    ast.SetComp: _Walker.v_comprehension,
    ast.GeneratorExp: _Walker.v_comprehension,
    ast.DictComp: _Walker.v_comprehension,
    ast.Name: _Walker.v_name,
    ast.Attribute: _Walker.v_attribute,
    ast.Call: _Walker.v_call,
    ast.Subscript: _Walker.v_subscript,
    ast.Constant: _Walker.v_constant,
    ast.List: _Walker.v_sequence,
    ast.Tuple: _Walker.v_sequence,
    ast.Expr: _Walker.v_expr,
    ast.Dict: _Walker.v_dict,
}


# -- one file ---------------------------------------------------------------------------


def _comment_patterns(
    data: bytes, path: str, errors: list[tuple[int, int, str]]
) -> dict[int, tuple[Pattern, ...]]:
    import re

    out: dict[int, tuple[Pattern, ...]] = {}
    text = data.decode("utf-8", "replace")
    for n, line in enumerate(text.splitlines(), 1):
        m = re.search(r"#\s*neuron-guard:\s*allow\b([^#]*)", line)
        if m is None:
            continue
        spec = m.group(1).replace(",", " ").split() or ["*"]
        try:
            out[n] = parse_patterns(spec, origin=f"{path}:{n} comment")
        except ConfigError as exc:
            errors.append((n, m.start() + 1, str(exc)))
    return out


def _allowed(rule: Rule, patterns: Iterable[Pattern]) -> Pattern | None:
    for p in patterns:
        if not rule.preview and p.tier is not None:
            continue  # tier keywords never allow a deprecation
        if p.matches(rule.kind, rule.name, rule.tier):
            return p
    return None


def scan_file(path: str, idx: Index) -> Any:
    """Scan one file.

    Returns ``(path, hits, errors)``: ``hits`` are ``(line, col, rule ids, trigger,
    allowed_by)``, ``errors`` are ``(line, col, message)``.
    """
    errors: list[tuple[int, int, str]] = []
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        return path, [], [(0, 0, f"cannot read: {exc.strerror or exc}")]
    try:
        tree = ast.parse(data, filename=path)
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None) or 0
        col = getattr(exc, "offset", None) or 0
        msg = getattr(exc, "msg", None) or str(exc)
        return path, [], [(line, col, f"syntax error: {msg}")]
    relevant = any(n in data for n in idx.needles)
    if not relevant and idx.flag_cores:
        norm = data.replace(b"_", b"-")
        relevant = any(c in norm for c in idx.flag_cores)
    if not relevant:
        return path, [], errors
    walker = _Walker(idx)
    walker.visit_body(tree.body)
    comments = _comment_patterns(data, path, errors) if b"neuron-guard:" in data else {}
    hits: list[tuple[int, int, list[str], str, str | None]] = []
    seen: set[tuple[int, int, str]] = set()
    for line, col, ids, trigger in walker.hits:
        key = (line, col, trigger)
        if key in seen:
            continue
        seen.add(key)
        local = comments.get(line, ())
        allowed_by = _allowed_by(ids, idx, local)
        hits.append((line, col, ids, trigger, allowed_by))
    return path, hits, errors


def _allowed_by(ids: list[str], idx: Index, local: tuple[Pattern, ...]) -> str | None:
    """What allows one use: an item's own pattern, or a feature/model it switches on."""
    for rid in ids:
        rule = idx.rules[rid]
        if rule.kind in ("feature", "model"):
            p = _allowed(rule, (*local, *idx.allow))
            if p is not None and p.tier is None:
                return _describe(p)
    for rid in ids:
        p = _allowed(idx.rules[rid], (*local, *idx.allow))
        if p is None and idx.rules[rid].preview:
            return None
    ps = [_allowed(idx.rules[r], (*local, *idx.allow)) for r in ids]
    return "; ".join(sorted({_describe(p) for p in ps if p is not None})) or None


def _describe(p: Pattern) -> str:
    return f"{p.text} ({p.origin})" if p.origin else p.text


# -- many files ---------------------------------------------------------------------------

_WORKER_INDEX: list[Index] = []


def _init_worker(idx: Index) -> None:
    _WORKER_INDEX[:] = [idx]


def _scan_batch(paths: list[str]) -> list[Any]:
    idx = _WORKER_INDEX[0]
    return [scan_file(p, idx) for p in paths]


def iter_files(paths: Sequence[str], exclude: Sequence[str] = ()) -> list[str]:
    """The ``.py`` files under ``paths``: skipping VCS and cache dirs, virtual environments
    (a dir holding ``pyvenv.cfg``) and the ``exclude`` globs (matched against the path
    relative to its root and against the base name). A named file is always scanned."""
    from fnmatch import fnmatch

    def excluded(rel: str, base: str) -> bool:
        return any(fnmatch(rel, g) or fnmatch(base, g) for g in exclude)

    out: list[str] = []
    for root in paths:
        if os.path.isfile(root):
            out.append(root)
            continue
        if not os.path.isdir(root):
            msg = f"scan path {root!r} does not exist"
            raise ConfigError(msg, source=root)
        for dirpath, dirs, files in os.walk(root):
            rel_dir = os.path.relpath(dirpath, root)
            keep = []
            for d in sorted(dirs):
                rel = os.path.normpath(os.path.join(rel_dir, d)).replace(os.sep, "/")
                full = os.path.join(dirpath, d)
                if d in SKIP_DIRS or excluded(rel, d):
                    continue
                if os.path.exists(os.path.join(full, "pyvenv.cfg")):
                    continue
                keep.append(d)
            dirs[:] = keep
            for f in sorted(files):
                if not f.endswith((".py", ".pyi")):
                    continue
                rel = os.path.normpath(os.path.join(rel_dir, f)).replace(os.sep, "/")
                if not excluded(rel, f):
                    out.append(os.path.join(dirpath, f))
    return out


def _cpus() -> int:
    count = getattr(os, "process_cpu_count", None)
    if count is not None:
        return int(count() or 1)
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def scan_paths(
    paths: Sequence[str],
    idx: Index,
    *,
    exclude: Sequence[str] = (),
    jobs: int | None = None,
) -> ScanResult:
    """Scan every Python file under ``paths`` with ``idx``; a pool when there are many."""
    files = iter_files(paths, exclude)
    jobs = _cpus() if jobs is None else max(1, jobs)
    raw: list[Any] = []
    if jobs > 1 and len(files) >= POOL_MIN_FILES:
        raw = _scan_pool(files, idx, jobs)
    else:
        raw = [scan_file(p, idx) for p in files]
    result = ScanResult(idx.rules)
    result.files = len(files)
    for path, hits, errors in raw:
        shown = _display_path(path)
        for line, col, ids, trigger, allowed_by in hits:
            for rid in ids:
                rule = idx.rules[rid]
                if not _reportable(rule):
                    continue
                trig = trigger if rule.kind in ("feature", "model") else None
                result.findings.append(Finding(shown, line, col + 1, rule, trig, allowed_by))
        for line, col, msg in errors:
            result.errors.append((shown, line, col, msg))
    return result


def _scan_pool(files: list[str], idx: Index, jobs: int) -> list[Any]:
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    size = max(8, min(64, len(files) // (jobs * 4) or 1))
    batches = [files[i : i + size] for i in range(0, len(files), size)]
    try:
        with ProcessPoolExecutor(jobs, initializer=_init_worker, initargs=(idx,)) as pool:
            return [r for batch in pool.map(_scan_batch, batches) for r in batch]
    except (BrokenProcessPool, OSError):  # no pool here (a sandbox, a dying worker)
        return [scan_file(p, idx) for p in files]


def _display_path(path: str) -> str:
    """``path`` relative to the working directory when it is under it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path
    return path if rel.startswith("..") else rel
