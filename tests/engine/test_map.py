"""Map tasks at scale: order kept, batches, per-item cache, the failing item's index."""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import pytest

import kernelflow
from kernelflow import current_context, map_task, task, workflow
from kernelflow.engine.events import Event
from kernelflow.engine.mapping import batches
from kernelflow.errors import ParameterError, RecoverableError, TaskFailedError

COMPUTED: list[int] = []


@task
def square(x: int) -> int:
    return x * x


@task(cache=True)
def slow_square(x: int) -> int:
    COMPUTED.append(x)
    return x * x


@task
def fragile(x: int) -> int:
    if x == 7:
        raise ValueError("seven is not allowed")
    return x


@workflow
def squares(xs: list[int]) -> list[int]:
    return map_task(square)(x=xs)


@pytest.mark.parametrize("parallel,backend", [(1, "threading"), (2, "threading")])
def test_ten_thousand_items_keep_their_order(parallel: int, backend: str) -> None:
    events: list[Event] = []
    xs = list(range(10_000))[::-1]
    result = kernelflow.run(
        squares, {"xs": xs}, parallel=parallel, backend=backend, listeners=[events.append]
    )
    assert result.outputs["o0"] == [x * x for x in xs]
    progress = [e for e in events if e.kind == "task_progress"]
    assert progress[-1].done == progress[-1].total == 10_000
    assert 1 < len(progress) < 100  # batches, not one round trip per item


def test_a_failing_item_is_named_by_its_index() -> None:
    with pytest.raises(TaskFailedError, match=r"failed at item \[3\].*seven is not allowed"):
        map_task(fragile)(x=[1, 2, 3, 7, 9])


def test_items_are_cached_one_by_one() -> None:
    COMPUTED.clear()
    assert map_task(slow_square)(x=[1, 2, 3, 4]) == [1, 4, 9, 16]
    assert COMPUTED == [1, 2, 3, 4]
    COMPUTED.clear()
    assert map_task(slow_square)(x=[1, 2, 30, 4]) == [1, 4, 900, 16]
    assert COMPUTED == [30]  # only the new item was computed


def test_batches_are_contiguous_and_cover_every_index() -> None:
    indexes = list(range(1000))
    split = batches(indexes, workers=2)
    assert [i for batch in split for i in batch] == indexes
    assert len(split) == 8
    assert batches([], workers=4) == []


def test_a_notebook_map_cell_runs_per_item_in_order() -> None:
    from kernelflow.notebook.load import workflow_from_cells

    notebook = workflow_from_cells(
        [
            ("words = ['kiwi', 'fig', 'banana']", ["parameters"]),
            (
                "%%task lengths --map words --cache\n"
                "size: int = len(words)\nupper: str = words.upper()",
                [],
            ),
            ("%%task longest\nbest: int = max(size)", []),
        ],
        name="mapped",
    )
    result = kernelflow.run(notebook)
    assert result.values["lengths"] == {"size": [4, 3, 6], "upper": ["KIWI", "FIG", "BANANA"]}
    assert result.outputs == {"upper": ["KIWI", "FIG", "BANANA"], "best": 6}
    again = kernelflow.run(notebook, {"words": ["kiwi", "plum"]})
    assert again.outputs["best"] == 4


# --- checkpoints: each item has its own (issue 16, finding 2) ----------------------


@task
def train_from_seed(seed: int) -> int:
    """Three epochs, checkpointed after each: a restored state must be this item's own."""
    checkpoint = current_context().checkpoint
    state = checkpoint.restore() or {"epoch": 0, "acc": seed}
    for epoch in range(state["epoch"], 3):
        state = {"epoch": epoch + 1, "acc": state["acc"] + 10 ** (epoch + 1)}
        checkpoint.save(state)
    return state["acc"]


@workflow
def train_seeds(seeds: list[int]) -> list[int]:
    return map_task(train_from_seed)(seed=seeds)


@pytest.mark.parametrize(
    "parallel,backend",
    [(1, "loky"), (2, "threading"), (4, "threading"), (2, "loky"), (2, "dask")],
)
def test_checkpointing_items_of_a_map_each_get_their_own_state(parallel: int, backend: str) -> None:
    seeds = [1, 2, 3, 4, 5, 6]
    result = kernelflow.run(train_seeds, {"seeds": seeds}, parallel=parallel, backend=backend)
    assert result.outputs["o0"] == [seed + 1110 for seed in seeds]


EPOCHS_RUN: list[tuple[int, int]] = []


@task(retries=1)
def train_and_crash_once(seed: int) -> int:
    """Like train_from_seed, but seed 2 dies in its second epoch on the first attempt."""
    context = current_context()
    state = context.checkpoint.restore() or {"epoch": 0, "acc": seed}
    for epoch in range(state["epoch"], 3):
        if seed == 2 and epoch == 1 and context.attempt == 1:
            raise RecoverableError("worker lost")
        EPOCHS_RUN.append((seed, epoch + 1))
        state = {"epoch": epoch + 1, "acc": state["acc"] + 10 ** (epoch + 1)}
        context.checkpoint.save(state)
    return state["acc"]


def test_a_retried_map_item_resumes_from_its_own_checkpoint() -> None:
    EPOCHS_RUN.clear()
    assert map_task(train_and_crash_once)(seed=[1, 2, 3]) == [1111, 1112, 1113]
    first_attempt = [(1, 1), (1, 2), (1, 3), (2, 1)]
    # The retry: seed 1 restores its finished state, seed 2 continues at epoch 2.
    second_attempt = [(2, 2), (2, 3), (3, 1), (3, 2), (3, 3)]
    assert first_attempt + second_attempt == EPOCHS_RUN


# --- concurrency: at most N items in flight, on every backend ---------------------------


@task
def timed_item(x: int, log_dir: str, meet: int) -> int:
    """Record when this item started and ended, so the test can see which ran together.

    The first ``meet`` items also wait for each other (a bound of 60 s only in case
    of a bug): they can only all start if that many items may run at once.
    """
    started = time.time()
    Path(log_dir, f"started-{x}").touch()
    deadline = time.monotonic() + 60
    while x < meet and sum(Path(log_dir, f"started-{i}").exists() for i in range(meet)) < meet:
        if time.monotonic() > deadline:
            raise TimeoutError(f"item {x} never ran beside the first {meet} items")
        time.sleep(0.01)
    time.sleep(0.05)
    Path(log_dir, f"{x}.json").write_text(json.dumps([started, time.time()]))
    return x


@workflow
def two_at_a_time(xs: list[int], log_dir: str, meet: int) -> list[int]:
    item = functools.partial(timed_item, log_dir=log_dir, meet=meet)
    return map_task(item, concurrency=2)(x=xs)


def most_at_once(log_dir: Path) -> int:
    """The largest number of items whose [start, end] spans overlap at one moment."""
    moments = []
    for path in log_dir.glob("*.json"):
        started, ended = json.loads(path.read_text())
        moments += [(started, 1), (ended, -1)]
    running = peak = 0
    for _, change in sorted(moments):  # at one instant an end sorts before a start
        running += change
        peak = max(peak, running)
    return peak


@pytest.mark.parametrize(
    "parallel,backend", [(1, "threading"), (4, "threading"), (4, "loky"), (4, "dask")]
)
def test_concurrency_bounds_the_items_in_flight(
    tmp_path: Path, parallel: int, backend: str
) -> None:
    xs = list(range(8))
    meet = min(parallel, 2)  # two items run together, unless the run has one worker
    params = {"xs": xs, "log_dir": str(tmp_path), "meet": meet}
    result = kernelflow.run(two_at_a_time, params, parallel=parallel, backend=backend)
    assert result.status == "succeeded", result.error
    assert result.outputs["o0"] == xs
    assert len(list(tmp_path.glob("*.json"))) == len(xs)
    assert most_at_once(tmp_path) <= 2


def test_a_negative_concurrency_is_refused() -> None:
    with pytest.raises(ParameterError, match="concurrency must be a whole number >= 0"):
        map_task(square, concurrency=-1)
