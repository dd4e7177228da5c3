"""What a student sees: every notebook opened from JupyterLab's file browser in headless Chromium, Run All,
then the rendered page is checked (no error shown, every picture an image of sensible size, every widget
rendered) and photographed; the stepper in 02 is clicked through its four steps.

JupyterLab is started by ``netteach lab`` (the launcher ``./bootstrap.sh lab`` runs) on a free 127.0.0.1
port over a copy of notebooks/. Needs Debian's ``chromium`` and ``chromium-driver`` and pip ``selenium``
(``./bootstrap.sh test`` installs them); when they are installed but the browser cannot start, the test
fails saying why. Screenshots go to ``$NETTEACH_SCREENSHOTS`` or ``browser-screenshots/`` (printed).
"""

from __future__ import annotations

import os
import re
import sys
import time

import pytest

from tests.browser import REPO, Browser, JupyterLabServer
from tests.conftest import needs_root, netteach_leftovers

NOTEBOOK_DIR = os.path.join(REPO, "notebooks")
NOTEBOOKS = sorted(os.path.relpath(os.path.join(d, f), NOTEBOOK_DIR)
                   for d, _, files in os.walk(NOTEBOOK_DIR) if ".ipynb_checkpoints" not in d
                   for f in files if f.endswith(".ipynb"))
SHOTS = os.environ.get("NETTEACH_SCREENSHOTS") or os.path.join(REPO, "browser-screenshots")
TIMES: dict[str, float] = {}

pytestmark = [needs_root, pytest.mark.browser]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    work = str(tmp_path_factory.mktemp("jupyterlab"))
    print(f"\nbrowser screenshots: {SHOTS}")
    with JupyterLabServer(work) as server, Browser(server, SHOTS) as b:
        yield b
    print("\nRun All in the browser: " + ", ".join(f"{k} {v:.1f} s" for k, v in TIMES.items()))


def committed_python(relpath: str) -> str | None:
    import json

    with open(os.path.join(NOTEBOOK_DIR, relpath), encoding="utf-8") as f:
        return json.load(f).get("metadata", {}).get("language_info", {}).get("version")


def check_page(b: Browser, name: str) -> dict:
    """The rendered notebook shows no error, every picture is a loaded image of sensible size, widgets render."""
    r = b.report()
    assert not r["errors"], f"{name} shows an error or stderr output:\n" + "\n---\n".join(r["errors"])
    unrun = [i for i, p in enumerate(r["prompts"]) if not p.strip().strip("[]:").isdigit()]
    assert not unrun, f"{name}: code cells {unrun} did not run (prompts {[r['prompts'][i] for i in unrun]})"
    assert r["images"], f"{name} shows no picture"
    for img in r["images"]:
        assert img["complete"] and img["nw"] >= 100 and img["nh"] >= 60, f"{name}: a picture did not load: {img}"
        assert img["w"] >= 200 and img["h"] >= 60, f"{name}: a picture is shown too small: {img}"
    assert not r["widget_failures"], f"{name}: widgets failed: {r['widget_failures']}"
    assert r["widgets_rendered"] == r["widget_outputs"], (
        f"{name}: {r['widget_outputs'] - r['widgets_rendered']} of {r['widget_outputs']} widgets did not render")
    return r


WIDGET_CELLS_JS = r"""
const label = arguments[0];
const cells = [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell')];
return cells.map((c, i) => [i, c]).filter(([i, c]) => [...c.querySelectorAll('.jp-OutputArea button')]
    .some(b => b.textContent.trim() === label)).map(([i, c]) => {
  const pre = c.querySelector('.jp-OutputArea pre');
  const img = c.querySelector('.jp-OutputArea img');
  const btn = [...c.querySelectorAll('button')].find(b => b.textContent.trim() === label);
  return {index: i, text: pre ? pre.textContent : '', src: img ? img.src : null, disabled: btn.disabled,
          loaded: img ? img.complete && img.naturalWidth : 0};
});
"""
# the widgets a student clicks, by the label of their main button
WIDGETS = {"next step": "stepper", "probe": "reachability explorer", "next hop": "trace explorer"}


def widget_state(b: Browser, label: str, index: int):
    return next((y for y in b.js(WIDGET_CELLS_JS, label) if y["index"] == index), None)


def wait_widget(b: Browser, label: str, index: int, what: str) -> dict:
    """Until cell INDEX shows its widget (views render a moment after the kernel is idle) with its picture."""
    return b.until(lambda d: (lambda v: v if v and v["loaded"] else False)(widget_state(b, label, index)),
                   what, 120)


def press(b: Browser, label: str, index: int):
    [e for e in b.cell(index).find_elements("css selector", ".jp-OutputArea button")
     if e.text.strip() == label][0].click()


def click_stepper(b: Browser, index: int, name: str):
    """Click "next step" four times: each time the step is ticked and the picture changes."""
    s = wait_widget(b, "next step", index, "a fresh stepper")
    assert "→ 1/4" in s["text"] and not s["disabled"], s["text"]
    for k in range(1, 5):
        before = s["src"]
        press(b, "next step", index)
        s = b.until(lambda d: (lambda v: v if v["src"] != before and v["loaded"] and f"✓ {k}/4" in v["text"]
                               else False)(widget_state(b, "next step", index)), f"stepper step {k} to redraw", 120)
        assert "✗" not in s["text"], s["text"]
        b.show_output(index)
        b.shot(f"{name}-stepper-{k}")
    assert s["disabled"], "after four steps the button is disabled"


def click_probe(b: Browser, index: int, name: str):
    """Choose another source, press probe: a new answer names it (from the kernel, ✓ or ✗)."""
    from selenium.webdriver.support.ui import Select

    before = wait_widget(b, "probe", index, "the reachability explorer")["text"]
    src = Select(b.cell(index).find_elements("css selector", ".jp-OutputArea select")[0])
    current = src.first_selected_option.text.strip()
    src.select_by_index(next(i for i, o in enumerate(src.options) if o.text.strip() != current))
    chosen = src.first_selected_option.text.strip()
    press(b, "probe", index)
    x = b.until(lambda d: (lambda v: v if v and v["loaded"] and v["text"] != before and (
        f"ping {chosen} ->" in v["text"] or f"HTTP {chosen} ->" in v["text"]) else False)(
        widget_state(b, "probe", index)), f"the explorer's answer from {chosen}", 120)
    b.show_output(index)
    b.shot(f"{name}-explorer-{index}")
    print(f"  explorer: {x['text'].strip()}")


def click_trace(b: Browser, index: int, name: str):
    """Press "next hop" to the last hop: each time the marked hop moves on."""
    x, k = wait_widget(b, "next hop", index, "the trace explorer"), 1
    while not x["disabled"]:
        before = x["text"]
        press(b, "next hop", index)
        x = b.until(lambda d: (lambda v: v if v["text"] != before and v["loaded"] else False)(
            widget_state(b, "next hop", index)), "the trace explorer's next hop", 120)
        k += 1
        assert re.search(rf"→ +{k}/", x["text"]), x["text"]
        b.show_output(index)
        b.shot(f"{name}-trace-{index}-hop{k}")
    assert k > 1, "the trace explorer had more than one hop to step through"


def click_widgets(b: Browser, name: str) -> list[str]:
    """Every widget on the page, in order: re-run the notebook down to it (Run All ran the notebook's final
    clean-up), click it through, then run the rest as a student would. Returns what was clicked."""
    found = sorted((y["index"], label) for label in WIDGETS for y in b.js(WIDGET_CELLS_JS, label))
    for index, label in found:
        if label != "next hop":  # a trace explorer holds its trace and picture: no lab needed to click it
            b.select_cell(index + 1)
            b.menu("Run", "Run All Above Selected Cell")
            b.wait_idle(f"the cells down to the {WIDGETS[label]}")
            errors = b.report()["errors"]
            assert not errors, f"{name}: re-running down to the {WIDGETS[label]}:\n" + "\n---\n".join(errors)
        {"next step": click_stepper, "probe": click_probe, "next hop": click_trace}[label](b, index, name)
    rerun = [index for index, label in found if label != "next hop"]
    if rerun:  # the rest, from just after the last widget that needed the lab
        b.select_cell(rerun[-1] + 1)
        b.menu("Run", "Run Selected Cell and All Below")
        b.wait_idle("the rest of the notebook")
        check_page(b, name)
    return [WIDGETS[label] for _, label in found]


@pytest.mark.parametrize("relpath", NOTEBOOKS)
def test_notebook_in_the_browser(browser, relpath):
    name = relpath.replace("/", "_").removesuffix(".ipynb")
    browser.open_notebook(relpath)
    try:
        time.sleep(2)  # JupyterLab updates the notebook's metadata from the kernel right after it starts
        opened = browser.report()
        browser.shot(f"{name}-00-opened")
        kernel_python = sys.version.split()[0]  # the kernel runs this interpreter (netteach lab's)
        if committed_python(relpath) == kernel_python:
            assert not opened["dirty"], f"{relpath} opens marked modified: run python -m netteach.devtools.nbclean"
        TIMES[relpath] = browser.run_all()
        print(f"{relpath}: Run All {TIMES[relpath]:.1f} s")
        try:
            r = check_page(browser, relpath)
        finally:
            browser.scroll_shots(name)
        print(f"{relpath}: {len(r['images'])} pictures, {r['widgets_rendered']} widgets")
        clicked = click_widgets(browser, name)
        print(f"{relpath}: clicked through {', '.join(clicked) or 'no widget'}")
        if name == "02_principles":
            assert "stepper" in clicked, "02 shows its stepper"
    finally:
        browser.close_and_shut_down(os.path.basename(relpath))
    # the kernel's exit took its labs with it
    browser.until(lambda d: not netteach_leftovers(), f"{relpath}'s labs to be gone", 60)
