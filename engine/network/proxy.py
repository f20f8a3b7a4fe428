"""Published ports on the host's loopback: a userland proxy, as Docker's docker-proxy, in the supervisor's loop.

nftables DNATs a published port (``-p 8080:80``) for packets from other hosts
and for the host's own connections to its non-loopback addresses (see
:mod:`.bridge`). A connection from the host to ``127.0.0.1:8080`` cannot be
DNAT-ed: its packets would leave the host for the bridge with 127.0.0.1 as
their source, which the kernel refuses to route (a martian) unless
``route_localnet=1`` (refused here, as it opens 127.0.0.0/8 to the
network). Docker answers it with
``docker-proxy``, a small process per published port that listens on the
host port and copies bytes to and from the container. A :class:`PortProxy`
is that, as an object in the supervisor's single-threaded loop rather than
a process of its own::

    host: curl 127.0.0.1:8080         PortProxy                      container 172.18.0.2:80
          connect ------------------> accept
                                      connect (non-blocking) ------> accept
          request ------------------> copy ------------------------> request
          shutdown(SHUT_WR) --------> shutdown(SHUT_WR) -----------> EOF
          reply <-------------------- copy <------------------------ reply
          EOF <---------------------- shutdown(SHUT_WR) <----------- close
                                      both ways ended: close both

It binds the host address it is given, or every address for ``""`` or
``0.0.0.0`` (as docker-proxy does), so the port is also *reserved*: no other
program on the host can take it while a container publishes it. The server
in the container sees connections come from the proxy's own address (the
network's gateway), not from the client -- as with Docker's userland proxy.
IPv4 only, as the rest of this package.

**TCP.** Each accepted connection gets a socket of its own that connects to
the target without blocking; once connected, bytes are copied both ways,
each way through a buffer of at most :data:`BUFFER` bytes. A side is read
only while its peer's buffer has room (backpressure: a slow reader slows its
writer through the kernel's socket buffers, instead of growing memory here).
When one side ends (EOF), the other is shut down for writing as soon as its
buffer is written (half-close, ``shutdown(SHUT_WR)``), so a client that ends
its request still reads the reply; once both ways have ended, both sockets
are closed. An error on either socket (a reset, a broken pipe) closes both. A
target that refuses, or does not answer within :data:`CONNECT_TIMEOUT`
seconds, closes the client. Past :data:`MAX_CONNECTIONS` open connections, a
new one is accepted and closed at once. ``TCP_NODELAY`` is set on both
sockets, as Go (docker-proxy's language) does on every TCP connection: the
proxy passes each write on as it comes and must not add Nagle's delay to it.

**UDP.** Each client address gets a *flow*: a socket of its own, connected to
the target, whose replies are sent back to that client from the host port. A
flow idle for :data:`UDP_IDLE` seconds (docker-proxy's 90 s) is closed. Past
:data:`MAX_FLOWS` flows, datagrams from a new client address are dropped
until one expires, so a flood of source addresses cannot take every file
descriptor. Datagrams are never queued: one that cannot be sent at once is
dropped (``dropped``), as the network would drop it.

**In the loop.** A proxy has a selector of its own, an epoll set holding its
listening socket and each connection's sockets with whatever events each
wants at the moment (read, write, both or none; that changes many times a
second under load). The supervisor registers only that set's descriptor,
once, for reading: an epoll descriptor is readable while any socket in its
set is ready (level-triggered, as every one of Python's ``selectors`` is).
So the supervisor's map holds one entry per published port whatever the
traffic, its registration never changes, and its dispatch never sees a
proxied socket::

    proxy = PortProxy(host_ip, host_port, proto, att.address, container_port)  # NetworkError: port taken
    sel.register(proxy, selectors.EVENT_READ, ("proxy", proxy))  # proxy.fileno() is its epoll set
    # EVENT_READ on that key:   proxy.on_readable()   -- one bounded round of work; never blocks, never raises
    # every tick of the loop:   proxy.expire()        -- connect timeouts, idle UDP flows, a paused accept
    #   (proxy.next_deadline() says when it is next due; a tick every 5 s is enough)
    # the container stops:      sel.unregister(proxy); proxy.close()

That is the interface of :class:`.dns.DnsResponder` (``fileno``,
``selectables``, ``on_readable``, ``expire``, ``close``), and :func:`serve`
runs any such objects in a selector loop of its own for a while (tests,
benchmarks). ``on_readable`` does one non-blocking round over the ready
sockets -- at most :data:`BATCH` accepts or datagrams per listening or flow
socket, at most :data:`READS` reads per connection side -- and returns; work
left over keeps the epoll descriptor readable for the next ``select``, so a
busy port cannot starve the rest of the loop. An error in one connection or
flow closes that one alone (counted in :meth:`PortProxy.stats`). Every socket
is non-blocking and close-on-exec, and leaves the epoll set before it is
closed: a forked child still holding a copy of it would otherwise keep it in
the set, reporting events for a closed descriptor.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import selectors
import socket
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from .records import NetworkError

MAX_CONNECTIONS = 256       # open TCP connections per proxy; more are accepted and closed at once
MAX_FLOWS = 1024            # UDP client addresses per proxy; datagrams of more are dropped
UDP_IDLE = 90.0             # seconds a UDP flow lives without a datagram either way (docker-proxy's)
CONNECT_TIMEOUT = 20.0      # seconds the target has to accept a connection
BUFFER = 256 * 1024         # bytes waiting for one side, at most: 128 MiB if all 256 connections stall both ways
READ_SIZE = 128 * 1024      # bytes asked of one recv
READS = 4                   # recvs per side per round, so one busy connection leaves room for the others
BATCH = 64                  # accepts, or datagrams, per socket per round
DATAGRAM = 65535            # the largest UDP payload, and then some
ACCEPT_PAUSE = 1.0          # seconds accept waits when the process is out of descriptors

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
_FLAGS = socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC


def _describe(e: BaseException) -> str:
    return e.strerror if isinstance(e, OSError) and e.strerror else (str(e) or type(e).__name__)


class _Side:
    """One socket of a proxied TCP connection, and the bytes waiting to be written to it."""

    __slots__ = ("conn", "sock", "peer", "out", "reading", "ending", "shut", "events")

    def __init__(self, conn: _Connection, sock: socket.socket):
        self.conn, self.sock = conn, sock
        self.peer: _Side = self
        self.out = bytearray()
        self.reading = True         # its end has not sent EOF
        self.ending = False         # its peer has: shut it down for writing once ``out`` is written
        self.shut = False           # shut down for writing
        self.events = 0             # what it is registered for in the proxy's selector

    @property
    def closed(self) -> bool:
        return self.conn.closed

    def on_event(self, events: int) -> None:
        if events & WRITE:
            self.conn.on_writable(self)
        if events & READ and not self.conn.closed:
            self.conn.on_readable(self)

    def abort(self, e: BaseException) -> None:
        self.conn.abort(e)


class _Connection:
    """A proxied TCP connection: the client's socket and ours to the target."""

    __slots__ = ("proxy", "client", "target", "connecting", "deadline", "closed")

    def __init__(self, proxy: PortProxy, client: socket.socket, target: socket.socket):
        self.proxy = proxy
        self.client, self.target = _Side(self, client), _Side(self, target)
        self.client.peer, self.target.peer = self.target, self.client
        self.connecting = True
        self.deadline = time.monotonic() + proxy.connect_timeout
        self.closed = False

    def start(self) -> None:
        code = self.target.sock.connect_ex(self.proxy.target)
        if code == 0:
            self.connected()
        elif code == errno.EINPROGRESS:
            self.proxy._want(self.target, WRITE)
        else:
            self.fail(os.strerror(code))

    def connected(self) -> None:
        self.connecting = False
        for side in (self.client, self.target):
            side.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.update()

    def fail(self, why: str) -> None:
        """The target could not be reached: the client is closed."""
        self.proxy.failed += 1
        self.proxy.last_error = f"connecting to {self.proxy.target[0]}:{self.proxy.target[1]}: {why}"
        self.close()

    def abort(self, e: BaseException) -> None:
        self.proxy.errors += 1
        self.proxy.last_error = f"a connection to {self.proxy.target[0]}:{self.proxy.target[1]}: {_describe(e)}"
        self.close()

    def on_writable(self, side: _Side) -> None:
        if self.connecting:             # only the target is watched, for its connect to end
            code = side.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                self.fail(os.strerror(code))
            else:
                self.connected()
            return
        self.flush(side)
        self.update()

    def on_readable(self, side: _Side) -> None:
        peer, proxy = side.peer, self.proxy
        for _ in range(READS):
            room = BUFFER - len(peer.out)
            if room <= 0:
                break
            asked = min(READ_SIZE, room)
            try:
                data = side.sock.recv(asked)
            except (BlockingIOError, InterruptedError):
                break
            if not data:
                side.reading = False
                peer.ending = True
                break
            if side is self.client:
                proxy.bytes_in += len(data)
            else:
                proxy.bytes_out += len(data)
            if peer.out:
                peer.out += data
                continue
            try:                        # straight on, most often: no copy into the buffer
                sent = peer.sock.send(data, socket.MSG_NOSIGNAL)
            except (BlockingIOError, InterruptedError):
                sent = 0
            if sent < len(data):
                peer.out += memoryview(data)[sent:]
            if len(data) < asked:
                break                   # drained, most likely: spare the recv that would say so
        self.flush(peer)
        self.update()

    @staticmethod
    def flush(side: _Side) -> None:
        while side.out:
            try:
                sent = side.sock.send(side.out, socket.MSG_NOSIGNAL)
            except (BlockingIOError, InterruptedError):
                return
            del side.out[:sent]
        if side.ending and not side.shut:
            side.sock.shutdown(socket.SHUT_WR)
            side.shut = True

    def update(self) -> None:
        """Close once both ways have ended; else watch each side for what it can do next."""
        client, target = self.client, self.target
        if client.shut and target.shut and not client.reading and not target.reading:
            self.close()
            return
        for side in (client, target):
            if self.connecting:
                events = WRITE if side is target else 0
            else:
                events = ((READ if side.reading and len(side.peer.out) < BUFFER else 0)
                          | (WRITE if side.out else 0))
            self.proxy._want(side, events)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for side in (self.client, self.target):
            self.proxy._want(side, 0)
            side.sock.close()
            side.out = bytearray()
        self.proxy.connections.discard(self)


class _Flow:
    """A UDP client of the proxy: its address, and a socket of ours connected to the target."""

    __slots__ = ("proxy", "client", "sock", "last", "events", "closed")

    def __init__(self, proxy: PortProxy, client: tuple, now: float):
        self.proxy, self.client, self.last = proxy, client, now
        self.events = 0
        self.closed = False
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | _FLAGS)
        try:
            self.sock.connect(proxy.target)
            proxy._want(self, READ)
        except OSError:
            self.sock.close()
            raise

    def on_event(self, _events: int) -> None:
        proxy = self.proxy
        for _ in range(BATCH):
            try:
                data = self.sock.recv(DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:             # an ICMP error for an earlier datagram (port unreachable): said once
                continue
            self.last = time.monotonic()
            proxy.flows.move_to_end(self.client)
            try:
                proxy.listener.sendto(data, self.client)
                proxy.bytes_out += len(data)
            except OSError:
                proxy.dropped += 1

    def abort(self, e: BaseException) -> None:
        self.proxy.errors += 1
        self.proxy.last_error = f"a UDP flow from {self.client[0]}:{self.client[1]}: {_describe(e)}"
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.proxy._want(self, 0)
        self.sock.close()
        if self.proxy.flows.get(self.client) is self:
            del self.proxy.flows[self.client]


class _Listener:
    """The proxy's socket on the host port, as a selector entry."""

    __slots__ = ("proxy", "sock", "events", "closed")

    def __init__(self, proxy: PortProxy, sock: socket.socket):
        self.proxy, self.sock = proxy, sock
        self.events = 0
        self.closed = False

    def on_event(self, _events: int) -> None:
        if self.proxy.proto == "tcp":
            self.proxy._accept()
        else:
            self.proxy._datagrams()

    def abort(self, e: BaseException) -> None:
        self.proxy.errors += 1
        self.proxy.last_error = f"the host port: {_describe(e)}"


def _check_address(value: str, what: str) -> str:
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise NetworkError(f"invalid {what} address {value!r}: not an IPv4 address") from None


def _check_port(value, what: str, lowest: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lowest <= value <= 65535:
        raise NetworkError(f"invalid {what} port {value!r}: not a number from {lowest} to 65535")
    return value


class PortProxy:
    """Copies connections (tcp) or datagrams (udp) from ``host_ip``:``host_port``
    to ``target_ip``:``target_port``, in the caller's select loop.

    ``host_ip`` ``""`` or ``"0.0.0.0"`` listens on every address; ``host_port``
    0 takes a free port (``self.host_port`` says which). Raises
    :class:`NetworkError` with one line when the port cannot be bound, or an
    argument is not a valid address, port or protocol."""

    def __init__(self, host_ip: str, host_port: int, proto: str, target_ip: str, target_port: int, *,
                 max_connections: int = MAX_CONNECTIONS, max_flows: int = MAX_FLOWS,
                 udp_idle: float = UDP_IDLE, connect_timeout: float = CONNECT_TIMEOUT):
        if proto not in ("tcp", "udp"):
            raise NetworkError(f"invalid protocol {proto!r}: tcp or udp")
        bind_ip = _check_address(host_ip or "0.0.0.0", "host")
        host_port = _check_port(host_port, "host", 0)
        self.target = (_check_address(target_ip, "target"), _check_port(target_port, "target", 1))
        self.proto = proto
        self.host_ip = "" if bind_ip == "0.0.0.0" else bind_ip
        self.max_connections, self.max_flows = max_connections, max_flows
        self.udp_idle, self.connect_timeout = udp_idle, connect_timeout
        self.connections: set[_Connection] = set()
        self.flows: OrderedDict[tuple, _Flow] = OrderedDict()     # oldest activity first
        self.accepted = self.rejected = self.failed = self.errors = self.dropped = 0
        self.bytes_in = self.bytes_out = 0                           # client to target, and back
        self.last_error = ""
        self.paused_until = 0.0
        self.closed = False

        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        sock = None
        try:
            sock = socket.socket(socket.AF_INET, kind | _FLAGS)
            if proto == "tcp":          # bound again at once after a restart, connections in TIME_WAIT
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # or not (UDP: it would share)
            sock.bind((bind_ip, host_port))
            if proto == "tcp":
                sock.listen(socket.SOMAXCONN)
            self._sel = selectors.EpollSelector()
        except OSError as e:
            if sock is not None:
                sock.close()
            where = f"{self.host_ip}:" if self.host_ip else ""
            if e.errno == errno.EADDRINUSE:
                raise NetworkError(f"host port {where}{host_port}/{proto} is already in use on the host") from None
            raise NetworkError(f"host port {where}{host_port}/{proto} cannot be bound on the host: "
                               f"{_describe(e)}") from None
        self.host_port = sock.getsockname()[1]
        self.listener = sock
        self._listening = _Listener(self, sock)
        self._want(self._listening, READ)

    def __repr__(self) -> str:
        return (f"<PortProxy {self.host_ip or '0.0.0.0'}:{self.host_port}/{self.proto} -> "
                f"{self.target[0]}:{self.target[1]}, {self.open_count()} open>")

    # what a select loop needs
    def fileno(self) -> int:
        """The proxy's epoll set: readable while any of its sockets is ready."""
        return self._sel.fileno()

    def selectables(self) -> list:
        return [self]                   # one, whatever the traffic: see the module's docstring

    def on_readable(self) -> None:
        """One round of work on the sockets that are ready; never blocks, never raises."""
        if self.closed:
            return
        try:
            ready = self._sel.select(0)
        except OSError as e:
            self.errors += 1
            self.last_error = f"the proxy's selector: {_describe(e)}"
            return
        for key, events in ready:
            entry = key.data
            if entry.closed:            # closed earlier in this round: its descriptor may be someone else's
                continue
            try:
                entry.on_event(events)
            except Exception as e:  # noqa: BLE001 - one connection's failure is that connection's alone
                entry.abort(e)

    def expire(self, now: float | None = None) -> None:
        """Timers: connects that took too long, UDP flows idle too long, accept resumed after a pause."""
        if self.closed:
            return
        now = time.monotonic() if now is None else now
        if self.paused_until and now >= self.paused_until:
            self.paused_until = 0.0
            self._want(self._listening, READ)
        for conn in [c for c in self.connections if c.connecting and c.deadline <= now]:
            conn.fail("timed out")
        while self.flows:
            oldest = next(iter(self.flows.values()))
            if now - oldest.last < self.udp_idle:
                break
            oldest.close()

    def next_deadline(self) -> float | None:
        """When :meth:`expire` next has work (time.monotonic()), or None."""
        times = [c.deadline for c in self.connections if c.connecting]
        if self.flows:
            times.append(next(iter(self.flows.values())).last + self.udp_idle)
        if self.paused_until:
            times.append(self.paused_until)
        return min(times, default=None)

    def open_count(self) -> int:
        """Open TCP connections, or UDP flows."""
        return len(self.connections) + len(self.flows)

    def stats(self) -> dict:
        """What ``inspect`` can show, and tests check: counts since the start, and now."""
        return {"host": f"{self.host_ip or '0.0.0.0'}:{self.host_port}", "proto": self.proto,
                "target": f"{self.target[0]}:{self.target[1]}", "open": self.open_count(),
                "sockets": self.sockets(), "buffered": sum(len(c.client.out) + len(c.target.out)
                                                            for c in self.connections),
                "accepted": self.accepted, "rejected": self.rejected, "failed": self.failed,
                "errors": self.errors, "dropped": self.dropped, "bytes_in": self.bytes_in,
                "bytes_out": self.bytes_out, "last_error": self.last_error}

    def sockets(self) -> int:
        """Sockets the proxy holds open (its listening socket included); 0 once closed."""
        return (0 if self.closed else 1) + 2 * len(self.connections) + len(self.flows)

    def close(self) -> None:
        """Close every connection, every flow and the host port. Idempotent."""
        if self.closed:
            return
        for conn in list(self.connections):
            conn.close()
        for flow in list(self.flows.values()):
            flow.close()
        self._want(self._listening, 0)
        self._listening.closed = True
        self.listener.close()
        self._sel.close()
        self.closed = True

    # the work
    def _want(self, entry, events: int) -> None:
        """Register ``entry``'s socket for ``events`` (0: not at all)."""
        if events == entry.events:
            return
        if not entry.events:
            self._sel.register(entry.sock, events, entry)
        elif not events:
            self._sel.unregister(entry.sock)
        else:
            self._sel.modify(entry.sock, events, entry)
        entry.events = events

    def _pause_accept(self) -> None:
        """Out of descriptors: a readable listener would wake the loop again at once, for nothing."""
        self._want(self._listening, 0)
        self.paused_until = time.monotonic() + ACCEPT_PAUSE

    def _accept(self) -> None:
        for _ in range(BATCH):
            try:
                client, _address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    self.errors += 1
                    self.last_error = f"accepting a connection: {_describe(e)}"
                    self._pause_accept()
                    return
                continue                # ECONNABORTED and the like: that client is gone already
            self.accepted += 1
            if len(self.connections) >= self.max_connections:
                self.rejected += 1
                client.close()
                continue
            client.setblocking(False)
            try:
                target = socket.socket(socket.AF_INET, socket.SOCK_STREAM | _FLAGS)
            except OSError as e:
                client.close()
                self.failed += 1
                self.last_error = f"a socket to the target: {_describe(e)}"
                self._pause_accept()
                return
            conn = _Connection(self, client, target)
            self.connections.add(conn)
            try:
                conn.start()
            except Exception as e:  # noqa: BLE001
                conn.abort(e)

    def _datagrams(self) -> None:
        now = time.monotonic()
        for _ in range(BATCH):
            try:
                data, client = self.listener.recvfrom(DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            flow = self.flows.get(client)
            if flow is None:
                if len(self.flows) >= self.max_flows:
                    self.dropped += 1
                    continue
                try:
                    flow = self.flows[client] = _Flow(self, client, now)
                except OSError as e:
                    self.dropped += 1
                    self.last_error = f"a UDP flow to the target: {_describe(e)}"
                    continue
            else:
                flow.last = now
                self.flows.move_to_end(client)
            try:
                flow.sock.send(data)
                self.bytes_in += len(data)
            except OSError:             # a full buffer, or the ICMP error of an earlier datagram
                self.dropped += 1


def serve(objects: Iterable, seconds: float, *, until: Callable[[], bool] | None = None,
          tick: float = 0.05) -> bool:
    """Run ``objects`` (proxies, DNS responders: anything with ``selectables()``
    and ``expire()``) in a selector loop of this thread for up to ``seconds``,
    or until ``until()`` is true; returns whether it was. What the supervisor
    does in its own loop, for tests and benchmarks."""
    objects = list(objects)
    sel = selectors.DefaultSelector()
    try:
        for obj in objects:
            for s in obj.selectables():
                sel.register(s, READ, s)
        now = time.monotonic()
        deadline, next_tick = now + seconds, now + tick
        while True:
            if until is not None and until():
                return True
            now = time.monotonic()
            if now >= deadline:
                return False
            for key, _events in sel.select(min(next_tick, deadline) - now):
                key.data.on_readable()
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + tick
                for obj in objects:
                    obj.expire()
    finally:
        sel.close()
