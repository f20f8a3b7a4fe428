"""Rootless networking, as rootlesskit gives Docker its own.

The rootless engine can make no bridge, veth pair or nftables rule in the
host's network namespace. So when it starts it moves into a network
namespace of its own (daemon.py; its user namespace owns it), where it makes
all of them exactly as root makes them on the host -- the default bridge,
user networks with their names, NAT out, -p through nftables and the port
proxy -- and pasta (Debian's ``passt``, a user-mode network stack run as the
user) plugs that namespace into the host's network: connections out through
the user's own sockets, the host itself at pasta's gateway address.

A port published with ``-p`` is then listened on by the engine in its own
namespace; one more pasta per container, attached to that namespace with
just those ports, listens on the host and passes each connection in (pasta
cannot add ports to a running instance). It is stopped with the container.

Without pasta (or where /dev/net/tun is closed to users) the engine stays in
the host's network: a container has a loopback device only, and networks and
-p are refused in one line (:meth:`RootlessNet.bridgeless_network`).
"""

from __future__ import annotations

import os
import signal

from ..container import Container
from ..errors import InvalidArgument
from ..userns import pasta_missing, pasta_path, run_outside


def no_network(why: str | None) -> str:
    return (f"networks and published ports need pasta without root ({why or 'it could not be started'}); "
            "without it a container has a loopback device only")


class RootlessNet:
    """The supervisor's side of rootless networking (mixed into Supervisor)."""

    @property
    def bridgeless(self) -> bool:
        """Rootless in the host's network namespace: no bridge can be made."""
        return self.rootless and not self.private_net

    def bridgeless_network(self, c: Container) -> None:
        """Rootless without pasta: the default network is a loopback only;
        what needs more is refused before anything is made."""
        from ..network import ipam

        if c.config.network != ipam.DEFAULT_NETWORK or c.config.publish or c.config.publish_all:
            raise InvalidArgument(no_network(pasta_missing()))

    def publish_outside(self, c: Container) -> None:
        """Rootless: the host ports ``c`` publishes, listened on by a pasta of
        its own that passes each connection into the engine's namespace
        (where nftables and the port proxy take it on, as on root's host).
        Raises InvalidArgument with pasta's reason."""
        ports = [p for a in self.net_store.attachments(container_id=c.id) for p in a.ports if p.get("host_port")]
        if not ports or self.outside is None:
            return
        low = [p["host_port"] for p in ports if p["host_port"] < 1024]
        if low:
            raise InvalidArgument(f"host port {low[0]} is below 1024: without root only ports 1024 and up can be "
                                  "published (net.ipv4.ip_unprivileged_port_start)")
        args = [pasta_path() or "pasta", "--quiet", "-I", f"pt{c.id[:10]}", "--pid", str(c.dir / "pasta.pid")]
        for proto, flag in (("tcp", "-t"), ("udp", "-u")):
            specs = [f"{p['host_ip'] + '/' if p['host_ip'] else ''}{p['host_port']}"
                     for p in ports if p["proto"] == proto]
            args += [flag, ",".join(specs) if specs else "none"]
        args += ["-T", "none", "-U", "none", str(os.getpid())]
        try:
            r = run_outside(self.outside, args)
        except OSError as e:
            raise InvalidArgument(f"publishing ports: pasta: {e}") from None
        if r["rc"] != 0:
            why = (r["stderr"] or r["stdout"]).strip().splitlines()
            raise InvalidArgument(f"publishing ports: pasta: {why[-1] if why else 'exit ' + str(r['rc'])}")
        try:
            self.pasta_pids[c.id] = int((c.dir / "pasta.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass

    def stop_pasta(self, c: Container) -> None:
        """The pasta publishing ``c``'s ports (if any) ends with it."""
        pid = self.pasta_pids.pop(c.id, None)
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            else:
                self.reap(pid, -1)          # a daemon orphaned to us (a child subreaper): no zombie
        try:
            (c.dir / "pasta.pid").unlink()
        except OSError:
            pass
