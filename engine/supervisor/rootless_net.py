"""Rootless networking: a container's network through pasta (Debian's ``passt``).

The rootless engine can make no bridge, veth pair or nftables rule on the
host. It gives each container on the default network a network namespace of
its own, as root does, and asks pasta -- a user-mode network stack, run as
the user -- to plug it in: an ``eth0`` with an address and a default route,
connections out carried through the user's own sockets, and each port
published with ``-p`` listened on by pasta on the host and passed inside.
This is what podman does without root.

The child asks for it once its namespaces exist (``{"netns": true}`` on the
start channel, before anything runs inside); pasta is started then, and
stopped when the container's first process has exited. Without pasta the
container has a loopback device only (as ``--network none``), and ``-p`` is
refused in one line. Named networks (``network create``) need root.
"""

from __future__ import annotations

import os
import signal
import socket

from ..container import Container
from ..errors import InvalidArgument
from ..userns import pasta_missing, pasta_path, run_outside

# Without root no bridge, veth or nftables rule can be made on the host.
ROOTLESS = ("networks need root: without it a container is on the default network only (through pasta), or "
            "on --network none or host; run container-lab as root for named networks")



class RootlessNet:
    """The supervisor's side of rootless networking (mixed into Supervisor)."""

    def rootless_network(self, c: Container) -> bool:
        """Decide ``c``'s network before it is forked: True when pasta will
        plug it in (the child then asks, see :meth:`start_pasta`). Refuses
        what rootless cannot do, in one line."""
        from ..network import NetworkError, ipam

        cfg = c.config
        if cfg.network != ipam.DEFAULT_NETWORK:
            raise InvalidArgument(ROOTLESS)
        try:
            ports = [ipam.parse_publish(p) for p in cfg.publish] + self.exposed_ports(c)
        except NetworkError as e:
            raise InvalidArgument(str(e)) from None
        if (why := pasta_missing()) is not None or self.outside is None:
            if ports:
                raise InvalidArgument(f"publishing ports (-p) without root needs pasta: {why or 'not found'}; "
                                      "without it a container has a loopback device only")
            return False
        published = []
        for p in ports:
            port = p["host_port"] or _free_port(p["host_ip"], p["proto"])
            if port < 1024:
                raise InvalidArgument(f"host port {port} is below 1024: without root only ports 1024 and up "
                                      "can be published (net.ipv4.ip_unprivileged_port_start)")
            published.append({**p, "host_port": port})
        self.pasta_ports[c.id] = published
        return True

    def start_pasta(self, c: Container, pid: int) -> dict:
        """Plug the network namespace of ``pid`` (the container's first
        process, its namespaces made) in with pasta: the channel's answer."""
        ports = self.pasta_ports.get(c.id, [])
        args = [pasta_path() or "pasta", "--config-net", "--quiet", "--pid", str(c.dir / "pasta.pid")]
        for proto, flag in (("tcp", "-t"), ("udp", "-u")):
            specs = [f"{p['host_ip'] + '/' if p['host_ip'] else ''}{p['host_port']}:{p['container_port']}"
                     for p in ports if p["proto"] == proto]
            args += [flag, ",".join(specs) if specs else "none"]
        # Nothing from inside to the host's loopback; the namespaces of the container's
        # first process (pasta runs outside, as the user: it joins ours, then that one).
        args += ["-T", "none", "-U", "none", str(pid)]
        if self.outside is None:
            return {"error": "pasta: no helper outside the engine's user namespace to run it"}
        try:
            r = run_outside(self.outside, args)
        except OSError as e:
            return {"error": f"pasta: {e}"}
        if r["rc"] != 0:
            why = (r["stderr"] or r["stdout"]).strip().splitlines()
            return {"error": f"pasta: {why[-1] if why else 'exit ' + str(r['rc'])}"}
        try:
            self.pasta_pids[c.id] = int((c.dir / "pasta.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pass
        return {"net": True, "shell": " ".join(args[:-1]) + " $PID"}

    def stop_pasta(self, c: Container) -> None:
        """pasta of ``c`` (if any) ends: its namespace is gone or going."""
        self.pasta_ports.pop(c.id, None)
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

    def rootless_ports(self, c: Container) -> list[dict]:
        """What ``port`` and ``ps`` show of ``c``'s published ports (pasta's)."""
        if c.status not in ("running", "starting"):
            return []
        return [dict(p, container_ip="") for p in self.pasta_ports.get(c.id, [])]


def _free_port(host_ip: str, proto: str) -> int:
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((host_ip or "0.0.0.0", 0))
        return s.getsockname()[1]
