"""Docker's userland proxy for one published TCP port, as ``docker-proxy`` does it:
``python -m netteach.programs.docker_proxy 8080 172.17.0.2 80 [LISTEN_IP]``.

It listens on 0.0.0.0:HOST_PORT (or LISTEN_IP:HOST_PORT for ``-p 127.0.0.1:8081:80``) in the Docker host's namespace and relays each
connection to CONTAINER_IP:CONTAINER_PORT. Connections that nftables DNATs
(from outside, from the host to its own address) never reach it; it answers
what DNAT skips: 127.0.0.1:HOST_PORT, and containers on a bridge whose packets
the ``iifname "docker0" return`` rule keeps away from DNAT.
"""

import asyncio
import sys


async def _pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def serve(host_port: int, ip: str, port: int, listen: str = "0.0.0.0"):
    async def handle(r1, w1):
        try:
            r2, w2 = await asyncio.open_connection(ip, port)
        except OSError:
            w1.close()
            return
        await asyncio.gather(_pipe(r1, w2), _pipe(r2, w1))

    try:
        server = await asyncio.start_server(handle, listen, host_port, reuse_address=True)
    except OSError as exc:  # say why, on stderr: the lab shows it
        print(f"cannot listen on port {host_port}: {exc.strerror}", file=sys.stderr, flush=True)
        sys.exit(2)
    print(f"listening on port {host_port}", file=sys.stderr, flush=True)  # the lab waits for this line
    async with server:
        await server.serve_forever()


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    asyncio.run(serve(int(argv[0]), argv[1], int(argv[2]), argv[3] if len(argv) > 3 else "0.0.0.0"))


if __name__ == "__main__":
    main()
