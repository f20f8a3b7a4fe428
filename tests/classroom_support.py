"""What the classroom's tests share: ``container-lab serve`` in the background
(its ports read from what it prints), an SSH client that reads the app's
screen, the engine's CLI as a seat's uid, and ``container-lab class``."""

from __future__ import annotations

import asyncio
import json
import os
import re
import select
import signal
import subprocess
import sys
import time

import asyncssh
import pyte

from tui.classroom.room import SEAT_UID_BASE

from conftest import REPO, ROOT, cl  # noqa: F401 - cl: for the test modules

CODE = "room-code-7"
SYSTEM_PYTHON = "/usr/bin/python3"


class Serve:
    """``container-lab serve`` in the background; its ports read from what it prints."""

    def __init__(self, *extra: str, state=None):
        os.chmod(ROOT, 0o711)                   # the seats reach the socket and their own directories
        self.state = state or ROOT / "classroom"
        if state is not None:
            extra = (*extra, "--state-dir", str(state))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tui.launcher", "serve", "--ssh", "127.0.0.1:0", "--web", "127.0.0.1:0",
             "--code", CODE, "--seat-memory", "256m", "--seat-pids", "300", "--seat-containers", "3", *extra],
            cwd=REPO, env={**os.environ, "LANGUAGE": "en", "LANG": "C.UTF-8"},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
        out = b""
        deadline = time.monotonic() + 60
        while b"Ctrl+C" not in out:
            assert time.monotonic() < deadline and self.proc.poll() is None, (out, self.proc.stderr.read())
            ready, _, _ = select.select([self.proc.stdout], [], [], 1)
            if ready:
                out += os.read(self.proc.stdout.fileno(), 65536)
        text = out.decode()
        self.code = re.search(r"Room code: (\S+)", text).group(1)
        self.ssh_port = int(re.search(r"ssh -p (\d+) ", text).group(1))
        self.web_port = int(re.search(r"http://127\.0\.0\.1:(\d+)/", text).group(1))

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=90)
        return self.proc.returncode, (out + err).decode()


# -- SSH -----------------------------------------------------------------------------------

async def ssh_screen(port: int, name: str, code: str, *, want: str, cols=100, rows=30, resize=None,
                      local_addr=None, state=None) -> tuple[str, dict]:
    """Log in, read the screen until ``want`` shows; optionally resize after. Returns the screen and
    facts (the apps of the room at ``state`` running as the first seat's uid; their window sizes)."""
    facts = {}
    async with asyncssh.connect("127.0.0.1", port, username=name, password=code, known_hosts=None,
                                local_addr=local_addr, client_keys=None, agent_path=None) as conn:
        facts["host_key"] = conn.get_server_host_key().export_public_key().decode()
        proc = await conn.create_process(term_type="xterm-256color", term_size=(cols, rows), encoding=None)
        screen = pyte.Screen(cols, rows)
        stream = pyte.ByteStream(screen)
        deadline = time.monotonic() + 30
        while want not in "\n".join(screen.display) and time.monotonic() < deadline:
            try:
                data = await asyncio.wait_for(proc.stdout.read(65536), 1)
            except asyncio.TimeoutError:  # noqa: UP041 - the name asyncio.wait_for raises on 3.10 too
                continue
            if not data:
                break
            stream.feed(data)
        facts["app_pids"] = app_pids(SEAT_UID_BASE, state)
        if resize:
            proc.change_terminal_size(*resize)
            await asyncio.sleep(1.0)
            facts["winsizes"] = [winsize(pid) for pid in app_pids(None, state)]
        proc.stdin.write(b"\x11")                # Ctrl+Q: the app quits, the session ends
        await asyncio.sleep(0.5)
    return "\n".join(screen.display), facts


def app_pids(uid: int | None, state=None) -> list[int]:
    """Processes of the seats' apps (those running as ``uid``; those of the room
    at ``state``: another test's room may run beside this one)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{entry}/status") as f:
                real_uid = int(next(line for line in f if line.startswith("Uid:")).split()[1])
        except (OSError, StopIteration):
            continue
        if b"tui.classroom.seat_app" in argv and (uid is None or real_uid == uid) and (
                state is None or any(a.startswith(str(state).encode() + b"/") for a in argv)):
            out.append(int(entry))
    return out


def winsize(pid: int) -> tuple[int, int]:
    import fcntl
    import struct
    import termios

    fd = os.open(f"/proc/{pid}/fd/0", os.O_RDONLY | os.O_NOCTTY)
    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    finally:
        os.close(fd)
    return cols, rows


# -- a seat's engine, the instructor's view -------------------------------------------------

def seat_cl(uid: int, *args: str) -> subprocess.CompletedProcess:
    """The engine's CLI as the seat's uid, on the room's supervisor."""
    return subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", SYSTEM_PYTHON, "-m", "engine.cli", *args],
        env={"PATH": "/usr/bin:/bin", "HOME": "/", "PYTHONPATH": str(REPO),
             "CONTAINER_LAB_STATE_DIR": str(ROOT / "run")},
        cwd="/", capture_output=True, text=True, timeout=60)


def join(serve, name: str) -> int:
    asyncio.run(ssh_screen(serve.ssh_port, name, CODE, want="Start the course", state=serve.state))
    return SEAT_UID_BASE + json.loads((serve.state / "room.json").read_text())["seats"][name]


def cl_class(serve, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "tui.launcher", "class", "--state-dir", str(serve.state), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env=os.environ)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout
