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
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
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


def test_notebooks_are_committed_without_outputs():
    import nbformat

    assert NOTEBOOKS, "no notebooks found"
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for c in nb.cells:
            if c.cell_type == "code":
                assert not c.outputs and c.execution_count is None, f"{path} has outputs"
