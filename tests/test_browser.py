"""The course in a real browser: headless Chromium (the Debian package, driven by Playwright).

1. The built book (tests/test_book.py builds it once per session), served on localhost with
   every request to another host blocked: a page's figures load, its widgets render from the
   vendored embed bundle, its formulas from the vendored MathJax, with no failed request and no
   JavaScript error. Screenshot: runs/screenshots/book-<notebook>.png.
2. A real JupyterLab server on localhost: open a notebook, run its widget cell (the course's
   temperature slider, kdlab.plots.temperature_explorer) and see the slider and its live
   figure appear. Screenshot: runs/screenshots/jupyterlab-widget.png.

Skipped, with the reason, only where Chromium or Playwright is missing (`make test` installs
Chromium with apt-get when run as root). Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from kdlab.tools import book
from kdlab.files import PROJECT_ROOT

try:  # the module pytest collected (tests/ is on sys.path): its build cache is shared
    from test_book import built_book
except ImportError:  # tests/ made a package
    from tests.test_book import built_book

CHROMIUM = shutil.which("chromium") or next(
    (p for p in ("/usr/bin/chromium", "/usr/lib/chromium/chromium") if Path(p).exists()), None)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
                 "--disable-quic", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
SCREENSHOTS = PROJECT_ROOT / "runs" / "screenshots"
STATE = "application/vnd.jupyter.widget-state+json"
VIEW = "application/vnd.jupyter.widget-view+json"
CONTROLS = {"FloatSliderModel", "IntSliderModel", "DropdownModel", "SelectionSliderModel",
            "ToggleButtonsModel", "CheckboxModel", "IntRangeSliderModel", "FloatRangeSliderModel"}

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the dev dependencies include it
    sync_playwright = None

pytestmark = [
    pytest.mark.skipif(sync_playwright is None,
                       reason="the playwright Python package is not installed (`make setup` installs it)"),
    pytest.mark.skipif(CHROMIUM is None,
                       reason="no Chromium: install the Debian package `chromium` "
                              "(`make test` does so with apt-get when run as root)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """A fresh headless Chromium profile; every request off localhost is recorded and blocked."""
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM,
            headless=True, args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 1200})
        context.external = []

        def only_localhost(route):
            url = route.request.url
            if url.startswith(("http://127.0.0.1:", "data:", "blob:")):
                route.continue_()
            else:
                context.external.append(url)
                route.abort()

        context.route("**/*", only_localhost)
        yield context
        context.close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output readable
        pass


@pytest.fixture(scope="module")
def served_book(tmp_path_factory):
    html = built_book(tmp_path_factory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(html)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", html
    server.shutdown()
    server.server_close()


def widget_page() -> tuple[Path, int, bool]:
    """The committed notebook to look at: (path, widget views to expect, has a control).

    Prefers a notebook with an interactive control (a slider...) and a figure; the views
    expected are those whose model the saved widget state holds.
    """
    best = None
    for path in sorted((PROJECT_ROOT / "notebooks").glob(book.NOTEBOOK_GLOB)):
        nb = json.loads(path.read_text())
        state = nb.get("metadata", {}).get("widgets", {}).get(STATE, {}).get("state", {})
        outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
        views = [o["data"][VIEW]["model_id"] for o in outputs if VIEW in o.get("data", {})]
        shown = sum(1 for v in views if v in state)
        figures = sum(1 for o in outputs if "image/png" in o.get("data", {}))
        control = any(m.get("model_name") in CONTROLS for m in state.values())
        if shown and figures:
            rank = (control, shown)
            if best is None or rank > best[0]:
                best = (rank, path, shown, control)
    if best is None:
        pytest.skip("no committed notebook has both a figure and a saved widget")
    return best[1], best[2], best[3]


def test_book_page_shows_figure_widget_and_formulas_offline(browser, served_book):
    base, html = served_book
    notebook, expected_views, has_control = widget_page()
    errors, failed = [], []
    page = browser.new_page()
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("requestfailed", lambda req: failed.append(req.url))
    page.goto(f"{base}/notebooks/{notebook.stem}.html", wait_until="load")

    # embed.js replaces each widget-view script whose model it knows with a rendered widget
    page.wait_for_function(
        "n => Array.from(document.querySelectorAll('.widget-subarea')).filter(e => e.children.length).length >= n",
        arg=expected_views, timeout=30_000)
    control = page.locator(".widget-subarea .widget-slider, .widget-subarea .widget-dropdown, "
                           ".widget-subarea .widget-toggle-buttons, .widget-subarea .widget-checkbox").first
    if has_control:
        control.wait_for(state="visible", timeout=10_000)
    figures = page.eval_on_selector_all(".cell_output img", "els => els.map(e => e.complete && e.naturalWidth)")
    assert figures and all(w and w > 0 for w in figures), f"figures did not load: {figures}"
    if page.locator(".math").count():
        page.locator("mjx-container").first.wait_for(state="attached", timeout=20_000)

    target = control if has_control else page.locator(".widget-subarea").first
    target.evaluate("e => e.scrollIntoView({block: 'center'})")
    page.wait_for_timeout(300)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"book-{notebook.stem}.png"
    page.screenshot(path=str(shot))
    page.close()

    assert not browser.external, f"the page asked the internet for {browser.external}"
    assert not failed, f"requests failed: {failed}"
    assert not errors, f"JavaScript errors on the page: {errors}"
    assert shot.stat().st_size > 10_000


WIDGET_NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "# Widget check\n\nRun the cell below."},
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": (
            "import torch\n"
            "from kdlab import plots\n"
            "classes = [f'class {i}' for i in range(6)]\n"
            "plots.temperature_explorer(torch.tensor([4.0, 2.5, 1.0, 0.0, -1.0, -2.0]), classes, classes[0])")},
    ],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
                 "language_info": {"name": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}


@pytest.fixture
def jupyterlab(tmp_path):
    """A JupyterLab server on a free localhost port, token off, in a folder of its own."""
    root = tmp_path / "lab"
    root.mkdir()
    (root / "widget_check.ipynb").write_text(json.dumps(WIDGET_NOTEBOOK))
    news = tmp_path / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text(json.dumps({"fetchNews": "false"}))  # no "get news?" toast over the screenshot
    port = free_port()
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}",
           f"--LabApp.user_settings_dir={tmp_path / 'settings'}", f"--LabApp.workspaces_dir={tmp_path / 'ws'}",
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"))
    log = open(tmp_path / "jupyterlab.log", "w")
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail("JupyterLab did not start:\n" + (tmp_path / "jupyterlab.log").read_text()[-3000:])
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _kernel_idle(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/api/sessions", timeout=5) as reply:
        sessions = json.load(reply)
    return bool(sessions) and all(s["kernel"]["execution_state"] == "idle" for s in sessions)


def test_jupyterlab_runs_a_widget_cell(browser, jupyterlab):
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(f"{jupyterlab}/lab/tree/widget_check.ipynb", wait_until="load")
    # The toolbar says idle before the kernel is connected; a cell run then is dropped. Wait
    # for the server's kernel and the status bar to agree.
    # (page.wait_for_timeout, not time.sleep: Playwright serves the request router only while
    # it is called.)
    deadline = time.monotonic() + 90
    while not _kernel_idle(jupyterlab):
        assert time.monotonic() < deadline, "the notebook's kernel did not start"
        page.wait_for_timeout(500)
    page.get_by_text("| Idle").wait_for(timeout=60_000)
    cell = page.locator(".jp-CodeCell").first
    prompt = cell.locator(".jp-InputArea-prompt").first
    for attempt in range(2):
        cell.locator(".cm-content").click()
        page.keyboard.press("Shift+Enter")
        try:  # "[*]:" while running, "[1]:" when done
            page.wait_for_function("e => /\\[(\\*|\\d+)\\]/.test(e.textContent)", arg=prompt.element_handle(),
                                   timeout=15_000)
            break
        except Exception:
            if attempt:
                raise

    output = cell.locator(".jp-Cell-outputArea > .jp-OutputArea-child > .jp-OutputArea-output")
    output.locator(".widget-slider").wait_for(state="visible", timeout=90_000)
    output.locator(".widget-output img").first.wait_for(state="visible", timeout=60_000)  # drawn by the kernel
    assert "4.00" in output.locator(".widget-readout").first.inner_text()
    assert re.fullmatch(r"\[\d+\]:", prompt.inner_text().strip()), f"the cell did not finish: {prompt.inner_text()!r}"

    # A student moves the slider: the kernel redraws the figure for the new temperature.
    figure = output.locator(".widget-output img").first
    before = figure.get_attribute("src")
    output.locator(".widget-slider .noUi-handle").first.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function("e => e.textContent.trim() === '4.50'",
                           arg=output.locator(".widget-readout").first.element_handle(), timeout=30_000)
    page.wait_for_function("([img, old]) => img.isConnected ? img.src !== old : true",
                           arg=[figure.element_handle(), before], timeout=60_000)
    figure.wait_for(state="visible", timeout=60_000)
    assert figure.get_attribute("src") != before, "moving the slider did not redraw the figure"

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "jupyterlab-widget.png"))
    page.close()
    assert not errors, f"JavaScript errors in JupyterLab: {errors}"
    assert not browser.external, f"JupyterLab asked the internet for {browser.external}"
