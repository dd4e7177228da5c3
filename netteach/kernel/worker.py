"""The one thread that talks netlink and hops between namespaces.

pyroute2's sync API cannot run on a thread whose asyncio loop is running
(every Jupyter kernel's main thread), and ``setns()`` moves only the calling
thread. So the work that enters a namespace (opening its sockets, sysctls) or uses
pyroute2 runs here, on a dedicated daemon thread, and the caller's thread
never changes namespace.

>>> from netteach.kernel.worker import call
>>> call(lambda: 6 * 7)
42
"""

from __future__ import annotations

import queue
import threading

_lock = threading.Lock()
_jobs: "queue.SimpleQueue | None" = None
_thread: threading.Thread | None = None


def _loop(jobs):
    while True:
        fn, args, box, done = jobs.get()
        try:
            box.append((True, fn(*args)))
        except BaseException as exc:  # handed back to the caller, raised there
            box.append((False, exc))
        done.set()


def on_worker() -> bool:
    return threading.current_thread() is _thread


def call(fn, *args):
    """Run ``fn(*args)`` on the kernel thread and return its result (or raise its error)."""
    global _jobs, _thread
    if on_worker():  # nested call from kernel code: already in the right place
        return fn(*args)
    if _thread is None:
        with _lock:
            if _thread is None:
                _jobs = queue.SimpleQueue()
                t = threading.Thread(target=_loop, args=(_jobs,), name="netteach-kernel", daemon=True)
                t.start()
                _thread = t
    box: list = []
    done = threading.Event()
    _jobs.put((fn, args, box, done))
    done.wait()
    ok, value = box[0]
    if ok:
        return value
    raise value
