"""IP address management: which subnet a new network gets, which address a container gets.

**Subnets.** Docker carves new networks out of a list of *address pools*
(``default-address-pools`` in daemon.json): 172.17.0.0/16, 172.18.0.0/16, ...
172.31.0.0/16, then 192.168.0.0/20, 192.168.16.0/20, ... It takes the first
one that overlaps neither another network of its own nor a route the host
already has -- a VPN or a LAN on 172.17.0.0/16 would otherwise become
unreachable from the host. :func:`choose_subnet` does the same, reading the
host's routes over netlink (``ip -4 route show table all``); default routes
(0.0.0.0/0) are skipped, or nothing would ever be free. The pools are the
:class:`~.records.Store`'s, so they are configurable.

**Addresses.** A lease is not a separate table: it *is* the attachment
record (:class:`~.records.Attachment`), written atomically before any veth
is made. Picking a free address and writing the record happen under one
``flock(2)`` on the data directory, so

- two processes never pick the same address: the second one reads the
  first one's record before it picks;
- a process killed before it wrote the record leaves no lease (and the
  kernel dropped its lock): the address was never handed out;
- a process killed after it wrote the record leaves a lease that holds the
  address until :mod:`.sweep` finds its container dead and replays the
  teardown, which frees it.

The network address, the gateway (the first host address, the bridge's own)
and the broadcast address are never leased. Addresses are handed out from the
lowest free one up, as Docker does; ``--ip`` asks for one in particular.
"""

from __future__ import annotations

import ipaddress
import re
import socket

from .records import (
    NAME_RE,
    Attachment,
    Network,
    NetworkError,
    PortRecord,
    Store,
    bridge_name,
    mac_for,
    new_network_id,
    veth_name,
)

DEFAULT_POOLS: tuple[str, ...] = tuple(f"172.{n}.0.0/16" for n in range(17, 32)) + \
    tuple(f"192.168.{n}.0/20" for n in range(0, 256, 16))

PUBLISH_RE = re.compile(r"^(?:(?:(?P<ip>\d{1,3}(?:\.\d{1,3}){3}):)?(?P<host>\d{0,5}):)?(?P<cport>\d{1,5})"
                        r"(?:/(?P<proto>tcp|udp))?$")


def host_routes() -> list[ipaddress.IPv4Network]:
    """Every IPv4 route of the host's network namespace, in any table, less
    the default routes: the destinations a new subnet must not overlap."""
    from pyroute2 import IPRoute

    out = []
    with IPRoute() as ipr:
        for msg in ipr.get_routes(family=socket.AF_INET):     # a dump: every table
            dst, length = msg.get_attr("RTA_DST"), msg["dst_len"]
            if dst is None or length == 0:
                continue
            out.append(ipaddress.IPv4Network(f"{dst}/{length}", strict=False))
    return out


def choose_subnet(store: Store, routes: list[ipaddress.IPv4Network] | None = None) -> ipaddress.IPv4Network:
    """The first pool of ``store.pools`` that overlaps no network of ours and no host route."""
    taken = [ipaddress.IPv4Network(n.subnet) for n in store.networks()]
    taken += host_routes() if routes is None else routes
    for pool in store.pools:
        candidate = ipaddress.IPv4Network(pool)
        if not any(candidate.overlaps(t) for t in taken):
            return candidate
    raise NetworkError("no free subnet left in the address pools: give one with --subnet, "
                       "or remove unused networks (network prune)")


def create_network(store: Store, name: str, *, subnet: str | None = None, gateway: str | None = None,
                   internal: bool = False, dns: bool = True, options: dict[str, str] | None = None) -> Network:
    """Record a new network (no kernel object yet: :func:`.bridge.ensure_network` makes those).
    Refuses a bad name, a taken name, a malformed subnet or one that overlaps
    a network of ours; with no ``subnet``, one is chosen from the pools."""
    if not NAME_RE.match(name):
        raise NetworkError(f"invalid network name {name!r}: letters, digits, '_', '.', '-' (at most 64)")
    with store.lock():
        if (store.networks_dir / f"{name}.json").exists():
            raise NetworkError(f"network {name!r} already exists")
        if subnet is None:
            net = choose_subnet(store)
        else:
            try:
                net = ipaddress.IPv4Network(subnet, strict=True)
            except ValueError as e:
                raise NetworkError(f"invalid subnet {subnet!r}: {e} (an IPv4 CIDR such as 10.10.0.0/24)") from None
            if net.prefixlen > 30:
                raise NetworkError(f"subnet {subnet} is too small: at most /30 (a gateway and one container)")
            for other in store.networks():
                if net.overlaps(ipaddress.IPv4Network(other.subnet)):
                    raise NetworkError(f"subnet {subnet} overlaps network {other.name!r} ({other.subnet})")
        gw = ipaddress.IPv4Address(gateway) if gateway else next(net.hosts())
        if gw not in net or gw in (net.network_address, net.broadcast_address):
            raise NetworkError(f"gateway {gw} is not a host address of {net}")
        net_id = new_network_id()
        record = Network(name=name, id=net_id, subnet=str(net), gateway=str(gw), bridge=bridge_name(net_id),
                         internal=internal, dns=dns, options=dict(options or {}))
        store.save_network(record)
    return record


DEFAULT_NETWORK = "bridge"


def default_network(store: Store) -> Network:
    """Docker's default network, ``bridge``: made on first use, from the pools
    like any other, but without name resolution (as on Docker's default bridge,
    containers there reach each other by address only)."""
    with store.lock():
        try:
            return store.network(DEFAULT_NETWORK)
        except NetworkError:
            return create_network(store, DEFAULT_NETWORK, dns=False)


def parse_publish(spec: str) -> PortRecord:
    """``[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp]`` as docker's ``-p`` takes it.
    A missing or empty HOST_PORT is 0: :func:`lease` picks a free one."""
    m = PUBLISH_RE.match(spec.strip())
    if not m:
        raise NetworkError(f"invalid port publication {spec!r}: "
                           "expected [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|udp]")
    host_ip = m.group("ip") or ""
    if host_ip:
        try:
            ipaddress.IPv4Address(host_ip)
        except ValueError:
            raise NetworkError(f"invalid host address {host_ip!r} in {spec!r}") from None
    host_port = int(m.group("host") or 0)
    cport = int(m.group("cport"))
    for port in (host_port, cport):
        if port > 65535:
            raise NetworkError(f"port {port} in {spec!r} is out of range (1-65535)")
    if cport == 0:
        raise NetworkError(f"container port 0 in {spec!r} is not a port")
    return PortRecord(host_ip=host_ip, host_port=host_port, container_port=cport, proto=m.group("proto") or "tcp")


def _port_free(host_ip: str, port: int, proto: str) -> bool:
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        if proto == "tcp":
            # As a server binds (and our port proxy does): the TIME_WAIT of a connection that
            # has ended does not hold the port, a program listening on it does.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host_ip or "0.0.0.0", port))
        except OSError:
            return False
    return True


def _free_port(host_ip: str, proto: str) -> int:
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host_ip or "0.0.0.0", 0))
        return s.getsockname()[1]


def _same_port(a: tuple, b: tuple) -> bool:
    """(host_ip, port, proto) pairs that would catch the same packets: "" is every address."""
    return a[1:] == b[1:] and (not a[0] or not b[0] or a[0] == b[0])


def check_ports(store: Store, ports: list[PortRecord]) -> list[PortRecord]:
    """Ports made concrete (host port 0 becomes a free one) and checked: not
    published by another attachment of this store, nor bound by a program on
    the host. A one-line error names the first that is not free."""
    published = {(p["host_ip"], p["host_port"], p["proto"]) for a in store.attachments() for p in a.ports}
    out: list[PortRecord] = []
    for p in ports:
        p = PortRecord(**p)
        if p["host_port"] == 0:
            p["host_port"] = _free_port(p["host_ip"], p["proto"])
        key = (p["host_ip"], p["host_port"], p["proto"])
        mine = {(q["host_ip"], q["host_port"], q["proto"]) for q in out}
        if any(_same_port(key, other) for other in published | mine):
            raise NetworkError(f"host port {p['host_port']}/{p['proto']} is already published by a container")
        if not _port_free(p["host_ip"], p["host_port"], p["proto"]):
            where = f"{p['host_ip']}:" if p["host_ip"] else ""
            raise NetworkError(f"host port {where}{p['host_port']}/{p['proto']} is already in use on the host")
        out.append(p)
    return out


def lease(store: Store, network: Network, container_id: str, *, name: str, aliases: list[str] | None = None,
          ip: str | None = None, ports: list[PortRecord] | None = None, pid: int = 0,
          start_ticks: int = 0, ifname: str = "eth0", default_route: bool = True) -> Attachment:
    """Lease an address on ``network`` for a container and record the
    attachment, before anything is made in the kernel. The same container
    on the same network gets its existing lease back (idempotent).

    ``ip`` asks for a given address (``--ip``): refused if outside the
    subnet, reserved, or leased to another container. ``ports`` are checked
    and made concrete here too, so a port in use is refused before anything
    exists. Raises :class:`NetworkError` with one line."""
    ports = list(ports or [])
    if ports and network.internal:
        raise NetworkError(f"network {network.name!r} is internal: it cannot publish ports")
    subnet = ipaddress.IPv4Network(network.subnet)
    reserved = {subnet.network_address, subnet.broadcast_address, ipaddress.IPv4Address(network.gateway)}
    with store.lock():
        leases = store.attachments(network_id=network.id)
        for att in leases:
            if att.container_id == container_id:
                return att
        taken = reserved | {ipaddress.IPv4Address(a.address) for a in leases}
        if ip is not None:
            try:
                want = ipaddress.IPv4Address(ip)
            except ValueError:
                raise NetworkError(f"invalid address {ip!r}: expected an IPv4 address such as 10.10.0.5") from None
            if want not in subnet:
                raise NetworkError(f"address {ip} is not in network {network.name!r} ({network.subnet})")
            if want in reserved:
                raise NetworkError(f"address {ip} is reserved on {network.subnet} (network, gateway or broadcast)")
            if want in taken:
                owner = next(a.name for a in leases if a.address == ip)
                raise NetworkError(f"address {ip} is already in use by container {owner!r}")
            address = want
        else:
            address = next((a for a in subnet.hosts() if a not in taken), None)
            if address is None:
                raise NetworkError(f"no free address left in network {network.name!r} ({network.subnet})")
        ports = check_ports(store, ports)
        att = Attachment(container_id=container_id, name=name, network=network.name, network_id=network.id,
                         address=str(address), prefixlen=subnet.prefixlen, gateway=network.gateway,
                         mac=mac_for(str(address)), veth=veth_name(container_id, network.id),
                         aliases=list(aliases or []), ports=ports, pid=pid, start_ticks=start_ticks,
                         ifname=ifname, default_route=default_route)
        store.save_attachment(att)           # the lease, on disk, before the lock is dropped
    return att


def set_pid(store: Store, att: Attachment, pid: int, start_ticks: int) -> Attachment:
    """Record the container's PID 1 once known (the sweep's liveness check uses it)."""
    with store.lock():
        att.pid, att.start_ticks = pid, start_ticks
        store.save_attachment(att)
    return att


def release(store: Store, att: Attachment) -> None:
    """Free the lease (idempotent). The kernel side goes first: :func:`.bridge.detach`."""
    with store.lock():
        store.delete_attachment_record(att)
