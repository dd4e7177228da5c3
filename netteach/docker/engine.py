"""A real dockerd, read through its Engine API (read-only): containers, networks, ports.

Talks to the daemon's unix socket with the Docker SDK for Python (``pip
install 'netteach[docker]'``); never parses ``docker`` CLI text and never asks
the daemon to change anything (only ``GET`` requests are sent). The answers
become a :class:`~netteach.docker.model.Model`.

>>> url_of("unix:///tmp/x/docker.sock"), url_of(None, env={})
('unix:///tmp/x/docker.sock', 'unix:///var/run/docker.sock')
>>> socket_of("unix:///tmp/x/docker.sock")
'/tmp/x/docker.sock'
>>> supported("20.10.24+dfsg1"), supported("17.03.1-ce")
(True, False)

Where is the daemon's network? dockerd may run in a namespace of its own (a
private test daemon, see :mod:`netteach.kernel.dockerd`): the Engine
connection tells us dockerd's pid (``SO_PEERCRED``), and ``/proc/<pid>/ns/net``
is then its host namespace. Each container's namespace is its first
process's ``/proc/<pid>/ns/net``.
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass

from netteach import errors
from netteach.docker import model as _model

DEFAULT_SOCKET = "/var/run/docker.sock"
SUPPORTED_MAJORS = range(20, 30)  # the layouts netteach knows: 20.10 (classic) .. 29.x


DockerNotFound, DockerUnsupported = errors.DockerNotFound, errors.DockerUnsupported


def url_of(url: str | None = None, env=None) -> str:
    """The daemon's address: ``url``, else ``$DOCKER_HOST``, else the default socket."""
    env = os.environ if env is None else env
    url = url or env.get("DOCKER_HOST") or f"unix://{DEFAULT_SOCKET}"
    if url.startswith("/"):
        url = "unix://" + url
    return url


def socket_of(url: str) -> str | None:
    return url[len("unix://"):] if url.startswith("unix://") else None


def supported(version: str) -> bool:
    try:
        return int(version.split(".")[0]) in SUPPORTED_MAJORS
    except ValueError:
        return False


def peer_pid(path: str) -> int | None:
    """The pid of the process listening on a unix socket (``SO_PEERCRED``), None if not visible."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(2)
        s.connect(path)
        pid, _, _ = struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
        return pid or None
    finally:
        s.close()


def _check_socket(url: str) -> str | None:
    path = socket_of(url)
    if path is None:
        return None
    how = ("install Docker (`apt-get install docker.io`) and start it (`systemctl start docker`, or "
           "`dockerd &`), or point DOCKER_HOST at a running daemon's socket")
    if not os.path.exists(path) and not os.access(os.path.dirname(path) or "/", os.X_OK):
        raise errors.PermissionDenied(f"{path}: this user may not look into {os.path.dirname(path)} - run as root")
    if not os.path.exists(path):
        raise DockerNotFound(f"no Docker daemon here: {path} does not exist - {how}")
    try:
        peer_pid(path)  # connects: tells a dead socket and a forbidden one apart
        return path
    except PermissionError:
        raise errors.PermissionDenied(
            f"{path} exists but this user may not open it (it belongs to root and the 'docker' group): "
            "run as root, or add yourself to the group (`sudo usermod -aG docker $USER`, then log in "
            "again)") from None
    except (ConnectionRefusedError, FileNotFoundError, socket.timeout, OSError) as exc:
        raise DockerNotFound(f"no Docker daemon answers on {path} ({exc.strerror or exc}) - the "
                             f"socket is left over from a daemon that stopped; {how}") from None


@dataclass
class Daemon:
    """What the daemon says about itself (``docker version`` / ``docker info``)."""

    version: str
    api_version: str
    pid: int | None  # dockerd's pid, when this process can see it
    url: str
    iptables: bool = True
    storage: str = ""
    root_dir: str = ""

    def __str__(self):
        return f"dockerd {self.version} (API {self.api_version})"


class Engine:
    """A read-only connection to one dockerd.

    >>> Engine.__doc__.split()[1]
    'read-only'
    """

    def __init__(self, url: str | None = None, timeout: float = 10):
        self.url = url_of(url)
        path = _check_socket(self.url)
        try:
            import docker
        except ImportError:
            raise DockerUnsupported("reading a real dockerd needs the Docker SDK for Python: "
                                    "pip install 'netteach[docker]' (or pip install docker)") from None
        try:
            self.api = docker.APIClient(base_url=self.url, version="auto", timeout=timeout)
            v = self.api.version()
        except docker.errors.DockerException as exc:
            text = str(exc)
            if "Permission denied" in text:
                raise errors.PermissionDenied(f"{self.url}: permission denied - run as root or join the "
                                              "'docker' group") from None
            raise DockerNotFound(f"no Docker daemon answers on {self.url}: {text}") from None
        version = v.get("Version", "?")
        if not supported(version):
            raise DockerUnsupported(
                f"this dockerd is version {version} (API {v.get('ApiVersion')}); netteach reads Docker "
                f"{SUPPORTED_MAJORS.start}.x to {SUPPORTED_MAJORS.stop - 1}.x (API 1.40 and newer) - use "
                "Debian's docker.io (20.10) or Docker CE 20-29, or a newer netteach")
        pid = None
        if path:
            try:
                pid = peer_pid(path)
            except OSError:
                pid = None
        self.daemon = Daemon(version=version, api_version=v.get("ApiVersion", "?"), pid=pid, url=self.url)

    # ---- reading (GET only) -----------------------------------------------------------

    def containers_json(self) -> list[dict]:
        """``docker inspect`` of every running container (vanished ones are left out)."""
        import docker

        from concurrent.futures import ThreadPoolExecutor

        def one(cid):
            try:
                return self.api.inspect_container(cid)
            except docker.errors.NotFound:  # removed between the list and the inspect
                return None

        ids = [c["Id"] for c in self.api.containers()]
        # dockerd answers requests concurrently: a few at once (its connection pool holds 10)
        with ThreadPoolExecutor(min(8, max(1, len(ids)))) as pool:
            return [c for c in pool.map(one, ids) if c is not None]

    def networks_json(self) -> list[dict]:
        import docker

        out = []
        for summary in self.api.networks():
            try:
                out.append(self.api.inspect_network(summary["Id"]))
            except docker.errors.NotFound:
                continue
        return out

    def model(self, firewall: str = "") -> _model.Model:
        """Containers, networks and published ports, as :class:`~netteach.docker.model.Model`."""
        return _model.from_engine(self.containers_json(), self.networks_json(), source=str(self.daemon),
                                  firewall=firewall)

    def info(self) -> dict:
        return self.api.info()

    def host_netns(self) -> str | None:
        """The daemon's network namespace: None when it is this process's own, else ``/proc/<pid>/ns/net``."""
        pid = self.daemon.pid
        if not pid:
            return None
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat("/proc/self/ns/net").st_ino:
                return None
        except OSError:
            return None
        return f"/proc/{pid}/ns/net"

    def netns_of(self, c: _model.Container, m: _model.Model):
        """The kernel namespace of a container: a path, None for the host's (mode host), or "" if gone."""
        if c.mode == "host":
            return self.host_netns()
        if c.shares:
            other = m.container(c.shares)
            return self.netns_of(other, m) if other is not None and other is not c else ""
        if c.pid:
            return f"/proc/{c.pid}/ns/net"
        if c.sandbox_key:  # seen from dockerd's mount namespace, which may not be ours
            root = f"/proc/{self.daemon.pid}/root" if self.daemon.pid else ""
            return root + c.sandbox_key
        return ""

    def close(self):
        self.api.close()


def connect(url: str | None = None) -> Engine:
    """A read-only :class:`Engine` on ``url`` (default: ``$DOCKER_HOST`` or /var/run/docker.sock).

    Raises :class:`DockerNotFound`, :class:`~netteach.errors.PermissionDenied` or
    :class:`DockerUnsupported` with what to do.
    """
    return Engine(url)


def present(url: str | None = None) -> bool:
    """Whether a daemon socket is there at all (cheap: no connection)."""
    path = socket_of(url_of(url))
    return bool(path) and os.path.exists(path)


def host_facts(url: str | None = None) -> dict:
    """What a dockerd on this machine means for labs (``nt.doctor()``): socket, version, firewall backend,
    FORWARD policy, br_netfilter and ``bridge-nf-call-iptables`` in the daemon's namespace.

    ``{"present": False}`` where there is no daemon socket; ``"error"`` says why a daemon was not read.
    """
    from netteach import kernel

    path = socket_of(url_of(url))
    facts = {"socket": path, "present": present(url)}
    if not facts["present"]:
        return facts
    try:
        eng = connect(url)
    except errors.NetteachError as exc:
        facts["error"] = str(exc)
        return facts
    try:
        host = eng.host_netns()
        facts.update(version=eng.daemon.version, api=eng.daemon.api_version, netns=host or "this one")
        try:
            nft = kernel.nft_list(host, "ruleset")
        except errors.NetteachError:
            nft = ""
        legacy = kernel.iptables_legacy_save(host)
        facts["firewall"] = _model.firewall_of(nft, legacy) or "none found"
        facts["forward_policy"] = _model.forward_policy(nft, legacy)
        try:
            facts["bridge_nf_call_iptables"] = kernel.sysctl_get(host, "net.bridge.bridge-nf-call-iptables")
            facts["br_netfilter"] = True
        except errors.NetteachError:
            facts["br_netfilter"], facts["bridge_nf_call_iptables"] = False, None
    finally:
        eng.close()
    return facts
