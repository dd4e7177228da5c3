"""Recorded outputs for machines that cannot build labs (Binder without user
namespaces), shown as recorded - never as live.

Two halves:

- **record**: execute notebooks on a real kernel and keep each code cell's
  outputs in ``recorded/<notebook>.json`` beside the notebook, with the kernel
  release, the date and netteach's version::

      python -m netteach.replay record notebooks/00_start_here.ipynb ...   # as root, or rootless

- **replay**: an IPython extension (``%load_ext netteach.replay``; Binder loads it
  for every kernel). Nothing changes while labs can be built. Once a cell fails
  because this machine cannot build labs (``UserNamespacesUnavailable``: not
  root, and no user namespaces for a rootless lab), that cell - and each later
  cell that fails because the lab above could not be built (a ``NameError``) or
  because this unprivileged process may not do it (a ``PermissionError``) - says
  so in a box, then shows
  what the same cell showed on the recording's kernel, labelled with that
  kernel and date. A cell with no recording (changed, or new) says that
  instead. Cells that do not need a lab run live as usual.

>>> from netteach.replay import banner
>>> print(banner("no user namespaces here", {"kernel": "Linux 6.18.44", "recorded": "2026-11-29 17:30 UTC"}))
NOT LIVE - this machine cannot build labs: no user namespaces here
Below: what this cell showed when it ran on a real kernel (Linux 6.18.44, recorded 2026-11-29 17:30 UTC).
"""

from __future__ import annotations

import datetime
import glob
import html
import json
import os
import platform
import sys

FOLDER = "recorded"            # beside the notebooks


def _key(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def recording_path(notebook: str) -> str:
    """Where the recording of a notebook lives: recorded/<name>.json beside it."""
    base = os.path.splitext(os.path.basename(notebook))[0]
    return os.path.join(os.path.dirname(os.path.abspath(notebook)), FOLDER, base + ".json")


# --- record ----------------------------------------------------------------------------
def record(notebook: str, timeout: int = 300) -> str:
    """Runs the notebook top to bottom on this machine's kernel (labs must be
    buildable here) and writes its recording; returns the recording's path."""
    import nbclient
    import nbformat

    from netteach import __version__

    nb = nbformat.read(notebook, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                     resources={"metadata": {"path": os.path.dirname(os.path.abspath(notebook))}})
    client.execute()
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rec = {
        "notebook": os.path.basename(notebook),
        "kernel": f"{platform.system()} {platform.release()}",
        "recorded": when,
        "netteach": __version__,
        "as": "root" if os.geteuid() == 0 else "rootless",
        "cells": [{"source": c.source, "outputs": [_plain(o) for o in c.outputs]}
                  for c in nb.cells if c.cell_type == "code"],
    }
    path = recording_path(notebook)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(rec, f, indent=0, sort_keys=True)
        f.write("\n")
    return path


def _plain(output) -> dict:
    out = {k: v for k, v in dict(output).items() if k in ("output_type", "name", "text", "data", "ename", "evalue")}
    if "data" in out:  # widgets cannot come back to life from a recording: keep what a browser can show
        out["data"] = {m: v for m, v in dict(out["data"]).items() if not m.startswith("application/vnd.jupyter")}
    return out


# --- replay ----------------------------------------------------------------------------
def banner(reason: str, rec: dict | None) -> str:
    """The words above a replayed cell (or instead of it, with no recording)."""
    head = f"NOT LIVE - this machine cannot build labs: {reason}" if reason else \
        "NOT LIVE - this machine cannot build labs (the first cell that tried says why; nt.doctor() too)."
    if rec is None:
        return (head + "\nThis cell has no recording (it was changed, or is new), so there is nothing "
                "to show. Run it on a machine that can build labs (see nt.doctor()).")
    return (head + f"\nBelow: what this cell showed when it ran on a real kernel "
                   f"({rec['kernel']}, recorded {rec['recorded']}).")


class Replayer:
    """The recordings beside the running notebook, matched to cells by their source."""

    def __init__(self, folder: str | None = None):
        # beside the notebook; for notebooks/solutions/, the chapters' recordings one level up
        folders = [folder] if folder else [os.path.join(os.getcwd(), FOLDER), os.path.join(os.getcwd(), "..", FOLDER)]
        self.recordings = []
        for path in sorted(p for f in folders for p in glob.glob(os.path.join(f, "*.json"))):
            with open(path) as f:
                self.recordings.append(json.load(f))
        # the notebook this kernel serves first (Jupyter names it in JPY_SESSION_NAME)
        mine = os.path.basename(os.environ.get("JPY_SESSION_NAME", ""))
        self.recordings.sort(key=lambda r: r["notebook"] != mine)
        self.next = {id(r): 0 for r in self.recordings}
        self.reason: str | None = None          # set once a cell found that labs cannot be built
        self.told = False                       # the full reason was shown once

    def find(self, source: str) -> tuple[dict, dict] | None:
        """(recording, cell) for this source: the next such cell after the last one
        replayed (a notebook shows `lab` many times), else the first one."""
        key = _key(source)
        for rec in self.recordings:
            cells, start = rec["cells"], self.next[id(rec)]
            for i in list(range(start, len(cells))) + list(range(0, start)):
                if _key(cells[i]["source"]) == key:
                    self.next[id(rec)] = i + 1
                    return rec, cells[i]
        return None

    def show(self, source: str) -> None:
        """Displays the banner and the recorded outputs of this cell."""
        from IPython.display import publish_display_data

        found = self.find(source)
        rec, cell = found if found else (None, None)
        text = banner("" if self.told else (self.reason or ""), rec)
        self.told = True
        publish_display_data({"text/plain": text, "text/html":
                              '<div style="border:2px dashed #b45309;background:#fffbeb;padding:6px 10px">'
                              + "<br>".join(f"<b>{html.escape(line)}</b>" if i == 0 else html.escape(line)
                                            for i, line in enumerate(text.splitlines())) + "</div>"},
                             metadata={"netteach": {"replay": True}})
        for out in (cell or {}).get("outputs", []):
            kind = out.get("output_type")
            if kind == "stream":
                publish_display_data({"text/plain": out["text"]}, metadata={"netteach": {"replay": True}})
            elif kind in ("display_data", "execute_result"):
                publish_display_data(out["data"], metadata={"netteach": {"replay": True}})


def load_ipython_extension(ip) -> None:
    """`%load_ext netteach.replay`: cells that cannot build a lab here show their recording."""
    from netteach import errors

    # rootless labs raise UserNamespacesUnavailable where they cannot run; before
    # rootless mode existed, any lab raised PermissionDenied when not root
    cannot_build = getattr(errors, "UserNamespacesUnavailable", errors.PermissionDenied)
    replayer = Replayer()
    current = {"source": "", "replayed": False}
    plain_traceback = ip.showtraceback

    def pre_run_cell(info):
        current["source"], current["replayed"] = info.raw_cell, False

    def custom_tb(self, etype, value, tb, tb_offset=None):
        if isinstance(value, cannot_build):
            replayer.reason = str(value)
        elif replayer.reason is None:           # while labs can be built, these are real mistakes
            return plain_traceback((etype, value, tb), tb_offset=tb_offset)
        replayer.show(current["source"])
        current["replayed"] = True
        return None

    def post_run_cell(result):
        if current["replayed"]:                  # the cell said why and showed its recording: not an error
            result.error_in_exec = None

    ip.events.register("pre_run_cell", pre_run_cell)
    ip.events.register("post_run_cell", post_run_cell)
    # NameError: a name the lab above would have made; PermissionError: something else this
    # unprivileged process may not read or do (nft, /run/netteach) - once labs are known not to work
    ip.custom_exceptions = (cannot_build, NameError, PermissionError)
    ip.CustomTB = custom_tb.__get__(ip)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "record":
        print("usage: python -m netteach.replay record NOTEBOOK.ipynb...", file=sys.stderr)
        return 2
    for nb in argv[1:]:
        print(record(nb))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
