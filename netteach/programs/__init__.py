"""Small programs a lab runs inside its namespaces (as separate processes it owns).

- ``python -m netteach.programs.http_server PORT NAME``: answers every GET with
  ``hello from NAME``, like a container's web server.
- ``python -m netteach.programs.docker_proxy HOST_PORT CONTAINER_IP CONTAINER_PORT``:
  Docker's userland proxy (``docker-proxy``) for one published TCP port.
"""
