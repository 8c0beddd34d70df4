"""Executors: where task attempts run. The engine schedules; an executor only runs.

Every executor takes a function and its arguments and returns a
``concurrent.futures.Future``; the engine consumes futures as they complete, so
a slow node never holds back an unrelated branch.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ClassVar

from kernelflow.errors import ParameterError, TaskTimeoutError


class Executor(ABC):
    """Runs callables; returns futures.

    The engine enforces ``timeout`` on every future that is still running; an
    executor that runs callables inline (so returns only done futures) must
    enforce it itself.
    """

    name: ClassVar[str]

    @abstractmethod
    def submit(
        self, fn: Callable[..., Any], /, *args: Any, timeout: float | None = None, label: str = ""
    ) -> Future[Any]:
        """Start ``fn(*args)``; the future fails with TaskTimeoutError after ``timeout``."""

    def close(self) -> None:  # noqa: B027 (optional hook: most executors hold nothing)
        """Release workers. The engine calls it when the run ends."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SequentialExecutor(Executor):
    """Runs each callable at once, in the calling thread (the default).

    With a timeout the callable runs in a helper thread instead; Python cannot
    stop a thread, so a timed-out attempt is abandoned (it may still finish in
    the background) and the run goes on. Use a process backend to kill it.
    """

    name = "sequential"

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, timeout: float | None = None, label: str = ""
    ) -> Future[Any]:
        future: Future[Any] = Future()
        if timeout is not None:
            return _run_with_timeout(fn, args, timeout, label)
        try:
            future.set_result(fn(*args))
        except Exception as error:
            future.set_exception(error)
        return future


class ThreadingExecutor(Executor):
    """A pool of threads in this process: for tasks that wait on I/O or release the GIL."""

    name = "threading"

    def __init__(self, workers: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kernelflow")

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, timeout: float | None = None, label: str = ""
    ) -> Future[Any]:
        # The engine enforces deadlines on futures that are not done.
        return self._pool.submit(fn, *args)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _run_with_timeout(
    fn: Callable[..., Any], args: tuple[Any, ...], timeout: float, label: str
) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_running_or_notify_cancel()
    lock = threading.Lock()

    def settle(setter: Callable[[Any], None], value: Any) -> None:
        with lock:
            if not future.done():
                setter(value)

    def target() -> None:
        try:
            settle(future.set_result, fn(*args))
        except BaseException as error:
            settle(future.set_exception, error)

    worker = threading.Thread(target=target, name=f"kernelflow-{label}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        settle(
            future.set_exception,
            TaskTimeoutError(
                f"task {label!r} ran longer than its timeout of {timeout:g} s and was stopped",
                task=label,
                timeout=timeout,
                fix="raise the task's timeout, or make it faster",
            ),
        )
    return future


BACKENDS = ("loky", "threading", "dask")


def get_executor(backend: str, parallel: int, address: str | None = None) -> Executor:
    """The executor for ``--parallel N --backend B``; one worker means sequential."""
    if backend not in BACKENDS:
        raise ParameterError(
            f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}",
            fix="pass --backend loky, threading or dask",
        )
    if parallel < 1:
        raise ParameterError(f"--parallel must be at least 1, got {parallel}")
    if parallel == 1 and address is None:
        return SequentialExecutor()
    if backend == "threading":
        return ThreadingExecutor(parallel)
    # loky and dask arrive with the parallel-runs work; run in threads meanwhile.
    return ThreadingExecutor(parallel)
