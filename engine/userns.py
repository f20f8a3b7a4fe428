"""User namespaces for a user who is not root: who maps which ids, and how.

A user namespace is a set of ids of its own: uid 0 inside can be any uid
outside. Without root, the kernel lets a user map exactly one id -- their
own -- into a namespace they make (``unshare --user --map-root-user``).
More needs a range the administrator gave them in /etc/subuid and
/etc/subgid, and the setuid helpers ``newuidmap``/``newgidmap`` (Debian's
``uidmap``) that check the range and write the map, as podman does:

    0      -> the user's own uid          (root inside is you outside)
    1..N   -> the subordinate range        (usually 65,536 ids from 100000)

The rootless engine lives in one such namespace (made when the supervisor
starts, :func:`enter_new`): there it is uid 0, may mount an overlay, make
PID, mount and network namespaces, and chown image files to any id of the
map -- and nothing on the host beyond what the user could already do.
Clients that write the image store join it (:func:`join`), so a layer's
files get the owners the image says, as seen from inside.

Without a range (or without the helpers), the single mapping: root inside is
the user, and any other id in an image is shown as ``nobody`` (65534):
``chown`` and ``apt-get`` (which switches to the ``_apt`` user) fail inside.
``container-lab doctor`` says which mode this machine gets, and how to add a
range.
"""

from __future__ import annotations

import os

SUBUID, SUBGID = "/etc/subuid", "/etc/subgid"
IDENTITY = [(0, 0, 4294967295)]


def id_map(path: str = "/proc/self/uid_map") -> list[tuple[int, int, int]]:
    """A uid_map or gid_map as (inside, outside, count) lines; the identity
    map when it cannot be read or says nothing."""
    try:
        with open(path) as f:
            lines = [tuple(int(x) for x in line.split()) for line in f if len(line.split()) == 3]
    except (OSError, ValueError):
        return list(IDENTITY)
    return lines or list(IDENTITY)


_host_uid: int | None = None


def host_uid() -> int:
    """This process's effective uid as the host sees it (through every user
    namespace it is in): 0 only for the host's root, the user's own uid for
    the rootless engine, whose uid 0 is that user."""
    global _host_uid
    if _host_uid is None:
        euid = os.geteuid()
        _host_uid = euid
        for inside, outside, count in id_map():
            if inside <= euid < inside + count:
                _host_uid = outside + euid - inside
                break
    return _host_uid


def in_initial() -> bool:
    """True when this process is in the host's own user namespace."""
    return id_map() == IDENTITY


def subordinate(path: str, uid: int, name: str | None) -> tuple[int, int] | None:
    """The first range /etc/subuid (or subgid) gives ``name`` (or ``uid``):
    (start, count), or None."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.strip().split(":")
        if len(fields) != 3 or line.startswith("#"):
            continue
        who, start, count = fields
        if who in (name, str(uid)):
            try:
                start_n, count_n = int(start), int(count)
            except ValueError:
                continue
            if count_n > 0 and start_n > 0:
                return start_n, count_n
    return None


class Plan:
    """The id maps a rootless user gets: ``mode`` is "subid" (newuidmap and a
    range) or "single" (root inside = the user); ``why`` says why not subid."""

    def __init__(self, uid: int, gid: int, uid_map, gid_map, mode: str, why: str = ""):
        self.uid, self.gid = uid, gid
        self.uid_map, self.gid_map = uid_map, gid_map
        self.mode, self.why = mode, why

    @property
    def size(self) -> int:
        """How many ids inside are mapped (0 .. size-1)."""
        return min(sum(c for _, _, c in self.uid_map), sum(c for _, _, c in self.gid_map))

    def as_dict(self) -> dict:
        return {"mode": self.mode, "uid_map": self.uid_map, "gid_map": self.gid_map, "why": self.why}


def plan(uid: int | None = None, gid: int | None = None) -> Plan:
    """The maps this user gets: their own id as 0 and, with newuidmap,
    newgidmap and ranges in /etc/subuid and /etc/subgid, the range as 1..N."""
    import pwd
    import shutil

    uid = os.getuid() if uid is None else uid
    gid = os.getgid() if gid is None else gid
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = None
    single = ([(0, uid, 1)], [(0, gid, 1)])
    tools = [t for t in ("newuidmap", "newgidmap") if not shutil.which(t)]
    if tools:
        return Plan(uid, gid, *single, "single", f"{' and '.join(tools)} not installed (Debian: apt-get install uidmap)")
    ranges = subordinate(SUBUID, uid, name), subordinate(SUBGID, gid, name)
    if ranges[0] is None or ranges[1] is None:
        missing = " and ".join(p for p, r in zip((SUBUID, SUBGID), ranges) if r is None)
        who = name or str(uid)
        return Plan(uid, gid, *single, "single",
                    f"no range for {who} in {missing} (an administrator can add one: "
                    f"usermod --add-subuids 100000-165535 --add-subgids 100000-165535 {who})")
    (us, uc), (gs, gc) = ranges
    return Plan(uid, gid, [(0, uid, 1), (1, us, min(uc, 65535))], [(0, gid, 1), (1, gs, min(gc, 65535))], "subid")


def write_maps(pid: int, p: Plan) -> None:
    """Write the maps of ``pid``'s (new, not yet mapped) user namespace: with
    newuidmap/newgidmap for a range, else the single line the kernel lets a
    user write for their own ids. Raises OSError with the reason."""
    import subprocess

    if p.mode == "subid":
        for tool, lines in (("newuidmap", p.uid_map), ("newgidmap", p.gid_map)):
            args = [str(x) for line in lines for x in line]
            r = subprocess.run([tool, str(pid), *args], capture_output=True, text=True)
            if r.returncode != 0:
                raise OSError(f"{tool} {pid} {' '.join(args)}: {r.stderr.strip() or f'exit {r.returncode}'}")
        return
    with open(f"/proc/{pid}/setgroups", "w") as f:     # the kernel's price for a gid map written unprivileged
        f.write("deny")
    for name, lines in (("uid_map", p.uid_map), ("gid_map", p.gid_map)):
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write("".join(f"{a} {b} {c}\n" for a, b, c in lines))


def enter_new(p: Plan) -> None:
    """Move this (single-threaded) process into a new user namespace mapped
    as ``p`` says, and become its root. A child made for the purpose writes
    the maps from outside (newuidmap refuses to map the caller itself)."""
    from . import syscalls as sc

    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:                          # the mapper: waits for the unshare, maps, reports
        os.close(go_w)
        os.close(done_r)
        code = 0
        try:
            os.read(go_r, 1)
            write_maps(os.getppid(), p)
            os.write(done_w, b"ok")
        except OSError as e:
            os.write(done_w, str(e).encode()[:4000] or b"error")
            code = 1
        finally:
            os._exit(code)
    os.close(go_r)
    os.close(done_w)
    try:
        try:
            sc.Syscalls().unshare(sc.CLONE_NEWUSER)
        except OSError as e:
            raise OSError(e.errno, f"cannot make a user namespace: {restriction_reason() or e.strerror}") from None
        finally:
            os.write(go_w, b"1")
        answer = os.read(done_r, 4096).decode(errors="replace")
    finally:
        os.close(go_w)
        os.close(done_r)
        os.waitpid(pid, 0)
    if answer != "ok":
        raise OSError(f"cannot map the user namespace's ids: {answer}")
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    if p.mode == "subid":
        os.setgroups([])
    global _host_uid
    _host_uid = p.uid


def join(pid: int) -> None:
    """Join the user namespace of ``pid`` (the rootless supervisor's) and
    become its root: this process must be single-threaded and its user the
    namespace's owner. Raises OSError."""
    from . import syscalls as sc

    if os.readlink(f"/proc/{pid}/ns/user") == os.readlink("/proc/self/ns/user"):
        return                                   # there already
    fd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    try:
        uid = host_uid()
        sc.Syscalls().setns(fd, sc.CLONE_NEWUSER)
    finally:
        os.close(fd)
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)
    global _host_uid
    _host_uid = uid


def can_own(uid: int, gid: int) -> bool:
    """Whether a file may be given these owners here: every id as the host's
    root; in a user namespace, the ids its maps hold."""
    if in_initial():
        return os.geteuid() == 0
    return mapped(uid, "/proc/self/uid_map") and mapped(gid, "/proc/self/gid_map")


_maps: dict[str, list[tuple[int, int, int]]] = {}


def mapped(n: int, path: str) -> bool:
    """Whether the id map at ``path`` holds id ``n`` inside (the maps of this
    process's own namespace are read once: they never change)."""
    lines = _maps.get(path) if path.startswith("/proc/self/") else None
    if lines is None:
        lines = id_map(path)
        if path.startswith("/proc/self/"):
            _maps[path] = lines
    return any(inside <= n < inside + count for inside, _, count in lines)


def restriction_reason(sysctl: str = "/proc/sys") -> str | None:
    """Why this machine refuses unprivileged user namespaces, or None."""
    checks = (
        (f"{sysctl}/kernel/apparmor_restrict_unprivileged_userns", "1",
         "AppArmor restricts unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1)"),
        (f"{sysctl}/kernel/unprivileged_userns_clone", "0",
         "unprivileged user namespaces are off (kernel.unprivileged_userns_clone=0)"),
        (f"{sysctl}/user/max_user_namespaces", "0", "user namespaces are off (user.max_user_namespaces=0)"),
    )
    for path, bad, why in checks:
        try:
            with open(path) as f:
                if f.read().strip() == bad:
                    return why
        except OSError:
            continue
    return None


def outside_helper():
    """A process left behind in the host's user namespace, before this one
    leaves it (:func:`enter_new`): it runs, as the user, the commands the
    rootless engine may not run from inside -- pasta, which must attach to a
    container's network namespace from outside (from inside, with its
    capabilities dropped, it could not open the namespace of a process that
    has them all). Returns the socket to ask it on (:func:`run_outside`); it
    exits when that socket closes."""
    import socket

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    if os.fork() == 0:
        code = 0
        try:
            ours.close()
            _serve_outside(theirs)
        except BaseException:  # noqa: BLE001 - a helper ends quietly; its asker sees the socket close
            code = 1
        finally:
            os._exit(code)
    theirs.close()
    return ours


def _serve_outside(sock) -> None:
    """The helper's loop. What it starts may daemonize (pasta does): as a
    child subreaper it gets those back, and reaps each once it has ended."""
    import json
    import subprocess

    from . import syscalls as sc

    os.closerange(3, sock.fileno())
    os.closerange(sock.fileno() + 1, 1 << 16)
    sc.Syscalls().prctl(sc.PR_SET_CHILD_SUBREAPER, 1)
    sock.settimeout(1.0)
    while True:
        try:
            data = sock.recv(1 << 16)
        except TimeoutError:
            _reap_ended()
            continue
        if not data:
            _end_children()              # the engine has gone: so do its pastas
            return
        ask = json.loads(data)
        try:
            r = subprocess.run(ask["argv"], capture_output=True, text=True, timeout=ask.get("timeout", 20),
                               stdin=subprocess.DEVNULL)
            answer = {"rc": r.returncode, "stdout": r.stdout[-4000:], "stderr": r.stderr[-4000:]}
        except (OSError, subprocess.TimeoutExpired) as e:
            answer = {"rc": -1, "stdout": "", "stderr": str(e)}
        sock.send(json.dumps(answer).encode())
        _reap_ended()


def _end_children() -> None:
    import signal
    import time

    try:
        with open(f"/proc/self/task/{os.getpid()}/children") as f:
            children = [int(p) for p in f.read().split()]
    except (OSError, ValueError):
        children = []
    for pid in children:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 2
    while children and time.monotonic() < deadline:
        _reap_ended()
        children = [p for p in children if os.path.exists(f"/proc/{p}")]
        time.sleep(0.02)


def _reap_ended() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def run_outside(sock, argv: list[str], timeout: float = 20) -> dict:
    """Run ``argv`` through :func:`outside_helper`: {"rc", "stdout", "stderr"}."""
    import json

    sock.send(json.dumps({"argv": argv, "timeout": timeout}).encode())
    sock.settimeout(timeout + 5)
    try:
        data = sock.recv(1 << 16)
    finally:
        sock.settimeout(None)
    if not data:
        raise OSError("the helper outside the user namespace has gone")
    return json.loads(data)


def pasta_path() -> str | None:
    """Where pasta is (the rootless engine's network, Debian's ``passt``)."""
    import shutil

    return shutil.which("pasta")


def pasta_missing() -> str | None:
    """Why pasta cannot plug a rootless container in here, or None."""
    if pasta_path() is None:
        return "pasta is not installed (Debian: apt-get install passt)"
    if not os.access("/dev/net/tun", os.R_OK | os.W_OK):
        return "/dev/net/tun is not open to users (it is on most machines: chmod 0666 /dev/net/tun)"
    return None
