"""Every committed notebook is in the form JupyterLab 4 saves (so it opens unmodified) and has no outputs.

Fix a failure with ``python -m netteach.devtools.nbclean notebooks/``.
"""

from __future__ import annotations

import json
import os

import pytest

from netteach import replay
from netteach.devtools import nbclean

NOTEBOOKS = nbclean.notebooks([os.path.join(os.path.dirname(__file__), "..", "notebooks")])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[os.path.basename(p) for p in NOTEBOOKS])
def test_notebook_is_saved_clean(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    nb = json.loads(text)
    # the Python version in language_info is the one of whoever cleaned it last: keep it here
    version = nb.get("metadata", {}).get("language_info", {}).get("version")
    assert text == nbclean.clean_text(text, python_version=version), (
        f"{path} is not in JupyterLab's saved form (or has outputs): "
        "run python -m netteach.devtools.nbclean notebooks/")
    for cell in nb["cells"]:
        assert not cell.get("outputs") and cell.get("execution_count") is None


def test_cleaning_makes_what_jupyterlab_would_add():
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# a\n", "b"]},
                    {"cell_type": "code", "metadata": {}, "source": "x = 1", "outputs": [], "execution_count": 2}],
          "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                       "language_info": {"name": "python"}},
          "nbformat": 4, "nbformat_minor": 2}
    out = json.loads(nbclean.clean_text(json.dumps(nb), python_version="3.11.7"))
    assert out["nbformat_minor"] == 5 and all(c["id"] for c in out["cells"])
    assert out["metadata"]["kernelspec"]["display_name"] == "Python 3 (ipykernel)"
    assert out["metadata"]["language_info"]["version"] == "3.11.7"
    assert out["cells"][0]["source"] == ["# a\n", "b"] and "outputs" not in out["cells"][0]
    assert out["cells"][1]["execution_count"] is None


def test_check_mode_lists_and_changes_nothing(tmp_path, capsys):
    p = tmp_path / "n.ipynb"
    p.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 4}))
    before = p.read_text()
    assert nbclean.main(["--check", str(tmp_path)]) == 1 and p.read_text() == before
    assert nbclean.main([str(tmp_path)]) == 0 and nbclean.main(["--check", str(tmp_path)]) == 0
    assert "all clean" in capsys.readouterr().out


RECORDED = [p for p in NOTEBOOKS if os.path.exists(replay.recording_path(p))]


@pytest.mark.parametrize("path", RECORDED, ids=[os.path.basename(p) for p in RECORDED])
def test_recording_matches_the_notebook(path):
    """Binder without user namespaces shows these recordings: each code cell must have its own
    (a changed cell would say "no recording" there), and none may hold an error."""
    with open(path, encoding="utf-8") as f:
        code = [replay._key("".join(c["source"])) for c in json.load(f)["cells"] if c["cell_type"] == "code"]
    with open(replay.recording_path(path), encoding="utf-8") as f:
        rec = json.load(f)
    have = {replay._key(c["source"]) for c in rec["cells"]}
    missing = [k.splitlines()[0][:60] for k in code if k not in have]
    assert not missing, (f"{len(missing)} code cell(s) of {os.path.basename(path)} have no recording, e.g. "
                         f"{missing[:3]}: re-record with `python -m netteach.replay record {path}` (as root)")
    errors = [c["source"][:60] for c in rec["cells"] for o in c["outputs"] if o.get("output_type") == "error"]
    assert not errors, f"the recording of {os.path.basename(path)} holds errors: {errors[:3]}"
