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

from netteach.errors import InvalidAddress, InvalidName, InvalidValue

_LAB = re.compile(r"^[a-z0-9][a-z0-9-]{0,23}$")
_NS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
_SYSCTL = re.compile(r"^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$")


def lab(name: str) -> str:
    """A lab name: lowercase letters, digits and '-', at most 24, e.g. 'ch2'."""
    if not isinstance(name, str) or not _LAB.fullmatch(name):
        raise InvalidName(f"lab name {name!r} is not allowed: use 1-24 lowercase letters, digits "
                          "or '-', starting with a letter or digit (e.g. 'ch2')")
    return name


def netns(name: str) -> str:
    """A namespace name within a lab: letters, digits, '_' and '-', at most 40."""
    if not isinstance(name, str) or not _NS.fullmatch(name):
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
    if name in (".", "..") or re.search(r"[/:\s%]", name) or not name.isprintable():
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
    if not isinstance(text, str):
        raise InvalidAddress(f"{text!r} is not an IP address: give it as a string, e.g. '10.0.0.1'")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise InvalidAddress(f"{text!r} is not an IP address, e.g. '10.0.0.1'") from None


def route_dst(text: str) -> str:
    """A route destination: 'default' or a network like '10.1.0.0/16' (host bits zero)."""
    if not isinstance(text, str):
        raise InvalidAddress(f"route destination {text!r}: give 'default' or a network as a string, "
                             "e.g. '10.1.0.0/16'")
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
    """A sysctl a lab may set: a network key (``net.*``), which each namespace has its own copy of.

    >>> sysctl("kernel.hostname")
    Traceback (most recent call last):
    ...
    netteach.errors.InvalidName: 'kernel.hostname' is not a network sysctl: a lab may only set net.* keys (each network namespace has its own), never kernel.* or vm.* ones, which belong to the whole machine
    """
    if not isinstance(key, str) or not _SYSCTL.fullmatch(key) or ".." in key:
        raise InvalidName(f"{key!r} is not a sysctl name, e.g. 'net.ipv4.ip_forward'")
    if not key.startswith("net."):
        raise InvalidName(f"{key!r} is not a network sysctl: a lab may only set net.* keys (each network "
                          "namespace has its own), never kernel.* or vm.* ones, which belong to the whole machine")
    return key


def sysctl_value(key: str, value) -> str:
    """A sysctl value as text: an int or a short line of digits, words and blanks (``"4096 87380"``)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidValue(f"value {value!r} for {key}: give a number (e.g. 1) or a short text")
    text = str(value)
    if not re.fullmatch(r"[A-Za-z0-9_.:,/ \t-]{1,128}", text) or not text.strip():
        raise InvalidValue(f"value {value!r} for {key}: use digits, letters and blanks only, e.g. 1")
    return text


_HOST = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})")


def hostname(name: str, what: str = "host name") -> str:
    """A host name as resolvers take it: letters, digits, '.', '-', '_'; never starting with '-'.

    >>> hostname("web.local")
    'web.local'
    >>> hostname("evil\\n10.66.0.1 web")
    Traceback (most recent call last):
    ...
    netteach.errors.InvalidName: host name 'evil\\n10.66.0.1 web' is not allowed: use letters, digits, '.', '-' and '_', starting with a letter or digit (e.g. 'web')
    """
    if not isinstance(name, str) or not _HOST.fullmatch(name):
        raise InvalidName(f"{what} {name!r} is not allowed: use letters, digits, '.', '-' and '_', "
                          "starting with a letter or digit (e.g. 'web')")
    return name


def ping_target(target) -> str:
    """An address or a host name to ping (never something ping would read as an option)."""
    if isinstance(target, str):
        try:
            return str(address(target))
        except InvalidAddress:
            pass
        if _HOST.fullmatch(target):
            return target
    raise InvalidAddress(f"ping target {target!r}: give an address like '10.0.0.1' or a host name like 'web'")


def port(value) -> int:
    """A TCP/UDP port number, 1-65535 (an int; not True, not '80')."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise InvalidValue(f"port {value!r} is not a TCP port number: use an int from 1 to 65535, e.g. 8080")
    return value


def count(value, what: str = "count", most: int = 1000) -> int:
    """A small positive int (packets to send, ...)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise InvalidValue(f"{what} {value!r}: use an int from 1 to {most}")
    return value


def seconds(value, what: str = "timeout", most: float = 3600) -> float:
    """A positive number of seconds."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= most:
        raise InvalidValue(f"{what} {value!r}: use a number of seconds above 0 (at most {most:g}), e.g. 2")
    return float(value)


def command(cmd):
    """A command to run: a shell string, or an argv list of strings (and numbers)."""
    if isinstance(cmd, str) and cmd.strip() and "\0" not in cmd:
        return cmd
    if isinstance(cmd, (list, tuple)) and cmd and all(
            isinstance(a, (str, int, float)) and not isinstance(a, bool) and "\0" not in str(a) for a in cmd):
        return cmd
    raise InvalidValue(f"command {cmd!r}: give a shell string like 'ip -br addr' or a list of strings "
                      "like ['ip', '-br', 'addr']")


def text_input(value):
    """Text for a command's standard input: a string or None."""
    if value is None or isinstance(value, str):
        return value
    raise InvalidValue(f"input {value!r}: give the text for the command's standard input as a string")
