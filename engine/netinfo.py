"""A container's network as the container sees it, read through netlink.

Every network namespace is a whole network stack of its own: its own
interfaces, addresses, routes and firewall. A container with ``--network
none`` gets a fresh one that holds only a loopback device, ``lo``, with
127.0.0.1/8 -- which is why nothing inside can reach the outside.

To list what is in there, this module asks the kernel over a NETLINK_ROUTE
socket, as ``ip link``, ``ip addr`` and ``ip route`` do, with pyroute2's
netlink messages. A netlink socket talks to the network namespace it was
*created* in, and namespace membership belongs to each thread, not to the
whole process. So :func:`read` starts a short-lived thread that

1. opens ``/proc/PID/ns/net`` of the container's PID 1 and joins that
   namespace with ``setns(fd, CLONE_NEWNET)`` -- only that thread moves;
   when the namespace is the caller's own (``--network host``) it stays put;
2. opens the socket there and dumps links, addresses and main-table routes;
3. closes the socket in that same thread, goes back to its own namespace
   and ends.

No other thread of this process ever enters the container's namespace, no
process is forked (pyroute2's ``IPRoute(netns=...)`` would fork one) and no
namespace is created (pyroute2's netns helpers create one by default when
the name is unknown; they are not used).

Why not pyroute2's ``IPRoute`` on that thread? It works -- it starts no
thread, and closes cleanly in the thread that made it -- but in 0.9 every
``IPRoute`` makes an asyncio event loop and runs each request through it,
which doubles the cost of a read (about 6 ms against 3 ms, thread and setns
included, for a loopback-only namespace on a busy 2-core machine; see
``bench/snapshot.py``, which times both). Here the same pyroute2 message
classes (``ifinfmsg``, ``ifaddrmsg``, ``rtmsg``) encode the requests and its
``MarshalRtnl`` decodes the replies, on a plain socket. The lab panel reads
every container's network several times a second, so the plain socket it
is. pyroute2 is imported here, on first use, never when ``engine`` is
imported: it takes 0.2-0.3 s to import.
"""

from __future__ import annotations

import importlib
import os
import socket
import struct
import threading

# Interface flags (include/uapi/linux/if.h).
IFF_UP = 0x1
IFF_BROADCAST = 0x2
IFF_LOOPBACK = 0x8
IFF_POINTOPOINT = 0x10
IFF_RUNNING = 0x40
IFF_NOARP = 0x80
IFF_PROMISC = 0x100
IFF_MULTICAST = 0x1000
IFF_LOWER_UP = 0x10000
FLAG_NAMES = {IFF_BROADCAST: "BROADCAST", IFF_LOOPBACK: "LOOPBACK", IFF_POINTOPOINT: "POINTOPOINT",
              IFF_MULTICAST: "MULTICAST", IFF_NOARP: "NOARP", IFF_PROMISC: "PROMISC",
              IFF_UP: "UP", IFF_LOWER_UP: "LOWER_UP"}

# Link-layer types (include/uapi/linux/if_arp.h), address families, route
# tables, protocols and scopes (rtnetlink.h), named as ``ip`` names them.
LINK_TYPES = {1: "ether", 772: "loopback", 776: "sit", 768: "ipip", 778: "gre", 65534: "none"}
FAMILIES = {2: "inet", 10: "inet6"}
RT_TABLE_MAIN = 254
PROTOCOLS = {1: "redirect", 2: "kernel", 3: "boot", 4: "static", 16: "dhcp", 186: "bgp", 188: "ospf"}
SCOPES = {0: "global", 200: "site", 253: "link", 254: "host", 255: "nowhere"}
ROUTE_TYPES = {1: "unicast", 2: "local", 3: "broadcast", 4: "anycast", 5: "multicast",
               6: "blackhole", 7: "unreachable", 8: "prohibit"}

# Netlink (include/uapi/linux/netlink.h, rtnetlink.h).
SOL_NETLINK = 270
NETLINK_GET_STRICT_CHK = 12
NLM_F_REQUEST = 0x1
NLM_F_DUMP_INTR = 0x10
NLM_F_DUMP = 0x300
NLMSG_DONE = 0x3
RTM_GETLINK = 18
RTM_GETADDR = 22
RTM_GETROUTE = 26

TIMEOUT = 5.0


class Unavailable(Exception):
    """The network could not be read; the message says why, in one line."""


def read(pid: int, *, start_ticks: int | None = None, timeout: float = TIMEOUT) -> dict:
    """The network namespace of process ``pid``: its interfaces, addresses and
    main-table routes.

    ``start_ticks`` (field 22 of /proc/PID/stat): when given, the namespace is
    used only if ``pid`` is still that process, not a later one that reused
    the number. Raises :class:`Unavailable` with the reason on any failure.

    Returns ``{"inode", "entered", "interfaces", "addresses", "routes"}``;
    ``entered`` is False when the namespace was the caller's own (nothing
    to join).
    """
    return Reading(pid).result(start_ticks=start_ticks, timeout=timeout)


class Reading:
    """A :func:`read` under way on its own thread; :meth:`result` waits for it.
    (Work done meanwhile in Python gains little: the threads share the GIL.)
    Raises :class:`Unavailable` when pyroute2 is missing."""

    def __init__(self, pid: int):
        try:    # here, in the caller's thread, once per process: 0.2-0.3 s the first time
            importlib.import_module("pyroute2.netlink.rtnl.marshal")
        except ImportError as e:
            raise Unavailable(f"pyroute2 is not installed ({e})") from None
        self.pid = pid
        self._out: dict = {}
        self._worker = threading.Thread(target=self._run, name=f"netinfo-{pid}", daemon=True)
        self._worker.start()

    def result(self, *, start_ticks: int | None = None, timeout: float = TIMEOUT) -> dict:
        """Wait for the read; the network, or :class:`Unavailable` with why not."""
        self._worker.join(timeout)
        if self._worker.is_alive():
            raise Unavailable(f"reading the network of PID {self.pid} took longer than {timeout:g} s")
        if "network" not in self._out:
            raise Unavailable(self._out.get("error", f"reading the network of PID {self.pid} failed"))
        if start_ticks is not None and self._out["start_ticks"] != start_ticks:
            raise Unavailable(f"process {self.pid} has exited: its network namespace is gone")
        return self._out["network"]

    def _run(self) -> None:
        """The worker thread: join the namespace if need be, query, close, end."""
        try:
            self._out["start_ticks"], self._out["network"] = _join_and_query(self.pid)
        except Unavailable as e:
            self._out["error"] = str(e)
        except Exception as e:  # noqa: BLE001 - whatever netlink says becomes the reason
            self._out["error"] = f"reading the network of PID {self.pid} failed: {type(e).__name__}: {e}"


# Change notifications (rtnetlink.h): links, IPv4/IPv6 addresses and routes.
RTMGRP_LINK, RTMGRP_IPV4_IFADDR, RTMGRP_IPV4_ROUTE = 0x1, 0x10, 0x40
RTMGRP_IPV6_IFADDR, RTMGRP_IPV6_ROUTE = 0x100, 0x400
WATCH_GROUPS = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_IFADDR | RTMGRP_IPV6_ROUTE


class Watcher:
    """A container's network kept between reads, for a panel that refreshes
    several times a second.

    Two netlink sockets are made once inside the namespace (on a short-lived
    thread, as :func:`read` does): one subscribed to the kernel's
    notifications of link, address and route changes, one for dumps. A
    socket stays in the namespace it was made in, whichever thread uses it
    later, so :meth:`read` needs no thread and no setns: it dumps again only
    when the kernel announced a change (or the notifications overflowed), or
    when the last dump is older than ``max_age`` (packet counters change
    without a notification). The sockets hold the namespace alive: close the
    watcher when the container stops (:mod:`engine.observe` does)."""

    def __init__(self, pid: int, *, start_ticks: int | None = None):
        self.pid = pid
        self.start_ticks = start_ticks
        self._out: dict = {}
        worker = threading.Thread(target=self._open, name=f"netwatch-{pid}", daemon=True)
        worker.start()
        worker.join(TIMEOUT)
        if "sockets" not in self._out:
            raise Unavailable(self._out.get("error", f"watching the network of PID {pid} took too long"))
        self.notify, self.dump = self._out["sockets"]
        self.notify.setblocking(False)
        self.inode, self.entered = self._out["inode"], self._out["entered"]
        self.cached: dict | None = None
        self.dumped = 0.0

    def _open(self) -> None:
        try:
            def make() -> tuple:
                notify = _route_socket(WATCH_GROUPS)     # first: a change during the dump is not missed
                try:
                    return notify, _route_socket()
                except OSError:
                    notify.close()
                    raise
            ticks, (sockets, inode, entered) = _in_namespace(self.pid, make)
            if self.start_ticks is not None and ticks != self.start_ticks:
                for sock in sockets:
                    sock.close()
                raise Unavailable(f"process {self.pid} has exited: its network namespace is gone")
            self._out.update(sockets=sockets, inode=inode, entered=entered)
        except Unavailable as e:
            self._out["error"] = str(e)
        except Exception as e:  # noqa: BLE001 - whatever netlink says becomes the reason
            self._out["error"] = f"watching the network of PID {self.pid} failed: {type(e).__name__}: {e}"

    def read(self, *, max_age: float = 2.0) -> dict:
        """The network now: the last dump unless something changed since."""
        import time

        changed = self.cached is None or time.monotonic() - self.dumped > max_age
        while True:                          # drain the notifications
            try:
                if not self.notify.recv(1 << 16):
                    break
                changed = True
            except BlockingIOError:
                break
            except OSError:                  # ENOBUFS: some were lost; dump to be sure
                changed = True
                break
        if changed:
            try:
                network = query(self.dump)
            except Exception as e:  # noqa: BLE001
                raise Unavailable(f"reading the network of PID {self.pid} failed: {type(e).__name__}: {e}") from None
            network.update(inode=self.inode, entered=self.entered)
            self.cached, self.dumped = network, time.monotonic()
        return self.cached

    def close(self) -> None:
        for sock in (self.notify, self.dump):
            sock.close()


def _in_namespace(pid: int, work, kind: str = "net") -> tuple[int | None, tuple]:
    """Run ``work()`` in the ``kind`` namespace of ``pid`` (net or uts: this
    thread only, and back): (start ticks of ``pid``, (its result, the inode,
    entered)). Raises :class:`Unavailable` with the reason."""
    from .syscalls import NAMESPACE_FLAGS, Syscalls

    what = "network" if kind == "net" else kind.upper()
    try:
        fd = os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
    except (FileNotFoundError, ProcessLookupError):
        raise Unavailable(f"process {pid} has exited: its {what} namespace is gone") from None
    except PermissionError:
        raise Unavailable(f"no permission to open /proc/{pid}/ns/{kind} (run as root, "
                          "or as the user who owns the container)") from None
    from .container import process_start_time

    home = -1
    try:
        start_ticks = process_start_time(pid)
        inode = os.fstat(fd).st_ino
        home = os.open(f"/proc/thread-self/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
        entered = inode != os.fstat(home).st_ino
        if entered:
            try:
                Syscalls().setns(fd, NAMESPACE_FLAGS[kind])
            except PermissionError:
                raise Unavailable(f"joining a container's {what} namespace needs CAP_SYS_ADMIN "
                                  "(run as root)") from None
        os.close(fd)
        fd = -1
        try:
            result = work()
        finally:
            if entered:
                Syscalls().setns(home, NAMESPACE_FLAGS[kind])
    finally:
        for f in (fd, home):
            if f >= 0:
                os.close(f)
    return start_ticks, (result, inode, entered)


def _join_and_query(pid: int) -> tuple[int | None, dict]:
    """(start ticks of ``pid``, its network). The start time is read after the
    namespace fd is open: if it is the one expected, the fd is that process's
    (a PID is not reused while its process lives). The thread goes back to
    its own namespace before it ends: Python lets the caller's ``join()``
    return a moment before the thread is gone from /proc/PID/task, and not
    even then should a thread of this process be left in the container's."""
    start_ticks, (network, inode, entered) = _in_namespace(pid, query)
    network.update(inode=inode, entered=entered)
    return start_ticks, network


def _route_socket(groups: int = 0) -> socket.socket:
    """A NETLINK_ROUTE socket in the calling thread's network namespace; with
    ``groups``, subscribed to those change notifications."""
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
    try:
        sock.bind((0, groups))
        if not groups:
            sock.settimeout(TIMEOUT)
            try:    # Linux 4.20+: the kernel itself then keeps to the main table
                sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
            except OSError:
                pass
    except OSError:
        sock.close()
        raise
    return sock


def query(sock: socket.socket | None = None) -> dict:
    """Links, addresses and main-table routes of the calling thread's network
    namespace, over one NETLINK_ROUTE socket opened and closed right here --
    or of the namespace ``sock`` was made in (a socket stays in its namespace)."""
    if sock is None:
        with _route_socket() as own:
            return query(own)
    from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
    from pyroute2.netlink.rtnl.marshal import MarshalRtnl
    from pyroute2.netlink.rtnl.rtmsg import rtmsg

    dump = _Dumper(sock, MarshalRtnl())
    links = dump(ifinfmsg, RTM_GETLINK)
    addrs = dump(ifaddrmsg, RTM_GETADDR)
    routes = dump(rtmsg, RTM_GETROUTE, table=RT_TABLE_MAIN)
    interfaces = [_interface(m) for m in links]
    names = {i["index"]: i["name"] for i in interfaces}
    return {"interfaces": sorted(interfaces, key=lambda i: i["index"]),
            "addresses": [_address(m, names) for m in addrs if m["family"] in FAMILIES],
            "routes": [_route(m, names) for m in routes
                       if m["family"] in FAMILIES and _route_table(m) == RT_TABLE_MAIN]}


class _Dumper:
    """One netlink dump at a time on ``sock``: send the request (a pyroute2
    message, encoded once per process and reused with a new sequence number),
    collect the replies (decoded by pyroute2's marshal) up to NLMSG_DONE. A
    dump the kernel marks inconsistent -- the table changed meanwhile,
    NLM_F_DUMP_INTR -- is done again."""

    ATTEMPTS = 3
    _encoded: dict[tuple, bytes] = {}

    def __init__(self, sock: socket.socket, marshal):
        self.sock, self.marshal, self.seq = sock, marshal, 0

    def __call__(self, cls, msg_type: int, **fields) -> list:
        for _attempt in range(self.ATTEMPTS):
            out, consistent = self._once(self._request(cls, msg_type, fields))
            if consistent:
                break
        return out

    def _request(self, cls, msg_type: int, fields: dict) -> bytearray:
        key = (cls, msg_type, tuple(sorted(fields.items())))
        encoded = self._encoded.get(key)
        if encoded is None:
            request = cls()
            for name, value in fields.items():
                request[name] = value
            request["header"].update(type=msg_type, flags=NLM_F_REQUEST | NLM_F_DUMP, sequence_number=0)
            request.encode()
            encoded = self._encoded[key] = bytes(request.data)
        self.seq += 1
        data = bytearray(encoded)
        struct.pack_into("=I", data, 8, self.seq)           # struct nlmsghdr: len, type, flags, seq, pid
        return data

    def _once(self, request: bytearray) -> tuple[list, bool]:
        self.sock.send(request)
        out, consistent = [], True
        while True:
            data, _ancillary, flags, _address = self.sock.recvmsg(1 << 16)
            if flags & socket.MSG_TRUNC:
                raise OSError("a netlink reply did not fit in 64 KiB")
            for msg in self.marshal.parse(data):
                header = msg["header"]
                if header["sequence_number"] != self.seq:
                    continue
                if header.get("error") is not None:
                    raise header["error"]
                consistent &= not header["flags"] & NLM_F_DUMP_INTR
                if header["type"] == NLMSG_DONE:
                    return out, consistent
                out.append(msg)


def _attrs(msg, wanted: frozenset) -> dict:
    """The attributes of ``msg`` named in ``wanted``, in one pass (pyroute2's
    ``get_attr`` scans every attribute each time), decoded only if wanted."""
    return {slot[0]: slot[1] for slot in msg["attrs"] if slot[0] in wanted}


_LINK_ATTRS = frozenset(("IFLA_IFNAME", "IFLA_LINKINFO", "IFLA_STATS64", "IFLA_STATS", "IFLA_OPERSTATE",
                         "IFLA_MTU", "IFLA_ADDRESS", "IFLA_LINK", "IFLA_LINK_NETNSID", "IFLA_MASTER"))
_ADDR_ATTRS = frozenset(("IFA_LOCAL", "IFA_ADDRESS", "IFA_LABEL"))
_ROUTE_ATTRS = frozenset(("RTA_DST", "RTA_OIF", "RTA_GATEWAY", "RTA_PREFSRC", "RTA_PRIORITY", "RTA_TABLE"))


def _interface(msg) -> dict:
    flags = msg["flags"]
    attrs = _attrs(msg, _LINK_ATTRS)
    linkinfo = attrs.get("IFLA_LINKINFO")
    stats = attrs.get("IFLA_STATS64") or attrs.get("IFLA_STATS") or {}
    return {
        "index": msg["index"],
        "name": attrs.get("IFLA_IFNAME"),
        "kind": linkinfo.get_attr("IFLA_INFO_KIND") if linkinfo is not None else None,
        "type": LINK_TYPES.get(msg["ifi_type"], str(msg["ifi_type"])),
        "state": (attrs.get("IFLA_OPERSTATE") or "unknown").lower(),
        "up": bool(flags & IFF_UP),
        "lower_up": bool(flags & IFF_LOWER_UP),
        "flags": [name for bit, name in FLAG_NAMES.items() if flags & bit],
        "mtu": attrs.get("IFLA_MTU"),
        "mac": attrs.get("IFLA_ADDRESS"),
        "link": attrs.get("IFLA_LINK"),                    # a veth's peer (index), maybe in another namespace
        "link_netnsid": attrs.get("IFLA_LINK_NETNSID"),
        "master": attrs.get("IFLA_MASTER"),                # the bridge it is plugged into
        "rx_bytes": stats.get("rx_bytes"), "tx_bytes": stats.get("tx_bytes"),
        "rx_packets": stats.get("rx_packets"), "tx_packets": stats.get("tx_packets"),
    }


def _address(msg, names: dict[int, str]) -> dict:
    attrs = _attrs(msg, _ADDR_ATTRS)
    return {
        "family": FAMILIES[msg["family"]],
        "address": attrs.get("IFA_LOCAL") or attrs.get("IFA_ADDRESS"),
        "prefixlen": msg["prefixlen"],
        "interface": attrs.get("IFA_LABEL") or names.get(msg["index"]),
        "index": msg["index"],
        "scope": SCOPES.get(msg["scope"], str(msg["scope"])),
    }


def _route_table(msg) -> int:
    """RTA_TABLE holds the table when its number does not fit rtm_table."""
    table = _attrs(msg, _ROUTE_ATTRS).get("RTA_TABLE")
    return table if table is not None else msg["table"]


def _route(msg, names: dict[int, str]) -> dict:
    attrs = _attrs(msg, _ROUTE_ATTRS)
    dst = attrs.get("RTA_DST")
    oif = attrs.get("RTA_OIF")
    return {
        "family": FAMILIES[msg["family"]],
        "dst": f"{dst}/{msg['dst_len']}" if dst is not None else "default",
        "gateway": attrs.get("RTA_GATEWAY"),
        "dev": names.get(oif) if oif is not None else None,
        "prefsrc": attrs.get("RTA_PREFSRC"),
        "metric": attrs.get("RTA_PRIORITY"),
        "table": "main",
        "protocol": PROTOCOLS.get(msg["proto"], str(msg["proto"])),
        "scope": SCOPES.get(msg["scope"], str(msg["scope"])),
        "type": ROUTE_TYPES.get(msg["type"], str(msg["type"])),
    }
