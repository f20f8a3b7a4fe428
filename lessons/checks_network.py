"""The network check kinds: ``address-assigned``, ``same-network``,
``port-published`` (see :mod:`lessons.checks` for what each takes); they
register themselves with :func:`lessons.checks.check` when imported.
"""

from __future__ import annotations

from .checks import BOOL, INT, STR, Param, Result, check
from .i18n import msg


def _networks_of(rec: dict) -> dict[str, dict]:
    """The networks a container is on now, as ``inspect``'s NetworkSettings.Networks (with addresses)."""
    nets = (rec.get("NetworkSettings") or {}).get("Networks") or {}
    return {name: n for name, n in nets.items() if n.get("IPAddress")}


def _running_record(view, name: str, lang: str) -> tuple[dict | None, str | None]:
    rec = view.container(name)
    if rec is None:
        return None, msg(lang, "saw.no_such", name=name)
    if rec.get("status") != "running":
        return None, msg(lang, "saw.not_running", name=name)
    return rec, None


@check("address-assigned", container=Param(STR, required=True), network=Param(STR))
def _address_assigned(view, cursor, args, lang) -> Result:
    name, network = args["container"], args.get("network", "bridge")
    expected = msg(lang, "exp.address", name=name, network=network)
    rec, why = _running_record(view, name, lang)
    if rec is None:
        return Result("address-assigned", False, why, expected)
    nets = _networks_of(rec)
    if network in nets:
        return Result("address-assigned", True, msg(lang, "saw.address", name=name, network=network,
                                                    address=nets[network]["IPAddress"]), expected)
    mode = (rec.get("config") or {}).get("network") or (rec.get("NetworkSettings") or {}).get("NetworkMode", "")
    saw = msg(lang, "saw.address.elsewhere", name=name, networks=", ".join(sorted(nets))) if nets else \
        msg(lang, "saw.address.none", name=name, mode=mode or "none")
    return Result("address-assigned", False, saw, expected)


@check("same-network", container=Param(STR, required=True), other=Param(STR, required=True), network=Param(STR),
       shared=Param(BOOL))
def _same_network(view, cursor, args, lang) -> Result:
    a, b, network, shared = args["container"], args["other"], args.get("network"), args.get("shared", True)
    how = "shared" if shared else "apart"
    expected = msg(lang, f"exp.net.{how}.on", name=a, other=b, network=network) if network else \
        msg(lang, f"exp.net.{how}", name=a, other=b)
    recs = []
    for name in (a, b):
        rec, why = _running_record(view, name, lang)
        if rec is None:
            return Result("same-network", False, why, expected)
        recs.append(_networks_of(rec))
    common = sorted(set(recs[0]) & set(recs[1]))
    together = network in common if network else bool(common)
    if common:
        saw = msg(lang, "saw.net.shared", name=a, other=b, networks=", ".join(common))
    else:
        saw = msg(lang, "saw.net.apart", name=a, other=b, mine=", ".join(sorted(recs[0])) or "-",
                  theirs=", ".join(sorted(recs[1])) or "-")
    return Result("same-network", together == shared, saw, expected)


@check("port-published", container=Param(STR, required=True), port=Param(INT, required=True),
       proto=Param(STR, choices=("tcp", "udp")), reachable=Param(BOOL))
def _port_published(view, cursor, args, lang) -> Result:
    """Container port P is published on a host port; for TCP (unless
    ``reachable = false``) the checker connects to it from the host."""
    import socket

    name, port, proto = args["container"], args["port"], args.get("proto", "tcp")
    expected = msg(lang, "exp.port", name=name, port=port, proto=proto)
    rec, why = _running_record(view, name, lang)
    if rec is None:
        return Result("port-published", False, why, expected)
    settings = rec.get("NetworkSettings") or {}
    bindings = (settings.get("Ports") or {}).get(f"{port}/{proto}") or []
    if not bindings:
        published = sorted(k for k, v in (settings.get("Ports") or {}).items() if v)
        return Result("port-published", False, msg(lang, "saw.port.none", name=name, port=port, proto=proto,
                                                   published=", ".join(published) or "-"), expected)
    host_ip, host_port = bindings[0].get("HostIp") or "0.0.0.0", int(bindings[0].get("HostPort") or 0)
    saw = msg(lang, "saw.port", name=name, port=port, proto=proto, host=f"{host_ip}:{host_port}")
    if proto != "tcp" or not args.get("reachable", True):
        return Result("port-published", True, saw, expected)
    # A host address that is the host's own and not loopback: the nftables DNAT
    # rule answers there (the container's gateway, the bridge's address).
    target = host_ip if host_ip not in ("0.0.0.0", "") else (settings.get("Gateway") or "127.0.0.1")
    try:
        with socket.create_connection((target, host_port), timeout=2):
            pass
    except OSError as e:
        return Result("port-published", False, msg(lang, "saw.port.closed", name=name, host=f"{target}:{host_port}",
                                                   why=e.strerror or str(e)), expected)
    return Result("port-published", True, msg(lang, "saw.port.open", name=name, port=port, proto=proto,
                                              host=f"{host_ip}:{host_port}"), expected)
