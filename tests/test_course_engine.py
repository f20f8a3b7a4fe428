"""The course framework against the real engine: every check kind on a state
that passes it and one that fails it, the event cursor, the lesson lab (setup,
reset, labels, cleanup, the lab fallback), commands on a real terminal, and
``course solve`` finishing the fixture course in both languages.

No mocks: containers are made with the engine's CLI (``cl``) or through the
framework itself, and the checks read the real event log and kernel.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lessons.checks import evaluate, evaluate_all
from lessons.docker import LABEL_IMAGE, Context, translate
from lessons.lab import Lab
from lessons.loader import load_course
from lessons.model import CheckSpec
from lessons.runner import TerminalSession, plain, run
from lessons.solve import solve
from lessons.view import EngineView

from conftest import REPO, cl, needs_root, overlay_mounts, settle

pytestmark = [needs_root, pytest.mark.usefixtures("lab_image")]

FIXTURE = REPO / "tests" / "fixtures" / "course"


@pytest.fixture(autouse=True)
def _own_containers():
    """Each test removes the containers it made, and leaves no mount behind."""
    before = {c["id"] for c in _ps()}
    yield
    for c in _ps():
        if c["id"] not in before:
            cl("rm", "-f", c["id"])
    settle()
    assert {c["id"] for c in _ps()} <= before


def _ps() -> list[dict]:
    return [json.loads(line) for line in cl("ps", "-a", "--format", "json", check=True).stdout.splitlines()]


@pytest.fixture(scope="module")
def view() -> EngineView:
    return EngineView()


def check(view, kind: str, cursor: int, lang: str = "en", **args):
    return evaluate(CheckSpec(kind, args), view, cursor, lang)


def sleeper(name: str, *extra: str, seconds: str = "300") -> None:
    cl("run", "-d", "--name", name, *extra, "lab", "sleep", seconds, check=True)


# -- the cursor ------------------------------------------------------------------------

def test_an_old_event_does_not_satisfy_a_new_step(view):
    cl("run", "--rm", "lab", "echo", "early", check=True)
    cursor = view.cursor()
    old = check(view, "container-ran", cursor, argv=["echo", "early"], exit_code=0)
    assert not old.passed and old.saw == "no container has run since this step began"
    cl("run", "--rm", "lab", "echo", "early", check=True)
    assert check(view, "container-ran", cursor, argv=["echo", "early"], exit_code=0).passed


# -- each check, passing and failing ------------------------------------------------------

def test_container_ran(view):
    cursor = view.cursor()
    cl("run", "--name", "ran", "lab", "sh", "-c", "exit 3")
    ok = check(view, "container-ran", cursor, image="lab", argv="sh -c 'exit 3'", exit_code=3, name="ran")
    assert ok.passed, ok.saw
    assert ok.saw == "ran: lab `sh -c 'exit 3'`, exited with code 3"
    wrong = check(view, "container-ran", cursor, argv="sh -c 'exit 3'", exit_code=0)
    assert not wrong.passed and "exited with code 3" in wrong.saw and "exited with code 0" in wrong.expected
    other_image = check(view, "container-ran", cursor, image="ubuntu")
    assert not other_image.passed
    zh = check(view, "container-ran", cursor, "zh", argv=["true"])
    assert zh.saw == "ran：lab `sh -c 'exit 3'`，已退出，退出码 3" and zh.expected == "运行过一个容器；运行 `true`"


def test_the_lab_fallback_is_recorded_under_both_names(view):
    cursor = view.cursor()
    cmd = translate("docker run --name fb ubuntu echo hi",
                    Context(course="t", lesson="l", step="s", images=("ubuntu",)))
    assert cmd.image_used == "lab" and cmd.notices                # ubuntu is not in the offline store
    result = run(cmd)
    assert result.ok and result.output == "hi\n", result
    (event,) = [e for e in view.events(cursor) if e["kind"] == "exited" and e["name"] == "fb"]
    assert event["image"]["requested"] == "lab" and event["image"]["resolved"] == "lab:latest"
    assert event["labels"][LABEL_IMAGE] == "ubuntu"
    ok = check(view, "container-ran", cursor, image="ubuntu", argv="echo hi", exit_code=0)
    assert ok.passed and ok.saw == "fb: ubuntu (run on lab) `echo hi`, exited with code 0"
    assert check(view, "container-ran", cursor, image="lab").passed
    assert not check(view, "container-ran", cursor, image="debian").passed


def test_exec_ran(view):
    sleeper("ex")
    cursor = view.cursor()
    assert not check(view, "exec-ran", cursor, container="ex").passed
    cl("exec", "ex", "sh", "-c", "exit 5")
    assert check(view, "exec-ran", cursor, container="ex", argv="sh -c 'exit 5'", exit_code=5).passed
    wrong = check(view, "exec-ran", cursor, container="ex", exit_code=0)
    assert not wrong.passed and "exited with code 5" in wrong.saw


def test_interactive_session_needs_a_terminal(view):
    sleeper("tty")
    cursor = view.cursor()
    cl("exec", "-i", "tty", "true", input="")
    plain_exec = check(view, "interactive-session", cursor, container="tty")
    assert not plain_exec.passed
    assert plain_exec.saw == "a non-interactive exec in tty (no -t, so it does not count): `true`"
    with TerminalSession(["exec", "-it", "tty", "sh"]) as session:
        assert session.run_typing(["echo in-a-terminal", "exit"], timeout=30) == 0
    assert "in-a-terminal" in plain(session.text())
    ok = check(view, "interactive-session", cursor, container="tty")
    assert ok.passed and ok.saw == "an interactive exec in tty: `sh`"


def test_run_it_counts_as_a_session_and_is_matched_by_image(view):
    cursor = view.cursor()
    cmd = translate("docker run -it --rm ubuntu sh", Context(course="t", lesson="l", images=("ubuntu",)))
    result = run(cmd, typed=("hostname", "exit 4"))
    assert result.exit_code == 4, result
    assert check(view, "interactive-session", cursor, image="ubuntu").passed
    assert not check(view, "interactive-session", cursor, image="alpine").passed


def test_container_running(view):
    sleeper("up")
    cl("run", "--name", "down", "lab", "true")
    cursor = view.cursor()
    assert check(view, "container-running", cursor, container="up").passed
    assert check(view, "container-running", cursor, container="up", image="lab").passed
    down = check(view, "container-running", cursor, container="down")
    assert not down.passed and down.saw == "down (lab) is exited"
    assert check(view, "container-running", cursor, container="down", running=False).passed
    missing = check(view, "container-running", cursor, container="ghost")
    assert not missing.passed and missing.saw == "there is no container named ghost"


def test_pid1(view):
    sleeper("p1")
    cursor = view.cursor()
    ok = check(view, "pid1", cursor, container="p1", command="sleep")
    assert ok.passed and ok.saw == "PID 1 in p1 is `sleep 300` (read from the kernel)"
    assert check(view, "pid1", cursor, container="p1", command=["sleep", "300"]).passed
    assert not check(view, "pid1", cursor, container="p1", command="bash").passed
    cl("run", "--init", "--name", "p1i", "lab", "true")
    exited = check(view, "pid1", cursor, command="init")          # any container since the cursor
    assert exited.passed and exited.saw == "PID 1 in p1i was `init -- true` (it has exited)"


def test_hostname_differs(view):
    sleeper("hn", "-h", "box")
    cl("run", "-d", "--name", "same", "-h", socket.gethostname(), "lab", "sleep", "300", check=True)
    cursor = view.cursor()
    ok = check(view, "hostname-differs", cursor, container="hn", equals="box")
    assert ok.passed and ok.saw == f"inside hn the hostname is box; on the host it is {socket.gethostname()}"
    assert not check(view, "hostname-differs", cursor, container="hn", equals="other").passed
    same = check(view, "hostname-differs", cursor, container="same")
    assert not same.passed and same.saw.startswith("inside same the hostname is " + socket.gethostname())
    cl("stop", "-t", "0", "hn", check=True)
    assert check(view, "hostname-differs", cursor, container="hn").saw == "hn is not running"


def test_file_deleted_in_the_writable_layer_only(view):
    cursor = view.cursor()
    cl("run", "--name", "rmp", "lab", "sh", "-c", "rm /etc/passwd && touch /new && echo x >> /etc/hostname",
       check=True)
    ok = check(view, "file-deleted", cursor, path="/etc/passwd")
    assert ok.passed and ok.saw == "/etc/passwd is deleted in rmp's writable layer, and the image still has it"
    assert Path("/etc/passwd").exists()                          # the host's is untouched
    assert check(view, "file-deleted", cursor, path="etc/passwd", container="rmp").passed
    added = check(view, "file-deleted", cursor, path="/new", container="rmp")
    assert not added.passed and added.saw == "/new was added in rmp, not deleted"
    cl("run", "--name", "keep", "lab", "true", check=True)
    kept = check(view, "file-deleted", cursor, path="/etc/passwd", container="keep")
    assert not kept.passed and kept.saw == "/etc/passwd is unchanged in keep"


def test_pids_limit_hit(view):
    cursor = view.cursor()
    cl("run", "--name", "calm", "lab", "true", check=True)
    assert not check(view, "limit-hit", cursor, limit="pids").passed
    cl("run", "--name", "forks", "--pids-limit", "10", "lab", "sh", "-c",
       "i=0; while [ $i -lt 30 ]; do sleep 30 & i=$((i+1)); done", timeout=60)
    ok = check(view, "limit-hit", cursor, limit="pids", container="forks")
    assert ok.passed and "refused" in ok.saw
    assert not check(view, "limit-hit", cursor, limit="pids", container="calm").passed
    assert not check(view, "limit-hit", cursor, limit="memory").passed


def test_memory_limit_hit(view):
    cursor = view.cursor()
    proc = cl("run", "--name", "hog", "-m", "32m", "lab", "tail", "/dev/zero", timeout=120)
    assert proc.returncode == 137
    ok = check(view, "limit-hit", cursor, limit="memory", container="hog")
    assert ok.passed and ok.saw == "the kernel's OOM killer acted in hog"


def test_cpu_limit_hit(view):
    """A CPU limit leaves no event: the check reads how often the kernel throttled the container."""
    from engine.doctor import diagnose

    if not diagnose()["limits"]["cpu"]:
        pytest.skip("this machine cannot apply CPU limits")
    cursor = view.cursor()
    sleeper("idle", "--cpus", "0.2")
    cl("run", "-d", "--name", "busy", "--cpus", "0.2", "lab", "sh", "-c", "while :; do :; done", check=True)
    ok = evaluate_all([CheckSpec("limit-hit", {"limit": "cpu", "container": "busy"})], view, cursor, wait=10)[0]
    assert ok.passed and ok.saw.startswith("the kernel held busy back in ") and ok.saw.endswith("its CPU limit")
    idle = check(view, "limit-hit", cursor, limit="cpu", container="idle")
    assert not idle.passed and idle.saw.startswith("idle has not been throttled yet")
    assert check(view, "limit-hit", cursor, limit="cpu").passed              # any container started since
    zh = check(view, "limit-hit", cursor, "zh", limit="cpu", container="busy")
    assert zh.passed and zh.expected == "在容器 busy 中，CPU 上限生效了（内核对容器进行了限流）"
    cl("rm", "-f", "busy", check=True)
    gone = check(view, "limit-hit", cursor, limit="cpu", container="busy")
    assert not gone.passed and gone.saw == "there is no container named busy"
    assert not check(view, "limit-hit", view.cursor(), limit="cpu").passed   # nothing started since


def test_namespaces_shared_and_not(view):
    sleeper("nsa")
    sleeper("nsb")
    cursor = view.cursor()
    iso = check(view, "namespace", cursor, namespace="uts", container="nsa", other="host", shared=False)
    assert iso.passed and iso.saw.startswith("nsa is in uts namespace ")
    assert not check(view, "namespace", cursor, namespace="uts", container="nsa", shared=True).passed
    assert check(view, "namespace", cursor, namespace="pid", container="nsa", other="nsb", shared=False).passed
    wrong = check(view, "namespace", cursor, namespace="net", container="nsa", other="nsb", shared=True)
    assert not wrong.passed and wrong.expected == "nsa and nsb share one net namespace"
    # As root the engine makes no user namespace: the container shares the host's.
    shared = check(view, "namespace", cursor, namespace="user", container="nsa", other="host", shared=True)
    assert shared.passed and shared.saw.startswith("nsa is in the host's user namespace")
    gone = check(view, "namespace", cursor, namespace="pid", container="nsa", other="ghost", shared=False)
    assert not gone.passed and gone.saw == "there is no container named ghost"


def test_namespace_shared_between_two_containers_when_the_engine_can(view):
    from engine.cli import build_parser

    run_parser = build_parser("run")._subparsers._group_actions[0].choices["run"]
    if "--pid" not in {s for a in run_parser._actions for s in a.option_strings}:
        pytest.skip("the engine has no run --pid yet")
    sleeper("host1")
    sleeper("guest", "--pid", "container:host1")
    cursor = view.cursor()
    assert check(view, "namespace", cursor, namespace="pid", container="guest", other="host1", shared=True).passed
    assert check(view, "process-visible", cursor, container="guest", command="sleep 300").passed


def test_process_visible(view):
    sleeper("watcher")
    cl("run", "-d", "--name", "target", "lab", "sleep", "4321", check=True)
    cursor = view.cursor()
    hidden = check(view, "process-visible", cursor, container="watcher", command="sleep 4321", visible=False)
    assert hidden.passed and hidden.saw == "inside watcher, 1 process can be seen, and `sleep 4321` is not one of them"
    zh = check(view, "process-visible", cursor, "zh", container="watcher", command="sleep 4321", visible=False)
    assert zh.saw == "在容器 watcher 内能看到 1 个进程，其中没有 `sleep 4321`"
    assert not check(view, "process-visible", cursor, container="watcher", command="sleep 4321").passed
    own = check(view, "process-visible", cursor, container="target", command="sleep 4321")
    assert own.passed and "(PID 1 there)" in own.saw
    assert check(view, "process-visible", cursor, container="host", command="sleep 4321").passed
    zh = check(view, "process-visible", cursor, "zh", container="host", command="sleep 4321", visible=False)
    assert not zh.passed and zh.expected == "在宿主机上看不到 `sleep 4321`"


@pytest.fixture
def network():
    """Make user networks for a test (their names unique to it); removed afterwards, after its containers."""
    made = []

    def make(base: str) -> str:
        name = f"{base}-{secrets.token_hex(3)}"
        cl("network", "create", name, check=True)
        made.append(name)
        return name
    yield make
    for name in made:
        on = json.loads(cl("network", "inspect", name, check=True).stdout)[0]["Containers"]
        for cid in on:
            cl("rm", "-f", cid, check=True)
        cl("network", "rm", name, check=True)
    settle()
    listed = cl("network", "ls", "-q", check=True).stdout.split()
    assert not set(made) & set(listed)


def _address(view, name: str, network: str) -> str:
    return view.container(name)["NetworkSettings"]["Networks"][network]["IPAddress"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


needs_networks = pytest.mark.skipif(not shutil.which("nft"), reason="published ports need nftables")
WEB = "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www"


def test_address_assigned(view, network):
    sleeper("boxed")
    cursor = view.cursor()
    ok = check(view, "address-assigned", cursor, container="boxed")
    assert ok.passed, ok.saw
    assert ok.saw == f"boxed has the address {_address(view, 'boxed', 'bridge')} on the bridge network"
    assert ok.expected == "boxed has an address on the bridge network"
    zh = check(view, "address-assigned", cursor, "zh", container="boxed", network="bridge")
    assert zh.saw == f"boxed 在 bridge 网络上的地址是 {_address(view, 'boxed', 'bridge')}"
    net = network("addr")
    sleeper("elsewhere", "--network", net)
    away = check(view, "address-assigned", cursor, container="elsewhere")
    assert not away.passed and away.saw == f"elsewhere has addresses only on {net}"
    assert check(view, "address-assigned", cursor, container="elsewhere", network=net).passed
    sleeper("cut", "--network", "none")
    cut = check(view, "address-assigned", cursor, container="cut")
    assert not cut.passed and cut.saw == "cut has no address on any network (network mode: none)"
    cl("run", "--name", "gone", "lab", "true", check=True)
    stopped = check(view, "address-assigned", cursor, container="gone")
    assert not stopped.passed and stopped.saw == "gone is not running"


def test_same_network(view, network):
    net = network("pair")
    sleeper("left", "--network", net)
    sleeper("right", "--network", net)
    sleeper("apart")
    cursor = view.cursor()
    ok = check(view, "same-network", cursor, container="left", other="right", network=net)
    assert ok.passed and ok.saw == f"left and right are both on {net}"
    assert ok.expected == f"left and right are both on the {net} network"
    assert check(view, "same-network", cursor, container="left", other="right").passed
    on_bridge = check(view, "same-network", cursor, container="left", other="right", network="bridge")
    assert not on_bridge.passed and on_bridge.expected == "left and right are both on the bridge network"
    far = check(view, "same-network", cursor, container="left", other="apart")
    assert not far.passed and far.saw == f"left is on {net}, apart on bridge: no network in common"
    assert far.expected == "left and apart are on a common network"
    kept = check(view, "same-network", cursor, container="left", other="apart", shared=False)
    assert kept.passed and kept.expected == "left and apart have no network in common"
    zh = check(view, "same-network", cursor, "zh", container="left", other="apart", network=net, shared=False)
    assert zh.passed and zh.expected == f"left 与 apart 并不都在 {net} 网络上"
    assert zh.saw == f"left 在 {net} 上，apart 在 bridge 上：没有共同的网络"
    ghost = check(view, "same-network", cursor, container="left", other="ghost")
    assert not ghost.passed and ghost.saw == "there is no container named ghost"


@needs_networks
def test_port_published(view):
    port, silent, dns = _free_port(), _free_port(), _free_port()
    cl("run", "-d", "--name", "pub", "-p", f"{port}:80", "lab", "sh", "-c", WEB, check=True)
    cl("run", "-d", "--name", "mute", "-p", f"{silent}:80", "-p", f"{dns}:53/udp", "lab", "sleep", "300",
       check=True)
    cursor = view.cursor()
    ok = evaluate_all([CheckSpec("port-published", {"container": "pub", "port": 80})], view, cursor, wait=10)[0]
    assert ok.passed, ok.saw
    assert ok.saw == f"port 80/tcp of pub is published on 0.0.0.0:{port}, and a connection from the host to it " \
                     f"was accepted"
    assert ok.expected == "port 80/tcp of pub is published on a port of the host"
    other = check(view, "port-published", cursor, container="pub", port=81)
    assert not other.passed and other.saw == "pub does not publish port 81/tcp (published: 80/tcp)"
    # Published, but nothing listens inside: the host's connection is refused.
    closed = check(view, "port-published", cursor, container="mute", port=80)
    assert not closed.passed and f":{silent}, published for mute, does not answer: " in closed.saw
    unchecked = check(view, "port-published", cursor, container="mute", port=80, reachable=False)
    assert unchecked.passed and unchecked.saw == f"port 80/tcp of mute is published on 0.0.0.0:{silent}"
    udp = check(view, "port-published", cursor, "zh", container="mute", port=53, proto="udp")
    assert udp.passed and udp.saw == f"mute 的 53/udp 端口发布在 0.0.0.0:{dns}"
    bare = check(view, "port-published", cursor, container="pub", port=53, proto="udp")
    assert not bare.passed and bare.saw == "pub does not publish port 53/udp (published: 80/tcp)"


def test_checks_tolerate_an_engine_error(view):
    class Broken:
        def container(self, ref):
            from engine.errors import SupervisorError
            raise SupervisorError("no supervisor is listening")
    result = check(Broken(), "container-running", 0, container="x")
    assert not result.passed and result.saw == "the engine could not answer: no supervisor is listening"


# -- the lesson lab ------------------------------------------------------------------------

def test_lab_setup_is_ensured_reset_and_labelled(view):
    course = load_course(FIXTURE)
    lesson = course.lesson("isolation")
    lab = Lab(course, lesson, view=view)
    step = lesson.step("look")
    cursor, results = lab.begin_step(step)
    assert [r.ok for r in results] == [True]
    web = view.container("web")
    assert web["status"] == "running"
    assert web["config"]["labels"] == {"course": "fixture", "course.lesson": "isolation",
                                       "course.origin": "setup"}
    assert view.cursor() == cursor                                    # setup comes before the cursor
    again, results = lab.begin_step(step)
    assert results == [] and view.container("web")["id"] == web["id"]     # ensured, not redone
    cl("stop", "-t", "0", "web", check=True)
    lab.begin_step(step)
    assert view.container("web")["status"] == "running"              # a stopped one is brought back
    mine = lab.run("docker run -d --name mine lab sleep 300", step)
    assert mine.ok, mine
    assert view.container("mine")["config"]["labels"]["course.origin"] == "learner"
    assert view.container("mine")["config"]["labels"]["course.step"] == "look"
    sleeper("outsider")                                               # not the lesson's
    cursor, _ = lab.reset(step)
    names = {c["name"] for c in lab.containers()}
    assert names == {"web"} and view.container("web")["id"] != web["id"]
    assert view.container("outsider") is not None
    assert lab.cleanup() == ["web"]
    assert view.container("web") is None and view.container("outsider") is not None


def test_lab_makes_and_removes_the_networks_its_lesson_creates(view, tmp_path):
    """A network the lesson's commands create is ensured like a setup container, and
    reset and cleanup remove it after the containers -- unless another container uses it."""
    shutil.copytree(FIXTURE, tmp_path / "course")
    tag = secrets.token_hex(3)
    net, typed = f"lesson-{tag}", f"typed-{tag}"
    iso = tmp_path / "course" / "02-isolation" / "lesson.toml"
    iso.write_text(iso.read_text().replace(
        'setup = ["docker run -d --name web lab sleep 1000"]',
        f'setup = ["docker network create {net}", "docker run -d --name web --network {net} lab sleep 1000"]').replace(
        'commands = ["docker run -d --name other lab sleep 1002"]',
        f'commands = ["docker network create {typed}", "docker run -d --name other --network {typed} lab sleep 1002"]'))
    course = load_course(tmp_path / "course")
    lesson = course.lesson("isolation")
    lab = Lab(course, lesson, view=view)
    try:
        assert lab.networks() == (net, typed)
        step = lesson.step("look")
        _, results = lab.begin_step(step)
        assert [r.ok for r in results] == [True, True], results
        first = view.client.network_inspect(net)["Id"]
        assert list(view.container("web")["NetworkSettings"]["Networks"]) == [net]
        _, results = lab.begin_step(step)
        assert results == [] and view.client.network_inspect(net)["Id"] == first     # kept, not made again
        neighbours = lesson.step("neighbours")
        assert all(r.ok for r in lab.show_me(neighbours))                         # the learner's network
        assert {net, typed} <= set(view.networks())
        lab.reset(step)
        assert typed not in view.networks() and view.client.network_inspect(net)["Id"] != first
        sleeper("outsider", "--network", net)                                     # not the lesson's
        assert lab.cleanup() == ["web"]
        assert net in view.networks()                                             # still in use: kept
        cl("rm", "-f", "outsider", check=True)
        lab.cleanup()
        assert not {net, typed} & set(view.networks())
    finally:
        cl("rm", "-f", "outsider", "web", "other")
        for name in (net, typed):
            cl("network", "rm", name)


def test_lab_run_reports_a_bad_command_without_raising(view):
    course = load_course(FIXTURE)
    lab = Lab(course, course.lesson("hello"), lang="zh", view=view)
    result = lab.run("docker run --privileged ubuntu true")
    assert not result.ok and result.exit_code == 125
    assert result.error.startswith("container-lab 不支持 'docker run --privileged'")


def test_show_me_and_checks_for_one_step(view):
    course = load_course(FIXTURE)
    lesson = course.lesson("hello")
    lab = Lab(course, lesson, view=view)
    step = lesson.step("hello")
    cursor, _ = lab.begin_step(step)
    assert not lab.check(step, cursor)[0].passed                      # nothing done yet
    seen = []
    (result,) = lab.show_me(step, on_output=seen.append)
    assert result.ok and result.output == "Hello World\n"
    assert "ubuntu" in seen[0] and "lab" in seen[0]                   # the fallback notice, first
    (res,) = lab.check(step, cursor, wait=5)
    assert res.passed, res
    lab.cleanup()


def test_the_fallback_is_told_once_per_lesson_and_the_registry_asked_once(view, monkeypatch):
    import lessons.lab

    asked = []
    monkeypatch.setattr(lessons.lab, "registry_has",
                        lambda ref: asked.append(ref) or ("unreachable", "docker.io"))
    course = load_course(FIXTURE)
    lab = Lab(course, course.lesson("hello"), view=view)
    seen: list[str] = []
    assert lab.translate("docker run --rm ubuntu echo one").notices          # translated, not yet shown
    first = lab.run("docker run --rm ubuntu echo one", on_output=seen.append)
    second = lab.run("docker run --rm ubuntu echo two", on_output=seen.append)
    assert first.ok and second.ok and first.output == "one\n" and second.output == "two\n"
    told = [line for line in seen if "cannot be reached" in line]
    assert len(told) == 1 and "docker.io" in told[0] and seen.index(told[0]) == 0
    assert asked == ["ubuntu"]                                          # one question per lesson
    assert not lab.translate("docker run ubuntu true").notices
    again = Lab(course, course.lesson("hello"), view=view)                # another lesson (or a new visit)
    assert again.translate("docker run ubuntu true").notices and asked == ["ubuntu", "ubuntu"]


def test_a_cancelled_command_stops(view):
    cancel = threading.Event()
    cmd = translate("docker run --rm --name slow lab sleep 60", check_only=True)
    timer = threading.Timer(1.0, cancel.set)
    timer.start()
    result = run(cmd, cancel=cancel)
    timer.join()
    assert result.cancelled and not result.ok


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_failed_command_says_its_error_once(lang):
    """The app shows a command's output as it comes, then why it failed: the
    engine's error line is in the output, and not said a second time."""
    from lessons.runner import failure_text

    seen: list[str] = []
    result = run(translate("docker run nosuchimage", check_only=True), on_output=seen.append)
    assert result.exit_code == 125 and not result.ok
    screen = plain("".join(seen)) + failure_text(result, lang) + "\n"
    assert screen.count("Unable to find image 'nosuchimage:latest' locally") == 1, screen
    assert failure_text(result, lang) == ("exit code 125" if lang == "en" else "退出码 125")
    # Where the output was not shown (course solve's setup), its last line says why.
    last = failure_text(result, lang, last_line=True)
    assert "Unable to find image 'nosuchimage:latest' locally, and the registry docker.io" in last
    assert last.endswith("cannot be reached ([Errno 111] Connection refused)")      # nothing listens there


def test_the_cgroup_lessons_limit_files_are_read_without_an_error(view):
    """The limits step reads the limit files of cgroup v1 or v2, whichever this
    machine has: every command of its show-me ends with exit code 0 (nothing
    the app would put after an arrow), and its checks pass."""
    from lessons.content import content_dir

    course = load_course(content_dir())
    lesson = next(lesson for lesson in course.lessons if lesson.id.endswith("cgroups"))
    lab = Lab(course, lesson, view=view)
    step = lesson.step("limits")
    try:
        cursor, _ = lab.begin_step(step)
        results = lab.show_me(step)
        assert [r.exit_code for r in results] == [0] * len(step.show_me), results
        grep, stats = results[-2], results[-1]         # the limits where the kernel keeps them; the use
        assert "pids.max:50" in grep.output and ":67108864" in grep.output, grep.output
        assert " limited " in stats.output and "/ 64MiB" in stats.output, stats.output
        assert all(r.passed for r in lab.check(step, cursor, wait=5))
    finally:
        lab.cleanup()


# A multi-byte character cut by a read boundary: 20000 lines of 13 bytes come in
# chunks of whatever the pipe holds, so some chunk ends inside a character.
WIDE = "docker run --rm lab sh -c 'yes 中中中中 | head -n 20000'"
WIDE_TEXT = "中中中中\n" * 20000


def test_output_streamed_while_it_runs_keeps_every_character():
    seen: list[str] = []
    result = run(translate(WIDE, check_only=True), on_output=seen.append)
    assert result.ok, result
    assert len(seen) > 1                                  # it came in pieces
    assert "\ufffd" not in "".join(seen)
    assert "".join(seen) == result.output == WIDE_TEXT


def test_a_terminal_stream_keeps_every_character():
    seen: list[str] = []
    result = run(translate(WIDE.replace("--rm", "--rm -t"), check_only=True), on_output=seen.append)
    assert result.ok, result
    assert "\ufffd" not in "".join(seen)
    assert plain("".join(seen)) == plain(result.output) == WIDE_TEXT


def test_a_start_shown_stage_by_stage_keeps_every_character():
    from lessons.stepwise import Gate, start_explained

    gate = Gate()
    gate.finish()
    seen: list[str] = []
    result = start_explained(translate(WIDE.replace("--rm", "--rm --explain"), check_only=True),
                             gate=gate, on_output=seen.append)
    assert result.exit_code == 0, result
    assert len(seen) > 1 and "\ufffd" not in "".join(seen)
    assert "".join(seen) == result.output == WIDE_TEXT


# -- course solve ----------------------------------------------------------------------------

@pytest.mark.parametrize("lang,done", [("en", "Solved: 2 lessons, 7 steps, 13 checks, 2 quizzes, all passed."),
                                       ("zh", "全部通过：2 课，7 个步骤，13 项检查，2 道测验。")])
def test_course_solve_finishes_the_fixture_course(lang, done):
    proc = subprocess.run([sys.executable, "-m", "tui.launcher", "course", "solve", "--lang", lang, str(FIXTURE)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == done
    assert ("      > rm /etc/passwd") in lines                           # typed into a real terminal
    assert sum("✓" in line for line in lines) == 13 + 2
    assert not [c for c in _ps() if c["labels"].get("course") == "fixture"]    # cleaned up
    assert not overlay_mounts() or all("fixture" not in m for m in overlay_mounts())


def test_course_solve_reports_a_check_that_cannot_pass(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(FIXTURE, course)
    toml = course / "01-hello" / "lesson.toml"
    toml.write_text(toml.read_text().replace("exit_code = 0", "exit_code = 3", 1))
    proc = subprocess.run([sys.executable, "-m", "tui.launcher", "course", "solve", "--lesson", "hello", str(course)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "✗ expected: a container ran; from the image ubuntu; running `echo Hello World`; exited with code 3" \
        in proc.stdout
    assert "saw: hello" not in proc.stdout and "exited with code 0" in proc.stdout
    assert "hello/hello: container-ran:" in proc.stderr


def test_course_solve_refuses_an_invalid_course_and_unknown_lessons(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(FIXTURE, course)
    (course / "01-hello" / "zh.md").unlink()
    proc = subprocess.run([sys.executable, "-m", "tui.launcher", "course", "solve", str(course)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "course/01-hello/zh.md: file is missing" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "tui.launcher", "course", "solve", "--lesson", "nope", str(FIXTURE)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "no lesson 'nope' in this course (lessons: hello, isolation)"


def test_solve_can_be_cancelled(view):
    course = load_course(FIXTURE)
    cancel = threading.Event()
    lines = []

    def out(line):
        lines.append(line)
        if line.startswith("  step shell"):
            cancel.set()
    report = solve(course, lessons=["hello"], out=out, cancel=cancel, view=view)
    assert report.steps == 2 and report.lessons == 1            # stopped after the step it was in
    assert not [c for c in _ps() if c["labels"].get("course") == "fixture"]


def test_a_step_that_requires_what_this_machine_has_runs_for_real(tmp_path):
    """The other branch of ``requires`` (the lacking one is tested without an engine):
    doctor says pids limits work here, so the fork bomb runs and its check passes."""
    from engine.doctor import diagnose

    if not diagnose()["limits"]["pids"]:
        pytest.skip("this machine cannot apply pids limits")
    course = tmp_path / "course"
    shutil.copytree(FIXTURE, course)
    shutil.rmtree(course / "01-hello")
    toml = course / "02-isolation" / "lesson.toml"
    toml.write_text(toml.read_text().replace('id = "limits"\n', 'id = "limits"\nrequires = ["cgroup.pids"]\n'))
    proc = subprocess.run([sys.executable, "-m", "tui.launcher", "course", "solve", "--lesson", "isolation",
                           str(course)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "skipped" not in proc.stdout
    assert "    ✓ the process limit was hit (the kernel refused a fork) in container bomb" in proc.stdout
    assert proc.stdout.splitlines()[-1].startswith("Solved: 1 lesson, 4 steps")


def test_the_app_removes_a_lessons_networks_once_its_containers_are_gone():
    """What the app does when a lesson is left or the app quits (tui.session.remove_networks):
    the networks the lesson's commands create go, one another container still uses stays."""
    from tui.session import remove_networks

    course = load_course(REPO / "content")
    lesson = course.lesson("networks")
    view = EngineView()
    lab = Lab(course, lesson, view=view)
    assert "lab-net" in lab.networks()
    cl("network", "create", "lab-net", check=True)
    cl("run", "-d", "--name", "outsider", "--network", "lab-net", "lab", "sleep", "300", check=True)
    try:
        assert remove_networks(view.client, course, "networks") == []          # still used: kept
        assert "lab-net" in view.networks()
    finally:
        cl("rm", "-f", "outsider")
    settle()
    assert remove_networks(view.client, course, "networks") == ["lab-net"]
    assert "lab-net" not in view.networks()
