"""``python -m benchmarks``: measure every figure and write ``benchmarks/README.md``.

Options: ``--quick`` (tiny sizes, one repetition: a smoke test), ``--only KEY``
(some figures; the report then goes to stdout unless ``--out`` is given),
``--no-baselines`` (skip flytekit and Hamilton), ``--repeat N``, ``--out PATH``.
A figure that crashes is reported as an error; the others still run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

from benchmarks import FIGURES
from benchmarks.common import ROOT, ROUNDS, Config, Section
from benchmarks.report import machine, render

DEFAULT_OUT = Path(__file__).resolve().parent / "README.md"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    keys = [key for key, _ in FIGURES]
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repetition")
    parser.add_argument("--out", type=Path, help=f"report path (default {DEFAULT_OUT})")
    parser.add_argument("--no-baselines", action="store_true", help="skip flytekit and Hamilton")
    parser.add_argument("--only", nargs="+", choices=keys, metavar="KEY", help=", ".join(keys))
    parser.add_argument("--repeat", type=int, default=5, help="repetitions per case (default 5)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary stores")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen figures and write the report; 0 unless the report could not be written."""
    args = parse_args(argv)
    saved_path = os.environ.get("PYTHONPATH")
    _importable_everywhere()
    _compile_bytecode()
    workdir = Path(tempfile.mkdtemp(prefix="kf-bench-"))
    config = Config(quick=args.quick, repeats=max(1, args.repeat), workdir=workdir)
    started, clock = dt.datetime.now(dt.UTC), time.perf_counter()
    worker = None
    try:
        if not args.no_baselines:
            worker = _start_baselines(config)
        keys = args.only or [key for key, _ in FIGURES]
        sections = [_run_one(key, config) for key in keys]
    finally:
        if worker is not None:
            worker.close()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        _restore("PYTHONPATH", saved_path)
    numbers = {key: index for index, (key, _) in enumerate(FIGURES, start=1)}
    text = render(
        sections,
        machine(config),
        config,
        started=started,
        seconds=time.perf_counter() - clock,
        numbers=numbers,
    )
    out = args.out if args.out is not None else (None if args.only else DEFAULT_OUT)
    if out is None:
        sys.stdout.write(text)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        _log(f"wrote {out}")
    return 0


def _importable_everywhere() -> None:
    """Worker processes (loky) and kernels must import ``benchmarks`` too."""
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def _compile_bytecode() -> None:
    """Write kernelflow's ``.pyc`` files, as any install does, before timing imports.

    An editable install under ``PYTHONDONTWRITEBYTECODE=1`` (as on this machine)
    never writes them, and then every kernel compiles kernelflow from source: that
    doubled ``%load_ext`` and blurred every kernel figure.
    """
    import compileall

    import kernelflow
    import kernelflow_jupyter

    for package in (kernelflow, kernelflow_jupyter):
        compileall.compile_dir(Path(package.__file__).parent, quiet=1)


def _restore(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _start_baselines(config: Config) -> object | None:
    from benchmarks.baselines import BaselineWorker, ensure_env

    _log("baselines: preparing benchmarks/.venv-baselines (first use installs flytekit, Hamilton)")
    python, note = ensure_env()
    if python is None:
        config.baseline_note = f"absent: {note}"
        _log(f"baselines: {config.baseline_note}")
        return None
    try:
        worker = BaselineWorker(python, config.workdir / "baselines-home")
    except (OSError, RuntimeError, ValueError) as error:
        config.baseline_note = f"absent: the baseline worker did not start ({error})"
        _log(f"baselines: {config.baseline_note}")
        return None
    config.baselines = worker
    config.baseline_note = ""
    _log(f"baselines: {note}; {worker.versions}")
    return worker


def _run_one(key: str, config: Config) -> Section:
    title = dict(FIGURES)[key]
    _log(f"{key}: running")
    clock = time.perf_counter()
    ROUNDS.clear()
    try:
        section: Section = importlib.import_module(f"benchmarks.{key}").run(config)
    except Exception as error:
        traceback.print_exc()
        summary = f"crashed: {type(error).__name__}: {error}"
        section = Section(key, title, "", [], "error", summary[:300])
    section.seconds = time.perf_counter() - clock
    section.rounds = list(ROUNDS)
    _log(f"{key}: {section.verdict} ({section.summary}) in {section.seconds:.1f} s")
    return section


def _log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
