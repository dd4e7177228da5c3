"""Docker's networking, reproduced on a lab (and, later, read from a real dockerd).

- :mod:`netteach.docker.host` — ``DockerHost``: a lab that does what dockerd does.
- :mod:`netteach.docker.rules` — Docker's nftables chains as a pure function of
  networks and published ports.

``from netteach.docker import DockerHost, docker_mac`` keeps working.
"""

from netteach.docker.host import DockerHost, docker_mac  # noqa: F401
