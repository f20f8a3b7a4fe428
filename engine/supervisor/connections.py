"""Client connections: accepting one (held to the policy of its peer's uid),
reading its requests, sending without ever blocking, hanging up; and
:meth:`Connections.handle`, which dispatches a request to its ``op_<name>``
method and turns what it raises into a one-line reply.
"""

from __future__ import annotations

import array
import collections
import os
import selectors
import socket
import time

from .. import paths, policy
from ..errors import EngineError, InvalidArgument
from ..protocol import MAX_FDS, Channel, MessageTooLarge, ProtocolError, encode
from .settings import TIDY_LATER

OVERFLOW_UID = 65534           # how a user namespace shows a uid it does not map


class Connection(Channel):
    """The supervisor's end of a client connection, never blocking: what is
    sent waits in an output queue, written whenever the socket is writable
    (each message's fds ride with its first byte). A send to a vanished
    client is not an error (it is dropped when its socket reads EOF)."""

    def __init__(self, sock: socket.socket, sup):          # sup: the Supervisor
        super().__init__(sock)
        self.sup = sup
        self.out: collections.deque = collections.deque()   # [memoryview, [fds]] per message
        self.queued = 0                  # bytes waiting in out
        self.dead = False                # the peer has gone (or was cut off)
        self.closing: float | None = None  # close once flushed, or at this time at the latest

    policy: policy.Policy | None = None    # decided at accept from the peer's credentials
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


class Connections:
    """Accepting, reading and dropping clients; dispatching their requests."""

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
        conn.policy = policy.for_peer(conn.peer_uid, own_uid=os.geteuid(), seats=self.seats)

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
        if conn.fds and not conn.dead and conn.closing is None:
            # fds ride with the first byte of their message: with no message
            # begun, none is anyone's; past what one request may carry, the
            # client is sending fds that no request claims.
            if not conn.buf:
                for fd in conn.fds:
                    os.close(fd)
                conn.fds.clear()
            elif len(conn.fds) > MAX_FDS:
                self.refuse(conn, f"more than {MAX_FDS} file descriptors sent for one request")
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
                raise policy.PolicyRefused(f"this container-lab supervisor serves root and uid {paths.host_uid()}; "
                                           f"uid {conn.peer_uid} may not use it" + (
                                               " (a uid outside its user namespace)"
                                               if conn.peer_uid == OVERFLOW_UID and self.rootless else ""))
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

