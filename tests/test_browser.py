"""The course in a real browser: headless Chromium (the Debian package, driven by Playwright).

1. The built book (tests/test_book.py builds it once per session), served on localhost with
   every request to another host blocked. EVERY notebook page is opened: its figures load,
   its widgets render from the vendored embed bundle, its formulas from the vendored MathJax,
   its exercise solutions are collapsed (and open on a click), with no failed request and no
   JavaScript error. On a page with a widget control (a Dropdown, a slider...) one control is
   moved as a reader would (another option; the slider's handle with the arrow keys) and what
   its widget shows must change: the course's pickers (kdlab.figures.widgets.figure_picker) switch
   precomputed figures in the browser, without a kernel. Screenshot per page:
   runs/screenshots/book-<notebook>.png, scrolled to the moved control when there is one.
2. A real JupyterLab server on localhost: open a notebook, run its widget cell (a temperature
   slider whose callback redraws kdlab.figures.plots.plot_softened in the kernel) and see the
   slider and its live figure appear. Screenshot: runs/screenshots/jupyterlab-widget.png.

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
from kdlab.runtime.files import PROJECT_ROOT

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
# The book's text column reaches its full width (786 px, 89 characters of code) from about
# 1440 px; narrower windows fit about 77 characters and scroll the longest lines.
BOOK_VIEWPORT = {"width": 1440, "height": 1200}
STATE = "application/vnd.jupyter.widget-state+json"
VIEW = "application/vnd.jupyter.widget-view+json"
CONTROLS = {"FloatSliderModel", "IntSliderModel", "DropdownModel", "SelectionSliderModel",
            "ToggleButtonsModel", "CheckboxModel", "IntRangeSliderModel", "FloatRangeSliderModel"}

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - the dev dependencies include it
    sync_playwright = None

pytestmark = [
    pytest.mark.browser,
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


NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob(book.NOTEBOOK_GLOB))
LINKS = {"LinkModel", "DirectionalLinkModel"}
CONTROL_SELECTOR = ".widget-dropdown, .widget-slider, .widget-toggle-buttons, .widget-checkbox"
# What a widget shows, as one string: a checksum of every visible image's bytes (a picker's
# Stack re-creates its <img> with a new blob: URL even for the same figure, so the src alone
# proves nothing) and the text of its HTML and output areas (not the controls' readouts).
SHOWN_JS = """async root => {
  const parts = [];
  for (const img of root.querySelectorAll('img')) {
    if (img.offsetParent === null || !img.getBoundingClientRect().width) continue;
    const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
    let h = 2166136261;
    for (let k = 0; k < bytes.length; k++) { h ^= bytes[k]; h = Math.imul(h, 16777619) >>> 0; }
    parts.push(`img ${bytes.length}:${h}`);
  }
  for (const e of root.querySelectorAll('.widget-html-content, .widget-output'))
    if (e.offsetParent !== null) parts.push(e.innerText);
  return parts.join(' | ');
}"""


def _refs(value) -> list[str]:
    """Model ids a widget's state refers to ("IPY_MODEL_<id>"), in order."""
    if isinstance(value, str):
        return [value[len("IPY_MODEL_"):]] if value.startswith("IPY_MODEL_") else []
    if isinstance(value, dict):
        return [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def page_plan(path: Path) -> dict:
    """What the book page of a committed notebook must show, from the notebook file:
    views (widget views whose model the saved state holds, in page order), figures (PNG
    outputs), solutions (cells tagged solution), and `move`: the view holding the control to
    move (the first with a control that jslink ties to something, else the first with any
    control; None without controls) and whether that control is linked."""
    nb = json.loads(path.read_text())
    state = nb.get("metadata", {}).get("widgets", {}).get(STATE, {}).get("state", {})
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    views = [o["data"][VIEW]["model_id"] for o in outputs if VIEW in o.get("data", {})]
    views = [v for v in views if v in state]
    linked = {r for m in state.values() if m.get("model_name") in LINKS for r in _refs(m.get("state"))}

    def subtree(model_id, seen):
        if model_id in seen or model_id not in state:
            return []
        seen.add(model_id)
        found = [model_id]
        for ref in _refs(state[model_id].get("state")):
            found += subtree(ref, seen)
        return found

    move = None
    for want_linked in (True, False):
        for view in views:
            controls = [m for m in subtree(view, set()) if state[m].get("model_name") in CONTROLS]
            if controls and (not want_linked or any(m in linked for m in controls)):
                move = {"view": view, "linked": want_linked}
                break
        if move:
            break
    figures = sum(1 for o in outputs if "image/png" in o.get("data", {}))
    solutions = sum(1 for c in nb["cells"] if "solution" in c.get("metadata", {}).get("tags", []))
    return {"views": views, "figures": figures, "solutions": solutions, "move": move}


def _shown(area) -> str:
    return area.evaluate(SHOWN_JS)


def move_control(page, control) -> str:
    """Move a rendered control one step as a reader would; return what it did."""
    classes = control.get_attribute("class") or ""
    if "widget-dropdown" in classes:
        select = control.locator("select")
        options = select.locator("option").count()
        current = select.evaluate("e => e.selectedIndex")
        select.select_option(index=(current + 1) % options)
        return f"dropdown option {current} -> {(current + 1) % options}"
    if "widget-slider" in classes:
        readout = control.locator(".widget-readout").first
        before = readout.inner_text()
        for key in ("ArrowRight", "ArrowLeft"):  # at the end of its range, step back instead
            control.locator(".noUi-handle").first.focus()
            page.keyboard.press(key)
            page.wait_for_timeout(200)
            if readout.inner_text() != before:
                return f"slider {before!r} -> {readout.inner_text()!r} ({key})"
        return f"slider stuck at {before!r}"
    if "widget-toggle-buttons" in classes:
        button = control.locator("button:not(.mod-active)").first
        label = button.inner_text()
        button.click()
        return f"toggle button {label!r}"
    control.locator("input").first.click()
    return "checkbox clicked"


def check_book_page(context, base: str, path: Path, screenshot: Path) -> dict:
    """Open a notebook's book page and check it as a reader would: figures and widgets render
    from the page's own files and saved state, formulas typeset, solutions start collapsed and
    open on a click; on a page with a widget control, moving the control changes what the
    widget shows. No JavaScript error, failed request or request off localhost. Saves a
    screenshot (of the moved control's widget, if any). Returns what was done."""
    plan = page_plan(path)
    errors, failed = [], []
    context.external.clear()
    page = context.new_page()
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("requestfailed", lambda req: failed.append(req.url))
    done = {"page": path.stem}
    try:
        page.set_viewport_size(BOOK_VIEWPORT)
        page.goto(f"{base}/notebooks/{path.stem}.html", wait_until="load")
        # embed.js renders each widget-view script whose model the saved state holds
        if plan["views"]:
            page.wait_for_function(
                "n => Array.from(document.querySelectorAll('.widget-subarea'))"
                ".filter(e => e.children.length).length >= n", arg=len(plan["views"]), timeout=30_000)
        if plan["figures"]:
            page.wait_for_function(
                "() => { const f = Array.from(document.querySelectorAll('.cell_output img'));"
                " return f.length && f.every(e => e.complete); }", timeout=30_000)
            widths = page.eval_on_selector_all(".cell_output img", "els => els.map(e => e.naturalWidth)")
            assert widths and all(w > 0 for w in widths), f"{path.stem}: figures did not load: {widths}"
        if page.locator(".math").count():
            page.locator("mjx-container").first.wait_for(state="attached", timeout=20_000)
        # code lines of at most 88 characters (tests/test_hygiene.py) show whole at the
        # book's full text width: no code cell scrolls sideways
        wide = page.eval_on_selector_all(
            ".cell_input pre", "els => els.map((e, i) => [i, e.scrollWidth - e.clientWidth])"
            ".filter(([i, extra]) => extra > 1)")
        assert not wide, (f"{path.stem}: code cells (n-th on the page, pixels hidden) scroll "
                          f"sideways at {BOOK_VIEWPORT['width']} px: {wide}")

        target = None
        if plan["move"]:
            view = plan["move"]["view"]
            marked = page.evaluate("""id => {
              const s = Array.from(document.querySelectorAll(
                  'script[type="application/vnd.jupyter.widget-view+json"]'))
                  .find(e => e.textContent.includes(id));
              // embed.js renders a view into a .widget-subarea right before its script
              // (one cell output can hold several views: a progress line, then a picker)
              const area = s && s.previousElementSibling;
              if (!area || !area.classList.contains('widget-subarea')) return false;
              area.setAttribute('data-kdlab-view', id);
              return true;
            }""", view)
            assert marked, f"{path.stem}: the widget {view} is not on the page"
            area = page.locator(f'[data-kdlab-view="{view}"]')
            control = area.locator(CONTROL_SELECTOR).first
            control.wait_for(state="visible", timeout=10_000)
            control.evaluate("e => e.scrollIntoView({block: 'start'})")
            before = _shown(area)
            assert before, f"{path.stem}: the widget with the control shows no image or text"
            moved = move_control(page, control)
            deadline = time.monotonic() + 10
            after = _shown(area)
            while after == before and time.monotonic() < deadline:
                page.wait_for_timeout(250)
                after = _shown(area)
            kind = "tied in the browser (jslink)" if plan["move"]["linked"] else "needs a kernel"
            assert after != before, (
                f"{path.stem}: moving the control ({moved}; it {kind}) did not change what its "
                "widget shows. In the book there is no kernel: precompute the figures and tie "
                "them to the control with kdlab.figures.widgets.figure_picker")
            done["moved"] = moved
            target = area
        page.wait_for_timeout(300)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        if target is not None:
            target.evaluate("e => e.scrollIntoView({block: 'start'})")
        page.screenshot(path=str(screenshot))

        solutions = page.locator(".tag_solution .cell_input")
        assert solutions.count() == plan["solutions"], (
            f"{path.stem}: {plan['solutions']} solution cells in the notebook, "
            f"{solutions.count()} on the page")
        if plan["solutions"]:
            hidden = [i for i in range(solutions.count()) if not solutions.nth(i).is_visible()]
            assert len(hidden) == plan["solutions"], (
                f"{path.stem}: solutions {sorted(set(range(plan['solutions'])) - set(hidden))} "
                "are shown open; the book must collapse them")
            page.locator(".tag_solution details > summary").first.click()
            solutions.first.wait_for(state="visible", timeout=5_000)  # a reader can open one
            done["solutions"] = f"{plan['solutions']} collapsed, the first opens on a click"
    finally:
        page.close()
    assert not context.external, f"{path.stem}: the page asked the internet for {context.external}"
    assert not failed, f"{path.stem}: requests failed: {failed}"
    assert not errors, f"{path.stem}: JavaScript errors on the page: {errors}"
    assert screenshot.stat().st_size > 10_000, f"{path.stem}: the screenshot is blank"
    return done


@pytest.mark.skipif(not NOTEBOOKS, reason="no committed notebooks in notebooks/ yet")
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_book_page_in_the_browser(browser, served_book, path):
    base, _ = served_book
    done = check_book_page(browser, base, path, SCREENSHOTS / f"book-{path.stem}.png")
    print(done)


def test_the_book_has_controls_to_move():
    """At least one page has a control that works without a kernel (the course's pickers)."""
    plans = {p.stem: page_plan(p) for p in NOTEBOOKS}
    if not plans:
        pytest.skip("no committed notebooks in notebooks/ yet")
    assert any(p["move"] and p["move"]["linked"] for p in plans.values()), (
        "no notebook has a widget control tied to its figures in the browser "
        "(kdlab.figures.widgets.figure_picker): the book has nothing to move")


WIDGET_NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "# Widget check\n\nRun the cell below."},
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": (
            "import ipywidgets, torch\n"
            "import matplotlib.pyplot as plt\n"
            "from kdlab.figures import plots, widgets\n"
            "classes = [f'class {i}' for i in range(6)]\n"
            "def draw(temperature=4.0):  # a live widget: the kernel redraws on every move\n"
            "    plots.plot_softened(torch.tensor([4.0, 2.5, 1.0, 0.0, -1.0, -2.0]), classes, (temperature,))\n"
            "    plt.show()\n"
            "ipywidgets.interactive(draw, temperature=ipywidgets.FloatSlider(\n"
            "    value=4.0, min=0.5, max=20.0, step=0.5, description='T', continuous_update=False))")},
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": (
            "import matplotlib.pyplot as plt\n"
            "def frame(width):  # frames of different widths: which one shows is visible in the DOM\n"
            "    fig, ax = plt.subplots(figsize=(width, 1.5))\n"
            "    ax.set_title(f'{width} inches wide')\n"
            "    return fig\n"
            "widgets.figure_picker({f'{w} in': frame(w) for w in (3, 6)}, 'width')")},
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

    # The course's precomputed-figure picker (kdlab.figures.widgets.figure_picker): choosing another
    # option shows the other figure, switched in the browser by jslink.
    picker = page.locator(".jp-CodeCell").nth(1)
    picker.locator(".cm-content").click()
    page.keyboard.press("Shift+Enter")
    shown = picker.locator(".jp-OutputArea-output .widget-image")
    shown.first.wait_for(state="visible", timeout=90_000)
    width = "e => e.naturalWidth"
    narrow = shown.first.evaluate(width)
    picker.locator(".widget-dropdown select").select_option(index=1)
    page.wait_for_function("([el, old]) => { const img = el.closest('.jp-OutputArea-output')"
                           ".querySelector('.widget-image'); return img && img.naturalWidth > old; }",
                           arg=[picker.locator(".jp-OutputArea-output").first.element_handle(), narrow],
                           timeout=30_000)
    assert shown.first.evaluate(width) > narrow, "choosing the wider figure did not show it"

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "jupyterlab-widget.png"))
    page.close()
    assert not errors, f"JavaScript errors in JupyterLab: {errors}"
    assert not browser.external, f"JupyterLab asked the internet for {browser.external}"
