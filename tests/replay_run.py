"""Executes a notebook with netteach's replay extension loaded (as Binder does) and
writes the executed notebook: run by tests/test_replay.py as an unprivileged user
on a machine without user namespaces.

    python tests/replay_run.py NOTEBOOK.ipynb OUT.ipynb
"""

import os
import sys

import nbclient
import nbformat

src, out = sys.argv[1], sys.argv[2]
nb = nbformat.read(src, as_version=4)
client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                                 extra_arguments=["--InteractiveShellApp.extensions=netteach.replay"],
                                 resources={"metadata": {"path": os.path.dirname(os.path.abspath(src))}})
client.execute()
nbformat.write(nb, out)
