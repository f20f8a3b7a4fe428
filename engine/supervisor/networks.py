"""Containers on networks: the supervisor's side of :mod:`engine.network`.

A container on a network of ours (the default ``bridge``, or one made with
``network create``) gets its network namespace from the supervisor, before
its first process is forked, as podman does with netavark: the supervisor
makes the namespace (``unshare(CLONE_NEWNET)`` on its own thread, then back),
leases the address, plugs the namespace into the network's bridge with a veth
pair and publishes the ports -- then the child joins that namespace with
``setns(2)`` in its ``namespaces`` stage. A refusal (a port in use, no
address left) therefore comes before anything is forked, and the child never
waits for the network.

Per network in use, a :class:`~engine.network.dns.DnsResponder` on the
gateway's port 53 answers the containers' names (user networks) and
forwards the rest to the host's resolvers; its sockets sit in the loop's
selector as ``("netsock", obj)``. A published port also gets a userland
proxy for the host's loopback (:mod:`engine.network.proxy`, registered the
same way; see :meth:`Networking.open_proxies`).

When a container exits, its attachments are torn down (port elements, veth,
lease) while the next container is being built (:meth:`tidy_one`); a crash
leaves records that :func:`engine.network.sweep.sweep` reconciles at
start-up and in ``gc``.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import selectors
from contextlib import contextmanager
from pathlib import Path

from .. import syscalls as sc
from ..container import Container
from ..errors import EngineError, InvalidArgument
from ..spec import ContainerConfig
from .rootless_net import ROOTLESS

POOLS_ENV = "CONTAINER_LAB_NETWORK_POOLS"     # "10.88.0.0/24,10.88.1.0/24": where new subnets come from
# Subnets are chosen, and bridges made, under one host-wide lock: two engines
# (a learner's and a test's) would otherwise pick the same free subnet.
HOST_LOCK = "/run/container-lab.networks.lock"


def _table_for(data: Path) -> str:
    """The nftables table of a data directory: ``container_lab`` for the
    usual one, a table of its own for any other (tests, sandboxes), so that
    two engines never sweep each other's rules."""
    if str(data) == os.path.join("/var/lib", "container-lab"):
        return "container_lab"
    return "container_lab_" + hashlib.sha256(str(data.resolve()).encode()).hexdigest()[:8]


@contextmanager
def host_lock():
    fd = os.open(HOST_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


class Networking:
    """Networks for containers: namespaces, leases, veths, names, ports."""

    # -- the store, the networks ------------------------------------------------------------
    @property
    def net_store(self):
        """The network records of this data dir (made on first use: reading them costs nothing until then)."""
        if self.network_records is None:
            from ..network import Store

            pools = tuple(p.strip() for p in os.environ.get(POOLS_ENV, "").split(",") if p.strip()) or None
            self.network_records = Store(self.data / "network", table=_table_for(self.data), pools=pools)
        return self.network_records

    def network_named(self, name: str, *, make_default: bool = True):
        """The network ``name`` refers to; ``bridge`` is made on first use."""
        from ..network import NetworkError, ipam

        try:
            return self.net_store.network(name)
        except NetworkError:
            if name == ipam.DEFAULT_NETWORK and make_default:
                return self.create_network(name, dns=False)
            raise InvalidArgument(f"network {name} not found") from None

    def create_network(self, name: str, **options):
        """``network create``: the record, then the bridge and its rules at once
        (under the host-wide lock, so the next engine to choose a subnet sees
        this one's route)."""
        from ..network import bridge, ipam

        if self.rootless:
            raise InvalidArgument(ROOTLESS)
        with host_lock():
            net = ipam.create_network(self.net_store, name, **options)
            try:
                self.ensure_network(net)
            except EngineError:
                try:                        # what was made before the failure: the bridge, perhaps rules
                    bridge.remove_network(self.net_store, net)
                except EngineError:
                    pass
                with self.net_store.lock():
                    self.net_store.delete_network_record(net)
                raise
        return net

    def ensure_network(self, net) -> None:
        """The bridge, its address and our rules, and the network's DNS responder:
        made once per network per supervisor life (``networks_up`` remembers it)."""
        from ..network import bridge

        if net.id in self.networks_up:
            return
        bridge.ensure_network(self.net_store, net)
        self.networks_up[net.id] = net
        self.open_responder(net)

    def open_responder(self, net) -> None:
        """The network's DNS responder, its sockets in the loop (none if port 53 of its gateway is taken)."""
        from ..network import NetworkError
        from ..network import dns as netdns

        if net.id in self.responders:
            return
        try:
            r = netdns.DnsResponder(net.gateway, names=netdns.names_for(self.net_store, net),
                                    upstreams=netdns.host_nameservers(netdns.read_host_resolv()))
        except NetworkError as e:
            print(f"network {net.name}: no name service: {e}", flush=True)
            r = None
        else:
            for obj in r.selectables():
                self.sel.register(obj, selectors.EVENT_READ, ("netsock", obj))
        self.responders[net.id] = r

    def on_netsock(self, _fileobj, obj) -> None:
        obj.on_readable()

    def refresh_names(self, network_id: str) -> None:
        """The names a network's responder answers, after a container joined or left it."""
        from ..network import dns as netdns

        net, r = self.networks_up.get(network_id), self.responders.get(network_id)
        if net is None or r is None or not net.dns:
            return                          # the default bridge resolves no names (as Docker's): nothing to do
        r.set_names(netdns.names_for(self.net_store, net))

    def close_network_service(self, network_id: str) -> None:
        self.networks_up.pop(network_id, None)
        r = self.responders.pop(network_id, None)
        if r is not None:
            self.unwatch_and_close(r, r.selectables())

    def unwatch_and_close(self, service, selectables) -> None:
        """Take a responder's or a proxy's sockets out of the loop, then close it."""
        for obj in selectables:
            try:
                self.sel.unregister(obj)
            except (KeyError, ValueError):
                pass
        service.close()

    def resume_networks(self) -> None:
        """At start-up: sweep what a crashed supervisor left, and serve names
        again on the networks adopted containers are on."""
        if not (self.data / "network").exists():
            return
        self.sweep_networks()
        live = self.net_store.attachments()
        in_use = {a.network_id for a in live}
        for net in self.net_store.networks():
            if net.id in in_use:
                try:
                    self.ensure_network(net)
                except EngineError as e:
                    print(f"network {net.name}: {e}", flush=True)
        for att in live:                    # adopted containers: their ports on loopback again
            c = self.containers.get(att.container_id)
            if c is not None:
                try:
                    self.open_proxies(c, att)
                except EngineError as e:
                    print(f"container {c.name}: {e}", flush=True)

    def stop_network_services(self) -> None:
        for cid in list(self.proxies):
            self.close_proxies(cid)
        for network_id in list(self.responders):
            self.close_network_service(network_id)

    def network_timers(self) -> None:
        for r in self.responders.values():
            if r is not None:
                r.expire()
        for proxies in self.proxies.values():
            for proxy in proxies:
                proxy.expire()

    # -- checks before anything is made -----------------------------------------------------
    def check_network_config(self, cfg: ContainerConfig) -> None:
        """``run``/``create``: the network exists, an internal one publishes
        nothing, the host ports named are free -- refused here, with nothing created."""
        if not cfg.joins_network():
            return
        from ..network import NetworkError, ipam

        if self.rootless:
            return                          # decided at the start (rootless_net.py): no lease, no rule
        if cfg.network != ipam.DEFAULT_NETWORK:
            net = self.network_named(cfg.network)
            if cfg.publish and net.internal:
                raise InvalidArgument(f"network {net.name} is internal: it cannot publish ports")
        named = [p for p in map(ipam.parse_publish, cfg.publish) if p["host_port"]]
        if named:                           # (a free port is found for the others at the start)
            try:
                ipam.check_ports(self.net_store, named)
            except NetworkError as e:
                raise InvalidArgument(str(e)) from None

    # -- a container's start ----------------------------------------------------------------
    def plug_in(self, c: Container, transcript) -> dict | None:
        """Make the container's network namespace and plug it into its network:
        returns the ChildSpec's ``join_ns["net"]`` (the namespace as an fd the
        child inherits), or None where the default network cannot be made
        (then the container gets a loopback only, with a warning). Whatever
        fails, nothing is left: no lease, no veth."""
        from ..network import NetworkError, bridge, ipam
        from ..network import dns as netdns

        cfg = c.config
        self.unplug(c)                      # a previous run's leftovers (a crash): made anew
        try:
            net = self.network_named(cfg.network)
            self.ensure_network(net)
        except NetworkError as e:
            if cfg.network != ipam.DEFAULT_NETWORK:
                raise InvalidArgument(str(e)) from None
            c.warnings.append(f"no network for this container ({e}): it has a loopback device only, "
                              "as with --network none (`container-lab doctor` says more)")
            return None
        ports = [ipam.parse_publish(p) for p in cfg.publish] + self.exposed_ports(c)
        transcript.stage("network", f"Give the container a network: a veth pair to the bridge of network {net.name}")
        store = self.net_store
        try:
            att = ipam.lease(store, net, c.id, name=c.name, aliases=list(cfg.network_aliases), ip=cfg.ip,
                             ports=ports)
        except NetworkError as e:
            raise InvalidArgument(str(e)) from None
        fd = -1
        try:
            fd = self.new_netns()
            transcript.op("unshare", "ip netns add NS  # a new network namespace, held open by the engine",
                          flags=["CLONE_NEWNET"], by="supervisor")
            for shell, fields in plug_ops(store, net, att):
                transcript.op("netlink" if shell.startswith("ip ") else "nft", shell, by="supervisor", **fields)
            try:
                bridge.attach(store, net, att, netns_fd=fd)
            except NetworkError as e:
                if "is missing" not in str(e):
                    raise
                self.networks_up.pop(net.id, None)      # someone deleted the bridge: made again
                self.ensure_network(net)
                bridge.attach(store, net, att, netns_fd=fd)
            (c.dir / "hosts").write_text(netdns.hosts_file(att, c.process["hostname"]))
            (c.dir / "resolv.conf").write_text(netdns.resolv_conf(net, netdns.read_host_resolv()))
        except BaseException as e:
            if fd >= 0:
                os.close(fd)
            try:
                ipam.release(store, att)
            except OSError:
                pass
            if isinstance(e, NetworkError):
                raise InvalidArgument(str(e)) from None
            raise
        self.refresh_names(net.id)
        try:
            self.open_proxies(c, att)
        except NetworkError as e:
            self.unplug(c)
            os.close(fd)
            raise InvalidArgument(str(e)) from None
        return {"fd": fd, "path": "/run/netns/NS", "network": net.name, "made": True}

    def open_proxies(self, c: Container, att) -> None:
        """A userland proxy per port published on every address or on loopback:
        the host's own connections to 127.0.0.1:PORT, which no DNAT rule can
        take to a container, reach it through the proxy (as docker-proxy).
        Bound to every address, a proxy also keeps the port the container's."""
        from ..network.proxy import PortProxy

        for p in att.ports:
            host_ip = p["host_ip"]
            if host_ip and not host_ip.startswith("127."):
                continue                    # a host address of its own: the DNAT rules answer there
            proxy = PortProxy(host_ip or "0.0.0.0", p["host_port"], p["proto"], att.address, p["container_port"])
            self.proxies.setdefault(c.id, []).append(proxy)
            self.sel.register(proxy, selectors.EVENT_READ, ("netsock", proxy))

    def close_proxies(self, container_id: str) -> None:
        for proxy in self.proxies.pop(container_id, []):
            self.unwatch_and_close(proxy, [proxy])

    def new_netns(self) -> int:
        """A new network namespace, as an fd: made on this thread and left
        again at once (a namespace lives while an fd or a process holds it)."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            self.kernel.unshare(sc.CLONE_NEWNET)
            try:
                return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            finally:
                self.kernel.setns(home, sc.CLONE_NEWNET)
        finally:
            os.close(home)

    def exposed_ports(self, c: Container) -> list:
        """``-P``: each port the image exposes, on a free host port."""
        from ..network.records import PortRecord

        if not c.config.publish_all:
            return []
        out = []
        for key in (c.image.get("exposed") or []):
            port, _, proto = str(key).partition("/")
            if port.isdigit() and 0 < int(port) < 65536 and (proto or "tcp") in ("tcp", "udp"):
                out.append(PortRecord(host_ip="", host_port=0, container_port=int(port), proto=proto or "tcp"))
        return out

    def unplug(self, c: Container) -> None:
        """Every attachment of ``c``: proxies, port elements, veth, lease (idempotent)."""
        from ..network import bridge

        if self.rootless:
            self.stop_pasta(c)
            return
        self.close_proxies(c.id)
        if not c.config.joins_network():
            return                          # (network connect is refused to these: they have none)
        store = self.net_store
        if not store.attachments_dir.exists():
            return
        # Its processes are gone (or were never made): the kernel removes each veth pair with the
        # namespace, so only the rules and the lease are ours to remove (see bridge.detach).
        for att in store.attachments(container_id=c.id):
            try:
                bridge.teardown(store, att, delete_link=False)
            except EngineError as e:
                print(f"container {c.id[:12]}: network teardown failed: {e}", flush=True)
            self.refresh_names(att.network_id)

    def sweep_networks(self) -> dict:
        """After a crash (start-up) and in gc: leases of containers no longer
        running, links and rules no record explains."""
        from ..network import sweep

        store = self.net_store
        if not store.root.exists():
            return {}
        running = {cid for cid, c in self.containers.items() if c.status == "running" or c.starting}
        try:
            return sweep.sweep(store, alive=lambda att: att.container_id in running)
        except EngineError as e:
            print(f"network sweep failed: {e}", flush=True)
            return {}


def plug_ops(store, net, att) -> list[tuple[str, dict]]:
    """What :func:`engine.network.bridge.attach` does, as shell commands, for the transcript."""
    from ..network import bridge

    ops = [(f"ip link add {att.veth} type veth peer name {att.ifname} address {att.mac} netns NS",
            {"device": att.veth, "peer": att.ifname}),
           (f"ip link set {att.veth} master {net.bridge} up", {"device": att.veth, "master": net.bridge}),
           (f"ip -n NS addr add {att.address}/{att.prefixlen} dev {att.ifname}", {"address": att.address}),
           (f"ip -n NS link set {att.ifname} up", {"device": att.ifname})]
    if not net.internal and att.default_route:
        ops.append((f"ip -n NS route add default via {att.gateway}", {"gateway": att.gateway}))
    for m, k, v in bridge._port_elements(att):
        ops.append((f"nft add element inet {store.table} {m} '{{ {k} : {v} }}'", {"map": m}))
    return ops


def remove_all_networks(data: Path) -> list[str]:
    """Every network of a data directory, its bridge, rules and records: for a
    test session or a sandbox that is thrown away whole (its supervisor has
    stopped). Returns the names removed."""
    from ..network import Store, bridge, sweep

    root = data / "network"
    if not root.exists():
        return []
    store = Store(root, table=_table_for(data))
    with store.lock():
        for att in store.attachments():
            bridge.teardown(store, att)
        gone = []
        for net in store.networks():
            bridge.remove_network(store, net)
            store.delete_network_record(net)
            gone.append(net.name)
    sweep.sweep(store)
    return gone
