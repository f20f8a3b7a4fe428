"""The supervisor's event loop: its state (the container table and what the
loop watches), start-up (the lock, the socket, the records of a previous
supervisor adopted or closed), the loop itself with its timers, failure
reports to ``supervisor.log``, and shutdown.
"""

from __future__ import annotations

import collections
import fcntl
import os
import secrets
import selectors
import signal
import socket
import sys
import time
import traceback
from pathlib import Path

from .. import paths, seccomp
from .. import syscalls as sc
from ..container import Container, process_start_time
from ..errors import CgroupError, EngineError
from ..events import EventLog, now
from ..logs import LogWriter
from .connections import Connection
from .settings import LIMIT_CHECK_INTERVAL, LOG_LIMIT, START_TIMEOUT, TIDY_GRACE
from .state import Exec, Sink, Starting


class Loop:
    """The container table, and the loop that serves it."""

    def __init__(self, state: Path, data: Path, *, idle_timeout: float = 600.0):
        from ..cgroups import detect
        from ..images import ImageStore

        self.state = paths.ensure_private_dir(state)
        self.data = paths.ensure_private_dir(data)
        self.containers_dir = paths.ensure_private_dir(self.data / "containers")
        self.store = ImageStore(self.data / "images")
        self.events = EventLog(self.data / "events.jsonl")
        if not paths.is_root():
            from ..cgroups.detection import claim_leaf

            claim_leaf()
        self.cgroups = detect()
        # Rootless (engine.userns): root of a user namespace of its user's, no
        # bridge, no cgroup limits without a delegated cgroup v2 subtree.
        self.rootless = not paths.is_root()
        self.kernel = sc.Syscalls()
        if self.rootless:           # children forked by a helper come to us (see Start.fork_by_helper)
            self.kernel.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
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
        # Networks (networks.py): the records (read on first use), the networks whose bridge
        # and name service this supervisor has set up, their DNS responders, and the port
        # proxies of each container.
        self.network_records = None
        self.networks_up: dict[str, object] = {}        # network id -> Network
        self.responders: dict[str, object] = {}         # network id -> DnsResponder, None without one
        self.proxies: dict[str, list] = {}              # container id -> its PortProxy objects
        # Rootless (rootless_net.py): the pasta publishing each container's ports.
        self.pasta_pids: dict[str, int] = {}
        self.outside = None                 # rootless: the helper left outside its user namespace (daemon.py)
        self.private_net = False            # rootless: in a network namespace of its own, pasta's (daemon.py)
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
        # the classroom's seats (registered by the owner, seats.py); anyone
        # else is refused.
        self.load_seats()
        # The filter, packed once for every child (None: no table for this architecture).
        program = seccomp.program(self.machine)
        self.seccomp_program = seccomp.pack(program) if program is not None else None

    def listen(self) -> None:
        """Take the lock (one supervisor per state dir) and bind the socket."""
        self.lock_fd = os.open(self.state / "supervisor.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        # A client starts a supervisor only when it cannot connect to one, so a holder
        # of the lock is most likely one that is shutting down (its socket already
        # gone) and lets go as it exits: wait for that a little, then give up.
        deadline = time.monotonic() + 10.0
        while True:
            try:
                fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline or (self.state / "supervisor.sock").exists():
                    raise SystemExit("container-lab supervisor: another supervisor is running for this "
                                     "state dir") from None
                time.sleep(0.02)
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
        self.open_socket_to_seats()
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
        self.resume_networks()

    def set_aside(self, cdir: Path, why: Exception) -> Path | None:
        """A damaged record: no field of it can be trusted, so its container
        is neither adopted nor listed. Whatever its cgroup (named by the
        directory) still holds is ended, the directory is moved to
        ``<data>/damaged/`` with one line in the log, and ``gc`` removes it."""
        from ..container import ID_RE

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
            self.cgroups.open(c.id, parent=self.cgroup_parent_of(c)).destroy()
        except CgroupError:
            pass

    def reconcile(self, c: Container) -> None:
        try:
            c.cgroup = self.cgroups.open(c.id, parent=self.cgroup_parent_of(c))
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
            self.network_timers()
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
        self.stop_network_services()
        self.shutdown_seats()
        try:
            self.cgroups.remove_parent_if_empty(self.cgroup_parent)
        except EngineError:
            pass
        for name in ("supervisor.sock", "supervisor.pid"):
            try:
                (self.state / name).unlink()
            except FileNotFoundError:
                pass
        # Tests only: linger here, lock held and socket gone, as a slow exit would.
        if linger := os.environ.get("CONTAINER_LAB_EXIT_LINGER"):
            time.sleep(float(linger))

    def emit(self, kind: str, c: Container, **extra) -> dict:
        return self.events.append(kind, **c.event_fields(), **extra)

