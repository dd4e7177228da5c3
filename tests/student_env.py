"""netteach installed for users other than root, as classroom/install.sh installs
it for a class: the classroom and replay tests run notebooks as such users."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile

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


class Students:
    """Linux users for the test, with private homes; removed (with their homes) afterwards."""

    def __init__(self, n: int, prefix: str = "nts"):
        tag = os.getpid() % 100000
        self.names = [f"{prefix}{tag}s{i:03d}" for i in range(n)]  # valid user names for any n
        self.base = tempfile.mkdtemp(prefix="nt-homes-", dir="/tmp")
        os.chmod(self.base, 0o755)

    def __enter__(self) -> "Students":
        for name in self.names:
            home = os.path.join(self.base, name)
            subprocess.run(["useradd", "--create-home", "--home-dir", home, "--shell", "/bin/bash",
                            "--comment", "netteach test student", name], check=True)
            os.chmod(home, 0o700)
        return self

    def __exit__(self, *exc) -> None:
        for name in self.names:
            subprocess.run(["userdel", "--remove", name], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


def run_classroom(scenario: dict, students: int = 3) -> dict:
    """Makes the students, runs tests/classroom_hub.py's scenario for them in a private
    network + mount namespace, removes them; returns the report (see classroom_hub.main)."""
    from tests.classroom_hub import private_namespace

    prefix = classroom_prefix()
    with Students(students) as st, tempfile.NamedTemporaryFile("w", suffix=".json") as sc:
        json.dump(dict(scenario, students=st.names), sc)
        sc.flush()
        os.chmod(sc.name, 0o644)
        r = subprocess.run(private_namespace([os.path.join(prefix, "bin", "python"), "-m", "tests.classroom_hub",
                                              prefix, sc.name]),
                           cwd=REPO, capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            raise RuntimeError(f"the classroom run failed:\n{r.stderr[-4000:]}")
        report = json.loads(r.stdout.strip().splitlines()[-1])
        # nothing of the students is left on the machine either (the hub's namespace is gone)
        report["left_on_machine"] = {n: subprocess.run(["pgrep", "-u", n], capture_output=True, text=True).stdout
                                     for n in st.names}
        return report
