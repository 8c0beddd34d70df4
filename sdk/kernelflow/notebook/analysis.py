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
- Mutation through aliases is seen for the two common forms, ``d = df`` and
  ``for d in [train, test]:`` (a literal list of names); not through containers
  (``frames = [a, b]; frames[0]['c'] = 1``) or function arguments.
- Calls that mutate their arguments: ``random.shuffle(xs)``, ``np.copyto(a, b)``,
  ``helper(df)``; only method calls named like mutators (``.append``,
  ``.fit``, ``.add_`` ...) or passing ``inplace=True`` are reported, and they are
  a convention, not a proof (``list.pop`` mutates; so would a ``.pop`` of your
  own that does not).
- Attribute-level data flow: ``obj.a`` is a read of ``obj`` as a whole.
- Control flow: a name bound only in an untaken branch still counts as bound.
- Side effects outside the namespace: environment variables, the working
  directory (``os.chdir``), random state, network. Files are seen only when
  named by a literal path in a recognised call (``df.to_csv("a.csv")``,
  ``pd.read_csv("a.csv")``, ``np.save``/``np.load``, ``joblib.dump``/``load``,
  ``savefig``, ``open("a.txt", "w")``, ``Path("a").write_text``...); a path in a
  variable or an f-string, or a library's own I/O, stays invisible.
"""

from __future__ import annotations

import ast
import functools
import re
import textwrap
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

from kernelflow._core.errors import CellParseError
from kernelflow.notebook._scopes import Mutation, Visitor
from kernelflow.notebook.kernel.syntax import PLAIN_MAGICS, parse_plain, split_lines, transform

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

_HEADER = re.compile(r"\A(?:[ \t]*\r?\n)*%%task(?:[ \t]+(?P<args>[^\r\n]*))?[ \t]*(?:\r?\n|\Z)")


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
    rebinds: names in both ``defs`` and ``refs`` (a new version of a name it reads).
    opaque: why the cell cannot be analysed reliably, or None.
    code_hash: xxh3-128 of the AST without positions: formatting does not count.
    definitions: top-level names bound by ``def`` or ``class`` (and still bound):
        code that later cells may use, not data.
    resources: top-level names bound by ``with ... as name`` (an open file, a
        lock): used in the cell, never kept as data.
    writes, reads: files named by a literal path that the cell writes or reads
        through a recognised call (``to_csv``, ``read_csv``, ``np.save``,
        ``open(..., "w")``, ``Path(...).read_text()``...); see ``_scopes.py``.
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
    definitions: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()


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
    return transform(source, 0)


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
    return _analyze(source, cell, line_offset)


@functools.lru_cache(maxsize=512)
def _analyze(source: str, cell: str, line_offset: int) -> CellAnalysis:
    """Memoized (the result is frozen): re-running a cell does not analyse it again."""
    text, parsed = parse_plain(source)
    tree = _parse(text, source, cell, line_offset, parsed)
    visitor = Visitor(text, line_offset)
    try:
        for stmt in tree.body:
            visitor.visit(stmt)
    except RecursionError:
        raise _parse_error(cell, 1 + line_offset, "too deeply nested to analyse", "") from None
    return _result(visitor, text, _tree_hash(tree))


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


# --- parsing, hashing and the result -------------------------------------------------


def _tree_hash(tree: ast.Module) -> str:
    import xxhash

    return xxhash.xxh3_128(ast.dump(tree, include_attributes=False).encode()).hexdigest()


def _parse(
    text: str, original: str, cell: str, line_offset: int, tree: ast.Module | None = None
) -> ast.Module:
    """Parse and compile ``text``: what does not compile would fail when the cell runs.

    Compiling (with top-level ``await``, which IPython allows) also catches what
    the parser accepts but Python refuses: ``return`` outside a function,
    ``nonlocal`` at top level, a ``global`` after use.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text) if tree is None else tree
            flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
            compile(tree, f"<cell {cell}>", "exec", flags=flags, dont_inherit=True)
    except SyntaxError as err:
        line = err.lineno or 1
        ours, theirs = split_lines(text), split_lines(original)
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


def _result(visitor: Visitor, source: str, code_hash: str) -> CellAnalysis:
    """The analysis once the whole cell is walked, when "read later" can be decided.

    A name read only inside a function body, or changed there, belongs to
    another cell unless this cell binds it somewhere at top level.
    """
    refs = tuple(n for n, now in visitor.reads.items() if now or n not in visitor.ever_bound)
    mutations = [
        m for m, later in visitor.mutations if not later or m.name not in visitor.ever_bound
    ]
    return CellAnalysis(
        source=source,
        defs=tuple(visitor.defs),
        refs=refs,
        annotations=dict(visitor.annotations),
        imports=dict(visitor.imports),
        mutations=tuple(mutations),
        rebinds=tuple(n for n in visitor.defs if n in refs),
        opaque="; ".join(dict.fromkeys(visitor.opaque)) or None,
        code_hash=code_hash,
        definitions=tuple(n for n in visitor.definitions if n in visitor.defs),
        writes=tuple(visitor.file_writes),
        reads=tuple(visitor.file_reads),
        resources=tuple(n for n in visitor.resources if n in visitor.defs),
    )
