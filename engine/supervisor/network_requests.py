"""The network requests: ``network create|ls|inspect|rm|connect|disconnect|prune``
and ``port``, and what ``inspect`` (NetworkSettings), ``ps`` (PORTS) and the lab
panel show of a container's networks. The work itself is :mod:`.networks`'s.
"""

from __future__ import annotations

from ..container import Container
from ..errors import InvalidArgument
from ..network.records import bridge_name


class NetworkRequests:
    """``network create|ls|inspect|rm|connect|disconnect|prune`` and ``port``."""

    def op_network_create(self, conn, msg, fds):
        name = msg.get("name")
        if not isinstance(name, str):
            raise InvalidArgument("a network needs a name")
        from ..network import NetworkError, ipam

        if name in ("bridge", "none", "host") or name.startswith("container:"):
            if name == ipam.DEFAULT_NETWORK:
                self.network_named(name)        # made on first use anyway
            raise InvalidArgument(f"network {name} already exists (it is predefined)")
        subnet, internal = msg.get("subnet"), msg.get("internal", False)
        if subnet is not None and not isinstance(subnet, str) or not isinstance(internal, bool):
            raise InvalidArgument("subnet must be a CIDR and internal true or false")
        try:
            net = self.create_network(name, subnet=subnet, internal=internal)
        except NetworkError as e:
            raise InvalidArgument(str(e)) from None
        return {"network": self.network_info(net)}, []

    def op_network_ls(self, conn, msg, fds):
        self.network_named("bridge")            # docker always lists its default network
        return {"networks": [self.network_info(n, members=False) for n in self.net_store.networks()]}, []

    def op_network_inspect(self, conn, msg, fds):
        return {"network": self.network_info(self.network_named(str(msg.get("name")), make_default=True))}, []

    def op_network_rm(self, conn, msg, fds):
        from ..network import NetworkError, bridge, ipam

        name = str(msg.get("name"))
        if name in (ipam.DEFAULT_NETWORK, "none", "host"):
            raise InvalidArgument(f"{name} is a pre-defined network and cannot be removed")
        net = self.network_named(name)
        self.tidy_all()                                  # exits already seen release their leases first
        try:
            bridge.destroy_network(self.net_store, net.name)
        except NetworkError as e:
            raise InvalidArgument(str(e)) from None
        self.close_network_service(net.id)
        return {"name": net.name, "id": net.id}, []

    def op_network_prune(self, conn, msg, fds):
        from ..network import NetworkError, bridge, ipam

        self.tidy_all()
        removed = []
        for net in self.net_store.networks():
            if net.name == ipam.DEFAULT_NETWORK or self.net_store.attachments(network_id=net.id):
                continue
            try:
                bridge.destroy_network(self.net_store, net.name)
            except NetworkError:
                continue
            self.close_network_service(net.id)
            removed.append(net.name)
        return {"removed": removed}, []

    def op_network_connect(self, conn, msg, fds):
        """Plug a running container into one more network: ``eth1``, ``eth2`` ..."""
        from ..network import NetworkError, bridge, ipam
        from ..network import dns as netdns

        c = self.find(msg.get("container"), conn)
        net = self.network_named(str(msg.get("network")))
        if c.status != "running" or not c.pid:
            raise InvalidArgument(f"container {c.name} is not running: start it, then connect it")
        if not c.config.joins_network():
            raise InvalidArgument(f"container {c.name} runs with --network {c.config.network}: "
                                  "it cannot be connected to a network")
        aliases = msg.get("aliases") or []
        ip = msg.get("ip")
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases) or (
                ip is not None and not isinstance(ip, str)):
            raise InvalidArgument("aliases must be a list of names and ip an address")
        mine = self.net_store.attachments(container_id=c.id)
        if any(a.network_id == net.id for a in mine):
            raise InvalidArgument(f"container {c.name} is already connected to network {net.name}")
        used = {a.ifname for a in mine}
        ifname = next(f"eth{n}" for n in range(64) if f"eth{n}" not in used)
        try:
            self.ensure_network(net)
            att = ipam.lease(self.net_store, net, c.id, name=c.name, aliases=aliases, ip=ip, pid=c.pid,
                             start_ticks=c.pid_start, ifname=ifname, default_route=not mine)
            try:
                bridge.attach(self.net_store, net, att, pid=c.pid)
            except NetworkError:
                ipam.release(self.net_store, att)
                raise
        except NetworkError as e:
            raise InvalidArgument(str(e)) from None
        (c.dir / "hosts").write_text(netdns.hosts_file(self.net_store.attachments(container_id=c.id)[0],
                                                       c.process["hostname"]))
        self.refresh_names(net.id)
        self.emit("network-connect", c, network=net.name, address=att.address)
        return {"container": c.name, "network": net.name, "address": att.address, "ifname": ifname}, []

    def op_network_disconnect(self, conn, msg, fds):
        from ..network import NetworkError, bridge

        c = self.find(msg.get("container"), conn)
        net = self.network_named(str(msg.get("network")))
        att = next((a for a in self.net_store.attachments(container_id=c.id) if a.network_id == net.id), None)
        if att is None:
            raise InvalidArgument(f"container {c.name} is not connected to network {net.name}")
        try:
            bridge.teardown(self.net_store, att)
        except NetworkError as e:
            raise InvalidArgument(str(e)) from None
        self.refresh_names(net.id)
        self.emit("network-disconnect", c, network=net.name)
        return {"container": c.name, "network": net.name}, []

    def op_port(self, conn, msg, fds):
        c = self.find(msg.get("id"), conn)
        return {"name": c.name, "ports": self.ports_of(c)}, []

    # -- what inspect, ps and port show -----------------------------------------------------
    def ports_of(self, c: Container) -> list[dict]:
        if not c.config.joins_network() or c.status not in ("running", "starting"):
            return []
        return [dict(p, container_ip=a.address) for a in self.net_store.attachments(container_id=c.id)
                for p in a.ports]

    def network_settings(self, c: Container) -> dict:
        """docker inspect's ``NetworkSettings``: the first network's address at
        the top, every network under ``Networks``, ``Ports`` as docker keys them."""
        atts = self.net_store.attachments(container_id=c.id) if c.config.joins_network() and \
            c.status in ("running", "starting") and not self.bridgeless else []
        ports: dict[str, list[dict] | None] = {f"{k}": None for k in c.image.get("exposed") or []
                                               if c.config.publish_all}
        for p in [p for a in atts for p in a.ports]:
            key = f"{p['container_port']}/{p['proto']}"
            ports[key] = (ports.get(key) or []) + [{"HostIp": p["host_ip"] or "0.0.0.0",
                                                    "HostPort": str(p["host_port"])}]
        first = atts[0] if atts else None
        # Beyond docker's fields: the container's end and the host's end of its veth pair, the
        # bridge that end hangs on, and the network's other members (the lab panel draws them).
        networks = {a.network: {"NetworkID": a.network_id, "IPAddress": a.address, "IPPrefixLen": a.prefixlen,
                                "Gateway": a.gateway, "MacAddress": a.mac, "Aliases": list(a.aliases) or None,
                                "InterfaceName": a.ifname, "HostInterface": a.veth,
                                "Bridge": bridge_name(a.network_id),
                                "Peers": [{"Name": p.name, "IPAddress": p.address}
                                          for p in self.net_store.attachments(network_id=a.network_id)
                                          if p.container_id != c.id]} for a in atts}
        if not atts and c.config.joins_network():
            networks = {c.config.network: {"NetworkID": "", "IPAddress": "", "IPPrefixLen": 0, "Gateway": "",
                                           "MacAddress": "", "Aliases": list(c.config.network_aliases) or None}}
        return {"IPAddress": first.address if first else "", "IPPrefixLen": first.prefixlen if first else 0,
                "Gateway": first.gateway if first and first.default_route else "",
                "MacAddress": first.mac if first else "", "Ports": ports, "Networks": networks,
                "NetworkMode": c.config.network}

    def network_info(self, net, *, members: bool = True) -> dict:
        info = {"Name": net.name, "Id": net.id, "Driver": net.driver, "Internal": net.internal,
                "Bridge": net.bridge, "EnableDNS": net.dns, "Created": net.created,
                "IPAM": {"Config": [{"Subnet": net.subnet, "Gateway": net.gateway}]}}
        if members:
            info["Containers"] = {a.container_id: {"Name": a.name, "IPv4Address": f"{a.address}/{a.prefixlen}",
                                                   "MacAddress": a.mac, "Aliases": a.aliases,
                                                   "HostInterface": a.veth}
                                  for a in self.net_store.attachments(network_id=net.id)}
        else:
            info["Containers"] = len(self.net_store.attachments(network_id=net.id))
        return info
