"""``%%task`` and ``%workflow``: the notebook user's whole interface to kernelflow."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.display import SVG, display

from kernelflow import api
from kernelflow.errors import KernelflowError, ParameterError
from kernelflow.render import dag_svg, status_html, status_text


class _UsageParser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        raise ParameterError(f"%workflow: {message}", fix="see %workflow --help")


def _workflow_parser() -> argparse.ArgumentParser:
    parser = _UsageParser(prog="%workflow", add_help=False)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("show")
    run = commands.add_parser("run")
    run.add_argument("tasks", nargs="*")
    run.add_argument("-p", "--param", nargs=2, action="append", default=[])
    run.add_argument("--parallel", type=int, default=1)
    run.add_argument("--backend", default="threading", choices=api.BACKENDS)
    run.add_argument("--force", action="store_true")
    resume = commands.add_parser("resume")
    resume.add_argument("run_id", nargs="?", default="last")
    export = commands.add_parser("export")
    export.add_argument("--out", default="exports")
    export.add_argument("--from", dest="source")
    commands.add_parser("runs")
    lineage = commands.add_parser("lineage")
    lineage.add_argument("name")
    cache = commands.add_parser("cache")
    cache.add_argument("action", nargs="?", default="ls", choices=["ls", "clear"])
    cache.add_argument("task", nargs="?")
    return parser


@magics_class
class KernelflowMagics(Magics):
    """The magics; all state lives in the :class:`Session`."""

    def __init__(self, shell: Any, session: Any) -> None:
        super().__init__(shell)
        self.session = session

    @cell_magic
    def task(self, line: str, cell: str) -> None:
        """``%%task NAME [options]``: run this cell as a task (cached, typed, recorded)."""
        spec = self.session.register_cell(line, cell)
        if spec.defer:
            _show_status(f"{spec.name}: registered (--defer)", "pending")
            return
        attach_to = self.session.exported_run_of(spec.name)
        if attach_to is not None:  # a cell of an exported notebook's run
            target = self.session.single_task(spec.name)
            result = self.session.run(target, {}, listeners=[], attach_to=attach_to)
            self.session.exported_task_done(spec.name, result)
        elif self.session.missing_upstream(spec.name):
            # Inputs come from deferred tasks that have not run: run what this task needs.
            target = self.session.workflow()
            result = self.session.run(target, {}, listeners=[], tasks=[spec.name])
        else:
            target = self.session.single_task(spec.name)
            result = self.session.run(target, {}, listeners=[])
        task_run = result.tasks[spec.name]
        text = status_text(spec.name, task_run.status, task_run.duration, task_run.saved)
        if attach_to is not None:  # the executed notebook keeps the outputs, for read_outputs()
            _show_status(text, task_run.status, api.outputs_record_of(result, spec.name))
        else:
            _show_status(text, task_run.status)
        result.raise_for_status()

    @line_magic
    def workflow(self, line: str) -> Any:
        """``%workflow COMMAND``: show, run, resume, export, runs, lineage, cache."""
        args = _workflow_parser().parse_args(shlex.split(line))
        return getattr(self, f"_{args.command}")(args)

    def _show(self, args: argparse.Namespace) -> None:
        target = self.session.workflow()
        states = {}
        if self.session.last_run is not None:
            states = {n: t.status for n, t in self.session.last_run.tasks.items()}
        display(SVG(dag_svg(target.graph, states)))

    def _run(self, args: argparse.Namespace) -> None:
        target = self.session.workflow()
        params = api.parse_params(target, dict(args.param))
        listener = _progress_listener(self.shell, target)
        result = self.session.run(
            target,
            params,
            listeners=[listener],
            force=args.force,
            tasks=args.tasks,
            parallel=args.parallel,
            backend=args.backend,
        )
        result.raise_for_status()

    def _resume(self, args: argparse.Namespace) -> None:
        target = self.session.workflow()
        listener = _progress_listener(self.shell, target)
        result = self.session.run(target, {}, listeners=[listener], resume=args.run_id)
        result.raise_for_status()

    def _export(self, args: argparse.Namespace) -> Any:
        source = args.source or self.shell.user_ns.get("__session__")
        if not source or not str(source).endswith(".ipynb"):
            raise ParameterError(
                "cannot tell which notebook this kernel runs",
                fix="save the notebook and pass its path: %workflow export --from NOTEBOOK.ipynb",
            )
        done = api.export(source, args.out)
        state = "exported" if done.new else "unchanged, already exported"
        print(f"{done.workflow} version {done.version} ({state}): {done.path}")
        return None

    def _runs(self, args: argparse.Namespace) -> Any:
        return api.runs()

    def _lineage(self, args: argparse.Namespace) -> Any:
        last = self.session.last_run
        if last is None or args.name not in last.tasks:
            raise KernelflowError(
                f"no run in this kernel has a task named {args.name!r}",
                fix="run the workflow (or the task's cell) first; the CLI's "
                "`kernelflow lineage RUN_ID TASK` reads any run",
            )
        return api.lineage(last.run_id, args.name)

    def _cache(self, args: argparse.Namespace) -> Any:
        if args.action == "clear":
            print(api.cache_clear(args.task).summary())
            return None
        import pandas as pd

        entries = api.cache_entries(args.task)
        columns = api.CACHE_COLUMNS
        return pd.DataFrame([{c: e.get(c) for c in columns} for e in entries], columns=columns)


def _show_status(text: str, state: str, record: dict[str, Any] | None = None) -> None:
    """The cell's status line: printed, like ``%%time``'s, unless it carries a record.

    In a kernel a display message costs ~2 ms end to end (ipykernel flushes both
    streams first, and the client handles one more message), more than the whole
    engine does for a small cell; a printed line rides on the stream flush that
    ends every cell. The outputs record of an exported run needs its own mimetype,
    so that one is displayed, with an HTML form of the status.
    """
    if record is None:
        print(text)
        return
    bundle: dict[str, Any] = {"text/plain": text, "text/html": status_html(text, state)}
    bundle[api.MIMETYPE] = record  # what kernelflow.read_outputs() finds in an executed notebook
    display(bundle, raw=True)


def _progress_listener(shell: Any, target: Any) -> Any:
    """Widgets where a kernel can show them; text progress in a terminal shell."""
    if getattr(shell, "kernel", None) is None:
        from kernelflow.progress import TextProgress

        return TextProgress(sys.stdout)
    from kernelflow_jupyter.widgets import ProgressView

    view = ProgressView(target.graph, f"workflow {target.name}")
    view.show()
    return view


def show_kernelflow_error(
    shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: int | None = None
) -> None:
    """Kernelflow errors are one paragraph, not a traceback through the engine.

    It is still an error output (``ename``/``evalue``), so papermill and nbclient
    report the message when a cell fails.
    """
    text = f"{etype.__name__}: {value}"
    show = getattr(shell, "_showtraceback", None)
    if show is None:
        print(text, file=sys.stderr)
    else:
        show(etype, value, [text])
