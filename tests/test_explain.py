"""run --explain [--pause]: a container started one stage at a time, explained in English and Chinese."""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
from pathlib import Path

import pytest

from engine import explain

from conftest import REPO, cgroup_dirs, cl, needs_root
from waiting import wait_until

ORDER = ["limits", "network", "fork", "cgroup", "namespaces", "propagation", "rootfs", "proc", "dev", "cgroupns", "sys",
         "pivot_root", "hostname", "seccomp", "capabilities", "exec"]


def _stage_ids(out: str) -> list[str]:
    return re.findall(r"^\[\d+\] (\w+): ", out, re.MULTILINE)


def test_every_stage_has_an_explanation_and_a_title_in_both_languages():
    keys = {"en", "zh", "title.en", "title.zh"}
    for sid, texts in explain.STAGES.items():
        assert set(texts) == keys, sid
        assert all(texts[k].strip() for k in keys), sid
        assert re.search(r"[\u4e00-\u9fff]", texts["zh"]) and not re.search(r"[\u4e00-\u9fff]", texts["en"]), sid
    for key, texts in explain.UI.items():
        assert set(texts) == set(explain.LANGUAGES), key
    # Every stage the runtime and the supervisor record is explained.
    import engine.runtime as runtime
    sources = "".join(p.read_text() for p in Path(runtime.__file__).parent.glob("*.py"))
    recorded = set(re.findall(r'begin\("(\w+)"', sources))
    assert {"namespaces", "rootfs", "capabilities", "exec"} <= recorded     # the package's stages were read
    recorded |= {"limits", "fork", "cgroup"}
    assert recorded <= set(explain.STAGES), recorded - set(explain.STAGES)


def test_wrap_counts_chinese_characters_as_two_cells():
    lines = explain.wrap("容器就是进程 and a process is a container", 10)
    widths = [sum(2 if "\u4e00" <= ch <= "\u9fff" else 1 for ch in line) for line in lines]
    assert max(widths) <= 10 and "".join(lines).replace(" ", "") == "容器就是进程andaprocessisacontainer"


def test_language_follows_lang_variables(monkeypatch):
    for var in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        monkeypatch.delenv(var, raising=False)
    assert explain.language() == "en"
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    assert explain.language() == "zh" and explain.language("en") == "en"


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_explain_prints_every_stage_in_the_true_order_then_runs_the_command():
    proc = cl("run", "--rm", "--explain", "--lang", "en", "lab", "echo", "Hello", "World", env={"LANG": "C"})
    assert proc.returncode == 0, proc.stderr
    ids = _stage_ids(proc.stdout)
    assert ids == ORDER
    for sid in ORDER:
        assert explain.STAGES[sid]["en"].split()[0] in proc.stdout
    blocks = proc.stdout.split("\n[")[1:]
    assert all("kernel: " in b and "shell:  " in b for b in blocks)
    assert "mount --make-rprivate /" in blocks[ORDER.index("propagation")]
    assert "mount -t overlay" in blocks[ORDER.index("rootfs")]
    assert "pivot_root . ." in blocks[ORDER.index("pivot_root")]
    assert proc.stdout.rstrip().endswith("Hello World")
    assert cgroup_dirs() == []


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_explain_in_chinese_from_lang_and_with_sharing_flags():
    proc = cl("run", "--rm", "--explain", "--uts", "host", "lab", "true", env={"LANG": "zh_CN.UTF-8"})
    assert proc.returncode == 0, proc.stderr
    ids = _stage_ids(proc.stdout)
    assert "hostname" not in ids and ids[-1] == "exec"        # --uts host: the host's name is left alone
    for sid in ids:
        assert explain.STAGES[sid]["title.zh"] in proc.stdout
        assert explain.STAGES[sid]["zh"][:12] in proc.stdout.replace("\n    ", "")
    assert "unshare --mount --ipc" in proc.stdout and "nsenter --net=/run/netns/NS" in proc.stdout
    assert "ip link add vcl" in proc.stdout


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_pause_leaves_a_half_built_container_to_look_at():
    """Stop after pivot_root: the container has its own root and PID 1, but its
    hostname is not set and the command has not run; top and inspect see it."""
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "run", "--rm", "--name", "halfway", "--explain",
                             "--pause", "--lang", "en", "lab", "echo", "done"],
                            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=False, env={**os.environ, "LANG": "C"})
    out, answered, prompt = b"", 0, b"Press Enter to go on."
    try:
        while True:
            last = out.rsplit(b"\n[", 1)[-1]
            if b"pivot_root" in last and prompt in last:
                break                                  # paused right after pivot_root
            while answered < out.count(prompt):        # one Enter per prompt, however the output is cut
                proc.stdin.write(b"\n")
                proc.stdin.flush()
                answered += 1
            ready, _, _ = select.select([proc.stdout], [], [], 20)
            assert ready, out.decode()
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk, out.decode() + proc.stderr.read().decode()
            out += chunk
        assert _stage_ids(out.decode()) == ORDER[:ORDER.index("pivot_root") + 1]
        import json
        rec = json.loads(cl("inspect", "halfway", check=True).stdout)[0]
        assert rec["status"] == "starting" and rec["pid"] > 0
        with open(f"/proc/{rec['pid']}/mountinfo") as f:
            root = next(line for line in f if line.split()[4] == "/")
        assert " - overlay " in root                       # its root is the overlay already
        with open(f"/proc/{rec['pid']}/cmdline", "rb") as f:
            assert b"echo" not in f.read()                 # the command has not run yet
        top = cl("top", "halfway", check=True).stdout.splitlines()
        assert top[1].split()[0] == "1"
        ps = cl("ps", check=True).stdout
        assert "halfway" in ps and "Starting" in ps
        rest, err = proc.communicate(b"\n" * 10, timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = (out + rest).decode()
    assert proc.returncode == 0, err.decode()
    assert _stage_ids(text) == ORDER and text.rstrip().endswith("done")


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_leaving_a_paused_start_ends_the_container_and_leaves_nothing():
    proc = cl("run", "--name", "abandoned", "--explain", "--pause", "lab", "true", input="\n\n\n")
    assert proc.returncode == 125 and "no more input" in proc.stderr and len(proc.stderr.splitlines()) == 1

    def inspect_fails():
        state = cl("inspect", "abandoned")
        return state if state.returncode != 0 else None
    state = wait_until(inspect_fails, interval=0.1, message="abandoned to be removed")
    assert "No such container" in state.stderr, state.stdout    # it never ran: gone
    assert cgroup_dirs() == []
    removed = [e for e in map(json.loads, cl("events", "--format", "json").stdout.splitlines())
               if e.get("name") == "abandoned"]
    assert [e["kind"] for e in removed][-2:] == ["exited", "removed"]


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_stepwise_start_through_the_client_api():
    from engine.client import Client
    from engine.spec import ContainerConfig

    client = Client()
    start = client.run_stepwise(ContainerConfig("lab", cmd=["sh", "-c", "exit 3"], remove=True))
    seen, paused = [], []
    while (report := start.next_stage()) is not None:
        seen.append(report["stage"]["id"])
        if report["paused"]:
            paused.append(report["stage"]["id"])
            assert client.inspect(start.id)["status"] == "starting"
            start.proceed()
    assert seen == ORDER and paused == ORDER[4:]         # the supervisor's own stages come done
    assert start.wait()["exit_code"] == 3
    # wait() straight away sees the start through itself: it proceeds where a stage waits, nowhere else.
    start = client.run_stepwise(ContainerConfig("lab", cmd=["sh", "-c", "exit 4"], remove=True))
    assert start.wait()["exit_code"] == 4
    before = client.ps(all=True)
    with pytest.raises(Exception, match="cannot give the container a terminal"):
        client.run_stepwise(ContainerConfig("lab", cmd=["true"], tty=True))
    assert client.ps(all=True) == before and cgroup_dirs() == []
