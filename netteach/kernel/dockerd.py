"""A private, throw-away dockerd: its own network and mount namespaces, its data on tmpfs.

The tests (and notebook 08, on a machine without Docker) need a real Docker
daemon without touching the machine's own: its firewall, its ``docker0``, its
``/var/lib/docker`` or a running dockerd. :func:`start` runs Debian's
``dockerd`` (``apt-get install docker.io``; it starts its own containerd)
under ``unshare --net --mount``, so everything it makes lives in namespaces
that vanish with it. The same by hand, as root::

    D=$(mktemp -d /tmp/nt-dockerd-XXXXXX)
    echo '{"deprecated-key-path": "/run/docker-key.json"}' > $D/daemon.json   # 20.10: keeps /etc/docker untouched
    unshare --net --mount --propagation private -- sh -c '
      mount -t tmpfs -o mode=755 nt-dockerd-run /run          # private /run: no system containerd, no /run/docker
      mkdir -p $0/data && mount -t tmpfs nt-dockerd-data $0/data
      ip link set lo up
      exec dockerd -H unix://$0/docker.sock --data-root $0/data --exec-root /run/docker \\
                   --config-file $0/daemon.json' $D &
    export DOCKER_HOST=unix://$D/docker.sock       # docker ps, nt.inspect(), nt.docker_host() use it
    mkdir -p $D/bb/bin && cp /bin/busybox $D/bb/bin/ && tar -C $D/bb -c . | docker import - bb:local
    docker run -d --name web -p 8080:80 bb:local /bin/busybox httpd -f -p 80
    kill %1; rm -rf $D                             # stop the daemon (its namespaces and mounts go with it)

(:data:`SCRIPT` also keeps the machine's cgroups visible when /sys is
re-mounted for the new network namespace.) The daemon's socket is reachable
from outside the namespaces; ``nt.inspect()`` finds the daemon's network
namespace through the socket (``SO_PEERCRED``).

>>> "unshare" in start.__doc__
True
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from netteach import errors

DOCKERD = ("/usr/sbin/dockerd", "/usr/bin/dockerd")
BUSYBOX = "/bin/busybox"
APPLETS = ("sh", "ping", "wget", "nc", "httpd", "sleep", "ip", "cat", "ls", "hostname", "nslookup", "true", "timeout")

# $1 = work directory, $2 = dockerd, then dockerd's own arguments
SCRIPT = r"""
set -e
D=$1; shift
mkdir -p $D/cg $D/data
# a network namespace wants its own sysfs (bridges, /sys/class/net); keep the machine's cgroups in it
if [ -n "$(ls /sys/fs/cgroup 2>/dev/null)" ]; then
  mount --rbind /sys/fs/cgroup $D/cg; mount -t sysfs nt-dockerd-sys /sys; mount --move $D/cg /sys/fs/cgroup
else  # hidden by an outer sandbox's sysfs: mount the v1 hierarchies (or v2) again
  mount -t sysfs nt-dockerd-sys /sys
  mount -t tmpfs -o mode=755 nt-dockerd-cg /sys/fs/cgroup
  if awk 'NR>1 && $2>0' /proc/cgroups | grep -q .; then
    awk 'NR>1 && $2>0 && $4==1 {h[$2]=h[$2] (h[$2]?",":"") $1} END {for (k in h) print h[k]}' /proc/cgroups |
    while read c; do mkdir -p /sys/fs/cgroup/$c; mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c; done
    mkdir -p /sys/fs/cgroup/systemd; mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd || true
  else
    umount /sys/fs/cgroup; mount -t cgroup2 cgroup2 /sys/fs/cgroup
  fi
fi
mount -t tmpfs -o mode=755 nt-dockerd-run /run
mount -t tmpfs -o mode=711 nt-dockerd-data $D/data
ip link set lo up
exec "$@"
"""


def _dockerd() -> str:
    for path in DOCKERD:
        if os.access(path, os.X_OK):
            return path
    raise errors.MissingTool("a private dockerd needs Debian's docker.io: `apt-get install docker.io` "
                             "(./bootstrap.sh test installs it)")


def dockerd_version(path: str | None = None) -> str:
    out = subprocess.run([path or _dockerd(), "--version"], capture_output=True, text=True).stdout
    # "Docker version 20.10.24+dfsg1, build 5d6db84"
    return out.split("version", 1)[1].split(",")[0].strip() if "version" in out else "?"


class PrivateDockerd:
    """A running private dockerd: ``url`` for the Engine API (``DOCKER_HOST``), ``pid``, ``stop()``."""

    def __init__(self, directory: str, proc: subprocess.Popen, version: str):
        self.dir, self.proc, self.version = directory, proc, version
        self.pid = proc.pid
        self.socket = os.path.join(directory, "docker.sock")
        self.url = "unix://" + self.socket
        self.log = os.path.join(directory, "dockerd.log")
        self._mnt = None

    def __repr__(self):
        state = "running" if self.proc.poll() is None else f"stopped ({self.proc.returncode})"
        return f"<PrivateDockerd {self.version} pid {self.pid} {self.url} {state}>"

    def log_tail(self, n: int = 15) -> str:
        try:
            with open(self.log) as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def _ready(self) -> bool:
        import socket

        if not os.path.exists(self.socket):
            return False
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(2)
            s.connect(self.socket)
            s.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            return b"OK" in s.recv(4096)
        except OSError:
            return False
        finally:
            s.close()

    def _ours(self) -> list[int]:
        """Every process in this daemon's mount namespace (dockerd, containerd, shims, containers)."""
        if self._mnt is None:
            return []
        pids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.stat(f"/proc/{entry}/ns/mnt").st_ino == self._mnt:
                        pids.append(int(entry))
                except OSError:
                    continue
        return pids

    def stop(self, timeout: float = 30) -> None:
        """Stop the daemon (its containers stop with it), then anything left in its namespaces, by pid."""
        if self.proc.poll() is None:
            self._kill_containers()  # else dockerd gives each one 10 s to stop on SIGTERM
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        deadline = time.monotonic() + 10
        while True:  # container shims are re-parented to init; they end with their containers
            left = self._ours()
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # the tmpfs mounts lived in the daemon's mount namespace and went with it
        shutil.rmtree(self.dir, ignore_errors=True)

    def _kill_containers(self):
        try:
            import docker

            api = docker.APIClient(base_url=self.url, version="auto", timeout=10)
        except Exception:  # no SDK, or no daemon any more: dockerd stops them itself, more slowly
            return
        try:
            for c in api.containers():
                try:
                    api.kill(c["Id"])
                except docker.errors.APIError:
                    pass
        except docker.errors.DockerException:
            pass
        finally:
            api.close()

    def demo(self) -> list[str]:
        """The issue's scene on this (private) daemon: ``web`` (-p 8080:80, serving HTTP), ``db`` (network
        ``backend``, serving HTTP), ``both`` (default bridge + backend), ``nada`` (network none).

        Like ``docker network create backend; docker run -d --name web -p 8080:80 ... httpd`` and so on.
        Returns the containers' names. Only ever used on a daemon started by :func:`start`.
        """
        import docker

        image = self.import_busybox()
        httpd, idle = ["httpd", "-f", "-p", "80", "-h", "/www"], ["sleep", "100000"]
        client = docker.DockerClient(base_url=self.url, version="auto")
        try:
            if not client.networks.list(names=["backend"]):
                client.networks.create("backend", driver="bridge")
            have = {c.name for c in client.containers.list(all=True)}
            for name, net, cmd, ports in (("web", "bridge", httpd, {"80/tcp": 8080}), ("db", "backend", httpd, {}),
                                          ("both", "bridge", idle, {}), ("nada", "none", idle, {})):
                if name not in have:
                    client.containers.run(image, cmd, name=name, detach=True, network=net, ports=ports)
            both = client.containers.get("both")
            if "backend" not in both.attrs["NetworkSettings"]["Networks"]:
                client.networks.get("backend").connect("both")
        finally:
            client.close()
        return ["web", "db", "both", "nada"]

    def import_busybox(self, tag: str = "nt-busybox:local") -> str:
        """An image without a registry: Debian's static busybox, with applet links (``docker import``)."""
        import io
        import tarfile

        with open(BUSYBOX, "rb") as f:
            head = f.read(8192)
            if b"ld-linux" in head or b"/lib64/" in head:
                raise errors.MissingTool(f"{BUSYBOX} is linked dynamically; `apt-get install busybox-static`")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for d in ("bin", "etc", "tmp", "proc", "sys", "dev", "www"):
                info = tarfile.TarInfo(d)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            tar.add(BUSYBOX, "bin/busybox")
            for a in APPLETS:
                info = tarfile.TarInfo(f"bin/{a}")
                info.type, info.linkname = tarfile.SYMTYPE, "busybox"
                tar.addfile(info)
            page = b"hello from a real container\n"
            info = tarfile.TarInfo("www/index.html")
            info.size = len(page)
            tar.addfile(info, io.BytesIO(page))
        import docker

        api = docker.APIClient(base_url=self.url, version="auto")
        try:
            repo, _, t = tag.partition(":")
            api.import_image_from_data(buf.getvalue(), repository=repo, tag=t or "latest",
                                       changes=['CMD ["/bin/sh"]'])
        finally:
            api.close()
        return tag


def available() -> str | None:
    """Why a private dockerd cannot start here (None when it can): not root, no docker.io, no SDK."""
    if os.geteuid() != 0:
        return "a private dockerd needs root"
    if not any(os.access(p, os.X_OK) for p in DOCKERD):
        return "Debian's docker.io is not installed (apt-get install docker.io busybox-static)"
    if not shutil.which("unshare"):
        return "unshare (util-linux) is missing"
    try:
        import docker  # noqa: F401
    except ImportError:
        return "the Docker SDK for Python is missing (pip install 'netteach[docker]')"
    return None


def start(directory: str | None = None, timeout: float = 60, iptables: str | None = None) -> PrivateDockerd:
    """Start Debian's dockerd under ``unshare --net --mount``, data and exec roots on tmpfs.

    Returns when its Engine API answers. Needs root. Stop it with ``.stop()``.
    ``iptables="legacy"`` gives it the old x_tables backend (``iptables-legacy``)
    instead of the machine's default, as on hosts where Docker's rules are
    invisible to ``nft list ruleset``.
    """
    path = _dockerd()
    if not shutil.which("unshare"):
        raise errors.MissingTool("the 'unshare' command is missing - `apt-get install util-linux`")
    if os.geteuid() != 0:
        raise errors.PermissionDenied("a private dockerd needs root (it makes namespaces and mounts)")
    d = directory or tempfile.mkdtemp(prefix="nt-dockerd-", dir="/tmp")
    os.makedirs(d, exist_ok=True)
    version = dockerd_version(path)
    conf = {}
    if version.split(".")[0].isdigit() and int(version.split(".")[0]) < 23:
        conf["deprecated-key-path"] = "/run/docker-key.json"  # else 20.10 writes /etc/docker/key.json
    with open(os.path.join(d, "daemon.json"), "w") as f:
        json.dump(conf, f)
    path_dirs = "/usr/sbin:/usr/bin:/sbin:/bin"  # Debian's binaries, not /usr/local's
    if iptables == "legacy":  # dockerd runs `iptables`: let that be the legacy one, for it alone
        shims = os.path.join(d, "legacy-bin")
        os.makedirs(shims, exist_ok=True)
        for tool in ("iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save",
                     "ip6tables-restore"):
            target = shutil.which(tool.replace("tables", "tables-legacy", 1), path=path_dirs)
            if target is None:
                raise errors.MissingTool("iptables-legacy is missing: `apt-get install iptables`")
            os.symlink(target, os.path.join(shims, tool))
        path_dirs = shims + ":" + path_dirs
    env = {**os.environ, "PATH": path_dirs}
    env.pop("DOCKER_HOST", None)
    # docker-init (tini, from docker.io) as a subreaper: container shims orphaned at shutdown are
    # reaped by it instead of lingering as zombies where init does not reap
    init = [p for p in ("/usr/bin/docker-init", "/usr/bin/tini") if os.access(p, os.X_OK)][:1]
    init = [init[0], "-s", "--"] if init else []
    # and if this process dies without stop() (a killed test run), the daemon is told to stop too
    death = ["setpriv", "--pdeathsig", "TERM", "--"] if shutil.which("setpriv") else []
    argv = [*death, "unshare", "--net", "--mount", "--propagation", "private", "--", *init, "sh", "-c", SCRIPT, "sh", d,
            path, "-H", f"unix://{d}/docker.sock", "--data-root", f"{d}/data", "--exec-root", "/run/docker",
            "--pidfile", "/run/docker.pid", "--config-file", f"{d}/daemon.json", "--shutdown-timeout", "1"]
    log = open(os.path.join(d, "dockerd.log"), "wb")
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
    finally:
        log.close()
    daemon = PrivateDockerd(d, proc, version)
    deadline = time.monotonic() + timeout
    while not daemon._ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = daemon.log_tail()
            daemon.stop()
            raise errors.KernelError(f"the private dockerd did not start ({'exited ' + str(proc.returncode) if proc.poll() is not None else 'timed out'}):\n{tail}")
        time.sleep(0.05)
    try:
        daemon._mnt = os.stat(f"/proc/{proc.pid}/ns/mnt").st_ino
    except OSError:
        pass
    return daemon
