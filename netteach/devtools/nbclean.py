"""Put notebooks in the form JupyterLab 4 saves them, without outputs, so they open unmodified.

JupyterLab marks a notebook modified as soon as it opens it if the file differs
from what it would save: an older ``nbformat_minor`` (no cell ids), a kernelspec
``display_name`` other than the kernel's ("Python 3 (ipykernel)"), or a
``language_info`` other than the one the kernel reports (it includes the
Python version: that of the system's ``python3``, which ``./bootstrap.sh lab``
makes a student's .venv with). This rewrites each notebook that way and drops
outputs and execution counts (notebooks are committed without them)::

    python -m netteach.devtools.nbclean notebooks/            # rewrite in place
    python -m netteach.devtools.nbclean --check notebooks/    # list what is not clean, exit 1

>>> nb = {"cells": [{"cell_type": "code", "metadata": {}, "source": "1+1", "outputs": [{"output_type": "stream",
...        "name": "stdout", "text": "2"}], "execution_count": 3}], "metadata": {}, "nbformat": 4,
...        "nbformat_minor": 4}
>>> text = clean_text(json.dumps(nb))
>>> c = json.loads(text)["cells"][0]
>>> c["outputs"], c["execution_count"], len(c["id"]) > 0, json.loads(text)["nbformat_minor"]
([], None, True, 5)
>>> clean_text(text) == text       # already clean: unchanged
True
"""

from __future__ import annotations

import argparse
import functools
import glob
import hashlib
import json
import os
import subprocess
import sys

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


@functools.lru_cache(maxsize=None)
def student_python() -> str:
    """The Python version a student's kernel runs: ``./bootstrap.sh lab`` makes the .venv with the system's
    ``python3`` (Debian 12: 3.11.2), whatever Python runs this; this one's where there is no system python3."""
    try:
        return subprocess.run(["/usr/bin/python3", "-c", "import platform; print(platform.python_version())"],
                              capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return sys.version.split()[0]


def language_info(version: str | None = None) -> dict:
    """What ipykernel reports as ``language_info`` (JupyterLab copies it into the notebook on open)."""
    info = {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
            "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
            "pygments_lexer": "ipython3", "version": version or student_python()}
    return info


def clean(nb: dict, python_version: str | None = None) -> dict:
    """The notebook dict as JupyterLab 4 would save it, without outputs (a new dict; ``nb`` is not changed)."""
    nb = json.loads(json.dumps(nb))
    nb["nbformat"], nb["nbformat_minor"] = 4, 5
    meta = nb.setdefault("metadata", {})
    meta["kernelspec"] = dict(KERNELSPEC)
    meta["language_info"] = language_info(python_version)
    seen = set()
    for i, cell in enumerate(nb.get("cells", [])):
        cell.setdefault("metadata", {})
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
        cid = cell.get("id")
        if not cid or cid in seen:
            # stable ids from content and position, so re-running gives the same file
            cid = hashlib.sha1(f"{i}:{cell['cell_type']}:{cell['source']}".encode()).hexdigest()[:8]
        seen.add(cid)
        cell["id"] = cid
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        else:
            cell.pop("outputs", None), cell.pop("execution_count", None)
    return nb


def dumps(nb: dict) -> str:
    """Text as jupyter_server writes it (nbformat's JSON writer: sorted keys, indent 1, lines split)."""
    nb = json.loads(json.dumps(nb))
    for cell in nb.get("cells", []):
        src = cell.get("source", "")
        if isinstance(src, str):
            cell["source"] = src.splitlines(keepends=True)
    return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False, separators=(",", ": ")) + "\n"


def clean_text(text: str, python_version: str | None = None) -> str:
    """A notebook's file text, cleaned."""
    return dumps(clean(json.loads(text), python_version))


def notebooks(paths) -> list[str]:
    """Every .ipynb under the given files/folders (checkpoints excluded)."""
    out = []
    for p in paths:
        if os.path.isdir(p):
            out += [f for f in glob.glob(os.path.join(p, "**", "*.ipynb"), recursive=True)
                    if ".ipynb_checkpoints" not in f]
        else:
            out.append(p)
    return sorted(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m netteach.devtools.nbclean", description=__doc__.split("\n\n")[0])
    p.add_argument("paths", nargs="+", help="notebooks or folders of notebooks")
    p.add_argument("--check", action="store_true", help="change nothing; list notebooks that are not clean")
    args = p.parse_args(argv)
    dirty = []
    for path in notebooks(args.paths):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        new = clean_text(text)
        if new != text:
            dirty.append(path)
            if not args.check:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(new)
    verb = "not clean" if args.check else "cleaned"
    print("\n".join(f"{verb}: {p}" for p in dirty) or "all clean")
    return 1 if args.check and dirty else 0


if __name__ == "__main__":
    sys.exit(main())
