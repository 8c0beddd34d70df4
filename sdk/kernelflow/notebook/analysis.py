"""What a notebook cell reads, binds and changes, found by reading its code.

The notebook front end turns cells into tasks by their data: a task's inputs are
the names its cell reads that another cell produces, its outputs the names it
binds. This module answers those questions for one cell, without running it, and
gives the cell a code hash that ignores comments and formatting.

A cell that is not plain Python is first passed through IPython's own input
transformer, so that magics and shell escapes become the Python a kernel would
run (``x = !ls`` becomes ``x = get_ipython().getoutput('ls')``); plain Python
skips it (IPython leaves it unchanged) and so never imports IPython. Magics
whose argument is code (``%time``, ``%timeit``, ``%prun``, ``%%capture``) are
then unwrapped so that the code inside them is analysed too. Scopes follow
marimo's ``ScopedVisitor``: functions, lambdas, classes and comprehensions each
get a scope; a function body's free names surface as reads of the cell.

Magics
------
- ``%time``, ``%prun`` (line and cell forms): their code runs in the namespace,
  so it is unwrapped as is: ``%time y = f(x)`` binds ``y`` and reads ``x``.
- ``%timeit``: IPython runs the statement inside a private function, so its
  assignments bind nothing; it is unwrapped as ``def _timeit(): CODE`` (a
  private name the notebook layer ignores), which keeps its reads visible.
- ``%%capture [out]``: unwrapped as ``with capture_output() as out:`` + body.
  IPython has no ``%capture`` line magic, so that form is an unknown magic.
- ``!cmd`` binds nothing; ``{expr}`` and ``$name`` in the command are reads.
- ``%matplotlib inline``, ``%load_ext ...`` and the other entries of
  ``PLAIN_MAGICS`` carry no code and change no variable: they are harmless.
- Any other magic (``%%bash``, ``%%html``, ``%run``, ``%store``...) makes the
  cell *opaque*, as do ``import *``, ``exec``/``eval``, ``globals()`` and
  top-level ``locals()``/``vars()``, and other uses of ``get_ipython()``.
- ``y = x?`` is IPython help syntax: IPython rewrites the whole line into
  ``%pinfo x``, so the assignment is lost. The cell binds no ``y`` and reads no
  ``x``; a cell that reads ``y`` fails at build time with "nothing produces y".

Simplifications
---------------
- Flow-insensitive within a statement list: a name bound in any branch counts
  as bound from then on; ``del x`` of a name the cell bound removes it from
  the defs (``tmp = ...; del tmp`` keeps ``tmp`` private).
- A function or lambda body runs later, so its free names are reads of the cell
  unless the cell binds them anywhere at top level. Comprehensions (generator
  expressions included) and class bodies run at once, in order.
- ``except E as e`` counts as a def, although Python unbinds ``e`` after the
  handler.
- ``global x`` in a function makes ``x`` a def when that function binds ``x``.

What the analysis cannot see
----------------------------
- Dynamic name access: ``globals()[name]``, ``exec``, ``eval``, ``setattr`` with
  a computed name, ``importlib`` and ``__import__`` results, ``%run``, ``%store``:
  the cell is reported opaque where this is recognisable, silently wrong where
  it is not (``sys.modules['__main__'].x = 1``).
- Mutation through aliases: ``d = df; d['c'] = 1`` changes ``df``, but only
  ``d``, which the cell bound, is seen.
- Calls that mutate their arguments: ``random.shuffle(xs)``, ``np.copyto(a, b)``,
  ``helper(df)``; only method calls named like mutators (``.append``,
  ``.fit``, ``.add_`` ...) or passing ``inplace=True`` are reported, and they are
  a convention, not a proof (``list.pop`` mutates; so would a ``.pop`` of your
  own that does not).
- Attribute-level data flow: ``obj.a`` is a read of ``obj`` as a whole.
- Control flow: a name bound only in an untaken branch still counts as bound.
- Side effects outside the namespace: files, environment variables, the
  working directory (``os.chdir``), random state, network.
"""

from __future__ import annotations

import ast
import builtins
import functools
import io
import keyword
import re
import string
import textwrap
import tokenize
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from kernelflow.errors import CellParseError

__all__ = [
    "PLAIN_MAGICS",
    "CellAnalysis",
    "Mutation",
    "analyze_cell",
    "module_of",
    "normalized_hash",
    "strip_task_header",
    "transform_ipython",
]

#: Line magics that carry no code and touch no variable: a cell using them
#: stays analysable (help magics included: ``x?`` only prints).
PLAIN_MAGICS = frozenset(
    "matplotlib load_ext reload_ext unload_ext autoreload aimport config precision pprint "  # noqa: SIM905
    "xmode colors autoawait pip conda mamba micromamba uv pinfo pinfo2 pdef pdoc psource "
    "pfile psearch who whos lsmagic magic".split()
)

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
_OPTIONS = {"timeit": "n:r:tcp:qov:", "prun": "D:l:rs:T:q", "time": ""}
_CODE_LINE_MAGICS = frozenset(_OPTIONS)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
_MAX_MAGIC_DEPTH = 16
_HEADER = re.compile(r"\A(?:[ \t]*\r?\n)*%%task(?:[ \t]+(?P<args>[^\r\n]*))?[ \t]*(?:\r?\n|\Z)")
_LINES = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


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


@dataclass(frozen=True)
class CellAnalysis:
    """Everything the notebook layer needs to know about one cell's code.

    The mappings are plain dicts (picklable) and must be treated as read-only;
    the module docstring says what each field cannot capture.

    Attributes
    ----------
    source: the Python after IPython's transformation, magics unwrapped.
    defs: top-level names bound and still bound at the end, in first-binding order.
    refs: free names read (builtins excluded), in first-read order; a name read
        before the cell binds it (``x = x + 1``) is a ref too.
    annotations: top-level annotated name -> annotation source text.
    imports: name bound by an import -> module (``"np" -> "numpy"``).
    mutations: in-place changes of values the cell did not bind.
    rebinds: names in both ``defs`` and ``refs`` ("assign to a new name").
    opaque: why the cell cannot be analysed reliably, or None.
    code_hash: xxh3-128 of the AST without positions: formatting does not count.
    """

    source: str
    defs: tuple[str, ...]
    refs: tuple[str, ...]
    annotations: Mapping[str, str] = field(hash=False)
    imports: Mapping[str, str] = field(hash=False)
    mutations: tuple[Mutation, ...]
    rebinds: tuple[str, ...]
    opaque: str | None
    code_hash: str


def strip_task_header(cell_source: str) -> tuple[str | None, str]:
    """Split ``%%task NAME opts`` from a cell; ``(None, source)`` when there is none.

    The header must go before IPython sees the cell: IPython would turn the
    whole cell into one ``run_cell_magic('task', ...)`` call, hiding the body in
    a string. Leading blank lines are allowed (IPython drops them too). The body
    starts on the line after the header; pass ``line_offset`` = the number of
    lines removed to :func:`analyze_cell` so that reported lines match the cell.
    """
    match = _HEADER.match(cell_source)
    if match is None:
        return None, cell_source
    return (match.group("args") or "").strip(), cell_source[match.end() :]


def transform_ipython(source: str) -> str:
    """The Python a kernel would run for ``source``, with code-carrying magics unwrapped.

    Line numbers are kept wherever possible (a ``%%time`` header becomes a
    comment; leading blank lines, which IPython drops, are put back) so that
    errors and mutations point at the user's lines.
    """
    return _transform(source, 0)


def analyze_cell(source: str, *, cell: str = "cell", line_offset: int = 0) -> CellAnalysis:
    """Defs, refs, types, mutations and code hash of one cell body.

    Parameters
    ----------
    source:
        The cell body, without its ``%%task`` header.
    cell:
        The cell's name, used in error messages.
    line_offset:
        Added to every reported line: the number of lines stripped above the body
        (1 for a ``%%task`` header), so that lines match what the user sees.

    Raises
    ------
    CellParseError
        The cell is not valid Python after IPython's transformation (or is too
        deeply nested to analyse). It names the cell, the line and its text.
    """
    text = transform_ipython(source)
    tree = _parse(text, source, cell, line_offset)
    visitor = _Visitor(text, line_offset)
    try:
        for stmt in tree.body:
            visitor.visit(stmt)
    except RecursionError:
        raise _parse_error(cell, 1 + line_offset, "too deeply nested to analyse", "") from None
    return visitor.result(text, _tree_hash(tree))


def normalized_hash(source: str) -> str:
    """Code hash of any Python source (setup code, a helper's ``inspect`` source).

    Same rules as :attr:`CellAnalysis.code_hash`: comments, blank lines and
    formatting do not count. The source is dedented first, because methods and
    nested functions come indented from ``inspect.getsource``.
    """
    text = transform_ipython(textwrap.dedent(source))
    return _tree_hash(_parse(text, source, "<source>", 0))


def module_of(name: str, analysis: CellAnalysis) -> str | None:
    """Module that ``name`` (or the root of a dotted ``name``) was imported from.

    ``module_of("np.linalg", a)`` is ``"numpy"`` after ``import numpy as np``.
    The cache salts a key with the version of ``result.partition(".")[0]``.
    """
    return analysis.imports.get(name.partition(".")[0])


# --- parsing and hashing ---------------------------------------------------------


def _tree_hash(tree: ast.Module) -> str:
    import xxhash

    return xxhash.xxh3_128(ast.dump(tree, include_attributes=False).encode()).hexdigest()


def _parse(text: str, original: str, cell: str, line_offset: int) -> ast.Module:
    """Parse and compile ``text``: what does not compile would fail when the cell runs.

    Compiling (with top-level ``await``, which IPython allows) also catches what
    the parser accepts but Python refuses: ``return`` outside a function,
    ``nonlocal`` at top level, a ``global`` after use.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text)
            flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
            compile(tree, f"<cell {cell}>", "exec", flags=flags, dont_inherit=True)
    except SyntaxError as err:
        line = err.lineno or 1
        ours, theirs = _split_lines(text), _split_lines(original)
        lines = theirs if len(theirs) == len(ours) else ours
        shown = lines[line - 1] if 0 < line <= len(lines) else (err.text or "")
        raise _parse_error(cell, line + line_offset, err.msg, shown.strip()) from None
    except (ValueError, RecursionError, OverflowError) as err:
        raise _parse_error(cell, 1 + line_offset, str(err) or type(err).__name__, "") from None
    return tree


def _parse_error(cell: str, line: int, reason: str, text: str) -> CellParseError:
    message = f"cell {cell!r} line {line} does not parse: {reason}"
    if text:
        message += f"\n    {text}"
    return CellParseError(
        message,
        fix="correct the Python on that line (magics and `!` commands are allowed; "
        "everything else must be valid Python)",
        cell=cell,
        line=line,
        text=text,
    )


def _split_lines(text: str) -> list[str]:
    """Lines as Python's parser counts them (``\\r``, ``\\n``, ``\\r\\n``; not ``\\f``)."""
    return _LINES.findall(text)


# --- IPython transformation ------------------------------------------------------


@functools.cache
def _transformer() -> object:
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager()


def _transform(source: str, depth: int) -> str:
    if _try_parse(source) is not None:
        # Valid Python is left alone by IPython's transforms (escapes are found by
        # tokens, at line starts); skipping them saves ~1 ms a cell and an IPython
        # import in workers. Calls to get_ipython() written out are still unwrapped.
        return _unwrap_magics(source, depth)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # IPython warns about odd line endings
            text = _transformer().transform_cell(source)  # type: ignore[attr-defined]
    except Exception:  # IPython gave up (tokenizer errors): let Python's parser report it
        return source
    dropped = _leading_blank(source) - _leading_blank(text)
    return _unwrap_magics("\n" * max(dropped, 0) + text, depth)


def _unwrap_magics(text: str, depth: int) -> str:
    if depth >= _MAX_MAGIC_DEPTH or "get_ipython()" not in text:
        return text
    tree = _try_parse(text)
    return text if tree is None else _splice(text, list(_magic_edits(tree, depth)))


def _leading_blank(text: str) -> int:
    count = 0
    for line in _split_lines(text):
        if line.strip():
            break
        count += 1
    return count


def _magic_edits(tree: ast.Module, depth: int) -> Iterable[tuple[ast.AST, str]]:
    """(node, replacement) for each code-carrying magic call in ``tree``."""
    done: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and (magic := _magic_call(node.value)):
            done.add(id(node.value))
            kind, name, line, body = magic
            if kind == "cell" and node not in tree.body:
                continue
            new = _unwrap(kind, name, line, body, depth, statement=True)
            if new is not None:
                yield node, new
    for node in ast.walk(tree):
        if id(node) not in done and (magic := _magic_call(node)) and magic[0] == "line":
            new = _unwrap(*magic, depth, statement=False)
            if new is not None:
                yield node, new


def _magic_call(node: ast.AST) -> tuple[str, str, str, str] | None:
    """``("line"|"cell", name, line, body)`` for ``get_ipython().run_*_magic(...)``."""
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        return None
    kind = {"run_line_magic": "line", "run_cell_magic": "cell"}.get(node.func.attr)
    args = node.args
    if kind is None or not _is_get_ipython(node.func.value) or node.keywords:
        return None
    if len(args) != (2 if kind == "line" else 3):
        return None
    if not all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in args):
        return None
    values = [a.value for a in args]  # type: ignore[attr-defined]
    return kind, values[0], values[1], values[2] if kind == "cell" else ""


def _is_get_ipython(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "get_ipython"
        and not node.args
    )


def _unwrap(
    kind: str, name: str, line: str, body: str, depth: int, *, statement: bool
) -> str | None:
    """Python standing for one magic, or None to leave it (and the cell opaque)."""
    if kind == "line":
        if name not in _CODE_LINE_MAGICS:
            return None
        code = _transform(_split_options(line, name)[1], depth + 1).strip()
        if not statement:
            return f"({code})" if _is_expression(code) else None
        if name != "timeit":
            return code or "pass"
        simple = "\n" not in code and _only_simple(code)
        return f"def _timeit(): {code or 'pass'}" if simple else _block("def _timeit():", code)
    header = f"# %%{name} {' '.join(line.split())}".rstrip()
    if name in ("time", "prun"):
        code = _split_options(line, name)[1]
        return f"{code or header}\n{_transform(body, depth + 1)}".rstrip()
    if name == "timeit":
        options, setup = _split_options(line, name)
        code = _transform(body, depth + 1).rstrip("\n") + "\n" + _transform(setup, depth + 1)
        return _block(f"def _timeit():  # %%timeit {options}".rstrip(), code)
    if name == "capture":
        target = [w for w in line.split() if not w.startswith("-")]
        if len(target) > 1 or (target and not _is_name(target[0])):
            return None
        code = _transform(body, depth + 1)
        if not target:
            return f"{header}\n{code}".rstrip()
        opener = "with __import__('IPython.utils.capture', fromlist=['_']).capture_output()"
        return _block(f"{opener} as {target[0]}:  {header}", code)
    return None


def _is_name(word: str) -> bool:
    return word.isidentifier() and not keyword.iskeyword(word)


def _split_options(line: str, magic: str) -> tuple[str, str]:
    """(options, code) of a magic's argument line, getopt-style as IPython parses it."""
    spec = _OPTIONS.get(magic, "")
    pos = 0
    while match := re.match(r"\s*(-\S*)", line[pos:]):
        token = match.group(1)
        if token == "--no-raise-error" and magic == "time":
            pos += match.end()
            continue
        if token == "--":
            pos += match.end()
            break
        needs_value = _flag_needs_value(token, spec)
        if needs_value is None:
            break
        pos += match.end()
        if needs_value:
            value = re.match(r"\s*\S+", line[pos:])
            if value is None:
                break
            pos += value.end()
    return line[:pos].strip(), line[pos:].strip()


def _flag_needs_value(token: str, spec: str) -> bool | None:
    """For ``-abc``: None if not options, True if the last flag takes the next word."""
    if len(token) < 2 or token.startswith("--"):
        return None
    for i, letter in enumerate(token[1:], start=1):
        where = spec.find(letter)
        if where < 0 or letter == ":":
            return None
        if spec[where + 1 : where + 2] == ":":
            return i == len(token) - 1
    return False


def _block(header: str, code: str) -> str:
    """``header`` followed by ``code`` as its indented block (``pass`` if empty)."""
    lines = [header]
    if code.strip():
        lines.append(_indent(code.strip("\n"), "    "))
    if not _has_statement(code):
        lines.append("    pass")
    return "\n".join(lines)


def _indent(code: str, prefix: str) -> str:
    """Indent ``code`` without touching the inside of multi-line strings."""
    inside: set[int] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(code).readline):
            if token.type == tokenize.STRING and token.end[0] > token.start[0]:
                inside.update(range(token.start[0] + 1, token.end[0] + 1))
    except (tokenize.TokenError, SyntaxError):
        pass
    lines = code.split("\n")
    return "\n".join(
        line if n in inside or not line.strip() else prefix + line
        for n, line in enumerate(lines, start=1)
    )


def _try_parse(code: str, mode: str = "exec") -> ast.AST | None:
    """The tree of ``code``, or None: for probing, where a bad parse is an answer."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(code, mode=mode)
    except (SyntaxError, ValueError, RecursionError, OverflowError):
        return None


def _has_statement(code: str) -> bool:
    tree = _try_parse(code)
    return tree is None or bool(tree.body)  # type: ignore[attr-defined]


def _is_expression(code: str) -> bool:
    return _try_parse(code, "eval") is not None


def _only_simple(code: str) -> bool:
    tree = _try_parse(code)
    return tree is not None and not any(hasattr(s, "body") for s in tree.body)  # type: ignore[attr-defined]


def _splice(text: str, edits: list[tuple[ast.AST, str]]) -> str:
    """Replace each node's source span (byte columns, as ast reports them)."""
    lines = _split_lines(text)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(lineno: int, col: int) -> int:
        line = lines[lineno - 1]
        return starts[lineno - 1] + len(line.encode()[:col].decode(errors="ignore"))

    spans = []
    for node, new in edits:
        start = offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        spans.append((start, offset(node.end_lineno, node.end_col_offset), new))  # type: ignore[attr-defined]
    for start, end, new in sorted(spans, reverse=True):
        text = text[:start] + new + text[end:]
    return text


# --- scopes, defs and refs -------------------------------------------------------


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


class _Visitor(ast.NodeVisitor):
    """Walks a cell's top-level statements in execution order.

    ``defs`` holds the names bound at top level and still bound; ``reads`` maps
    each free name to True when the top level read it before binding it, False
    when only a function body did (decided against ``ever_bound`` at the end).
    """

    def __init__(self, source: str, line_offset: int) -> None:
        self.lines = _split_lines(source)
        self.offset = line_offset
        self.stack = [_Scope("module")]
        self.defs: dict[str, None] = {}
        self.ever_bound: set[str] = set()
        self.reads: dict[str, bool] = {}
        self.annotations: dict[str, str] = {}
        self.imports: dict[str, str] = {}
        self.mutations: list[tuple[Mutation, bool]] = []
        self.opaque: list[str] = []
        self.ipython_calls: set[int] = set()

    def result(self, source: str, code_hash: str) -> CellAnalysis:
        refs = tuple(n for n, now in self.reads.items() if now or n not in self.ever_bound)
        mutations = [m for m, later in self.mutations if not later or m.name not in self.ever_bound]
        return CellAnalysis(
            source=source,
            defs=tuple(self.defs),
            refs=refs,
            annotations=dict(self.annotations),
            imports=dict(self.imports),
            mutations=tuple(mutations),
            rebinds=tuple(n for n in self.defs if n in refs),
            opaque="; ".join(dict.fromkeys(self.opaque)) or None,
            code_hash=code_hash,
        )

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

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self.visit(node.target)
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
        func = node.func
        if isinstance(func, ast.Name):
            self._builtin_call(node, func.id)
        elif isinstance(func, ast.Attribute):
            if _is_get_ipython(func.value):
                self.ipython_calls.add(id(func.value))
                self._ipython_call(node, func.attr)
            elif func.attr in _MUTATORS or _inplace(node) or _torch_inplace(func.attr):
                self._mutation(func.value, "call", node)
        self.generic_visit(node)

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
            tree = _try_parse(text.strip(), "eval")
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
