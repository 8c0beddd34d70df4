"""Per-task output capture in a kernel: what a task prints or displays goes to its own sink.

In ``%workflow run`` every task's output would otherwise land below the progress
view, interleaved when tasks run in threads. Tasks may run in worker threads, so
the capture cannot swap the streams per task: for the length of a run, standard
output and error, the display publisher, the display hook and the traceback
printer are replaced by routers. Each asks which task attempt runs in the
*calling* thread (the engine's ``current_context()``, set in the thread that runs
an attempt) and hands the output to ``sink(node, output)``; output from anywhere
else (the engine, the progress view, a thread the task started) passes through.

An output is a dict in nbformat's shape (``stream``, ``display_data``, ``error``),
plus ``transient``/``update`` for a display that replaces an earlier one, and
``{"output_type": "clear"}`` for ``clear_output()``.

What is not routed: a task whose body needs IPython's own transforms (top-level
``await``) runs as a nested cell, and its last value goes to IPython's display
hook directly; pyplot's figures are global, so with ``--parallel`` in threads a
figure shows under the task that finishes first.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from typing import Any

from kernelflow._core.errors import KernelflowError
from kernelflow.engine.context import current_context

Output = dict[str, Any]
OutputSink = Callable[[str, Output], None]

_active: dict[int, _Router] = {}  # by id(shell): the capture of the run in progress
_MISSING = object()


class _Router:
    """Finds the task of the calling thread and hands its outputs to the sink."""

    def __init__(self, shell: Any, sink: OutputSink, nodes: Collection[str]) -> None:
        self.shell = shell
        self.sink = sink
        self.nodes = frozenset(nodes)

    def node(self) -> str | None:
        """The node whose attempt runs in this thread, if it is one of this run's."""
        try:
            node = current_context().node
        except KernelflowError:  # not inside a task attempt
            return None
        return node if node in self.nodes else None

    def displayhook(self, previous: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def hook(value: Any) -> Any:
            node = self.node()
            if node is None:
                return previous(value)
            if value is not None:  # a task's last expression, shown as a cell shows it
                data, metadata = self.shell.display_formatter.format(value)
                self.sink(node, _display(data, metadata))
            return None

        return hook

    def publish(self, previous: Callable[..., Any]) -> Callable[..., Any]:
        def publish(data: Any, metadata: Any = None, *args: Any, **kwargs: Any) -> Any:
            node = self.node()
            if node is None:
                return previous(data, metadata, *args, **kwargs)
            output = _display(data, metadata)
            if kwargs.get("transient"):
                output["transient"] = kwargs["transient"]
            if kwargs.get("update"):
                output["update"] = True
            self.sink(node, output)
            return None

        return publish

    def clear_output(self, previous: Callable[..., Any]) -> Callable[..., Any]:
        def clear_output(*args: Any, **kwargs: Any) -> Any:
            node = self.node()
            if node is None:
                return previous(*args, **kwargs)
            self.sink(node, {"output_type": "clear"})
            return None

        return clear_output

    def showtraceback(self, previous: Callable[..., Any]) -> Callable[..., Any]:
        def show(etype: Any, evalue: Any, stb: Any, *args: Any, **kwargs: Any) -> Any:
            node = self.node()
            if node is None:
                return previous(etype, evalue, stb, *args, **kwargs)
            self.sink(
                node,
                {
                    "output_type": "error",
                    "ename": getattr(etype, "__name__", str(etype)),
                    "evalue": str(evalue),
                    "traceback": list(stb),
                },
            )
            return None

        return show


def _display(data: Any, metadata: Any) -> Output:
    return {"output_type": "display_data", "data": dict(data), "metadata": dict(metadata or {})}


class _RoutedStream:
    """``sys.stdout``/``sys.stderr`` during a run: a task's writes go to its sink."""

    def __init__(self, original: Any, name: str, router: _Router) -> None:
        self.original = original
        self.name = name
        self.router = router

    def write(self, text: str) -> int:
        node = self.router.node()
        if node is None:
            return self.original.write(text)
        if text:
            self.router.sink(node, {"output_type": "stream", "name": self.name, "text": text})
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self.original.flush()

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno...: the original's
        return getattr(self.original, name)


@contextmanager
def capture_task_outputs(shell: Any, sink: OutputSink, nodes: Collection[str]) -> Iterator[None]:
    """Route what the attempts of ``nodes`` print and display to ``sink``, for the block."""
    router = _Router(shell, sink, nodes)
    display_pub = shell.display_pub
    patched = {
        (display_pub, "publish"): router.publish(display_pub.publish),
        (display_pub, "clear_output"): router.clear_output(display_pub.clear_output),
        (shell, "_showtraceback"): router.showtraceback(shell._showtraceback),
    }
    streams = {
        "stdout": _RoutedStream(sys.stdout, "stdout", router),
        "stderr": _RoutedStream(sys.stderr, "stderr", router),
        "displayhook": router.displayhook(sys.displayhook),
    }
    previous = {name: getattr(sys, name) for name in streams}
    own = {key: key[0].__dict__.get(key[1], _MISSING) for key in patched}
    for (owner, name), function in patched.items():
        setattr(owner, name, function)
    for name, replacement in streams.items():
        setattr(sys, name, replacement)
    _active[id(shell)] = router
    try:
        yield
    finally:
        _active.pop(id(shell), None)
        for name, replacement in streams.items():
            if getattr(sys, name) is replacement:  # unless someone replaced it meanwhile
                setattr(sys, name, previous[name])
        for (owner, name), saved in own.items():
            if saved is _MISSING:
                owner.__dict__.pop(name, None)  # the class's method shows through again
            else:
                setattr(owner, name, saved)


@contextmanager
def figures_of_task(shell: Any) -> Iterator[None]:
    """Show the pyplot figures a task body made under that task, while its output is captured.

    With the inline backend, figures are shown when the *cell* ends, which would put
    every task's plot below the progress view; here the figures the body opened are
    displayed (into the task's capture) and closed as the body ends.
    """
    router = _active.get(id(shell))
    if router is None or router.node() is None:
        yield
        return
    before = _figure_numbers()
    try:
        yield
    finally:
        _show_new_figures(before)


def _figure_numbers() -> set[int]:
    pyplot = sys.modules.get("matplotlib.pyplot")
    return set(pyplot.get_fignums()) if pyplot is not None else set()


def _show_new_figures(before: set[int]) -> None:
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is None or "inline" not in str(pyplot.get_backend()):
        return  # other backends draw their figures themselves (a window, ipympl's widget)
    from IPython.display import display

    for number in sorted(set(pyplot.get_fignums()) - before):
        figure = pyplot.figure(number)
        display(figure)
        pyplot.close(figure)
