"""The instructor's side of the classroom, for real: ``container-lab class``
(``--format json``, the live Textual view, ``--message``) against a running
``serve`` and this session's engine."""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest
from classroom_support import CODE, ROOT, Serve, cl, cl_class, join, seat_cl

from conftest import needs_root

pytestmark = needs_root
asyncssh = pytest.importorskip("asyncssh")
pyte = pytest.importorskip("pyte")


@pytest.fixture(scope="module")
def serve(lab_image):
    s = Serve(state=ROOT / "classroom-class")
    yield s
    code, out = s.stop()
    os.chmod(ROOT, 0o700)
    assert code == 0, out


# -- the instructor's view ------------------------------------------------------------------------

def test_class_json_shows_each_seats_progress_containers_and_budget(serve):
    uid = join(serve, "frank")
    proc = seat_cl(uid, "run", "-d", "--name", "web", "lab", "sleep", "100")
    assert proc.returncode == 0, proc.stderr
    try:
        # The seat's progress, as its app would write it (the file is the seat's own).
        progress = serve.state / "seats" / "frank" / "progress" / "progress.json"
        progress.parent.mkdir(exist_ok=True)
        progress.write_text(json.dumps({"version": 1, "language": "zh", "current": {
            "course": "container-lab", "lesson": "first-container", "step": "hello"}, "courses": {
            "container-lab": {"first-container": {"hello": {"done": True, "checks": ["container-ran"],
                                                            "time": "2026-12-07T10:00:00"}}}}}))
        t0 = time.monotonic()
        out = cl_class(serve, "--format", "json")
        assert time.monotonic() - t0 < 3
        seat = next(s for s in json.loads(out)["seats"] if s["name"] == "frank")
        assert (seat["language"], seat["lesson"], seat["step"], seat["steps_done"]) == (
            "zh", "first-container", "hello", 1)
        assert seat["last_checks"] == ["container-ran"] and seat["uid"] == uid and seat["in_engine"]
        assert [c["name"] for c in seat["containers"]] == ["web"]
        assert seat["budget"]["memory"] == 256 << 20 and seat["budget"]["containers"] == 3
        # A seat's planted symlink is not followed by root's reader.
        progress.unlink()
        progress.symlink_to("/etc/shadow")
        seat = next(s for s in json.loads(cl_class(serve, "--format", "json"))["seats"] if s["name"] == "frank")
        assert seat["language"] is None and seat["steps_done"] == 0
        row = next(line for line in cl_class(serve).splitlines() if line.startswith("frank "))
        import csv
        import io

        rows = list(csv.DictReader(io.StringIO(cl_class(serve, "--format", "csv"))))
        frank = next(r for r in rows if r["seat"] == "frank")
        assert (frank["uid"], frank["steps_done"], frank["containers"], frank["memory_budget_bytes"]) == (
            str(uid), "0", "1", str(256 << 20))
        cells = row.split()
        assert cells[:7] == ["frank", "-", "-", "-", "0", "0", "1"] and cells[7].endswith("/256"), row
    finally:
        cl("rm", "-f", "frank/web")


def test_the_live_class_view_lists_the_seats_and_ends_one(serve):
    """The Textual view (headless): a row per seat, refreshed; x ends the highlighted seat."""
    from textual.widgets import DataTable

    from tui.classroom.class_app import ClassApp

    uid = join(serve, "gina")
    assert seat_cl(uid, "run", "-d", "--name", "web", "lab", "sleep", "100").returncode == 0

    async def run():
        app = ClassApp(serve.state)
        async with app.run_test(size=(140, 30)) as pilot:
            table = app.query_one(DataTable)
            for _ in range(50):
                await pilot.pause(0.1)
                if table.row_count:
                    break
            names = [table.get_row_at(i)[0].plain for i in range(table.row_count)]
            table.move_cursor(row=names.index("gina"))
            await pilot.press("x")
            for _ in range(50):
                await pilot.pause(0.1)
                if "gina/web" not in cl("ps", "-a").stdout:
                    break
            return names

    names = asyncio.run(run())
    assert "gina" in names and names == sorted(names), names
    assert "gina/web" not in cl("ps", "-a").stdout


def test_a_message_from_the_instructor_shows_in_the_seats_app(serve):
    """class --message: within a second, a notification in the seat's app (over SSH)."""
    async def run():
        async with asyncssh.connect("127.0.0.1", serve.ssh_port, username="hana", password=CODE, known_hosts=None,
                                    client_keys=None, agent_path=None) as conn:
            proc = await conn.create_process(term_type="xterm-256color", term_size=(100, 30), encoding=None)
            screen = pyte.Screen(100, 30)
            stream = pyte.ByteStream(screen)

            async def until(text):
                deadline = time.monotonic() + 20
                while text not in "\n".join(screen.display) and time.monotonic() < deadline:
                    try:
                        stream.feed(await asyncio.wait_for(proc.stdout.read(65536), 1))
                    except asyncio.TimeoutError:  # noqa: UP041
                        pass
                return "\n".join(screen.display)

            await until("Start the course")
            sent = await asyncio.get_running_loop().run_in_executor(
                None, cl_class, serve, "--message", "Break: back at 11:00", "--seat", "hana")
            text = await until("Break: back at 11:00")
            proc.stdin.write(b"\x11")
            return sent, text

    sent, text = asyncio.run(run())
    assert sent.strip() == "sent to 1 seats: hana"
    assert "Break: back at 11:00" in text, text
    # A seat's planted link is not written through.
    messages = serve.state / "seats" / "hana" / "messages.jsonl"
    messages.unlink()
    messages.symlink_to("/etc/motd")
    assert cl_class(serve, "--message", "hello", "--seat", "hana").strip() == "sent to 0 seats:"
    messages.unlink()
