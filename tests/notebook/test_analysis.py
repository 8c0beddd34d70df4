"""Cell analysis: what a notebook cell reads, binds and changes, and its code hash."""

from __future__ import annotations

import ast
import pickle
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kernelflow.errors import CellParseError
from kernelflow.notebook.analysis import (
    CellAnalysis,
    Mutation,
    analyze_cell,
    module_of,
    normalized_hash,
    strip_task_header,
    transform_ipython,
)


def cell(source: str, **kwargs: object) -> CellAnalysis:
    return analyze_cell(textwrap.dedent(source), **kwargs)  # type: ignore[arg-type]


# --- the %%task header --------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("%%task load --cache\nx = 1\n", ("load --cache", "x = 1\n")),
        ("\n  \n%%task load\nx = 1", ("load", "x = 1")),
        ("%%task\n", ("", "")),
        ("%%tasks load\nx = 1", (None, "%%tasks load\nx = 1")),
        ("x = 1\n%%task load\n", (None, "x = 1\n%%task load\n")),
        ("%%time\nx = 1", (None, "%%time\nx = 1")),
    ],
)
def test_strip_task_header(source: str, expected: tuple[str | None, str]) -> None:
    assert strip_task_header(source) == expected


def test_header_line_offset_makes_lines_match_the_cell() -> None:
    header, body = strip_task_header("%%task clean\nx = 1\ndf['c'] = x\n")
    assert header == "clean"
    (mutation,) = analyze_cell(body, cell="clean", line_offset=1).mutations
    assert mutation.line == 3


# --- scopes -------------------------------------------------------------------------


def test_names_bound_in_nested_scopes_are_not_defs() -> None:
    result = cell(
        """
        def f(a, *args, b=1, **kw):
            local = a
            return local
        class C:
            attr = 1
            def method(self):
                inner = 2
        g = lambda p: p + 1
        squares = [i * i for i in range(3)]
        table = {k: v for k, v in pairs}
        """
    )
    assert result.defs == ("f", "C", "g", "squares", "table")
    assert result.refs == ("pairs",)


def test_function_free_names_are_refs_unless_bound_at_top_level_anywhere() -> None:
    result = cell(
        """
        def f():
            return scale * offset
        offset = 1
        """
    )
    assert result.refs == ("scale",)
    assert result.defs == ("f", "offset")


def test_function_locals_follow_python_not_statement_order() -> None:
    # `total` is local to f (assigned in it), so reading it first is not a ref.
    result = cell(
        """
        def f():
            print(total)
            total = 0
        """
    )
    assert result.refs == ()


def test_read_before_bound_at_top_level_is_a_ref_and_a_rebind() -> None:
    assert cell("x = x + 1").refs == ("x",)
    assert cell("x = x + 1").rebinds == ("x",)
    bound_first = cell("x = 1\nx = x + 1")
    assert bound_first.refs == ()
    assert bound_first.rebinds == ()


def test_augmented_assignment_of_a_ref_is_a_rebind() -> None:
    result = cell("counter += 1")
    assert result.defs == ("counter",)
    assert result.rebinds == ("counter",)


def test_global_declaration_in_function_makes_a_def() -> None:
    result = cell(
        """
        def setup():
            global config
            config = {"debug": True}
        """
    )
    assert result.defs == ("setup", "config")
    assert result.refs == ()


def test_nonlocal_resolves_to_the_enclosing_function() -> None:
    result = cell(
        """
        def outer():
            n = 0
            def inner():
                nonlocal n
                n += 1
            return inner
        """
    )
    assert result.defs == ("outer",)
    assert result.refs == ()


def test_walrus_in_comprehension_binds_in_the_cell() -> None:
    result = cell("hits = [last := f(v) for v in values if v]")
    assert result.defs == ("last", "hits")
    assert set(result.refs) == {"f", "values"}


def test_walrus_in_comprehension_inside_a_function_stays_local() -> None:
    result = cell("def g(xs):\n    return [y := x for x in xs], y")
    assert result.defs == ("g",)
    assert result.refs == ()


def test_comprehension_variables_do_not_leak_but_first_iterable_is_outside() -> None:
    result = cell("out = [x for x in x]")
    assert result.defs == ("out",)
    assert result.refs == ("x",)


def test_except_handler_name_is_a_def() -> None:
    result = cell(
        """
        try:
            value = parse(text)
        except ValueError as err:
            value = None
        """
    )
    assert result.defs == ("value", "err")
    assert set(result.refs) == {"parse", "text"}


def test_del_of_own_name_removes_the_def_and_del_of_another_is_a_ref() -> None:
    own = cell("tmp = load()\ndf = tmp.copy()\ndel tmp")
    assert own.defs == ("df",)
    assert own.refs == ("load",)
    other = cell("del big")
    assert other.defs == ()
    assert other.refs == ("big",)


def test_match_captures_are_defs() -> None:
    result = cell(
        """
        match event:
            case {"kind": "move", **extra}:
                pass
            case [first, *rest]:
                pass
            case Point(x=px) as point:
                pass
            case Color.RED:
                pass
        """
    )
    assert result.defs == ("extra", "first", "rest", "px", "point")
    assert result.refs == ("event", "Point", "Color")


def test_for_and_with_targets_are_defs() -> None:
    result = cell(
        """
        for i, (a, b) in enumerate(pairs):
            pass
        with open(path) as fh, lock:
            data = fh.read()
        """
    )
    assert result.defs == ("i", "a", "b", "fh", "data")
    assert result.refs == ("pairs", "path", "lock")


def test_imports_define_names_and_record_modules() -> None:
    result = cell(
        """
        import os.path
        import numpy as np
        import xml.etree.ElementTree as ET
        from sklearn.linear_model import LinearRegression as LR
        from . import sibling
        """
    )
    assert result.defs == ("os", "np", "ET", "LR", "sibling")
    assert result.imports == {
        "os": "os",
        "np": "numpy",
        "ET": "xml.etree.ElementTree",
        "LR": "sklearn.linear_model",
        "sibling": ".",
    }
    assert module_of("np", result) == "numpy"
    assert module_of("np.linalg.norm", result) == "numpy"
    assert module_of("pd", result) is None


def test_rebinding_an_import_forgets_its_module() -> None:
    result = cell("import numpy as np\nnp = None")
    assert result.imports == {}


def test_class_bodies_do_not_leak_into_methods() -> None:
    result = cell(
        """
        class Model:
            rate = 0.1
            scaled = rate * 2
            def step(self):
                return rate
        """
    )
    assert result.defs == ("Model",)
    # `rate` in the method is a module-level lookup, not the class attribute.
    assert result.refs == ("rate",)


def test_class_body_runs_at_once_so_later_bindings_do_not_count() -> None:
    result = cell("class A:\n    size = n\nn = 3")
    assert result.refs == ("n",)


def test_decorators_and_defaults_are_evaluated_in_the_enclosing_scope() -> None:
    result = cell(
        """
        @cache(maxsize=limit)
        def f(a=default, *, b=other):
            return a
        default = 1
        """
    )
    assert result.refs == ("cache", "limit", "default", "other")
    assert result.rebinds == ("default",)


def test_signature_annotations_are_refs() -> None:
    result = cell("def f(df: pd.DataFrame, *rows: Row) -> Summary:\n    return df")
    assert result.refs == ("pd", "Row", "Summary")


def test_lambda_body_free_names_are_refs() -> None:
    result = cell("key = lambda row: row[column] * weight")
    assert result.refs == ("column", "weight")


def test_builtins_are_never_refs_and_private_names_are() -> None:
    result = cell("print(len(_cache), sorted(items), display, get_ipython)")
    assert result.refs == ("_cache", "items")


def test_shadowed_builtin_bound_in_the_cell_is_not_a_ref() -> None:
    result = cell("list = [1]\nprint(list)")
    assert result.defs == ("list",)
    assert result.refs == ()


# --- annotations ----------------------------------------------------------------------


def test_annotations_record_their_source_text() -> None:
    result = cell(
        """
        df: pd.DataFrame = load()
        total: "float" = 0.0
        pending: list[int]
        def f():
            inner: int = 1
        """
    )
    assert result.annotations == {
        "df": "pd.DataFrame",
        "total": '"float"',
        "pending": "list[int]",
    }
    # An annotation without a value binds nothing.
    assert result.defs == ("df", "total", "f")


# --- magics ---------------------------------------------------------------------------


def test_time_magic_unwraps_its_code() -> None:
    result = cell("%time y = f(x)")
    assert result.defs == ("y",)
    assert result.refs == ("f", "x")
    assert result.opaque is None


def test_time_cell_magic_keeps_line_numbers() -> None:
    source = "%%time\nclean = raw.dropna()\nraw['c'] = 1\n"
    result = analyze_cell(source)
    assert result.defs == ("clean",)
    assert result.mutations[0].line == 3
    assert transform_ipython(source).splitlines()[2] == "raw['c'] = 1"


def test_nested_code_magics_are_unwrapped() -> None:
    result = cell("%%time\n%time y = x\n%prun -s cumulative z = g(y)\n")
    assert result.defs == ("y", "z")
    assert result.refs == ("x", "g")


def test_line_magic_in_an_expression_is_unwrapped() -> None:
    result = cell("best = %time search(grid)")
    assert result.defs == ("best",)
    assert result.refs == ("search", "grid")


def test_timeit_reads_but_binds_nothing_public() -> None:
    # IPython runs %timeit code in a private function: `y` is never bound.
    line = cell("%timeit -n 10 -r 2 y = f(x)")
    assert [d for d in line.defs if not d.startswith("_")] == []
    assert line.refs == ("f", "x")
    cell_form = cell("%%timeit -n1 prepare(data)\ny = f(x)\n")
    assert [d for d in cell_form.defs if not d.startswith("_")] == []
    assert set(cell_form.refs) == {"f", "x", "prepare", "data"}


def test_capture_cell_magic_binds_its_output_name() -> None:
    result = cell("%%capture --no-stderr out\nprint(x)\nz = 1\n")
    assert result.defs == ("out", "z")
    assert result.refs == ("x",)


def test_capture_body_keeps_multiline_strings_intact() -> None:
    source = "%%capture out\ntext = '''line one\nline two'''\n"
    tree = ast.parse(transform_ipython(source))
    constants = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]
    assert "line one\nline two" in constants


def test_shell_assignment_defines_and_bare_shell_is_neither() -> None:
    assigned = cell("files = !ls")
    assert assigned.defs == ("files",)
    assert assigned.refs == ()
    assert "getoutput" in assigned.source
    bare = cell("!ls -la")
    assert (bare.defs, bare.refs, bare.opaque) == ((), (), None)


def test_shell_command_expansions_are_refs() -> None:
    result = cell("!cp {src} $dest && awk '{print $1}' log")
    assert result.refs == ("dest", "src")


def test_plain_line_magics_are_not_opaque() -> None:
    result = cell("%matplotlib inline\n%load_ext autoreload\nx = 1")
    assert result.opaque is None
    assert result.defs == ("x",)


@pytest.mark.parametrize("magic", ["%%bash\nls\n", "%%html\n<b>hi</b>\n", "%%writefile a.py\nx\n"])
def test_other_cell_magics_make_the_cell_opaque(magic: str) -> None:
    name = magic.split()[0]
    result = analyze_cell(magic)
    assert result.opaque is not None
    assert name in result.opaque


def test_unknown_line_magics_make_the_cell_opaque() -> None:
    result = cell("%run helpers.py\nx = helper()")
    assert result.opaque is not None
    assert "%run" in result.opaque


def test_capture_has_no_line_form() -> None:
    # IPython 9 has no %capture line magic: the cell would fail in the kernel.
    assert cell("%capture y = 2").opaque is not None


def test_help_syntax_loses_the_assignment() -> None:
    # IPython turns `y = x?` into `%pinfo x`: nothing is bound, nothing read.
    result = cell("y = x?")
    assert (result.defs, result.refs, result.opaque) == ((), (), None)


def test_magic_with_code_keeps_the_hash_of_its_code() -> None:
    assert cell("%%time\ny = f(x)").code_hash == cell("y = f(x)").code_hash


# --- opaque cells ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("from helpers import *", "import *"),
        ("exec('x = 1')", "exec()"),
        ("y = eval(expr)", "eval()"),
        ("globals()['x'] = 1", "globals()"),
        ("names = locals()", "locals()"),
        ("ip = get_ipython()\nip.user_ns['x'] = 1", "get_ipython()"),
        ("get_ipython().run_cell('x = 1')", "run_cell"),
    ],
)
def test_dynamic_namespace_access_is_opaque(source: str, reason: str) -> None:
    result = cell(source)
    assert result.opaque is not None
    assert reason in result.opaque
    assert "line 1" in result.opaque


def test_locals_inside_a_function_is_not_opaque() -> None:
    assert cell("def f(a):\n    return locals()").opaque is None


def test_user_defined_eval_is_not_opaque() -> None:
    assert cell("def eval(model):\n    return model\nscore = eval(m)").opaque is None


# --- mutations ------------------------------------------------------------------------


def test_mutations_of_other_cells_values_are_reported_with_kind_and_line() -> None:
    result = cell(
        """
        df['c'] = 1
        df.loc[mask, 'd'] = 2
        obj.attr = 3
        del df['c']
        items.append(4)
        df.dropna(inplace=True)
        model.fit(X, y)
        counter += 1
        tensor.add_(1)
        setattr(cfg, 'debug', True)
        """
    )
    assert [(m.name, m.kind, m.line) for m in result.mutations] == [
        ("df", "subscript", 2),
        ("df", "subscript", 3),
        ("obj", "attribute", 4),
        ("df", "del", 5),
        ("items", "call", 6),
        ("df", "call", 7),
        ("model", "call", 8),
        ("counter", "augassign", 9),
        ("tensor", "call", 10),
        ("cfg", "attribute", 11),
    ]
    assert result.mutations[1].text == "df.loc[mask, 'd'] = 2"


def test_changes_to_the_cells_own_values_are_not_mutations() -> None:
    result = cell(
        """
        df = load()
        df['c'] = 1
        parts = []
        parts.append(df)
        n = 0
        n += 1
        """
    )
    assert result.mutations == ()


def test_non_mutating_calls_are_not_mutations() -> None:
    result = cell("out = df.dropna()\nm = model.predict(X)\nshown = df.copy(deep=True)")
    assert result.mutations == ()


def test_mutation_inside_a_function_body_is_reported() -> None:
    result = cell("def add(row):\n    rows.append(row)\n    local = []\n    local.append(row)")
    assert result.mutations == (Mutation("rows", 2, "call", "rows.append(row)"),)


def test_mutation_through_a_function_parameter_is_not_reported() -> None:
    assert cell("def f(df):\n    df['c'] = 1").mutations == ()


# --- code hash ------------------------------------------------------------------------


def test_code_hash_ignores_comments_blank_lines_and_formatting() -> None:
    plain = cell("x = f(a, b)\ny = [1, 2]\n")
    noisy = cell("# load\n\nx = f( a,\n      b )   # call\n\n\ny = [1,2,]\n")
    assert plain.code_hash == noisy.code_hash


@pytest.mark.parametrize(
    "changed", ["x = f(a, c)\ny = [1, 2]", "x = f(a, b)\ny = [1, 3]", "x = f(a, b)\ny = [1, '2']"]
)
def test_code_hash_changes_with_any_code_change(changed: str) -> None:
    assert cell(changed).code_hash != cell("x = f(a, b)\ny = [1, 2]").code_hash


def test_normalized_hash_matches_code_hash_and_accepts_indented_source() -> None:
    source = "def helper(x):\n    return x + 1\n"
    assert normalized_hash(source) == cell(source).code_hash
    assert normalized_hash(textwrap.indent(source, "    ")) == normalized_hash(source)


def test_normalized_hash_rejects_invalid_source() -> None:
    with pytest.raises(CellParseError):
        normalized_hash("def broken(:\n")


# --- parse errors ---------------------------------------------------------------------


def test_syntax_error_names_cell_line_and_text() -> None:
    with pytest.raises(CellParseError) as info:
        analyze_cell("x = 1\ny = (2 +\nz = = 3\n", cell="load")
    error = info.value
    assert error.cell == "load"
    assert error.line == 2 or error.line == 3
    assert str(error).startswith(f"cell 'load' line {error.line} does not parse:")
    assert error.text
    assert error.text in str(error)


def test_syntax_error_line_counts_the_header() -> None:
    with pytest.raises(CellParseError) as info:
        analyze_cell("x = 1\ny = = 2\n", cell="load", line_offset=1)
    assert info.value.line == 3
    assert info.value.text == "y = = 2"


def test_statements_python_refuses_at_compile_time_do_not_parse() -> None:
    with pytest.raises(CellParseError, match="'return' outside function"):
        analyze_cell("return 1", cell="early")


def test_top_level_await_is_allowed_as_in_ipython() -> None:
    assert cell("data = await fetch(url)").refs == ("fetch", "url")


def test_parse_error_survives_pickling() -> None:
    with pytest.raises(CellParseError) as info:
        analyze_cell("x = = 1", cell="c")
    clone = pickle.loads(pickle.dumps(info.value))
    assert (clone.cell, clone.line, str(clone)) == ("c", 1, str(info.value))


def test_analysis_survives_pickling() -> None:
    result = cell("import numpy as np\nx: int = 1\ndf['c'] = x")
    assert pickle.loads(pickle.dumps(result)) == result


# --- properties -----------------------------------------------------------------------

NAMES = st.sampled_from(["x", "y", "df", "_tmp", "print", "f", "np"])
EXPRS = st.one_of(
    NAMES,
    st.builds("{}({})".format, NAMES, NAMES),
    st.builds("[{} for {} in {}]".format, NAMES, NAMES, NAMES),
    st.builds("[({} := {}) for {} in {}]".format, NAMES, NAMES, NAMES, NAMES),
    st.builds("lambda {}: {}".format, NAMES, NAMES),
    st.builds("{}[{}]".format, NAMES, NAMES),
    st.builds("{}.{}".format, NAMES, NAMES),
    st.sampled_from(["1", "'s'", "None", "globals()", "(yield)"]),
)
SIMPLE = st.one_of(
    st.builds("{} = {}".format, NAMES, EXPRS),
    st.builds("{} += {}".format, NAMES, EXPRS),
    st.builds("{}: int = {}".format, NAMES, EXPRS),
    st.builds("{}[{}] = {}".format, NAMES, EXPRS, EXPRS),
    st.builds("{}.append({})".format, NAMES, EXPRS),
    st.builds("del {}".format, NAMES),
    st.builds("global {}".format, NAMES),
    st.builds("nonlocal {}".format, NAMES),
    st.builds("return {}".format, EXPRS),
    st.builds("import {} as {}".format, NAMES, NAMES),
    st.builds("from m import {}".format, NAMES),
    st.builds("%time {} = {}".format, NAMES, EXPRS),
    st.builds("%timeit -n1 {}".format, EXPRS),
    st.builds("{} = !ls {{{}}}".format, NAMES, NAMES),
    st.builds("{}?".format, NAMES),
    st.sampled_from(["pass", "%matplotlib inline", "!ls", "from m import *", "%%time"]),
)


def _block(body: list[str]) -> str:
    return "\n".join("    " + line for line in "\n".join(body).splitlines())


COMPOUND = st.one_of(
    st.builds(
        lambda n, a, d, body: f"def {n}({a}={d}):\n{_block(body)}",
        NAMES,
        NAMES,
        EXPRS,
        st.lists(SIMPLE, min_size=1, max_size=3),
    ),
    st.builds(
        lambda n, body: f"class {n}:\n{_block(body)}",
        NAMES,
        st.lists(SIMPLE, min_size=1, max_size=3),
    ),
    st.builds(
        lambda t, it, body: f"for {t} in {it}:\n{_block(body)}",
        NAMES,
        EXPRS,
        st.lists(SIMPLE, min_size=1, max_size=3),
    ),
    st.builds(
        lambda body, n, handler: f"try:\n{_block(body)}\nexcept E as {n}:\n{_block(handler)}",
        st.lists(SIMPLE, min_size=1, max_size=2),
        NAMES,
        st.lists(SIMPLE, min_size=1, max_size=2),
    ),
    st.builds(
        lambda s, a, b: (
            f"match {s}:\n    case [{a}, *{b}]:\n        pass\n    case _:\n        pass"
        ),
        EXPRS,
        NAMES,
        NAMES,
    ),
)
SNIPPETS = st.lists(st.one_of(SIMPLE, COMPOUND), min_size=1, max_size=6).map("\n".join)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _analyze_or_parse_error(source: str) -> CellAnalysis | None:
    try:
        result = analyze_cell(source, cell="fuzz")
    except CellParseError as error:
        assert error.cell == "fuzz"
        assert isinstance(error.line, int)
        return None
    assert isinstance(result, CellAnalysis)
    assert set(result.rebinds) <= set(result.defs) & set(result.refs)
    assert len(set(result.defs)) == len(result.defs)
    return result


@FAST
@given(st.text())
def test_any_text_analyses_or_raises_cell_parse_error(source: str) -> None:
    _analyze_or_parse_error(source)


@FAST
@given(SNIPPETS)
def test_generated_snippets_analyse_or_raise_cell_parse_error(source: str) -> None:
    _analyze_or_parse_error(source)


@FAST
@given(SNIPPETS)
def test_comments_and_blank_lines_never_change_the_hash(source: str) -> None:
    result = _analyze_or_parse_error(source)
    if result is None:
        return
    noisy = "\n".join(
        line
        if line.lstrip().startswith(("%", "!")) or "!ls" in line or line.endswith("?")
        else f"{line}  # note\n"
        for line in source.splitlines()
    )
    # A cell magic must stay on the first line, so the extra comment goes last.
    assert analyze_cell(noisy + "\n\n# end\n").code_hash == result.code_hash
