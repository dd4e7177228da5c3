"""Checks on names and addresses, done before anything touches the kernel.

>>> ifname("veth0")
'veth0'
>>> ifname("a-very-long-interface-name")
Traceback (most recent call last):
...
netteach.errors.InvalidName: interface name 'a-very-long-interface-name' is 26 bytes; Linux allows at most 15 (e.g. 'a-very-long-int')
>>> interface_cidr("10.0.0.2/24")
IPv4Interface('10.0.0.2/24')
>>> route_dst("default")
'0.0.0.0/0'
"""

from __future__ import annotations

import ipaddress
import re

from netteach.errors import InvalidAddress, InvalidName

_LAB = re.compile(r"^[a-z0-9][a-z0-9-]{0,23}$")
_NS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
_SYSCTL = re.compile(r"^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$")


def lab(name: str) -> str:
    """A lab name: lowercase letters, digits and '-', at most 24, e.g. 'ch2'."""
    if not isinstance(name, str) or not _LAB.match(name):
        raise InvalidName(f"lab name {name!r} is not allowed: use 1-24 lowercase letters, digits "
                          "or '-', starting with a letter or digit (e.g. 'ch2')")
    return name


def netns(name: str) -> str:
    """A namespace name within a lab: letters, digits, '_' and '-', at most 40."""
    if not isinstance(name, str) or not _NS.match(name):
        raise InvalidName(f"namespace name {name!r} is not allowed: use 1-40 letters, digits, '_' "
                          "or '-', starting with a letter or digit (e.g. 'my-container')")
    return name


def ifname(name: str) -> str:
    """An interface name as Linux accepts it: 1-15 bytes, no '/', ':', spaces."""
    if not isinstance(name, str) or not name:
        raise InvalidName(f"interface name {name!r} is empty or not a string")
    n = len(name.encode())
    if n > 15:
        short = name.encode()[:15].decode(errors="ignore")
        raise InvalidName(f"interface name {name!r} is {n} bytes; Linux allows at most 15 "
                          f"(e.g. {short!r})")
    if name in (".", "..") or re.search(r"[/:\s%]", name):
        raise InvalidName(f"interface name {name!r} contains a character Linux refuses "
                          "('/', ':', '%' or white space)")
    return name


def interface_cidr(text: str):
    """An interface address with its prefix, like ``ip addr add`` takes: '10.0.0.2/24'."""
    if not isinstance(text, str) or "/" not in text:
        raise InvalidAddress(f"address {text!r} needs a prefix length, e.g. '10.0.0.2/24' "
                             "(without one, ip would make it a /32 that reaches no neighbour)")
    try:
        return ipaddress.ip_interface(text)
    except ValueError as exc:
        raise InvalidAddress(f"{text!r} is not an address with a prefix: {exc}") from None


def address(text: str):
    """A plain address (no prefix): '10.0.0.1'."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise InvalidAddress(f"{text!r} is not an IP address, e.g. '10.0.0.1'") from None


def route_dst(text: str) -> str:
    """A route destination: 'default' or a network like '10.1.0.0/16' (host bits zero)."""
    if text == "default":
        return "0.0.0.0/0"
    if text == "default6":
        return "::/0"
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidAddress(f"route destination {text!r} is not 'default' or a network "
                             "such as '10.1.0.0/16'") from None
    if str(net) != text and "/" in text:
        raise InvalidAddress(f"route destination {text!r} has host bits set: "
                             f"did you mean {str(net)!r}?")
    return str(net)


def sysctl(key: str) -> str:
    if not isinstance(key, str) or not _SYSCTL.match(key) or ".." in key:
        raise InvalidName(f"{key!r} is not a sysctl name, e.g. 'net.ipv4.ip_forward'")
    return key
