"""The course app of one seat: ``python -m tui.classroom.seat_app UID DIR [--lang L] [--course C]``.

Started by ``serve`` (as root) on the seat's pty. Everything the app needs is
imported and the course loaded first, as root (the interpreter and its
libraries may be where only root can read them, as under /root); then the
process becomes the seat -- no supplementary groups, gid and uid the seat's
(setresgid/setresuid: the saved ids too, so there is no way back) -- and
only then opens the learner's progress (in DIR, the seat's own) and the
app, which talks to the root supervisor as the seat: the supervisor holds
it to the seat's policy from SO_PEERCRED, whatever this process says.
"""

from __future__ import annotations

import os
import sys

MESSAGES = "messages.jsonl"      # the instructor's messages to this seat (container-lab class --message)


def relay_messages(app, path: str, interval: float = 0.5) -> None:
    """Show each message the instructor writes to ``path`` (one JSON object a
    line, appended by root) as a notification in the app; those written before
    this session began are not shown again."""
    import json
    import time

    try:
        offset = os.stat(path).st_size
    except OSError:
        offset = 0
    while True:
        time.sleep(interval)
        try:
            with open(path, "rb") as f:
                if os.fstat(f.fileno()).st_size < offset:
                    offset = 0                      # the file was started again
                f.seek(offset)
                data = f.read(64 << 10)
        except OSError:
            continue
        lines = data.split(b"\n")
        offset += len(data) - len(lines[-1])       # a line still being written waits
        for line in lines[:-1]:
            try:
                text = str(json.loads(line)["text"])[:500]
            except (ValueError, KeyError, TypeError):
                continue
            try:
                app.call_from_thread(app.notify, text, title="container-lab class", timeout=30)
            except RuntimeError:                    # the app is not running (yet, or any more)
                pass


def become(uid: int) -> None:
    """Drop to ``uid`` for good (gid the same number, no groups).

    Python imports lazily, so the app still reads its library after the
    drop; an interpreter installed where only root may look (under /root)
    would then fail. Each directory of ``sys.path`` is opened before the
    drop, and one the seat cannot reach is read through its open directory
    (``/proc/self/fd/N``: the lookup starts below the closed parent); the
    process is made dumpable again so that its own /proc/self/fd is its
    own (a uid change makes it root's). The seat reaches nothing more than
    the interpreter's read-only library this way."""
    import ctypes

    held = {}
    for entry in sys.path:
        if entry and os.path.isdir(entry):
            try:
                held[entry] = os.open(entry, os.O_RDONLY | os.O_DIRECTORY)     # kept open: inherited by nobody
            except OSError:
                pass
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getgroups():
        raise SystemExit("container-lab: could not become the seat's user")
    ctypes.CDLL(None, use_errno=True).prctl(4, 1, 0, 0, 0)          # PR_SET_DUMPABLE
    moved = {entry: f"/proc/self/fd/{fd}" for entry, fd in held.items()
             if not os.access(entry, os.R_OK | os.X_OK)}

    def reachable(path: str) -> str:
        for entry, fd_path in moved.items():
            if path == entry or path.startswith(entry.rstrip("/") + "/"):
                return fd_path + path[len(entry.rstrip("/")):]
        return path

    sys.path[:] = [reachable(p) for p in sys.path]
    for module in list(sys.modules.values()):       # packages imported already find their submodules here
        search = getattr(module, "__path__", None)
        if isinstance(search, list):
            search[:] = [reachable(p) for p in search]
    sys.path_importer_cache.clear()


def main(argv: list[str]) -> int:
    if len(argv) < 2 or not argv[0].isdigit() or int(argv[0]) == 0:
        print("usage: python -m tui.classroom.seat_app UID DIR [--lang L] [--course C]", file=sys.stderr)
        return 2
    uid, home, rest = int(argv[0]), argv[1], argv[2:]
    import fcntl
    import termios

    try:                    # serve started us in a new session: the pty becomes our terminal
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    except OSError:
        pass
    lang = rest[rest.index("--lang") + 1] if "--lang" in rest[:-1] else None
    course_dir = rest[rest.index("--course") + 1] if "--course" in rest[:-1] else None
    # As root: every module the app uses, and the course (checked, from root's cache).
    import tui.app  # noqa: F401 - imported before the drop, on purpose
    import tui.screens  # noqa: F401
    import tui.widgets  # noqa: F401
    from tui import course_cache
    from tui.machine import check_machine
    from tui.start import make_app

    course = course_cache.load(course_dir)
    machine = check_machine()       # what the root supervisor can do for this seat, asked as root
    become(uid)
    os.chdir(home)
    os.environ.update({"HOME": home, "CONTAINER_LAB_LEARNER_DIR": os.path.join(home, "progress"),
                       "XDG_CACHE_HOME": os.path.join(home, ".cache"), "USER": os.environ.get("CONTAINER_LAB_SEAT", "")})
    app = make_app(lang, course=course, machine=machine)
    import threading

    threading.Thread(target=relay_messages, args=(app, os.path.join(home, MESSAGES)), daemon=True,
                     name="messages").start()
    app.run()
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
