"""A container's /etc/hosts and /etc/resolv.conf, as dockerd writes them (pure text; written by the host).

>>> hosts("172.17.0.2", "6013bf07c581", {"db.local": "10.0.0.5"}).splitlines()[-2:]
['172.17.0.2\\t6013bf07c581', '10.0.0.5\\tdb.local']
>>> resolv(["198.51.100.1"]), resolv(embedded="127.0.0.11")
('nameserver 198.51.100.1\\n', 'nameserver 127.0.0.11\\noptions ndots:0\\n')
"""

from __future__ import annotations

HOSTS_HEAD = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
              "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n"
              "ff02::2\tip6-allrouters\n")


def hosts(ip: str | None = None, hostname: str | None = None, add_host: dict | None = None) -> str:
    """/etc/hosts: the standard head, the container's own address and hostname, then ``--add-host`` lines.

    Other containers' names are never listed (Docker's embedded DNS answers those).
    """
    lines = [HOSTS_HEAD]
    if ip:
        lines.append(f"{ip}\t{hostname}\n")
    for hname, hip in (add_host or {}).items():
        lines.append(f"{hip}\t{hname}\n")
    return "".join(lines)


def resolv(servers: list | None = None, embedded: str | None = None) -> str:
    """/etc/resolv.conf: Docker's embedded DNS server (user-defined networks), else the given servers."""
    if embedded:
        return f"nameserver {embedded}\noptions ndots:0\n"
    return "".join(f"nameserver {s}\n" for s in servers or [])
