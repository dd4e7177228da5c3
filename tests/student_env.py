"""netteach installed for users other than root, as classroom/install.sh installs
it for a class: the classroom and replay tests run notebooks as such users."""

from __future__ import annotations

import hashlib
import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def world_readable(path: str) -> bool:
    """Can a user who is neither owner nor group reach path?"""
    parts = os.path.abspath(path).split(os.sep)
    return all(os.stat(os.sep.join(parts[:i]) or "/").st_mode & 0o005 == 0o005 for i in range(1, len(parts) + 1))


def classroom_prefix() -> str:
    """The prefix classroom/install.sh made (as a teacher would), in a folder every user
    can read; re-installed only when netteach, the notebooks or classroom/ changed."""
    digest = hashlib.sha256()
    for root in ("netteach", "notebooks", "classroom"):
        for d, dirs, files in sorted(os.walk(os.path.join(REPO, root))):
            dirs[:] = sorted(x for x in dirs if x not in ("node_modules", "__pycache__", ".ipynb_checkpoints"))
            for f in sorted(files):
                with open(os.path.join(d, f), "rb") as fh:
                    digest.update(f.encode() + fh.read())
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as fh:
        digest.update(fh.read())
    if world_readable(REPO):
        prefix = os.path.join(REPO, ".venv-classroom")
    else:  # a clone under /root: other users could not read a prefix inside it
        prefix = f"/var/tmp/netteach-classroom-{hashlib.sha256(REPO.encode()).hexdigest()[:8]}"
    stamp = os.path.join(prefix, ".netteach-installed")
    want = digest.hexdigest()
    if not os.path.exists(stamp) or open(stamp).read() != want:
        r = subprocess.run([os.path.join(REPO, "classroom", "install.sh"), prefix],
                           capture_output=True, text=True)
        assert r.returncode == 0, f"classroom/install.sh failed:\n{r.stdout[-2000:]}{r.stderr[-3000:]}"
        with open(stamp, "w") as fh:
            fh.write(want)
    return prefix
