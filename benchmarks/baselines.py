"""The baselines (flytekit, Apache Hamilton) in their own virtual env, driven over a pipe.

They are heavy and pin their own dependencies, so they never enter the project's
venv: the first run creates ``benchmarks/.venv-baselines`` and installs them
there. Measurements run in a subprocess (``baseline_worker.py``) that answers one
JSON request per line, so the runner can interleave them with kernelflow's own
repetitions (kernelflow, baseline, kernelflow, baseline, ...) in the same run.
If the install fails (no network, a timeout), the baselines are reported absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-baselines"
WORKER = HERE / "baseline_worker.py"
PACKAGES = ("flytekit", "apache-hamilton", "pandas", "pyarrow")
INSTALL_TIMEOUT = 300.0
_MARKER = ".installed"


def venv_python(venv: Path = VENV) -> Path:
    """The interpreter of the baselines env (POSIX layout)."""
    return venv / "bin" / "python"


def base_interpreter() -> str:
    """The interpreter to create the env with: the one beneath the project's venv."""
    return getattr(sys, "_base_executable", None) or sys.executable


def ensure_env(venv: Path = VENV, timeout: float = INSTALL_TIMEOUT) -> tuple[Path | None, str]:
    """Create and fill the baselines env on first use; (python, note) or (None, why not).

    A marker file records a finished install, so a half-made env (an install cut
    short) is retried rather than used.
    """
    python = venv_python(venv)
    if (venv / _MARKER).is_file() and python.exists():
        return python, "existing env"
    deadline = time.monotonic() + timeout
    try:
        if not python.exists():
            _run([base_interpreter(), "-m", "venv", str(venv)], deadline)
        _run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *PACKAGES,
            ],
            deadline,
        )
    except (OSError, subprocess.SubprocessError) as error:
        return None, f"install failed: {_short(error)}"
    (venv / _MARKER).write_text(" ".join(PACKAGES) + "\n")
    return python, "installed now"


def _run(command: list[str], deadline: float) -> None:
    remaining = max(1.0, deadline - time.monotonic())
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=remaining)


def _short(error: BaseException) -> str:
    if isinstance(error, subprocess.CalledProcessError):
        lines = (error.stderr or error.stdout or "").strip().splitlines()
        return lines[-1] if lines else f"exit status {error.returncode}"
    if isinstance(error, subprocess.TimeoutExpired):
        return f"timed out after {error.timeout:.0f} s"
    return f"{type(error).__name__}: {error}"


class BaselineWorker:
    """One long-lived worker process in the baselines env; ``call`` is one request.

    ``home`` is the worker's HOME, FLYTE and Hamilton cache directory, so their
    caches are as isolated as kernelflow's KERNELFLOW_HOME.
    """

    def __init__(self, python: Path, home: Path) -> None:
        self.python = python
        home.mkdir(parents=True, exist_ok=True)
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("VIRTUAL_ENV", "PYTHON", "KERNELFLOW"))
        }
        (home / "tmp").mkdir(exist_ok=True)
        env.update(
            HOME=str(home),
            BENCH_HOME=str(home),
            TMPDIR=str(home / "tmp"),
            FLYTE_SDK_LOGGING_LEVEL="40",
            HAMILTON_TELEMETRY_ENABLED="false",
        )
        self._process = subprocess.Popen(
            [str(python), str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=str(home),
        )
        self.versions: dict[str, str] = self.call("versions")

    def call(self, op: str, **args: Any) -> Any:
        """Send one request; the worker's answer, or raise RuntimeError with its error."""
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"baseline worker exited during {op!r}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"baseline {op!r} failed: {answer['error']}")
        return answer["result"]

    def close(self) -> None:
        if self._process.poll() is None:
            try:
                self.call("quit")
            except (RuntimeError, OSError, ValueError):
                pass
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
