"""``%%task`` and ``%workflow``: the notebook user's whole interface to kernelflow."""

from __future__ import annotations

import argparse
import functools
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.display import SVG, display

from kernelflow import api
from kernelflow.errors import ParameterError
from kernelflow.render import dag_svg, status_html, status_text


class _UsageShown(Exception):
    """``--help`` printed a usage: the magic has nothing more to do."""


class _UsageParser(argparse.ArgumentParser):
    """argparse that raises, instead of exiting the kernel's process or printing to stderr."""

    def error(self, message: str) -> Any:
        raise ParameterError(f"{self.prog}: {message}", fix=f"see {self.prog} --help")

    def exit(self, status: int = 0, message: str | None = None) -> Any:
        if message:
            print(message, file=sys.stderr)
        raise _UsageShown


_DESCRIPTION = """\
The workflow of the %%task cells run in this kernel. Each command takes --help.
"""


def _workflow_parser() -> argparse.ArgumentParser:
    parser = _UsageParser(prog="%workflow", description=_DESCRIPTION)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    command = functools.partial(_add_command, commands)
    command("show", "the DAG as a picture, tasks coloured by their state in this kernel")
    command("status", "each task's state in this kernel, and why a stale one is stale")
    run = command("run", "run the DAG (or TASK ... and what they need), with progress")
    run.add_argument("tasks", nargs="*", metavar="TASK")
    run.add_argument(
        "-p", "--param", help="a parameter (a kernel variable) for this run", **api.PARAM_OPTION
    )
    run.add_argument("--parallel", type=int, default=1, metavar="N", help="tasks at once")
    run.add_argument("--backend", default="threading", choices=api.BACKENDS)
    run.add_argument("--force", action="store_true", help="ignore cached results")
    resume = command("resume", "continue the latest run (or RUN_ID), unless it finished")
    resume.add_argument("run_id", nargs="?", default="last", metavar="RUN_ID")
    export = command("export", "write a versioned notebook papermill can run")
    export.add_argument("--out", default="exports", metavar="DIR")
    export.add_argument("--from", dest="source", metavar="NOTEBOOK", help="the saved notebook")
    export.add_argument(
        "--force",
        action="store_true",
        help="export the saved file even if this kernel ran other code",
    )
    command("runs", "the run history, newest first")
    lineage = command("lineage", "where a value came from: a table of it and its inputs")
    lineage.add_argument("name", metavar="NAME", help="a task, or a value a task made")
    cache = command("cache", "list the cache, or clear it (for TASK)")
    cache.add_argument("action", nargs="?", default="ls", choices=["ls", "clear"])
    cache.add_argument("task", nargs="?", metavar="TASK")
    return parser


def _add_command(commands: Any, name: str, summary: str) -> argparse.ArgumentParser:
    return commands.add_parser(name, help=summary, description=summary)


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
        stale = self.session.stale_upstream(spec.name)
        if stale:  # it ran on values made by older code: say so, %workflow run updates them
            names = ", ".join(stale)
            text += f" (upstream {names} {'is' if len(stale) == 1 else 'are'} stale)"
        if attach_to is not None:  # the executed notebook keeps the outputs, for read_outputs()
            _show_status(text, task_run.status, api.outputs_record_of(result, spec.name))
        else:
            _show_status(text, task_run.status)
        result.raise_for_status()

    @line_magic
    def workflow(self, line: str) -> Any:
        """``%workflow COMMAND``: show, run, resume, export, runs, lineage, cache."""
        parser = _workflow_parser()
        words = shlex.split(line)
        if not words:  # a bare %workflow asks what it can do
            parser.print_help()
            return None
        try:
            args = parser.parse_args(words)
        except _UsageShown:
            return None
        return getattr(self, f"_{args.command}")(args)

    def _show(self, args: argparse.Namespace) -> None:
        target = self.session.workflow()
        states = {node: status.state for node, status in self.session.statuses().items()}
        display(SVG(dag_svg(target.graph, states, legend=True)))

    def _status(self, args: argparse.Namespace) -> Any:
        import pandas as pd

        statuses = self.session.statuses()
        rows = [[status.state, status.why] for status in statuses.values()]
        return pd.DataFrame(
            rows, index=pd.Index(list(statuses), name="task"), columns=["state", "why"]
        )

    def _run(self, args: argparse.Namespace) -> None:
        target = self.session.workflow()
        params = api.parse_params(target, dict(args.param))
        with _progress(self.shell, target) as progress:
            result = self.session.run(
                target,
                params,
                **progress,
                force=args.force,
                tasks=args.tasks,
                parallel=args.parallel,
                backend=args.backend,
                stale_only=not args.tasks,  # without names: what is stale or missing
            )
        result.raise_for_status()

    def _resume(self, args: argparse.Namespace) -> None:
        target = self.session.workflow()
        with _progress(self.shell, target) as progress:
            result = self.session.run(target, {}, **progress, resume=args.run_id)
        result.raise_for_status()

    def _export(self, args: argparse.Namespace) -> Any:
        source = args.source or self.shell.user_ns.get("__session__")
        if not source or not str(source).endswith(".ipynb"):
            raise ParameterError(
                "cannot tell which notebook this kernel runs",
                fix="save the notebook and pass its path: %workflow export --from NOTEBOOK.ipynb",
            )
        differences = self.session.differences_from(source)
        if differences and not args.force:
            raise ParameterError(
                f"the saved notebook {source} is not what this kernel ran: "
                + "; ".join(differences),
                fix="save the notebook (File > Save) and export again, or pass --force to "
                "export the saved file as it is",
            )
        done = api.export(source, args.out)
        state = "exported" if done.new else "unchanged, already exported"
        print(f"{done.workflow} version {done.version} ({state}): {done.path}")
        return None

    def _runs(self, args: argparse.Namespace) -> Any:
        return api.runs()

    def _lineage(self, args: argparse.Namespace) -> Any:
        import pandas as pd

        rows = api.lineage_table(
            args.name, run_ids=list(self.session.run_ids), namespace=self.shell.user_ns
        )
        columns = list(api.LINEAGE_COLUMNS[1:])
        index = pd.Index([row["role"] for row in rows])
        return pd.DataFrame([[row[c] for c in columns] for row in rows], index, columns)

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


@contextmanager
def _progress(shell: Any, target: Any) -> Iterator[dict[str, Any]]:
    """The run's listeners and output sink: widgets in a kernel, text in a terminal shell.

    In a kernel each task's output goes to its row of the view, and the view becomes
    a static snapshot when the run ends, however it ends (a failure, Ctrl-C), so the
    notebook keeps a picture that needs no kernel.
    """
    if getattr(shell, "kernel", None) is None:
        from kernelflow.progress import TextProgress

        yield {"listeners": [TextProgress(sys.stdout)]}
        return
    from kernelflow_jupyter.widgets import ProgressView

    view = ProgressView(target.graph, f"workflow {target.name}")
    view.show()
    try:
        yield {"listeners": [view], "capture": view.capture}
    finally:
        view.finish()


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
