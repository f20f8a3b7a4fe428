"""The supervisor: one process per user, the parent of every container.

Why a separate process: the app is multi-threaded, and no Python code may run
in a forked child of a threaded process. The supervisor is single-threaded,
so it can fork a container child safely; it also reaps containers, records
how they ended, holds their terminals and keeps working when its clients
(the CLI, the app, the tests) come and go.

It listens on a Unix socket (mode 0600) in the state dir. The protocol is one
JSON object per line; file descriptors (a client's stdio, a container's
terminal) travel beside a message with SCM_RIGHTS, and ``"nfds"`` says how
many belong to it. Every request gets one reply ``{"ok": true, ...}`` or
``{"ok": false, "error": "...", "kind": "...", "exit_code": N}``; a client
that asked to stay attached later gets ``{"event": "exit", ...}``. Each
connection is held to the policy of its peer's uid, read from the kernel
(SO_PEERCRED) when it is accepted -- see :mod:`engine.policy`.

Nothing a container or a client does may hold the loop up: a start or an
exec is answered when its child has exec'd (its start channel is watched,
with a deadline), ``rm -f`` when the exit has happened, output to a client
waits in its connection's queue, and a container's output is read at a
bounded rate and copied to an attached client's pipe, never handed the
client's own terminal or files.

Start it with ``python -m engine.supervisor``; clients do that on demand.
"""

from __future__ import annotations

import array
import collections
import fcntl
import json
import os
import secrets
import select
import selectors
import signal
import socket
import stat
import sys
import time
import traceback
from pathlib import Path

from . import paths, policy, runtime, sealed, seccomp
from . import syscalls as sc
from .container import Container, process_start_time
from .errors import (CgroupError, ContainerError, ContainerNotFound, EngineError, InvalidArgument,
                     NameConflict, NotRunning, StartError)
from .events import EventLog, now
from .logs import LogWriter
from .protocol import Channel, MessageTooLarge, ProtocolError, encode
from .records import write_json_atomic
from .spec import ContainerConfig, check_argv, check_process_options

PROTOCOL = 1
START_TIMEOUT = 30.0               # seconds a child may take to reach execve
LIMIT_CHECK_INTERVAL = 1.0         # seconds between looks at OOM and pids-limit counters
# Requests that build a new process and so wait for its child anyway: the
# tidying after earlier exits is done meanwhile (every other request, and a
# ping, first finishes it -- once a client has its answer, earlier exits are
# tidied). ``start`` is not one: it reuses the cgroup name being removed.
TIDY_LATER = frozenset({"run", "exec"})
TIDY_GRACE = 0.02                  # seconds of quiet after which the supervisor tidies anyway
# A container's output costs the supervisor CPU outside the container's own
# limits (reading, logging, copying to an attached client): each container may
# have OUTPUT_RATE bytes a second of it read (in bursts up to OUTPUT_BURST);
# past that its pipes are left unread until the next refill, and the container
# waits on its own full pipe.
OUTPUT_RATE = 2 << 20
OUTPUT_BURST = 256 << 10
OUTPUT_TICK = 0.05                 # seconds between refills
SINK_BACKLOG = 1 << 20             # bytes kept for an attached client that does not read
SUBSCRIBER_BACKLOG = 4 << 20       # bytes of unsent events after which a subscriber is cut off
LOG_LIMIT = 1 << 20                # supervisor.log rotates past this size (one old file kept)
MAX_LABELS = 64 << 10              # bytes of labels (keys and values) a container may carry
MAX_ENV = 256 << 10                # bytes of environment given to run
NAMESPACE_KINDS = ("pid", "mnt", "net", "uts", "ipc", "user", "cgroup", "time")

_ADJECTIVES = ("brave", "calm", "clever", "eager", "gentle", "happy", "keen", "lucid", "merry",
               "nimble", "quiet", "quirky", "sharp", "sleepy", "swift", "tender", "vivid", "wise")
_NAMES = ("babbage", "curie", "dijkstra", "hopper", "kernighan", "knuth", "lamport", "liskov",
          "lovelace", "noether", "ritchie", "shannon", "thompson", "torvalds", "turing", "wing")


class Starting:
    """A container's first process, or an ``exec`` process, on its way to
    execve. The loop watches its start channel (never waiting on it); the
    client's reply -- or, stage by stage (``run --explain``), its events --
    is sent once the child has exec'd or failed, or when its deadline passes."""

    def __init__(self, client, chan: socket.socket, transcript, attach: bool, *, container: Container,
                 pid: int, stepwise: bool = False, exec_: "Exec | None" = None, sinks: dict | None = None):
        self.client = client            # the connection that gets the reply (None once it has gone)
        self.chan = chan                # the start channel to the half-built container
        self.transcript = transcript    # the supervisor's own stages (limits, fork, cgroup)
        self.attach = attach
        self.container = container
        self.pid = pid
        self.stepwise = stepwise        # run --explain: each stage waits for proceed; no deadline
        self.exec = exec_               # set when this is an exec process
        self.sinks = sinks or {}        # stream -> the attached client's pipe, copied to once it runs
        self.deadline = None if stepwise else time.monotonic() + START_TIMEOUT
        self.pty = -1
        self.error: dict | None = None
        self.stages: list = []          # the child's, once it execs
        self.abandoned = False          # its client went away: the container goes too


class Sink:
    """An attached client's pipe that one output stream of a container is
    copied to, as the container's output is logged: the container itself
    never holds a client's fds. Written when writable; while its backlog is
    past :data:`SINK_BACKLOG`, the container's pipe is not read (so the
    container waits on its own full pipe, not the supervisor on the client)."""

    def __init__(self, fd: int, conn, container: Container):
        self.fd = fd
        self.conn = conn
        self.container = container
        self.buf = bytearray()
        self.closing = False            # its source has ended: closed once flushed
        self.writing = False            # registered for EVENT_WRITE


class Exec:
    """A process started in a running container by ``exec``."""

    def __init__(self, eid: str, container: Container, pid: int, argv: list[str], tty: bool):
        self.id = eid
        self.container = container
        self.pid = pid
        self.pidfd = os.pidfd_open(pid)
        self.argv = argv
        self.tty = tty
        self.pty = -1
        self.attached: set = set()


class Connection(Channel):
    """The supervisor's end of a client connection, never blocking: what is
    sent waits in an output queue, written whenever the socket is writable
    (each message's fds ride with its first byte). A send to a vanished
    client is not an error (it is dropped when its socket reads EOF)."""

    def __init__(self, sock: socket.socket, sup: "Supervisor"):
        super().__init__(sock)
        self.sup = sup
        self.out: collections.deque = collections.deque()   # [memoryview, [fds]] per message
        self.queued = 0                  # bytes waiting in out
        self.dead = False                # the peer has gone (or was cut off)
        self.closing: float | None = None  # close once flushed, or at this time at the latest

    policy: "policy.Policy | None" = None    # decided at accept from the peer's credentials
    peer_uid: int = -1

    def send(self, message: dict, fds: list[int] = ()) -> bool:
        if self.dead:
            return False
        data = encode(message, len(fds))
        self.out.append([memoryview(data), [os.dup(fd) for fd in fds]])
        self.queued += len(data)
        self.flush()
        return not self.dead

    def flush(self) -> None:
        """Write what the socket takes now; watch for writability if more is left."""
        while self.out and not self.dead:
            view, fds = self.out[0]
            try:
                if fds:
                    n = self.sock.sendmsg([view], [(socket.SOL_SOCKET, socket.SCM_RIGHTS,
                                                    array.array("i", fds))])
                else:
                    n = self.sock.send(view)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.dead = True
                break
            for fd in fds:
                os.close(fd)
            fds.clear()
            self.queued -= n
            if n < len(view):
                self.out[0][0] = view[n:]
            else:
                self.out.popleft()
        if self.dead:
            self.discard()
        self.sup.watch_connection(self)

    def discard(self) -> None:
        """Forget what was not sent (its fds closed)."""
        for _view, fds in self.out:
            for fd in fds:
                os.close(fd)
        self.out.clear()
        self.queued = 0

    def close(self) -> None:
        self.dead = True
        self.discard()
        super().close()


class Supervisor:
    """The event loop and the container table."""

    def __init__(self, state: Path, data: Path, *, idle_timeout: float = 600.0):
        from .cgroups import detect
        from .images import ImageStore

        self.state = paths.ensure_private_dir(state)
        self.data = paths.ensure_private_dir(data)
        self.containers_dir = paths.ensure_private_dir(self.data / "containers")
        self.store = ImageStore(self.data / "images")
        self.events = EventLog(self.data / "events.jsonl")
        self.cgroups = detect()
        # Tests and instructors' sandboxes keep their cgroups apart with this.
        self.cgroup_parent = os.environ.get("CONTAINER_LAB_CGROUP_PARENT", "container-lab")
        self.kernel = sc.Syscalls()
        self.idle_timeout = idle_timeout
        self.sel = selectors.DefaultSelector()
        self.containers: dict[str, Container] = {}
        self.execs: dict[str, Exec] = {}
        self.subscribers: set[Connection] = set()     # clients that get each event as it happens
        self.starts: dict[int, Starting] = {}           # children on their way to execve, by id()
        self.rm_waiters: dict[str, set] = {}            # container id -> clients of rm -f awaiting its exit
        self.dropping: set[Connection] = set()          # connections to drop once the handler is done
        self.sinks: dict[int, Sink] = {}                # a container's output pipe -> attached client's pipe
        self.ending_sinks: set[Sink] = set()            # sinks whose source ended, flushing their rest
        self.logs: dict[str, LogWriter] = {}            # container id -> its log (incremental decoders)
        self.reading: set[int] = set()                  # output fds registered for reading
        self.budget: dict[str, float] = {}              # container id -> output bytes it may still have read
        self.throttled: set[str] = set()                # containers with output left unread for now
        self.next_refill = 0.0
        self.log_path = self.state / "supervisor.log"
        # Tidying after exits (see finish): done while a new container is being
        # built, when nothing else waits, or before any request that looks.
        self.tidying: collections.deque = collections.deque()
        self.events.listeners.append(self.publish)
        self.image_cache: dict[str, tuple[int, object]] = {}
        self.running = True
        self.last_activity = time.monotonic()
        self.next_limit_check = 0.0
        # Crash tests only: die (SIGKILL) at this point of a start; see crash_point.
        self.crash_at = os.environ.get("CONTAINER_LAB_CRASH_AT", "")
        # Our own PID namespace, to return to after each container's fork.
        self.pidns_fd = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        self.devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        self.machine = os.uname().machine
        # Who may connect (engine.policy): root and our own uid as owners;
        # the uids the environment names as classroom seats (for tests, until
        # the classroom); anyone else is refused.
        self.seat_uids = policy.seat_uids_from_env()
        seat_volumes = os.environ.get(policy.SEAT_VOLUMES_ENV)
        self.seat_policy = policy.SeatPolicy(volume_roots=(seat_volumes,) if seat_volumes else ())
        # The filter, packed once for every child (None: no table for this architecture).
        program = seccomp.program(self.machine)
        self.seccomp_program = seccomp.pack(program) if program is not None else None

    # -- start-up ----------------------------------------------------------
    def listen(self) -> None:
        """Take the lock (one supervisor per state dir) and bind the socket."""
        self.lock_fd = os.open(self.state / "supervisor.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit("container-lab supervisor: another supervisor is running for this state dir")
        sock_path = self.state / "supervisor.sock"
        try:
            sock_path.unlink()
        except FileNotFoundError:
            pass
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            self.server.bind(str(sock_path))
        finally:
            os.umask(old)
        self.server.listen(64)
        self.server.setblocking(False)
        self.sel.register(self.server, selectors.EVENT_READ, ("accept", None))
        (self.state / "supervisor.pid").write_text(f"{os.getpid()}\n")
        self.load_records()

    def load_records(self) -> None:
        """Read the containers' records and reconcile them with the kernel.

        A container that was running when a previous supervisor stopped is
        adopted if its PID 1 still runs -- the same pid AND the same start
        time, so a reused pid is never mistaken for it; its exit code will be
        unknown (255), since only a parent can read it. Otherwise it is
        recorded as exited and its cgroup removed."""
        for cdir in sorted(self.containers_dir.iterdir()):
            if not (cdir / "container.json").exists():
                # Debris of a create that a crash cut short: nothing refers to it.
                self.remove_debris(cdir)
                continue
            try:
                c = Container.load(cdir)
            except (OSError, ValueError) as e:
                self.set_aside(cdir, e)
                continue
            if c.status == "running":
                self.reconcile(c)
            else:
                self.release_stray_cgroup(c)
            if c.config.remove and c.status != "running":
                self.remove_files(c)
                continue
            self.containers[c.id] = c

    def set_aside(self, cdir: Path, why: Exception) -> Path | None:
        """A damaged record: no field of it can be trusted, so its container
        is neither adopted nor listed. Whatever its cgroup (named by the
        directory) still holds is ended, the directory is moved to
        ``<data>/damaged/`` with one line in the log, and ``gc`` removes it."""
        from .container import ID_RE

        reason = why.strerror if isinstance(why, OSError) and why.strerror else str(why)
        if ID_RE.fullmatch(cdir.name):
            try:
                self.cgroups.open(cdir.name, parent=self.cgroup_parent).destroy()
            except EngineError:
                pass
        try:
            damaged = paths.ensure_private_dir(self.data / "damaged")
            dest = damaged / f"{cdir.name}.{secrets.token_hex(4)}"
            os.rename(cdir, dest)
        except OSError as e:
            print(f"container record {cdir.name[:64]} is damaged ({reason}) and cannot be set aside: "
                  f"{e.strerror or e}", file=sys.stderr)
            return None
        print(f"container record {cdir.name[:64]} is damaged ({reason}); set aside in {dest} "
              "(`container-lab gc` removes it)", file=sys.stderr)
        return dest

    def release_stray_cgroup(self, c: Container) -> None:
        """A container that is not running has no cgroup -- unless a crash
        came between its start and its record: then kill what is in it."""
        try:
            self.cgroups.open(c.id, parent=self.cgroup_parent).destroy()
        except CgroupError:
            pass

    def reconcile(self, c: Container) -> None:
        try:
            c.cgroup = self.cgroups.open(c.id, parent=self.cgroup_parent)
        except CgroupError:
            c.cgroup = None
        alive = c.pid > 0 and process_start_time(c.pid) == c.pid_start
        if alive:
            try:
                c.pidfd = os.pidfd_open(c.pid)
            except OSError:
                alive = False
        if alive:
            c.adopted = True
            self.sel.register(c.pidfd, selectors.EVENT_READ, ("exit", c))
            return
        if c.cgroup is not None:
            c.cgroup.destroy()
            c.cgroup = None
        c.status, c.exit_code, c.pid, c.finished = "exited", 255, 0, now()
        c.error = "the supervisor stopped while this container ran; its exit status is unknown"
        c.save()
        self.emit("exited", c, exit_code=255, oom_killed=False)

    # -- the loop ------------------------------------------------------------
    def serve(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "running", False))
        signal.signal(signal.SIGINT, lambda *_: setattr(self, "running", False))
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        while self.running:
            t = time.monotonic()
            timers = [5.0, self.next_limit_check - t]
            timers += [c.stop_deadline - t for c in self.containers.values() if c.stop_deadline]
            timers += [st.deadline - t for st in self.starts.values() if st.deadline]
            timers += [conn.closing - t for conn in self.closing_connections()]
            if self.throttled:
                timers.append(self.next_refill - t)
            timeout = max(0.0, min(timers))
            building = False
            if self.tidying:
                # A child building its container: tidy meanwhile. Otherwise a short
                # grace first: a next run would tidy while its child builds.
                building = any(not st.stepwise for st in self.starts.values())
                timeout = min(timeout, 0.0 if building else TIDY_GRACE)
            ready = self.sel.select(timeout=timeout)
            if self.tidying and (building or not ready):
                self.tidy_one()
            for key, events in ready:
                kind, obj = key.data
                try:
                    if kind == "client" and events & selectors.EVENT_WRITE:
                        self.on_writable(obj)
                    if kind != "client" or events & selectors.EVENT_READ:
                        getattr(self, f"on_{kind}")(key.fileobj, obj)
                except Exception:  # noqa: BLE001 - one bad event must not stop the supervisor
                    self.report(f"handling a {kind} event failed")
                self.drop_pending()
            try:
                self.on_tick()
            except Exception:  # noqa: BLE001
                self.report("a timer failed")
            self.drop_pending()
            if self.idle():
                break
        self.shutdown()

    def drop_pending(self) -> None:
        while self.dropping:
            self.drop(self.dropping.pop())

    def closing_connections(self) -> list:
        return [key.data[1] for key in self.sel.get_map().values()
                if key.data[0] == "client" and key.data[1].closing is not None]

    def report(self, what: str) -> None:
        """Log a failure with its traceback to <state>/supervisor.log (rotated
        past LOG_LIMIT, one old file kept) and to stderr if that is elsewhere."""
        text = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {what}\n{traceback.format_exc()}"
        old = self.log_path.with_name(self.log_path.name + ".1")
        try:
            try:
                if self.log_path.stat().st_size > LOG_LIMIT:
                    os.replace(self.log_path, old)
            except FileNotFoundError:
                pass
            fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, text.encode("utf-8", "replace"))
                err = os.fstat(2)
                same = os.path.samestat(os.fstat(fd), err) or (old.exists() and os.path.samestat(old.stat(), err))
            finally:
                os.close(fd)
        except OSError:
            same = False
        if not same:
            try:
                sys.stderr.write(text)
                sys.stderr.flush()
            except (OSError, ValueError):
                pass

    def on_tick(self) -> None:
        """Timers: stop timeouts that ran out, starts past their deadline,
        connections closing, output budgets, and a look at the limit counters."""
        t = time.monotonic()
        for c in list(self.containers.values()):
            if c.stop_deadline and t >= c.stop_deadline:
                c.stop_deadline = None
                if c.status == "running":
                    self.signal(c, signal.SIGKILL)
        for st in list(self.starts.values()):
            if st.deadline and t >= st.deadline:
                what = "process" if st.exec is not None else "container"
                st.error = {"error": f"the {what} did not start in time ({START_TIMEOUT:.0f} s)", "stage": "",
                            "exit_code": 125}
                try:
                    os.kill(st.pid, signal.SIGKILL)     # our child, not reaped yet: the pid is its own
                except ProcessLookupError:
                    pass
                self.end_start(st)
        for conn in self.closing_connections():
            if t >= conn.closing:
                self.dropping.add(conn)
        if t >= self.next_refill:
            self.refill(t)
        if t >= self.next_limit_check:
            self.next_limit_check = t + LIMIT_CHECK_INTERVAL
            for c in self.containers.values():
                if c.status == "running":
                    self.check_limits(c)

    def check_limits(self, c: Container, cgroup=None) -> None:
        """Record an ``oom`` or ``pids-limit-hit`` event when the kernel's counter grew."""
        cgroup = cgroup or c.cgroup
        if cgroup is None:
            return
        try:
            usage = cgroup.usage()
        except (OSError, EngineError):
            return
        for counter, kind in (("oom_kills", "oom"), ("pids_max_hits", "pids-limit-hit")):
            value = usage.get(counter) or 0
            if value > c.seen[counter]:
                self.emit(kind, c, count=value - c.seen[counter])
                c.seen[counter] = value

    def idle(self) -> bool:
        busy = bool(self.tidying) or bool(self.starts) or any(
            c.status == "running" for c in self.containers.values()) or self.execs or any(
            key.data[0] == "client" for key in self.sel.get_map().values())
        if busy:
            self.last_activity = time.monotonic()
            return False
        return time.monotonic() - self.last_activity > self.idle_timeout

    def shutdown(self) -> None:
        """Stop every running container, then leave."""
        self.tidy_all()
        for st in list(self.starts.values()):     # half-built: ended, its start recorded as failed
            if st.exec is None:
                self.abandon_start(st.container)
            else:
                try:
                    os.kill(st.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            st.error = st.error or {"error": "the supervisor stopped", "stage": "", "exit_code": 125}
            self.end_start(st)
        deadline = time.monotonic() + 10.0          # for all of them: a stuck one is given up on
        for c in list(self.containers.values()):
            if c.status == "running":
                self.signal(c, signal.SIGKILL)
                self.finish(c, self.wait_exit(c, max(0.2, deadline - time.monotonic())))
        self.tidy_all()
        try:
            self.cgroups.remove_parent_if_empty(self.cgroup_parent)
        except EngineError:
            pass
        for name in ("supervisor.sock", "supervisor.pid"):
            try:
                (self.state / name).unlink()
            except FileNotFoundError:
                pass

    def emit(self, kind: str, c: Container, **extra) -> dict:
        return self.events.append(kind, **c.event_fields(), **extra)

    # -- connections ---------------------------------------------------------
    def on_accept(self, server, _) -> None:
        try:
            sock, _addr = server.accept()
        except BlockingIOError:
            return
        sock.setblocking(False)          # never wait on a client: see Connection
        conn = Connection(sock, self)
        self.admit_peer(conn)
        self.sel.register(sock, selectors.EVENT_READ, ("client", conn))

    def admit_peer(self, conn: Connection) -> None:
        """Hold a new connection to the policy of its peer's uid, read from the
        kernel (SO_PEERCRED), never from what the client says; None: refused
        (its requests are answered with the refusal, and it is closed)."""
        try:
            conn.peer_uid = policy.peer_uid(conn.sock)
        except OSError:
            conn.peer_uid = -1
        conn.policy = policy.for_peer(conn.peer_uid, own_uid=os.geteuid(), seats=self.seat_uids,
                                      seat=self.seat_policy)

    def on_client(self, sock, conn: Connection) -> None:
        if conn.closing is not None:
            return
        try:
            if not conn.feed():
                self.drop(conn)
                return
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.drop(conn)
            return
        except MessageTooLarge as e:
            self.refuse(conn, str(e))
            return
        while not conn.dead and conn.closing is None:
            try:
                item = conn.take()
            except MessageTooLarge as e:
                self.refuse(conn, str(e))
                return
            except ProtocolError as e:
                conn.send({"ok": False, "error": f"bad request: {e}", "kind": "InvalidArgument", "exit_code": 125})
                continue
            if item is None:
                break
            self.handle(conn, *item)
        if conn.dead:
            self.drop(conn)

    def refuse(self, conn: Connection, error: str) -> None:
        """Answer a request too large to read at once, then hang up (the rest
        of it is never read)."""
        conn.send({"ok": False, "error": f"bad request: {error}", "kind": "InvalidArgument", "exit_code": 125})
        self.close_when_flushed(conn)

    def close_when_flushed(self, conn: Connection, grace: float = 5.0) -> None:
        conn.closing = time.monotonic() + grace
        conn.buf.clear()
        self.watch_connection(conn)

    def on_writable(self, conn: Connection) -> None:
        conn.flush()

    def watch_connection(self, conn: Connection) -> None:
        """Keep a client's registration in step with its state: readable while
        it may send requests, writable while output waits; gone once closed
        and flushed."""
        if conn.sock.fileno() < 0:
            return
        if conn.dead or (conn.closing is not None and not conn.out):
            self.dropping.add(conn)         # dropped by the loop, not under a caller's feet
            return
        events = (0 if conn.closing is not None else selectors.EVENT_READ) | (
            selectors.EVENT_WRITE if conn.out else 0)
        try:
            key = self.sel.get_key(conn.sock)
        except (KeyError, ValueError):
            return                          # not registered yet (on_accept does it) or dropped
        if key.events != events:
            self.sel.modify(conn.sock, events, key.data)

    def drop(self, conn: Connection) -> None:
        if conn.sock.fileno() < 0:
            return
        try:
            self.sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        for c in self.containers.values():
            if conn in c.attached:
                c.attached.discard(conn)
                if c.pty >= 0 and not c.attached and not c.drain_pty:
                    self.start_draining(c, c.pty)
        self.subscribers.discard(conn)
        for e in self.execs.values():
            e.attached.discard(conn)
        for waiters in self.rm_waiters.values():
            waiters.discard(conn)
        for sink in [k for k in [*self.sinks.values(), *self.ending_sinks] if k.conn is conn]:
            self.close_sink(sink)
        for st in list(self.starts.values()):
            if st.client is conn:
                st.client = None
                if st.stepwise:
                    self.abandon_start(st.container)
        conn.close()

    def handle(self, conn: Connection, msg: dict, fds: list[int]) -> None:
        """Run one request. A handler returns its reply (and fds), or None when
        the reply comes later (a start answered once its child has exec'd, an
        rm -f once the exit has happened). A bad request is an InvalidArgument
        with a clear message; anything else is a bug: logged with its
        traceback, answered with one line."""
        op = msg.get("op", "")
        try:
            if conn.policy is None:
                raise policy.PolicyRefused(f"this container-lab supervisor serves root and uid {os.geteuid()}; "
                                           f"uid {conn.peer_uid} may not use it")
            method = getattr(self, f"op_{op}", None) if isinstance(op, str) and op.isidentifier() else None
            if method is None:
                raise InvalidArgument(f"unknown request {str(op)[:40]!r}")
            conn.policy.check_request(op)
            if op not in TIDY_LATER:
                self.tidy_all()       # what a client sees (ps, ping, gc ...) is tidied already
            result = method(conn, msg, fds)
            if result is not None:
                reply, reply_fds = result
                conn.send({"ok": True, **reply}, reply_fds)
                for fd in reply_fds:
                    os.close(fd)
        except EngineError as e:
            conn.send(self.error_reply(e))
        except Exception:  # noqa: BLE001 - a bug: logged, and the supervisor lives on
            self.report(f"request {str(op)[:40]!r} failed")
            conn.send({"ok": False, "error": f"the supervisor failed on this {str(op)[:40]} request "
                       f"(an engine bug; details in {self.log_path})", "kind": "EngineError", "exit_code": 125})
        finally:
            for fd in fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
            if conn.policy is None:
                self.close_when_flushed(conn)     # the refusal goes out first

    @staticmethod
    def error_reply(e: EngineError) -> dict:
        return {"ok": False, "error": e.message, "kind": type(e).__name__, "exit_code": e.exit_code,
                "stage": getattr(e, "stage", "")}

    # -- requests ------------------------------------------------------------
    def op_ping(self, conn, msg, fds):
        return {"protocol": PROTOCOL, "pid": os.getpid(), "cgroups": self.cgroups.name,
                "events_seq": self.events.seq}, []

    def op_shutdown(self, conn, msg, fds):
        self.running = False
        return {}, []

    def op_subscribe(self, conn, msg, fds):
        """Events after the cursor ``after`` now (in the reply), then each new
        one as ``{"event": "event", "data": {...}}`` on this connection."""
        after = _number(msg, "after", 0, int)
        self.subscribers.add(conn)
        return {"events": list(self.events.read(after=after)) if after < self.events.seq else [],
                "seq": self.events.seq}, []

    def publish(self, event: dict) -> None:
        for conn in list(self.subscribers):
            if conn.queued > SUBSCRIBER_BACKLOG:
                self.cut_off(conn)
            elif not conn.send({"event": "event", "data": event}):
                self.subscribers.discard(conn)

    def cut_off(self, conn: Connection) -> None:
        """A subscriber too far behind (it stopped reading): what it has not
        been sent is dropped, it is told so, and it is hung up on."""
        self.subscribers.discard(conn)
        head = conn.out.popleft() if conn.out else None
        partly_sent = head is not None and head[0].nbytes < len(head[0].obj)
        conn.discard()
        if partly_sent:              # the message being written is finished, the rest dropped
            conn.out.append(head)
            conn.queued = head[0].nbytes
        elif head is not None:
            for fd in head[1]:
                os.close(fd)
        conn.send({"event": "dropped", "error": "events were coming faster than this client read them: "
                   "it was cut off (subscribe again to go on)"})
        self.close_when_flushed(conn)

    def op_ps(self, conn, msg, fds):
        items = [c.summary() for c in sorted(self.containers.values(), key=lambda c: c.created)]
        if not msg.get("all"):
            items = [c for c in items if c["status"] in ("running", "starting")]
        return {"containers": items}, []

    def op_inspect(self, conn, msg, fds):
        c = self.find(msg["id"])
        rec = c.record()
        rec["namespaces"] = self.namespaces(c)
        rec["rootfs"] = {"layers": c.image.get("layers", []), "upper": str(c.dir / "upper"),
                         "work": str(c.dir / "work")}
        rec["adopted"] = c.adopted
        rec["warnings"] = c.warnings
        if msg.get("transcript"):
            try:
                rec["transcript"] = json.loads((c.dir / "transcript.json").read_text())
            except (OSError, ValueError):
                rec["transcript"] = None
        return {"container": rec}, []

    def namespaces(self, c: Container) -> dict:
        """Inode of each namespace of the container's PID 1 beside the supervisor's own."""
        if c.status not in ("running", "starting") or not c.pid:
            return {}
        out = {}
        for kind in NAMESPACE_KINDS:
            try:
                mine = os.stat(f"/proc/{c.pid}/ns/{kind}").st_ino
                host = os.stat(f"/proc/self/ns/{kind}").st_ino
            except OSError:
                continue
            out[kind] = {"container": mine, "host": host, "shared": mine == host}
        return out

    def op_wait(self, conn, msg, fds):
        c = self.find(msg.get("id"))
        if c.status not in ("running", "starting"):
            return {"event": "exit", **self.exit_info(c)}, []
        c.attached.add(conn)
        return {"waiting": True}, []

    def op_kill(self, conn, msg, fds):
        sig = msg.get("signal", signal.SIGKILL)
        if isinstance(sig, bool) or not isinstance(sig, int) or sig not in signal.valid_signals():
            raise InvalidArgument(f"invalid signal: {sig}")
        c = self.find(msg.get("id"))
        if not c.can_kill():
            raise NotRunning(f"cannot kill container {c.name}: container {c.id} is not running")
        self.signal(c, sig)
        return {"id": c.id}, []

    def op_stop(self, conn, msg, fds):
        """SIGTERM, then SIGKILL after the timeout (docker stop); the reply waits for the exit."""
        c = self.find(msg.get("id"))
        timeout = _number(msg, "timeout", 10.0, float)
        if c.status == "starting":
            raise NotRunning(f"cannot stop container {c.name}: it is being started")
        if c.status != "running":
            return {"event": "exit", **self.exit_info(c)}, []
        self.signal(c, signal.SIGTERM)
        c.stop_deadline = time.monotonic() + max(0.0, timeout)
        c.attached.add(conn)
        return {"waiting": True}, []

    def op_start(self, conn, msg, fds):
        c = self.find(msg.get("id"))
        if c.status in ("running", "starting"):
            return {"id": c.id, "name": c.name, "pid": c.pid, "already": True, "warnings": []}, []
        conn.policy.admit(c.config)           # a container another policy created
        c.volume_resolve = conn.policy.volume_resolve()
        return self.launch(c, conn, msg, fds)

    def op_rm(self, conn, msg, fds):
        c = self.find(msg.get("id"))
        if c.status == "running":
            if not msg.get("force"):
                raise ContainerError(f"cannot remove container {c.name}: container is running: "
                                     "stop the container before removing or force remove")
            # Removed when its exit is handled (finish); the reply waits for
            # that, the loop does not: the kernel ends a PID 1 only once every
            # process of its namespace is reaped, which may take a while.
            c.config.remove = True
            self.signal(c, signal.SIGKILL)
            self.rm_waiters.setdefault(c.id, set()).add(conn)
            return None
        elif c.starting is not None:          # half-built: ends, then goes (answered by end_start)
            if not msg.get("force"):
                raise ContainerError(f"cannot remove container {c.name}: it is being started; "
                                     "force remove to end it")
            c.config.remove = True
            self.abandon_start(c)
            self.rm_waiters.setdefault(c.id, set()).add(conn)
            return None
        else:
            self.remove(c)
        return {"id": c.id, "name": c.name}, []

    def op_prune(self, conn, msg, fds):
        """Remove every stopped container."""
        removed = []
        for c in list(self.containers.values()):
            if c.status not in ("running", "starting"):
                size = _dir_size(c.dir / "upper")
                self.remove(c)
                removed.append({"id": c.id, "size": size})
        return {"removed": removed}, []

    def op_gc(self, conn, msg, fds):
        """Remove what crashed runs left: container dirs with no record, cgroups
        of containers that are not running, half-written files."""
        import shutil

        swept = []
        known = {c.id for c in self.containers.values()}
        for cdir in sorted(self.containers_dir.iterdir()):
            if cdir.name not in known and not (cdir / "container.json").exists():
                self.remove_debris(cdir)
                swept.append(f"container dir {cdir}")
                continue
            if cdir.name not in known:          # a record damaged since the supervisor started
                try:
                    Container.load(cdir)
                except (OSError, ValueError) as e:
                    self.set_aside(cdir, e)
                    continue
            for tmp in cdir.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)
                swept.append(f"temp file {tmp}")
        damaged = self.data / "damaged"
        for entry in sorted(damaged.iterdir()) if damaged.is_dir() else []:
            shutil.rmtree(entry, ignore_errors=True)
            swept.append(f"damaged record {entry.name.rsplit('.', 1)[0]}")
        running = {c.id for c in self.containers.values() if c.status == "running"}
        for cid in self.cgroups.list_ids(self.cgroup_parent):
            if cid not in running:
                try:
                    self.cgroups.open(cid, parent=self.cgroup_parent).destroy()
                    swept.append(f"cgroup {self.cgroup_parent}/{cid}")
                except CgroupError:
                    pass
        return {"swept": swept}, []

    def op_run(self, conn, msg, fds):
        config = _config_from(msg.get("config"))
        conn.policy.admit(config)
        if not paths.is_root():
            raise EngineError("running containers needs root for now (rootless mode is not built yet): "
                              "try `sudo container-lab run ...`")
        for kind, mode in (("pid", config.pid_mode), ("ipc", config.ipc_mode), ("net", config.network)):
            self.sharing(mode, kind)        # refused before anything is made, as docker does
        if msg.get("stepwise") and config.tty:
            raise InvalidArgument("a stage-by-stage start cannot give the container a terminal (-t)")
        c = self.create(config)
        c.volume_resolve = conn.policy.volume_resolve()
        return self.launch(c, conn, msg, fds)

    def op_create(self, conn, msg, fds):
        """Create a container without starting it (docker create); ``start`` runs it."""
        config = _config_from(msg.get("config"))
        conn.policy.admit(config)
        for kind, mode in (("pid", config.pid_mode), ("ipc", config.ipc_mode), ("net", config.network)):
            self.sharing(mode, kind)
        c = self.create(config)
        return {"id": c.id, "name": c.name, "warnings": []}, []

    def launch(self, c: Container, conn, msg, fds):
        """Start ``c``: the reply is sent once its first process has exec'd or
        failed (see :meth:`end_start`); attached, the client is handed the
        terminal, or its pipes get the output.

        With ``stepwise`` the reply comes at once and the start goes on one
        stage at a time: the client gets a ``{"event": "stage"}`` after each
        stage and sends ``proceed`` for the next (see :class:`Stepwise`)."""
        winsize = _winsize(msg)
        attach = bool(msg.get("attach"))
        stepwise = bool(msg.get("stepwise"))
        try:
            st = self.start(c, conn, fds, winsize, attach, stepwise)
        except EngineError:
            if c.config.remove:
                self.remove(c)
            raise
        if stepwise:
            return {"id": c.id, "name": c.name, "pid": c.pid, "stepwise": True, "warnings": c.warnings,
                    "stages": st.transcript.done()}, []     # the supervisor's own, done already
        return None

    def op_exec(self, conn, msg, fds):
        c = self.find(msg.get("id"))
        if not c.can_exec():
            raise NotRunning(f"container {c.id} is not running")
        opts = msg.get("exec") or {}
        if not isinstance(opts, dict):
            raise InvalidArgument("exec options must be an object")
        argv = opts.get("cmd") or []
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise InvalidArgument("exec needs a command")
        check_argv(argv)
        extra_env, workdir, user = opts.get("env") or [], opts.get("workdir"), opts.get("user")
        check_process_options(extra_env, workdir, user)
        extra_env = list(extra_env)
        tty, detach = bool(opts.get("tty")), bool(opts.get("detach"))
        env = dict(item.partition("=")[::2] for item in c.process["env"])
        if tty:
            env.setdefault("TERM", "xterm")
        env.update(item.partition("=")[::2] for item in extra_env)
        spec = runtime.ChildSpec(
            id=c.id, rootfs="", lowerdir="", upperdir="", workdir="", hostname=c.process["hostname"],
            argv=argv, env=[f"{k}={v}" for k, v in env.items()],
            cwd=workdir or c.process["cwd"], user=user or c.process["user"] or None,
            tty=tty, winsize=_winsize(msg),
            procs_files=[str(p) for p in c.cgroup.procs_files()] if c.cgroup else [],
            userns=bool(c.process.get("userns")), **self.filters(c.config, []))
        if tty or detach or len(fds) < 2:
            stdio = (self.devnull,) * 3
        else:
            # Pipes only (the client relays its own terminal and files): an
            # exec'd process gets them as they are, nothing is logged.
            interactive = opts.get("interactive") and len(fds) == 3
            stdin = _pipe(fds[0], "standard input") if interactive else self.devnull
            stdio = (stdin, _pipe(fds[-2], "standard output"), _pipe(fds[-1], "standard error"))
        pidns = os.open(f"/proc/{c.pid}/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        try:
            pid, chan = self.fork_into(pidns, lambda ch: runtime.exec_main(spec, c.pid, ch, stdio, self.kernel))
        finally:
            os.close(pidns)
        e = Exec(secrets.token_hex(32), c, pid, argv, tty)
        self.watch_start(Starting(conn, chan, None, not detach, container=c, pid=pid, exec_=e))
        return None                     # answered by end_exec_start

    def end_exec_start(self, st: Starting) -> None:
        """An exec'd process has reached execve (it runs) or failed: tell its client."""
        e, c = st.exec, st.container
        error = st.error
        if error is None and not st.stages:
            error = {"error": "the process died before it could start", "stage": "", "exit_code": 125}
        if error:
            self.reap(e.pid, e.pidfd)
            if st.pty >= 0:
                os.close(st.pty)
            if st.client is not None:
                st.client.send({"ok": False, "error": str(error.get("error")), "kind": "StartError",
                                "exit_code": int(error.get("exit_code", 126)), "stage": error.get("stage", "")})
            return
        self.execs[e.id] = e
        e.pty = st.pty
        self.sel.register(e.pidfd, selectors.EVENT_READ, ("exec_exit", e))
        self.events.append("exec", **c.event_fields() | {"argv": e.argv, "tty": e.tty}, exec_id=e.id)
        if st.client is None:
            return
        reply_fds = []
        if st.attach:
            e.attached.add(st.client)
            if e.pty >= 0:
                reply_fds = [e.pty]
        st.client.send({"ok": True, "id": c.id, "name": c.name, "exec_id": e.id, "pid": e.pid, "warnings": []},
                       reply_fds)

    def on_exec_exit(self, _fileobj, e: Exec) -> None:
        try:
            pid, status = os.waitpid(e.pid, os.WNOHANG)
            if pid == 0:
                return                   # not yet (its pidfd says it has exited: the next look reaps it)
            code = os.waitstatus_to_exitcode(status)
        except ChildProcessError:
            code = -9
        code = code if code >= 0 else 128 - code
        self.sel.unregister(e.pidfd)
        os.close(e.pidfd)
        if e.pty >= 0:
            os.close(e.pty)
        self.execs.pop(e.id, None)
        c = e.container
        self.events.append("exec-exited", **c.event_fields() | {"argv": e.argv, "tty": e.tty},
                           exec_id=e.id, exit_code=code)
        for conn in list(e.attached):
            conn.send({"event": "exit", "id": c.id, "exec_id": e.id, "exit_code": code, "oom_killed": False,
                       "error": ""})

    def op_rmi(self, conn, msg, fds):
        """Remove images (``rmi``, ``image rm``) or the unused ones (``image
        prune``). Here, not in the client: only the supervisor knows every
        container -- created, running, or half-built by a start in flight --
        and it handles one request at a time, so no container can take an
        image's layers between the check of what is in use and the delete.

        ``images``: references or ids; ``force``: untag even when a
        container uses it (its layers stay for the container); ``prune``:
        collect what no tag and no container needs, after untagging every
        image no container uses when ``all``. Returns ``results`` (one per
        image: ``untagged`` or ``error``) and ``freed`` bytes."""
        from .errors import ImageError

        keep = {Path(p).name for c in self.containers.values() for p in (c.image.get("layers") or [])}
        used = {}
        for c in sorted(self.containers.values(), key=lambda c: c.created):
            used.setdefault(c.image.get("id"), c.name)
        results, freed = [], 0
        refs = msg.get("images") or []
        if msg.get("prune") and msg.get("all"):
            refs = [im.ref for im in self.store.list() if im.id not in used]
        for ref in refs:
            try:
                image = self.store.find(ref)
                user = used.get(image.id)
                if user and not msg.get("force"):
                    raise ImageError(f"conflict: unable to remove image {ref} (must force): container "
                                     f"{user} uses it")
                freed += self.store.remove(image.ref, keep=keep)
                results.append({"image": ref, "untagged": image.ref, "id": image.id})
            except EngineError as e:
                results.append({"image": ref, "error": e.message})
        if msg.get("prune"):
            freed += self.store.collect_garbage(keep)
        self.image_cache.clear()
        return {"results": results, "freed": freed}, []

    # -- containers ----------------------------------------------------------
    def find(self, ref: str) -> Container:
        """By full id, unique id prefix or name (docker's rules)."""
        if not isinstance(ref, str) or not ref:
            raise InvalidArgument("a container name or id is required")
        for c in self.containers.values():
            if c.name == ref or c.id == ref:
                return c
        matches = [c for c in self.containers.values() if c.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidArgument(f"multiple containers match id prefix {ref!r}")
        raise ContainerNotFound(f"No such container: {ref}")

    def unique_name(self) -> str:
        taken = {c.name for c in self.containers.values()}
        for _ in range(100):
            name = f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_NAMES)}"
            if name not in taken:
                return name
        return f"lab_{secrets.token_hex(4)}"

    def create(self, config: ContainerConfig) -> Container:
        name = config.name or self.unique_name()
        for other in self.containers.values():
            if other.name == name:
                raise NameConflict(
                    f'Conflict. The container name "/{name}" is already in use by container '
                    f'"{other.id}". You have to remove (or rename) that container to be able to reuse that name.')
        image = self.resolve_image(config.image)
        img = image.config or {}
        for key in ("Entrypoint", "Cmd"):
            if img.get(key) is not None:
                check_argv(img[key], f"the image's {key} ")
        check_process_options(img.get("Env") or [], img.get("WorkingDir") or None, img.get("User") or None,
                              origin="the image's ")
        entrypoint = config.entrypoint if config.entrypoint is not None else (img.get("Entrypoint") or [])
        cmd = config.cmd or ([] if config.entrypoint is not None else (img.get("Cmd") or []))
        argv = list(entrypoint) + list(cmd)
        if not argv:
            raise InvalidArgument("no command specified")
        for vol in config.volumes:
            if not os.path.exists(vol.source):
                raise InvalidArgument(f"invalid volume: host path {vol.source} does not exist")
        size = (config.storage_opt or {}).get("size")
        if size:
            from . import quota
            can, why = quota.support(str(self.containers_dir))
            if not can:
                raise InvalidArgument(f"{quota.UNSUPPORTED}: {why}")
        cid = secrets.token_hex(32)
        cdir = self.containers_dir / cid
        paths.ensure_private_dir(cdir)
        for sub in ("upper", "work", "rootfs"):
            (cdir / sub).mkdir(mode=0o755)
        if size:
            try:       # the writable layer's limit: an XFS project quota on upper and work
                quota.limit([str(cdir / "upper"), str(cdir / "work")], size)
            except OSError as e:
                self.remove_debris(cdir)
                raise InvalidArgument(f"cannot limit the writable layer to {size} bytes: {e.strerror or e}") from None
        c = Container(cid, name, config, cdir)
        hostname = config.hostname or cid[:12]
        env = {}
        for item in list(img.get("Env") or []) + [f"HOSTNAME={hostname}"] + (
                ["TERM=xterm"] if config.tty else []) + config.env:
            key, _, value = item.partition("=")
            env[key] = value
        env.setdefault("PATH", runtime.DEFAULT_PATH)
        layers, userns = image.layers, None
        if config.userns_mode == "private":
            from .images.shift import subordinate_range

            base, size = subordinate_range()
            layers = self.store.shifted_layers(image, base, size)
            os.chown(cdir / "upper", base, base)      # "/" inside belongs to root inside
            userns = {"base": base, "size": size}
        c.image = {"requested": config.image, "ref": image.ref, "id": image.id, "digest": image.digest,
                   "layers": [str(p) for p in layers]}
        c.process = {"argv": argv, "env": [f"{k}={v}" for k, v in env.items()],
                     "cwd": config.workdir or img.get("WorkingDir") or "/",
                     "user": config.user or img.get("User") or "", "hostname": hostname,
                     "lowerdir": image.lowerdir(layers), "userns": userns}
        (cdir / "hostname").write_text(hostname + "\n")
        (cdir / "hosts").write_text(
            f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n")
        (cdir / "resolv.conf").write_text(_resolv_conf())
        c.save()
        self.containers[cid] = c
        self.emit("created", c)
        return c

    def resolve_image(self, ref: str):
        """The store's answer, remembered until repositories.json changes (a
        resolve reads and checks several files: too slow for every run)."""
        try:
            stamp = os.stat(self.store.repositories).st_mtime_ns
        except FileNotFoundError:
            stamp = 0
        cached = self.image_cache.get(ref)
        if cached and cached[0] == stamp and all(p.is_dir() for p in cached[1].layers):
            return cached[1]
        image = self.store.resolve(ref)
        try:
            stamp = os.stat(self.store.repositories).st_mtime_ns   # lab may just have been built
        except FileNotFoundError:
            stamp = 0
        self.image_cache[ref] = (stamp, image)
        return image

    def filters(self, cfg: ContainerConfig, warnings: list[str]) -> dict:
        """The system call filter (packed BPF) and no_new_privs of a container's
        processes (its first one and every exec), as ChildSpec fields."""
        program = None
        if cfg.seccomp == "default":
            program = self.seccomp_program
            if program is None:
                warnings.append(f"no system call filter for this machine's architecture ({self.machine}): "
                                "the container runs without seccomp")
        return {"seccomp": program, "no_new_privs": cfg.no_new_privileges}

    def fork_into(self, pidns_fd: int | None, child) -> tuple[int, socket.socket]:
        """Fork a child into a PID namespace: a new one (``None``) or the one
        ``pidns_fd`` refers to; ``child(channel)`` runs in it and never returns.

        unshare(CLONE_NEWPID) and setns(pidns) change where the caller's next
        child goes, not the caller: right after the fork the supervisor
        returns to its own PID namespace."""
        parent_chan, child_chan = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        if pidns_fd is None:
            self.kernel.unshare(sc.CLONE_NEWPID)
        else:
            self.kernel.setns(pidns_fd, sc.CLONE_NEWPID)
        pid = -1
        try:
            pid = os.fork()
            if pid == 0:
                parent_chan.close()
                child(child_chan)
        finally:
            if pid != 0:
                self.kernel.setns(self.pidns_fd, sc.CLONE_NEWPID)
        child_chan.close()
        return pid, parent_chan

    def start(self, c: Container, conn, fds: list[int], winsize, attach: bool, stepwise: bool) -> Starting:
        """Fork the container's PID 1 and watch its start channel: the loop
        completes the start (:meth:`end_start`) once the child has exec'd or
        failed. Whatever goes wrong, nothing is left behind: no process, no cgroup."""
        try:
            return self._start(c, conn, fds, winsize, attach, stepwise)
        except EngineError:
            raise
        except Exception:  # noqa: BLE001 - a bug or an unexpected answer from the kernel
            self.report(f"starting container {c.id[:12]} failed")
            if c.pid and c.status != "running":
                try:
                    os.kill(c.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.reap(c.pid, -1)
            for fd in [c.pidfd, *c.outputs]:
                if fd >= 0:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            c.pidfd, c.outputs = -1, {}
            self.fail_start(c, f"internal error while starting (an engine bug; details in {self.log_path})", "")

    def _start(self, c: Container, conn, fds: list[int], winsize, attach: bool, stepwise: bool) -> Starting:
        cfg = c.config
        # Namespaces to share are looked up first: a refusal leaves nothing made.
        shared = self.shared_namespaces(cfg)
        pidns_fd, fork_title, fork_ops = self.pid_namespace(cfg)
        try:
            return self._start_in(c, conn, fds, winsize, attach, stepwise, shared,
                                  (pidns_fd, fork_title, fork_ops))
        finally:
            if pidns_fd not in (None, self.pidns_fd):
                os.close(pidns_fd)

    def _start_in(self, c: Container, conn, fds, winsize, attach, stepwise, shared, fork) -> Starting:
        from .cgroups import Limits

        pidns_fd, fork_title, fork_ops = fork
        cfg = c.config
        try:                  # --init runs tini from a sealed copy, made once
            init_fd, init_path = sealed.init_copy() if cfg.init else (-1, "")
        except OSError as e:
            self.fail_start(c, str(e), "init")
        stdio, outputs, sinks = self.stdio_for(c, fds, attach)       # checked before anything is made
        c.exit_code, c.oom_killed, c.error, c.finished = None, False, "", ""
        c.seen = {"oom_kills": 0, "pids_max_hits": 0}
        try:
            transcript = runtime.Transcript()
            transcript.stage("limits", "Create the container's control group and write its limits")
            limits = Limits(memory=cfg.memory, memory_swap=cfg.memory_swap, pids=cfg.pids_limit, cpus=cfg.cpus)
            try:
                c.cgroup = self.cgroups.create(c.id, limits, parent=self.cgroup_parent)
            except EngineError as e:
                self.fail_start(c, str(e), "cgroup")
            for hier, path in c.cgroup.paths.items():
                transcript.op("mkdir", f"mkdir {path}", path=str(path), hierarchy=hier)
            for path, value in c.cgroup.writes:
                transcript.op("write", f"echo {value} > {path}", path=str(path), value=value)
            c.warnings = list(c.cgroup.warnings)
            self.crash_point("after-cgroup")
            spec = runtime.ChildSpec(
                id=c.id, rootfs=str(c.dir / "rootfs"), lowerdir=c.process["lowerdir"],
                upperdir=str(c.dir / "upper"), workdir=str(c.dir / "work"), hostname=c.process["hostname"],
                argv=c.process["argv"], env=c.process["env"], cwd=c.process["cwd"],
                user=c.process["user"] or None, tty=cfg.tty, winsize=winsize,
                init=cfg.init, init_fd=init_fd, init_path=init_path,
                procs_files=[str(p) for p in c.cgroup.procs_files()],
                cgroup_mounts=[m.as_dict() for m in self.cgroups.container_mounts()],
                volumes=[v.to_dict() | {"resolve": c.volume_resolve} for v in cfg.volumes],
                etc_files={f"/etc/{n}": str(c.dir / n) for n in ("hostname", "hosts", "resolv.conf")},
                crash_at=self.crash_at, join_by_parent=True, timens=cfg.timens, pause=stepwise,
                userns=bool(c.process.get("userns")), **self.filters(cfg, c.warnings), **shared)
            transcript.stage("fork", fork_title)
            for op in fork_ops:
                transcript.op(**op)
            c.outputs = outputs             # closed by start() if anything below fails
            try:
                pid, chan = self.fork_into(pidns_fd, lambda ch: runtime.child_main(spec, ch, stdio, self.kernel))
                c.pid = pid
                self.crash_point("after-fork")
            finally:
                for fd in set(stdio) - {self.devnull}:
                    os.close(fd)          # the child has its own copies
                stdio = ()
        except BaseException:
            for fd in set(stdio) - {self.devnull}:
                os.close(fd)
            for fd in sinks.values():
                os.close(fd)
            if not c.outputs:
                for fd in outputs:
                    os.close(fd)
            raise
        transcript.stage("cgroup", "Put the first process in the container's control group")
        joined = self.join_cgroup(c, pid, transcript)
        try:
            chan.send(json.dumps(joined).encode())
        except OSError:
            pass              # the child has already failed; its error is waiting in the channel
        transcript.done()
        c.pid_start = process_start_time(pid) or 0
        c.pidfd = os.pidfd_open(pid)
        c.status = "starting"
        st = Starting(conn, chan, transcript, attach, container=c, pid=pid, stepwise=stepwise, sinks=sinks)
        c.starting = st
        self.watch_start(st)
        return st

    def watch_start(self, st: Starting) -> None:
        st.chan.setblocking(False)
        self.starts[id(st)] = st
        self.sel.register(st.chan, selectors.EVENT_READ, ("starting", st))

    def complete_start(self, c: Container, transcript, pty: int, error: dict | None, child_stages: list) -> int:
        """The child has exec'd (or failed): record its transcript; then either
        clean up after the failure, or watch it run. Returns the terminal master or -1."""
        pid, outputs = c.pid, c.outputs
        stages = transcript.done() + child_stages
        write_json_atomic(c.dir / "transcript.json", {"version": 1, "stages": stages}, durable=False)
        if error:
            self.reap(pid, c.pidfd)
            c.pidfd = -1
            for fd in list(outputs) + ([pty] if pty >= 0 else []):
                os.close(fd)
            c.outputs = {}
            self.fail_start(c, str(error.get("error")), error.get("stage", ""), error.get("exit_code", 125))
        c.status, c.started, c.adopted = "running", now(), False
        # Hold the container's mount namespace: when its last process exits, the
        # kernel then need not unmount its ~30 mounts before telling us -- we let
        # it go after the exit event is sent (finish), off the critical path.
        try:
            c.mntns = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            c.mntns = -1
        c.pty = pty
        c.outputs = outputs
        for fd in outputs:
            os.set_blocking(fd, False)
        self.pace_output(c)
        self.sel.register(c.pidfd, selectors.EVENT_READ, ("exit", c))
        c.save()
        self.emit("started", c, pid=pid)
        return pty

    def reap(self, pid: int, pidfd: int) -> None:
        """Reap a child that has failed or been killed, now if it is gone,
        else when its pidfd says so -- never waiting for it."""
        try:
            done = os.waitpid(pid, os.WNOHANG)[0] != 0
        except ChildProcessError:
            done = True
        if done:
            if pidfd >= 0:
                os.close(pidfd)
            return
        if pidfd < 0:
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:
                return
        self.sel.register(pidfd, selectors.EVENT_READ, ("reap", pid))

    def on_reap(self, pidfd, pid: int) -> None:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            pass
        self.sel.unregister(pidfd)
        os.close(pidfd)

    # -- the end of a start ---------------------------------------------------
    def on_starting(self, chan: socket.socket, st: Starting) -> None:
        """A message from a child on its way to execve: a stage done (run
        --explain: passed on to the client, which answers with ``proceed``),
        an id-map request, the terminal, its transcript or its error; or the
        end of the channel (exec'd or failed)."""
        try:
            data, fds, _f, _a = socket.recv_fds(chan, 1 << 20, 1)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, fds = b"", []
        if not data:
            self.end_start(st)
            return
        for fd in fds[1:]:
            os.close(fd)
        if fds:
            if st.pty >= 0:
                os.close(st.pty)
            st.pty = fds[0]
        try:
            msg = json.loads(data)
        except ValueError:
            msg = {}
        if not isinstance(msg, dict):
            msg = {}
        if "crash" in msg:
            self.crash_point(msg["crash"])
        if isinstance(msg.get("stage"), dict) and "error" not in msg and st.stepwise and st.client is not None:
            if not st.client.send({"event": "stage", "id": st.container.id, "stage": msg["stage"], "paused": True}):
                self.abandon_start(st.container)
        if "userns" in msg and st.exec is None:
            try:
                chan.send(json.dumps(self.map_user_namespace(st.container, st.pid)).encode())
            except OSError:
                pass
        if "transcript" in msg:
            st.stages = msg["transcript"]
        if "error" in msg:
            st.error = msg

    def end_start(self, st: Starting) -> None:
        """The start channel has closed (or the deadline passed): complete the
        start and answer its client."""
        if self.starts.pop(id(st), None) is None:
            return
        try:
            self.sel.unregister(st.chan)
        except (KeyError, ValueError):
            pass
        st.chan.close()
        if st.exec is not None:
            self.end_exec_start(st)
            return
        c = st.container
        c.starting = None
        if st.error is None and not st.stages:
            st.error = {"error": "the container's first process died before it could start", "stage": "",
                        "exit_code": 125}
        try:
            try:
                pty = self.complete_start(c, st.transcript, st.pty, st.error, st.stages)
            except EngineError:
                raise
            except Exception:  # noqa: BLE001 - a bug: end the start cleanly, as start() does
                self.report(f"completing the start of container {c.id[:12]} failed")
                self.fail_start(c, f"internal error while starting (an engine bug; details in {self.log_path})", "")
        except EngineError as e:
            for fd in st.sinks.values():
                os.close(fd)
            for conn in list(c.attached):         # wait/stop clients of a container that never ran
                conn.send({"event": "exit", **self.exit_info(c)})
            c.attached.clear()
            if c.config.remove or st.abandoned:
                self.remove(c)
            for conn in self.rm_waiters.pop(c.id, ()):
                conn.send({"ok": True, "id": c.id, "name": c.name})
            if st.client is not None:
                if st.stepwise:
                    st.client.send({"event": "start-failed", "id": c.id, "error": e.message,
                                    "stage": getattr(e, "stage", ""), "exit_code": e.exit_code})
                else:
                    st.client.send(self.error_reply(e))
            return
        reply_fds = []
        if st.attach and st.client is not None:
            c.attached.add(st.client)
            if pty >= 0:
                reply_fds = [pty]
            for fd, stream in c.outputs.items():
                if stream in st.sinks:
                    self.sinks[fd] = Sink(st.sinks.pop(stream), st.client, c)
        elif pty >= 0:
            self.start_draining(c, pty)
        for fd in st.sinks.values():
            os.close(fd)
        if st.client is None:
            return
        if st.stepwise:
            st.client.send({"event": "started", "id": c.id, "name": c.name, "pid": c.pid, "warnings": c.warnings})
        else:
            st.client.send({"ok": True, "id": c.id, "name": c.name, "pid": c.pid, "warnings": c.warnings},
                           reply_fds)

    def op_proceed(self, conn, msg, fds):
        """Let a container started stage by stage go on to its next stage."""
        c = self.find(msg.get("id"))
        if c.starting is None or not c.starting.stepwise:
            raise NotRunning(f"container {c.name} is not being started stage by stage")
        try:
            c.starting.chan.send(json.dumps({"go": True}).encode())
        except OSError:
            pass                # it has just failed: the end of its channel is on its way
        return {"id": c.id}, []

    def abandon_start(self, c: Container) -> None:
        """End a half-built container (its stage-by-stage client went away, or
        rm -f); once its start has failed, it is removed (it never ran)."""
        if c.starting is not None:
            c.starting.abandoned = True
        if c.pidfd >= 0:
            try:
                signal.pidfd_send_signal(c.pidfd, signal.SIGKILL)
            except OSError:
                pass

    def sharing(self, mode: str, kind: str) -> Container | None:
        """The running container a ``container:NAME`` mode names (None for other modes)."""
        from .spec import shared_container

        ref = shared_container(mode)
        if ref is None:
            return None
        try:
            other = self.find(ref)
        except ContainerNotFound:
            raise ContainerNotFound(f"cannot join the {kind} namespace of container {ref}: "
                                    f"no such container") from None
        if other.status != "running" or not other.pid:
            raise NotRunning(f"cannot join the {kind} namespace of container {ref}: it is not running")
        return other

    def shared_namespaces(self, cfg: ContainerConfig) -> dict:
        """ChildSpec fields for --network, --ipc and --uts: which namespaces the
        child creates, which it joins (by path and expected inode), /dev/shm."""
        new_ns, join_ns, shm = [], {}, None
        for kind, mode, private in (("uts", cfg.uts_mode, ("private",)),
                                    ("ipc", cfg.ipc_mode, ("private", "shareable")),
                                    ("net", cfg.network, ("none",))):
            other = self.sharing(mode, kind)
            if other is not None:
                path = f"/proc/{other.pid}/ns/{kind}"
                join_ns[kind] = {"path": path, "inode": os.stat(path).st_ino}
                # (/dev/shm stays the container's own: the kernel binds no mount
                # of another mount namespace. SysV IPC is what is shared.)
            elif mode in private:
                new_ns.append(kind)
            elif kind == "ipc":
                shm = "/dev/shm"            # --ipc host: the host's POSIX shared memory
        return {"new_ns": new_ns, "join_ns": join_ns, "shm_source": shm}

    def pid_namespace(self, cfg: ContainerConfig) -> tuple[int | None, str, list[dict]]:
        """The PID namespace to fork into -- None for a new one, ours for --pid
        host, another container's for --pid container:NAME (an fd, checked
        against that container's pidfd so a reused pid is never joined) --
        with the transcript's title and operations for the fork."""
        other = self.sharing(cfg.pid_mode, "pid")
        if other is not None:
            path = f"/proc/{other.pid}/ns/pid"
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                signal.pidfd_send_signal(other.pidfd, 0)
            except OSError:
                os.close(fd)
                raise NotRunning(f"cannot join the pid namespace of container {other.name}: it has stopped")
            return fd, f"Fork the first process into the PID namespace of container {other.name}", [
                {"call": "setns", "shell": f"nsenter --pid={path} --fork", "flags": ["CLONE_NEWPID"],
                 "namespace": "pid", "path": path}]
        if cfg.pid_mode == "host":
            return self.pidns_fd, "Fork the first process in the host's PID namespace (--pid host)", [
                {"call": "fork", "shell": "# fork: no new PID namespace"}]
        return None, "Fork the first process into a new PID namespace", [
            {"call": "unshare", "shell": "unshare --pid --fork", "flags": ["CLONE_NEWPID"]}]

    def map_user_namespace(self, c: Container, pid: int) -> dict:
        """Write the id maps of the child's new user namespace: ids 0..size-1
        inside are base..base+size-1 on the host (as root may, no setgroups deny)."""
        userns = c.process.get("userns") or {}
        line = f"0 {userns.get('base')} {userns.get('size')}\n"
        try:
            for name in ("uid_map", "gid_map"):
                with open(f"/proc/{pid}/{name}", "w") as f:
                    f.write(line)
        except (OSError, TypeError) as e:
            return {"mapped": False, "error": f"cannot map the user namespace's ids: {e}"}
        return {"mapped": True, "uid_map": line, "gid_map": line, "pid": pid}

    def join_cgroup(self, c: Container, pid: int, transcript) -> dict:
        """Write the child's pid into each cgroup.procs (the child mounts meanwhile)."""
        for path in c.cgroup.procs_files():
            transcript.op("write", f"echo {pid} > {path}", path=str(path), value=str(pid))
        try:
            c.cgroup.join(pid)
        except (OSError, EngineError) as e:
            return {"joined": False, "error": f"cannot put the container in its cgroup: {e}"}
        return {"joined": True}

    def crash_point(self, name: str) -> None:
        """For the crash-safety tests: die here, as the OOM killer would
        (``NAME``), or fail here, as a bug would (``raise-NAME``)."""
        if self.crash_at == name:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.crash_at == f"raise-{name}":
            raise RuntimeError(f"injected failure at {name}")

    def fail_start(self, c: Container, message: str, stage: str, code: int = 125):
        if c.cgroup is not None:
            c.cgroup.destroy()
            c.cgroup = None
        c.status, c.exit_code, c.error, c.finished, c.pid = "exited", code, message, now(), 0
        c.save()
        self.emit("exited", c, exit_code=code, oom_killed=False, error=message)
        raise StartError(message, stage=stage, exit_code=code)

    def stdio_for(self, c: Container, fds: list[int], attach: bool
                  ) -> tuple[tuple[int, int, int], dict[int, str], dict[str, int]]:
        """The child's 0, 1, 2; the pipe ends the supervisor reads (logged, and
        copied to an attached client); and the attached client's own pipes for
        that copy, by stream. A client's fds never reach the container: only
        pipes are accepted, and only a client's stdin pipe is handed over."""
        cfg = c.config
        if cfg.tty:
            return (self.devnull,) * 3, {}, {}
        stdin, sinks = self.devnull, {}
        if attach and len(fds) >= 2:
            out, err = _pipe(fds[-2], "standard output"), _pipe(fds[-1], "standard error")
            if cfg.interactive and len(fds) == 3:
                stdin = _pipe(fds[0], "standard input")
            sinks = {"stdout": os.dup(out), "stderr": os.dup(err)}
            for fd in sinks.values():
                os.set_blocking(fd, False)
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        err_r, err_w = os.pipe2(os.O_CLOEXEC)
        if stdin != self.devnull:
            stdin = os.dup(stdin)
        return (stdin, out_w, err_w), {out_r: "stdout", err_r: "stderr"}, sinks

    def start_draining(self, c: Container, fd: int) -> None:
        c.drain_pty = True
        os.set_blocking(fd, False)
        self.pace_output(c)

    # -- output: logged, copied to an attached client, paced ------------------
    def output_fds(self, c: Container) -> list[int]:
        return list(c.outputs) + ([c.pty] if c.drain_pty and c.pty >= 0 else [])

    def pace_output(self, c: Container) -> None:
        """Read a container's output pipes only while it has budget left and
        its attached client keeps up (see OUTPUT_RATE, SINK_BACKLOG)."""
        budget = self.budget.get(c.id, OUTPUT_BURST)
        held = False
        for fd in self.output_fds(c):
            sink = self.sinks.get(fd)
            want = budget > 0 and (sink is None or len(sink.buf) < SINK_BACKLOG)
            if want and fd not in self.reading:
                self.sel.register(fd, selectors.EVENT_READ, ("output", c))
                self.reading.add(fd)
            elif not want and fd in self.reading:
                self.sel.unregister(fd)
                self.reading.discard(fd)
            held = held or not want
        if held and budget <= 0:
            self.throttled.add(c.id)
        else:
            self.throttled.discard(c.id)

    def refill(self, t: float) -> None:
        elapsed = t - (self.next_refill - OUTPUT_TICK) if self.next_refill else OUTPUT_TICK
        self.next_refill = t + OUTPUT_TICK
        for cid in list(self.budget):
            value = min(OUTPUT_BURST, self.budget[cid] + OUTPUT_RATE * max(OUTPUT_TICK, elapsed))
            if value >= OUTPUT_BURST:
                del self.budget[cid]
            else:
                self.budget[cid] = value
        for cid in list(self.throttled):
            c = self.containers.get(cid)
            if c is None:
                self.throttled.discard(cid)
            else:
                self.pace_output(c)

    def on_output(self, fd, c: Container) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""           # EIO: the terminal's other side closed
        if not data:
            self.unwatch_output(fd)
            if fd == c.pty:
                c.pty = -1
            else:
                c.outputs.pop(fd, None)
            os.close(fd)
            self.end_sink(fd)
            return
        self.output(c, fd, data)
        self.budget[c.id] = self.budget.get(c.id, OUTPUT_BURST) - len(data)
        if self.budget[c.id] <= 0 or fd in self.sinks:
            self.pace_output(c)

    def output(self, c: Container, fd: int, data: bytes) -> None:
        """Log a chunk of output, and copy it to the attached client's pipe."""
        log = self.logs.get(c.id)
        if log is None:
            log = self.logs[c.id] = LogWriter(c.dir)
        log.write(c.outputs.get(fd, "stdout"), data)
        sink = self.sinks.get(fd)
        if sink is not None:
            sink.buf += data
            self.flush_sink(sink)

    def unwatch_output(self, fd: int) -> None:
        if fd in self.reading:
            self.reading.discard(fd)
            try:
                self.sel.unregister(fd)
            except (KeyError, ValueError):
                pass

    def on_sink(self, _fd, sink: Sink) -> None:
        self.flush_sink(sink)

    def flush_sink(self, sink: Sink) -> None:
        while sink.buf:
            try:
                n = os.write(sink.fd, sink.buf[:1 << 16])
            except (BlockingIOError, InterruptedError):
                break
            except OSError:              # the client has gone (EPIPE): its copy ends, the log goes on
                sink.buf.clear()
                sink.closing = True
                break
            del sink.buf[:n]
        if not sink.buf and sink.closing:
            self.close_sink(sink)
            return
        want = bool(sink.buf)
        if want != sink.writing:
            if want:
                self.sel.register(sink.fd, selectors.EVENT_WRITE, ("sink", sink))
            else:
                self.sel.unregister(sink.fd)
            sink.writing = want
        if len(sink.buf) < SINK_BACKLOG and sink in self.sinks.values():
            self.pace_output(sink.container)

    def end_sink(self, fd: int) -> None:
        """The container's side of a sink has ended: flush the rest, then close."""
        sink = self.sinks.pop(fd, None)
        if sink is not None:
            sink.closing = True
            self.ending_sinks.add(sink)
            self.flush_sink(sink)

    def close_sink(self, sink: Sink) -> None:
        if sink.writing:
            self.sel.unregister(sink.fd)
            sink.writing = False
        os.close(sink.fd)
        sink.fd = -1
        self.ending_sinks.discard(sink)
        for fd, other in list(self.sinks.items()):
            if other is sink:
                del self.sinks[fd]
                if sink.container.status == "running":
                    self.pace_output(sink.container)

    def on_exit(self, _fileobj, c: Container) -> None:
        """PID 1 of ``c`` has exited: reap it and record how."""
        if c.adopted:
            self.finish(c, 255, error="exit status unknown: the supervisor restarted while it ran")
            return
        try:
            pid, status = os.waitpid(c.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = c.pid, 255 << 8
        if pid == 0:
            return
        self.finish(c, os.waitstatus_to_exitcode(status))

    def wait_exit(self, c: Container, timeout: float = 10.0) -> int:
        """At shutdown only: wait (at most ``timeout`` s) until ``c``, just sent
        SIGKILL, has exited; its exit code (255 if unknown). Requests never
        wait here: rm -f answers when the loop sees the exit.

        The kernel lets a PID namespace's first process finish dying only once
        every process in the namespace is reaped -- and processes started by
        ``exec`` are the supervisor's children: reap those meanwhile, or both
        would wait for each other."""
        deadline = time.monotonic() + timeout
        # Containers started with --pid container:<c> die with it, and are ours to reap too.
        pidns = _ns_inode(c.pid, "pid")
        guests = [g for g in self.containers.values()
                  if g is not c and g.pidfd >= 0 and pidns and _ns_inode(g.pid, "pid") == pidns]
        while time.monotonic() < deadline:
            execs = [e for e in self.execs.values() if e.container is c]
            guests = [g for g in guests if g.pidfd >= 0]
            ready, _, _ = select.select([c.pidfd] + [e.pidfd for e in execs] + [g.pidfd for g in guests],
                                        [], [], 0.5)
            for e in execs:
                if e.pidfd in ready:
                    self.on_exec_exit(None, e)
            for g in guests:
                if g.pidfd in ready:
                    self.on_exit(None, g)
            if c.pidfd in ready:
                break
        if c.adopted:                     # not our child: its pidfd said it is gone
            return 255
        try:
            pid, status = os.waitpid(c.pid, os.WNOHANG)
        except ChildProcessError:
            return 255
        return os.waitstatus_to_exitcode(status) if pid else 255

    def finish(self, c: Container, code: int, error: str = "") -> None:
        """Record the exit and tell who waits; then release what the container held.

        The slow part (letting its mounts go, removing the cgroup and, with
        --rm, the files) is queued for :meth:`tidy_one`: done while the next
        container is being built, when nothing else waits, or before the next
        request that looks at containers -- a client never sees it undone."""
        if c.pidfd >= 0:
            try:
                self.sel.unregister(c.pidfd)
            except (KeyError, ValueError):
                pass
            os.close(c.pidfd)
            c.pidfd = -1
        for fd in list(c.outputs):
            self.drain_rest(c, fd)
            os.close(fd)
            self.end_sink(fd)
        c.outputs = {}
        if c.pty >= 0:
            if c.drain_pty:
                self.drain_rest(c, c.pty)
            os.close(c.pty)
            c.pty, c.drain_pty = -1, False
        log = self.logs.pop(c.id, None)
        if log is not None:
            self.try_step(c, "flush log", log.flush)
        self.budget.pop(c.id, None)
        self.throttled.discard(c.id)
        c.exit_code = code if code >= 0 else 128 - code
        c.error = error or c.error
        c.stop_deadline = None
        cgroup, c.cgroup = c.cgroup, None
        if cgroup is not None:
            self.check_limits(c, cgroup)      # recorded even when --rm removes it right after
            c.oom_killed = self.try_step(c, "read OOM count", cgroup.oom_killed) or False
        c.status, c.finished, c.pid, c.pid_start, c.adopted = "exited", now(), 0, 0, False
        self.emit("exited", c, exit_code=c.exit_code, oom_killed=c.oom_killed)
        if c.config.remove:
            self.containers.pop(c.id, None)
            self.emit("removed", c)
        else:
            self.try_step(c, "save record", c.save)
        for conn in list(c.attached):
            conn.send({"event": "exit", **self.exit_info(c)})
        c.attached.clear()
        for conn in self.rm_waiters.pop(c.id, ()):      # rm -f: it has gone now
            if c.config.remove and c.id not in self.containers:
                conn.send({"ok": True, "id": c.id, "name": c.name})
            else:
                self.remove(c)
                conn.send({"ok": True, "id": c.id, "name": c.name})
        mntns, c.mntns = c.mntns, -1
        self.tidying.append((c, mntns, cgroup))

    def tidy_one(self) -> None:
        """Release what one exited container held: its mount namespace (the
        kernel unmounts its ~30 mounts now), its cgroup and, with --rm, its
        files. Queued by :meth:`finish`, so that a client waiting for an exit,
        or for its next container to start, does not wait for this too."""
        c, mntns, cgroup = self.tidying.popleft()
        if mntns >= 0:
            os.close(mntns)
        if cgroup is not None:
            self.try_step(c, "remove cgroup", cgroup.destroy)
        if c.config.remove and c.id not in self.containers:
            self.try_step(c, "remove files", lambda: self.remove_files(c))

    def tidy_all(self) -> None:
        while self.tidying:
            self.tidy_one()

    def try_step(self, c: Container, what: str, step):
        """Run one teardown step; a failure is logged and the next step still runs
        (gc sweeps what is left)."""
        try:
            return step()
        except (OSError, EngineError) as e:
            print(f"container {c.id[:12]}: {what} failed: {e}", file=sys.stderr)
            return None

    def drain_rest(self, c: Container, fd: int) -> None:
        """What is left in an output pipe of a container that has exited (at
        most a pipe's worth: its writers are gone), logged and copied."""
        self.unwatch_output(fd)
        os.set_blocking(fd, False)
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            self.output(c, fd, data)

    def exit_info(self, c: Container) -> dict:
        return {"id": c.id, "exit_code": c.exit_code, "oom_killed": c.oom_killed, "error": c.error}

    def signal(self, c: Container, sig: int) -> None:
        """Send ``sig`` to the container's PID 1 (via its pidfd: never a reused pid)."""
        self.emit("kill", c, signal=sig)
        try:
            signal.pidfd_send_signal(c.pidfd, sig)
        except ProcessLookupError:
            pass

    def remove(self, c: Container) -> None:
        self.containers.pop(c.id, None)
        self.remove_files(c)
        self.emit("removed", c)

    def remove_debris(self, cdir: Path) -> None:
        import shutil

        try:
            self.cgroups.open(cdir.name, parent=self.cgroup_parent).destroy()
        except EngineError:             # CgroupError, or a name no cgroup can have
            pass
        shutil.rmtree(cdir, ignore_errors=True)

    def remove_files(self, c: Container) -> None:
        import shutil

        if c.cgroup is not None:
            c.cgroup.destroy()
            c.cgroup = None
        shutil.rmtree(c.dir, ignore_errors=True)


def _number(msg: dict, field: str, default, kind):
    """A numeric request field (``kind`` int or float), or an InvalidArgument naming it."""
    value = msg.get(field)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise InvalidArgument(f"{field} must be a{'n integer' if kind is int else ' number'}, not {value!r:.40}")
    if kind is float and not -1e9 < value < 1e9:
        raise InvalidArgument(f"{field} is out of range")
    return kind(value)


def _winsize(msg: dict) -> tuple[int, int]:
    size = msg.get("winsize") or (24, 80)
    if not isinstance(size, (list, tuple)) or len(size) != 2 or not all(
            isinstance(n, int) and not isinstance(n, bool) and 0 < n < 1 << 16 for n in size):
        raise InvalidArgument("winsize must be [rows, columns]")
    return tuple(size)


def _pipe(fd: int, what: str) -> int:
    """``fd`` if it is a pipe (a client's relay pipe), else an InvalidArgument:
    a client's own terminal or file never goes to a container."""
    try:
        is_pipe = stat.S_ISFIFO(os.fstat(fd).st_mode) and os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:")
    except OSError:
        is_pipe = False
    if not is_pipe:
        raise InvalidArgument(f"an attached container's {what} must be a pipe (the client copies its own "
                              "terminal or file to and from it)")
    return fd


def _config_from(data) -> ContainerConfig:
    """A request's container config: its fields' types checked (by
    ContainerConfig, one line naming the field), then its sizes bounded."""
    if not isinstance(data, dict):
        raise InvalidArgument("a container config must be an object")
    config = ContainerConfig.from_dict(data).validate()
    size = sum(len(k.encode()) + len(v.encode()) for k, v in (config.labels or {}).items())
    if size > MAX_LABELS:
        raise InvalidArgument(f"labels too large: {size / 1024:.0f} KiB in all (at most {MAX_LABELS >> 10} KiB)")
    size = sum(len(item.encode()) for item in config.env or [])
    if size > MAX_ENV:
        raise InvalidArgument(f"environment too large: {size / 1024:.0f} KiB in all (at most {MAX_ENV >> 10} KiB)")
    return config


def _ns_inode(pid: int, kind: str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except OSError:
        return None


def _dir_size(path: Path) -> int:
    total = 0
    for base, _dirs, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(base, f)).st_blocks * 512
            except OSError:
                pass
    return total


def _resolv_conf() -> str:
    """The host's resolv.conf without loopback servers (useless in a new netns)."""
    try:
        lines = Path("/etc/resolv.conf").read_text().splitlines()
    except OSError:
        lines = []
    kept = [ln for ln in lines if not (ln.startswith("nameserver") and
                                       (" 127." in ln or " ::1" in ln))]
    return "\n".join(kept) + "\n"


def main() -> None:
    """``python -m engine.supervisor [--daemon]``.

    With ``--daemon`` (how clients start it) the process forks; the parent
    exits 0 once the child listens, or 1 with the child's error on stderr, so
    the client neither polls nor leaves a zombie behind.

    First of all it re-execs itself from a sealed copy of its interpreter
    (:mod:`engine.sealed`): every container process starts as a fork of this
    one, and none may have the host's interpreter as its executable."""
    try:
        sealed.reexec_sealed()
    except OSError as e:
        print(f"container-lab supervisor: cannot start: {e}", file=sys.stderr)
        raise SystemExit(1)
    idle = float(os.environ.get("CONTAINER_LAB_SUPERVISOR_IDLE", "600"))
    ready_r = ready_w = -1
    if "--daemon" in sys.argv[1:]:
        ready_r, ready_w = os.pipe()
        if os.fork():
            os.close(ready_w)
            ok = os.read(ready_r, 1)
            os._exit(0 if ok else 1)
        os.close(ready_r)
        os.setsid()
    try:
        sup = Supervisor(paths.state_dir(), paths.data_dir(), idle_timeout=idle)
        sup.listen()
    except (OSError, EngineError) as e:
        print(f"container-lab supervisor: cannot start: {e}", file=sys.stderr)
        raise SystemExit(1)
    if ready_w >= 0:
        os.write(ready_w, b"1")
        os.close(ready_w)
    sup.serve()


if __name__ == "__main__":
    main()
