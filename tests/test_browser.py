"""What a student sees, end to end (issue 10's "done when"): an unprivileged user with a fresh clone of this
repository runs ``./bootstrap.sh lab`` (which makes the clone's .venv with pip and starts JupyterLab as that
user, so every lab is rootless); every notebook is opened from JupyterLab's file browser in headless Chromium,
Run All, then the rendered page is checked (no error shown, every picture an image of sensible size, every
widget rendered) and photographed; the stepper in 02 is clicked through its four steps.

The user is a throwaway Linux user made for the test (tests/student_env.Students), its home a temporary folder
holding the clone (tests/browser.fresh_clone: HEAD, plus uncommitted edits of a local working tree). Afterwards
no process of that user is left (each notebook's labs end with its kernel), and the user and its home are
removed. Needs root (to make the user), Debian's ``chromium`` and ``chromium-driver``, pip ``selenium``
(``./bootstrap.sh test`` installs them) and unprivileged user namespaces; it skips, saying which, only when one
is missing. pip reaches PyPI as configured for the caller (PIP_* and proxy variables are passed on). Screenshots
go to ``$NETTEACH_SCREENSHOTS`` or ``browser-screenshots/`` (printed).
"""

from __future__ import annotations

import os
import pwd
import re
import signal
import time

import pytest

from tests.browser import (CHROMEDRIVER, CHROMIUM, REPO, Browser, JupyterLabServer, fresh_clone, processes_of,
                           userns_refused)
from tests.conftest import needs_root, netteach_leftovers
from tests.student_env import Students

NOTEBOOK_DIR = os.path.join(REPO, "notebooks")
NOTEBOOKS = sorted(os.path.relpath(os.path.join(d, f), NOTEBOOK_DIR)
                   for d, _, files in os.walk(NOTEBOOK_DIR) if ".ipynb_checkpoints" not in d
                   for f in files if f.endswith(".ipynb"))
SHOTS = os.environ.get("NETTEACH_SCREENSHOTS") or os.path.join(REPO, "browser-screenshots")
TIMES: dict[str, float] = {}

pytestmark = [needs_root, pytest.mark.browser]


def missing_browser() -> str | None:
    """What the browser test lacks to drive Chromium, or None."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    if missing:
        return f"{', '.join(missing)} missing (Debian's chromium and chromium-driver; ./bootstrap.sh test installs them)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is missing (pip install -e '.[test]'; ./bootstrap.sh test installs it)"
    return None


def helpers_of(uid: int) -> dict[int, str]:
    """The rootless lab helpers UID runs (``python -m netteach.kernel.helper``)."""
    return {pid: cmd for pid, cmd in processes_of(uid).items() if "netteach.kernel.helper" in cmd}


@pytest.fixture(scope="module")
def student():
    """(name, uid, clone): a throwaway user with a fresh clone in its home; afterwards nothing of it is left."""
    why = missing_browser()
    if why:
        pytest.skip(why)
    with Students(1, prefix="ntb") as st:  # not the classroom test's names
        name = st.names[0]
        pw = pwd.getpwnam(name)
        why = userns_refused(name)
        if why:
            pytest.skip(f"unprivileged user namespaces are refused here, so labs cannot be rootless: {why}")
        clone = os.path.join(pw.pw_dir, "netteach")
        print(f"\n{name} (uid {pw.pw_uid}) runs ./bootstrap.sh lab in {fresh_clone(clone)} at {clone}")
        for d, dirs, files in os.walk(clone):
            for f in [d] + [os.path.join(d, x) for x in dirs + files]:
                os.chown(f, pw.pw_uid, pw.pw_gid, follow_symlinks=False)
        try:
            yield name, pw.pw_uid, clone
        finally:
            left = processes_of(pw.pw_uid)
            deadline = time.monotonic() + 60
            while left and time.monotonic() < deadline:  # kernels and their helpers exit a moment after shutdown
                time.sleep(0.5)
                left = processes_of(pw.pw_uid)
            for pid in left:  # only to remove the user: the test fails below
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    assert not left, f"{name} still ran processes after JupyterLab stopped: {left}"
    assert not os.path.exists(pw.pw_dir), f"{pw.pw_dir} was not removed"


@pytest.fixture(scope="module")
def browser(student):
    name, uid, clone = student
    work = os.path.join(pwd.getpwnam(name).pw_dir, "jupyterlab")
    os.makedirs(work)
    print(f"browser screenshots: {SHOTS}")
    with JupyterLabServer(clone, name, work) as server, Browser(server, SHOTS) as b:
        print(f"./bootstrap.sh lab answered after {server.started_in:.0f} s (making .venv included)")
        b.kernel_python = server.python_version()
        b.uid = uid
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
        committed = committed_python(relpath)
        if committed == browser.kernel_python:  # the kernel runs the clone's .venv
            assert not opened["dirty"], f"{relpath} opens marked modified: run python -m netteach.devtools.nbclean"
        else:  # JupyterLab writes the kernel's version into the metadata: the notebook opens modified
            print(f"{relpath}: saved with Python {committed}, the kernel runs {browser.kernel_python}: "
                  "whether it opens unmodified is not checked")
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
    # the kernel's exit took its labs with it: no helper of the student's runs, nothing is on the machine
    browser.until(lambda d: not helpers_of(browser.uid) and not netteach_leftovers(), f"{relpath}'s labs to be gone", 60)
