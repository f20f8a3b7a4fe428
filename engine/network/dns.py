"""Names on a network: a small DNS responder, and the /etc/hosts and /etc/resolv.conf of a container.

On a user network, Docker containers find each other by name: ``ping web``
works because Docker writes ``nameserver 127.0.0.11`` into each container's
/etc/resolv.conf and answers on that address itself (its "embedded DNS
server"), from the list of containers on the network; any other name it
forwards to the host's own resolvers.

Here a :class:`DnsResponder` per network listens on UDP port 53 of the
network's *gateway* address -- the bridge's address on the host, which every
container on the network reaches over its ``eth0`` -- and the container's
resolv.conf says ``nameserver <gateway>``. Because it runs in the host's
network namespace, forwarding works even when the host's resolver is a
loopback address (systemd-resolved's 127.0.0.53), which a container could
never reach itself. A name of a container or alias on the network gets an
``A`` record; any other name is forwarded to the host's nameservers, or
refused when there are none. On Docker's default ``bridge`` network names
are not resolved (a network with ``dns=False``): the responder only forwards.

The responder is made for a single-threaded ``select``/``poll`` loop, like
the supervisor's: every socket is non-blocking, :meth:`DnsResponder.fileno`
and :meth:`DnsResponder.on_readable` are what the loop needs, the forwarding
socket is a second selectable (:meth:`DnsResponder.selectables`), and
:meth:`DnsResponder.expire` answers SERVFAIL for forwarded questions whose
answer never came -- call it now and then (every second is plenty). Messages
are parsed and built with dnspython, a well-kept DNS library; the only
byte-level step is putting back the client's 16-bit query id on a forwarded
answer.
"""

from __future__ import annotations

import ipaddress
import random
import socket
import time
from collections.abc import Iterable

from .records import Attachment, Network, NetworkError, Store

TTL = 600                   # Docker's embedded DNS answers with a TTL of 600 s
FORWARD_TIMEOUT = 3.0
MAX_PENDING = 512           # forwarded questions awaiting an answer; the oldest is dropped past this
MAX_BATCH = 64              # datagrams handled per on_readable, so one busy network cannot starve the loop


def host_nameservers(text: str) -> list[tuple[str, int]]:
    """The IPv4 ``nameserver`` lines of a resolv.conf, as (address, 53)."""
    out = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                ipaddress.IPv4Address(parts[1])
            except ValueError:
                continue
            out.append((parts[1], 53))
    return out


def read_host_resolv(path: str = "/etc/resolv.conf") -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def names_for(store: Store, net: Network) -> dict[str, list[str]]:
    """What the responder of ``net`` answers: each container's name, its
    aliases and its short id (12 hex digits, as Docker), lower-cased, to its
    address. Empty when the network does not resolve names."""
    if not net.dns:
        return {}
    table: dict[str, list[str]] = {}
    for att in store.attachments(network_id=net.id):
        for name in [att.name, *att.aliases, att.container_id[:12]]:
            if name:
                addresses = table.setdefault(name.lower().rstrip("."), [])
                if att.address not in addresses:
                    addresses.append(att.address)
    return table


def hosts_file(att: Attachment | None, hostname: str) -> str:
    """A container's /etc/hosts, as Docker writes it: localhost, the IPv6
    names, and the container's own address with its hostname."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", "fe00::0\tip6-localnet",
             "ff00::0\tip6-mcastprefix", "ff02::1\tip6-allnodes", "ff02::2\tip6-allrouters"]
    if att is not None:
        names = [hostname] + [n for n in (att.name,) if n and n != hostname]
        lines.append(f"{att.address}\t{' '.join(names)}")
    return "\n".join(lines) + "\n"


def resolv_conf(net: Network, host_text: str) -> str:
    """A container's /etc/resolv.conf: the network's responder as its
    nameserver, and the host's ``search`` and ``options`` lines."""
    keep = [line.strip() for line in host_text.splitlines() if line.split()[:1] in (["search"], ["options"])]
    return "\n".join([f"nameserver {net.gateway}", *keep]) + "\n"


class _Upstream:
    """The forwarding socket, a selectable of its own."""

    def __init__(self, responder: DnsResponder):
        self.responder = responder
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        self.sock.bind(("0.0.0.0", 0))

    def fileno(self) -> int:
        return self.sock.fileno()

    def on_readable(self) -> None:
        self.responder._on_upstream()

    def close(self) -> None:
        self.sock.close()


class DnsResponder:
    """A DNS responder for one network, on ``address``:``port`` (UDP).

    ``names`` maps a lower-case name to its IPv4 addresses (see
    :func:`names_for`); :meth:`set_names` replaces it as containers come and
    go. ``upstreams`` are (address, port) pairs to forward other names to,
    tried in turn; with none, other names are answered REFUSED."""

    def __init__(self, address: str, port: int = 53, *, names: dict[str, list[str]] | None = None,
                 upstreams: Iterable[tuple[str, int]] = ()):
        try:
            import dns.message  # noqa: F401 - fail here, with a clear message, not on the first query
        except ImportError as e:
            raise NetworkError(f"dnspython is not installed ({e})") from None
        self.names: dict[str, list[str]] = {}
        self.set_names(names or {})
        self.upstreams = list(upstreams)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC)
        try:
            self.sock.bind((address, port))
        except OSError as e:
            self.sock.close()
            raise NetworkError(f"the DNS responder cannot listen on {address}:{port}/udp: {e.strerror}") from None
        self.address = self.sock.getsockname()
        self.upstream = _Upstream(self) if self.upstreams else None
        # new id -> (client, its id, deadline, which upstream, the question's wire)
        self.pending: dict[int, tuple[tuple, int, float, int, bytes]] = {}
        self.answered = self.forwarded = self.refused = 0

    # what a select loop needs
    def fileno(self) -> int:
        return self.sock.fileno()

    def selectables(self) -> list:
        """Every object with fileno()/on_readable() to register in the loop."""
        return [self] + ([self.upstream] if self.upstream else [])

    def on_readable(self) -> None:
        """Handle the questions that have arrived; never blocks."""
        import dns.exception
        import dns.message

        for _ in range(MAX_BATCH):
            try:
                wire, client = self.sock.recvfrom(4096)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:             # ICMP errors surface here on a UDP socket: nothing to do
                continue
            try:
                query = dns.message.from_wire(wire)
            except (dns.exception.DNSException, ValueError):
                continue                # not DNS: no answer, as a resolver would
            self._answer(query, wire, client)

    def set_names(self, names: dict[str, list[str]]) -> None:
        self.names = {k.lower().rstrip("."): list(v) for k, v in names.items()}

    def expire(self, now: float | None = None) -> None:
        """Answer SERVFAIL to forwarded questions whose time is up (or try the next upstream)."""
        now = time.monotonic() if now is None else now
        for new_id, (client, old_id, deadline, tried, wire) in list(self.pending.items()):
            if deadline <= now:
                del self.pending[new_id]
                if tried + 1 < len(self.upstreams):
                    self._forward(wire, client, old_id, tried + 1)
                else:
                    self._fail(wire, client)

    def close(self) -> None:
        self.sock.close()
        if self.upstream:
            self.upstream.close()

    # the work
    def _send(self, data: bytes, client) -> None:
        try:
            self.sock.sendto(data, client)
        except (BlockingIOError, OSError):
            pass                        # a full buffer or a gone client: the client will ask again

    def _answer(self, query, wire: bytes, client) -> None:
        import dns.flags
        import dns.opcode
        import dns.rcode
        import dns.rdataclass
        import dns.rdatatype
        import dns.rrset

        if query.flags & dns.flags.QR:
            return                      # an answer sent to us: ignore
        if query.opcode() != dns.opcode.QUERY or len(query.question) != 1:
            return self._reply_code(query, client, dns.rcode.NOTIMP)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        addresses = self.names.get(name)
        if addresses is not None and question.rdclass == dns.rdataclass.IN:
            response = dns.message.make_response(query)
            response.flags |= dns.flags.AA | dns.flags.RA
            if question.rdtype in (dns.rdatatype.A, dns.rdatatype.ANY):
                response.answer.append(dns.rrset.from_text_list(question.name, TTL, "IN", "A", addresses))
            # AAAA and others for a known name: NOERROR with no data, so the client does not look elsewhere
            self.answered += 1
            return self._send(response.to_wire(), client)
        if self.upstreams:
            return self._forward(wire, client, query.id, 0)
        self.refused += 1
        self._reply_code(query, client, dns.rcode.REFUSED)

    def _reply_code(self, query, client, rcode) -> None:
        import dns.flags
        import dns.message

        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA
        response.set_rcode(rcode)
        self._send(response.to_wire(), client)

    def _forward(self, wire: bytes, client, old_id: int, tried: int) -> None:
        if len(self.pending) >= MAX_PENDING:
            self.pending.pop(next(iter(self.pending)))
        new_id = random.getrandbits(16)
        while new_id in self.pending:
            new_id = random.getrandbits(16)
        self.pending[new_id] = (client, old_id, time.monotonic() + FORWARD_TIMEOUT, tried, wire)
        try:
            self.upstream.sock.sendto(new_id.to_bytes(2, "big") + wire[2:], self.upstreams[tried])
            self.forwarded += 1
        except OSError:
            self.pending.pop(new_id, None)
            self._fail(wire, client)

    def _fail(self, wire: bytes, client) -> None:
        import dns.message
        import dns.rcode

        try:
            self._reply_code(dns.message.from_wire(wire), client, dns.rcode.SERVFAIL)
        except Exception:  # noqa: BLE001 - it parsed once; if not, no answer
            pass

    def _on_upstream(self) -> None:
        for _ in range(MAX_BATCH):
            try:
                wire, source = self.upstream.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                continue
            if len(wire) < 12:
                continue
            new_id = int.from_bytes(wire[:2], "big")
            entry = self.pending.get(new_id)
            if entry is None or source != self.upstreams[entry[3]]:
                continue                # late, duplicate or spoofed: dropped
            del self.pending[new_id]
            client, old_id = entry[0], entry[1]
            self._send(old_id.to_bytes(2, "big") + wire[2:], client)
