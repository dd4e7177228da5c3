"""Docker's embedded DNS server for one container, run inside the container's namespace:
``python -m netteach.programs.dns_server RECORDS UDP_PORT TCP_PORT [--listen IP] [--authoritative]``.

dockerd answers each container on a user-defined network at 127.0.0.11:53;
nat rules in the container's namespace send port 53 to the ports it really
listens on (UDP_PORT, TCP_PORT). It answers as Docker 20.10 does:

- A records for the names it knows on the container's networks (container
  name, network alias, short id, ``name.network``), TTL 600, RA set, AA not;
  an alias several containers share gets all their addresses;
- PTR for those addresses -> ``name.network``; AAAA for a known name -> an
  empty NOERROR answer (no IPv6 here);
- anything else is forwarded to the container's upstream servers (the
  host's, or ``--dns``), from inside the container's namespace, by the same
  protocol; the upstream's answer (NXDOMAIN too) is passed on. When no
  upstream answers -- an offline lab -- the client gets **no reply at all**
  (never SERVFAIL) and waits for its own timeout, as with Docker.

With ``--authoritative`` it plays a public DNS server instead (the lab's
upstream at 198.51.100.1): AA set, and NXDOMAIN for any name it does not know.

RECORDS is a JSON file the DockerHost rewrites when containers come and go
(``{"names": {name: [ip, ...]}, "ptr": {ip: name}, "upstreams": [ip, ...]}``);
it is read again whenever it changes.
"""

import json
import os
import socket
import socketserver
import sys
import threading

LISTEN = "127.0.0.11"
TTL = 600
UPSTREAM_TIMEOUT = 2.0


class Records:
    def __init__(self, path):
        self.path, self.mtime, self.data = path, None, {"names": {}, "ptr": {}, "upstreams": []}
        self.lock = threading.Lock()

    def get(self):
        with self.lock:
            try:
                mtime = os.stat(self.path).st_mtime_ns
                if mtime != self.mtime:
                    with open(self.path) as f:
                        self.data = json.load(f)
                    self.mtime = mtime
            except (OSError, ValueError):
                pass  # being rewritten: keep the last good copy
            return self.data


def answer(query: bytes, records: dict, authoritative: bool = False):
    """The reply for one query (bytes), or None to forward it upstream.

    >>> from dnslib import DNSRecord
    >>> recs = {"names": {"web": ["10.20.0.2"]}, "ptr": {"10.20.0.2": "web.appnet"}}
    >>> r = DNSRecord.parse(answer(DNSRecord.question("web").pack(), recs))
    >>> r.header.aa, r.header.ra, [(str(a.rdata), a.ttl) for a in r.rr]
    (0, 1, [('10.20.0.2', 600)])
    >>> answer(DNSRecord.question("example.com").pack(), recs) is None
    True
    >>> DNSRecord.parse(answer(DNSRecord.question("web", "AAAA").pack(), recs)).rr
    []
    >>> str(DNSRecord.parse(answer(DNSRecord.question("2.0.20.10.in-addr.arpa", "PTR").pack(), recs)).rr[0].rdata)
    'web.appnet.'
    """
    from dnslib import PTR, QTYPE, RCODE, RR, A, DNSRecord

    req = DNSRecord.parse(query)
    q = req.q
    name = str(q.qname).rstrip(".").lower()
    reply = req.reply(ra=1, aa=1 if authoritative else 0)
    if authoritative and name not in records["names"] and not (
            q.qtype == QTYPE.PTR and name.endswith(".in-addr.arpa")
            and ".".join(reversed(name[: -len(".in-addr.arpa")].split("."))) in records["ptr"]):
        reply.header.rcode = RCODE.NXDOMAIN
        return reply.pack()
    if q.qtype == QTYPE.PTR and name.endswith(".in-addr.arpa"):
        ip = ".".join(reversed(name[: -len(".in-addr.arpa")].split(".")))
        target = records["ptr"].get(ip)
        if target is None:
            return None
        reply.add_answer(RR(q.qname, QTYPE.PTR, rdata=PTR(target + "."), ttl=TTL))
        return reply.pack()
    ips = records["names"].get(name)
    if ips is None:
        return None
    if q.qtype in (QTYPE.A, QTYPE.ANY):
        for ip in ips:
            reply.add_answer(RR(q.qname, QTYPE.A, rdata=A(ip), ttl=TTL))
    # AAAA and other types of a known name: NOERROR with no answer
    return reply.pack()


def forward_udp(query: bytes, upstreams) -> bytes | None:
    for server in upstreams:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(UPSTREAM_TIMEOUT)
            try:
                s.sendto(query, (server, 53))
                return s.recv(65535)
            except OSError:  # timeout, or refused: nothing listens there
                continue
    return None


def forward_tcp(query: bytes, upstreams) -> bytes | None:
    for server in upstreams:
        try:
            with socket.create_connection((server, 53), timeout=UPSTREAM_TIMEOUT) as s:
                s.sendall(len(query).to_bytes(2, "big") + query)
                size = int.from_bytes(_read(s, 2), "big")
                return _read(s, size)
        except OSError:
            continue
    return None


def _read(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise OSError("closed")
        buf += chunk
    return buf


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    path, udp_port, tcp_port = argv[0], int(argv[1]), int(argv[2])
    listen = argv[argv.index("--listen") + 1] if "--listen" in argv else LISTEN
    authoritative = "--authoritative" in argv
    records = Records(path)

    def respond(query, forward):
        try:
            data = records.get()
            out = answer(query, data, authoritative)
            return out if out is not None else forward(query, data.get("upstreams", []))
        except Exception:  # a malformed query: no reply, like a real server dropping garbage
            return None

    class UDPHandler(socketserver.BaseRequestHandler):
        def handle(self):
            query, sock = self.request
            out = respond(query, forward_udp)
            if out is not None:
                sock.sendto(out, self.client_address)

    class TCPHandler(socketserver.BaseRequestHandler):
        def handle(self):
            try:
                size = int.from_bytes(_read(self.request, 2), "big")
                out = respond(_read(self.request, size), forward_tcp)
                if out is not None:
                    self.request.sendall(len(out).to_bytes(2, "big") + out)
            except OSError:
                pass

    class UDPServer(socketserver.ThreadingUDPServer):
        daemon_threads = True

    class TCPServer(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    # bind both before anything slow (dnslib is imported on the first query): the lab waits for them
    udp = UDPServer((listen, udp_port), UDPHandler)
    tcp = TCPServer((listen, tcp_port), TCPHandler)
    threading.Thread(target=udp.serve_forever, daemon=True).start()
    tcp.serve_forever()


if __name__ == "__main__":
    main()
