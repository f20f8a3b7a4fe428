"""The bridge driver: a Linux bridge per network, a veth pair per container, NAT and ports in nftables.

What ``docker run`` does for ``--network bridge``, step by step, with the
shell command that does the same on each line::

    ip link add cl-3f2a9b10 address 02:42:ac:12:00:01 type bridge  # ensure_network: the network's switch
    ip addr add 172.18.0.1/16 dev cl-3f2a9b10              #   its gateway address, on the host
    ip link set cl-3f2a9b10 up
    sysctl -w net.ipv4.ip_forward=1                        #   the host may route for containers
    nft -f table.nft                                       #   NAT out, isolation (below)

    ip link add vcl1a2b3c4d type veth peer name eth0 \\     # attach: a virtual cable, one end
         address 02:42:ac:12:00:02 netns PID              #   already inside the container
    ip link set vcl1a2b3c4d master cl-3f2a9b10 up          #   the other end plugged into the bridge
    nsenter -t PID -n ip addr add 172.18.0.2/16 dev eth0   #   inside: the address,
    nsenter -t PID -n ip link set eth0 up                  #   up,
    nsenter -t PID -n ip route add default via 172.18.0.1  #   and the way out: the bridge's address
    nft add element inet container_lab ports_any '{ tcp . 8080 : 172.18.0.2 . 80 }'   # -p 8080:80

    ip link del vcl1a2b3c4d                                # detach: deleting one end deletes both

The links are made over a NETLINK_ROUTE socket with :class:`.rtnl.Rtnl` --
the netlink messages ``ip`` itself sends, each acknowledged by the kernel.
The pair is made in one request, with its host end already on the bridge
and up and its ``eth0`` end made directly in the container's namespace (its
name is never seen in the host's); one more sets the alias that marks the
host end as ours (the kernel takes none when it makes a link). Inside, five:
``lo`` up, ``eth0``'s index, its address, up (a veth end cannot be made up
before its peer exists), the route. A netlink socket talks to the namespace
it was made in, so the calling thread joins the container's namespace with
``setns(2)`` (namespace membership is per thread) only to make one, goes
back at once, and sends the requests from the host -- no thread started,
no process forked.

**Firewall rules** live in one nftables table of our own, ``inet
container_lab`` (:data:`.records.DEFAULT_TABLE`); nothing else on the host is
touched, and deleting the table removes every rule we ever added. It is
written as an ``nft`` script on stdin -- exactly what ``nft -f`` reads --
so each change is one atomic transaction. Per-network and per-port state
sits in *sets and maps* rather than in rules, so adding or removing it is
adding or deleting one element by its key, never hunting for a rule's
handle::

    map ports_any  { tcp . 8080 : 172.18.0.2 . 80 }           # -p 8080:80
    map ports_ip   { 127.0.0.1 . tcp . 8081 : 172.18.0.3 . 80 } # -p 127.0.0.1:8081:80
    chain prerouting  (nat)  fib daddr type local dnat ip to ... map @ports_any    # from other hosts
    chain output     (nat)   same, for the host's own connections (not to 127.0.0.0/8)
    chain postrouting (nat)  iifname vmap @masq_from  -> chain nat-cl-XXXX:
                               ip saddr SUBNET oifname != cl-XXXX masquerade     # NAT out
                               ip saddr SUBNET oifname cl-XXXX ct status dnat masquerade  # hairpin
    chain forward  (filter)  iifname vmap @forward_from -> chain fwd-cl-XXXX:
                               oifname cl-XXXX return; oifname @bridges drop     # networks isolated
                             oifname @internal drop                               # --internal: no way in or out

**br_netfilter.** When that module is loaded (``bridge-nf-call-iptables``
= 1, as Docker and Kubernetes hosts often have it), packets *bridged*
between two containers also pass the IPv4 hooks, with the bridge as both
``iifname`` and ``oifname`` -- the ``return`` in ``fwd-cl-XXXX`` lets them
through -- and a hairpin connection is bridged and un-NAT-ed by conntrack on
the bridge itself, so the ``ct status dnat masquerade`` rule is not needed
there and the server sees the client's own address.

**127.0.0.1.** A published port reached at 127.0.0.1 cannot be DNAT-ed to a
container without ``route_localnet=1`` (which lets martian packets through
and is refused here). Docker runs a small userland proxy (``docker-proxy``)
that listens on the host port and copies bytes; ours is
:class:`.proxy.PortProxy`, run by the supervisor -- the ``output`` chain
leaves 127.0.0.0/8 alone so the proxy owns it.

**IPv4 forwarding** (``net.ipv4.ip_forward``) is host-wide. Docker turns it
on and never back off; so does :func:`ensure_network` for a network that is
not internal. It is the only setting outside our own objects we change.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from collections.abc import Callable

from .records import Attachment, Network, NetworkError, Store, mac_for
from .rtnl import Rtnl

IP_FORWARD = "/proc/sys/net/ipv4/ip_forward"
NFT_TIMEOUT = 10.0


# ---- nftables -------------------------------------------------------------------------------

def nft(script: str) -> None:
    """Run an nft script (what ``nft -f FILE`` reads) as one transaction."""
    try:
        done = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True, timeout=NFT_TIMEOUT)
    except FileNotFoundError:
        raise NetworkError("the nft command is missing: install nftables") from None
    except subprocess.TimeoutExpired:
        raise NetworkError(f"nft did not answer within {NFT_TIMEOUT:g} s") from None
    if done.returncode != 0:
        first = next((line for line in done.stderr.splitlines() if "Error" in line), done.stderr.strip())
        raise NetworkError(f"nft refused the rules: {first.strip()}")


def nft_table(table: str) -> list[dict] | None:
    """``nft -j list table inet TABLE`` as a list of objects; None when the table does not exist."""
    try:
        done = subprocess.run(["nft", "-j", "list", "table", "inet", table], capture_output=True, text=True,
                              timeout=NFT_TIMEOUT)
    except FileNotFoundError:
        raise NetworkError("the nft command is missing: install nftables") from None
    except subprocess.TimeoutExpired:
        raise NetworkError(f"nft did not answer within {NFT_TIMEOUT:g} s") from None
    if done.returncode != 0:
        if "No such file or directory" in done.stderr:
            return None
        raise NetworkError(f"nft could not list table inet {table}: {done.stderr.strip().splitlines()[0]}")
    return json.loads(done.stdout).get("nftables", [])


def table_script(table: str) -> str:
    """The fixed part of our table: its sets, maps and base chains, with their rules.
    Safe to run again: ``add`` of an existing object is a no-op and the base
    chains are flushed before their rules are added, in the same transaction."""
    t = f"inet {table}"
    return f"""\
add table {t}
add map {t} ports_any {{ type inet_proto . inet_service : ipv4_addr . inet_service; }}
add map {t} ports_ip {{ type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }}
add set {t} bridges {{ type ifname; }}
add set {t} internal {{ type ifname; }}
add map {t} masq_from {{ type ifname : verdict; }}
add map {t} forward_from {{ type ifname : verdict; }}
add chain {t} prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}
add chain {t} output {{ type nat hook output priority -100; policy accept; }}
add chain {t} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}
add chain {t} forward {{ type filter hook forward priority filter; policy accept; }}
flush chain {t} prerouting
add rule {t} prerouting fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @ports_ip
add rule {t} prerouting fib daddr type local dnat ip to meta l4proto . th dport map @ports_any
flush chain {t} output
add rule {t} output ip daddr != 127.0.0.0/8 fib daddr type local dnat ip to ip daddr . meta l4proto . th dport map @ports_ip
add rule {t} output ip daddr != 127.0.0.0/8 fib daddr type local dnat ip to meta l4proto . th dport map @ports_any
flush chain {t} postrouting
add rule {t} postrouting iifname vmap @masq_from
flush chain {t} forward
add rule {t} forward iifname vmap @forward_from
add rule {t} forward oifname @internal drop
"""


def network_script(table: str, net: Network) -> str:
    """A network's own chains and elements (idempotent, as :func:`table_script`)."""
    t, br = f"inet {table}", net.bridge
    lines = [f"add chain {t} nat-{br}", f"flush chain {t} nat-{br}",
             f"add chain {t} fwd-{br}", f"flush chain {t} fwd-{br}",
             f'add rule {t} fwd-{br} oifname "{br}" return',
             f"add rule {t} fwd-{br} oifname @bridges drop",
             f'add element {t} bridges {{ "{br}" }}',
             f'add element {t} forward_from {{ "{br}" : jump fwd-{br} }}']
    if net.internal:
        lines += [f'add rule {t} fwd-{br} drop', f'add element {t} internal {{ "{br}" }}']
    else:
        lines += [f'add rule {t} nat-{br} ip saddr {net.subnet} oifname != "{br}" masquerade',
                  f'add rule {t} nat-{br} ip saddr {net.subnet} oifname "{br}" ct status dnat masquerade',
                  f'add element {t} masq_from {{ "{br}" : jump nat-{br} }}']
    return "\n".join(lines) + "\n"


def _port_elements(att: Attachment) -> list[tuple[str, str, str]]:
    """(map, key, value) of each published port of ``att``, in nft syntax."""
    out = []
    for p in att.ports:
        value = f"{att.address} . {p['container_port']}"
        if p["host_ip"]:
            out.append(("ports_ip", f"{p['host_ip']} . {p['proto']} . {p['host_port']}", value))
        else:
            out.append(("ports_any", f"{p['proto']} . {p['host_port']}", value))
    return out


def _existing(objects: list[dict]) -> tuple[set[str], dict[str, set[str]]]:
    """Chains and, per set or map, the keys of its elements (rendered as nft text) in a JSON listing."""
    chains: set[str] = set()
    elements: dict[str, set[str]] = {}
    for obj in objects:
        if "chain" in obj:
            chains.add(obj["chain"]["name"])
        for kind in ("set", "map"):
            if kind in obj:
                keys = elements.setdefault(obj[kind]["name"], set())
                for elem in obj[kind].get("elem", []):
                    key = elem[0] if kind == "map" else elem
                    keys.add(_render(key))
    return chains, elements


def _render(key) -> str:
    if isinstance(key, dict) and "concat" in key:
        return " . ".join(_render(k) for k in key["concat"])
    if isinstance(key, dict) and "elem" in key:            # an element with options (timeout, comment)
        return _render(key["elem"]["val"])
    return str(key)


# ---- netlink helpers ------------------------------------------------------------------------

def _ipr():
    """pyroute2's ``IPRoute``, for the crash sweep's dump of every link (not on a start's path)."""
    try:
        from pyroute2 import IPRoute
    except ImportError as e:
        raise NetworkError(f"pyroute2 is not installed ({e})") from None
    return IPRoute()


def _in_netns(fd: int, work: Callable[[], object]) -> object:
    """Run ``work()`` in the network namespace ``fd`` refers to, and come back.

    setns(2) with CLONE_NEWNET moves only the calling *thread*, so the
    caller's thread joins the namespace, works (a netlink socket made now
    stays in that namespace), and returns to its own in a ``finally`` --
    no thread to start, no process to fork. If going back ever failed, the
    thread would be stranded in the container's namespace: that is raised as
    a fatal error rather than hidden."""
    from ..syscalls import NAMESPACE_FLAGS, Syscalls

    kernel = Syscalls()
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        kernel.setns(fd, NAMESPACE_FLAGS["net"])
        try:
            return work()
        finally:
            try:
                kernel.setns(home, NAMESPACE_FLAGS["net"])
            except OSError as e:
                raise SystemExit(f"fatal: could not return to the host's network namespace: {e}") from None
    finally:
        os.close(home)


def enable_ip_forwarding() -> bool:
    """Turn on IPv4 forwarding, as Docker does; returns whether it was already on."""
    with open(IP_FORWARD) as f:
        was = f.read().strip() == "1"
    if not was:
        with open(IP_FORWARD, "w") as f:
            f.write("1")
    return was


# ---- networks -------------------------------------------------------------------------------

def ensure_network(store: Store, net: Network) -> None:
    """Make the kernel match the network record: the bridge with its gateway
    address, up; forwarding on (unless internal); our table and the
    network's chains and elements. Idempotent: run it before every attach."""
    try:
        with Rtnl() as rt:
            index = rt.link_index(net.bridge)
            if index is None:
                try:
                    # A MAC of its own, set once: left to itself a bridge takes the lowest MAC
                    # of its ports, so it would change as containers come and go, and every
                    # container's ARP entry for the gateway would go stale for seconds.
                    rt.add_link(net.bridge, "bridge", address=mac_for(net.gateway))
                except FileExistsError:
                    pass                            # made meanwhile by another engine
                index = rt.link_index(net.bridge)
                if index is None:
                    raise OSError(errno.ENODEV, "made, then gone at once")
            rt.set_link(index, alias=f"{store.owner} network={net.name}")
            try:
                rt.add_address(index, net.gateway, net.prefixlen)
            except FileExistsError:
                pass
            rt.set_link(index, up=True)
    except OSError as e:        # netlink's reason, in one line
        raise NetworkError(f"could not set up bridge {net.bridge} for network {net.name!r}: {e}") from None
    if not net.internal:
        enable_ip_forwarding()
    nft(table_script(store.table) + network_script(store.table, net))


def remove_network(store: Store, net: Network) -> None:
    """Undo :func:`ensure_network`: the network's rules and elements, then the
    bridge. Idempotent; the table goes too once no bridge of ours is left in it.
    Without nft there can be no rules of ours: the bridge still goes."""
    try:
        objects = nft_table(store.table)
    except NetworkError:
        if shutil.which("nft"):
            raise
        objects = None
    if objects is not None:
        t, br = f"inet {store.table}", net.bridge
        chains, elements = _existing(objects)
        script = []
        for name in ("masq_from", "forward_from", "bridges", "internal"):
            if br in elements.get(name, set()) or f'"{br}"' in elements.get(name, set()):
                script.append(f'delete element {t} {name} {{ "{br}" }}')
        for chain in (f"nat-{br}", f"fwd-{br}"):
            if chain in chains:
                script.append(f"delete chain {t} {chain}")
        left = elements.get("bridges", set()) - {br, f'"{br}"'}
        if not left:
            script = [f"delete table {t}"]
        if script:
            nft("\n".join(script) + "\n")
    _delete_link(net.bridge)


def destroy_network(store: Store, name: str) -> Network:
    """``network rm NAME``: refused while a container is attached; else the
    kernel side (:func:`remove_network`), then the record."""
    with store.lock():
        net = store.network(name)
        users = store.attachments(network_id=net.id)
        if users:
            raise NetworkError(f"network {net.name!r} is in use by container {users[0].name!r}: "
                               "stop it or disconnect it first")
        remove_network(store, net)
        store.delete_network_record(net)
    return net


def _delete_link(name: str, rt: Rtnl | None = None) -> bool:
    """``ip link del NAME`` (on ``rt``, or a socket of its own); False when there was no such link."""
    try:
        if rt is None:
            with Rtnl() as own:
                own.delete_link(name)
        else:
            rt.delete_link(name)
    except OSError as e:
        if e.errno in (errno.ENODEV, errno.ENOENT):
            return False
        raise NetworkError(f"could not delete link {name}: {e}") from None
    return True


# ---- containers -----------------------------------------------------------------------------

def attach(store: Store, net: Network, att: Attachment, *, pid: int | None = None,
           netns_fd: int | None = None) -> None:
    """Plug a container into ``net`` as ``att`` records: a veth pair whose
    ``eth0`` end is in the container's network namespace (given as its PID,
    or an open ``/proc/PID/ns/net`` / ``/run/netns/NAME`` fd) with the
    address, MAC and default route; the other end on the bridge; published
    ports in the table. Replaying it replaces a half-made pair."""
    if (pid is None) == (netns_fd is None):
        raise NetworkError("attach needs the container's PID or a network namespace fd, one of them")
    own_fd = -1
    if netns_fd is None:
        try:
            own_fd = netns_fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NetworkError(f"process {pid} has exited: its network namespace is gone") from None
    try:
        try:
            with Rtnl() as host:
                bridge = host.link_index(net.bridge)
                if bridge is None:
                    raise NetworkError(f"bridge {net.bridge} of network {net.name!r} is missing (ensure_network first)")

                def add() -> None:          # the pair, its host end on the bridge and up: one request
                    host.add_veth(att.veth, peer=att.ifname, peer_address=att.mac, peer_netns_fd=netns_fd,
                                  master=bridge, up=True)
                try:
                    add()
                except FileExistsError:
                    _delete_link(att.veth, host)    # a leftover of an earlier try: made anew
                    add()
                # The kernel takes no alias when it makes a link: a request of its own.
                host.set_link(name=att.veth,
                              alias=f"{store.owner} container={att.container_id[:12]} network={net.name}")
        except NetworkError:
            raise
        except Exception as e:  # noqa: BLE001
            raise NetworkError(f"could not create veth pair {att.veth} for {att.name!r}: {e}") from None

        try:
            # A socket made in the container's namespace stays there: the thread
            # joins it only to make one, and the requests go from here.
            with _in_netns(netns_fd, Rtnl) as inside:
                inside.set_link(1, up=True)                 # lo: ifindex 1 in every namespace
                eth0 = inside.link_index(att.ifname)
                if eth0 is None:
                    raise OSError(errno.ENODEV, f"no {att.ifname} in the namespace")
                inside.add_address(eth0, att.address, att.prefixlen)
                inside.set_link(eth0, up=True)              # (a veth end cannot be made up: its peer is not yet)
                if not net.internal and att.default_route:
                    inside.add_default_route(att.gateway, eth0)
        except Exception as e:  # noqa: BLE001
            _delete_link(att.veth)
            raise NetworkError(f"could not configure {att.ifname} in {att.name!r}: {e}") from None
    finally:
        if own_fd >= 0:
            os.close(own_fd)
    if att.ports:
        t = f"inet {store.table}"
        try:
            nft("".join(f"add element {t} {m} {{ {k} : {v} }}\n" for m, k, v in _port_elements(att)))
        except NetworkError:
            _delete_link(att.veth)
            raise


def detach(store: Store, att: Attachment, *, delete_link: bool = True) -> None:
    """Undo :func:`attach` (idempotent): the port elements that are there,
    then the veth pair (deleting the host end deletes both; ENODEV ignored).

    ``delete_link=False`` when the container's network namespace is going
    away anyway (its last process has exited): the kernel then removes the
    pair with the namespace, off our thread. Deleting it ourselves would
    wait for the kernel to retire the device (an RCU grace period, 10-40 ms
    on a busy machine) in the middle of the supervisor's loop."""
    if att.ports:
        t = f"inet {store.table}"
        elements = _port_elements(att)
        try:        # the usual case, in one nft run: every element is there
            nft("".join(f"delete element {t} {m} {{ {k} }}\n" for m, k, _v in elements))
        except NetworkError:        # some are gone already (a replay): delete those still there
            objects = nft_table(store.table)
            if objects is not None:
                _chains, present = _existing(objects)
                script = [f"delete element {t} {m} {{ {k} }}" for m, k, _v in elements if k in present.get(m, set())]
                if script:
                    nft("\n".join(script) + "\n")
    if delete_link:
        _delete_link(att.veth)


def teardown(store: Store, att: Attachment, *, delete_link: bool = True) -> None:
    """Everything of one attachment, kernel then record: what ``rm`` and the
    sweep call (``delete_link``: see :func:`detach`)."""
    from .ipam import release

    detach(store, att, delete_link=delete_link)
    release(store, att)
