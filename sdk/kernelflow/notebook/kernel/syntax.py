"""IPython syntax to plain Python, so that a cell's code can be read by ``ast``.

Magics and shell escapes are not Python: IPython's own input transformer turns
them into the calls a kernel would run, and the magics whose argument is code
(``%time``, ``%timeit``, ``%prun``, ``%%capture``) are then unwrapped into that
code, so the analysis sees what they bind and read. The rules are documented in
:mod:`kernelflow.notebook.analysis`; this module keeps the cell's line numbers
intact while it rewrites. IPython is imported only for a cell that is not plain
Python.
"""

from __future__ import annotations

import ast
import functools
import io
import keyword
import re
import tokenize
import warnings
from collections.abc import Iterable

#: Line magics that carry no code and touch no variable: a cell using them
#: stays analysable (help magics included: ``x?`` only prints).
PLAIN_MAGICS = frozenset(
    "matplotlib load_ext reload_ext unload_ext autoreload aimport config precision pprint "  # noqa: SIM905
    "xmode colors autoawait pip conda mamba micromamba uv pinfo pinfo2 pdef pdoc psource "
    "pfile psearch who whos lsmagic magic".split()
)

_OPTIONS = {"timeit": "n:r:tcp:qov:", "prun": "D:l:rs:T:q", "time": ""}
_CODE_LINE_MAGICS = frozenset(_OPTIONS)
_MAX_MAGIC_DEPTH = 16
_LINES = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def split_lines(text: str) -> list[str]:
    """Lines as Python's parser counts them (``\\r``, ``\\n``, ``\\r\\n``; not ``\\f``)."""
    return _LINES.findall(text)


@functools.cache
def _transformer() -> object:
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager()


def parse_plain(source: str) -> tuple[str, ast.Module | None]:
    """What :func:`transform` gives, and its tree when the source was left as it is
    (plain Python without magic calls): the caller need not parse it again."""
    tree = try_parse(source)
    if tree is not None and "get_ipython()" not in source:
        return source, tree  # type: ignore[return-value]
    return transform(source, 0), None


def transform(source: str, depth: int) -> str:
    if try_parse(source) is not None:
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
    tree = try_parse(text)
    return text if tree is None else _splice(text, list(_magic_edits(tree, depth)))


def _leading_blank(text: str) -> int:
    count = 0
    for line in split_lines(text):
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
    if kind is None or not is_get_ipython(node.func.value) or node.keywords:
        return None
    if len(args) != (2 if kind == "line" else 3):
        return None
    if not all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in args):
        return None
    values = [a.value for a in args]  # type: ignore[attr-defined]
    return kind, values[0], values[1], values[2] if kind == "cell" else ""


def is_get_ipython(node: ast.AST) -> bool:
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
        code = transform(_split_options(line, name)[1], depth + 1).strip()
        if not statement:
            return f"({code})" if _is_expression(code) else None
        if name != "timeit":
            return code or "pass"
        simple = "\n" not in code and _only_simple(code)
        return f"def _timeit(): {code or 'pass'}" if simple else _block("def _timeit():", code)
    header = f"# %%{name} {' '.join(line.split())}".rstrip()
    if name in ("time", "prun"):
        code = _split_options(line, name)[1]
        return f"{code or header}\n{transform(body, depth + 1)}".rstrip()
    if name == "timeit":
        options, setup = _split_options(line, name)
        code = transform(body, depth + 1).rstrip("\n") + "\n" + transform(setup, depth + 1)
        return _block(f"def _timeit():  # %%timeit {options}".rstrip(), code)
    if name == "capture":
        target = [w for w in line.split() if not w.startswith("-")]
        if len(target) > 1 or (target and not _is_name(target[0])):
            return None
        code = transform(body, depth + 1)
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


def try_parse(code: str, mode: str = "exec") -> ast.AST | None:
    """The tree of ``code``, or None: for probing, where a bad parse is an answer."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(code, mode=mode)
    except (SyntaxError, ValueError, RecursionError, OverflowError):
        return None


def _has_statement(code: str) -> bool:
    tree = try_parse(code)
    return tree is None or bool(tree.body)  # type: ignore[attr-defined]


def _is_expression(code: str) -> bool:
    return try_parse(code, "eval") is not None


def _only_simple(code: str) -> bool:
    tree = try_parse(code)
    return tree is not None and not any(hasattr(s, "body") for s in tree.body)  # type: ignore[attr-defined]


def _splice(text: str, edits: list[tuple[ast.AST, str]]) -> str:
    """Replace each node's source span (byte columns, as ast reports them)."""
    lines = split_lines(text)
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
