"""The README's promise on a fresh machine (issue 9 item 17): a minimal Debian 12 made
with debootstrap (no python3 in it), a clone of this repository inside, and
`./bootstrap.sh setup` run there, in a chroot inside private mount/pid/uts
namespaces. The clone starts with a half-made .venv (an interrupted first run:
a python in it, no pip), which bootstrap must make again.

Needs root, debootstrap and git (`./bootstrap.sh test` installs both) and the
Debian mirror and PyPI; it skips only when debootstrap cannot reach the mirror,
and says so. Takes a few minutes (downloads ~150 MB).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.request

import pytest

from tests.conftest import needs_root

MIRROR = os.environ.get("NETTEACH_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SUITE = "bookworm"
REPO = os.environ.get("NETTEACH_REPO") or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

pytestmark = [needs_root]


def _mirror_reachable() -> str | None:
    try:
        urllib.request.urlopen(f"{MIRROR}/dists/{SUITE}/Release", timeout=15).read(64)
        return None
    except OSError as exc:
        return str(exc)


def test_bootstrap_setup_on_a_fresh_debian(tmp_path):
    for tool in ("debootstrap", "git", "unshare", "chroot"):
        assert shutil.which(tool), f"{tool} is missing: `./bootstrap.sh test` installs it"
    why = _mirror_reachable()
    if why is not None:
        pytest.skip(f"debootstrap cannot reach the Debian mirror {MIRROR} ({why})")
    root = tmp_path / "debian"
    try:
        r = subprocess.run(["debootstrap", "--variant=minbase", SUITE, str(root), MIRROR],
                           capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, f"debootstrap failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
        assert not (root / "usr/bin/python3").exists(), "a minimal Debian has no python3"
        shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
        # this machine's trust store (a proxy may present its own CA), for pip inside
        bundle = os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt"
        pip_cert = ""
        if os.path.exists(bundle):
            shutil.copy(bundle, root / "etc/netteach-host-ca.crt")
            pip_cert = "PIP_CERT=/etc/netteach-host-ca.crt "
        clone = root / "root/netteach"
        subprocess.run(["git", "clone", "-q", "--no-hardlinks", REPO, str(clone)], check=True)
        # an interrupted earlier run left a .venv with a python and no pip
        (clone / ".venv/bin").mkdir(parents=True)
        (clone / ".venv/bin/python").write_text('#!/bin/sh\nexec python3 "$@"\n')
        (clone / ".venv/bin/python").chmod(0o755)
        script = (f"mount -t proc proc {root}/proc && exec chroot {root} /usr/bin/env -i "
                  f"PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 {pip_cert}"
                  "/bin/bash -c 'cd /root/netteach && ./bootstrap.sh setup && "
                  ".venv/bin/python -c \"import netteach, pyroute2; print(netteach.__version__)\"'")
        r = subprocess.run(["unshare", "--mount", "--pid", "--fork", "--uts", "--propagation", "private",
                            "--", "sh", "-c", script], capture_output=True, text=True, timeout=1200)
        assert r.returncode == 0, f"./bootstrap.sh setup failed on a fresh Debian:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        assert "making it again" in r.stdout, "the half-made .venv was not noticed"
        assert "netteach is installed" in r.stdout
    finally:
        shutil.rmtree(root, ignore_errors=True)
