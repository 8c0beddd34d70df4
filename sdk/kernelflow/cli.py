"""``kernelflow`` on the command line: a thin layer over :mod:`kernelflow.api`.

Exit status: 0 success; 1 a task failed, or the store could not be written; 2 bad
usage or a bad workflow (a cycle, a type error, an unknown parameter), or a
configured store or run database that cannot be used (unreachable, refused, no
such bucket or database), or a domain that does not exist. Errors are one
paragraph, with no traceback unless ``--debug`` is given.

``--project`` and ``--domain`` (global, like ``--store``) say whose runs and cache
entries a command records and lists; listings show the current project and
domain only, unless ``--all-domains``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kernelflow.api import (
    BACKENDS,
    DOMAINS,
    PARAM_OPTION,
    STORE_ENV,
    environment_variable,
    in_scope,
)
from kernelflow.errors import (
    ConfigurationError,
    KernelflowError,
    ParameterError,
    StoreError,
    TaskError,
)
from kernelflow.schedule.cli import add_schedule_commands

EXIT_OK, EXIT_TASK_FAILED, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        # --store is $KERNELFLOW_STORE for this command and the workers it starts, so
        # the flag wins over the variable, which wins over the home; so are --project,
        # --domain and --cache-from, checked here: a domain that does not exist stops
        # the command before it writes anything.
        scope = in_scope(args.project, args.domain, getattr(args, "cache_from", None))
        with environment_variable(STORE_ENV, args.store), scope:
            return int(args.handler(args) or EXIT_OK)
    except KernelflowError as error:
        return _report(error, debug=args.debug)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _report(error: KernelflowError, *, debug: bool) -> int:
    if debug:
        import traceback

        traceback.print_exception(error)
        if getattr(error, "traceback", None):
            print(error.traceback, file=sys.stderr)  # type: ignore[attr-defined]
    print(f"error: {error}", file=sys.stderr)
    # A store that cannot be written (a full disk, no permission) fails the run as
    # a task would: nothing was wrong with how kernelflow was called.
    failed = isinstance(error, (TaskError, StoreError))
    if isinstance(error, ConfigurationError):  # a wrong URL or password: bad input
        failed = False
    return EXIT_TASK_FAILED if failed else EXIT_USAGE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kernelflow",
        description="Run notebooks and Python workflows as typed, cached, resumable DAGs.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument(
        "--store",
        metavar="URL",
        help="keep artifacts at this fsspec URL (s3://bucket/prefix, file:///mount, "
        "memory://name); overrides $KERNELFLOW_STORE (default: in $KERNELFLOW_HOME)",
    )
    parser.add_argument(
        "--project",
        metavar="NAME",
        help="the project runs and cache entries belong to; overrides $KERNELFLOW_PROJECT "
        "(default: default)",
    )
    parser.add_argument(
        "--domain",
        metavar="DOMAIN",
        help=f"the domain ({', '.join(DOMAINS)}, or those of $KERNELFLOW_DOMAINS); "
        "overrides $KERNELFLOW_DOMAIN (default: development)",
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    run = commands.add_parser("run", help="run a workflow (NOTEBOOK.ipynb or SCRIPT.py:WORKFLOW)")
    run.add_argument("target", help="NOTEBOOK.ipynb, SCRIPT.py:WORKFLOW or SCRIPT.py:LAUNCH_PLAN")
    run.add_argument("-p", "--param", help="a workflow parameter (repeatable)", **PARAM_OPTION)
    run.add_argument(
        "--parallel", type=int, default=1, metavar="N", help="run up to N independent tasks at once"
    )
    run.add_argument("--backend", default="loky", choices=BACKENDS)
    run.add_argument("--address", help="address of a dask.distributed scheduler")
    run.add_argument("--resume", metavar="RUN_ID", help="resume a run (RUN_ID or 'last')")
    run.add_argument("--force", action="store_true", help="ignore cached results")
    run.add_argument(
        "--cache-from",
        metavar="DOMAIN",
        help="also use the cache entries of this domain (read only: new entries go to the "
        "run's own domain)",
    )
    run.add_argument("--output", metavar="OUT.ipynb", help="write the executed notebook here")
    run.add_argument("--quiet", action="store_true", help="no progress output")
    run.set_defaults(handler=_run)

    show = commands.add_parser("show", help="print a workflow's tasks, types and edges")
    show.add_argument("target", help="NOTEBOOK.ipynb or SCRIPT.py:WORKFLOW")
    show.add_argument("--svg", metavar="FILE", help="also draw the DAG into FILE")
    show.set_defaults(handler=_show)

    export = commands.add_parser("export", help="write a versioned, papermill-ready notebook")
    export.add_argument("notebook")
    export.add_argument("--out", default="exports", metavar="DIR")
    export.set_defaults(handler=_export)

    versions = commands.add_parser("versions", help="list a workflow's exported versions")
    versions.add_argument("workflow")
    versions.add_argument("--out", default="exports", metavar="DIR")
    _all_domains_option(versions, "versions")
    versions.set_defaults(handler=_versions)

    diff = commands.add_parser("diff", help="tasks added, removed, changed between versions")
    diff.add_argument("workflow")
    diff.add_argument("old")
    diff.add_argument("new")
    diff.add_argument("--out", default="exports", metavar="DIR")
    diff.set_defaults(handler=_diff)

    add_schedule_commands(commands)

    runs = commands.add_parser("runs", help="list past runs, newest first")
    runs.add_argument("--workflow", help="only runs of this workflow")
    runs.add_argument("--limit", type=int, default=20)
    _all_domains_option(runs, "runs")
    runs.set_defaults(handler=_runs)

    signal = commands.add_parser(
        "signal", help="give a waiting wait_for_input node of a running run its value"
    )
    signal.add_argument("run_id")
    signal.add_argument("name", help="the signal's name (wait_for_input's name)")
    signal.add_argument("value", help="parsed as the type the node expects")
    signal.set_defaults(handler=_signal)

    approve = commands.add_parser("approve", help="approve (or --reject) an approve node")
    approve.add_argument("run_id")
    approve.add_argument("name", help="the approval's name (approve's name)")
    approve.add_argument("--reject", action="store_true", help="reject: the node fails")
    approve.set_defaults(handler=_approve)

    lineage = commands.add_parser("lineage", help="where a task's outputs in a run came from")
    lineage.add_argument("run_id")
    lineage.add_argument("task")
    lineage.set_defaults(handler=_lineage)

    deck = commands.add_parser("deck", help="the HTML deck a task wrote in a run")
    deck.add_argument("run_id")
    deck.add_argument("task")
    deck.add_argument("--out", metavar="FILE.html", help="write it here (default: stdout)")
    deck.set_defaults(handler=_deck)

    report = commands.add_parser(
        "report", help="one self-contained HTML page of a run: DAG, tasks, values, decks"
    )
    report.add_argument("run_id")
    report.add_argument("--out", metavar="FILE.html", help="write it here (default: stdout)")
    report.set_defaults(handler=_run_report)

    cache = commands.add_parser("cache", help="inspect or clear the cache")
    cache.add_argument("action", choices=["ls", "clear"])
    cache.add_argument("task", nargs="?", help="only this task's entries")
    _all_domains_option(cache, "entries")
    cache.set_defaults(handler=_cache)

    promote = commands.add_parser(
        "promote",
        help="promote an exported version from the current domain to another; recorded",
    )
    promote.add_argument("workflow")
    promote.add_argument("version", help="an exported version (kernelflow versions WORKFLOW)")
    promote.add_argument("--to", required=True, metavar="DOMAIN", help="e.g. production")
    promote.add_argument("--out", default="exports", metavar="DIR")
    promote.set_defaults(handler=_promote)

    promotions = commands.add_parser(
        "promotions", help="list the promotions of the current project, newest first"
    )
    promotions.add_argument("workflow", nargs="?", help="only this workflow's")
    promotions.set_defaults(handler=_promotions)

    gc = commands.add_parser(
        "gc",
        help="remove old runs and what nothing kept refers to; compact the store",
        description="Remove the runs no option keeps (with both, a run goes when neither "
        "keeps it), their records and checkpoints, then the artifacts no kept run or cache "
        "entry refers to, and compact the run store. Never removes a cache entry, a "
        "running run, or a run that a kept run resumed.",
    )
    gc.add_argument("--keep-runs", type=int, metavar="N", help="keep the N newest runs")
    gc.add_argument(
        "--older-than", type=float, metavar="DAYS", help="remove runs started over DAYS days ago"
    )
    gc.add_argument("--dry-run", action="store_true", help="report what would go; remove nothing")
    gc.set_defaults(handler=_gc)
    return parser


def _all_domains_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--all-domains",
        action="store_true",
        help=f"list the {what} of every domain of the project, not only the current one",
    )


def _listed_domain(args: argparse.Namespace) -> str | None:
    """The domain a listing filters by: the current one (None), or any."""
    from kernelflow.api import ANY

    return ANY if args.all_domains else None


def _run(args: argparse.Namespace) -> int:
    from kernelflow import api
    from kernelflow.progress import TextProgress

    target = api.load_target(args.target)
    if args.output and getattr(target, "path", None) is None:
        raise ParameterError(
            "--output needs a notebook target (NOTEBOOK.ipynb)",
            fix="drop --output for a SCRIPT.py:WORKFLOW target",
        )
    texts = dict(args.param)
    params = api.parse_params(target, texts)
    listeners = [] if args.quiet else [TextProgress()]
    result = api.run(
        target,
        params,
        parallel=args.parallel,
        backend=args.backend,
        address=args.address,
        resume=args.resume,
        force=args.force,
        listeners=listeners,
    )
    for name, value in result.outputs.items():
        print(f"{name} = {_short(value)}")
    print(f"run_id: {result.run_id}")
    if args.output:
        _write_output(args, target, result, params)
    if result.error is not None:
        return _report(result.error, debug=args.debug)
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    from kernelflow import api

    target = api.load_target(args.target)
    print(api.describe(target))
    if args.svg:
        from kernelflow.render import dag_svg

        with open(args.svg, "w", encoding="utf-8") as handle:
            handle.write(dag_svg(target.graph))
        print(f"wrote {args.svg}")
    return EXIT_OK


def _write_output(args: argparse.Namespace, target: Any, result: Any, params: Any) -> None:
    from kernelflow import api

    written = api.write_executed_copy(target.path, args.output, run_id=result.run_id, params=params)
    print(f"notebook: {written}")


def _export(args: argparse.Namespace) -> int:
    from kernelflow import api

    done = api.export(args.notebook, args.out)
    state = "new version" if done.new else "unchanged: this version was exported before"
    print(f"{done.workflow} {done.version} ({state})")
    print(done.path)
    return EXIT_OK


def _versions(args: argparse.Namespace) -> int:
    from kernelflow import api

    listed = api.versions(args.workflow, args.out, domain=_listed_domain(args))
    if not listed:
        print(f"no version of {args.workflow} in {api.current_scope().domain} (--all-domains: all)")
    for record in listed:
        parent = record["parent"] or "-"
        source = record["source"] or "(unknown: the index was rebuilt)"
        print(
            f"{record['version']}  {record['created']}  parent {parent}  "
            f"{len(record['tasks'])} tasks  in {', '.join(record['domains'])}  from {source}"
        )
    return EXIT_OK


def _diff(args: argparse.Namespace) -> int:
    from kernelflow import api

    changes = api.diff(args.workflow, args.old, args.new, args.out)
    for kind in ("added", "removed", "changed"):
        print(f"{kind}: {', '.join(changes[kind]) or '(none)'}")
    return EXIT_OK


def _runs(args: argparse.Namespace) -> int:
    from kernelflow import api

    frame = api.runs(args.workflow, domain=_listed_domain(args))
    if frame.empty:
        print("no runs yet")
    else:
        print(frame.head(args.limit).to_string(index=False))
    for wait in api.waiting_nodes():
        print(
            f"{wait['run_id']}  {wait['node']}: waiting for signal {wait['name']!r} "
            f"({wait['type']}): kernelflow signal {wait['run_id']} {wait['name']} VALUE"
        )
    return EXIT_OK


def _signal(args: argparse.Namespace) -> int:
    from kernelflow import api

    status = api.send_signal(args.run_id, args.name, args.value)
    print(f"sent {args.name} = {args.value!r} to run {args.run_id}{_until_resumed(args, status)}")
    return EXIT_OK


def _approve(args: argparse.Namespace) -> int:
    from kernelflow import api

    status = api.send_signal(args.run_id, args.name, "false" if args.reject else "true")
    verb = "rejected" if args.reject else "approved"
    print(f"{verb} {args.name} of run {args.run_id}{_until_resumed(args, status)}")
    return EXIT_OK


def _until_resumed(args: argparse.Namespace, status: str) -> str:
    """What a signal to a run that is not running waits for."""
    if status == "running":
        return ""
    return (
        f"; the run {status}, so the value is taken when it is resumed: "
        f"kernelflow run TARGET --resume {args.run_id}"
    )


def _lineage(args: argparse.Namespace) -> int:
    from kernelflow import api

    print(json.dumps(api.lineage(args.run_id, args.task), indent=2, default=str))
    return EXIT_OK


def _deck(args: argparse.Namespace) -> int:
    from kernelflow import api

    return _write_page(api.deck(args.run_id, args.task), args.out)


def _run_report(args: argparse.Namespace) -> int:
    from kernelflow import api
    from kernelflow.report import report_html

    return _write_page(report_html(api.run_report(args.run_id)), args.out)


def _write_page(page: str, out: str | None) -> int:
    """An HTML page to ``--out FILE``, or to standard output."""
    if out:
        Path(out).write_text(page, encoding="utf-8")
        print(f"wrote {out}")
    else:
        sys.stdout.write(page)
    return EXIT_OK


def _cache(args: argparse.Namespace) -> int:
    from kernelflow import api

    domain = _listed_domain(args)
    if args.action == "clear":
        print(api.cache_clear(args.task, domain=domain).summary())
        return EXIT_OK
    entries = api.cache_entries(args.task, domain=domain)
    if not entries:
        print("the cache is empty")
    for entry in entries:
        print(
            f"{entry['task']:<24} {str(entry['key'])[:16]}  created {entry.get('created')}  "
            f"hits {entry.get('hits', 0)}  {entry['domain']}"
        )
    return EXIT_OK


def _promote(args: argparse.Namespace) -> int:
    from kernelflow import api

    done = api.promote(args.workflow, args.version, to=args.to, out=args.out)
    print(
        f"promoted {done['workflow']} {done['version']} from {done['from_domain']} to "
        f"{done['to_domain']} (by {done['promoted_by']} at {done['promoted']})"
    )
    return EXIT_OK


def _promotions(args: argparse.Namespace) -> int:
    from kernelflow import api

    done = api.promotions(args.workflow)
    if not done:
        print("no promotions yet")
    for record in done:
        print(
            f"{record['promoted']}  {record['workflow']} {record['version']}  "
            f"{record['from_domain']} -> {record['to_domain']}  by {record['promoted_by']}"
        )
    return EXIT_OK


def _gc(args: argparse.Namespace) -> int:
    from kernelflow import api

    report = api.gc(keep_runs=args.keep_runs, older_than_days=args.older_than, dry_run=args.dry_run)
    print(report.summary())
    return EXIT_OK


def _short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
