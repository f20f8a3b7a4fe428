"""What a client may ask the engine for: one object decides.

Who asks is learnt from the kernel, never from the client: the supervisor
reads the credentials of each connection's peer (SO_PEERCRED) when it
accepts it, and holds the connection to one policy for its whole life
(:func:`for_peer`):

- **owner** -- root, or the uid the supervisor runs as: the person whose
  engine it is. :class:`OwnerPolicy` allows what Docker allows its users (who
  are, in effect, root): host namespaces, host mounts, seccomp off, no limits.
- **seat** -- a classroom seat: an unprivileged learner on a server shared by
  a room. :class:`SeatPolicy` refuses whatever would reach past the seat's own
  containers or past its share of the machine (see its docstring).
- anyone else is refused when the connection is accepted; every request on
  it is answered with that refusal.

Seats are registered by the owner (``container-lab serve``, running as
root, sends ``seat_add`` on an owner connection: uid, seat name, budget);
the supervisor keeps them in ``seats.json`` in its state dir, so a restarted
supervisor knows them again. ``CONTAINER_LAB_SEAT_UIDS`` (uids,
comma-separated, read by the SUPERVISOR when it starts -- a client's
environment changes nothing) still names seats ``uid<N>`` for tests of the
policy alone, and ``CONTAINER_LAB_SEAT_VOLUMES`` names the one directory
under which a seat may bind host paths (none when unset).

What a seat owns is marked by the label ``container-lab.seat`` (set by
:meth:`SeatPolicy.admit`, whatever the client sent): a seat's names, ``ps``,
events and every request naming a container see only containers with its
own label (:meth:`Policy.sees`); the owner sees every container, and names a
seat's one as ``SEAT/NAME`` (a name docker never allows, so never ambiguous)
or by id.

Volume sources. A container's volume source is opened once, by the child
that mounts it (O_PATH, with :meth:`Policy.volume_resolve`'s openat2 flags),
and bound from that file descriptor: nothing is looked up twice, so the
object checked is the object mounted. The owner's path is resolved as Docker
resolves it -- symlinks followed: a host path the user names is theirs to
name, and root could bind its target directly anyway. A seat's path may hold
no symlink at all (RESOLVE_NO_SYMLINKS): two containers sharing a volume could
otherwise plant ``sub -> /etc`` in it from one and mount ``shared/sub`` into
the other -- the host's /etc/shadow, read by a learner.
"""

from __future__ import annotations

import os

from .errors import EngineError
from .spec import DEFAULT_MEMORY, DEFAULT_PIDS, ContainerConfig, shared_container
from .syscalls import RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, openat2

SEAT_UIDS_ENV = "CONTAINER_LAB_SEAT_UIDS"
SEAT_LABEL = "container-lab.seat"
SEAT_NAME_RE = r"[a-z][a-z0-9_-]{0,31}"
# Each seat's containers get a uid range of their own: 65536 ids from
# SEAT_RANGE_BASE + (seat uid mod SEAT_RANGE_SLOTS) * 65536 (100,000,000 up to
# about 1.4e9: above any account, below 2^31), so root inside one seat's
# container is a different unprivileged uid from any other seat's.
SEAT_RANGE_BASE, SEAT_RANGE_SLOTS, SEAT_RANGE_SIZE = 100_000_000, 20_000, 65536
# The ops only the owner may send: seats registered, listed, ended.
OWNER_OPS = ("seat_add", "seat_rm", "seat_ls")
SEAT_VOLUMES_ENV = "CONTAINER_LAB_SEAT_VOLUMES"


class PolicyRefused(EngineError):
    """A client asked for something its policy does not allow."""


class Budget:
    """The most one seat may have: each container at most ``memory``, ``pids``
    and ``cpus``, and all its containers together the same, in the seat's own
    cgroup (``container-lab/seat-NAME``); at most ``containers`` containers."""

    __slots__ = ("memory", "pids", "cpus", "containers")

    def __init__(self, memory: int = DEFAULT_MEMORY, pids: int = DEFAULT_PIDS, cpus: float = 1.0,
                 containers: int = 10):
        self.memory, self.pids, self.cpus, self.containers = memory, pids, cpus, containers

    def to_dict(self) -> dict:
        return {"memory": self.memory, "pids": self.pids, "cpus": self.cpus, "containers": self.containers}

    @classmethod
    def from_dict(cls, d) -> Budget:
        """A budget from a request or a record; bad values raise InvalidArgument."""
        from .errors import InvalidArgument

        if not isinstance(d, dict):
            raise InvalidArgument("a seat's budget must be an object")
        out = cls()
        for key, kind, low in (("memory", int, 4 << 20), ("pids", int, 8), ("cpus", (int, float), 0.01),
                               ("containers", int, 1)):
            if key in d:
                v = d[key]
                if isinstance(v, bool) or not isinstance(v, kind) or not low <= v < 1 << 50:
                    raise InvalidArgument(f"a seat's {key} budget must be a number from {low} up, not {v!r:.20}")
                setattr(out, key, v)
        return out


def _mib(n: int) -> str:
    return f"{n >> 20}m" if n % (1 << 20) == 0 else f"{n}b"


class Policy:
    """The owner's policy: what Docker allows (everything this engine can do)."""

    name = "owner"

    def admit(self, config: ContainerConfig) -> None:
        """Raise PolicyRefused (one line naming the flag) if ``config`` asks
        for what this policy does not allow; may fill in what it defaults."""
        if config.cpus == 0:             # --cpus 0: docker's "no CPU limit", as leaving it out
            config.cpus = None

    def volume_resolve(self) -> int:
        """openat2 resolve flags for a volume's host path: follow symlinks,
        as Docker does for a path its user names."""
        return 0

    def check_request(self, op: str) -> None:
        """Raise PolicyRefused if this client may not make request ``op`` at all."""

    seat: str | None = None      # the seat whose containers this client owns; None: the owner's

    def sees(self, labels: dict | None) -> bool:
        """Whether this client may see (and name) a container with ``labels``."""
        return True

    def scope(self, labels: dict | None) -> str | None:
        """The seat a container with ``labels`` belongs to (None: the owner's)."""
        return (labels or {}).get(SEAT_LABEL) or None


class OwnerPolicy(Policy):
    """Root on the CLI, or the supervisor's own user: what Docker allows.

    - host namespaces (``--pid/--ipc/--network host``, ``--uts host``) and
      ``container:NAME`` sharing: allowed, as in Docker;
    - host mounts (``-v``): any existing host path, symlinks followed;
    - ``--security-opt seccomp=unconfined``: allowed;
    - "no limit" values (``-m 0|-1``, ``--pids-limit 0|-1``, ``--cpus 0``):
      allowed -- the defaults (1 GiB, 1024 processes) guard a learner against
      accidents, and the owner may lift them.
    """


class SeatPolicy(Policy):
    """A classroom seat: its containers stay inside their own namespaces,
    mounts and share of the machine.

    Each refusal is one line naming the flag and why:

    - host namespaces (``--pid/--ipc/--network/--uts host``): a seat would see
      and signal the server's processes, use its network as the server, or
      rename the server;
    - ``container:NAME`` sharing: the name could be another seat's container
      (sharing among a seat's own containers comes with seat ownership);
    - ``seccomp=unconfined``: the filter is a second wall behind the dropped
      capabilities, for when a kernel bug thins the first;
    - host mounts (``-v``): refused, except below the directory the classroom
      gives seats (``volume_roots``), and there without any symlink on the way
      (resolved with RESOLVE_NO_SYMLINKS, again by the child as it mounts);
    - "no limit" values (``-m 0|-1``, ``--memory-swap -1``, ``--pids-limit 0|-1``,
      ``--cpus 0``) and limits above the seat's :class:`Budget`: one seat must
      not take the room's memory, processes or CPU. No ``--cpus`` means the
      budget's CPU share;
    - host ports below 1024 (``-p 80:80``): those are the server's services;
    - the ``shutdown`` request: it would stop every seat's containers; and,
      until seats own their containers, images and networks, ``gc``,
      ``prune``, ``rmi`` and network changes (they reach every seat's).

    What admit fills in: the seat's label (its containers are its own), a
    private user namespace (``--userns private``: root inside is an
    unprivileged uid on the server), and the seat's own network
    (``seat-NAME``) in place of the default ``bridge``; any other network
    than the seat's own or ``none`` is refused.

    Each seat's user namespaces map to a uid range of the seat's own
    (:attr:`id_range`), so two seats' container roots are different
    unprivileged uids on the server.

    Still to come: images of a seat's own (a seat runs the server's images;
    pull and build are the owner's), capability additions (no ``--cap-add``
    exists yet).
    """

    name = "seat"

    def __init__(self, budget: Budget | None = None, volume_roots: tuple[str, ...] = (), *,
                 seat: str = "seat", uid: int = -1):
        self.budget = budget or Budget()
        self.volume_roots = tuple(os.path.realpath(r) for r in volume_roots)
        self.seat, self.uid = seat, uid

    @property
    def id_range(self) -> tuple[int, int]:
        """(base, size): the host ids of this seat's containers' user namespaces."""
        return SEAT_RANGE_BASE + (self.uid % SEAT_RANGE_SLOTS) * SEAT_RANGE_SIZE, SEAT_RANGE_SIZE

    @property
    def network(self) -> str:
        """The seat's own network, made on its first container."""
        return f"seat-{self.seat}"

    def sees(self, labels: dict | None) -> bool:
        return (labels or {}).get(SEAT_LABEL) == self.seat

    def admit(self, config: ContainerConfig) -> None:
        config.labels = {**config.labels, SEAT_LABEL: self.seat}
        if config.userns_mode != "private":
            config.userns_mode = "private"
        if config.network == "bridge":
            config.network = self.network
        elif config.network not in ("none", "host", self.network) and shared_container(config.network) is None:
            raise PolicyRefused(f"--network {config.network} is not allowed for a classroom seat: its "
                                f"containers join {self.network} (the default) or none")
        for flag, mode in (("--pid", config.pid_mode), ("--ipc", config.ipc_mode),
                           ("--network", config.network), ("--uts", config.uts_mode)):
            if mode == "host":
                raise PolicyRefused(f"{flag} host is not allowed for a classroom seat: it would share the "
                                    "server's own namespace")
            if shared_container(mode) is not None:
                raise PolicyRefused(f"{flag} {mode} is not allowed for a classroom seat: sharing another "
                                    "container's namespace is not available to seats")
        if config.seccomp == "unconfined":
            raise PolicyRefused("--security-opt seccomp=unconfined is not allowed for a classroom seat: "
                                "its containers keep the system call filter")
        for vol in config.volumes:
            self.check_volume_source(vol.source)
        if config.publish:
            from .network.ipam import parse_publish

            for spec in config.publish:
                if 0 < parse_publish(spec)["host_port"] < 1024:
                    raise PolicyRefused(f"-p {spec}: a classroom seat may publish host ports from 1024 up only "
                                        "(the ports below are the server's own services)")
        self._check_limits(config)

    def _check_limits(self, config: ContainerConfig) -> None:
        b = self.budget
        # The engine's defaults (no -m, no --pids-limit) come down to the seat's budget.
        if config.memory == DEFAULT_MEMORY and b.memory < DEFAULT_MEMORY:
            config.memory = b.memory
        if config.pids_limit == DEFAULT_PIDS and b.pids < DEFAULT_PIDS:
            config.pids_limit = b.pids
        if config.memory is None:
            raise PolicyRefused(f"-m 0 or -1 (no memory limit) is not allowed for a classroom seat: "
                                f"give a limit of at most {_mib(b.memory)}")
        if config.memory > b.memory:
            raise PolicyRefused(f"-m {_mib(config.memory)} is more than a classroom seat's budget "
                                f"of {_mib(b.memory)}")
        if config.memory_swap == -1:
            raise PolicyRefused("--memory-swap -1 (unlimited swap) is not allowed for a classroom seat")
        if config.memory_swap is not None and config.memory_swap > b.memory:
            raise PolicyRefused(f"--memory-swap {_mib(config.memory_swap)} is more than a classroom seat's "
                                f"budget of {_mib(b.memory)}")
        if config.pids_limit is None:
            raise PolicyRefused(f"--pids-limit 0 or -1 (no process limit) is not allowed for a classroom seat: "
                                f"give a limit of at most {b.pids}")
        if config.pids_limit > b.pids:
            raise PolicyRefused(f"--pids-limit {config.pids_limit} is more than a classroom seat's budget "
                                f"of {b.pids}")
        if config.cpus == 0:
            raise PolicyRefused(f"--cpus 0 (no CPU limit) is not allowed for a classroom seat: "
                                f"give a limit of at most {b.cpus:g}")
        if config.cpus is None:
            config.cpus = b.cpus
        elif config.cpus > b.cpus:
            raise PolicyRefused(f"--cpus {config.cpus:g} is more than a classroom seat's budget of {b.cpus:g}")

    def check_volume_source(self, source: str) -> None:
        """A seat's volume: under one of ``volume_roots``, no symlink anywhere
        on its path (checked here for a clear error; the child that mounts
        it opens it again with the same flags, so a symlink planted meanwhile
        is refused all the same)."""
        if os.path.normpath(source) != (source.rstrip("/") or "/") or source.startswith("//"):
            # "." and ".." are no symlinks: openat2 would follow them out of the root.
            raise PolicyRefused(f"-v {source}: a classroom seat's volume path must be plain "
                                "(no '.', '..' or repeated '/')")
        inside = any(source == root or source.startswith(root.rstrip("/") + "/") for root in self.volume_roots)
        if not inside:
            raise PolicyRefused(f"-v {source}: host paths are not allowed for a classroom seat"
                                + (f" (only under {', '.join(self.volume_roots)})" if self.volume_roots else ""))
        try:
            os.close(open_volume_source(source, self.volume_resolve()))
        except OSError as e:
            raise PolicyRefused(f"-v {source}: {volume_error(e, self.volume_resolve())}") from None

    def volume_resolve(self) -> int:
        return RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS

    def check_request(self, op: str) -> None:
        if op in OWNER_OPS:
            raise PolicyRefused("a classroom seat may not add, list or end seats: only the server's owner may")
        if op == "shutdown":
            raise PolicyRefused("a classroom seat may not stop the supervisor: every seat's containers would stop")
        # Until seats own their containers and images, these reach the whole room's.
        if op == "gc":
            raise PolicyRefused("a classroom seat may not run gc: it sweeps the engine's state for every seat")
        if op == "prune":
            raise PolicyRefused("a classroom seat may not remove every stopped container: other seats' would go too")
        if op == "rmi":
            raise PolicyRefused("a classroom seat may not remove images: every seat runs the same ones")
        if op.startswith("network_") and op not in ("network_ls", "network_inspect"):
            raise PolicyRefused(f"a classroom seat may not {op[8:]} networks or connections: until seats own "
                                "their networks, a change would reach every seat's containers")


def open_volume_source(source: str, resolve: int) -> int:
    """O_PATH fd of a volume's host path, resolved once with ``resolve``."""
    return openat2(-100, source, os.O_PATH, resolve=resolve)        # AT_FDCWD


def volume_error(e: OSError, resolve: int) -> str:
    """Why a volume's host path could not be opened, in words."""
    import errno

    if e.errno == errno.ELOOP and resolve & RESOLVE_NO_SYMLINKS:
        return "a symlink is on its path, and a classroom seat's volumes may hold none"
    return os.strerror(e.errno) if e.errno else str(e)


OWNER = OwnerPolicy()


def seat_uids_from_env(environ=os.environ) -> frozenset[int]:
    """The uids named by CONTAINER_LAB_SEAT_UIDS (bad entries are ignored, loudly)."""
    uids = set()
    for item in (environ.get(SEAT_UIDS_ENV) or "").split(","):
        item = item.strip()
        if item.isdigit():
            uids.add(int(item))
        elif item:
            import sys
            print(f"{SEAT_UIDS_ENV}: ignoring {item!r} (not a uid)", file=sys.stderr)
    return frozenset(uids)


def for_peer(uid: int, *, own_uid: int, seats) -> Policy | None:
    """The policy of a connection whose peer runs as ``uid`` (from
    SO_PEERCRED), or None when that peer may not use this supervisor;
    ``seats`` maps a seat's uid to its SeatPolicy."""
    if uid == 0 or uid == own_uid:
        return OWNER
    return seats.get(uid)


def peer_uid(sock) -> int:
    """The uid of the process at the other end of a Unix socket (SO_PEERCRED)."""
    import socket
    import struct

    _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                          struct.calcsize("3i")))
    return uid
