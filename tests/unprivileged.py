"""Run Python as an unprivileged user (``nobody``), for the rootless tests.

The test process is root; the code under test must not be. ``setpriv`` drops
to uid/gid 65534 with no groups and no capabilities. That user needs a Python
it can run: this venv's interpreter if ``nobody`` can reach it, else the
system's ``python3`` of the same version with this venv's packages on
``PYTHONPATH`` (here the venv's base interpreter lives under /root, which
``nobody`` cannot enter from a user namespace).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

NOBODY = 65534
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def drop(argv: list[str]) -> list[str]:
    """``argv`` run as nobody, with no groups and no capabilities."""
    return [shutil.which("setpriv"), f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
            "--inh-caps=-all", "--", *argv]


#: the PATH Debian gives its users (/etc/login.defs' ENV_PATH): no sbin folder, so nft, tc and conntrack are not on it
USER_PATH = "/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games"


def _env(pythonpath: str | None) -> dict:
    env = {"PATH": USER_PATH, "HOME": "/tmp",
           "LANG": "C.UTF-8", "MPLBACKEND": "Agg"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


@functools.lru_cache(maxsize=None)
def python() -> tuple[str, dict] | None:
    """(interpreter, environment) that nobody can run netteach with, or None."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return None
    site = os.pathsep.join(dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]))
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for exe, pythonpath in ((sys.executable, None), (shutil.which(version), f"{REPO}{os.pathsep}{site}"),
                            ("/usr/bin/python3", f"{REPO}{os.pathsep}{site}")):
        if not exe:
            continue
        env = _env(pythonpath)
        # run inside a user namespace too: the rootless helper starts the same interpreter there
        probe = subprocess.run(drop([shutil.which("unshare"), "--user", "--map-root-user", "--",
                                     exe, "-c", "import sys, netteach, pyroute2, orjson; "
                                     f"assert sys.version_info[:2] == {tuple(sys.version_info[:2])}"]),
                               env=env, capture_output=True, cwd="/")
        if probe.returncode == 0:
            return exe, env
    return None


def needs_nobody_python():
    if os.geteuid() != 0:
        return pytest.mark.skip(reason="needs root to drop to an unprivileged user (setpriv)")
    return pytest.mark.skipif(python() is None, reason="no Python that user nobody can run netteach with")


def run(code: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    """Run Python ``code`` as nobody; returns the finished process (text output)."""
    exe, env = python()
    return subprocess.run(drop([exe, "-c", code]), env=env, capture_output=True, text=True,
                          timeout=timeout, cwd="/", **kw)


def popen(code: str, **kw) -> subprocess.Popen:
    """Start Python ``code`` as nobody, stdout piped (text, line-buffered)."""
    exe, env = python()
    return subprocess.Popen(drop([exe, "-u", "-c", code]), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd="/", **kw)
