"""JupyterLab driven in a real browser, the way students use the course (`make test-browser`).

Starts `python -m course_utils.tools.lab` (what `make lab` runs) on 127.0.0.1, on a free port,
with its random token, in its own process group; opens notebook 00 in Debian's Chromium
through Playwright; runs all cells from the Run menu; waits for the kernel to go idle;
checks that no cell failed and that the sample-images figure rendered; saves a screenshot
to build/lab-00.png; stops the server by its PID.

Not part of `make test` (the Makefile passes --ignore=tests/browser there). Needs Debian's
chromium (`apt-get install chromium`); Playwright's own browser download is never used.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from course_helpers import proc_alive, proc_children, wait_for_lab_url
from course_utils.tools.lab import free_port

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = "notebooks/00_getting_started.ipynb"
SCREENSHOT = REPO / "build" / "lab-00.png"
LOG = REPO / "build" / "lab-browser.log"
CHROMIUM = os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SAMPLES_CALL = "plot_class_samples("  # course_utils.plots: the grid of sample images
READY_TIMEOUT = 120  # s for the server to print its URL
RUN_TIMEOUT = 600  # s for notebook 00 to run (about a minute in the smoke profile)

# Read the notebook's state from JupyterLab's own model (window.jupyterapp, exposed for
# this test only): kernel status, and per code cell its execution count, its state and
# the types of its outputs.
STATE_JS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.content || !panel.sessionContext) return null;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = [];
  for (const cell of panel.content.widgets) {
    const m = cell.model;
    if (m.type !== 'code') continue;
    const outputs = [];
    for (let i = 0; i < m.outputs.length; i++) {
      const o = m.outputs.get(i).toJSON();
      const text = [].concat(o.text || (o.data && o.data['text/plain']) || []).join('');
      outputs.push({type: o.output_type, ename: o.ename || null, evalue: o.evalue || null,
                    mimes: Object.keys(o.data || {}), text: text.slice(0, 300)});
    }
    cells.push({count: m.executionCount, state: m.executionState || null, outputs,
                source: m.sharedModel.getSource(),
                images: cell.node.querySelectorAll('.jp-OutputArea-output img').length});
  }
  return {path: panel.context.path, kernel: kernel ? kernel.status : null, cells};
}"""


def _check_prerequisites() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's Chromium with "
                    "`sudo apt-get install chromium` (or set COURSE_CHROMIUM to a Chromium binary)")
    if not (REPO / NOTEBOOK).exists():
        pytest.fail(f"{NOTEBOOK} is missing")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """`python -m course_utils.tools.lab` in its own process group; yields (url, token, pid)."""
    _check_prerequisites()
    # A clean Jupyter: no user config, settings or workspace from this machine's account.
    home = tmp_path_factory.mktemp("jupyter")
    settings = home / "lab-settings"
    user_settings = {
        # Render every cell (no windowing), so every output is in the page.
        "notebook-extension/tracker": {"windowingMode": "none"},
        # Never write the executed notebook back over the committed one.
        "docmanager-extension/plugin": {"autosave": False},
    }
    for name, values in user_settings.items():
        path = settings / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # figures must render inline, as for a student
    env.update(
        COURSE_PROFILE=os.environ.get("COURSE_PROFILE", "smoke"),
        COURSE_PROGRESS="0",
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        PYTHONUNBUFFERED="1",
    )
    LOG.parent.mkdir(parents=True, exist_ok=True)
    log = LOG.open("w")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "course_utils.tools.lab", "--port", str(port), "--no-browser",
         "--", "--LabApp.expose_app_in_browser=True"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=log, text=True,
        start_new_session=True,  # its own process group: stopped as one below
    )
    server: list[int] = []
    try:
        match = wait_for_lab_url(proc, READY_TIMEOUT, LOG)
        url, printed_port, token = match.groups()
        server = proc_children(proc.pid)  # its own process group: checked by PID below
        assert int(printed_port) == port
        assert len(token) >= 32, "the token should be long and random"
        yield url, token, proc.pid
    finally:
        # Stop the server by its PID: `kill PID` must stop JupyterLab too (course_utils.tools.lab
        # stops its server on SIGTERM). Whatever is left in its process group is killed
        # and reported, and so is the server (in a group of its own) if it outlives it.
        leftovers = _stop_by_pid(proc)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and [p for p in server if proc_alive(p)]:
            time.sleep(0.2)
        leftovers += [p for p in server if proc_alive(p)]
        log.close()
    assert not leftovers, f"still running after SIGTERM to {proc.pid}: {leftovers}"


def _stop_by_pid(proc: subprocess.Popen, timeout: float = 30) -> list[int]:
    """SIGTERM to ``proc``; returns the PIDs of its process group still alive after
    ``timeout`` s (then SIGKILLed)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    deadline = time.monotonic() + 10
    alive = _group_members(proc.pid)
    while alive and time.monotonic() < deadline:  # the server shuts down after its parent
        time.sleep(0.2)
        alive = _group_members(proc.pid)
    if alive:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return alive


def _group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def test_lab_answers_only_with_its_token_and_has_news_off(lab):
    url, token, pid = lab
    base = url.split("/lab?")[0]
    with pytest.raises(urllib.error.HTTPError) as denied:
        urllib.request.urlopen(f"{base}/api/contents/notebooks", timeout=10)
    assert denied.value.code == 403
    setting = "@jupyterlab/apputils-extension:notification"
    with urllib.request.urlopen(f"{base}/lab/api/settings/{setting}?token={token}",
                                timeout=10) as response:
        schema = json.load(response)["schema"]["properties"]
    # overrides.json, through the lab's app_settings_dir: no consent popup, no update check.
    assert schema["fetchNews"]["default"] == "false"
    assert schema["checkForUpdates"]["default"] is False
    with urllib.request.urlopen(f"{base}/lab/api/news?token={token}", timeout=10) as response:
        assert json.load(response) == {"news": []}  # LabApp.news_url=None: nothing fetched


def _notebook_state(page) -> dict:
    return page.evaluate(STATE_JS) or {}


def _menu(page, menu: str, item: str) -> None:
    """Click ``menu`` in JupyterLab's menu bar, then its entry ``item``."""
    page.locator("#jp-MainMenu .lm-MenuBar-itemLabel", has_text=re.compile(f"^{menu}$")).click()
    page.get_by_role("menuitem", name=item, exact=True).click()


def test_notebook_00_runs_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright

    url, token, pid = lab
    notebook_mtime = (REPO / NOTEBOOK).stat().st_mtime
    nb_url = url.replace("/lab?", f"/lab/tree/{NOTEBOOK}?")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            start = time.monotonic()
            page.goto(nb_url)
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
            # The kernel has started once it reports idle.
            page.wait_for_function(
                "() => { const s = (" + STATE_JS + ")();"
                " return s && s.path.endsWith('00_getting_started.ipynb')"
                " && s.kernel === 'idle'; }",
                timeout=120_000)
            ready = time.monotonic() - start
            print(f"lab ready with notebook 00 and an idle kernel in {ready:.1f} s")
            cells = _notebook_state(page)["cells"]
            assert cells, "notebook 00 has no code cells"

            # Edit > Clear Outputs of All Cells, so that every output checked below comes
            # from this run (the committed notebook has outputs), then Run > Run All Cells.
            _menu(page, "Edit", "Clear Outputs of All Cells")
            page.wait_for_function(
                "() => (" + STATE_JS + ")().cells.every("
                "c => c.count === null && !c.outputs.length)",
                timeout=30_000)
            _menu(page, "Run", "Run All Cells")
            start = time.monotonic()
            # Done when the kernel is idle, no cell is running or queued, and every cell
            # ran -- or one failed (Run All stops there).
            page.wait_for_function(
                "() => { const s = (" + STATE_JS + ")();"
                " return s.kernel === 'idle' && s.cells.every(c => c.state !== 'running')"
                "   && (s.cells.every(c => c.count !== null)"
                "       || s.cells.some(c => c.outputs.some(o => o.type === 'error'))); }",
                timeout=RUN_TIMEOUT * 1000, polling=500)
            print(f"all cells ran in {time.monotonic() - start:.1f} s")

            state = _notebook_state(page)
            counts = [c["count"] for c in state["cells"]]
            errors = [o for c in state["cells"] for o in c["outputs"] if o["type"] == "error"]
            assert not errors, f"error outputs: {errors}"
            assert counts == list(range(1, len(counts) + 1)), f"execution counts {counts}"
            # Nothing shows as an error in the page either.
            assert page.locator(".jp-OutputArea-output:has-text('Traceback')").count() == 0

            # The sample-images figure: the cell that calls plot_class_samples shows an
            # image/png output, rendered as an <img> in its output area.
            samples = [i for i, c in enumerate(state["cells"]) if SAMPLES_CALL in c["source"]]
            assert samples, f"no code cell in notebook 00 calls {SAMPLES_CALL}"
            cell = state["cells"][samples[0]]
            assert any("image/png" in o["mimes"] for o in cell["outputs"]), repr(cell["outputs"])
            assert cell["images"] >= 1, "the sample-images figure did not render"
            code_cell = page.locator(".jp-CodeCell").nth(samples[0])
            first = code_cell.locator(".jp-OutputArea-output img").first
            # Screenshot from the top of that cell: its code, [n] and the figure.
            code_cell.evaluate("node => node.scrollIntoView({block: 'start'})")
            size = first.evaluate("img => [img.naturalWidth, img.naturalHeight]")
            assert size[0] > 100 and size[1] > 100, f"the figure is only {size} pixels"
            page.wait_for_timeout(500)
            # No news popup: the lab's configuration turns it off.
            assert page.get_by_text("official Jupyter news").count() == 0
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 10_000
    # The test never saved the notebook: the committed file is untouched.
    assert (REPO / NOTEBOOK).stat().st_mtime == notebook_mtime, f"{NOTEBOOK} was written to"
