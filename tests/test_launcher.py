"""``./bootstrap.sh lab --root`` run by a user hands root only what installing needs (issue 9 item 16).

The launcher re-runs itself with the real ``sudo``. Here ``nobody`` may sudo (a sudoers file
mounted in a private mount namespace, seen by nothing else on the machine), runs the launcher
from a copy of the repository's two launch files with the caller's environment holding a
secret and a ``PYTHONPATH``, and the test reads the environment of the root JupyterLab that
results from the kernel (``/proc/PID/environ``): the secret and ``PYTHONPATH`` must not be
there, a ``PIP_*`` setting (needed to install) must be, and ``HOME`` must be root's own.
Root's home is a temporary folder for the run (``/etc/passwd`` bind-mounted in the same
private namespace), so JupyterLab's runtime files land there and nothing is left.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.request

import pytest

from tests.browser import free_port
from tests.conftest import needs_root

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOBODY = 65534

pytestmark = [needs_root]


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, read from /proc/PID/task/*/children."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    kids = [int(k) for k in f.read().split()]
                out += kids
                todo += kids
        except OSError:
            pass
    return out


def environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        items = [i.decode(errors="replace") for i in f.read().split(b"\0") if i]
    return dict(i.split("=", 1) for i in items if "=" in i)


def jupyter_pid(pid: int) -> int | None:
    for p in descendants(pid):
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if any(a.endswith(b"jupyter-lab") for a in argv) or b"jupyter" in argv[1:4]:
            return p
    return None


@pytest.fixture
def open_tmp():
    """A temporary folder ``nobody`` can enter (pytest's own is root's alone)."""
    import pathlib
    import tempfile

    d = tempfile.mkdtemp(prefix="netteach-launcher-")
    os.chmod(d, 0o755)
    yield pathlib.Path(d)
    shutil.rmtree(d, ignore_errors=True)


def test_root_launcher_passes_only_what_installing_needs(open_tmp):
    tmp_path = open_tmp
    for tool in ("sudo", "setpriv", "unshare"):
        if not shutil.which(tool):
            pytest.skip(f"needs {tool} (./bootstrap.sh test installs sudo)")
    stamp = os.path.join(REPO, ".venv", ".netteach-installed")
    import hashlib
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        want = hashlib.sha256(f.read()).hexdigest()
    if not os.path.exists(stamp) or open(stamp).read().strip() != want:
        pytest.skip("this checkout's .venv was not installed by ./bootstrap.sh from this pyproject.toml")

    work = tmp_path / "launch"
    home = tmp_path / "roothome"
    caller_home = tmp_path / "callerhome"
    for d in (work, home, caller_home, work / "nb"):
        d.mkdir()
    os.chmod(work, 0o755)
    for name in ("bootstrap.sh", "pyproject.toml"):
        shutil.copy2(os.path.join(REPO, name), work / name)
    os.symlink(os.path.join(REPO, ".venv"), work / ".venv")  # installed already: the launcher installs nothing
    with open("/etc/passwd") as f:
        passwd = [line.split(":") for line in f.read().splitlines()]
    with open(tmp_path / "passwd", "w") as f:
        for e in passwd:
            if e[0] == "root":
                e[5] = str(home)
            f.write(":".join(e) + "\n")
    (tmp_path / "sudoers").mkdir()
    with open(tmp_path / "sudoers" / "netteach-test", "w") as f:
        f.write("nobody ALL=(root) NOPASSWD: ALL\n")
    os.chmod(tmp_path / "sudoers" / "netteach-test", 0o440)

    port, token = free_port(), "launcher-test-token"
    setup = (f"mount --bind {tmp_path}/sudoers /etc/sudoers.d && mount --bind {tmp_path}/passwd /etc/passwd && "
             f"exec setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups -- {work}/bootstrap.sh lab --root "
             f"--dir {work}/nb --port={port} --ServerApp.port_retries=0 --IdentityProvider.token={token} "
             "--ServerApp.open_browser=False")
    caller_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(caller_home), "LANG": "C.UTF-8",
                  "NETTEACH_TEST_SECRET": "must-not-reach-root", "PYTHONPATH": str(caller_home),
                  "PIP_DEFAULT_TIMEOUT": "17"}
    log = open(tmp_path / "launcher.log", "wb")
    proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", setup],
                            env=caller_env, stdout=log, stderr=subprocess.STDOUT, cwd="/", start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, f"the launcher exited ({proc.returncode}): {open(log.name).read()[-3000:]}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"JupyterLab did not start: {open(log.name).read()[-3000:]}"
            time.sleep(0.5)
        jl = jupyter_pid(proc.pid)
        assert jl, f"no JupyterLab process under the launcher: {descendants(proc.pid)}"
        with open(f"/proc/{jl}/status") as f:
            uid = next(line.split()[1] for line in f if line.startswith("Uid:"))
        env = environ(jl)
    finally:
        # sudo passes SIGTERM on to JupyterLab, which stops cleanly (removing its runtime files)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
    assert uid == "0", "JupyterLab of `lab --root` should run as root"
    assert env.get("SUDO_USER") == "nobody", env
    assert "NETTEACH_TEST_SECRET" not in env, "the caller's whole environment reached root (sudo -E)"
    assert "PYTHONPATH" not in env, "the caller's PYTHONPATH reached root: it chooses which code root runs"
    assert env.get("PIP_DEFAULT_TIMEOUT") == "17", "installing settings (PIP_*) should reach the root run"
    assert env.get("HOME") == str(home), f"HOME should be root's own, not the caller's: {env.get('HOME')}"
    assert jupyter_pid(proc.pid) is None and not os.path.exists(f"/proc/{jl}"), "JupyterLab outlived the test"


def test_readme_says_what_the_token_grants():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        text = " ".join(f.read().split())
    assert "What the JupyterLab token grants" in text
    assert "as root with `--root`" in text and "127.0.0.1" in text
