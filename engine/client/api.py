"""The :class:`Client`: every request to this user's supervisor, starting it on demand.

Before anything is sent, the supervisor is checked: its directory must be
this user's (or root's) and not writable by others, and the process listening
must run as this user or root -- the CLI hands it its own terminal. Then one
method per request: containers (run, create, start, exec, wait, stop, kill,
rm, ps, inspect), networks and ports, prune and gc, events (read, or
subscribed to), and what a container is made of (snapshot, diff, layers).
"""

from __future__ import annotations

import os
import socket
import sys
import time

from .. import errors, paths
from ..spec import ContainerConfig
from .attached import Attached, Stepwise
from .connection import _Conn, _error_from_reply
from .relay import Relay, _is_null, _is_pipe
from .subscription import Subscription

TYPE_CHECKING = False       # typing itself costs the CLI ~4 ms to import

if TYPE_CHECKING:
    from pathlib import Path


# State dirs checked before this process joined the rootless engine's user
# namespace (see Client.enter_userns).
_TRUSTED: set[str] = set()


class Client:
    """Requests to this user's supervisor, starting it on demand."""

    def __init__(self, *, state_dir=None, autostart: bool = True, timeout: float = 60.0):
        self.state_dir = str(state_dir) if state_dir else paths.state_path()
        self.autostart = autostart
        self.timeout = timeout

    @property
    def socket_path(self) -> str:
        return os.path.join(self.state_dir, "supervisor.sock")

    def _try_connect(self) -> socket.socket | None:
        """A connection to the supervisor, or None if none listens. Nothing is
        sent before the directory and the peer have been checked (below)."""
        self._check_directory()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.connect(self.socket_path)
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            return None
        except PermissionError:
            sock.close()
            raise errors.SupervisorError(
                f"permission denied on {self.socket_path}: the supervisor belongs to another user") from None
        except OSError as e:            # a path too long for a Unix socket, a file where a directory is ...
            sock.close()
            raise errors.SupervisorError(f"cannot connect to the supervisor at {self.socket_path}: "
                                         f"{e.strerror or e}") from None
        try:
            self._check_peer(sock)
        except BaseException:
            sock.close()
            raise
        sock.settimeout(self.timeout)
        return sock

    # The CLI hands the supervisor its own terminal (stdin, stdout, stderr), so
    # whoever listens on the socket gets them: the socket is trusted only when
    # its directory is this user's or root's and not writable by others, and
    # only when the process listening runs as this user or root (SO_PEERCRED).
    def _check_directory(self) -> None:
        if self.state_dir in _TRUSTED:
            return
        why = paths.untrusted_reason(self.state_dir)
        if why is not None:
            raise errors.SupervisorError(f"refusing the supervisor's directory: {why}")

    def _check_peer(self, sock: socket.socket) -> None:
        import struct

        _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                              struct.calcsize("3i")))
        me = os.geteuid()
        if uid not in (me, 0):
            raise errors.SupervisorError(f"refusing the supervisor at {self.socket_path}: it runs as uid {uid}, "
                                         f"not as you (uid {me}) or root")

    def _connect(self) -> _Conn:
        sock = self._try_connect()
        if sock is None and self.autostart:
            self._start_supervisor()
            sock = self._try_connect()
        if sock is None:
            raise errors.SupervisorError(f"no supervisor is listening on {self.socket_path}")
        return _Conn(sock)

    def _start_supervisor(self) -> None:
        """Start ``python -m engine.supervisor --daemon``, serialised by a lock."""
        import fcntl
        import subprocess

        self._check_directory()
        paths.ensure_private_dir(self.state_dir)
        self._check_directory()
        with open(os.path.join(self.state_dir, "start.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if (sock := self._try_connect()) is not None:
                sock.close()
                return
            log_path = os.path.join(self.state_dir, "supervisor.log")
            with open(log_path, "ab") as log:
                start = log.tell()
                # The directory engine/ is in (this file is engine/client/api.py).
                source_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
                env = dict(os.environ, PYTHONPATH=os.pathsep.join(
                    [source_root] +
                    ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
                rc = subprocess.call([sys.executable, "-m", "engine.supervisor", "--daemon"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                                     cwd="/", env=env, start_new_session=True)
            if rc != 0:
                with open(log_path, "rb") as f:
                    f.seek(start)
                    tail = f.read().decode(errors="replace").strip().splitlines()
                raise errors.SupervisorError(tail[-1] if tail else "the supervisor failed to start")

    def call(self, op: str, *, fds: list[int] = (), **fields) -> dict:
        """One request, one reply; an error reply raises the matching EngineError."""
        conn = self._connect()
        try:
            conn.send({"op": op, **fields}, fds)
            reply, rfds = conn.receive()
            for fd in rfds:
                os.close(fd)
        except (OSError, ValueError) as e:
            raise errors.SupervisorError(f"talking to the supervisor failed: {e}") from None
        finally:
            conn.close()
        if not reply.get("ok"):
            raise _error_from_reply(reply)
        return reply

    # -- the verbs -----------------------------------------------------------
    def enter_userns(self) -> None:
        """Rootless: join the supervisor's user namespace, so that what this
        process writes to the image store gets the owners an image names (as
        seen inside, where containers see them); nothing as root or when in
        it already. The supervisor's pid is the kernel's word for who listens
        (SO_PEERCRED), checked as every connection is. This process must be
        single-threaded."""
        from .. import userns

        if paths.is_root() or not userns.in_initial():
            return
        import struct

        conn = self._connect()
        try:
            pid = struct.unpack("3i", conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                           struct.calcsize("3i")))[0]
            # Checked from outside: inside, the host's root and every other
            # user own files as one unmapped id, and cannot be told apart.
            _TRUSTED.add(self.state_dir)
            try:
                userns.join(pid)
            except OSError as e:
                raise errors.SupervisorError(f"cannot join the engine's user namespace: {e.strerror or e}") from None
        finally:
            conn.close()

    def ping(self) -> dict:
        return self.call("ping")

    def _open(self, op: str, fields: dict, fds=()) -> tuple[_Conn, dict, list[int]]:
        """Send one request and read its reply, keeping the connection open for
        what follows on it (an exit event, stages, pushed events). An error
        reply raises the matching EngineError, with the connection closed."""
        conn = self._connect()
        try:
            conn.send({"op": op, **fields}, list(fds))
            reply, rfds = conn.receive()
        except (OSError, ValueError) as e:
            conn.close()
            raise errors.SupervisorError(f"talking to the supervisor failed: {e}") from None
        if not reply.get("ok"):
            conn.close()
            for fd in rfds:
                os.close(fd)
            raise _error_from_reply(reply)
        return conn, reply, rfds

    @staticmethod
    def _stdio(fds, attach: bool, relay: bool | None) -> tuple[list[int], Relay | None]:
        """What to send for ``fds``: the caller's own pipes as they are, or
        (``relay`` True, or any fd not a pipe) the ends of a :class:`Relay`."""
        fds = list(fds)
        if not attach or not fds:
            return [], None
        if relay is None:
            if len(fds) == 3 and _is_null(fds[0]) and all(_is_pipe(fd) for fd in fds[1:]):
                fds = fds[1:]             # nothing to read from: the container's stdin is /dev/null anyway
            relay = not all(_is_pipe(fd) for fd in fds)
        if not relay:
            return fds, None
        r = Relay(fds)
        return r.remote, r

    def _open_with_stdio(self, op: str, fields: dict, fds, attach: bool, relay: bool | None
                         ) -> tuple[_Conn, dict, list[int], Relay | None]:
        """:meth:`_open` with the caller's stdio handed over as pipes
        (:meth:`_stdio`): the relay is closed if the request fails, and told
        its far ends are sent once it went through."""
        send, rel = self._stdio(fds, attach, relay)
        try:
            conn, reply, rfds = self._open(op, fields, send)
        except BaseException:
            if rel is not None:
                rel.close()
            raise
        if rel is not None:
            rel.sent()
        return conn, reply, rfds, rel

    def _attached_request(self, op: str, fields: dict, fds: list[int], attach: bool,
                          relay: bool | None = None) -> Attached | dict:
        """A request whose reply may come with a terminal fd and, when
        attached, a later exit event on the same connection."""
        conn, reply, rfds, rel = self._open_with_stdio(op, {**fields, "attach": attach}, fds, attach, relay)
        if not attach:
            conn.close()
            for fd in rfds:
                os.close(fd)
            return reply
        return Attached(conn, reply, rfds[0] if rfds else None, rel)

    def run(self, config: ContainerConfig, *, stdio: list[int] = (), attach: bool = True,
            winsize: tuple[int, int] | None = None, relay: bool | None = None) -> Attached | dict:
        """Create and start a container.

        ``stdio``: where the container's output (and, with ``interactive``,
        input) goes -- ``[stdout, stderr]`` or ``[stdin, stdout, stderr]``. The
        container only ever gets pipes: the caller's own pipes are handed on,
        any other fd (a terminal, a file) is relayed through pipes of ours,
        copied in :meth:`Attached.wait` (``relay=True``: relay pipes too).
        The output is also kept in the container's log, as a detached one's is.
        With ``attach`` returns an :class:`Attached` (with the terminal master
        for a tty container), else the reply (id, name, pid).
        """
        config.validate()
        return self._attached_request("run", {"config": config.to_dict(),
                                              "winsize": list(winsize) if winsize else None},
                                      stdio, attach, relay)

    def create(self, config: ContainerConfig) -> dict:
        """Create a container without starting it (docker create): id, name."""
        config.validate()
        return self.call("create", config=config.to_dict())

    def run_stepwise(self, config: ContainerConfig, *, stdio: list[int] = (), attach: bool = True,
                     relay: bool | None = None) -> Stepwise:
        """Create a container and start it one stage at a time (see :class:`Stepwise`);
        ``stdio`` and ``relay`` as for :meth:`run`."""
        config.validate()
        conn, reply, rfds, rel = self._open_with_stdio(
            "run", {"config": config.to_dict(), "attach": attach, "stepwise": True}, stdio, attach, relay)
        for fd in rfds:
            os.close(fd)
        return Stepwise(self, conn, reply, rel)

    def start(self, ref: str, *, attach: bool = False, stdio: list[int] = (),
              winsize: tuple[int, int] | None = None, relay: bool | None = None) -> Attached | dict:
        """Start a stopped container again, its writable layer kept."""
        return self._attached_request("start", {"id": ref, "winsize": list(winsize) if winsize else None},
                                      stdio, attach, relay)

    def exec(self, ref: str, cmd: list[str], *, env: list[str] = (), workdir: str | None = None,
             user: str | None = None, tty: bool = False, interactive: bool = False, detach: bool = False,
             stdio: list[int] = (), winsize: tuple[int, int] | None = None,
             relay: bool | None = None) -> Attached | dict:
        """Run ``cmd`` in running container ``ref`` (every namespace and its cgroup joined);
        ``stdio`` and ``relay`` as for :meth:`run` (nothing of an exec is logged)."""
        opts = {"cmd": list(cmd), "env": list(env), "workdir": workdir, "user": user, "tty": tty,
                "interactive": interactive, "detach": detach}
        return self._attached_request("exec", {"id": ref, "exec": opts,
                                               "winsize": list(winsize) if winsize else None},
                                      stdio, not detach, relay)

    def wait(self, ref: str) -> dict:
        """Block until container ``ref`` has exited; returns its exit info."""
        return self._wait_for("wait", {"id": ref})

    def stop(self, ref: str, timeout: float = 10) -> dict:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; returns once it has exited."""
        return self._wait_for("stop", {"id": ref, "timeout": timeout})

    def _wait_for(self, op: str, fields: dict) -> dict:
        conn = self._connect()
        try:
            conn.send({"op": op, **fields})
            reply, _ = conn.receive()
            if not reply.get("ok"):
                raise _error_from_reply(reply)
            if reply.get("event") == "exit":
                return reply
            return Attached(conn, {"id": fields["id"], "name": fields["id"], "pid": 0}, None).wait()
        finally:
            conn.close()

    def kill(self, ref: str, signal: int = 9) -> None:
        self.call("kill", id=ref, signal=signal)

    def remove(self, ref: str, *, force: bool = False) -> str:
        cid = self.call("rm", id=ref, force=force)["id"]
        observe = sys.modules.get("engine.observe")
        if observe is not None:
            observe.forget(cid)        # the /proc fds kept for its next snapshot
        return cid

    def ps(self, *, all: bool = False) -> list[dict]:  # noqa: A002 - docker's flag name
        return self.call("ps", all=all)["containers"]

    def inspect(self, ref: str, *, transcript: bool = False) -> dict:
        return self.call("inspect", id=ref, transcript=transcript)["container"]

    # networks
    def network_create(self, name: str, *, subnet: str | None = None, internal: bool = False) -> dict:
        return self.call("network_create", name=name, subnet=subnet, internal=internal)["network"]

    def networks(self) -> list[dict]:
        return self.call("network_ls")["networks"]

    def network_inspect(self, name: str) -> dict:
        return self.call("network_inspect", name=name)["network"]

    def network_remove(self, name: str) -> dict:
        return self.call("network_rm", name=name)

    def network_connect(self, network: str, container: str, *, aliases=(), ip: str | None = None) -> dict:
        return self.call("network_connect", network=network, container=container, aliases=list(aliases), ip=ip)

    def network_disconnect(self, network: str, container: str) -> dict:
        return self.call("network_disconnect", network=network, container=container)

    def network_prune(self) -> list[str]:
        return self.call("network_prune")["removed"]

    def port(self, ref: str) -> list[dict]:
        """A container's published ports: {host_ip, host_port, container_port, proto, container_ip}."""
        return self.call("port", id=ref)["ports"]

    def prune(self) -> list[dict]:
        """Remove every stopped container; returns [{id, size}]."""
        return self.call("prune")["removed"]

    def gc(self) -> list[str]:
        """Remove what crashed runs left; returns what was swept."""
        return self.call("gc")["swept"]

    def cursor(self) -> int:
        """The sequence number of the newest event: a step that begins now
        counts only events above it."""
        return int(self.ping()["events_seq"])

    def subscribe(self, *, after: int = 0) -> Subscription:
        """Events with a sequence number above ``after``, then live, pushed by
        the supervisor as they happen (the app's lab panel listens here)."""
        conn, reply, rfds = self._open("subscribe", {"after": after})
        for fd in rfds:
            os.close(fd)
        sub = Subscription(conn, reply.get("events", []))
        sub.cursor = max(sub.cursor, after)
        return sub

    def events(self, *, after: int = 0):
        """Events with a sequence number above ``after`` (see engine.events):
        read from the log itself where this user may (the supervisor's own
        user, root), else asked of the supervisor, which answers a classroom
        seat with its own containers' events only."""
        from ..events import EventLog

        log = paths.data_dir() / "events.jsonl"
        if os.geteuid() == 0 or os.access(log, os.R_OK):
            return EventLog(log).read(after=after)
        return iter(self.call("events", after=after)["events"])

    def snapshot(self, ref: str, *, others: bool | dict[str, int] = True, network: bool = True) -> dict:
        """What container ``ref`` is made of right now (see engine.observe).

        ``others``: compare namespaces with the other running containers (True),
        with these (a name -> PID 1 dict, e.g. from one ``ps`` shared by several
        snapshots), or with none (False). ``network``: False leaves the network
        out (it costs a pyroute2 import once, and a netlink dump each time)."""
        from .. import observe

        record = self.inspect(ref)
        if others is True:
            others = {c["name"]: c["pid"] for c in self.ps() if c["pid"]}
        other_pids = {name: pid for name, pid in (others or {}).items()
                      if name != record["name"] and pid and pid != record.get("pid")}
        inside = None
        if not paths.is_root():        # rootless: only the engine may enter its containers' namespaces
            inside = lambda net: self.call("ns_view", id=record["id"], network=net)
        return observe.snapshot(record, cgroup=self._cgroup_of(record), others=other_pids, network=network,
                                inside=inside)

    def usage(self, record: dict) -> dict:
        """One sample of what a container (its ``inspect`` or ``ps`` record) uses
        now: CPU time, memory, network and block I/O, processes (engine.observe.usage)."""
        from ..observe import usage

        running = record.get("status") in ("running", "starting")
        return usage.sample(record, self._cgroup_of(record) if running else None)

    def note_stats(self, ref: str) -> bool:
        """Have the engine note a ``stats`` event: a user read what container
        ``ref`` uses (``docker stats``). A supervisor that does not know the
        request changes nothing; the figures are shown either way. True when noted."""
        try:
            self.call("stats", id=ref)
        except errors.ContainerNotFound:
            return False                # removed meanwhile: nothing to note
        except errors.InvalidArgument as e:
            if "unknown request" not in str(e):
                raise
            return False
        return True

    def diff(self, ref: str, *, record: bool = True) -> list[tuple[str, str]]:
        """The container's writable-layer changes against its image (docker diff).
        ``record``: the engine notes a ``diff`` event (what a user asked for);
        a lesson's check that looks at the changes passes False."""
        from .. import observe

        rootfs = None
        if record:
            try:
                rootfs = self.call("diff", id=ref)["rootfs"]
            except errors.InvalidArgument as e:
                if "unknown request" not in str(e):
                    raise
                # a supervisor started before it knew the request: the changes, unrecorded
        if rootfs is None:
            rootfs = self.inspect(ref)["rootfs"]
        return observe.diff_layer(rootfs["upper"], rootfs["layers"])

    def layers(self, ref: str, *, cache: dict | None = None) -> list[dict]:
        """Container ``ref``'s image layers, bottom first, each with the step
        that made it and its changes, and its writable layer on top (see
        :mod:`engine.images.layers`; ``cache`` keeps the image part)."""
        from ..images import ImageStore
        from ..images.layers import container_layers

        record = self.inspect(ref)
        return container_layers(ImageStore(paths.data_dir() / "images"), record, cache)

    def _cgroup_of(self, record: dict):
        """The container's cgroup (for its members and usage), or None. The
        layout is detected once per Client (it means parsing mountinfo)."""
        if not record.get("cgroup"):
            return None
        from ..errors import CgroupError

        if getattr(self, "_driver", None) is None:
            from ..cgroups import detect
            self._driver = detect()
        path = os.path.dirname(next(iter(record["cgroup"].values())))
        parent = os.path.basename(path)
        if parent.startswith("seat-"):         # a classroom seat's container: <engine's parent>/seat-NAME
            parent = f"{os.path.basename(os.path.dirname(path))}/{parent}"
        try:
            return self._driver.open(record["id"], parent=parent)
        except CgroupError:
            return None

    def container_dir(self, ref: str) -> Path:
        """Where a container's files (log, transcript, layers) are."""
        return paths.data_dir() / "containers" / self.inspect(ref)["id"]

    def shutdown(self) -> None:
        """Ask a running supervisor to stop its containers and exit (no autostart)."""
        sock = self._try_connect()
        if sock is None:
            return
        conn = _Conn(sock)
        try:
            conn.send({"op": "shutdown"})
            conn.receive()
        finally:
            conn.close()
        deadline = time.monotonic() + 10
        while os.path.exists(self.socket_path) and time.monotonic() < deadline:
            time.sleep(0.02)

    def build(self, context, options=None, *, stream=None):
        """Build an image from ``context`` (a directory with a Dockerfile) here,
        RUN steps in containers of this supervisor; see engine.images.build.
        ``options``: an engine.images.build.Options; progress goes to
        ``stream`` (stderr). Returns a Result: id, names, warnings."""
        from ..images.build import build

        return build(self, context, options, stream=stream)

    def image_event(self, action: str, ref: str, **fields) -> bool:
        """Tell the supervisor what this client did to an image (a ``build``,
        ``pull``, ``push`` or ``save``: the event log's ``image`` events, which
        lesson checks read). Only a supervisor that is running is told -- none
        is started for it -- and one that cannot take it changes nothing: the
        work is done either way. True when recorded."""
        try:
            sock = self._try_connect()
        except errors.EngineError:
            return False
        if sock is None:
            return False
        conn = _Conn(sock)
        try:
            conn.send({"op": "image_event", "action": action, "ref": ref, **fields})
            reply, rfds = conn.receive()
            for fd in rfds:
                os.close(fd)
        except (OSError, ValueError):
            return False
        finally:
            conn.close()
        return bool(reply.get("ok"))

    def commit(self, ref: str, name: str | None = None, **options):
        """Make container ``ref``'s writable layer a new image (docker commit);
        ``options``: pause, message, author, changes. Returns id, name, warnings."""
        from ..images.build import commit

        return commit(self, ref, name, **options)
