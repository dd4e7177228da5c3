"""Drive JupyterLab in Debian's headless Chromium (Selenium + /usr/bin/chromedriver), as a student uses it.

The server is what the README tells a student to run: ``./bootstrap.sh lab`` in a fresh clone of this
repository, as that (unprivileged) user, which makes the clone's .venv and starts JupyterLab on a free
127.0.0.1 port; the labs the notebooks build are rootless. Autosave is off and settings and workspaces live
in a temporary folder. Nothing is downloaded by the browser: Selenium gets the driver's path, Chromium gets
the flags that keep it off the network.

Used by tests/test_browser.py; by hand (as root, USER an unprivileged user owning CLONE and WORKDIR)::

    with JupyterLabServer(clone, user, workdir) as server, Browser(server, shots_dir) as b:
        b.open_notebook("02_principles.ipynb"); b.run_all(); print(b.report())
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

from tests.unprivileged import USER_PATH  # Debian's PATH for users (no sbin)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
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
    """``./bootstrap.sh lab`` of CLONE run as USER (a student: no root, no capabilities) on a free port with a
    known token, as the README tells a student to start it; stopped through its API, then by its pid.

    The first start makes CLONE's .venv (pip from PyPI, or wherever the caller's PIP_* variables point):
    ``timeout`` covers that. JupyterLab's settings and workspaces go to WORKDIR (owned by USER); its
    runtime files to USER's home.
    """

    def __init__(self, clone: str, user: str, workdir: str, timeout: float = 1200):
        self.clone = clone
        self.user = user
        self.workdir = workdir
        self.timeout = timeout
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.root = os.path.join(clone, "notebooks")
        self.proc: subprocess.Popen | None = None
        self.log_path = os.path.join(workdir, "jupyterlab.log")
        self.started_in: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _settings(self) -> str:
        settings = os.path.join(self.workdir, "settings")
        files = {
            # no autosave: the notebooks must stay as cloned (the clean-on-open check reads them)
            ("docmanager-extension", "plugin"): {"autosave": False},
            # every cell in the page (no windowing), so the page report sees all outputs
            ("notebook-extension", "tracker"): {"windowingMode": "none"},
            # no "what's new"/news pop-ups asking to reach the internet
            ("apputils-extension", "notification"): {"fetchNews": "false", "checkForUpdates": False},
        }
        for (ext, plugin), value in files.items():
            os.makedirs(os.path.join(settings, "@jupyterlab", ext), exist_ok=True)
            with open(os.path.join(settings, "@jupyterlab", ext, f"{plugin}.jupyterlab-settings"), "w") as f:
                json.dump(value, f)
        return settings

    def start(self):
        settings = self._settings()
        pw = pwd.getpwnam(self.user)
        for d, _, files in os.walk(self.workdir):
            os.chown(d, pw.pw_uid, pw.pw_gid)
            for f in files:
                os.chown(os.path.join(d, f), pw.pw_uid, pw.pw_gid)
        # a login's environment, plus what pip needs to reach PyPI (proxies, index, certificates)
        # (Debian's PATH for users, /etc/login.defs' ENV_PATH, has no sbin folder: nft and tc are not on it)
        env = {"PATH": USER_PATH, "HOME": pw.pw_dir, "USER": self.user,
               "LOGNAME": self.user, "SHELL": "/bin/bash", "LANG": "C.UTF-8"}
        env.update({k: v for k, v in os.environ.items()
                    if k.startswith("PIP_") or k.lower() in ("http_proxy", "https_proxy", "no_proxy")})
        argv = as_user(self.user, [os.path.join(self.clone, "bootstrap.sh"), "lab", f"--port={self.port}",
                                   "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
                                   f"--LabApp.user_settings_dir={settings}",
                                   f"--LabApp.workspaces_dir={os.path.join(self.workdir, 'workspaces')}",
                                   "--LabApp.news_url=", "--ServerApp.open_browser=False"])
        self.log = open(self.log_path, "wb")
        t = time.monotonic()
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=self.clone,
                                     start_new_session=True)
        deadline = t + self.timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"./bootstrap.sh lab exited with {self.proc.returncode}: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=5) as r:
                    if r.status == 200:
                        self.started_in = time.monotonic() - t
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not answer on {self.url} in {self.timeout:.0f} s: "
                                   f"{self.log_tail()}")
            time.sleep(0.5)

    def python_version(self) -> str:
        """The version of the Python the notebooks' kernels run (CLONE's .venv)."""
        return subprocess.run([os.path.join(self.clone, ".venv", "bin", "python"), "-c",
                               "import platform; print(platform.python_version())"],
                              capture_output=True, text=True, check=True).stdout.strip()

    def log_tail(self, n: int = 3000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self):
        """Shut down through the API (kernels end their labs themselves), else SIGTERM the server's group."""
        if self.proc is None or self.proc.poll() is not None:
            return
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


def as_user(user: str, argv: list[str]) -> list[str]:
    """ARGV run as USER with USER's groups and no capabilities (what a login gives a student)."""
    return [shutil.which("setpriv") or "/usr/bin/setpriv", f"--reuid={user}", f"--regid={user}",
            "--init-groups", "--inh-caps=-all", "--", *argv]


def fresh_clone(dest: str) -> str:
    """``git clone`` of REPO's committed HEAD into DEST; returns what it holds, in words.

    Tracked files changed in the working tree, and new files not ignored, are copied over the clone: a local run
    with uncommitted edits tests those edits. CI's checkout is clean, so there the clone is exactly HEAD.
    """
    with tempfile.NamedTemporaryFile("w", suffix=".gitconfig") as cfg:
        # REPO may belong to another user (a CI checkout, then sudo): git refuses to read it unless trusted
        cfg.write(f"[safe]\n\tdirectory = {REPO}\n\tdirectory = {os.path.join(REPO, '.git')}\n")
        cfg.flush()
        env = dict(os.environ, GIT_CONFIG_GLOBAL=cfg.name)
        git = lambda *a: subprocess.run(["git", "-C", REPO, *a], env=env, capture_output=True, text=True,
                                        check=True).stdout
        subprocess.run(["git", "clone", "-q", "--no-hardlinks", REPO, dest], env=env, check=True)
        head = git("rev-parse", "--short", "HEAD").strip()
        changed = git("diff", "--name-only", "HEAD").split() + git("ls-files", "--others", "--exclude-standard").split()
    for rel in changed:
        src, dst = os.path.join(REPO, rel), os.path.join(dest, rel)
        if os.path.lexists(src):
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy2(src, dst, follow_symlinks=False)
        elif os.path.lexists(dst):
            os.remove(dst)
    if changed:
        return f"a clone of {head} with {len(changed)} uncommitted file(s) of the working tree copied over it"
    return f"a clone of {head}"


def userns_refused(user: str) -> str | None:
    """Why USER cannot make a user namespace here (rootless labs need one), or None when it can."""
    r = subprocess.run(as_user(user, [shutil.which("unshare") or "unshare", "--user", "--map-root-user", "--net",
                                      "true"]), capture_output=True, text=True, cwd="/")
    return None if r.returncode == 0 else (r.stderr.strip() or f"unshare exited with {r.returncode}")


def processes_of(uid: int) -> dict[int, str]:
    """{pid: command line} of every process running as UID on this machine."""
    out = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/status") as f:
                uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, StopIteration):
            continue
        if str(uid) in uids:
            out[int(pid)] = cmd
    return out


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
