"""The small requests about containers and events: ping, subscribe, ps,
inspect, wait, kill, stop, start (of a created container), rm -- and
:meth:`Requests.find`, which turns a name or id prefix into a container.
Starting (run, create, exec) and removing wholesale (prune, gc, rmi) have
files of their own.
"""

from __future__ import annotations

import os
import signal
import time

from .. import policy, transcript
from ..container import Container
from ..errors import ContainerError, ContainerNotFound, InvalidArgument, NotRunning
from .connections import Connection
from .settings import EVENTS_REPLY_LIMIT, NAMESPACE_KINDS, PROTOCOL, SUBSCRIBER_BACKLOG


class Requests:
    """The requests that look at containers or signal them."""

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
        sees = conn.policy.sees
        return {"events": [e for e in self.events.read(after=after) if sees(e.get("labels"))]
                if after < self.events.seq else [], "seq": self.events.seq}, []

    def op_events(self, conn, msg, fds):
        """The events after ``after`` that this client may see (a seat: its
        own containers'), at most the last EVENTS_REPLY_LIMIT of them."""
        after = _number(msg, "after", 0, int)
        sees = conn.policy.sees
        events = [e for e in self.events.read(after=after) if sees(e.get("labels"))] if after < self.events.seq else []
        return {"events": events[-EVENTS_REPLY_LIMIT:], "seq": self.events.seq}, []

    def op_image_event(self, conn, msg, fds):
        """Record what a client did to images: ``build``, ``pull``, ``push``
        and ``save`` run in the client (no daemon does them for it), and only
        the supervisor writes the event log. The event is the client's word,
        checked for shape and size: it changes nothing but the log, so a
        client can mislead no one but its own lesson checks.
        Fields: ``action``, ``ref`` (the image), ``names`` (every name it
        got or was saved under), ``image_id``, ``digest``, and for a build
        ``steps`` and ``cached`` (its instructions after FROM, and how many
        of them the build cache answered) and ``dockerfile`` (its text's digest)."""
        action = msg.get("action")
        if action not in IMAGE_ACTIONS:
            raise InvalidArgument(f"action must be one of {', '.join(IMAGE_ACTIONS)}")
        ref = _text(msg, "ref", required=True)
        names = msg.get("names") or [ref]
        if not isinstance(names, list) or len(names) > 32 or not all(isinstance(n, str) and 0 < len(n) <= 512
                                                                     for n in names):
            raise InvalidArgument("names must be a list of up to 32 image names")
        fields = {"action": action, "ref": ref, "names": names, "image": {"requested": ref, "resolved": ref}}
        for key in ("image_id", "digest", "dockerfile"):
            if (value := _text(msg, key)) is not None:
                fields[key] = value
        if action == "build":
            steps, cached = _number(msg, "steps", 0, int), _number(msg, "cached", 0, int)
            if not 0 <= cached <= steps <= 100000:
                raise InvalidArgument("steps and cached must be counts, cached at most steps")
            fields.update(steps=steps, cached=cached)
        self.events.append("image", **fields)
        return {}, []

    def publish(self, event: dict) -> None:
        for conn in list(self.subscribers):
            if conn.policy is None or not conn.policy.sees(event.get("labels")):
                continue                    # a seat hears of its own containers only
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
        sees = conn.policy.sees
        items = [c.summary() | {"ports": self.ports_of(c)}
                 for c in sorted(self.containers.values(), key=lambda c: c.created) if sees(c.config.labels)]
        if not msg.get("all"):
            items = [c for c in items if c["status"] in ("running", "starting")]
        if conn.policy.seat is None:          # the owner sees a seat's container as SEAT/NAME
            for item in items:
                if seat := conn.policy.scope(item.get("labels")):
                    item["name"] = f"{seat}/{item['name']}"
        return {"containers": items}, []

    def op_inspect(self, conn, msg, fds):
        c = self.find(msg["id"], conn)
        rec = c.record()
        rec["namespaces"] = self.namespaces(c)
        rec["rootfs"] = {"layers": c.image.get("layers", []), "upper": str(c.dir / "upper"),
                         "work": str(c.dir / "work")}
        rec["adopted"] = c.adopted
        rec["warnings"] = c.warnings
        rec["NetworkSettings"] = self.network_settings(c)
        if msg.get("transcript"):
            rec["transcript"] = transcript.load(c.dir)
        if conn.policy.seat is not None and c.cgroup is not None and c.status == "running":
            try:                    # what a seat's client cannot read itself (its lab panel's Resources)
                rec["usage"] = c.cgroup.usage()
            except OSError:
                pass
        return {"container": rec}, []

    def op_ns_view(self, conn, msg, fds):
        """The hostname and network a running container sees, read from inside
        its namespaces. For clients of the rootless engine: the kernel lets only
        the root of the namespace's owner (this supervisor) enter them."""
        c = self.find(msg["id"])
        if c.status != "running" or not c.pid:
            return {"hostname": None, "network": None, "network_error": "the container is not running"}, []
        return _read_inside(c.pid, bool(msg.get("network", True))), []

    def op_diff(self, conn, msg, fds):
        """Where a container's writable layer and image layers are, for its
        client to compare (``docker diff``; the walk is the client's, off this
        loop), recorded as a ``diff`` event -- as Docker records ``top``."""
        c = self.find(msg.get("id"))
        self.emit("diff", c)
        return {"rootfs": {"layers": c.image.get("layers", []), "upper": str(c.dir / "upper")}}, []

    def op_stats(self, conn, msg, fds):
        """Record that a client read what a container uses (``docker stats``;
        the sampling is the client's, from the container's cgroup) as a
        ``stats`` event, as ``diff`` is recorded."""
        c = self.find(msg.get("id"))
        self.emit("stats", c)
        return {}, []

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
        c = self.find(msg.get("id"), conn)
        if c.status not in ("running", "starting"):
            return {"event": "exit", **self.exit_info(c)}, []
        c.attached.add(conn)
        return {"waiting": True}, []

    def op_kill(self, conn, msg, fds):
        sig = msg.get("signal", signal.SIGKILL)
        if isinstance(sig, bool) or not isinstance(sig, int) or sig not in signal.valid_signals():
            raise InvalidArgument(f"invalid signal: {sig}")
        c = self.find(msg.get("id"), conn)
        if not c.status.can_kill():
            raise NotRunning(f"cannot kill container {c.name}: container {c.id} is not running")
        self.signal(c, sig)
        return {"id": c.id}, []

    def op_stop(self, conn, msg, fds):
        """SIGTERM, then SIGKILL after the timeout (docker stop); the reply waits for the exit."""
        c = self.find(msg.get("id"), conn)
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
        c = self.find(msg.get("id"), conn)
        if not c.status.can_start():          # running, or being started
            return {"id": c.id, "name": c.name, "pid": c.pid, "already": True, "warnings": []}, []
        conn.policy.admit(c.config)           # a container another policy created
        self.prepare_seat(conn, c.config, new=False)
        c.volume_resolve = conn.policy.volume_resolve()
        return self.launch(c, conn, msg, fds)

    def op_rm(self, conn, msg, fds):
        c = self.find(msg.get("id"), conn)
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

    def find(self, ref: str, conn: Connection | None = None) -> Container:
        """By full id, unique id prefix or name (docker's rules), among the
        containers the asking client sees (a seat: its own; with no ``conn``
        or for the owner: all). Names are per seat: the owner's own
        containers by NAME, a seat's as SEAT/NAME."""
        if not isinstance(ref, str) or not ref:
            raise InvalidArgument("a container name or id is required")
        who = conn.policy if conn is not None and conn.policy is not None else policy.OWNER
        seat, _, name = ref.rpartition("/") if who.seat is None else (who.seat, "", ref)
        visible = [c for c in self.containers.values() if who.sees(c.config.labels)]
        for c in visible:
            if c.id == ref or (c.name == name and who.scope(c.config.labels) == (seat or None)):
                return c
        matches = [c for c in visible if c.id.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidArgument(f"multiple containers match id prefix {ref!r}")
        raise ContainerNotFound(f"No such container: {ref}")


IMAGE_ACTIONS = ("build", "pull", "push", "save")


def _text(msg: dict, field: str, *, required: bool = False) -> str | None:
    """A short string request field (a name, an id), or an InvalidArgument naming it."""
    value = msg.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= 512:
        raise InvalidArgument(f"{field} must be a string of 1 to 512 characters")
    return value


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



def _read_inside(pid: int, network: bool) -> dict:
    """:meth:`Requests.op_ns_view`'s reading, in a child forked for it: it
    enters the container's UTS and network namespaces for good (the rootless
    engine could not come back to the host's, which its user namespace does
    not own), says what it saw on a pipe, and exits."""
    import json

    from .. import observe
    from ..syscalls import NAMESPACE_FLAGS, Syscalls

    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        code = 0
        try:
            os.close(r)
            for kind in ("uts", "net"):
                fd = os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY | os.O_CLOEXEC)
                Syscalls().setns(fd, NAMESPACE_FLAGS[kind])
                os.close(fd)
            seen = {"hostname": os.uname().nodename}
            seen["network"], seen["network_error"] = observe.read_network(pid) if network else (None, "not asked for")
            os.write(w, json.dumps(seen).encode())
        except BaseException as e:  # noqa: BLE001 - said to the parent; nothing returns into the supervisor
            os.write(w, json.dumps({"hostname": None, "network": None,
                                    "network_error": f"cannot read inside the container: {e}"}).encode())
            code = 1
        finally:
            os._exit(code)
    os.close(w)
    data = b""
    try:
        while chunk := os.read(r, 1 << 16):
            data += chunk
    finally:
        os.close(r)
        os.waitpid(child, 0)
    try:
        return json.loads(data)
    except ValueError:
        return {"hostname": None, "network": None, "network_error": "cannot read inside the container"}
