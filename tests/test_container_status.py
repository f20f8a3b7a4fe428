"""A container's status is an :class:`engine.container.Status`: what each
state allows is asked of it (the supervisor's start, kill, exec and prune
do), and a record read back from disk gives a Status again, while the JSON
on disk and on the wire stays the plain word."""

from __future__ import annotations

import json

import pytest

from engine.container import STATES, Container, Status
from engine.spec import ContainerConfig

ALLOWED = {
    #  state        start  kill   exec   remove (without force)
    "created":  (True, False, False, True),
    "starting": (False, False, False, False),
    "running":  (False, True, True, False),
    "exited":   (True, False, False, True),
}


@pytest.mark.parametrize("state", sorted(ALLOWED))
def test_each_state_allows_what_it_should(state):
    status = Status(state)
    assert (status.can_start(), status.can_kill(), status.can_exec(), status.can_remove()) == ALLOWED[state]


def test_the_states_are_the_four_a_record_may_hold():
    assert set(STATES) == set(ALLOWED) and all(isinstance(s, Status) for s in STATES)
    with pytest.raises(ValueError):
        Status("zombie")


def test_a_record_round_trip_keeps_a_status_and_writes_the_word(tmp_path):
    cid = "a" * 64
    cdir = tmp_path / cid
    cdir.mkdir()
    c = Container(cid, "brave_turing", ContainerConfig(image="lab", cmd=["true"]).validate(), cdir)
    c.image = {"requested": "lab", "ref": "lab:latest", "id": "sha256:" + "b" * 64, "digest": "", "layers": []}
    c.process = {"argv": ["true"], "env": [], "cwd": "/", "user": "", "hostname": "x", "lowerdir": "",
                 "userns": None}
    assert c.status is Status.CREATED
    c.status = "exited"                       # set from the plain word, as older code does
    assert c.status is Status.EXITED
    c.save()
    assert json.loads((cdir / "container.json").read_text())["status"] == "exited"
    loaded = Container.load(cdir)
    assert loaded.status is Status.EXITED and loaded.status.can_start()
    assert json.dumps(loaded.summary()["status"]) == '"exited"'
