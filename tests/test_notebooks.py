"""Every notebook runs top to bottom headless, twice in the same kernel (a re-run
must converge), and leaves nothing behind."""

from __future__ import annotations

import glob
import os
import time

import pytest

from tests.conftest import needs_root, netteach_leftovers

NOTEBOOKS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "notebooks", "**", "*.ipynb"),
                          recursive=True))


def execute(path: str, times: int = 2):
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    nb.cells = [nbformat.from_dict(dict(c)) for _ in range(times) for c in cells]
    # startup_timeout: a kernel slow to start on a loaded machine once left nbclient hanging in cleanup
    client = nbclient.NotebookClient(nb, timeout=120, startup_timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": os.path.dirname(path)}})
    client.execute()
    return nb


@needs_root
@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[os.path.basename(p) for p in NOTEBOOKS])
def test_notebook_runs_twice_and_leaves_nothing(path, untouched_root):
    t = time.monotonic()
    nb = execute(path)
    elapsed = time.monotonic() - t
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the notebook shows a picture"
    assert netteach_leftovers() == []
    print(f"{os.path.basename(path)}: {elapsed:.1f} s for two runs")


ROOTLESS_RUN = """
import json, sys
from tests.test_notebooks import execute
nb = execute(sys.argv[1])
outputs = [o for c in nb.cells for o in c.get("outputs", [])]
errors = [o for o in outputs if o.get("output_type") == "error"]
print(json.dumps({"errors": [(e.get("ename"), e.get("evalue")) for e in errors],
                  "picture": any("image/png" in o.get("data", {}) for o in outputs)}))
"""


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[os.path.basename(p) for p in NOTEBOOKS])
def test_notebook_runs_twice_rootless_as_an_unprivileged_user(path, untouched_root):
    """The same notebook run by user nobody: labs built rootless, in the kernel's own helper."""
    import json
    import shutil

    from tests import unprivileged

    if unprivileged.python() is None:
        pytest.skip("needs root to drop to user nobody (setpriv) and a Python nobody can run")
    import subprocess
    import tempfile

    home = tempfile.mkdtemp(prefix="nt-nobody-")  # nobody's HOME for Jupyter's runtime files
    try:
        os.chown(home, unprivileged.NOBODY, unprivileged.NOBODY)
        exe, env = unprivileged.python()
        path_env = os.pathsep.join(p for p in (unprivileged.REPO, env.get("PYTHONPATH")) if p)
        env = dict(env, HOME=home, JUPYTER_PLATFORM_DIRS="1", PYTHONPATH=path_env)
        t = time.monotonic()
        r = subprocess.run(unprivileged.drop([exe, "-c", ROOTLESS_RUN, os.path.abspath(path)]), env=env,
                           capture_output=True, text=True, timeout=900, cwd=home)
        elapsed = time.monotonic() - t
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.splitlines()[-1])
    assert out["errors"] == []
    assert out["picture"], "the notebook shows a picture"
    assert netteach_leftovers() == []  # nothing reached the machine: all of it lived in the helper
    print(f"{os.path.basename(path)} (rootless, as nobody): {elapsed:.1f} s for two runs")


def test_notebooks_are_committed_without_outputs():
    import nbformat

    assert NOTEBOOKS, "no notebooks found"
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for c in nb.cells:
            if c.cell_type == "code":
                assert not c.outputs and c.execution_count is None, f"{path} has outputs"
