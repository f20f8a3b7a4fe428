"""The network verbs: ``network create|ls|inspect|rm|connect|disconnect|prune`` and ``port``.

As docker's: a container runs on the default ``bridge`` network unless
``--network`` says otherwise; a network made with ``network create`` also
lets its containers find each other by name.
"""

from __future__ import annotations

import json
import sys

from .. import errors
from .output import _each, _table
from .parser import _Parser


def _add_network(sub, help_text: str) -> None:
    nw = sub.add_parser("network", help=help_text,
                        description="Manage networks. Containers on one network reach each other (by name, on "
                                    "a network made with `network create`); networks are kept apart.")
    nsub = nw.add_subparsers(dest="network_verb", metavar="VERB", parser_class=_Parser, required=True)
    cr = nsub.add_parser("create", help="create a network",
                         description="Create a network: a Linux bridge with a subnet of its own, a name "
                                     "service for its containers, NAT out (unless --internal).")
    cr.add_argument("--subnet", metavar="CIDR", help="its IPv4 subnet, e.g. 10.10.0.0/24 (default: a free one)")
    cr.add_argument("--internal", action="store_true", help="no way out of the network, no published ports")
    cr.add_argument("-d", "--driver", default="bridge", choices=["bridge"], help="only bridge is available")
    cr.add_argument("name", metavar="NAME")
    cr.set_defaults(func=cmd_network_create)
    ls = nsub.add_parser("ls", aliases=["list"], help="list networks", description="List networks.")
    ls.add_argument("-q", "--quiet", action="store_true", help="only print names")
    ls.set_defaults(func=cmd_network_ls)
    ins = nsub.add_parser("inspect", help="show networks as JSON, with their containers",
                          description="Show networks as JSON: subnet, gateway, bridge, and each container "
                                      "with its address.")
    ins.add_argument("names", nargs="+", metavar="NETWORK")
    ins.set_defaults(func=cmd_network_inspect)
    rm = nsub.add_parser("rm", aliases=["remove"], help="remove networks",
                         description="Remove networks (refused while a container is on one).")
    rm.add_argument("names", nargs="+", metavar="NETWORK")
    rm.set_defaults(func=cmd_network_rm)
    co = nsub.add_parser("connect", help="connect a running container to a network",
                         description="Connect a running container to one more network (as eth1, eth2 ...).")
    co.add_argument("--alias", action="append", default=[], metavar="NAME", help="another name for it there")
    co.add_argument("--ip", metavar="ADDRESS", help="its address there")
    co.add_argument("network", metavar="NETWORK")
    co.add_argument("container", metavar="CONTAINER")
    co.set_defaults(func=cmd_network_connect)
    dc = nsub.add_parser("disconnect", help="disconnect a container from a network",
                         description="Take a container off a network: its name no longer resolves there.")
    dc.add_argument("-f", "--force", action="store_true", help="accepted for docker's sake")
    dc.add_argument("network", metavar="NETWORK")
    dc.add_argument("container", metavar="CONTAINER")
    dc.set_defaults(func=cmd_network_disconnect)
    pr = nsub.add_parser("prune", help="remove networks no container uses",
                         description="Remove every network made with `network create` that no container is on.")
    pr.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    pr.set_defaults(func=cmd_network_prune)


def _add_port(sub, help_text: str) -> None:
    p = sub.add_parser("port", help=help_text,
                       description="List a container's published ports: CONTAINER_PORT/PROTO -> HOST_IP:HOST_PORT.")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("port", nargs="?", metavar="PORT[/PROTO]", help="only this container port")
    p.set_defaults(func=cmd_port)


def cmd_network_create(args, client) -> int:
    net = client.network_create(args.name, subnet=args.subnet, internal=args.internal)
    print(net["Id"])
    return 0


def cmd_network_ls(args, client) -> int:
    nets = client.networks()
    if args.quiet:
        for n in nets:
            print(n["Name"])
        return 0
    rows = [("NETWORK ID", "NAME", "DRIVER", "SUBNET", "GATEWAY", "CONTAINERS")]
    for n in nets:
        cfg = (n["IPAM"]["Config"] or [{}])[0]
        rows.append((n["Id"][:12], n["Name"], n["Driver"] + (" (internal)" if n["Internal"] else ""),
                     cfg.get("Subnet", ""), cfg.get("Gateway", ""), str(n["Containers"])))
    _table(rows)
    return 0


def cmd_network_inspect(args, client) -> int:
    out, code = [], 0
    for name in args.names:
        try:
            out.append(client.network_inspect(name))
        except errors.EngineError as e:
            print(f"Error: {e}", file=sys.stderr)
            code = 1
    print(json.dumps(out, indent=4))
    return code


def cmd_network_rm(args, client) -> int:
    return _each(args.names, client.network_remove)


def cmd_network_connect(args, client) -> int:
    client.network_connect(args.network, args.container, aliases=args.alias, ip=args.ip)
    return 0


def cmd_network_disconnect(args, client) -> int:
    client.network_disconnect(args.network, args.container)
    return 0


def cmd_network_prune(args, client) -> int:
    removed = client.network_prune()
    if removed:
        print("Deleted Networks:")
        for name in removed:
            print(name)
    return 0


def port_lines(ports: list[dict], only: str | None = None) -> list[str]:
    """``80/tcp -> 0.0.0.0:8080``, one line per published port (docker's ``port`` format)."""
    lines = []
    want = None
    if only:
        number, _, proto = only.partition("/")
        want = (number, proto or "tcp")
    for p in sorted(ports, key=lambda p: (p["container_port"], p["proto"], p["host_port"])):
        if want and (str(p["container_port"]), p["proto"]) != want:
            continue
        host = f"{p['host_ip'] or '0.0.0.0'}:{p['host_port']}"
        lines.append(host if want else f"{p['container_port']}/{p['proto']} -> {host}")
    return lines


def cmd_port(args, client) -> int:
    ports = client.port(args.container)
    lines = port_lines(ports, args.port)
    if args.port and not lines:
        print(f"Error: no public port '{args.port}' published for {args.container}", file=sys.stderr)
        return 1
    for line in lines:
        print(line)
    return 0


def ports_column(ports: list[dict]) -> str:
    """``ps``'s PORTS: ``0.0.0.0:8080->80/tcp, 127.0.0.1:8081->81/tcp``."""
    return ", ".join(f"{p['host_ip'] or '0.0.0.0'}:{p['host_port']}->{p['container_port']}/{p['proto']}"
                     for p in sorted(ports, key=lambda p: (p["container_port"], p["host_port"])))
