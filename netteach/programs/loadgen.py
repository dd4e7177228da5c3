"""A bounded TCP load generator for the lab's paths (no iperf3 needed):

    python -m netteach.programs.loadgen sink PORT            # in the receiving namespace
    python -m netteach.programs.loadgen send ADDR PORT MB    # prints {"mbit_s": ..., "seconds": ...}
    python -m netteach.programs.loadgen rr ADDR PORT COUNT   # prints {"rtt_us": ...}: 1-byte request/response

``send`` pushes MB megabytes and waits for the sink's byte count (so the time
covers delivery, not just the local buffer); ``rr`` measures the round trip
of COUNT one-byte exchanges on one connection. Traffic is bounded by MB and
COUNT, and stays between lab namespaces.
"""

import json
import socket
import sys
import threading
import time

CHUNK = 64 * 1024


def _serve(conn):
    with conn:
        mode = conn.recv(1)
        if mode == b"S":
            total = 0
            while data := conn.recv(1 << 20):
                total += len(data)
                if data.endswith(b"\0END"):
                    break
            conn.sendall(str(total).encode())
        elif mode == b"R":
            while data := conn.recv(1):
                conn.sendall(data)


def sink(port: int):
    srv = socket.create_server(("0.0.0.0", port), backlog=16, reuse_port=False)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=_serve, args=(conn,), daemon=True).start()


def send(addr: str, port: int, mb: float) -> dict:
    payload = b"x" * CHUNK
    todo = int(mb * 1e6)
    with socket.create_connection((addr, port), timeout=30) as s:
        t = time.perf_counter()
        s.sendall(b"S")
        while todo > 0:
            n = min(todo, CHUNK)
            s.sendall(payload[:n])
            todo -= n
        s.sendall(b"\0END")
        got = int(s.recv(64) or b"0")
        dt = time.perf_counter() - t
    return {"bytes": got, "seconds": round(dt, 4), "mbit_s": round(got * 8 / dt / 1e6, 1)}


def rr(addr: str, port: int, count: int) -> dict:
    with socket.create_connection((addr, port), timeout=30) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(b"R")
        t = time.perf_counter()
        for _ in range(count):
            s.sendall(b"x")
            s.recv(1)
        dt = time.perf_counter() - t
    return {"count": count, "rtt_us": round(dt / count * 1e6, 1)}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[0] == "sink":
        sink(int(argv[1]))
    elif argv[0] == "send":
        print(json.dumps(send(argv[1], int(argv[2]), float(argv[3]))))
    elif argv[0] == "rr":
        print(json.dumps(rr(argv[1], int(argv[2]), int(argv[3]))))


if __name__ == "__main__":
    main()
