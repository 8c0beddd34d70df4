"""The benchmark runner: a quick run writes a report with every figure, and the timing
helpers keep the issue's rules (interleaved cases, warm-up discarded, medians)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `benchmarks` is a top-level package of the repository
    sys.path.insert(0, str(ROOT))

from benchmarks import FIGURES  # noqa: E402
from benchmarks.__main__ import main  # noqa: E402
from benchmarks.common import interleaved, profile_top  # noqa: E402


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """One quick run for the module: (the report, the user's KERNELFLOW_HOME during it)."""
    folder = tmp_path_factory.mktemp("bench")
    users_home = folder / "users-store"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KERNELFLOW_HOME", str(users_home))
        assert main(["--quick", "--no-baselines", "--out", str(folder / "README.md")]) == 0
    return (folder / "README.md").read_text(encoding="utf-8"), users_home


@pytest.fixture
def quick_report(quick_run: tuple[str, Path]) -> str:
    return quick_run[0]


@pytest.mark.slow
@pytest.mark.notebook
def test_quick_run_reports_every_figure_with_its_repeat_command(quick_report: str) -> None:
    for number, (key, _) in enumerate(FIGURES, start=1):
        heading = re.search(rf"^## {number}\. (.+)$", quick_report, re.MULTILINE)
        assert heading is not None, f"figure {number} ({key}) has no section"
        assert f"--only {key} --quick --no-baselines`" in quick_report
    summary = quick_report.split("## Summary", 1)[1].split("<a id=", 1)[0]
    assert len(re.findall(r"^\| \d+ \| \[", summary, re.MULTILINE)) == len(FIGURES)
    assert "**error**" not in quick_report, "a benchmark crashed in quick mode"


@pytest.mark.slow
@pytest.mark.notebook
def test_quick_report_names_the_machine_and_the_absent_baselines(quick_report: str) -> None:
    machine = quick_report.split("## Machine", 1)[1].split("## Summary", 1)[0]
    for line in ("| cores |", "| Python |", "| packages (project venv) |", "| baselines |"):
        assert line in machine
    assert "skipped (--no-baselines)" in quick_report
    # Baseline rows are shown as absent, never silently dropped.
    overhead = quick_report.split("## 1. ", 1)[1].split("## 2. ", 1)[0]
    assert re.search(r"^\| flytekit \(local\) \| absent \|", overhead, re.MULTILINE)
    assert re.search(r"^\| plain Python \| [\d.,]+ \| µs/task \|", overhead, re.MULTILINE)


@pytest.mark.slow
@pytest.mark.notebook
def test_benchmarks_leave_the_users_store_alone(quick_run: tuple[str, Path]) -> None:
    # Every figure runs against its own temporary KERNELFLOW_HOME.
    report, users_home = quick_run
    assert "## 1. " in report
    assert not users_home.exists()


def test_interleaved_runs_cases_round_robin_and_drops_the_warmup() -> None:
    calls: list[tuple[str, int]] = []

    def case(name: str, seconds: float) -> object:
        def measure(round_: int) -> float:
            calls.append((name, round_))
            return seconds + round_

        return measure

    timings = interleaved({"a": case("a", 1.0), "b": case("b", 10.0)}, repeats=3, warmup=1)
    assert calls == [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2), ("a", 3), ("b", 3)]
    assert timings.times == {"a": [2.0, 3.0, 4.0], "b": [11.0, 12.0, 13.0]}
    assert timings.median("a") == 3.0
    assert timings.median("b", scale=1e3) == 12_000.0


def test_a_failing_case_is_reported_absent_and_the_others_go_on() -> None:
    def broken(round_: int) -> float:
        raise RuntimeError("no network")

    timings = interleaved({"ours": lambda r: 1.0, "baseline": broken}, repeats=2, warmup=1)
    assert timings.median("ours") == 1.0
    assert timings.median("baseline") is None
    assert "RuntimeError: no network" in timings.errors["baseline"]


def test_profile_names_the_function_that_costs_the_most() -> None:
    def hot() -> int:
        return sum(i * i for i in range(200_000))

    lines = profile_top(lambda: [hot() for _ in range(3)])
    assert lines[0].startswith("profiled total")
    assert any("<genexpr>" in line or "sum" in line for line in lines[1:4])


def test_a_failed_baselines_install_is_reported_and_the_run_goes_on(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import benchmarks.baselines
    from benchmarks.__main__ import _start_baselines
    from benchmarks.common import Config

    monkeypatch.setattr(
        benchmarks.baselines, "ensure_env", lambda: (None, "install failed: no network")
    )
    config = Config(workdir=tmp_path)
    assert _start_baselines(config) is None
    assert config.baselines is None
    assert config.baseline_note == "absent: install failed: no network"


def test_ensure_env_reports_an_interpreter_that_cannot_make_a_venv(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import benchmarks.baselines as baselines

    monkeypatch.setattr(baselines, "base_interpreter", lambda: str(tmp_path / "no-python"))
    python, note = baselines.ensure_env(tmp_path / "venv", timeout=5)
    assert python is None
    assert note.startswith("install failed: FileNotFoundError")
