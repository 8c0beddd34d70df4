"""JupyterLab in headless Chromium: the progress view renders, and its snapshot outlives the kernel.

Issue 12, point 8. A notebook (``%load_ext kernelflow``, a parameters cell, two
``%%task`` cells, ``%workflow run``) is opened in a real JupyterLab and run from
the Run menu. While the first task runs (it waits until the test has seen it),
the live widgets must render and show each task's state and output; when the run
ends they must be replaced by the static snapshot; and after the notebook is
saved, its kernel shut down and the page reloaded, the snapshot must still show,
with no "Error displaying widget: model not found".

Nothing is downloaded: Playwright (the ``browser`` extra) drives Debian's
Chromium, ``/usr/bin/chromium``. ``make test-browser`` installs both and runs
these tests; ``make test`` leaves them out (``-m "not browser"`` in pyproject).
The server listens on 127.0.0.1 only and is stopped, with its kernels, at the end.
Screenshots of each stage (and of a failure) are saved in the test's tmp_path.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("KERNELFLOW_CHROMIUM", "/usr/bin/chromium"))
TIMEOUT_MS = 60_000
RELEASE = "release-make"  # the file the first task waits for: the test creates it
CELLS = [
    (
        "%load_ext kernelflow\nimport os\nimport time\n\n"
        "def wait_for_the_test():\n"
        f"    while not os.path.exists({RELEASE!r}):\n"
        "        time.sleep(0.05)",
        [],
    ),
    ("n_rows = 3", ["parameters"]),
    (
        "%%task make --defer\nprint('making', n_rows, 'rows')\nwait_for_the_test()\n"
        "xs = list(range(n_rows))",
        [],
    ),
    ("%%task total --defer\ntotal = sum(xs)\nprint('total is', total)", []),
    ("%workflow run", []),
]
WIDGET_ERRORS = ("Loading widget", "Error displaying widget", "model not found")


@dataclass
class Lab:
    """A running JupyterLab server: its URL, token and root directory."""

    url: str
    token: str
    root: Path

    def api(self, method: str, path: str) -> Any:
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shut_down_kernels(self) -> None:
        """End every session (and so its kernel), as closing the notebook's kernel does."""
        for session in self.api("GET", "/api/sessions"):
            self.api("DELETE", f"/api/sessions/{session['id']}")
        wait_until(lambda: self.api("GET", "/api/kernels") == [], "the kernels to stop")


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def lab_environment(tmp_path: Path) -> dict[str, str]:
    """The user's environment, with Jupyter's config, data and settings in tmp_path.

    The store (``$KERNELFLOW_HOME``) is the test's own, set by ``conftest.store_home``.
    The announcements toast is turned off, so it never covers the notebook.
    """
    dirs = {
        name: tmp_path / "jupyter" / name.lower()
        for name in (
            "JUPYTER_CONFIG_DIR",
            "JUPYTER_DATA_DIR",
            "JUPYTER_RUNTIME_DIR",
            "JUPYTERLAB_SETTINGS_DIR",
            "JUPYTERLAB_WORKSPACES_DIR",
            "IPYTHONDIR",
        )
    }
    notification = dirs["JUPYTERLAB_SETTINGS_DIR"] / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    (notification / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    return {**os.environ, **{name: str(path) for name, path in dirs.items()}}


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """``jupyter lab`` on a free port of 127.0.0.1; stopped, with its kernels, afterwards."""
    import psutil

    root = tmp_path / "notebooks"
    root.mkdir()
    port, token = free_port(), secrets.token_hex(16)
    command = [
        *(sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root"),
        *(f"--port={port}", "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1"),
        *(f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}"),
        "--LabApp.news_url=None",  # nothing fetched from outside
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    log = tmp_path / "jupyter-lab.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            command,
            cwd=root,
            env=lab_environment(tmp_path),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C of pytest is not the server's
        )
    running = Lab(f"http://127.0.0.1:{port}", token, root)
    try:
        wait_until(lambda: _answers(running, server, log), "JupyterLab to start")
        yield running
    finally:
        family = psutil.Process(server.pid).children(recursive=True)  # its kernels
        server.send_signal(signal.SIGTERM)  # it shuts its kernels down, then exits
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        for process in family:
            if process.is_running():
                process.kill()


def _answers(lab: Lab, server: subprocess.Popen[bytes], log: Path) -> bool:
    if server.poll() is not None:
        raise AssertionError(f"jupyter lab exited with {server.returncode}:\n{log.read_text()}")
    try:
        lab.api("GET", "/api/status")
    except OSError:
        return False
    return True


@pytest.fixture
def page(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A page of headless Chromium (Debian's: no browser is downloaded)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is missing: pip install -e '.[browser]' (make test-browser does)")
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium (make test-browser)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-dev-shm-usage"],  # root in a container: CI
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            yield page
            report = getattr(request.node, "report_call", None)
            if report is not None and report.failed:
                path = screenshot(page, tmp_path, "failure")
                print(f"screenshots of the browser test: {path.parent}")
        finally:
            browser.close()


def screenshot(page: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / "screenshots" / f"{name}.png"
    path.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


def write_notebook(root: Path) -> Path:
    cells = [new_code_cell(source, metadata={"tags": tags}) for source, tags in CELLS]
    notebook = new_notebook(
        cells=cells,
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "kernelflow": {"workflow": "flow"},
        },
    )
    path = root / "flow.ipynb"
    nbformat.write(notebook, path)
    return path


def open_notebook(page: Any, lab: Lab, name: str) -> None:
    """Open the notebook and wait until its kernel is idle."""
    page.goto(f"{lab.url}/lab/tree/{name}?token={lab.token}")
    page.locator(".jp-Notebook").wait_for()
    page.get_by_text("| Idle").wait_for()


def run_all_cells(page: Any) -> None:
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()


def saved_snapshot(path: Path) -> bool:
    """Whether the notebook on disk has the snapshot as the ``%workflow run`` cell's output."""
    outputs = nbformat.read(path, as_version=4).cells[-1].get("outputs", [])
    return any("kernelflow-snapshot" in o.get("data", {}).get("text/html", "") for o in outputs)


def assert_no_widget_errors(page: Any) -> None:
    text = page.locator(".jp-Notebook").inner_text()
    for error in WIDGET_ERRORS:
        assert error not in text


def test_the_progress_view_renders_and_its_snapshot_outlives_the_kernel(
    lab: Lab, page: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    path = write_notebook(lab.root)
    open_notebook(page, lab, path.name)
    run_all_cells(page)

    # While the run goes on: live widgets, a row per task with its state and its output.
    view = page.locator(".kernelflow-progress")
    view.wait_for()
    expect(view.locator(".widget-hprogress")).to_be_visible()
    rows = view.locator(".jupyter-widget-Collapse-header")  # the accordion's titles
    expect(rows).to_have_text(["make: running", "total: pending"])
    rows.first.click()  # open the task's row
    expect(view.locator(".widget-output").first).to_have_text("making 3 rows")
    assert_no_widget_errors(page)
    screenshot(page, tmp_path, "1-running")
    (lab.root / RELEASE).touch()

    # When it ends: the static snapshot, alone in the cell's output.
    snapshot = page.locator(".kernelflow-snapshot")
    snapshot.wait_for()
    expect(view).to_have_count(0)
    expect(snapshot.get_by_role("cell", name="succeeded", exact=True)).to_have_count(2)
    last_cell = page.locator(".jp-Notebook .jp-Cell").last
    expect(last_cell.locator(".jp-OutputArea-output")).to_have_count(1)
    snapshot.get_by_text("total: 1 output").click()  # each task's output, collapsed
    expect(snapshot.get_by_text("total is 3")).to_be_visible()
    screenshot(page, tmp_path, "2-finished")

    # Saved, kernel gone, page reloaded: the snapshot, not a widget whose model is gone.
    page.keyboard.press("Control+s")
    wait_until(lambda: saved_snapshot(path), "the notebook to be saved with its snapshot")
    lab.shut_down_kernels()
    page.reload()
    page.locator(".jp-Notebook").wait_for()
    page.get_by_text("| Idle").wait_for()  # a new kernel: the widget manager has restored
    snapshot.wait_for()
    expect(snapshot.get_by_role("cell", name="make", exact=True)).to_be_visible()
    expect(snapshot.get_by_role("cell", name="succeeded", exact=True)).to_have_count(2)
    snapshot.get_by_text("make: 1 output").click()
    expect(snapshot.get_by_text("making 3 rows")).to_be_visible()
    assert_no_widget_errors(page)
    screenshot(page, tmp_path, "3-reopened")
