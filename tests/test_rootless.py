"""Rootless: the engine as an unprivileged user the test makes (see rootless_support).

Two mapping modes: a user with a subordinate range (uids 0..65535 inside, as
podman maps them) and one without (the single mapping: root inside is the
user). Everything runs through the real CLI, as that user, with Debian's
python3; nothing here is root's engine.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import tarfile
import time

import pytest
from rootless_support import Rootless

from engine import userns
from engine.client.connection import _Conn

from conftest import REPO, needs_root
from registry_support import RegistryServer, free_port

pytestmark = [needs_root, pytest.mark.skipif(userns.restriction_reason() is not None,
                                             reason=f"user namespaces refused here: {userns.restriction_reason()}")]


@pytest.fixture(scope="module")
def rl():
    r = Rootless()
    yield r
    r.close()


def ok(proc) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    return proc.stdout


def test_a_container_runs_as_root_of_the_users_namespace(rl):
    out = ok(rl.run(rl.ranged, "run", "--rm", "lab", "sh", "-c", "id -u; cat /proc/self/uid_map; hostname"))
    lines = out.split()
    assert lines[0] == "0"
    assert lines[1:4] == ["0", str(rl.ranged.uid), "1"] and lines[4:7] == ["1", str(rl.ranged.subid), "65535"]
    out = ok(rl.run(rl.single, "run", "--rm", "lab", "cat", "/proc/self/uid_map"))
    assert out.split() == ["0", str(rl.single.uid), "1"]


def test_the_supervisor_runs_as_the_user_with_its_state_in_their_dirs(rl):
    ok(rl.run(rl.ranged, "ps"))
    sock = rl.ranged.run_dir / "container-lab" / "supervisor.sock"
    st = sock.stat()
    assert stat.S_ISSOCK(st.st_mode) and st.st_uid == rl.ranged.uid
    assert (rl.ranged.run_dir / "container-lab").stat().st_mode & 0o777 == 0o700
    assert rl.ranged.data.stat().st_mode & 0o777 == 0o700
    pid = int((rl.ranged.run_dir / "container-lab" / "supervisor.pid").read_text())
    status = open(f"/proc/{pid}/status").read()
    uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
    assert set(uids) == {str(rl.ranged.uid)}            # the host sees the user, not root
    assert os.readlink(f"/proc/{pid}/ns/user") != os.readlink("/proc/self/ns/user")


@pytest.mark.parametrize("who", ["ranged", "single"])
def test_detached_exec_logs_top_stop_rm(rl, who):
    u = getattr(rl, who)
    cid = ok(rl.run(u, "run", "-d", "--name", "web", "lab", "sh", "-c", "echo started; exec sleep 300")).strip()
    assert len(cid) == 64
    assert "web" in ok(rl.run(u, "ps"))
    assert ok(rl.run(u, "exec", "web", "cat", "/proc/1/cmdline")).startswith("sleep")
    assert ok(rl.run(u, "logs", "web")).strip() == "started"
    top = ok(rl.run(u, "top", "web"))
    host_pid = int(top.splitlines()[1].split()[1])
    with open(f"/proc/{host_pid}/status") as f:
        uid_line = next(line for line in f if line.startswith("Uid:"))
    assert uid_line.split()[1] == str(u.uid)         # root inside is the user outside
    ok(rl.run(u, "stop", "-t", "1", "web"))
    assert "Exited" in ok(rl.run(u, "ps", "-a"))
    ok(rl.run(u, "rm", "web"))
    assert "web" not in ok(rl.run(u, "ps", "-a"))
    assert not list((u.data / "containers").iterdir())


def test_an_interactive_container_gets_a_terminal(rl):
    import pty

    u = rl.ranged
    pid, fd = pty.fork()
    if pid == 0:
        os.setgroups([])
        os.setgid(u.gid)
        os.setuid(u.uid)
        env = u.env(rl.src)
        os.chdir(u.home)
        os.execve("/usr/bin/python3", ["python3", "-m", "engine.cli", "run", "--rm", "-it", "lab", "sh", "-c",
                                       "tty; stty size"], env)
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, out
    assert b"/dev/pts/0" in out


def test_a_volume_is_the_users_and_root_files_stay_out_of_reach(rl):
    u = rl.ranged
    vol = rl.base / "vol"
    vol.mkdir()
    os.chown(vol, u.uid, u.gid)
    (vol / "root-only").write_text("secret\n")
    os.chmod(vol / "root-only", 0o600)             # root's, on the host
    out = rl.run(u, "run", "--rm", "-v", f"{vol}:/v", "lab", "sh", "-c",
                 "echo hi > /v/made; cat /v/root-only; echo read=$?")
    assert out.returncode == 0, out.stderr
    assert "secret" not in out.stdout and "read=1" in out.stdout and "Permission denied" in out.stderr
    st = (vol / "made").stat()
    assert (st.st_uid, st.st_gid) == (u.uid, u.gid)


def _tar_with_owners(path) -> None:
    import io

    with tarfile.open(path, "w") as tar:
        for name, uid, gid, data in (("var/www/index.html", 33, 33, b"hi\n"), ("etc/shadow", 0, 42, b"s\n")):
            info = tarfile.TarInfo(name)
            info.uid, info.gid, info.size, info.mode = uid, gid, len(data), 0o640
            tar.addfile(info, io.BytesIO(data))


def test_layers_keep_their_owners_through_the_subordinate_range(rl):
    u = rl.ranged
    archive = u.home / "owned.tar"
    _tar_with_owners(archive)
    os.chown(archive, u.uid, u.gid)
    ok(rl.run(u, "import", str(archive), "owned:1"))
    ok(rl.run(u, "build", "-t", "owned:2", "-", input="FROM lab\nCOPY --from=owned:1 / /\n"))
    out = ok(rl.run(u, "run", "--rm", "owned:2", "stat", "-c", "%u:%g %n", "/var/www/index.html", "/etc/shadow"))
    assert out.split("\n")[:2] == ["33:33 /var/www/index.html", "0:42 /etc/shadow"]
    found = {p.name: p.stat() for p in (u.data / "images" / "layers").rglob("*") if p.name in ("index.html", "shadow")}
    assert (found["index.html"].st_uid, found["index.html"].st_gid) == (u.subid + 32, u.subid + 32)
    assert (found["shadow"].st_uid, found["shadow"].st_gid) == (u.uid, u.subid + 41)


def test_without_a_range_other_owners_become_root_and_chown_fails(rl):
    u = rl.single
    archive = u.home / "owned.tar"
    _tar_with_owners(archive)
    os.chown(archive, u.uid, u.gid)
    ok(rl.run(u, "import", str(archive), "owned:1"))
    for p in (u.data / "images" / "layers").rglob("index.html"):
        assert p.stat().st_uid == u.uid
    out = rl.run(u, "run", "--rm", "lab", "chown", "33", "/tmp")
    assert out.returncode != 0 and "Invalid argument" in out.stderr


def test_build_with_a_whiteout_then_save_and_load_keep_the_image(rl):
    u = rl.ranged
    ok(rl.run(u, "build", "-t", "gone", "-", input="FROM lab\nRUN rm /etc/passwd && mkdir /data && chown 33 /data\n"))
    out = rl.run(u, "run", "--rm", "gone", "sh", "-c", "ls /etc/passwd; stat -c %u /data")
    assert "No such file" in out.stderr and out.stdout.strip() == "33"
    image_id = ok(rl.run(u, "image", "inspect", "--format", "{{.Id}}", "gone")).strip()
    ok(rl.run(u, "save", "-o", str(u.home / "gone.tar"), "gone"))
    ok(rl.run(u, "rmi", "gone"))
    assert "Loaded image: gone:latest" in ok(rl.run(u, "load", "-i", str(u.home / "gone.tar")))
    assert ok(rl.run(u, "image", "inspect", "--format", "{{.Id}}", "gone")).strip() == image_id


def test_push_to_and_pull_from_a_local_registry(rl):
    u = rl.ranged
    server = RegistryServer()
    try:
        ref = f"{server.host}/course/rootless:v1"
        ok(rl.run(u, "build", "-t", ref, "-", input="FROM lab\nRUN echo pushed > /pushed\n"))
        ok(rl.run(u, "push", ref))
        ok(rl.run(u, "rmi", ref))
        out = ok(rl.run(u, "run", "--rm", ref, "cat", "/pushed"))
        assert out.strip().endswith("pushed")
    finally:
        server.close()


def test_explain_opens_with_the_engines_user_namespace(rl):
    out = ok(rl.run(rl.ranged, "run", "--rm", "--explain", "lab", "true"))
    first = out.lstrip().splitlines()[0]
    assert first.startswith("[1] rootless:")
    assert f"newuidmap {'' }" in out and f"0 {rl.ranged.uid} 1 1 {rl.ranged.subid} 65535" in out
    out = ok(rl.run(rl.single, "run", "--rm", "--explain", "lab", "true", LANG="zh_CN.UTF-8"))
    assert "引擎所在的用户命名空间" in out and f"echo '0 {rl.single.uid} 1' > /proc/" in out


def test_networks_without_root(rl):
    """The engine's own network namespace, plugged into the host's by pasta:
    the default bridge, a network of one's own whose containers find each
    other by name, -p listened on the host (by a pasta of the container's,
    which ends with it), the host reached at pasta's gateway."""
    import http.server
    import threading
    import urllib.request

    u = rl.ranged
    doctor = {c["id"]: c for c in json.loads(ok(rl.run(u, "doctor", "--format", "json")))["checks"]}
    assert doctor["network.bridge"]["ok"] and "pasta" in doctor["network.bridge"]["detail"], doctor["network.bridge"]
    out = ok(rl.run(u, "run", "--rm", "lab", "sh", "-c", "ip -o -4 addr show eth0; ip route"))
    assert "eth0" in out and "default via" in out
    ok(rl.run(u, "network", "create", "mine"))
    port = free_port()
    pasta = 0
    try:
        ok(rl.run(u, "run", "-d", "--name", "site", "--network", "mine", "-p", f"{port}:80", "lab", "sh", "-c",
                  "mkdir -p /www && echo hello from rootless > /www/index.html && exec httpd -f -p 80 -h /www"))
        by_name = rl.run(u, "run", "--rm", "--network", "mine", "lab", "sh", "-c",
                         "for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://site/ && exit 0; sleep 0.2; done; exit 1")
        assert ok(by_name).strip() == "hello from rootless"
        assert ok(rl.run(u, "port", "site")).strip() == f"80/tcp -> 0.0.0.0:{port}"
        assert f"0.0.0.0:{port}->80/tcp" in ok(rl.run(u, "ps"))
        body = ""
        for _ in range(50):
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert body.strip() == "hello from rootless"
        cid = json.loads(ok(rl.run(u, "inspect", "site")))[0]["id"]
        pasta = int((u.data / "containers" / cid / "pasta.pid").read_text())
        assert open(f"/proc/{pasta}/status").read().count(f"Uid:\t{u.uid}") == 1   # pasta runs as the user
    finally:
        rl.run(u, "rm", "-f", "site")
        ok(rl.run(u, "network", "rm", "mine"))
    for _ in range(100):                                     # pasta ends with it, and is reaped
        ok(rl.run(u, "ps"))
        if not os.path.exists(f"/proc/{pasta}"):
            break
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pasta}")
    proc = rl.run(u, "run", "--rm", "-p", "80:80", "lab", "true")
    assert proc.returncode != 0 and "below 1024" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    # The host, at pasta's gateway (the host's own default gateway, mapped to its loopback).
    gateway = subprocess.run(["ip", "route", "show", "default"], capture_output=True, text=True).stdout.split()
    assert len(gateway) > 2, "this test needs a default route on the host (pasta copies it)"
    host_port = free_port()
    server = http.server.HTTPServer(("127.0.0.1", host_port), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        out = ok(rl.run(u, "run", "--rm", "lab", "sh", "-c", f"wget -qO- http://{gateway[2]}:{host_port}/ | head -1"))
        assert "<!DOCTYPE" in out or "<html" in out.lower()
    finally:
        server.shutdown()


def test_limits_are_said_not_applied_where_no_cgroup_is_delegated(rl):
    from engine.cgroups import detect

    proc = rl.run(rl.ranged, "run", "--rm", "-m", "64m", "lab", "true")
    assert proc.returncode == 0
    doctor = json.loads(ok(rl.run(rl.ranged, "doctor", "--format", "json")))
    if doctor["limits"]["memory"]:
        assert "NOT applied" not in proc.stderr
    else:
        assert "WARNING: memory limit NOT applied" in proc.stderr
    assert detect().name in ("v1", "v2")          # root here has limits: the difference is rootless


def test_doctor_as_the_user(rl):
    report = json.loads(ok(rl.run(rl.ranged, "doctor", "--format", "json")))
    by_id = {c["id"]: c for c in report["checks"]}
    assert report["ok"] and not report["root"]
    assert by_id["userns.rootless"]["ok"] and by_id["userns.ids"]["ok"]
    report = json.loads(ok(rl.run(rl.single, "doctor", "--format", "json")))
    ids = {c["id"]: c for c in report["checks"]}["userns.ids"]
    assert report["ok"] and not ids["ok"] and "usermod --add-subuids" in ids["detail"]


def test_another_user_cannot_reach_the_supervisor(rl):
    ok(rl.run(rl.ranged, "ps"))
    sock_path = str(rl.ranged.run_dir / "container-lab" / "supervisor.sock")
    # As the other user: the directory (0700) keeps them out.
    proc = rl.run(rl.single, "-c", f"import socket; s = socket.socket(socket.AF_UNIX); s.connect({sock_path!r})",
                  module=None)
    assert proc.returncode != 0 and "PermissionError" in proc.stderr
    # Past the directory and the socket's mode (root opens both for them): the supervisor
    # asks the kernel who connects (SO_PEERCRED) and refuses anyone but its user.
    fd = os.open(sock_path, os.O_PATH)
    mode = os.stat(sock_path).st_mode & 0o777
    os.chmod(sock_path, 0o666)
    try:
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([])
                os.setgid(rl.single.gid)
                os.setuid(rl.single.uid)
                s = socket.socket(socket.AF_UNIX)
                s.connect(f"/proc/self/fd/{fd}")
                s.settimeout(10)
                conn = _Conn(s)
                conn.send({"op": "ps"})
                reply, _ = conn.receive()
                os._exit(0 if "may not use it" in str(reply.get("error")) else 3)
            except BaseException as e:  # noqa: BLE001 - said on stderr, the test fails on the exit code
                os.write(2, f"{type(e).__name__}: {e}\n".encode())
                os._exit(4)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        os.chmod(sock_path, mode)
        os.close(fd)


def test_the_lab_panel_sees_inside_a_rootless_container(rl):
    """The snapshot the app polls: the user namespace not the host's, the uid
    map, and what only the engine may enter (hostname, network) read by it."""
    u = rl.ranged
    ok(rl.run(u, "run", "-d", "--name", "seen", "--hostname", "inside", "lab", "sleep", "300"))
    try:
        out = ok(rl.run(u, "-c", "import json; from engine.client import Client; s = Client().snapshot('seen'); "
                        "print(json.dumps([s['hostname'], s['network_error'], "
                        "[i['name'] for i in (s['network'] or {}).get('interfaces', [])], "
                        "s['namespaces']['user']['shared_with_host'], "
                        "[(p['uid'], p['uid_host']) for p in s['processes']]]))", module=None))
        hostname, error, links, shared, ids = json.loads(out)
        assert hostname == "inside" and error is None and links == ["lo", "eth0"]      # eth0: pasta's
        assert shared is False and ids == [[0, u.uid]]
    finally:
        ok(rl.run(u, "rm", "-f", "seen"))


@pytest.mark.parametrize("who,lang", [("ranged", "en"), ("ranged", "zh"), ("single", "en")])
def test_the_course_solves_without_root(rl, who, lang):
    """Every lesson, as a learner without sudo: what the machine cannot give
    (networks, cgroup limits here) is skipped and counted, nothing fails."""
    from test_content import _holding_ports, _host_ports

    from lessons.loader import load_course

    u = getattr(rl, who)
    ports = set().union(*(_host_ports(lesson) for lesson in load_course(REPO / "content").lessons))
    with _holding_ports(None, ports=ports):          # lesson 11 publishes 8080, as root's solve does
        proc = rl.run(u, "solve", "--lang", lang, module="lessons.cli", timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    last = proc.stdout.strip().splitlines()[-1]
    lessons = len([d for d in (REPO / "content").iterdir() if (d / "lesson.toml").exists()])
    if lang == "en":
        assert last.startswith(f"Solved: {lessons} lessons") and "all passed" in last and "skipped" in last
    else:
        assert last.startswith(f"全部通过：{lessons} 课") and "跳过" in last
    assert "✗" not in proc.stdout
