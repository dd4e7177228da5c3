"""Executes a notebook with netteach's replay extension loaded (as Binder does) and
writes the executed notebook: run by tests/test_replay.py as an unprivileged user
on a machine without user namespaces.

    python tests/replay_run.py NOTEBOOK.ipynb OUT.ipynb
"""

import os
import sys


def run(src: str, out: str) -> None:
    import nbclient
    import nbformat

    nb = nbformat.read(src, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                                     extra_arguments=["--InteractiveShellApp.extensions=netteach.replay"],
                                     resources={"metadata": {"path": os.path.dirname(os.path.abspath(src))}})
    client.execute()
    nbformat.write(nb, out)


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2])
