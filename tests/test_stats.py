"""`container-lab stats`: what real containers use, counted and printed as docker does."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, cgroup_dirs, cl, needs_root
from waiting import wait_until

MIB = 1024 * 1024


# -- docker's units and columns (no engine needed) ---------------------------------

def test_sizes_are_written_as_docker_writes_them():
    from engine.cli.stats import _BINARY, _DECIMAL, size

    assert size(0, 1024.0, _BINARY, 4) == "0B"
    assert size(1_417_216, 1024.0, _BINARY, 4) == "1.352MiB"
    assert size(64 * MIB, 1024.0, _BINARY, 4) == "64MiB"
    assert size(2 * 1024 * MIB, 1024.0, _BINARY, 4) == "2GiB"
    assert size(648, 1000.0, _DECIMAL, 3) == "648B"
    assert size(1234, 1000.0, _DECIMAL, 3) == "1.23kB"
    assert size(45_600_000, 1000.0, _DECIMAL, 3) == "45.6MB"


def test_table_and_templates():
    from engine.cli.stats import render, row

    fig = {"id": "0123456789abcdef", "name": "web", "running": True, "cpu_percent": 12.345,
           "memory": 3 * MIB, "memory_limit": 64 * MIB, "memory_percent": 4.6875, "net_rx": 648,
           "net_tx": 0, "block_read": 4096, "block_write": 0, "pids": 2}
    r = row(fig, "web", no_trunc=False)
    header, line = render([r], "table")
    assert header.split() == ["CONTAINER", "ID", "NAME", "CPU", "%", "MEM", "USAGE", "/", "LIMIT",
                              "MEM", "%", "NET", "I/O", "BLOCK", "I/O", "PIDS"]
    assert line.split() == ["0123456789ab", "web", "12.35%", "3MiB", "/", "64MiB", "4.69%",
                            "648B", "/", "0B", "4.1kB", "/", "0B", "2"]
    assert header.index("NAME") == line.index("web")               # columns line up
    assert render([r], "{{.Name}}: {{.CPUPerc}}") == ["web: 12.35%"]
    assert render([r], r"table {{.Container}}\t{{.PIDs}}") == ["CONTAINER   PIDS", "web         2"]
    assert json.loads(render([r], "json")[0])["MemUsage"] == "3MiB / 64MiB"


@pytest.mark.parametrize("fmt, message", [
    ("{{.Nope}}", "no field 'Nope'"),
    ("yaml", "use table, json or a template"),
])
def test_a_bad_format_is_one_line(fmt, message):
    proc = cl("stats", "--no-stream", "--format", fmt)
    assert proc.returncode == 125 and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_usage_files_of_both_layouts_are_read(tmp_path: Path):
    """A fake tree, beside the real tests below (this machine has one layout)."""
    from engine.cgroups import V1Cgroup, V2Cgroup

    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "io.stat").write_text("8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"
                                "8:16 rbytes=1000 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n")
    (v2 / "memory.stat").write_text("anon 1000\nfile 500\ninactive_file 300\n")
    cg2 = V2Cgroup("c", "p", {"unified": v2})
    assert cg2.io_bytes() == (5096, 8192)
    assert cg2.memory_stat()["inactive_file"] == 300
    v1 = tmp_path / "v1"
    v1.mkdir()
    (v1 / "blkio.throttle.io_service_bytes_recursive").write_text(
        "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 4608\n8:0 Total 4608\n8:16 Read 4\nTotal 4612\n")
    (v1 / "memory.stat").write_text("cache 100\ntotal_inactive_file 40\n")
    cg1 = V1Cgroup("c", "p", {"blkio": v1, "memory": v1})
    assert cg1.io_bytes() == (4100, 512)
    assert cg1.memory_stat()["total_inactive_file"] == 40
    assert V1Cgroup("c", "p", {"memory": v1}).io_bytes() is None      # no blkio cgroup: /proc/PID/io


def test_cpu_percent_is_docker_s_formula():
    from engine.observe.usage import figures

    base = {"id": "x", "name": "x", "running": True, "memory": 0, "memory_limit": 0, "net_rx": 0,
            "net_tx": 0, "block_read": 0, "block_write": 0, "pids": 1, "cpus": 2}
    before = {**base, "cpu_ns": 0, "system_ns": 0}
    now = {**base, "cpu_ns": 1_000_000_000, "system_ns": 2_000_000_000}     # 1 s of 2 s on 2 CPUs
    assert figures(before, now)["cpu_percent"] == pytest.approx(100.0)
    assert figures(None, now)["cpu_percent"] == 0.0


# -- real containers ------------------------------------------------------------------

def _stats_json(*refs: str) -> dict[str, dict]:
    proc = cl("stats", "--no-stream", "--format", "json", *refs, check=True)
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    return {r["Name"]: r for r in rows}


def _mib(text: str) -> float:
    units = {"B": 1 / MIB, "KiB": 1 / 1024, "MiB": 1, "GiB": 1024}
    for unit in sorted(units, key=len, reverse=True):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * units[unit]
    raise AssertionError(f"not a size: {text}")


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_one_shot_reads_cpu_memory_and_processes():
    cl("run", "-d", "--name", "st-burn", "lab", "sh", "-c", "while :; do :; done", check=True)
    cl("run", "-d", "--name", "st-mem", "-m", "64m", "lab", "sh", "-c",
       "dd if=/dev/zero of=/dev/shm/fill bs=1M count=40 2>/dev/null; sleep 300 & sleep 300 & wait", check=True)
    try:
        from engine.client import Client

        wait_until(lambda: Client().usage(Client().inspect("st-mem"))["pids"] == 3, timeout=20,
                   message="the memory container's two sleeps")
        rows = _stats_json("st-burn", "st-mem")
        burn, mem = rows["st-burn"], rows["st-mem"]
        assert float(burn["CPUPerc"].rstrip("%")) > 50, burn
        used, limit = (_mib(v) for v in mem["MemUsage"].split(" / "))
        assert limit == 64 and 38 < used <= 64, mem                  # 40 MiB of tmpfs, charged to it
        assert float(mem["MemPerc"].rstrip("%")) == pytest.approx(used / 64 * 100, abs=0.1)
        assert mem["PIDs"] == "3" and burn["PIDs"] == "1"
        assert float(mem["CPUPerc"].rstrip("%")) < 20
        assert len(burn["ID"]) == 12 and burn["Container"] == "st-burn"
        assert set(burn) == {"BlockIO", "CPUPerc", "Container", "ID", "MemPerc", "MemUsage",
                             "Name", "NetIO", "PIDs"}
        # With no name: every running container, in docker's table.
        table = cl("stats", "--no-stream", check=True).stdout.splitlines()
        assert table[0].split()[:3] == ["CONTAINER", "ID", "NAME"]
        assert {line.split()[1] for line in table[1:]} >= {"st-burn", "st-mem"}
    finally:
        cl("rm", "-f", "st-burn", "st-mem")
    assert cgroup_dirs() == []


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_network_bytes_and_stopped_containers():
    cl("run", "-d", "--name", "st-net", "lab", "sh", "-c",
       "ping -c 3 -i 0.2 -s 1000 $(ip route | awk '/default/ {print $3}') >/dev/null; sleep 300", check=True)
    cl("create", "--name", "st-idle", "lab", "true", check=True)
    try:
        time.sleep(1.5)
        net = _stats_json("st-net")["st-net"]
        rx, tx = net["NetIO"].split(" / ")
        assert tx.endswith("kB") and float(tx[:-2]) >= 3, net     # three 1 kB pings sent at least
        idle = _stats_json("st-idle")["st-idle"]
        assert idle["CPUPerc"] == "0.00%" and idle["MemUsage"] == "0B / 0B" and idle["PIDs"] == "0"
        listed = cl("stats", "--no-stream", "--format", "{{.Name}}", check=True).stdout.split()
        everything = cl("stats", "--no-stream", "-a", "--format", "{{.Name}}", check=True).stdout.split()
        assert "st-idle" not in listed and "st-idle" in everything
    finally:
        cl("rm", "-f", "st-net", "st-idle")


def test_an_unknown_container_is_one_line():
    proc = cl("stats", "--no-stream", "st-nothing-by-this-name")
    assert proc.returncode == 1
    assert proc.stderr.strip() == "container-lab: No such container: st-nothing-by-this-name"
    assert proc.stdout == ""


def _read_for(fd: int, seconds: float, until=None) -> bytes:
    out = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not (until and until(out)):
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                data = os.read(fd, 65536)
            except OSError:
                break
            if not data:
                break
            out += data
    return out


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_live_on_a_terminal_redraws_and_ctrl_c_ends_it():
    import pty

    cl("run", "-d", "--name", "st-live", "lab", "sleep", "300", check=True)
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "stats", "st-live"], stdin=slave,
                                stdout=slave, stderr=slave, cwd=REPO, start_new_session=True,
                                preexec_fn=lambda: __import__("fcntl").ioctl(0, __import__("termios").TIOCSCTTY, 0))
        os.close(slave)
        out = _read_for(master, 20, until=lambda o: o.count(b"\x1b[H") >= 2)
        assert out.count(b"\x1b[H") >= 2, out                 # redrawn in place, twice
        assert out.count(b"st-live") >= 2 and b"CONTAINER ID" in out
        assert out.startswith(b"\x1b[?25l")                    # the cursor hidden while it runs
        os.write(master, b"\x03")                              # Ctrl+C on the terminal: SIGINT
        out += _read_for(master, 5)
        assert proc.wait(timeout=10) == 0
        assert out.rstrip(b"\r\n").endswith(b"\x1b[?25h")        # ... and shown again
        assert b"Traceback" not in out and b"KeyboardInterrupt" not in out
    finally:
        os.close(master)
        cl("rm", "-f", "st-live")


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_live_to_a_pipe_prints_one_table_per_second():
    cl("run", "-d", "--name", "st-pipe", "lab", "sleep", "300", check=True)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "stats", "st-pipe"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
        out = _read_for(proc.stdout.fileno(), 20, until=lambda o: o.count(b"CONTAINER ID") >= 2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0 and proc.stderr.read() == b""
        lines = out.decode().splitlines()
        assert lines[0].startswith("CONTAINER ID") and lines[1].split()[1] == "st-pipe"
        assert lines[2].startswith("CONTAINER ID") and lines[3].split()[1] == "st-pipe"
        assert "\x1b" not in out.decode()                      # no redrawing in a pipe
    finally:
        cl("rm", "-f", "st-pipe")


def test_lesson_commands_can_use_docker_stats_once():
    from lessons.docker import CommandError, Context, translate

    assert translate("docker stats --no-stream").argv == ("stats", "--no-stream")
    assert translate("docker container stats --no-stream web").argv == ("stats", "--no-stream", "web")
    for lang, words in (("en", "add --no-stream"), ("zh", "请加上 --no-stream")):
        with pytest.raises(CommandError, match=words):      # a live view would never end under a lesson
            translate("docker stats web", Context(lang=lang))
