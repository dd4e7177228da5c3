"""A small ``dig`` for labs where bind9-dnsutils is not installed:
``python -m netteach.programs.dig [@SERVER] [+tcp] NAME [TYPE]``.

Sends one query (UDP, or TCP with ``+tcp``) to SERVER (default: the first
``nameserver`` of /etc/resolv.conf, as the container sees it) and prints the
reply's header flags and answer section the way ``dig`` does. For a PTR query
NAME may be an IPv4 address. Exit status 9 when no reply comes (dig's
"no servers could be reached").
"""

import socket
import sys


def _server() -> str:
    try:
        with open("/etc/resolv.conf") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 2 and parts[0] == "nameserver":
                    return parts[1]
    except OSError:
        pass
    return "127.0.0.1"


def main(argv=None):
    from dnslib import DNSRecord

    argv = sys.argv[1:] if argv is None else argv
    server, tcp, rest = None, False, []
    for a in argv:
        if a.startswith("@"):
            server = a[1:]
        elif a == "+tcp":
            tcp = True
        else:
            rest.append(a)
    name, qtype = rest[0], (rest[1].upper() if len(rest) > 1 else "A")
    if qtype == "PTR" and name.replace(".", "").isdigit():
        name = ".".join(reversed(name.split("."))) + ".in-addr.arpa"
    server = server or _server()
    q = DNSRecord.question(name, qtype)
    try:
        data = q.send(server, 53, tcp=tcp, timeout=2)
    except (socket.timeout, OSError) as exc:
        print(f";; connection timed out; no servers could be reached ({server}#53: {exc or 'timeout'})")
        return 9
    r = DNSRecord.parse(data)
    h = r.header
    flags = " ".join(f for f, on in (("qr", h.qr), ("aa", h.aa), ("tc", h.tc), ("rd", h.rd), ("ra", h.ra)) if on)
    print(f";; ->>HEADER<<- opcode: QUERY, status: {_rcode(h.rcode)}, id: {h.id}")
    print(f";; flags: {flags}; QUERY: {h.q}, ANSWER: {h.a}, AUTHORITY: {h.auth}, ADDITIONAL: {h.ar}")
    print(";; ANSWER SECTION:" if r.rr else ";; (no answer records)")
    for rr in r.rr:
        print(rr.toZone())
    print(f";; SERVER: {server}#53 ({'TCP' if tcp else 'UDP'})")
    return 0


def _rcode(code: int) -> str:
    from dnslib import RCODE

    return RCODE.get(code)


if __name__ == "__main__":
    sys.exit(main())
