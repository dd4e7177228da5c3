"""Drive JupyterLab in Debian's headless Chromium (Selenium + /usr/bin/chromedriver).

The server is started by the project's own launcher (``netteach lab``) on a free
127.0.0.1 port, over a *copy* of notebooks/ (Run All makes a notebook dirty and
JupyterLab would autosave outputs into the committed files), with its settings,
workspaces and runtime files in a temporary folder. Nothing is downloaded:
Selenium gets the driver's path, Chromium gets the flags that keep it off the
network (the machine has none).

Used by tests/test_browser.py; by hand::

    with JupyterLabServer(tmpdir) as server, Browser(server, shots_dir) as b:
        b.open_notebook("02_principles.ipynb"); b.run_all(); print(b.page_report())
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
NOTEBOOKS = os.path.join(REPO, "notebooks")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--disable-crash-reporter", "--disable-breakpad", "--window-size=1400,1000", "--lang=en-US"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLabServer:
    """``netteach lab --dir COPY`` on a free port, with a known token; stopped by its pid."""

    def __init__(self, workdir: str, timeout: float = 120):
        self.workdir = workdir
        self.timeout = timeout
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.root = os.path.join(workdir, "notebooks")
        self.proc: subprocess.Popen | None = None
        self.log_path = os.path.join(workdir, "jupyterlab.log")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        shutil.copytree(NOTEBOOKS, self.root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        settings = os.path.join(self.workdir, "settings")
        # no autosave: the copies must stay as they are (the clean-on-open check reads them)
        os.makedirs(os.path.join(settings, "@jupyterlab", "docmanager-extension"))
        with open(os.path.join(settings, "@jupyterlab", "docmanager-extension", "plugin.jupyterlab-settings"),
                  "w") as f:
            json.dump({"autosave": False}, f)
        # every cell in the page (no windowing), so the page report sees all outputs
        os.makedirs(os.path.join(settings, "@jupyterlab", "notebook-extension"))
        with open(os.path.join(settings, "@jupyterlab", "notebook-extension", "tracker.jupyterlab-settings"),
                  "w") as f:
            json.dump({"windowingMode": "none"}, f)
        # no "what's new"/news pop-ups asking to reach the internet
        os.makedirs(os.path.join(settings, "@jupyterlab", "apputils-extension"))
        with open(os.path.join(settings, "@jupyterlab", "apputils-extension", "notification.jupyterlab-settings"),
                  "w") as f:
            json.dump({"fetchNews": "false", "checkForUpdates": False}, f)
        # JupyterLab's files (runtime, config, notebook secret and signatures) in the temporary folder
        env = dict(os.environ, JUPYTER_RUNTIME_DIR=os.path.join(self.workdir, "runtime"),
                   JUPYTER_CONFIG_DIR=os.path.join(self.workdir, "config"),
                   JUPYTER_DATA_DIR=os.path.join(self.workdir, "data"),
                   IPYTHONDIR=os.path.join(self.workdir, "ipython"),
                   MPLCONFIGDIR=os.path.join(self.workdir, "mpl"))
        launcher = os.path.join(os.path.dirname(sys.executable), "netteach")
        argv = [launcher, "lab", "--dir", self.root, f"--port={self.port}", "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={self.token}",
                f"--LabApp.user_settings_dir={settings}",
                f"--LabApp.workspaces_dir={os.path.join(self.workdir, 'workspaces')}",
                "--LabApp.news_url=", "--ServerApp.open_browser=False"]
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     start_new_session=True)
        deadline = time.monotonic() + self.timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=5) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not answer on {self.url} in {self.timeout:.0f} s: "
                                   f"{self.log_tail()}")
            time.sleep(0.3)

    def log_tail(self, n: int = 3000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self):
        """SIGTERM to the server's own process group (it and the kernels it started), then wait."""
        if self.proc is None or self.proc.poll() is not None:
            return
        # shut kernels down through the API first, so their labs are destroyed by their own code
        try:
            req = urllib.request.Request(f"{self.url}/api/shutdown?token={self.token}", method="POST")
            urllib.request.urlopen(req, timeout=10).close()
            self.proc.wait(timeout=30)
        except Exception:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def start_chromium(download_dir: str):
    """A headless Chromium session through /usr/bin/chromedriver; raises saying why it could not start."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} missing: install Debian's chromium and chromium-driver "
                           "(./bootstrap.sh setup does)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        raise RuntimeError("selenium is missing: pip install -e '.[test]' (./bootstrap.sh setup does)") from exc
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={os.path.join(download_dir, 'chromium-profile')}"]:
        opts.add_argument(flag)
    # the driver's path is given, so Selenium Manager never tries to download one; HOME and XDG folders in the
    # temporary folder, so Chromium writes nothing in the user's (crash reports, dconf)
    home = os.path.join(download_dir, "chromium-home")
    env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"),
               XDG_CACHE_HOME=os.path.join(home, ".cache"), XDG_DATA_HOME=os.path.join(home, ".local", "share"))
    service = Service(executable_path=CHROMEDRIVER, log_output=os.path.join(download_dir, "chromedriver.log"),
                      env=env)
    try:
        return webdriver.Chrome(service=service, options=opts)
    except Exception as exc:
        raise RuntimeError(f"Chromium could not start ({CHROMIUM} via {CHROMEDRIVER}): {exc}") from exc


# JavaScript run in the page: what a student sees in the current notebook.
PAGE_REPORT_JS = r"""
const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
if (!panel) return null;
const cells = [...panel.querySelectorAll('.jp-Cell')];
const code = cells.filter(c => c.classList.contains('jp-CodeCell'));
const prompts = code.map(c => (c.querySelector('.jp-InputPrompt') || {}).textContent || '');
const errors = [];
for (const c of code) {
  for (const o of c.querySelectorAll('.jp-OutputArea-output')) {
    const mime = o.getAttribute('data-mime-type') || '';
    if (mime === 'application/vnd.jupyter.stderr') {
      errors.push(o.textContent.slice(0, 2000));
    }
  }
}
const images = [...panel.querySelectorAll('.jp-OutputArea img')].map(i => {
  const r = i.getBoundingClientRect();
  return {w: r.width, h: r.height, nw: i.naturalWidth, nh: i.naturalHeight, complete: i.complete,
          widget: !!i.closest('.jupyter-widgets'), src: i.src.slice(0, 40)};
});
// a widget's output has no mime-type attribute (its own renderer); a widget shown as text did not render
const widgetOutputs = [...panel.querySelectorAll('.jp-OutputArea-output')].filter(o => !o.hasAttribute('data-mime-type'));
const widgetsRendered = widgetOutputs.filter(o => o.querySelector('.jupyter-widgets') &&
                                             !/Error displaying widget/.test(o.textContent)).length;
const widgetFailures = [...panel.querySelectorAll('.jp-OutputArea-output')].map(o => o.textContent)
  .filter(t => /Error displaying widget|Loading widget|^\s*(VBox|HBox|Box|Button|Image|IntProgress|Dropdown)\(/.test(t))
  .map(t => t.slice(0, 300));
const tab = document.querySelector('#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current');
const status = document.querySelector('.jp-Notebook-ExecutionIndicator');
return {cells: cells.length, code: code.length, prompts, errors, images,
        widget_outputs: widgetOutputs.length, widgets_rendered: widgetsRendered, widget_failures: widgetFailures,
        dirty: tab ? tab.classList.contains('jp-mod-dirty') : null,
        title: tab ? tab.textContent : null,
        kernel: status ? status.getAttribute('data-status') : null};
"""


ACCEPT_KERNEL_DIALOG_JS = r"""
const d = document.querySelector('.jp-Dialog');
if (d && /Select Kernel/.test(d.textContent)) { const b = d.querySelector('.jp-mod-accept'); if (b) b.click(); }
"""
KERNEL_NAME_JS = r"""
const k = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Toolbar-kernelName');
return k ? k.textContent.trim() : '';
"""


class Browser:
    """A Chromium session on one JupyterLab server, with helpers that click like a student."""

    def __init__(self, server: JupyterLabServer, shots_dir: str, wait: float = 180):
        self.server = server
        self.shots_dir = shots_dir
        self.wait_s = wait
        self.driver = None

    def __enter__(self):
        os.makedirs(self.shots_dir, exist_ok=True)
        self.driver = start_chromium(self.server.workdir)
        self.driver.set_page_load_timeout(120)
        self.driver.get(f"{self.server.url}/lab?token={self.server.token}")
        self.until(lambda d: d.execute_script(
            "return !!document.querySelector('.jp-DirListing-content .jp-DirListing-item')"), "the file browser")
        return self

    def __exit__(self, *exc):
        if self.driver is not None:
            self.driver.quit()

    def until(self, cond, what: str, timeout: float | None = None):
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.driver, timeout or self.wait_s, poll_frequency=0.25).until(cond)
        except Exception as exc:
            self.shot("timeout-" + "".join(ch if ch.isalnum() else "_" for ch in what)[:40])
            raise AssertionError(f"waited {timeout or self.wait_s:.0f} s for {what}") from exc

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def shot(self, name: str) -> str:
        path = os.path.join(self.shots_dir, f"{name}.png")
        self.driver.save_screenshot(path)
        return path

    def scroll_shots(self, name: str) -> list[str]:
        """The whole notebook as a series of window-sized screenshots, NAME-01.png, NAME-02.png, ..."""
        scroller = ("const s = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer')"
                    " || document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');")
        total, view = self.js(scroller + "return [s.scrollHeight, s.clientHeight];")
        paths, top, i = [], 0, 1
        while True:
            self.js(scroller + "s.scrollTop = arguments[0];", top)
            time.sleep(0.3)
            paths.append(self.shot(f"{name}-{i:02d}"))
            if top + view >= total - 150:  # the rest is the notebook's empty bottom margin
                break
            top, i = top + int(view * 0.9), i + 1
        return paths

    def cell(self, index: int):
        """The notebook's INDEX-th cell element, scrolled into view."""
        el = self.driver.find_elements("css selector", ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell")[index]
        self.js("arguments[0].scrollIntoView({block: 'start'});", el)
        return el

    def show_output(self, index: int):
        """Scroll so that cell INDEX's output starts at the top of the window (for a screenshot)."""
        el = self.driver.find_elements("css selector", ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell")[index]
        self.js("(arguments[0].querySelector('.jp-Cell-outputWrapper') || arguments[0])"
                ".scrollIntoView({block: 'start'});", el)
        time.sleep(0.3)

    def select_cell(self, index: int):
        """Select a cell as a click on its left margin does (command mode, no editor)."""
        el = self.cell(index)
        el.find_element("css selector", ".jp-InputPrompt").click()
        self.until(lambda d: "jp-mod-selected" in el.get_attribute("class"), f"cell {index} selected", 20)

    def wait_idle(self, what: str, timeout: float = 600):
        """Until the kernel is idle and no cell shows [*]."""
        def idle(d):
            r = d.execute_script(PAGE_REPORT_JS)
            return bool(r) and r["kernel"] == "idle" and not any("*" in p for p in r["prompts"])
        time.sleep(0.5)
        self.until(idle, what, timeout)

    def close_and_shut_down(self, name: str):
        """File > Close and Shut Down Notebook on NAME's tab, confirmed: its kernel exits (its labs with it)."""
        tab_js = ("return [...document.querySelectorAll('#jp-main-dock-panel .lm-TabBar-tab')]"
                  ".some(t => t.textContent.includes(arguments[0]));")
        if not self.js(tab_js, name):
            return
        self.js("""const t = [...document.querySelectorAll('#jp-main-dock-panel .lm-TabBar-tab')]
                   .find(t => t.textContent.includes(arguments[0])); t.click();""", name)
        self.menu("File", "Close and Shut Down Notebook")

        def closed(d):
            d.execute_script("const b = document.querySelector('.jp-Dialog .jp-mod-accept'); if (b) b.click();")
            return not d.execute_script(tab_js, name)
        self.until(closed, f"{name} to close", 60)

    # ---- file browser -------------------------------------------------------------------

    def _dblclick_item(self, name: str):
        from selenium.webdriver.common.action_chains import ActionChains

        def find(d):
            for el in d.find_elements("css selector", ".jp-DirListing-content .jp-DirListing-item"):
                label = el.find_elements("css selector", ".jp-DirListing-itemText")
                if label and label[0].text.strip() == name:
                    return el
            return False

        el = self.until(find, f"'{name}' in the file browser")
        ActionChains(self.driver).double_click(el).perform()

    def open_notebook(self, relpath: str):
        """Open notebooks/RELPATH by double-clicking through the file browser from its root."""
        self.js("""const b = document.querySelector('.jp-FileBrowser .jp-BreadCrumbs-home');
                   if (b) b.click();""")
        parts = relpath.split("/")
        for folder in parts[:-1]:
            self._dblclick_item(folder)
            self.until(lambda d: folder in d.find_element("css selector", ".jp-FileBrowser .jp-BreadCrumbs").text,
                       f"folder {folder}")
        self._dblclick_item(parts[-1])
        name = parts[-1]
        self.until(lambda d: d.execute_script(
            "const t=document.querySelector('#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current');"
            "return !!t && t.textContent.includes(arguments[0]);", name), f"the tab of {name}")
        # the kernel is ready: the execution indicator says idle. Under load JupyterLab may open the notebook
        # before it has the list of kernels and then asks which one: take the one it proposes (python3).
        def ready(d):
            d.execute_script(ACCEPT_KERNEL_DIALOG_JS)
            return (d.execute_script(PAGE_REPORT_JS) or {}).get("kernel") == "idle" and \
                d.execute_script(KERNEL_NAME_JS) not in ("", "No Kernel")
        self.until(ready, f"{name}'s kernel to start")

    def menu(self, top: str, item: str):
        """Click a main-menu entry, e.g. menu("Run", "Run All Cells")."""
        for el in self.driver.find_elements("css selector", ".lm-MenuBar-itemLabel"):
            if el.text.strip() == top:
                el.click()
                break
        else:
            raise AssertionError(f"no menu {top!r}")

        def entry(d):
            for el in d.find_elements("css selector", ".lm-Menu-content .lm-Menu-item"):
                label = el.find_elements("css selector", ".lm-Menu-itemLabel")
                if label and label[0].text.strip().rstrip("…") == item and "lm-mod-disabled" not in el.get_attribute("class"):
                    return el
            return False

        self.until(entry, f"menu item {top} > {item}", timeout=20).click()

    def run_all(self) -> float:
        """Run > Run All Cells, then wait until every code cell ran (or one failed) and the kernel is idle."""
        t = time.monotonic()
        self.menu("Run", "Run All Cells")

        def finished(d):
            r = d.execute_script(PAGE_REPORT_JS)
            if not r or r["kernel"] != "idle":
                return False
            if r["errors"]:
                return r
            return r if all(p.strip() not in ("", "[ ]:", "[*]:") for p in r["prompts"]) else False

        self.until(finished, "Run All to finish", timeout=600)
        return time.monotonic() - t

    def report(self) -> dict:
        return self.js(PAGE_REPORT_JS)
