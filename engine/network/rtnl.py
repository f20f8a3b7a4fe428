"""A small synchronous rtnetlink client: the few link, address and route requests a container start makes.

``ip link``, ``ip addr`` and ``ip route`` talk to the kernel over a
NETLINK_ROUTE socket: each command is one message -- a fixed header, a fixed
struct (``ifinfomsg`` for links, ``ifaddrmsg`` for addresses, ``rtmsg`` for
routes) and a list of type-length-value *attributes* -- and the kernel
answers each with an acknowledgement or an error number. :class:`Rtnl` sends
exactly those messages, one at a time, and raises :class:`OSError` with the
kernel's errno (``FileExistsError`` for EEXIST, ENODEV for a link that is
not there ...) and, when the kernel gives one, its one-line reason.

Why not pyroute2's ``IPRoute``, which :mod:`.bridge` used before (and which
the crash sweep and the choice of a subnet still use, off a start's path)?
In pyroute2 0.9 each ``IPRoute`` makes an asyncio event loop and runs every
request through it, about 0.3 ms a request; plugging a container into a
bridge took about ten of them, on the path of every container start. The
kernel answers an rtnetlink request while the ``send`` that carried it is
still running, so a plain socket needs no loop at all: send, then read the
answer that is already queued (``bench/network_stage.py`` times both ways
side by side).

Why ``struct`` rather than pyroute2's message classes (as
:mod:`engine.netinfo` uses to *read*)? The requests here are few and fixed,
and only one answer is decoded -- the index of a link -- so packing them
by hand is short and every byte is in plain view, next to the kernel's
header that defines it. It is faster too: pyroute2's ``ifinfmsg`` takes
about 0.3 ms to encode the veth pair's request (nested attributes, in
Python), ``struct`` a few microseconds -- a link lookup's whole round trip
is some 0.03 ms. And this module then needs no third-party import.

A netlink socket talks to the network namespace it was *created* in,
whichever thread uses it later: :class:`.bridge.attach` makes one for the
container's namespace on a thread that joined it for that moment only, and
sends the requests from its own namespace. IPv4 only, as the networks are.

The message layouts (include/uapi/linux/netlink.h, rtnetlink.h, if_link.h,
if_addr.h, veth.h)::

    nlmsghdr   u32 len, u16 type, u16 flags, u32 seq, u32 pid          16 bytes
    ifinfomsg  u8 family, u8 pad, u16 type, i32 index, u32 flags, u32 change  16
    ifaddrmsg  u8 family, u8 prefixlen, u8 flags, u8 scope, u32 index         8
    rtmsg      u8 family, dst_len, src_len, tos, table, protocol, scope, type,
               u32 flags                                                     12
    nlattr     u16 len, u16 type, value padded to 4 bytes
    nlmsgerr   i32 error (minus errno; 0 is the ack), the request's nlmsghdr,
               then (NLM_F_ACK_TLVS) attributes: NLMSGERR_ATTR_MSG, the reason
"""

from __future__ import annotations

import errno
import os
import select
import socket
import struct

# Netlink (netlink.h).
NLMSG_ERROR = 2
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_CAPPED = 0x100                # in an error: the request's payload is not echoed back
NLM_F_ACK_TLVS = 0x200              # in an error: attributes follow (the reason)
NLMSGERR_ATTR_MSG = 1
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11

# Message types (rtnetlink.h).
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK, RTM_SETLINK = 16, 17, 18, 19
RTM_NEWADDR = 20
RTM_NEWROUTE = 24

# Link attributes (if_link.h, veth.h) and flags (if.h).
IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MASTER = 10
IFLA_LINKINFO = 18
IFLA_IFALIAS = 20
IFLA_NET_NS_FD = 28
IFLA_EXT_MASK = 29
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
VETH_INFO_PEER = 1
RTEXT_FILTER_SKIP_STATS = 1 << 3    # a link lookup needs no packet counters
IFF_UP = 0x1

# Address and route attributes and values (if_addr.h, rtnetlink.h).
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_OIF, RTA_GATEWAY = 4, 5
RT_TABLE_MAIN = 254
RTPROT_STATIC = 4                   # ``proto static``, as the routes pyroute2 made for us
RT_SCOPE_UNIVERSE = 0
RTN_UNICAST = 1

TIMEOUT = 5.0
_HEADER = struct.Struct("=IHHII")
_IFINFO = struct.Struct("=BxHiII")
_IFADDR = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")
_ATTR = struct.Struct("=HH")
_ERROR = struct.Struct("=i")


def attr(kind: int, value: bytes) -> bytes:
    """One netlink attribute: length, type, the value, padding to 4 bytes."""
    length = _ATTR.size + len(value)
    return _ATTR.pack(length, kind) + value + b"\0" * (-length % 4)


def _name(name: str) -> bytes:
    return name.encode() + b"\0"


def _u32(value: int) -> bytes:
    return struct.pack("=I", value)


def _mac(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def _ifinfo(index: int = 0, *, up: bool = False) -> bytes:
    """An ``ifinfomsg``; ``up`` sets IFF_UP (and only it: the change mask)."""
    return _IFINFO.pack(socket.AF_UNSPEC, 0, index, IFF_UP if up else 0, IFF_UP if up else 0)


class Rtnl:
    """A NETLINK_ROUTE socket in the calling thread's network namespace,
    with the requests :mod:`.bridge` makes. Use it as a context manager, or
    :meth:`close` it: it holds its namespace alive while it is open."""

    def __init__(self) -> None:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
        try:
            sock.bind((0, 0))
            for option in (NETLINK_CAP_ACK, NETLINK_EXT_ACK):   # short errors, with the kernel's reason
                try:
                    sock.setsockopt(SOL_NETLINK, option, 1)
                except OSError:
                    pass                                        # before Linux 4.12: the errno alone
        except OSError:
            sock.close()
            raise
        self.sock = sock
        self.seq = 0
        self._buffer = bytearray(1 << 16)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    # -- links --------------------------------------------------------------------------------

    def link_index(self, name: str) -> int | None:
        """``ip link show NAME``: the index of link ``name``, None if there is none (ENODEV)."""
        body = _ifinfo() + attr(IFLA_IFNAME, _name(name)) + attr(IFLA_EXT_MASK, _u32(RTEXT_FILTER_SKIP_STATS))
        try:
            reply = self.request(RTM_GETLINK, 0, body, reply=True)
        except OSError as e:
            if e.errno == errno.ENODEV:
                return None
            raise
        return _IFINFO.unpack_from(reply)[2]

    def add_link(self, name: str, kind: str, *, address: str | None = None, master: int | None = None,
                 up: bool = False, data: bytes = b"") -> None:
        """``ip link add NAME [address MAC] type KIND [master INDEX] [up]`` in one request;
        EEXIST (FileExistsError) when a link of that name is there. ``data``: the
        kind's own attributes (IFLA_INFO_DATA), as :meth:`add_veth` gives them."""
        body = _ifinfo(up=up) + attr(IFLA_IFNAME, _name(name))
        if address is not None:
            body += attr(IFLA_ADDRESS, _mac(address))
        if master is not None:
            body += attr(IFLA_MASTER, _u32(master))
        info = attr(IFLA_INFO_KIND, kind.encode())
        if data:
            info += attr(IFLA_INFO_DATA, data)
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body + attr(IFLA_LINKINFO, info))

    def add_veth(self, name: str, *, peer: str, peer_address: str, peer_netns_fd: int, master: int | None = None,
                 up: bool = False) -> None:
        """``ip link add NAME [master INDEX] [up] type veth peer name PEER address MAC netns FD``:
        a veth pair whose peer is made directly in the network namespace ``peer_netns_fd``
        refers to (its name is never seen in ours), one request. The peer is left down:
        asked to be up, the kernel refuses the pair (ENOTCONN), as the peer's own peer
        does not exist yet at that point."""
        peer_msg = (_ifinfo() + attr(IFLA_IFNAME, _name(peer)) + attr(IFLA_ADDRESS, _mac(peer_address))
                    + attr(IFLA_NET_NS_FD, _u32(peer_netns_fd)))
        self.add_link(name, "veth", master=master, up=up, data=attr(VETH_INFO_PEER, peer_msg))

    def set_link(self, index: int = 0, *, name: str | None = None, up: bool = False,
                 alias: str | None = None) -> None:
        """``ip link set {INDEX | NAME} [up] [alias TEXT]``."""
        body = _ifinfo(index, up=up)
        if name is not None:
            body += attr(IFLA_IFNAME, _name(name))
        if alias is not None:
            body += attr(IFLA_IFALIAS, alias.encode())
        self.request(RTM_SETLINK, 0, body)

    def delete_link(self, name: str) -> None:
        """``ip link del NAME`` (a veth's peer goes with it); ENODEV if there is none."""
        self.request(RTM_DELLINK, 0, _ifinfo() + attr(IFLA_IFNAME, _name(name)))

    # -- addresses and routes ------------------------------------------------------------------

    def add_address(self, index: int, address: str, prefixlen: int) -> None:
        """``ip addr add ADDRESS/PREFIXLEN dev INDEX`` (IPv4); EEXIST if it is there."""
        packed = socket.inet_aton(address)
        body = (_IFADDR.pack(socket.AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, index)
                + attr(IFA_LOCAL, packed) + attr(IFA_ADDRESS, packed))
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body)

    def add_default_route(self, gateway: str, oif: int) -> None:
        """``ip route add default via GATEWAY dev OIF proto static`` (main table); EEXIST if there is one."""
        body = (_RTMSG.pack(socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC, RT_SCOPE_UNIVERSE,
                            RTN_UNICAST, 0)
                + attr(RTA_GATEWAY, socket.inet_aton(gateway)) + attr(RTA_OIF, _u32(oif)))
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body)

    # -- the exchange -----------------------------------------------------------------------------

    def request(self, kind: int, flags: int, body: bytes, *, reply: bool = False) -> memoryview | None:
        """Send one request and wait for its answer: the acknowledgement
        (NLM_F_ACK), or with ``reply`` the kernel's reply message, whose body
        is returned, valid until the next request (a ``GET`` is answered by
        its reply or by an error, so it asks for no separate ack). An error
        raises :class:`OSError`."""
        self.seq += 1
        flags |= NLM_F_REQUEST if reply else NLM_F_REQUEST | NLM_F_ACK
        self.sock.send(_HEADER.pack(_HEADER.size + len(body), kind, flags, self.seq, 0) + body)
        while True:
            data = self._receive()
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, msg_type, msg_flags, seq, _pid = _HEADER.unpack_from(data, offset)
                if length < _HEADER.size:
                    break
                if seq == self.seq:
                    if msg_type == NLMSG_ERROR:
                        code = -_ERROR.unpack_from(data, offset + _HEADER.size)[0]
                        if code:
                            raise _error(code, data[offset:offset + length], msg_flags)
                        return None
                    if reply:
                        return data[offset + _HEADER.size:offset + length]
                offset += (length + 3) & ~3

    def _receive(self) -> memoryview:
        """The next datagram. The kernel has answered before ``send`` returned,
        so it is nearly always there already: the wait is the exception."""
        flags = socket.MSG_DONTWAIT | socket.MSG_TRUNC      # MSG_TRUNC: the datagram's real size
        try:
            size = self.sock.recv_into(self._buffer, 0, flags)
        except BlockingIOError:
            poller = select.poll()                          # not select(): the fd may be past 1023
            poller.register(self.sock, select.POLLIN)
            if not poller.poll(TIMEOUT * 1000):
                raise TimeoutError(errno.ETIMEDOUT, f"the kernel did not answer within {TIMEOUT:g} s") from None
            size = self.sock.recv_into(self._buffer, 0, flags)
        if size > len(self._buffer):
            raise OSError(errno.EMSGSIZE, f"a netlink answer of {size} bytes did not fit in {len(self._buffer)}")
        return memoryview(self._buffer)[:size]


def _error(code: int, message: memoryview, flags: int) -> OSError:
    """The OSError for an error message: errno, strerror and the kernel's reason if it gave one."""
    reason = ""
    if flags & NLM_F_ACK_TLVS:
        offset = _HEADER.size + _ERROR.size
        if flags & NLM_F_CAPPED:
            offset += _HEADER.size                          # the request's header only
        else:
            offset += _HEADER.unpack_from(message, offset)[0]   # the whole request echoed
        while offset + _ATTR.size <= len(message):
            length, kind = _ATTR.unpack_from(message, offset)
            if length < _ATTR.size:
                break
            if kind & 0x3FFF == NLMSGERR_ATTR_MSG:
                reason = bytes(message[offset + _ATTR.size:offset + length]).split(b"\0")[0].decode(errors="replace")
                break
            offset += (length + 3) & ~3
    text = os.strerror(code)
    return OSError(code, f"{text} ({reason})" if reason else text)

