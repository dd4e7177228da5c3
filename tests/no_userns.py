"""Run a command as an unprivileged user on a machine where user namespaces are
unavailable - without changing the machine: the command runs in a private user
namespace (ids 0-65535 mapped to 200000-265535 outside) whose
user.max_user_namespaces is 0, as uid/gid 1000 inside, with no capabilities.
Needs root. Used by the replay test (Binder without user namespaces).

    python tests/no_userns.py CMD...      # exits with CMD's status
"""

from __future__ import annotations

import ctypes
import os
import sys

CLONE_NEWUSER = 0x10000000
OUTSIDE = 200000            # first outside id of the mapping
UID = 1000                  # the unprivileged user inside


def run(argv: list[str]) -> int:
    ready_r, ready_w = os.pipe()        # child -> parent: "I have unshared"
    go_r, go_w = os.pipe()              # parent -> child: "your maps are written"
    pid = os.fork()
    if pid == 0:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(CLONE_NEWUSER) != 0:
                raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWUSER)")
            os.write(ready_w, b"u")
            os.read(go_r, 1)
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
            with open("/proc/sys/user/max_user_namespaces", "w") as f:
                f.write("0")
            os.setgroups([])
            os.setresgid(UID, UID, UID)
            os.setresuid(UID, UID, UID)     # drops every capability
            os.execvp(argv[0], argv)
        except BaseException as e:          # noqa: BLE001 - report and leave the child
            print(f"no_userns: {e}", file=sys.stderr)
            os._exit(127)
    os.read(ready_r, 1)
    for kind in ("uid_map", "gid_map"):
        with open(f"/proc/{pid}/{kind}", "w") as f:
            f.write(f"0 {OUTSIDE} 65536\n")
    os.write(go_w, b"g")
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
