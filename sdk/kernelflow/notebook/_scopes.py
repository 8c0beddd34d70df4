"""The scope visitor: which names a cell binds, reads and changes in place.

Python's scoping rules (functions, lambdas, classes, comprehensions, ``global``,
the walrus) decide whether a name in a cell is the cell's own or comes from
another cell; getting them wrong makes a wrong task graph. The walk follows
marimo's ``ScopedVisitor``; :func:`kernelflow.notebook.analysis.analyze_cell`
runs it over a cell's top-level statements and turns what it found into a
:class:`~kernelflow.notebook.analysis.CellAnalysis`.
"""

from __future__ import annotations

import ast
import builtins
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass, field

from kernelflow.notebook.kernel.syntax import PLAIN_MAGICS, is_get_ipython, split_lines, try_parse

# Names a cell may read without anything producing them. Single-underscore
# names are left out: IPython (and gettext) put `_` in builtins, and a cell that
# reads `_` reads the last output, which the notebook layer must see. The site
# and IPython additions are listed so that a kernel and a plain interpreter agree.
_IMPLICIT = frozenset(
    [n for n in dir(builtins) if not n.startswith("_") or n.startswith("__")]
    + "get_ipython display In Out exit quit help copyright credits license".split()  # noqa: SIM905
    + "__name__ __doc__ __builtins__ __spec__ __loader__ __package__ __IPYTHON__".split()  # noqa: SIM905
)
_MUTATORS = frozenset(
    "append extend insert remove pop popitem clear sort reverse update setdefault add discard "  # noqa: SIM905
    "difference_update intersection_update symmetric_difference_update fill resize put "
    "itemset setflags fit partial_fit fit_transform fit_predict set_params".split()
)
# Calls that write or read the file named by a literal path (issue: files as edges).
_WRITES_FIRST = frozenset(
    "to_csv to_parquet to_json to_pickle to_excel to_feather to_hdf to_stata to_orc "  # noqa: SIM905
    "to_html to_latex to_markdown to_xml savefig imsave save savez savez_compressed "
    "savetxt".split()
)
_WRITES_SECOND = frozenset(["dump"])  # joblib.dump(value, "model.joblib")
_READS_FIRST = frozenset(
    "read_csv read_parquet read_json read_pickle read_excel read_feather read_hdf "  # noqa: SIM905
    "read_table read_fwf read_stata read_orc read_xml imread load loadtxt genfromtxt".split()
)
_PATH_METHODS = {"write_text": "w", "write_bytes": "w", "read_text": "r", "read_bytes": "r"}
_PATH_KEYWORDS = ("path", "path_or_buf", "fname", "file", "filepath_or_buffer", "io", "filename")
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


@dataclass(frozen=True)
class Mutation:
    """An in-place change of a value the cell did not bind (``df['c'] = ...``).

    The producer's cached copy no longer matches what the consumer saw, so the
    notebook layer warns, naming ``line`` (in the cell's numbering) and ``text``.
    ``kind`` is one of ``"subscript"``, ``"attribute"``, ``"call"``,
    ``"augassign"``, ``"del"``.
    """

    name: str
    line: int
    kind: str
    text: str


@dataclass
class _Scope:
    """One scope: ``local`` names are resolved here, ``declared_global`` at top level."""

    kind: str  # "module" | "function" | "class" | "comprehension"
    local: set[str] = field(default_factory=set)
    declared_global: frozenset[str] = frozenset()


def _bindings(nodes: Iterable[ast.AST]) -> tuple[set[str], frozenset[str]]:
    """Names bound in one function/class scope, and those it declares ``global``.

    Python decides a function's locals from the whole body before it runs, so
    this looks at every binding in the scope, not crossing into nested scopes
    (except for a comprehension's walrus targets, which bind here).
    """
    bound: set[str] = set()
    declared: set[str] = set()
    elsewhere: set[str] = set()
    todo = list(nodes)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Global | ast.Nonlocal):
            (declared if isinstance(node, ast.Global) else elsewhere).update(node.names)
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, _SCOPES):
            bound.update([node.name] if not isinstance(node, ast.Lambda) else [])
            continue
        elif isinstance(node, _COMPREHENSIONS):
            walrus = [n.target for n in ast.walk(node) if isinstance(n, ast.NamedExpr)]
            bound.update(t.id for t in walrus)
            continue
        elif isinstance(node, ast.alias) and node.name != "*":
            bound.add(node.asname or node.name.partition(".")[0])
        elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
        todo.extend(ast.iter_child_nodes(node))
    return bound - declared - elsewhere, frozenset(declared)


def _root_name(node: ast.AST) -> str | None:
    """``df`` for ``df.loc[m, 'c']``: the variable whose value an expression is part of."""
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


class Visitor(ast.NodeVisitor):
    """Walks a cell's top-level statements in execution order.

    ``defs`` holds the names bound at top level and still bound; ``reads`` maps
    each free name to True when the top level read it before binding it, False
    when only a function body did (decided against ``ever_bound`` at the end).
    """

    def __init__(self, source: str, line_offset: int) -> None:
        self.lines = split_lines(source)
        self.offset = line_offset
        self.stack = [_Scope("module")]
        self.defs: dict[str, None] = {}
        self.ever_bound: set[str] = set()
        self.reads: dict[str, bool] = {}
        self.annotations: dict[str, str] = {}
        self.imports: dict[str, str] = {}
        self.mutations: list[tuple[Mutation, bool]] = []
        # Top-level names that stand for other names' values: ``d = df`` or
        # ``for d in [train, test]``; changing ``d`` in place changes those.
        self.aliases: dict[str, tuple[str, ...]] = {}
        # Top-level names bound by ``def`` and ``class``: code, not data.
        self.definitions: dict[str, None] = {}
        # Top-level names bound by ``with ... as name``: resources (an open file),
        # not data to keep.
        self.resources: dict[str, None] = {}
        # Files named by literal paths, written and read (in first-use order).
        self.file_writes: dict[str, None] = {}
        self.file_reads: dict[str, None] = {}
        self.opaque: list[str] = []
        self.ipython_calls: set[int] = set()

    # -- name resolution --

    def _where(self, name: str) -> str:
        """``"local"`` (a nested scope's), else ``"now"`` or ``"later"`` (top level)."""
        innermost = len(self.stack) - 1
        for i in range(innermost, 0, -1):
            scope = self.stack[i]
            if name in scope.declared_global:
                break
            if scope.kind == "class" and i != innermost:
                continue  # class bodies are invisible to the scopes nested in them
            if name in scope.local:
                return "local"
        return "later" if any(s.kind == "function" for s in self.stack) else "now"

    def _top_level(self, name: str) -> bool:
        scope = self.stack[-1]
        return scope.kind == "module" or name in scope.declared_global

    def _load(self, name: str) -> None:
        where = self._where(name)
        if where == "local" or (where == "now" and name in self.defs):
            return
        if name in _IMPLICIT and name not in self.ever_bound:
            return
        self.reads[name] = self.reads.get(name, False) or where == "now"

    def _bind(self, name: str, module: str | None = None) -> None:
        if not self._top_level(name):
            if self.stack[-1].kind == "class":
                self.stack[-1].local.add(name)
            return
        self.defs.setdefault(name)
        self.ever_bound.add(name)
        if module is None:
            self.imports.pop(name, None)
        else:
            self.imports[name] = module

    def _delete(self, name: str) -> None:
        if not self._top_level(name):
            return
        if name in self.defs:
            del self.defs[name]
            self.annotations.pop(name, None)
            self.imports.pop(name, None)
        else:
            self._load(name)

    def _mutation(self, target: ast.AST, kind: str, node: ast.AST) -> None:
        name = _root_name(target)
        if name is not None and name in self.aliases and self._where(name) != "local":
            for original in self.aliases[name]:
                self._mutation(ast.Name(original, ast.Load()), kind, node)
            return
        where = "local" if name is None else self._where(name)
        if name is None or where == "local" or (where == "now" and name in self.defs):
            return
        if name in _IMPLICIT and name not in self.ever_bound:
            return
        line = node.lineno  # type: ignore[attr-defined]
        text = self.lines[line - 1].strip() if line <= len(self.lines) else ""
        self.mutations.append((Mutation(name, line + self.offset, kind, text), where == "later"))

    def _segment(self, node: ast.AST) -> str:
        """Source text of ``node`` (``ast.get_source_segment`` re-splits the cell each call)."""
        first, last = node.lineno, node.end_lineno  # type: ignore[attr-defined]
        chunk = [line.encode() for line in self.lines[first - 1 : last]]
        chunk[-1] = chunk[-1][: node.end_col_offset]  # type: ignore[attr-defined]
        chunk[0] = chunk[0][node.col_offset :]  # type: ignore[attr-defined]
        return b"".join(chunk).decode(errors="replace")

    def _opaque(self, node: ast.AST, why: str) -> None:
        self.opaque.append(f"line {node.lineno + self.offset}: {why}")  # type: ignore[attr-defined]

    # -- statements --

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for target in node.targets:
            self.visit(target)
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            self._alias(node.targets[0].id, [node.value])

    def _alias(self, name: str, values: list[ast.expr]) -> None:
        """Remember (or forget) that top-level ``name`` is another name's value."""
        if len(self.stack) != 1:
            return
        self.aliases.pop(name, None)
        if values and all(isinstance(value, ast.Name) for value in values):
            originals = []
            for value in values:
                originals += self.aliases.get(value.id, (value.id,))  # type: ignore[attr-defined]
            self.aliases[name] = tuple(dict.fromkeys(o for o in originals if o != name))

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        if isinstance(node.target, ast.Name):
            self._mutation(node.target, "augassign", node)
            self._load(node.target.id)
        self.visit(node.target)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
        self.visit(node.annotation)
        target = node.target
        if not isinstance(target, ast.Name):
            self.visit(target)
            return
        if len(self.stack) == 1:
            self.annotations.setdefault(target.id, self._segment(node.annotation))
        if node.value is not None:
            self._bind(target.id)

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self.visit(item.optional_vars)
                if isinstance(item.optional_vars, ast.Name) and len(self.stack) == 1:
                    self.resources.setdefault(item.optional_vars.id)
        for stmt in node.body:
            self.visit(stmt)

    visit_AsyncWith = visit_With

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self.visit(node.target)
        if isinstance(node.target, ast.Name):
            literal = isinstance(node.iter, (ast.List, ast.Tuple, ast.Set))
            self._alias(node.target.id, list(node.iter.elts) if literal else [])  # type: ignore[attr-defined]
        for stmt in node.body + node.orelse:
            self.visit(stmt)

    visit_AsyncFor = visit_For

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            root = alias.name.partition(".")[0]
            self._bind(alias.asname or root, alias.name if alias.asname else root)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = "." * node.level + (node.module or "")
        for alias in node.names:
            if alias.name == "*":
                self._opaque(node, f"`from {module} import *` binds names no one can see")
            else:
                self._bind(alias.asname or alias.name, module)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name:
            self._bind(node.name)
        for stmt in node.body:
            self.visit(stmt)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.pattern is not None:
            self.visit(node.pattern)
        if node.name:
            self._bind(node.name)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self._bind(node.name)

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        for child in node.keys + node.patterns:
            self.visit(child)
        if node.rest:
            self._bind(node.rest)

    # -- scopes --

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator)
        self._signature(node.args, node.returns)
        self._bind(node.name)
        if len(self.stack) == 1:
            self.definitions.setdefault(node.name)
        self._function(node.args, node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._signature(node.args, None)
        self._function(node.args, [node.body])

    def _signature(self, args: ast.arguments, returns: ast.expr | None) -> None:
        """Defaults and annotations: evaluated in the enclosing scope, at definition."""
        every = args.posonlyargs + args.args + args.kwonlyargs
        every += [a for a in (args.vararg, args.kwarg) if a is not None]
        parts = args.defaults + [d for d in args.kw_defaults if d is not None]
        parts += [a.annotation for a in every if a.annotation is not None]
        for part in [*parts, *([returns] if returns is not None else [])]:
            self.visit(part)

    def _function(self, args: ast.arguments, body: list[ast.stmt] | list[ast.expr]) -> None:
        every = args.posonlyargs + args.args + args.kwonlyargs
        names = {a.arg for a in every} | {a.arg for a in (args.vararg, args.kwarg) if a}
        bound, declared = _bindings(body)
        self.stack.append(_Scope("function", (bound | names) - declared, declared))
        for part in body:
            self.visit(part)
        self.stack.pop()

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for part in [*node.decorator_list, *node.bases, *node.keywords]:
            self.visit(part)
        self.stack.append(_Scope("class", set(), _bindings(node.body)[1]))
        for stmt in node.body:
            self.visit(stmt)
        self.stack.pop()
        self._bind(node.name)
        if len(self.stack) == 1:
            self.definitions.setdefault(node.name)

    def _comprehension(self, node: ast.AST, parts: list[ast.expr]) -> None:
        generators: list[ast.comprehension] = node.generators  # type: ignore[attr-defined]
        self.visit(generators[0].iter)  # the first iterable is evaluated outside
        targets = [n for g in generators for n in ast.walk(g.target) if isinstance(n, ast.Name)]
        self.stack.append(_Scope("comprehension", {t.id for t in targets}))
        for i, generator in enumerate(generators):
            if i:
                self.visit(generator.iter)
            self.visit(generator.target)
            for condition in generator.ifs:
                self.visit(condition)
        for part in parts:
            self.visit(part)
        self.stack.pop()

    def visit_ListComp(self, node: ast.ListComp | ast.SetComp | ast.GeneratorExp) -> None:
        self._comprehension(node, [node.elt])

    visit_SetComp = visit_GeneratorExp = visit_ListComp

    def visit_DictComp(self, node: ast.DictComp) -> None:
        self._comprehension(node, [node.key, node.value])

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        """A walrus binds in the nearest scope that is not a comprehension."""
        self.visit(node.value)
        owner = max(i for i, s in enumerate(self.stack) if s.kind != "comprehension")
        saved, self.stack = self.stack, self.stack[: owner + 1]
        try:
            self._bind(node.target.id)
        finally:
            self.stack = saved

    # -- names, mutations, calls --

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._load(node.id)
        elif isinstance(node.ctx, ast.Store):
            self._bind(node.id)
        else:
            self._delete(node.id)

    def visit_Subscript(self, node: ast.Subscript | ast.Attribute) -> None:
        if not isinstance(node.ctx, ast.Load):
            kind = "del" if isinstance(node.ctx, ast.Del) else type(node).__name__.lower()
            self._mutation(node, kind, node)
        self.generic_visit(node)

    visit_Attribute = visit_Subscript

    def visit_Call(self, node: ast.Call) -> None:
        self._file_io(node)
        func = node.func
        if isinstance(func, ast.Name):
            self._builtin_call(node, func.id)
        elif isinstance(func, ast.Attribute):
            if is_get_ipython(func.value):
                self.ipython_calls.add(id(func.value))
                self._ipython_call(node, func.attr)
            elif func.attr in _MUTATORS or _inplace(node) or _torch_inplace(func.attr):
                self._mutation(func.value, "call", node)
        self.generic_visit(node)

    def _file_io(self, node: ast.Call) -> None:
        """Record a call that writes or reads a file named by a literal path."""
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name == "open":
            path, mode = _literal(node, 0, ("file",)), _literal(node, 1, ("mode",)) or "r"
            if path is not None and isinstance(func, ast.Name):
                self._file(path, mode)
            elif isinstance(func, ast.Attribute):  # Path("p").open("w")
                self._file(_path_call(func.value), _literal(node, 0, ("mode",)) or "r")
        elif name in _PATH_METHODS and isinstance(func, ast.Attribute):
            self._file(_path_call(func.value), _PATH_METHODS[name])
        elif name in _WRITES_FIRST:
            self._file(_literal(node, 0, _PATH_KEYWORDS), "w")
        elif name in _WRITES_SECOND:
            self._file(_literal(node, 1, _PATH_KEYWORDS), "w")
        elif name in _READS_FIRST:
            self._file(_literal(node, 0, _PATH_KEYWORDS), "r")

    def _file(self, path: str | None, mode: str) -> None:
        if not path:
            return
        writes = any(flag in mode for flag in "wax+")
        reads = "+" in mode or not any(flag in mode for flag in "wax")
        if writes:
            self.file_writes.setdefault(path)
        # A file the cell wrote itself, read back, is not an input of the cell.
        if reads and (path not in self.file_writes or "+" in mode):
            self.file_reads.setdefault(path)

    def _builtin_call(self, node: ast.Call, name: str) -> None:
        if self._where(name) == "local" or name in self.ever_bound:
            return
        top = not any(s.kind == "function" for s in self.stack)
        if name in ("exec", "eval", "globals") or (
            name in ("locals", "vars") and top and not node.args
        ):
            self._opaque(node, f"{name}() reads or writes names no one can see")
        elif name in ("setattr", "delattr") and node.args:
            self._mutation(node.args[0], "attribute", node)
        elif name == "get_ipython" and id(node) not in self.ipython_calls:
            self._opaque(node, "get_ipython() gives access to the whole namespace")

    def _ipython_call(self, node: ast.Call, attr: str) -> None:
        first = node.args[0] if node.args else None
        value = first.value if isinstance(first, ast.Constant) else None
        if attr in ("system", "getoutput") and isinstance(value, str):
            self._shell_refs(value)
        elif attr == "run_line_magic" and value in PLAIN_MAGICS:
            return
        elif attr == "run_line_magic":
            self._opaque(node, f"the %{value} magic")
        elif attr == "run_cell_magic":
            self._opaque(node, f"the %%{value} cell magic")
        else:
            self._opaque(node, f"get_ipython().{attr}")

    def _shell_refs(self, command: str) -> None:
        """IPython expands ``$name`` and ``{expr}`` in ``!`` commands from the namespace."""
        exprs = re.findall(r"(?<!\$)\$([A-Za-z_]\w*)", command)
        try:
            exprs += [f for _, f, _, _ in string.Formatter().parse(command) if f]
        except ValueError:
            pass
        for text in exprs:
            tree = try_parse(text.strip(), "eval")
            for name in ast.walk(tree) if tree is not None else ():
                if isinstance(name, ast.Name):
                    self._load(name.id)


def _inplace(node: ast.Call) -> bool:
    return any(
        k.arg == "inplace" and isinstance(k.value, ast.Constant) and k.value.value is True
        for k in node.keywords
    )


def _torch_inplace(attr: str) -> bool:
    """PyTorch's convention: ``x.add_(1)`` changes ``x`` (``__iadd__`` is not a call)."""
    return attr.endswith("_") and not attr.startswith("_")


def _literal(node: ast.Call, position: int, keywords: tuple[str, ...]) -> str | None:
    """The string literal passed at ``position`` or as one of ``keywords``, if any."""
    value: ast.expr | None = node.args[position] if len(node.args) > position else None
    if value is None:
        value = next((k.value for k in node.keywords if k.arg in keywords), None)
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return value.value
    return None


def _path_call(node: ast.expr) -> str | None:
    """``"p"`` for ``Path("p")`` / ``pathlib.Path("p")``: the receiver of ``.write_text``..."""
    if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
        "Path",
        "PurePath",
    ):
        return _literal(node, 0, ())
    return None
