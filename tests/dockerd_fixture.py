"""A real dockerd for the tests: Debian's docker.io, private namespaces, data on tmpfs.

``real_docker`` (session scope) starts one daemon with the issue's scene:
``web`` (-p 8080:80, serving HTTP), ``db`` (network ``backend``, serving HTTP),
``both`` (default bridge + backend) and ``nada`` (network none). The machine's
own firewall, docker0 and Docker data are never touched (see
:mod:`netteach.kernel.dockerd`). Skips, saying why, only where docker.io or
the Docker SDK is missing.
"""

from __future__ import annotations

import os

import pytest

IMAGE = "nt-busybox:local"
HTTPD = ["httpd", "-f", "-p", "80", "-h", "/www"]
IDLE = ["sleep", "100000"]


def _skip_reason() -> str | None:
    from netteach.kernel import dockerd

    return dockerd.available()


class Scene:
    """The private daemon plus a Docker SDK client on it (the tests' hands; netteach only reads)."""

    def __init__(self, daemon):
        import docker

        self.daemon, self.url = daemon, daemon.url
        self.client = docker.DockerClient(base_url=daemon.url, version="auto")

    def run(self, name, network="bridge", ports=None, command=HTTPD, **kw):
        return self.client.containers.run(IMAGE, command, name=name, detach=True, network=network,
                                          ports=ports or {}, **kw)

    def exec(self, name, argv) -> tuple[int, str]:
        r = self.client.containers.get(name).exec_run(argv)
        return r.exit_code, r.output.decode(errors="replace")


def start_scene():
    from netteach.kernel import dockerd

    daemon = dockerd.start()
    try:
        daemon.demo()
    except BaseException:
        daemon.stop()
        raise
    return Scene(daemon)


@pytest.fixture(scope="session")
def real_docker():
    why = _skip_reason()
    if why:
        pytest.skip(why)
    s = start_scene()
    yield s
    s.client.close()
    s.daemon.stop()
    assert not os.path.exists(s.daemon.dir)


@pytest.fixture
def docker_env(real_docker, monkeypatch):
    """DOCKER_HOST points at the private daemon, as a teacher's shell would."""
    monkeypatch.setenv("DOCKER_HOST", real_docker.url)
    return real_docker
