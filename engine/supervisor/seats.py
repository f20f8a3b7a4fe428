"""Classroom seats: registered by the owner, each a uid held to its own
:class:`~engine.policy.SeatPolicy`.

- ``seat_add`` (owner only): uid U is seat NAME with budget B. The seats are
  kept in ``seats.json`` in the state dir (a restarted supervisor knows them
  again), and while any seat exists the socket is reachable by every local
  user (mode 0666 in a 0711 directory): whoever is neither owner nor seat is
  still refused at accept, from SO_PEERCRED.
- ``seat_rm`` (owner only): the seat's containers are removed (killed first),
  its network and its cgroup too; the uid is refused from then on.
- ``seat_ls`` (owner only): the seats with their containers and usage.

A seat's first container makes what the seat runs in: its network
(``seat-NAME``, a user network with names resolved) and its cgroup
(``<parent>/seat-NAME``) with the seat's whole budget -- the sum of its
containers cannot go past it, whatever each one asks.
"""

from __future__ import annotations

import os
import re
import signal

from .. import policy
from ..errors import CgroupError, EngineError, InvalidArgument
from ..records import write_json_atomic

SEATS_FILE = "seats.json"


class Seats:
    """The classroom's seats: registration, the seat's cgroup and network, removal."""

    def load_seats(self) -> None:
        """Seats from ``seats.json`` (the owner's registrations), then those
        the environment names for tests (``uid<N>``)."""
        import json

        seat_volumes = os.environ.get(policy.SEAT_VOLUMES_ENV)
        self.seat_volume_roots = (seat_volumes,) if seat_volumes else ()
        self.seats: dict[int, policy.SeatPolicy] = {}
        try:
            with open(self.state / SEATS_FILE) as f:
                for item in json.load(f).get("seats", []):
                    self.seats[int(item["uid"])] = policy.SeatPolicy(
                        policy.Budget.from_dict(item.get("budget", {})), self.seat_volume_roots,
                        seat=str(item["name"]), uid=int(item["uid"]))
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError, EngineError) as e:
            print(f"{self.state / SEATS_FILE}: ignored ({e})", file=__import__("sys").stderr)
        self.env_seats = set()              # named by the environment: never written to seats.json
        for uid in policy.seat_uids_from_env():
            if uid not in self.seats:
                self.seats[uid] = policy.SeatPolicy(volume_roots=self.seat_volume_roots, seat=f"uid{uid}", uid=uid)
                self.env_seats.add(uid)

    def save_seats(self) -> None:
        write_json_atomic(self.state / SEATS_FILE, {"seats": [
            {"uid": uid, "name": s.seat, "budget": s.budget.to_dict()} for uid, s in self.seats.items()
            if uid not in self.env_seats]})
        os.chmod(self.state / SEATS_FILE, 0o600)

    def open_socket_to_seats(self) -> None:
        """While seats exist, every local user may connect (and is refused
        at accept unless owner or seat); else the socket is the owner's alone."""
        sock = self.state / "supervisor.sock"
        try:
            if self.seats:
                os.chmod(self.state, 0o711)
                os.chmod(sock, 0o666)
            else:
                os.chmod(sock, 0o600)
                os.chmod(self.state, 0o700)
        except OSError:
            pass

    def op_seat_add(self, conn, msg, fds):
        uid, name = msg.get("uid"), msg.get("name")
        if isinstance(uid, bool) or not isinstance(uid, int) or not 0 < uid < 2**32 - 1 or uid == os.geteuid():
            raise InvalidArgument(f"a seat's uid must be an unprivileged uid, not {uid!r:.20}")
        if not isinstance(name, str) or not re.fullmatch(policy.SEAT_NAME_RE, name):
            raise InvalidArgument(f"a seat's name must match {policy.SEAT_NAME_RE}, not {name!r:.40}")
        for other_uid, other in self.seats.items():
            if other.seat == name and other_uid != uid:
                raise InvalidArgument(f"seat {name} already exists (uid {other_uid})")
        budget = policy.Budget.from_dict(msg.get("budget") or {})
        self.seats[uid] = policy.SeatPolicy(budget, self.seat_volume_roots, seat=name, uid=uid)
        self.env_seats.discard(uid)
        for c in self.connections_of(uid):     # connections made before: now seats
            c.policy = self.seats[uid]
        self.save_seats()
        self.open_socket_to_seats()
        return {"seat": name, "uid": uid}, []

    def connections_of(self, uid: int) -> list:
        return [key.data[1] for key in self.sel.get_map().values()
                if key.data[0] == "client" and key.data[1].peer_uid == uid]

    def op_seat_ls(self, conn, msg, fds):
        out = []
        for uid, s in self.seats.items():
            mine = [c for c in self.containers.values() if s.sees(c.config.labels)]
            out.append({"name": s.seat, "uid": uid, "budget": s.budget.to_dict(),
                        "containers": [{"id": c.id, "name": c.name, "status": c.status} for c in mine],
                        "usage": self.seat_usage(s)})
        return {"seats": out}, []

    def seat_usage(self, s) -> dict:
        try:
            return self.cgroups.open(f"seat-{s.seat}", parent=self.cgroup_parent).usage()
        except (CgroupError, OSError, EngineError):
            return {}

    def op_seat_rm(self, conn, msg, fds):
        """End a seat: its containers removed (a running one killed and
        waited for), its network and cgroup removed; then its uid is refused."""
        name = msg.get("name")
        uid = next((u for u, s in self.seats.items() if s.seat == name), None)
        if uid is None:
            raise InvalidArgument(f"no such seat: {str(name)[:40]}")
        s = self.seats.pop(uid)
        self.save_seats()
        for c in self.connections_of(uid):
            c.policy = None
            self.close_when_flushed(c, grace=0.5)
        removed = self.remove_seat_containers(s)
        self.remove_seat_network(s)
        self.remove_seat_cgroup(s)
        self.remove_seat_layers(s)
        self.open_socket_to_seats()
        return {"seat": s.seat, "removed": removed}, []

    def remove_seat_containers(self, s) -> list[str]:
        removed = []
        for c in [c for c in self.containers.values() if s.sees(c.config.labels)]:
            if c.starting is not None:
                c.config.remove = True
                self.abandon_start(c)
            elif c.status == "running":
                self.signal(c, signal.SIGKILL)
                self.finish(c, self.wait_exit(c, 10.0))
            self.tidy_all()
            if c.id in self.containers:
                self.remove(c)
            removed.append(c.name)
        return removed

    def remove_seat_network(self, s) -> None:
        from ..network import NetworkError, bridge

        try:
            net = self.net_store.network(s.network)
        except NetworkError:
            return
        try:
            bridge.destroy_network(self.net_store, net.name)
        except NetworkError:
            return
        self.close_network_service(net.id)

    def remove_seat_layers(self, s) -> None:
        """The image layers copied for the seat's id range (made again on its next container)."""
        import shutil

        base, size = s.id_range
        shutil.rmtree(self.store.root / "userns" / f"{base}-{size}", ignore_errors=True)

    def remove_seat_cgroup(self, s) -> None:
        try:
            self.cgroups.remove_parent_if_empty(self.seat_cgroup_parent(s.seat))
        except EngineError:
            pass

    # -- what a seat's container runs in ---------------------------------------------------

    def userns_range(self, config) -> tuple[int, int]:
        """The host ids of a private user namespace: a seat's own range for a
        seat's container, else root's subordinate range."""
        seat = policy.OWNER.scope(config.labels)
        for s in self.seats.values():
            if s.seat == seat:
                return s.id_range
        from ..images.shift import subordinate_range

        return subordinate_range()

    def seat_cgroup_parent(self, seat: str) -> str:
        return f"{self.cgroup_parent}/seat-{seat}"

    def cgroup_parent_of(self, c) -> str:
        """Where a container's cgroup lives: its seat's cgroup, else the engine's."""
        seat = policy.OWNER.scope(c.config.labels)
        return self.seat_cgroup_parent(seat) if seat else self.cgroup_parent

    def prepare_seat(self, conn, config, *, new: bool = True) -> None:
        """Before a seat's container is made (``new``) or started again:
        within the seat's count, its network and its cgroup (with the
        seat's budget) there."""
        s = conn.policy
        if not isinstance(s, policy.SeatPolicy):
            return
        mine = sum(1 for c in self.containers.values() if s.sees(c.config.labels))
        if new and mine >= s.budget.containers:
            raise policy.PolicyRefused(f"a classroom seat may have at most {s.budget.containers} containers: "
                                       "remove one first (`rm`)")
        from ..network import NetworkError

        if config.network == s.network:
            try:
                self.net_store.network(s.network)
            except NetworkError:
                self.create_network(s.network)
        self.ensure_seat_cgroup(s)

    def ensure_seat_cgroup(self, s) -> None:
        from ..cgroups.limits import Limits

        limits = Limits(memory=s.budget.memory, pids=s.budget.pids, cpus=s.budget.cpus)
        try:
            self.cgroups.open(f"seat-{s.seat}", parent=self.cgroup_parent)
            return
        except CgroupError:
            pass
        self.cgroups.create(f"seat-{s.seat}", limits, parent=self.cgroup_parent)

    def shutdown_seats(self) -> None:
        """At shutdown: the seats' cgroups, emptied by then."""
        for s in self.seats.values():
            self.remove_seat_cgroup(s)
