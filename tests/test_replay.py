"""Binder without user namespaces: notebook 00, recorded first on this real kernel,
then run as an unprivileged user in a user namespace whose user.max_user_namespaces
is 0 (tests/no_userns.py; the machine itself is not changed) with the replay
extension loaded, as binder/ loads it. Every cell that needs a lab says plainly
that it is not live and shows the recorded outputs labelled with the recording's
kernel and date; nothing is built."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

from tests.conftest import needs_root, netteach_leftovers
from tests.student_env import REPO, classroom_prefix

OUTSIDE_UID = 201000     # uid 1000 inside tests/no_userns.py's namespace


def _text(x) -> str:
    return "".join(x) if isinstance(x, list) else (x or "")


@needs_root
@pytest.mark.notebook
def test_replay_without_user_namespaces_is_labelled_recorded_and_builds_nothing(untouched_root):
    prefix = classroom_prefix()
    work = tempfile.mkdtemp(prefix="nt-replay-", dir="/tmp")
    try:
        os.chmod(work, 0o755)
        nb = os.path.join(work, "00_start_here.ipynb")
        shutil.copy(os.path.join(REPO, "notebooks", "00_start_here.ipynb"), nb)
        runner = shutil.copy(os.path.join(REPO, "tests", "replay_run.py"), work)  # the clone may be unreadable
        # 1. the recording, on this machine's real kernel (as root)
        subprocess.run([sys.executable, "-m", "netteach.replay", "record", nb], check=True,
                       capture_output=True, cwd=REPO)
        with open(os.path.join(work, "recorded", "00_start_here.json")) as f:
            rec = json.load(f)
        assert rec["kernel"] == f"Linux {os.uname().release}" and rec["recorded"]
        # 2. the same notebook, unprivileged, where no user namespace can be made
        home = os.path.join(work, "home")
        os.mkdir(home)
        subprocess.run(["chown", "-R", f"{OUTSIDE_UID}:{OUTSIDE_UID}", work], check=True)
        out = os.path.join(work, "out.ipynb")
        env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": home, "LANG": "C.UTF-8"}
        r = subprocess.run([sys.executable, os.path.join(REPO, "tests", "no_userns.py"),
                            "sh", "-c", "unshare --user --map-root-user true 2>/dev/null && echo USERNS; exec \"$@\"",
                            "sh", os.path.join(prefix, "bin", "python"), runner, nb, out], cwd=work, env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        assert "USERNS" not in r.stdout, "the test's user could still make a user namespace"
        with open(out) as f:
            cells = [c for c in json.load(f)["cells"] if c["cell_type"] == "code"]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    assert [o for c in cells for o in c["outputs"] if o["output_type"] == "error"] == []
    doctor = _text(cells[0]["outputs"][0].get("text"))
    assert "user namespaces" in doctor, "nt.doctor() ran live and says what this machine lacks"
    # cells that use the notebook's labs (a name bound to a Lab, or nt.Lab itself)
    needs_lab = [c for c in cells if re.search(r"^(?!\s*#).*(\b(lab|tmp)\b|nt\.Lab\()", _text(c["source"]), re.M)]
    assert len(needs_lab) > 5
    for c in needs_lab:
        first = c["outputs"][0]
        banner = _text(first["data"]["text/plain"])
        assert first["metadata"]["netteach"]["replay"] and banner.startswith("NOT LIVE"), _text(c["source"])
        assert f"({rec['kernel']}, recorded {rec['recorded']})" in banner
    # the first cell that tried to build says why, plainly
    assert "cannot build labs: " in _text(needs_lab[0]["outputs"][0]["data"]["text/plain"])
    # every picture shown is a recorded one, and it comes after the banner
    pictures = [(c, o) for c in cells for o in c["outputs"] if "image/png" in o.get("data", {})]
    assert pictures and all(o["metadata"]["netteach"]["replay"] for _, o in pictures)
    assert netteach_leftovers() == []
