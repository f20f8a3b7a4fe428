"""The live event subscription the app listens to: backlog from a cursor, then pushed events."""

from __future__ import annotations

import time

import pytest

from conftest import cl, needs_root

pytestmark = [needs_root, pytest.mark.usefixtures("lab_image")]


def client():
    from engine.client import Client
    return Client()


def _until(sub, kind: str, name: str, timeout: float = 10.0) -> list[dict]:
    got, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = sub.get(timeout=0.5)
        if event is not None and event.get("name") == name:
            got.append(event)
            if event["kind"] == kind:
                return got
    raise AssertionError(f"no {kind} event for {name}; got {[e['kind'] for e in got]}")


def test_events_are_pushed_as_they_happen_in_order():
    c = client()
    cursor = c.ping()["events_seq"]
    with c.subscribe(after=cursor) as sub:
        assert sub.get(timeout=0.2) is None                      # nothing happened yet
        cl("run", "--rm", "--name", "pushed", "lab", "sh", "-c", "exit 4", check=False)
        events = _until(sub, "removed", "pushed")       # how soon: bench/timings.py
    assert [e["kind"] for e in events] == ["created", "started", "exited", "removed"]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events) and events[0]["seq"] > cursor
    assert events[2]["exit_code"] == 4


def test_a_cursor_replays_what_came_after_it_once_then_goes_live():
    c = client()
    cursor = c.ping()["events_seq"]
    cl("run", "--rm", "--name", "before", "lab", "true", check=True)
    with c.subscribe(after=cursor) as sub:
        replayed = _until(sub, "removed", "before")
        assert [e["kind"] for e in replayed] == ["created", "started", "exited", "removed"]
        cl("run", "--rm", "--name", "after", "lab", "true", check=True)
        live = _until(sub, "removed", "after")
        seqs = [e["seq"] for e in replayed + live]
        assert len(seqs) == len(set(seqs)) and seqs == sorted(seqs)


def test_closed_subscriptions_do_not_trouble_the_supervisor():
    c = client()
    cursor = c.ping()["events_seq"]
    subs = [c.subscribe(after=cursor) for _ in range(3)]
    subs[0].close()
    subs[1].close()
    cl("run", "--rm", "--name", "survivor", "lab", "true", check=True)
    assert [e["kind"] for e in _until(subs[2], "removed", "survivor")][-1] == "removed"
    subs[2].close()
    assert c.ping()["events_seq"] > cursor


def test_events_follow_prints_a_new_event():
    import subprocess
    import sys

    from conftest import REPO

    cursor = client().ping()["events_seq"]
    follower = subprocess.Popen([sys.executable, "-m", "engine.cli", "events", "--follow", "--since", str(cursor),
                                 "--filter", "kind=started"], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        cl("run", "--rm", "--name", "prompt", "lab", "true", check=True)
        line = follower.stdout.readline()               # how soon: bench/timings.py
        assert "container started" in line and "name=prompt" in line
    finally:
        follower.kill()
        follower.wait()
