"""Container networking as Docker's bridge driver does it: records first, then the kernel.

A container made with a new network namespace sees only ``lo``. To reach
another container, or the world, it needs a way out of its namespace. Docker
(and podman's netavark) give it one the same way:

1. a **bridge** on the host -- a virtual switch -- per network, with the
   network's *gateway* address on it (``cl-3f2a9b10``, 172.18.0.1/16);
2. per container a **veth pair** -- a virtual cable -- whose one end is moved
   into the container's namespace and renamed ``eth0`` (with an address from
   the network's subnet, a MAC derived from it and a default route via the
   gateway) and whose other end is plugged into the bridge;
3. **nftables** rules in a table of our own: masquerade (NAT) for traffic
   leaving the host, DNAT for published ports (``-p 8080:80``), and drops
   that keep networks apart;
4. a small **DNS responder** per network, so containers find each other by
   name.

The modules, each with its own explanation:

- :mod:`.records` -- a :class:`Network` and each container's
  :class:`Attachment` to it, as JSON records under a data dir (:class:`Store`);
- :mod:`.ipam`    -- which subnet a network gets, which address a container gets;
- :mod:`.bridge`  -- the kernel side: bridge, veth pair, eth0, nftables;
- :mod:`.rtnl`    -- the netlink requests :mod:`.bridge` makes (``ip link/addr/route`` as messages);
- :mod:`.dns`     -- the DNS responder, and /etc/hosts and /etc/resolv.conf;
- :mod:`.proxy`   -- published ports reached on 127.0.0.1: a userland proxy, as docker-proxy;
- :mod:`.sweep`   -- after a crash: remove whatever no live record explains.

Every step is an idempotent function of the records, so teardown can be
replayed after a crash. Nothing here imports pyroute2 or dnspython until it
is used (each costs 0.2 s or more to import).

How the supervisor uses it (it runs as root; the container's child process
makes its own network namespace in its ``namespaces`` stage)::

    store = Store(DATA_DIR / "network")                 # once
    sweep.sweep(store, alive=lambda att: att.container_id in running)   # at start-up and in gc

    # start, before forking the child: refuse bad input with nothing made
    net = store.network(name)                            # or ipam.create_network for "bridge" on first use
    att = ipam.lease(store, net, cid, name=..., aliases=..., ip=..., ports=[ipam.parse_publish(p) ...])
    write dns.hosts_file(att, hostname) and dns.resolv_conf(net, dns.read_host_resolv())
      into the container's dir, for the rootfs stage to bind-mount on /etc/hosts and /etc/resolv.conf
    # fork; then, as the child reports its namespaces stage done (start channel):
    ipam.set_pid(store, att, child_pid, start_ticks)
    bridge.ensure_network(store, net)                    # once per network per supervisor life is enough
    bridge.attach(store, net, att, pid=child_pid)
    responder.set_names(dns.names_for(store, net))       # one DnsResponder(net.gateway) per network in use,
                                                         # its selectables() in the select loop, expire() each tick
    # and tell the child to go on: it must not exec before attach has returned

    # rm / exit / network disconnect:
    bridge.teardown(store, att); responder.set_names(...)
    # network rm:
    bridge.destroy_network(store, name)                  # refused while a container is attached
"""

from .records import Attachment, Network, NetworkError, Store

__all__ = ["Attachment", "Network", "NetworkError", "Store"]
