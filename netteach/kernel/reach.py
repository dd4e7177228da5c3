"""A reachability sweep: ICMP echoes and TCP requests from many namespaces, within the kernel's room.

``sweep(echoes, tcp)`` sends every echo (:mod:`.icmp`: one raw socket per
source namespace) and makes every TCP request (a socket opened in the source
namespace), and reports what the kernel answered. Two kernel limits shape it:

- The neighbour (ARP) table is one table for the whole machine (see
  :mod:`.neigh`): beyond 1024 entries the kernel refuses new neighbours and
  drops the packets that needed one. A probe between two containers on one
  bridge makes two entries (the source learns the target, the target learns
  the source from its ARP request), so a full mesh of n containers needs ~n².
  So the probes go source by source, in a sliding window of sources whose
  entries (two per on-link target, two for the gateway) fit a budget well
  under the limit. A source leaves the window once its on-link targets
  answered and its ARP exchanges are over, and takes its entries with it: its
  own cache is flushed and, in each namespace it resolved, the entries for its
  addresses are deleted (one netlink write per namespace). Entries are soft
  state: whatever is still in flight is resolved again by the kernel. A probe
  that cannot be answered (a network Docker isolates) holds no room: its
  timeout runs while later sources are probed.
- Each ARP request is a broadcast that a bridge copies to every port, into a
  CPU's input queue of 1000 packets. So on-link probes whose ARP may still be
  out are paced (at most ``FLOOD`` copies at once).

A pair of namespaces on one bridge costs one ARP broadcast, not two: when a
source is probed, the namespaces not probed yet that reach it on-link send
their echoes back to it right after its own are answered, while they still
know it from its ARP request (these pairs are then left out of their own
turn). Every pair still gets its own echo from its own source.

TCP requests start once the echoes of the source are answered, when both
ends know each other (no ARP traffic of their own); at most
``TCP_NEAR_AT_ONCE`` on-link ones at a time per source, as one server gets
them all (its listen queue holds 128). A source whose on-link connections
are not finished stays in the window: a SYN not answered is sent again after
1 s, and with its entries deleted the kernel would make them again outside
the budget (dropped by a firewall, such connections wait out their timeout).

An echo not answered is sent again only if the kernel dropped packets for want
of room while it was out (the table's ``table_fulls`` count, or a full input
queue) - the ways the sweep itself can lose a packet. At the end every
neighbour entry for a lab address in the lab's namespaces is removed again,
so the sweep leaves the machine's table as it found it.
"""

from __future__ import annotations

import collections
import errno
import os
import select
import socket
import struct
import time

from netteach.kernel import icmp, neigh, worker

BUDGET = 640  # neighbour entries the sources in the window may make (the machine's limit is 1024)
FLOOD = 2000  # copies of ARP broadcasts that may be on their way at once (two CPUs' input queues)
SETTLE = 0.02  # an on-link probe not answered after this no longer holds back the next ones
TCP_NEAR_AT_ONCE = 32  # on-link TCP requests of one source out at once (to the same few servers)
TCP_SETTLE = 0.25  # one not finished after this (a firewall drops it?) no longer holds back the next ones
FAR_SLICE = 32  # probes through a gateway that one source sends between two reads
RECHECK = (0.005, 0.05)  # first and longest wait before asking again whether a source's ARP is over
LOSSES_EVERY = 0.01  # how often the kernel's loss counts are read while echoes time out


class _Addresses:
    """The IPv4 addresses of the namespaces a sweep may clean, read from the kernel."""

    def __init__(self, spaces):
        import ipaddress

        from netteach.kernel import rtnl

        self.owners: dict[str, list] = collections.defaultdict(list)  # address -> [(ns, ifindex)]
        self.on: dict = {}  # ns -> {ifindex: [address]}
        self.nets: dict = {}  # ns -> [(network, mask)] as integers
        from netteach import errors

        for ns in spaces:
            on, nets = collections.defaultdict(list), []
            try:
                addrs = rtnl.fast(ns).addrs()
            except errors.NoSuchNamespace:
                continue  # deleted by hand: nothing to clean there
            for a in addrs:
                if a["family"] != 4 or a["address"] is None or a["address"].startswith("127."):
                    continue
                self.owners[a["address"]].append((ns, a["index"]))
                on[a["index"]].append(a["address"])
                n = ipaddress.ip_network(f"{a['address']}/{a['prefixlen']}", strict=False)
                nets.append((int(n.network_address), int(n.netmask)))
            self.on[ns], self.nets[ns] = on, nets
        everyone = [_int(a) for a in self.owners]
        sizes = {net: sum(ip & net[1] == net[0] for ip in everyone) for net in {n for v in self.nets.values() for n in v}}
        # how many lab namespaces one ARP broadcast of ns reaches at most (the ports of its bridge)
        self.fanout = {ns: max((sizes[n] for n in nets), default=1) for ns, nets in self.nets.items()}

    def on_link(self, ns, addresses) -> set:
        """Those of ``addresses`` in a subnet ``ns`` has an address in (reached without a gateway)."""
        nets = self.nets.get(ns, ())
        return {a for a in addresses if any(_int(a) & mask == net for net, mask in nets)}


def _int(address: str) -> int:
    return struct.unpack("!I", socket.inet_aton(address))[0]


class _Source:
    """A source namespace in the window: what it sends, the room it holds, when to look again."""

    def __init__(self, ns, cost, weight):
        self.ns, self.cost, self.weight = ns, cost, weight
        self.near: collections.deque = collections.deque()  # echoes not sent yet, on-link (ARP paced)
        self.far: collections.deque = collections.deque()  # ... through a gateway
        # echoes back to it from namespaces not probed yet: sent once its own are answered, when those
        # namespaces already know it from its ARP requests (no broadcast of their own)
        self.back: list = []
        self.tcp: list = []  # TCP jobs: its own, and those back to it
        self.tcp_near: set = set()  # those on-link
        self.waiting: set = set()  # (ns, seq) of on-link echoes not answered yet
        self.tcp_waiting: set = set()  # on-link TCP jobs not finished
        self.tcp_queue: collections.deque = collections.deque()  # (job, socket) of on-link ones not started
        self.tcp_slots: dict = {}  # on-link ones started less than TCP_SETTLE ago and not finished: when
        self.stage = 0  # 0: its echoes, 1: the echoes back, 2: TCP
        self.last_send = self.next_check = 0.0
        self.recheck = RECHECK[0]


class _Conn:
    def __init__(self, i, sock, payload, unit):
        self.i, self.sock, self.payload, self.unit = i, sock, payload, unit
        self.connected = self.done = False


def sweep(echoes: list[tuple], tcp: list[tuple], timeout: float = 1.0, tcp_timeout: float = 2.0,
          attempts: int = 3, flush: list | None = None) -> tuple[list[bool], list[dict]]:
    """Echoes ``(ns, address)`` and TCP requests ``(ns, address, port, payload)``, each from its namespace.

    Returns, for each echo, whether a reply came within ``timeout``; for each
    request ``{"connected": bool, "data": bytes, "error": str|None}`` (connect,
    send the payload, read until the server closes, within ``tcp_timeout``).
    ``flush``: the namespaces whose neighbour entries the sweep may remove to
    make room (default: the source namespaces; the machine's own, None, never).
    ``attempts``: how often an echo is sent at most, when the kernel dropped
    packets for want of room while it was out.
    """
    from netteach.kernel import rtnl

    echo_results = [False] * len(echoes)
    tcp_results = [{"connected": False, "data": b"", "error": None} for _ in tcp]
    if not echoes and not tcp:
        return echo_results, tcp_results
    spaces = list(dict.fromkeys([ns for ns, _ in echoes] + [j[0] for j in tcp]))
    flush = [f for f in dict.fromkeys(spaces if flush is None else flush) if f is not None]
    rtnl._raise_fd_limit()
    pingers = list(dict.fromkeys(ns for ns, _ in echoes))
    socks = worker.call(lambda: {ns: icmp.open_socket(ns) for ns in pingers})
    try:
        _Sweep(echoes, echo_results, tcp, tcp_results, socks, timeout, tcp_timeout, attempts, flush).run()
    finally:
        for s in socks.values():
            s.close()
    return echo_results, tcp_results


class _Sweep:
    def __init__(self, jobs, results, tcp, tcp_results, socks, timeout, tcp_timeout, attempts, flush):
        self.jobs, self.results, self.socks, self.timeout, self.attempts = jobs, results, socks, timeout, attempts
        self.tcp, self.tcp_results, self.tcp_timeout = tcp, tcp_results, tcp_timeout
        self.addrs = _Addresses(flush)
        self.flush = set(self.addrs.on)
        base = (os.getpid() * 7919) & 0xFFFF
        self.ident = {ns: (base + k) & 0xFFFF for k, ns in enumerate(socks)}
        self.by_fd = {s.fileno(): ns for ns, s in socks.items()}
        self.conns: dict = {}  # fd -> _Conn
        self.poll = select.epoll()  # (select() cannot watch descriptors above 1023)
        for fd in self.by_fd:
            self.poll.register(fd, select.EPOLLIN)
        self.seq = {ns: 0 for ns in socks}
        self.tries = [0] * len(jobs)
        table = neigh.neighbour_table()
        self.budget = min(BUDGET, table["limit"] * 5 // 8)
        self.losses = (table["table_fulls"], neigh.backlog_drops())
        self.losses_read = time.monotonic()
        by_source: dict = collections.defaultdict(lambda: ([], []))
        self.echo_to, self.tcp_to = collections.defaultdict(list), collections.defaultdict(list)  # by address
        for i, (ns, addr) in enumerate(jobs):
            by_source[ns][0].append(i)
            self.echo_to[addr].append(i)
        for i, job in enumerate(tcp):
            by_source[job[0]][1].append(i)
            self.tcp_to[job[1]].append(i)
        # (ns, echo jobs, TCP jobs, a retry?) waiting for room
        self.queue = collections.deque((ns, e, t, False) for ns, (e, t) in by_source.items())
        self.claimed, self.tcp_claimed = bytearray(len(jobs)), bytearray(len(tcp))  # in a unit already
        self.visited: set = set()
        self.again: dict = collections.defaultdict(list)  # ns -> [echo job] to send again
        self.active: dict = {}  # ns -> _Source, in the order they came in
        self.held = 0  # room the window's sources hold
        self.out: dict = {}  # (ns, seq) -> (echo job, losses when sent, its _Source)
        self.deadlines: collections.deque = collections.deque()  # ((ns, seq), deadline), in sending order
        self.tcp_deadlines: collections.deque = collections.deque()  # (deadline, _Conn)
        self.unresolved: dict = {}  # (ns, seq) -> (when sent, ARP copies): on-link echoes maybe still in ARP
        self.flooding = 0  # ARP copies of those

    # ---- the loop ----

    def run(self):
        try:
            while self.queue or self.active or self.out or self.again or self.conns:
                self.queue.extend((ns, idx, [], True) for ns, idx in self.again.items())
                self.again.clear()
                self._admit()
                self._pump()
                self._read(self._wait())
                now = time.monotonic()
                self._expire(now)
                self._release(now)
        finally:
            for c in list(self.conns.values()):
                c.sock.close()
            self.poll.close()
        self._clean_up()

    def _cost(self, ns, echoes, tcp) -> tuple[int, set]:
        """The neighbour entries probing these could make at most, and the on-link jobs among them:
        two per on-link target (each side learns the other), two for the gateway."""
        targets = {self.jobs[i][1] for i in echoes} | {self.tcp[i][1] for i in tcp}
        onlink = self.addrs.on_link(ns, targets)
        near = {i for i in echoes if self.jobs[i][1] in onlink}
        if ns not in self.flush:
            return 0, near  # not cleaned by the sweep: nothing to count
        return 2 * len(onlink) + (2 if len(onlink) < len(targets) else 0), near

    def _admit(self):
        for _ in range(len(self.queue)):
            ns, echoes, tcp, retry = self.queue[0]
            if ns in self.active:  # a retry of a source still in the window: later
                self.queue.rotate(-1)
                continue
            if not retry:  # without what went back to a namespace probed before
                echoes = [i for i in echoes if not self.claimed[i]]
                tcp = [i for i in tcp if not self.tcp_claimed[i]]
            if not echoes and not tcp:
                self.queue.popleft()
                continue
            cost, near = self._cost(ns, echoes, tcp)
            if self.active and self.held + cost > self.budget:
                return
            self.queue.popleft()
            src = _Source(ns, cost, self.addrs.fanout.get(ns, 1))
            for i in echoes:
                self.claimed[i] = 1
                (src.near if i in near else src.far).append(i)
            for i in tcp:
                self.tcp_claimed[i] = 1
            src.tcp = list(tcp)
            if ns in self.flush and ns not in self.visited:
                self._back(src)
            self.visited.add(ns)
            src.tcp_near = {i for i in src.tcp if self.addrs.on_link(self.tcp[i][0], [self.tcp[i][1]])}
            self.active[ns] = src
            self.held += cost

    def _back(self, src: _Source):
        """The probes back to this source from the lab namespaces not probed yet that reach it on-link."""
        ns = src.ns
        for addresses in self.addrs.on[ns].values():
            for a in addresses:
                for j in self.echo_to.get(a, ()):
                    other = self.jobs[j][0]
                    if not self.claimed[j] and self._later(other, ns, a):
                        self.claimed[j] = 1
                        src.back.append(j)
                for j in self.tcp_to.get(a, ()):
                    other = self.tcp[j][0]
                    if not self.tcp_claimed[j] and self._later(other, ns, a):
                        self.tcp_claimed[j] = 1
                        src.tcp.append(j)

    def _later(self, other, ns, address) -> bool:
        return (other != ns and other in self.flush and other not in self.visited and other not in self.active
                and bool(self.addrs.on_link(other, [address])))

    def _pump(self):
        """Send what the window's sources have to send, the on-link echoes paced."""
        now = time.monotonic()
        while self.unresolved:
            key, (sent, weight) = next(iter(self.unresolved.items()))
            if sent >= now - SETTLE:
                break
            del self.unresolved[key]
            self.flooding -= weight
        for src in self.active.values():
            sent = False
            for _ in range(min(len(src.far), FAR_SLICE)):  # through the gateway: no broadcast each
                self._send(src, src.far.popleft(), False)
                sent = True
            while src.near and (not self.unresolved or self.flooding + src.weight <= FLOOD):
                self._send(src, src.near.popleft(), True)
                sent = True
            if sent:
                src.last_send = time.monotonic()
                # asked at once whether its ARP is over when it has no on-link target, else once they answered
                src.next_check = src.last_send + (RECHECK[1] if src.waiting else 0)
            elif src.tcp_queue and src.tcp_slots and min(src.tcp_slots.values()) < now - TCP_SETTLE:
                self._next_requests(src)
            elif not src.near and not src.far and src.stage < 2 and (not src.waiting or now >= src.next_check):
                if src.stage == 0 and src.back:
                    src.near.extend(src.back)  # sent from the next rounds on
                    src.back, src.stage = [], 1
                else:
                    src.stage = 2
                    self._connect(src)

    def _send(self, src: _Source, i: int, near: bool):
        ns, addr = self.jobs[i]
        sock = self.socks[ns]
        self.seq[ns] = seq = (self.seq[ns] + 1) & 0xFFFF
        packet = icmp.echo_request(self.ident[ns], seq)
        self.tries[i] += 1
        try:
            sock.sendto(packet, (addr, 0))
        except BlockingIOError:
            self._read(0.01)
            try:
                sock.sendto(packet, (addr, 0))
            except OSError:
                self._lost(i)
                return
        except OSError as exc:
            if exc.errno in (errno.ENOBUFS, errno.EINVAL):  # no room for a neighbour: try again later
                self._lost(i)
            return  # no route, unreachable: no reply will come
        key = (ns, seq)
        self.out[key] = (i, self.losses, src)
        now = time.monotonic()
        self.deadlines.append((key, now + self.timeout))
        if near:
            src.waiting.add(key)
            self.unresolved[key] = (now, src.weight)
            self.flooding += src.weight

    def _connect(self, src: _Source):
        """Start the TCP requests of the source and back to it (its echoes are answered: both ends know
        each other)."""
        from netteach.kernel import sockets

        jobs = [self.tcp[i] for i in src.tcp]
        if not jobs:
            return
        new = worker.call(lambda: [sockets._open(j[0], socket.AF_INET6 if ":" in str(j[1]) else socket.AF_INET)
                                   for j in jobs])
        for i, s in zip(src.tcp, new):
            if i in src.tcp_near:  # a server answers so many at once (its listen queue: 128)
                src.tcp_queue.append((i, s))
            else:
                self._start(src, i, s)
        self._next_requests(src)

    def _next_requests(self, src: _Source):
        now = time.monotonic()
        for i, started in list(src.tcp_slots.items()):
            if started < now - TCP_SETTLE:
                del src.tcp_slots[i]
        while src.tcp_queue and len(src.tcp_slots) < TCP_NEAR_AT_ONCE:
            i, s = src.tcp_queue.popleft()
            if self._start(src, i, s):
                src.tcp_slots[i] = now
        src.last_send = time.monotonic()
        src.next_check = src.last_send + (RECHECK[1] if src.tcp_waiting else 0)

    def _start(self, src: _Source, i: int, s: socket.socket) -> bool:
        from netteach.kernel import sockets

        _, addr, port, payload = self.tcp[i]
        err = s.connect_ex((str(addr), int(port)))
        if err not in (0, errno.EINPROGRESS):
            self.tcp_results[i]["error"] = sockets._err(err)
            s.close()
            return False
        c = _Conn(i, s, payload, src)
        self.conns[s.fileno()] = c
        self.poll.register(s.fileno(), select.EPOLLOUT)
        self.tcp_deadlines.append((time.monotonic() + self.tcp_timeout, c))
        if i in src.tcp_near:
            src.tcp_waiting.add(i)
        return True

    def _finish(self, c: _Conn):
        c.done = True
        self.poll.unregister(c.sock.fileno())
        del self.conns[c.sock.fileno()]
        c.sock.close()
        c.unit.tcp_waiting.discard(c.i)
        c.unit.tcp_slots.pop(c.i, None)
        if c.unit.tcp_queue:
            self._next_requests(c.unit)

    def _lost(self, i):
        """An echo the kernel may have dropped for want of room: again later, if attempts are left."""
        if self.tries[i] < self.attempts:
            self.again[self.jobs[i][0]].append(i)

    def _wait(self) -> float:
        """How long the loop may sleep: until the next deadline, source check or paced send."""
        now = time.monotonic()
        until = [max(self.deadlines[0][1], self.losses_read + LOSSES_EVERY)] if self.deadlines else []
        until += [self.tcp_deadlines[0][0]] if self.tcp_deadlines else []
        for src in self.active.values():
            if src.far or (src.near and (not self.unresolved or self.flooding + src.weight <= FLOOD)):
                return 0.0
            if src.near:  # held back: until the oldest ARP broadcast out settles (or a reply comes)
                until.append(next(iter(self.unresolved.values()))[0] + SETTLE)
            elif src.tcp_queue and src.tcp_slots:
                until.append(min(src.tcp_slots.values()) + TCP_SETTLE)
            elif src.stage < 2 or not src.tcp_waiting:  # (else its connections' events or deadlines)
                until.append(src.next_check)
        return max(0.0, min(until, default=now + 0.05) - now)

    def _read(self, wait: float):
        from netteach.kernel import sockets

        for fd, _ in self.poll.poll(wait):
            if fd in self.by_fd:
                self._replies(self.by_fd[fd])
                continue
            c = self.conns.get(fd)
            if c is None:
                continue
            r = self.tcp_results[c.i]
            if not c.connected:
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    r["error"] = sockets._err(err)
                    self._finish(c)
                    continue
                r["connected"] = c.connected = True
                if c.payload:
                    c.sock.sendall(c.payload)
                self.poll.modify(fd, select.EPOLLIN)
                continue
            try:
                chunk = c.sock.recv(65536)
            except BlockingIOError:
                continue
            except OSError as exc:
                r["error"], chunk = sockets._err(exc.errno), b""
            if chunk:
                r["data"] += chunk
            else:
                self._finish(c)

    def _replies(self, ns):
        s = self.socks[ns]
        while True:
            try:
                data, (src, _) = s.recvfrom(2048)
            except BlockingIOError:
                return
            reply = icmp.echo_reply(data)
            if reply is None or reply[0] != self.ident[ns]:
                continue
            key = (ns, reply[1])
            hit = self.out.get(key)
            if hit is not None and self.jobs[hit[0]][1] == src:
                self.results[hit[0]] = True
                del self.out[key]
                unresolved = self.unresolved.pop(key, None)
                if unresolved:
                    self.flooding -= unresolved[1]
                hit[2].waiting.discard(key)

    def _expire(self, now):
        while self.tcp_deadlines and self.tcp_deadlines[0][0] <= now:
            _, c = self.tcp_deadlines.popleft()
            if not c.done:
                r = self.tcp_results[c.i]
                if r["error"] is None and not r["data"]:
                    r["error"] = "timed out (no answer: dropped on the way?)"
                self._finish(c)
        if not self.deadlines or self.deadlines[0][1] > now or now < self.losses_read + LOSSES_EVERY:
            return
        losses = (neigh.neighbour_table()["table_fulls"], neigh.backlog_drops())
        if losses[0] > self.losses[0]:  # the neighbour table was full at some moment: leave more room
            self.budget = max(self.budget // 2, 128)
        self.losses, self.losses_read = losses, now
        while self.deadlines and self.deadlines[0][1] <= now:
            key, _ = self.deadlines.popleft()
            hit = self.out.pop(key, None)
            unresolved = self.unresolved.pop(key, None)
            if unresolved:
                self.flooding -= unresolved[1]
            if hit is not None and (losses[0] > hit[1][0] or losses[1] > hit[1][1]):
                # the kernel dropped packets for want of room while this one was out: maybe this one
                self._lost(hit[0])

    def _release(self, now):
        """Sources whose ARP exchanges are over leave the window, with the entries they made."""
        done = {}
        for ns, src in self.active.items():
            if src.near or src.far or src.stage < 2 or src.tcp_queue:
                continue
            over = now >= src.last_send + max(self.timeout, self.tcp_timeout if src.tcp else 0)
            if not over and (src.tcp_waiting or (src.waiting and now < src.next_check)):
                # an on-link TCP connection not finished sends its SYN again after 1 s: it keeps the
                # entries (deleted, the kernel would make them again behind the window's back)
                continue
            if src.cost == 0:  # nothing to clean here
                done[ns] = []
                continue
            rows = neigh.neighbours(ns)
            if not over and (any(state & neigh.NUD_INCOMPLETE for _, _, state in rows) or self._resolving(src)):
                src.next_check = now + src.recheck  # a packet still waits for its ARP answer
                src.recheck = min(src.recheck * 2, RECHECK[1])
                continue
            done[ns] = rows
        if not done:
            return
        for ns in done:
            self.held -= self.active.pop(ns).cost
        dels: dict = collections.defaultdict(list)
        for ns, rows in done.items():
            mine = [(i, a) for i, a, state in rows if neigh.soft(state)]
            dels[ns].extend(mine)
            for index, addr in mine:
                for other, other_index in self.addrs.owners.get(addr, ()):
                    # it learnt this source from its ARP request; a source still probing keeps its
                    # entries until it leaves the window itself (deleting them could drop its packets)
                    if other != ns and other in self.flush and other not in self.active:
                        dels[other].extend((other_index, a) for a in self.addrs.on[ns].get(index, ()))
        for other, entries in dels.items():
            neigh.delete_neighbours(other, entries)

    def _resolving(self, src: _Source) -> bool:
        """Does a namespace whose echo back to this source is not answered still look for it (ARP)?"""
        mine = {a for addresses in self.addrs.on.get(src.ns, {}).values() for a in addresses}
        for other in {ns for ns, _ in src.waiting if ns != src.ns}:
            if any(state & neigh.NUD_INCOMPLETE and a in mine for _, a, state in neigh.neighbours(other)):
                return True
        return False

    def _clean_up(self):
        """The sweep's entries, everywhere it may clean: what replies in flight made again."""
        lab = self.addrs.owners
        for ns in self.flush:
            neigh.delete_neighbours(ns, [(i, a) for i, a, state in neigh.neighbours(ns)
                                         if a in lab and neigh.soft(state)])
