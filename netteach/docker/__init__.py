"""Docker's networking, reproduced on a lab (and, later, read from a real dockerd).

- :mod:`netteach.docker.host` — ``DockerHost``: a lab that does what dockerd does.
- :mod:`netteach.docker.rules` — Docker's nftables chains as a pure function of
  networks and published ports.
- :mod:`netteach.docker.model` — Docker's objects as dataclasses (Container,
  Network, Endpoint, Port), filled from a real dockerd or a DockerHost (pure).
- :mod:`netteach.docker.ipam` — pools, overlap, lowest free address (pure).
- :mod:`netteach.docker.etcfiles` — a container's /etc/hosts and resolv.conf (pure).
- :mod:`netteach.docker.engine` — a real dockerd through its Engine API, read-only.
- :mod:`netteach.docker.real` — ``nt.docker_host()``: the real host with DockerHost's verbs.

``from netteach.docker import DockerHost, docker_mac`` keeps working.
"""

from netteach.docker.host import DockerHost, docker_mac  # noqa: F401
