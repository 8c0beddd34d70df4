"""``FlyteContext`` / ``FlyteContextManager`` (issue 15): what of Flyte's context means
something locally works, the rest fails with the one UnsupportedFeatureError message.

Written as Flyte programs are, with ``flytekit`` read as ``kernelflow``.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import pytest

import kernelflow
from kernelflow import FlyteContext, FlyteContextManager, task, workflow
from kernelflow.core.node_creation import create_node
from kernelflow.errors import UnsupportedFeatureError

ORDER: list[str] = []


@task
def open_session() -> None:
    ORDER.append("open")


@task
def close_session() -> None:
    ORDER.append("close")


@task
def halve(x: float) -> float:
    ORDER.append("halve")
    return x / 2


@task
def square(x: float) -> float:
    ORDER.append("square")
    return x * x


def around(fn: Any = None, *, before: Any, after: Any) -> Any:
    """A workflow decorator in the style of Flyte's docs: nodes before and after the body,
    ordered through the context's compilation state."""
    if fn is None:
        return functools.partial(around, before=before, after=after)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = FlyteContextManager.current_context()
        first = create_node(before)
        outputs = fn(*args, **kwargs)
        last = create_node(after)
        if ctx.compilation_state is not None:
            nodes = ctx.compilation_state.nodes
            first >> nodes[1]
            nodes[-2] >> last
        return outputs

    return wrapper


@workflow
@around(before=open_session, after=close_session)
def session_wf(x: float) -> float:
    return square(x=halve(x=x))


def test_compilation_state_lists_the_nodes_of_the_workflow_being_defined() -> None:
    graph = session_wf.graph
    assert list(graph.nodes) == ["open_session", "halve", "square", "close_session"]
    assert list(graph.nodes["halve"].upstream()) == ["open_session"]
    assert "square" in graph.nodes["close_session"].upstream()
    ORDER.clear()
    assert kernelflow.run(session_wf, {"x": 6.0}, parallel=2, backend="threading").outputs == {
        "o0": 9.0
    }
    assert ORDER == ["open", "halve", "square", "close"]  # ordered, even when run in parallel
    assert FlyteContextManager.current_context().compilation_state is None  # not defining now


@task
def scratch_round_trip(text: str) -> str:
    """``ctx.file_access`` as a Flyte encoder uses it: random local and remote places."""
    ctx = FlyteContext.current_context()
    local = Path(ctx.file_access.get_random_local_directory())
    (local / "part-0.txt").write_text(text)
    remote = ctx.file_access.get_random_remote_directory()
    ctx.file_access.upload_directory(str(local), remote)
    back = ctx.file_access.get_random_local_directory()
    ctx.file_access.get_data(remote, back, is_multipart=True)
    single = ctx.file_access.get_random_remote_path("copy.txt")
    ctx.file_access.put_data(str(local / "part-0.txt"), single)
    assert not ctx.file_access.is_remote(single) and ctx.file_access.exists(single)
    return Path(back, "part-0.txt").read_text() + "|" + Path(single).read_text()


@task
def run_id_from_user_space() -> str:
    return FlyteContextManager.current_context().user_space_params.execution_id.name


@workflow
def run_id_wf() -> str:
    return run_id_from_user_space()


def test_file_access_gives_local_paths_that_move_data_like_flytes() -> None:
    assert scratch_round_trip(text="rows") == "rows|rows"
    sandbox = FlyteContextManager.current_context().file_access.local_sandbox_dir
    assert os.path.isdir(sandbox)


def test_user_space_params_is_the_running_tasks_context() -> None:
    result = kernelflow.run(run_id_wf)
    assert result.outputs["o0"] == result.run_id


@pytest.mark.parametrize(
    "use,name",
    [
        (lambda: FlyteContextManager.current_context().execution_state, "execution_state"),
        (lambda: FlyteContextManager.current_context().new_builder(), "new_builder"),
        (lambda: FlyteContextManager.with_context, "FlyteContextManager.with_context"),
        (
            lambda: FlyteContextManager.current_context().file_access.async_get_data,
            "async_get_data",
        ),
    ],
)
def test_what_has_no_local_meaning_fails_with_the_one_message(use: Any, name: str) -> None:
    with pytest.raises(UnsupportedFeatureError, match="see README 'Flyte compatibility'") as info:
        use()
    assert name.split(".")[-1] in str(info.value)


def test_a_name_flyte_lacks_too_is_a_plain_attribute_error() -> None:
    """So that getattr(obj, name, default), as code hashing and tools use it, still works."""
    assert getattr(FlyteContextManager, "fn", None) is None
    assert getattr(FlyteContextManager.current_context(), "__wrapped__", None) is None
