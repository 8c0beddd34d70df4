"""Executors: where task attempts run. The engine schedules; an executor only runs.

Every executor takes a function and its arguments and returns a
``concurrent.futures.Future``; the engine consumes futures as they complete, so
a slow node never holds back an unrelated branch.

Backends: ``threading``, ``loky`` (joblib's reusable process pool, the default
for ``--parallel N``) and ``dask`` (a local ``distributed`` cluster made for the
run, or the scheduler at ``--address``). The process backends share one path
(:class:`ProcessExecutor`): the call is pickled here with cloudpickle, so a value
that cannot travel is an error naming the task and the variable; the worker
pickles the outputs back the same way. Errors built in the worker
(:class:`TaskFailedError` with the user's traceback text) arrive unchanged.

Timeouts: the engine abandons a future at its deadline. In a loky worker the
attempt is also interrupted there (``SIGALRM``, POSIX, Python code only), so the
worker is free again; a worker still stuck when the run ends (in C code that
ignores signals) is killed by :meth:`LokyExecutor.close`, never waited for.
A dask task cannot be interrupted: a local cluster is closed (its worker
processes end) with the run; on a remote cluster the task runs on until it ends.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import sys
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import BrokenExecutor, Future, InvalidStateError, ThreadPoolExecutor, wait
from typing import Any, ClassVar

from kernelflow._core.errors import (
    KernelflowError,
    OutputTypeError,
    ParameterError,
    TaskFailedError,
    TaskTimeoutError,
)
from kernelflow._core.task import Task
from kernelflow.engine.worker_lifetime import exit_with_parent


class Executor(ABC):
    """Runs callables; returns futures.

    The engine enforces ``timeout`` on every future that is still running; an
    executor that runs callables inline (so returns only done futures) must
    enforce it itself. ``crosses_processes`` says whether the callable and its
    arguments are sent to another process (so must be picklable and
    :func:`portable`).
    """

    name: ClassVar[str]
    workers: int = 1
    """How many callables run at once; the engine keeps at most this many in flight."""
    crosses_processes: ClassVar[bool] = False

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
        if timeout is not None:
            return _run_with_timeout(fn, args, timeout, label)
        try:
            return Completed(fn(*args), None)
        except Exception as error:
            return Completed(None, error)


class Completed(Future):  # type: ignore[type-arg]
    """A future born done, for a call that already ran in this thread.

    A ``Future`` makes a condition variable and takes its lock three times; for
    a call that has finished before its future exists, that was a tenth of the
    engine's cost per quick task. Nothing ever waits on this one (the engine
    waits only on futures that are not done), but ``wait`` would still work:
    it sees ``FINISHED`` and returns at once.
    """

    _state = "FINISHED"
    _condition = threading.Condition()  # shared: never waited on, never notified

    def __init__(self, value: Any, error: BaseException | None) -> None:
        self._result = value
        self._exception = error

    def done(self) -> bool:
        return True

    def running(self) -> bool:
        return False

    def cancelled(self) -> bool:
        return False

    def cancel(self) -> bool:
        return False

    def result(self, timeout: float | None = None) -> Any:
        if self._exception is not None:
            raise self._exception
        return self._result

    def exception(self, timeout: float | None = None) -> BaseException | None:
        return self._exception

    def add_done_callback(self, fn: Callable[[Future[Any]], object]) -> None:
        fn(self)


class ThreadingExecutor(Executor):
    """A pool of threads in this process: for tasks that wait on I/O or release the GIL."""

    name = "threading"

    def __init__(self, workers: int) -> None:
        self.workers = workers
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
        settle(future.set_exception, _timeout_error(label, timeout, "was stopped"))
    return future


def _timeout_error(label: str, timeout: float, what: str) -> TaskTimeoutError:
    return TaskTimeoutError(
        f"task {label!r} ran longer than its timeout of {timeout:g} s and {what}",
        task=label,
        timeout=timeout,
        fix="raise the task's timeout, or make it faster",
    )


# --- process backends: one path for loky and dask ---------------------------------


def portable(task: Task) -> bool:
    """Whether ``task`` can run in another process.

    Function tasks can (by reference or by value); a cell task can when its
    environment can be rebuilt elsewhere (a notebook run from the command line),
    not when it runs in a live kernel's namespace. Callers ask before choosing a
    process backend; in a kernel, ``--parallel`` should use threads.
    """
    return task.portable


class ProcessExecutor(Executor):
    """Sends each call, pickled here, to a worker process; unpickles the outputs here.

    Subclasses only start a pickled call (:meth:`_start`) and release workers.
    """

    crosses_processes = True

    def submit(
        self, fn: Callable[..., Any], /, *args: Any, timeout: float | None = None, label: str = ""
    ) -> Future[Any]:
        for arg in args:
            if isinstance(arg, Task) and not portable(arg):
                raise _kernel_bound(label or arg.name, self.name)
        try:
            payload = _dump_call(fn, args, label)
        except KernelflowError as error:
            failed: Future[Any] = Future()
            failed.set_exception(error)
            return failed
        return self._start(payload, label, timeout)

    @abstractmethod
    def _start(self, payload: bytes, label: str, timeout: float | None) -> Future[Any]:
        """Run ``_call_in_worker(payload, label, timeout)`` in a worker; link its outcome."""


class _RemoteFuture(Future):  # type: ignore[type-arg]
    """The engine's view of a call running elsewhere: cancelling it cancels the call."""

    def __init__(self, cancel_remote: Callable[[], object]) -> None:
        super().__init__()
        self._cancel_remote = cancel_remote

    def cancel(self) -> bool:
        with contextlib.suppress(Exception):
            self._cancel_remote()
        return super().cancel()


def _settle(outer: Future[Any], label: str, outcome: Callable[[], Any]) -> None:
    """Complete ``outer`` from a worker's outcome (called in the pool's callback thread)."""
    try:
        value = _unpickle(outcome(), label, "the outputs of task {} cannot be loaded here")
    except BaseException as error:
        setter, value = outer.set_exception, _as_task_error(error, label)
    else:
        setter = outer.set_result
    with contextlib.suppress(InvalidStateError):  # abandoned by the engine: done already
        setter(value)


class LokyExecutor(ProcessExecutor):
    """Worker processes from joblib's reusable loky pool (the default for ``--parallel``).

    The pool outlives the run, so the next run starts without spawning workers
    (idle workers exit on their own after a few seconds). Its workers import
    with this process's current ``sys.path``: when that has changed (a script's
    folder was added), loky replaces the pool. :meth:`close` kills the workers
    only when an abandoned attempt is still running in one of them after a grace.
    Its workers exit on their own when this process dies without closing them
    (SIGKILL): see :mod:`kernelflow.engine.worker_lifetime`.
    """

    name = "loky"

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool = self._new_pool()
        self._lock = threading.Lock()
        self._unfinished: set[Future[Any]] = set()

    def _new_pool(self) -> Any:
        from joblib.externals.loky import get_reusable_executor

        path = tuple(os.path.abspath(entry) for entry in sys.path)
        return get_reusable_executor(
            max_workers=self.workers, initializer=_init_worker, initargs=(path, os.getpid())
        )

    def _start(self, payload: bytes, label: str, timeout: float | None) -> Future[Any]:
        try:
            inner = self._pool.submit(_call_in_worker, payload, label, timeout)
        except (BrokenExecutor, RuntimeError):  # a worker died, or the pool was shut down
            self._pool = self._new_pool()
            inner = self._pool.submit(_call_in_worker, payload, label, timeout)
        with self._lock:
            self._unfinished.add(inner)
        outer: Future[Any] = _RemoteFuture(inner.cancel)
        inner.add_done_callback(functools.partial(self._finished, outer, label))
        return outer

    def _finished(self, outer: Future[Any], label: str, inner: Future[Any]) -> None:
        with self._lock:
            self._unfinished.discard(inner)
        _settle(outer, label, inner.result)

    def close(self) -> None:
        with self._lock:
            stuck = [f for f in self._unfinished if not f.cancel() and not f.done()]
        if stuck:  # abandoned attempts: their deadline interrupts most within a moment
            stuck = list(wait(stuck, timeout=_KILL_GRACE).not_done)
        if stuck:
            logging.getLogger(__name__).info(
                "killing loky workers: %d abandoned task(s) still running", len(stuck)
            )
            self._pool.shutdown(wait=True, kill_workers=True)


_KILL_GRACE = 2.0
"""Seconds :meth:`LokyExecutor.close` waits for abandoned attempts before killing workers."""


def _init_worker(path: tuple[str, ...], parent: int) -> None:
    """Loky worker initializer: die with the parent; import from the parent's ``sys.path``.

    Both arguments are the same for every run of one process, so loky still
    reuses the pool from run to run.
    """
    exit_with_parent(parent)
    sys.path[:] = list(path)


class DaskExecutor(ProcessExecutor):
    """Tasks on a ``distributed`` cluster: the scheduler at ``address``, or a local one.

    The local cluster (``workers`` processes, one thread each) is made for the
    run and closed with it; a remote cluster is only disconnected from.
    """

    name = "dask"

    def __init__(self, workers: int, address: str | None = None) -> None:
        self.workers = workers
        distributed = _import_distributed()
        self._cluster = None
        if address is None:
            self._cluster = distributed.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
        try:
            self._client = distributed.Client(
                self._cluster if address is None else address, set_as_default=False
            )
        except Exception as error:
            self._close_cluster()
            raise ParameterError(
                f"cannot connect to the dask scheduler at {address!r}: "
                f"{type(error).__name__}: {error}",
                address=address,
                fix="start a scheduler (dask scheduler) and pass its address, e.g. "
                "--address tcp://HOST:8786",
            ) from error

    def _start(self, payload: bytes, label: str, timeout: float | None) -> Future[Any]:
        key = f"kernelflow-{label}-{uuid.uuid4().hex[:12]}"
        remote = self._client.submit(_call_in_worker, payload, label, timeout, pure=False, key=key)
        outer: Future[Any] = _RemoteFuture(remote.cancel)
        remote.add_done_callback(lambda done: _settle(outer, label, done.result))
        return outer

    def close(self) -> None:
        try:
            self._client.close()
        finally:
            self._close_cluster()

    def _close_cluster(self) -> None:
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as error:
        raise ParameterError(
            "the dask backend needs the 'distributed' package, which is not installed",
            backend="dask",
            fix="pip install kernelflow[dask] (or use --backend loky)",
        ) from error
    return distributed


# --- what crosses the process boundary ----------------------------------------------

_SEND_FIX = (
    "pass plain data between tasks (no generators, open files, locks or connections), "
    "or run with --backend threading"
)


def _dump_call(fn: Callable[..., Any], args: tuple[Any, ...], label: str) -> bytes:
    """``(fn, args)`` as cloudpickle bytes; an error names what cannot be sent."""
    import cloudpickle

    try:
        return cloudpickle.dumps((fn, args), protocol=5)
    except Exception as error:
        raise _unsendable_call(args, label, error) from None


def _unsendable_call(args: tuple[Any, ...], label: str, error: Exception) -> KernelflowError:
    inputs = [item for arg in args if isinstance(arg, Mapping) for item in arg.items()]
    culprit = _culprit(inputs)
    if culprit is not None:
        name, value, reason = culprit
        return TaskFailedError(
            f"input {name!r} of task {label!r} is a {type(value).__name__}, which "
            f"cannot be sent to a worker process ({reason})",
            task=label,
            variable=name,
            actual=type(value).__name__,
            fix=_SEND_FIX,
        )
    return TaskFailedError(
        f"task {label!r} cannot be sent to a worker process: {type(error).__name__}: {error}",
        task=label,
        fix="put the task in a package the workers can import (it then travels by reference), "
        "keep unpicklable objects out of what it uses, or run with --backend threading",
    )


def _culprit(items: Iterable[tuple[str, Any]]) -> tuple[str, Any, str] | None:
    """The first named value that cannot be pickled, and why."""
    import cloudpickle

    for name, value in items:
        try:
            cloudpickle.dumps(value, protocol=5)
        except Exception as error:
            return name, value, f"{type(error).__name__}: {error}"
    return None


def _kernel_bound(label: str, backend: str) -> ParameterError:
    return ParameterError(
        f"task {label!r} runs in this Jupyter kernel's namespace, which a {backend} worker "
        "process cannot see; in a kernel, --parallel uses threads",
        task=label,
        backend=backend,
        fix="use --backend threading (or run the notebook file with "
        "kernelflow run NOTEBOOK --parallel N for processes)",
    )


class _Expired(BaseException):
    """Raised by SIGALRM in a worker: a BaseException, so task code does not catch it."""


@contextlib.contextmanager
def _deadline(timeout: float | None) -> Iterator[None]:
    """Interrupt the body after ``timeout`` s, where signals allow it (a loky worker)."""
    usable = (
        timeout is not None
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise _Expired

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, timeout)  # type: ignore[arg-type]
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _call_in_worker(payload: bytes, label: str, timeout: float | None) -> bytes:
    """Worker side: unpickle the call, run it (with its deadline), pickle the outputs."""
    fn, args = _unpickle(payload, label, "task {} could not be loaded in the worker process")
    try:
        with _deadline(timeout):
            result = fn(*args)
    except _Expired:
        raise _timeout_error(label, timeout or 0.0, "was interrupted in its worker") from None
    return _dump_result(result, label)


def _dump_result(result: Any, label: str) -> bytes:
    import cloudpickle

    try:
        return cloudpickle.dumps(result, protocol=5)
    except Exception as error:
        items = result.items() if isinstance(result, Mapping) else [("the result", result)]
        culprit = _culprit(items)
        if culprit is not None:
            name, value, reason = culprit
            raise OutputTypeError(
                f"task {label!r} produced {name!r}, a {type(value).__name__}, which cannot "
                f"be sent back from a worker process ({reason})",
                task=label,
                variable=name,
                actual=type(value).__name__,
                fix=_SEND_FIX.replace("pass", "return", 1),
            ) from None
        raise TaskFailedError(
            f"the outputs of task {label!r} cannot be sent back from a worker process: "
            f"{type(error).__name__}: {error}",
            task=label,
            fix=_SEND_FIX,
        ) from None


def _unpickle(data: bytes, label: str, what: str) -> Any:
    """``pickle.loads``; a failure (a module the workers lack) names the task."""
    import pickle

    try:
        return pickle.loads(data)
    except Exception as error:
        raise TaskFailedError(
            f"{what.format(repr(label))}: {type(error).__name__}: {error}",
            task=label,
            error_type=type(error).__name__,
            fix="make the task's module and the classes of its values importable on both "
            "sides (install them on the workers), or use a local backend",
        ) from None


def _as_task_error(error: BaseException, label: str) -> KernelflowError:
    if isinstance(error, KernelflowError):
        return error
    died = isinstance(error, BrokenExecutor) or type(error).__name__ == "KilledWorker"
    if died:
        what, fix = f"the worker process running task {label!r} died", "it may be out of memory"
    else:
        what, fix = f"task {label!r} failed in a worker", "run it with --parallel 1 to debug it"
    return TaskFailedError(
        f"{what}: {type(error).__name__}: {error}",
        task=label,
        error_type=type(error).__name__,
        recoverable=died,  # a system failure: retried, as in Flyte
        fix=fix,
    )


# --- choosing a backend ---------------------------------------------------------------

BACKENDS = ("loky", "threading", "dask")


def get_executor(
    backend: str, parallel: int, address: str | None = None, *, tasks: Iterable[Task] = ()
) -> Executor:
    """The executor for ``--parallel N --backend B [--address A]``.

    One worker without an address means sequential. An address means dask (with
    the default backend). Pass the run's ``tasks`` to refuse, before anything
    runs, a process backend for tasks that cannot leave this process (cell tasks
    of a live kernel: see :func:`portable`).
    """
    if backend not in BACKENDS:
        raise ParameterError(
            f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}",
            fix="pass --backend loky, threading or dask",
        )
    if parallel < 1:
        raise ParameterError(f"--parallel must be at least 1, got {parallel}")
    if address is not None and backend == "threading":
        raise ParameterError(
            "--address names a dask scheduler; it cannot be used with --backend threading",
            address=address,
            fix="use --backend dask with --address, or drop --address",
        )
    if parallel == 1 and address is None:
        return SequentialExecutor()
    if backend == "threading":
        return ThreadingExecutor(parallel)
    for task in tasks:
        if not portable(task):
            raise _kernel_bound(task.name, "dask" if address else backend)
    if backend == "loky" and address is None:
        return LokyExecutor(parallel)
    return DaskExecutor(parallel, address)
