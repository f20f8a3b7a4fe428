"""Sharing images: ``run`` pulling on first use (``--pull``), mirrors before
Docker Hub, ``login``/``logout`` (htpasswd Basic and a token service that
asks for a password), ``tag`` and ``push`` (blobs not sent twice, cross-
repository mounts, chunked uploads, an interrupted push completed by the
next), ``skopeo`` reading what was pushed, ``export``/``import``, and bad
registry settings -- against real docker-registry servers on 127.0.0.1.
"Docker Hub" is a second local registry (CONTAINER_LAB_HUB_ENDPOINT)."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
import subprocess
import tarfile

import pytest

from conftest import REPO, ROOT, cl, needs_root
from registry_support import OCI_MANIFEST, CuttingProxy, RegistryServer, lab_blobs, lab_plus, sha

pytestmark = [needs_root, pytest.mark.usefixtures("lab_image")]


@pytest.fixture(scope="module")
def registry():
    server = RegistryServer(access_log=True)
    yield server
    server.close()


@pytest.fixture
def home(tmp_path):
    """The learner's settings folder and the machine's, both the test's own."""
    config, etc = tmp_path / "config", tmp_path / "etc"
    (config / "container-lab").mkdir(parents=True)
    (etc).mkdir()
    env = {"XDG_CONFIG_HOME": str(config), "CONTAINER_LAB_ETC_DIR": str(etc), "SUDO_USER": ""}
    return config / "container-lab", etc, env


def push_own(server: RegistryServer, repo: str, tag: str, files: dict[str, bytes]) -> str:
    """Put an image of the lab layer plus ``files`` in ``server`` (not in the store); its digest."""
    manifest, blobs = lab_plus(ROOT, files)
    return server.push(repo, tag, manifest, OCI_MANIFEST, blobs)


def one_line(proc) -> bool:
    return proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


# -- pull on first use ----------------------------------------------------------------------

def test_run_pulls_an_image_that_is_only_in_the_registry(registry):
    digest = push_own(registry, "course/auto", "v1", {"auto.txt": b"pulled on first use\n"})
    ref = f"{registry.host}/course/auto:v1"
    try:
        first = cl("run", "--rm", ref, "cat", "/auto.txt", timeout=120)
        assert first.returncode == 0, first.stderr
        assert first.stdout == "pulled on first use\n"            # the container's output alone on stdout
        lines = first.stderr.splitlines()
        assert lines[0] == f"Unable to find image '{ref}' locally", first.stderr
        assert lines[1] == "v1: Pulling from course/auto"
        assert any(line.endswith(": Already exists") for line in lines)      # the lab layer was here
        assert any(line.endswith(": Pull complete") for line in lines)
        assert f"Digest: {digest}" in lines and f"Status: Downloaded newer image for {ref}" in lines
        again = cl("run", "--rm", ref, "cat", "/auto.txt")
        assert again.returncode == 0 and again.stdout == first.stdout and again.stderr == ""
        # create pulls too (an image of its own), and prints the id; start runs it
        push_own(registry, "course/made", "v1", {"made.txt": b"created\n"})
        made = f"{registry.host}/course/made:v1"
        created = cl("create", "--name", "share-created", made, "cat", "/made.txt", timeout=120)
        assert created.returncode == 0 and len(created.stdout.strip()) == 64, created.stderr
        assert "Status: Downloaded newer image" in created.stderr
        assert cl("start", "-a", "share-created").stdout == "created\n"
    finally:
        cl("rm", "-f", "share-created")
        cl("rmi", ref)
        cl("rmi", f"{registry.host}/course/made:v1")


def test_pull_never_refuses_with_dockers_words(registry):
    before = len(registry.log_lines())
    ref = f"{registry.host}/course/never:v1"
    proc = cl("run", "--pull", "never", "--rm", ref, "true")
    assert proc.returncode == 125 and one_line(proc), proc.stderr
    assert proc.stderr == f"container-lab: No such image: {ref}\n"
    assert not any("/course/never/" in line for line in registry.log_lines()[before:])   # never asked
    assert cl("run", "--pull", "never", "--rm", "lab", "true").returncode == 0


def test_pull_always_fetches_the_tag_again(registry):
    ref = f"{registry.host}/course/moving:v1"
    push_own(registry, "course/moving", "v1", {"version": b"one\n"})
    try:
        assert cl("run", "--rm", ref, "cat", "/version", timeout=120).stdout == "one\n"
        push_own(registry, "course/moving", "v1", {"version": b"two\n"})          # the tag moves on
        assert cl("run", "--rm", ref, "cat", "/version").stdout == "one\n"         # missing: what is here
        again = cl("run", "--pull", "always", "--rm", ref, "cat", "/version", timeout=120)
        assert again.returncode == 0 and again.stdout == "two\n", again.stderr
        assert "Unable to find image" not in again.stderr
        assert "v1: Pulling from course/moving" in again.stderr and "Downloaded newer image" in again.stderr
        same = cl("create", "--pull", "always", ref, "true", timeout=120)
        assert same.returncode == 0 and "Status: Image is up to date" in same.stderr, same.stderr
        cl("rm", same.stdout.strip())
    finally:
        cl("rmi", ref)


def test_an_unreachable_registry_is_one_line_naming_it():
    proc = cl("run", "--rm", "127.0.0.1:9/nobody/home", "true", timeout=60)
    assert proc.returncode == 125 and one_line(proc), proc.stderr
    assert "Unable to find image '127.0.0.1:9/nobody/home:latest' locally, and the registry 127.0.0.1:9 " \
           "cannot be reached" in proc.stderr
    hub = cl("run", "--rm", "ubuntu", "true", timeout=60)            # Docker Hub, here where nothing listens
    assert hub.returncode == 125 and one_line(hub), hub.stderr
    assert "Unable to find image 'ubuntu:latest' locally, and the registry docker.io" in hub.stderr
    assert "cannot be reached" in hub.stderr


# -- mirrors, then Docker Hub ---------------------------------------------------------------------

def test_a_mirror_is_asked_first_and_hub_only_after_it_fails(registry, home):
    config, _etc, env = home
    hub = RegistryServer(access_log=True)
    try:
        push_own(registry, "course/mirrored", "v1", {"from": b"mirror\n"})       # the mirror has it ...
        push_own(hub, "course/mirrored", "v1", {"from": b"hub\n"})               # ... and so has Hub
        push_own(hub, "course/hubonly", "v1", {"from": b"hub\n"})                # only Hub has this one
        (config / "registries.toml").write_text(
            f'# the classroom\'s\nmirrors = ["http://127.0.0.1:9", "http://{registry.host}"]\n')
        env = {**env, "CONTAINER_LAB_HUB_ENDPOINT": f"http://{hub.host}"}
        hub_seen = len(hub.log_lines())
        try:
            got = cl("run", "--rm", "course/mirrored:v1", "cat", "/from", env=env, timeout=120)
            assert got.returncode == 0 and got.stdout == "mirror\n", got.stderr
            assert "127.0.0.1:9: cannot reach the registry 127.0.0.1:9" in got.stderr      # the dead one first
            assert not any("/course/mirrored/" in line for line in hub.log_lines()[hub_seen:])   # Hub never asked
            fell = cl("pull", "course/hubonly:v1", env=env, timeout=120)
            assert fell.returncode == 0, fell.stderr
            assert f"trying docker.io (at http://{hub.host})" in fell.stdout
            assert any("/v2/course/hubonly/manifests/v1" in line for line in registry.log_lines())
            assert cl("run", "--rm", "course/hubonly:v1", "cat", "/from").stdout == "hub\n"
        finally:
            cl("rmi", "course/mirrored:v1")
            cl("rmi", "course/hubonly:v1")
    finally:
        hub.close()


def test_a_lesson_pulls_its_image_from_a_reachable_mirror(registry, home, monkeypatch):
    """The course falls back to lab only where no registry can give the image:
    with a classroom mirror that has ubuntu, the lesson's command really pulls it."""
    from lessons.lab import Lab
    from lessons.loader import load_course

    config, _etc, env = home
    for key, value in env.items():
        monkeypatch.setenv(key, value)                 # the translation here, and the engine it runs
    push_own(registry, "library/ubuntu", "latest", {"etc/mirror-mark": b"from the mirror\n"})
    (config / "registries.toml").write_text(f'mirrors = ["http://{registry.host}"]\n')
    course = load_course(REPO / "tests" / "fixtures" / "course")
    lab = Lab(course, course.lesson("hello"))
    try:
        cmd = lab.translate("docker run --rm ubuntu cat /etc/mirror-mark")
        assert cmd.image_used == "ubuntu" and not cmd.notices
        seen: list[str] = []
        result = lab.run("docker run --rm ubuntu cat /etc/mirror-mark", on_output=seen.append)
        assert result.ok and "from the mirror" in result.output, result
        assert "Status: Downloaded newer image for ubuntu:latest" in result.output     # the pull, shown
    finally:
        cl("rmi", "ubuntu:latest")


def test_probe_says_whether_an_image_could_be_pulled_now(registry, home, monkeypatch):
    from engine.images.pull import probe

    config, _etc, env = home
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    push_own(registry, "course/probed", "v1", {"p": b"p\n"})
    assert probe(f"{registry.host}/course/probed:v1") == ("available", registry.host)
    assert probe(f"{registry.host}/course/unknown") == ("absent", registry.host)
    assert probe("127.0.0.1:9/x/y") == ("unreachable", "127.0.0.1:9")
    (config / "registries.toml").write_text(f'mirrors = ["http://{registry.host}"]\n')
    assert probe("course/probed:v1") == ("available", registry.host)        # the mirror has it; Hub is down
    assert probe("course/unknown") == ("absent", registry.host)              # only the one that answered named
    (config / "registries.toml").write_text("")
    state, where = probe("course/unknown")
    assert state == "unreachable" and where.startswith("docker.io")


def test_insecure_registries_are_spoken_to_over_plain_http(home, monkeypatch):
    from engine.images import config as settings
    from engine.images.pull import endpoints, registry_for

    config, _etc, env = home
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert registry_for("10.0.0.5:5000").base == "https://10.0.0.5:5000"
    (config / "registries.toml").write_text('insecure = ["10.0.0.5:5000", "192.168.0.0/16", "lab.example"]\n'
                                             'mirrors = ["http://10.0.0.5:5000/"]\n')
    assert registry_for("10.0.0.5:5000").base == "http://10.0.0.5:5000"
    assert registry_for("10.0.0.5:6000").base == "https://10.0.0.5:6000"      # host:port names that port only
    assert registry_for("192.168.7.1:443").base == "http://192.168.7.1:443"
    assert registry_for("lab.example:5000").base == "http://lab.example:5000"  # a host alone: any port
    assert [r.base for r in endpoints("docker.io")] == ["http://10.0.0.5:5000", "http://127.0.0.1:9"]
    assert settings.load().mirrors == ("http://10.0.0.5:5000",)


@pytest.mark.parametrize("where, text, words", [
    ("user", 'mirrors = ["http://10.0.0.5:5000"\n', "registries.toml:2: Unclosed array (TOML)"),
    ("user", 'mirror = ["http://10.0.0.5:5000"]\n', "registries.toml: unknown key 'mirror'"),
    ("user", 'mirrors = ["10.0.0.5:5000"]\n', "key 'mirrors', entry 1 ('10.0.0.5:5000'): a mirror is a URL"),
    ("user", 'insecure = "10.0.0.5:5000"\n', "key 'insecure' must be a list of strings"),
    ("system", '\n\ninsecure = [http://x]\n', "etc/registries.toml:3:13: Invalid value (TOML)"),
])
def test_a_bad_settings_file_is_one_line_naming_it(home, where, text, words):
    config, etc, env = home
    (config if where == "user" else etc).joinpath("registries.toml").write_text(text)
    pulled = cl("pull", "127.0.0.1:9/x/y", env=env)
    assert pulled.returncode == 1 and one_line(pulled) and words in pulled.stderr, pulled.stderr
    ran = cl("run", "--rm", "nothing/here", "true", env=env)
    assert ran.returncode == 125 and one_line(ran) and words in ran.stderr, ran.stderr
    assert cl("run", "--rm", "lab", "true", env=env).returncode == 0            # an image here needs no settings


# -- login, logout ------------------------------------------------------------------------------

def test_login_and_logout_with_htpasswd(home):
    config, _etc, env = home
    server = RegistryServer(htpasswd={"learner": "s3cret pass"})
    ref = f"{server.host}/course/private:v1"
    try:
        denied = cl("pull", ref, env=env)
        assert denied.returncode == 1 and one_line(denied)
        assert f"wants a user name and password: log in first (container-lab login {server.host})" in denied.stderr
        wrong = cl("login", "-u", "learner", "--password-stdin", server.host, input="nope\n", env=env)
        assert wrong.returncode == 1 and one_line(wrong) and "refused the user name and password" in wrong.stderr
        assert not (config / "auth.json").exists()
        ok = cl("login", "-u", "learner", "--password-stdin", server.host, input="s3cret pass\n", env=env)
        assert ok.returncode == 0 and ok.stdout == "Login Succeeded\n", ok.stderr
        auth_file = config / "auth.json"
        assert stat.S_IMODE(auth_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(config.stat().st_mode) & 0o077 == 0 or config.stat().st_uid == 0
        assert json.loads(auth_file.read_text()) == {
            "auths": {server.host: {"auth": base64.b64encode(b"learner:s3cret pass").decode()}}}
        assert not list(config.glob(".auth.json.*"))                       # written through a temp file
        cl("tag", "lab", ref, check=True)
        pushed = cl("push", ref, env=env, timeout=120)
        assert pushed.returncode == 0 and "Pushed" in pushed.stdout, pushed.stderr
        cl("rmi", ref)
        assert cl("pull", ref, env=env, timeout=120).returncode == 0
        out = cl("logout", server.host, env=env)
        assert out.stdout == f"Removing login credentials for {server.host}\n"
        assert json.loads(auth_file.read_text()) == {"auths": {}}
        assert cl("logout", server.host, env=env).stdout == f"Not logged in to {server.host}\n"
        cl("rmi", ref)
        again = cl("pull", ref, env=env)
        assert again.returncode == 1 and "log in first" in again.stderr
        tty = cl("login", server.host, input="", env=env)
        assert tty.returncode == 1 and "Cannot perform an interactive login from a non TTY device" in tty.stderr
    finally:
        cl("rmi", ref)
        server.close()


def test_login_through_a_token_service_then_push_and_pull_by_digest(home):
    _config, _etc, env = home
    server = RegistryServer(token_auth=True, users={"learner": "tok3n"})
    ref = f"{server.host}/course/tokened:v1"
    try:
        wrong = cl("login", "-u", "learner", "-p", "bad", server.host, env=env)
        assert wrong.returncode == 1 and "token service" in wrong.stderr and "refused" in wrong.stderr
        ok = cl("login", "-u", "learner", "--password-stdin", server.host, input="tok3n", env=env)
        assert ok.returncode == 0 and "Login Succeeded" in ok.stdout, ok.stderr
        basic = "Basic " + base64.b64encode(b"learner:tok3n").decode()
        asked = server.tokens.requests[-1]
        assert asked["authorization"] == basic and asked["query"].get("account") == "learner"
        cl("tag", "lab", ref, check=True)
        before = len(server.tokens.requests)
        pushed = cl("push", ref, env=env, timeout=120)
        assert pushed.returncode == 0, pushed.stderr
        scopes = {r["query"].get("scope") for r in server.tokens.requests[before:]}
        assert "repository:course/tokened:pull,push" in scopes
        assert all(r["authorization"] == basic for r in server.tokens.requests[before:])
        digest = pushed.stdout.splitlines()[-1].split()[2]
        cl("rmi", ref, check=True)
        by_digest = f"{server.host}/course/tokened@{digest}"
        pulled = cl("pull", by_digest, env=env, timeout=120)
        assert pulled.returncode == 0 and f"Digest: {digest}" in pulled.stdout, pulled.stderr
        listed = [line.split() for line in cl("images").stdout.splitlines()]
        assert [f"{server.host}/course/tokened", "<none>"] in [row[:2] for row in listed]
        record = json.loads(cl("image", "inspect", by_digest).stdout)[0]
        assert by_digest in record["RepoDigests"] and not any("@" in t for t in record["RepoTags"])
        run = cl("run", "--rm", by_digest, "echo", "by digest")
        assert run.returncode == 0 and run.stdout == "by digest\n", run.stderr
    finally:
        cl("rmi", ref)
        cl("rmi", f"{server.host}/course/tokened@{digest}" if "digest" in locals() else ref)
        server.close()


# -- tag and push -------------------------------------------------------------------------------

@pytest.fixture
def fresh_registry():
    """A registry no other test has pushed to (nothing to mount from)."""
    server = RegistryServer(access_log=True)
    yield server
    server.close()


def test_push_sends_each_blob_once_mounts_across_repositories_and_skopeo_reads_it(fresh_registry):
    registry = fresh_registry
    manifest, parsed, _blobs = lab_blobs(ROOT)
    layer = parsed["layers"][0]["digest"]
    first, second = f"{registry.host}/share/one:v1", f"{registry.host}/share/two:latest"
    try:
        assert cl("tag", "lab", first).returncode == 0
        assert cl("image", "tag", first, f"{registry.host}/share/two").returncode == 0     # :latest
        pushed = cl("push", first, timeout=120)
        assert pushed.returncode == 0, pushed.stderr
        assert pushed.stdout.splitlines() == [
            f"The push refers to repository [{registry.host}/share/one]",
            f"{layer[7:19]}: Pushed",
            f"v1: digest: {sha(manifest)} size: {len(manifest)}",
        ]
        again = cl("push", first, timeout=120)
        assert f"{layer[7:19]}: Layer already exists" in again.stdout
        before = len(registry.log_lines())
        mounted = cl("image", "push", f"{registry.host}/share/two", timeout=120)
        assert mounted.returncode == 0 and f"{layer[7:19]}: Mounted from share/one" in mounted.stdout, mounted.stdout
        log = registry.log_lines()[before:]
        assert any('"POST /v2/share/two/blobs/uploads/?' in line and "mount=" in line and "from=share%2Fone" in line
                   and '" 201 ' in line for line in log), log
        assert not any("PATCH /v2/share/two/" in line or "PUT /v2/share/two/blobs" in line for line in log)
        # the lab layer (26 MB) went in 16 MiB parts; the config, small, in one PUT
        assert any("PATCH /v2/share/one/blobs/uploads/" in line for line in registry.log_lines())
        inspected = subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{first}"],
                                   capture_output=True, text=True, timeout=60)
        assert inspected.returncode == 0, inspected.stderr
        seen = json.loads(inspected.stdout)
        assert seen["Digest"] == sha(manifest) and seen["Layers"] == [layer] and seen["RepoTags"] == ["v1"]
        raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{second}"],
                             capture_output=True, timeout=60)
        assert raw.stdout == manifest                                          # byte for byte
    finally:
        cl("rmi", first)
        cl("rmi", second)


def test_an_interrupted_push_completes_when_pushed_again(registry):
    """A push cut half-way through its second layer; pushed again, the first
    layer is there already and the second goes whole (small parts: chunked)."""
    random_layer = {"noise.bin": os.urandom(3 << 20)}
    push_own(registry, "course/cut", "v1", random_layer)
    source = f"{registry.host}/course/cut:v1"
    fresh = RegistryServer()
    proxy = CuttingProxy(fresh.port)
    target = f"{proxy.host}/course/cut:v1"
    _manifest, parsed, _blobs = lab_blobs(ROOT)
    lab_layer = parsed["layers"][0]
    try:
        assert cl("pull", source, timeout=120).returncode == 0
        cl("tag", source, target, check=True)
        proxy.budget = lab_layer["size"] + (1 << 20)          # the lab layer goes, the next is cut
        env = {"CONTAINER_LAB_PUSH_CHUNK": str(1 << 20)}
        cut = cl("push", target, env=env, timeout=120)
        assert cut.returncode == 1 and proxy.cuts == 1, cut.stdout + cut.stderr
        assert one_line(cut) and "failed" in cut.stderr
        assert f"{lab_layer['digest'][7:19]}: Pushed" in cut.stdout
        done = cl("push", target, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert f"{lab_layer['digest'][7:19]}: Layer already exists" in lines
        assert sum(line.endswith(": Pushed") for line in lines) == 1
        digest = lines[-1].split()[2]
        check = subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{fresh.host}/course/cut:v1"],
                               capture_output=True, text=True, timeout=60)
        assert check.returncode == 0 and json.loads(check.stdout)["Digest"] == digest, check.stderr
    finally:
        proxy.close()
        fresh.close()
        cl("rmi", source)
        cl("rmi", target)


def test_push_and_tag_refuse_clearly():
    proc = cl("push", "127.0.0.1:9/no/such:image")
    assert proc.returncode == 1 and one_line(proc) and "Unable to find image" in proc.stderr
    proc = cl("tag", "lab", "127.0.0.1:9/x@sha256:" + "a" * 64)
    assert proc.returncode == 1 and one_line(proc) and "digest" in proc.stderr
    proc = cl("tag", "no-such-image", "x:y")
    assert proc.returncode == 1 and one_line(proc) and "No such image" in proc.stderr
    proc = cl("push", "127.0.0.1:9/x/y:1") if cl("tag", "lab", "127.0.0.1:9/x/y:1").returncode == 0 else None
    try:
        assert proc.returncode == 1 and one_line(proc) and "cannot reach the registry 127.0.0.1:9" in proc.stderr
    finally:
        cl("rmi", "127.0.0.1:9/x/y:1")


# -- export and import ----------------------------------------------------------------------------

def _members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def _read(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.extractfile(name).read()


def test_export_and_import_round_trip(tmp_path):
    script = ("echo kept > /kept.txt && ln -s / /escape && ln -s /etc/shadow /shadow-link && "
              "ln /kept.txt /hard.txt && mkdir -p /data/deep && echo deep > /data/deep/f && rm /etc/os-release")
    cl("run", "--name", "share-exported", "lab", "sh", "-c", script, check=True)
    cl("run", "-d", "--name", "share-running", "lab", "sh", "-c", "echo live > /live.txt; sleep 60", check=True)
    archive = tmp_path / "exported.tar"
    try:
        assert cl("export", "-o", str(archive), "share-exported").returncode == 0
        data = archive.read_bytes()
        members = _members(data)
        assert _read(data, "kept.txt") == b"kept\n" and _read(data, "data/deep/f") == b"deep\n"
        assert members["escape"].issym() and members["escape"].linkname == "/"       # a link, never followed
        assert members["shadow-link"].issym() and "etc/shadow" not in members
        assert members["kept.txt"].islnk() and members["kept.txt"].linkname == "hard.txt"   # the first seen
        assert "etc/os-release" not in members and "bin/sh" in members or "usr/bin/sh" in members
        assert not any(n.startswith(("escape/", "/", "../")) for n in members)
        # the running one: its files, and what is mounted inside left empty
        cl("exec", "share-running", "true", check=True)
        live = subprocess.run([*_cl(), "export", "share-running"], capture_output=True, timeout=60)
        assert live.returncode == 0, live.stderr
        running = _members(live.stdout)
        assert _read(live.stdout, "live.txt") == b"live\n"
        assert running["proc"].isdir() and not any(n.startswith("proc/") for n in running)
        assert not any(n.startswith(("sys/", "dev/")) for n in running)
        assert running["etc/hosts"].isfile() and running["etc/hosts"].size == 0
        # import: an image of it, run
        imported = cl("import", str(archive), "share/imported:v1")
        assert imported.returncode == 0 and imported.stdout.startswith("sha256:"), imported.stderr
        ran = cl("run", "--rm", "share/imported:v1", "cat", "/kept.txt", "/data/deep/f")
        assert ran.returncode == 0 and ran.stdout == "kept\ndeep\n", ran.stderr
        history = cl("history", "share/imported:v1").stdout
        assert "container-lab import" in history
        piped = subprocess.run([*_cl(), "import", "-", "share/piped"], input=live.stdout, capture_output=True,
                               timeout=60)
        assert piped.returncode == 0, piped.stderr
        assert cl("run", "--rm", "share/piped", "cat", "/live.txt").stdout == "live\n"
    finally:
        cl("rm", "-f", "share-exported", "share-running")
        cl("rmi", "share/imported:v1")
        cl("rmi", "share/piped:latest")


def _cl() -> list[str]:
    import sys

    return [sys.executable, "-m", "engine.cli"]


@pytest.mark.parametrize("name", ["../escaped", "/absolute", "a/../../b"])
def test_import_refuses_unsafe_entries_and_stores_nothing(tmp_path, name):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for entry in ("fine.txt", name):
            info = tarfile.TarInfo(entry)
            info.size = 3
            tar.addfile(info, io.BytesIO(b"bad"))
    (tmp_path / "evil.tar").write_bytes(out.getvalue())
    before = cl("images").stdout
    proc = cl("import", str(tmp_path / "evil.tar"), "share/evil:v1")
    assert proc.returncode == 1 and one_line(proc), proc.stderr
    assert cl("images").stdout == before
    assert not any((ROOT / "lib" / "images" / "tmp").iterdir())
