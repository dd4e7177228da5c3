"""Which lab owns what: one JSON state file per lab under ``/run/netteach/``.

The file is written *before* an object is created (an intent log), so a lab
whose Python process was killed halfway through a cell is still fully
removable by ``nt.cleanup()``. ``/run`` is a tmpfs: after a reboot the files
are gone, and so are the namespaces they described.

Writes are atomic (a temporary file renamed over the old one), so a reader
never sees half a file, even with several threads saving at once. Changes
between processes are serialised by :func:`locked`, an ``flock`` on
``/run/netteach/.lock``: a file only root can open, in a directory only root
can write, so no other user can hold it and freeze the labs.

>>> st = LabState(name="demo", host="isolated", owner_pid=1, owner_start=None)
>>> st.netns.append("nt-demo.host"); st.to_dict()["netns"]
['nt-demo.host']
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import stat
import threading
import time

import orjson  # the state is rewritten before every change a lab makes: stdlib json was the bottleneck
from dataclasses import dataclass, field

from netteach import errors

STATE_DIR = os.environ.get("NETTEACH_STATE_DIR", "/run/netteach")
LOCK_NAME = ".lock"
LOCK_TIMEOUT = 30.0  # seconds: a lab step holds the lock for milliseconds; longer means something hangs


@dataclass
class LabState:
    name: str
    host: str  # "isolated" or "root"
    owner_pid: int
    owner_start: int | None
    netns: list[str] = field(default_factory=list)  # kernel names, in creation order
    links: list[list] = field(default_factory=list)  # [ns, ifname]: links made outside the lab's namespaces
    routes: list[list] = field(default_factory=list)  # [ns, dst, via(, dev)]: routes added outside them
    sysctls: list[list] = field(default_factory=list)  # [ns, key, old value] to restore
    procs: list[dict] = field(default_factory=list)  # {pid, start, argv}; pid None = about to start
    files: list[str] = field(default_factory=list)  # files/dirs made (e.g. /etc/netns/<ns>)
    extra: dict = field(default_factory=dict)  # for higher layers (DockerHost): plain JSON

    def to_dict(self) -> dict:
        return dict(vars(self))  # fields hold only JSON data: no deep copy needed

    @classmethod
    def from_dict(cls, d) -> "LabState":
        known = {f.name for f in dataclasses.fields(cls)}
        st = cls(**{k: v for k, v in d.items() if k in known})
        if not isinstance(st.name, str) or not isinstance(st.netns, list):
            raise TypeError("not a lab state")
        return st


def state_dir() -> str:
    """Where this process finds the state files (inside the helper's /run when rootless)."""
    from netteach.kernel.helper import local_path

    return local_path(STATE_DIR)


def path(name: str) -> str:
    return os.path.join(state_dir(), f"{name}.json")


def _ensure_dir():
    """The state directory, made by this user and writable by no one else (else refuse)."""
    os.makedirs(state_dir(), mode=0o755, exist_ok=True)
    st = os.lstat(state_dir())
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise errors.PermissionDenied(
            f"{state_dir()} is not a directory that only this user (uid {os.geteuid()}) can write: "
            f"netteach will not trust it - remove it (`rm -rf {state_dir()}`) and try again")


_held = threading.local()  # per thread: how deep in locked() it is, and the fd it holds


def _holder(ino: int) -> str:
    """Who holds the lock (from /proc/locks), for the error message."""
    with contextlib.suppress(OSError):
        with open("/proc/locks") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 5 and parts[5].rsplit(":", 1)[-1] == str(ino):
                    return f"pid {parts[4]}"
    return "another process"


@contextlib.contextmanager
def locked(timeout: float | None = None):
    """Serialise state changes between processes and threads (two notebooks, a cleanup).

    Re-entrant within a thread. Raises ``LabInUse`` if the lock stays held
    longer than ``timeout`` seconds. Once no lab is left, the lock file and
    the directory go too (a waiter that then holds a removed file tries again).
    """
    depth = getattr(_held, "depth", 0)
    if depth:
        _held.depth += 1
        try:
            yield
        finally:
            _held.depth -= 1
        return
    timeout = LOCK_TIMEOUT if timeout is None else timeout
    deadline = time.monotonic() + timeout
    lock_path = os.path.join(state_dir(), LOCK_NAME)
    while True:
        _ensure_dir()
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise errors.LabInUse(
                            f"netteach's lock ({lock_path}) has been held by {_holder(os.fstat(fd).st_ino)} "
                            f"for over {timeout:g} s; wait for it to finish, or stop that process") from None
                    time.sleep(0.002)
            try:
                same = os.stat(lock_path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
        except BaseException:
            os.close(fd)
            raise
        if same:
            break
        os.close(fd)  # the file was removed by the last holder: lock the new one
    _held.depth = 1
    try:
        yield
    finally:
        _held.depth = 0
        try:
            if not all_names():  # no lab left: leave nothing behind (still holding the lock)
                with contextlib.suppress(OSError):
                    os.unlink(lock_path)
                with contextlib.suppress(OSError):
                    os.rmdir(state_dir())
        finally:
            os.close(fd)


def read(name: str) -> LabState | None | Exception:
    """The lab's state; None if it has no file; the error if the file cannot be parsed."""
    try:
        with open(path(name), "rb") as f:
            return LabState.from_dict(orjson.loads(f.read()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, AttributeError, orjson.JSONDecodeError) as exc:
        return exc


def load(name: str) -> LabState | None:
    st = read(name)
    return None if isinstance(st, Exception) else st


def save(st: LabState) -> None:
    """Write the state atomically: a temporary file of this thread, renamed over the old one."""
    _ensure_dir()
    p = path(st.name)
    tmp = os.path.join(state_dir(), f".{st.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    data = orjson.dumps(st.to_dict())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.rename(tmp, p)


def remove(name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path(name))
    if not os.path.exists(os.path.join(state_dir(), LOCK_NAME)):
        with contextlib.suppress(OSError):  # leave no empty directory behind once the last lab is gone
            os.rmdir(state_dir())


def all_names() -> list[str]:
    try:
        return sorted(n[:-5] for n in os.listdir(state_dir()) if n.endswith(".json") and not n.startswith("."))
    except FileNotFoundError:
        return []
