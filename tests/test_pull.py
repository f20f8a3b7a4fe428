"""`pull`: from a real registry server on 127.0.0.1 (Debian's docker-registry,
with and without token authentication), and from a scripted server that
answers the way a broken or hostile registry might."""

from __future__ import annotations

import http.server
import json
import threading
import time

import pytest

from engine.images import registry as reg

import registry_support
from conftest import ROOT, cl, needs_root
from registry_support import RegistryServer, sha

pytestmark = [needs_root, pytest.mark.usefixtures("lab_image")]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def store_files() -> list[str]:
    base = ROOT / "lib" / "images"
    return sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file() and "tmp" not in p.parts) \
        + [json.dumps(json.loads((base / "repositories.json").read_text()), sort_keys=True)]


def lab_blobs() -> tuple[bytes, dict, dict[str, bytes]]:
    """The lab image as the session's store keeps it: manifest bytes, parsed, blobs."""
    return registry_support.lab_blobs(ROOT)


@pytest.fixture(scope="module")
def registry():
    server = RegistryServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def token_registry():
    server = RegistryServer(token_auth=True)
    yield server
    server.close()


def _remove(ref: str) -> None:
    cl("rmi", ref)


# -- unit: names and platforms -----------------------------------------------------------

@pytest.mark.parametrize("name, where", [
    ("ubuntu", ("docker.io", "library/ubuntu")),
    ("bitnami/redis", ("docker.io", "bitnami/redis")),
    ("127.0.0.1:5000/course/lab", ("127.0.0.1:5000", "course/lab")),
    ("localhost/x", ("localhost", "x")),
    ("registry.example.org/team/app", ("registry.example.org", "team/app")),
])
def test_names_are_located_as_docker_does(name, where):
    assert reg.locate(name) == where


def test_loopback_registries_speak_http_others_https():
    assert reg.Registry("127.0.0.1:5000").base == "http://127.0.0.1:5000"
    assert reg.Registry("localhost:5000").base == "http://localhost:5000"
    assert reg.Registry("docker.io").base == "https://registry-1.docker.io"
    assert reg.Registry("registry.example.org").base == "https://registry.example.org"


def test_the_host_platform_is_picked_and_attestations_are_not():
    arch, _ = reg.host_platform()
    other = "arm64" if arch != "arm64" else "amd64"
    index = {"manifests": [
        {"digest": "sha256:" + "a" * 64, "platform": {"os": "unknown", "architecture": "unknown"},
         "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
        {"digest": "sha256:" + "b" * 64, "platform": {"os": "linux", "architecture": other}},
        {"digest": "sha256:" + "c" * 64, "platform": {"os": "linux", "architecture": arch}},
    ]}
    assert reg.pick_platform(index, "x", "latest") == "sha256:" + "c" * 64
    with pytest.raises(reg.RegistryError, match=f"no image for linux/{arch}"):
        reg.pick_platform({"manifests": index["manifests"][:2]}, "x", "latest")


# -- a real registry -----------------------------------------------------------------

def test_pull_from_a_local_registry_and_run_it(registry):
    manifest, parsed, blobs = lab_blobs()
    registry.push("course/lab", "v1", manifest, parsed["mediaType"], blobs)
    ref = f"{registry.host}/course/lab:v1"
    try:
        proc = cl("pull", ref, timeout=120)
        assert proc.returncode == 0, proc.stderr
        assert f"Digest: {sha(manifest)}" in proc.stdout and ref in proc.stdout
        listed = cl("images").stdout
        assert f"{registry.host}/course/lab" in listed
        run = cl("run", "--rm", ref, "echo", "pulled and running")
        assert run.returncode == 0 and run.stdout.strip() == "pulled and running", run.stderr
        # The lab layer was in the store already: nothing is fetched twice, the image is the same.
        again = cl("pull", ref, timeout=120)
        assert again.returncode == 0 and "Image is up to date" in again.stdout, again.stdout
    finally:
        _remove(ref)


def test_pull_with_token_authentication(token_registry):
    manifest, parsed, blobs = lab_blobs()
    token_registry.push("course/private-lab", "v2", manifest, parsed["mediaType"], blobs)
    before = len(token_registry.tokens.requests)
    ref = f"{token_registry.host}/course/private-lab:v2"
    try:
        proc = cl("pull", ref, timeout=120)
        assert proc.returncode == 0, proc.stderr
        asked = token_registry.tokens.requests[before:]
        assert asked and all(a["query"] == {"scope": "repository:course/private-lab:pull",
                                            "service": "container-lab-test"} for a in asked)
        assert all(a["authorization"] is None for a in asked)       # anonymous: no credentials sent
    finally:
        _remove(ref)


def test_an_index_gives_the_hosts_platform(registry):
    manifest, parsed, blobs = lab_blobs()
    arch, _ = reg.host_platform()
    # A second image for another architecture: the same layer, another config.
    config = json.loads(blobs[parsed["config"]["digest"]])
    config["architecture"] = "arm64" if arch != "arm64" else "amd64"
    other_config = json.dumps(config).encode()
    other = dict(parsed, config=dict(parsed["config"], digest=sha(other_config), size=len(other_config)))
    other_manifest = json.dumps(other).encode()
    registry.push("course/multi", sha(other_manifest), other_manifest, OCI_MANIFEST,
                  {**blobs, sha(other_config): other_config})
    registry.push("course/multi", sha(manifest), manifest, OCI_MANIFEST, blobs)
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": sha(other_manifest), "size": len(other_manifest),
         "platform": {"os": "linux", "architecture": config["architecture"]}},
        {"mediaType": OCI_MANIFEST, "digest": sha(manifest), "size": len(manifest),
         "platform": {"os": "linux", "architecture": arch}},
    ]}).encode()
    registry.push("course/multi", "latest", index, OCI_INDEX, {})
    ref = f"{registry.host}/course/multi"
    try:
        proc = cl("pull", ref, timeout=120)
        assert proc.returncode == 0, proc.stderr
        inspect = json.loads(cl("image", "inspect", ref).stdout)
        inspect = inspect[0] if isinstance(inspect, list) else inspect
        assert inspect["Id"] == parsed["config"]["digest"]
    finally:
        _remove(ref + ":latest")


def test_a_missing_tag_and_an_unreachable_registry_are_one_line_errors(registry):
    before = store_files()
    proc = cl("pull", f"{registry.host}/course/lab:no-such-tag", timeout=60)
    assert proc.returncode != 0 and proc.stderr.count("\n") == 1 and "not found" in proc.stderr
    proc = cl("pull", "127.0.0.1:9/nobody/home", timeout=60)        # port 9 (discard): nothing listens
    assert proc.returncode != 0 and proc.stderr.count("\n") == 1 and "cannot reach the registry" in proc.stderr
    assert store_files() == before


# -- a scripted registry: what a broken or hostile one might answer ---------------------------

class Scripted:
    """An HTTP server answering from ``routes``: path -> (status, headers, body);
    records each request's path and headers. A path in ``drip`` is answered
    slowly: the whole response, status line first, one byte every
    ``drip[path]`` seconds (a slow-loris server)."""

    def __init__(self):
        self.routes: dict[str, tuple[int, dict, bytes]] = {}
        self.drip: dict[str, float] = {}
        self.seen: list[tuple[str, dict]] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                owner.seen.append((self.path, dict(self.headers)))
                path = self.path.split("?")[0]
                status, headers, body = owner.routes.get(path, (404, {}, b"{}"))
                if path in owner.drip:
                    raw = (f"HTTP/1.1 {status} OK\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                           + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
                    for i in range(len(raw)):
                        try:
                            self.wfile.write(raw[i:i + 1])
                            self.wfile.flush()
                        except OSError:
                            return      # the client gave up
                        time.sleep(owner.drip[path])     # the server's pace, not a wait for anything
                    return
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def image(self, repo: str, tag: str, config: bytes, layer: bytes, *, layer_body: bytes | None = None,
              layer_size: int | None = None) -> None:
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "digest": sha(config), "size": len(config)},
                               "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                           "digest": sha(layer),
                                           "size": len(layer) if layer_size is None else layer_size}]}).encode()
        self.routes[f"/v2/{repo}/manifests/{tag}"] = (200, {"Content-Type": OCI_MANIFEST}, manifest)
        self.routes[f"/v2/{repo}/blobs/{sha(config)}"] = (200, {}, config)
        self.routes[f"/v2/{repo}/blobs/{sha(layer)}"] = (200, {}, layer if layer_body is None else layer_body)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted():
    s = Scripted()
    yield s
    s.close()


def _config() -> bytes:
    return json.dumps({"architecture": reg.host_platform()[0], "os": "linux",
                       "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]}, "config": {}}).encode()


@pytest.mark.parametrize("case, words", [
    ("corrupt-blob", "does not match its digest"),
    ("oversized-blob", "larger than its manifest says"),
    ("truncated-blob", "ended after"),
    ("not-json", "not JSON"),
    ("schema1", "schema 1"),
    ("no-layers", "lists no layers"),
    ("bad-descriptor", "malformed layer descriptor"),
    ("too-many-requests", "too many requests (429)"),
    ("basic-auth", "wants a user name and password"),
    ("redirect-to-file", "is not allowed"),
])
def test_hostile_registry_answers_store_nothing(scripted, case, words):
    layer = b"x" * 4096
    repo = "evil/image"
    if case == "corrupt-blob":
        scripted.image(repo, "t", _config(), layer, layer_body=b"y" * 4096)
    elif case == "oversized-blob":
        scripted.image(repo, "t", _config(), layer, layer_body=layer + b"more")
    elif case == "truncated-blob":
        scripted.image(repo, "t", _config(), layer, layer_body=layer[:100], layer_size=len(layer))
    elif case == "not-json":
        scripted.routes[f"/v2/{repo}/manifests/t"] = (200, {"Content-Type": OCI_MANIFEST}, b"<html>")
    elif case == "schema1":
        scripted.routes[f"/v2/{repo}/manifests/t"] = (
            200, {"Content-Type": "application/vnd.docker.distribution.manifest.v1+prettyjws"},
            b'{"schemaVersion": 1, "name": "evil/image"}')
    elif case == "no-layers":
        scripted.routes[f"/v2/{repo}/manifests/t"] = (200, {}, json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"digest": sha(b"{}"), "size": 2}, "layers": []}).encode())
    elif case == "bad-descriptor":
        scripted.routes[f"/v2/{repo}/manifests/t"] = (200, {}, json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"digest": sha(b"{}"), "size": 2}, "layers": [{"digest": "../../etc", "size": -1}]}).encode())
    elif case == "too-many-requests":
        scripted.routes[f"/v2/{repo}/manifests/t"] = (429, {}, b'{"errors": [{"code": "TOOMANYREQUESTS"}]}')
    elif case == "basic-auth":
        scripted.routes[f"/v2/{repo}/manifests/t"] = (401, {"WWW-Authenticate": 'Basic realm="x"'}, b"{}")
    elif case == "redirect-to-file":
        scripted.image(repo, "t", _config(), layer)
        scripted.routes[f"/v2/{repo}/blobs/{sha(layer)}"] = (307, {"Location": "file:///etc/shadow"}, b"")
    before = store_files()
    proc = cl("pull", f"{scripted.host}/{repo}:t", timeout=60)
    assert proc.returncode != 0, proc.stdout
    assert proc.stderr.count("\n") == 1 and words in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert store_files() == before
    assert not any((ROOT / "lib" / "images" / "tmp").iterdir())


def test_the_token_never_follows_a_redirect_to_another_host(scripted):
    """A registry may send blob downloads to a CDN: the CDN must not get the token."""
    cdn = Scripted()
    token = Scripted()
    try:
        layer = b"z" * 1000
        repo = "team/app"
        scripted.image(repo, "t", _config(), layer)
        cdn.routes["/blob"] = (200, {}, b"w" * 1000)           # not the layer: the digest check stops the pull
        scripted.routes[f"/v2/{repo}/blobs/{sha(layer)}"] = (307, {"Location": f"http://{cdn.host}/blob"}, b"")
        token.routes["/token"] = (200, {}, b'{"token": "s3cret"}')
        challenge = f'Bearer realm="http://{token.host}/token",service="reg",scope="repository:{repo}:pull"'
        # Every registry path asks for the token first.
        protected = dict(scripted.routes)

        def guarded(path_routes):
            class Routes(dict):
                def get(self, path, default=None):
                    seen_auth = scripted.seen and scripted.seen[-1][1].get("Authorization")
                    if seen_auth != "Bearer s3cret":
                        return (401, {"WWW-Authenticate": challenge}, b"{}")
                    return path_routes.get(path, default)
            return Routes(path_routes)
        scripted.routes = guarded(protected)
        proc = cl("pull", f"{scripted.host}/{repo}:t", timeout=60)
        assert proc.returncode != 0 and "does not match its digest" in proc.stderr, proc.stderr
        assert any(h.get("Authorization") == "Bearer s3cret" for _p, h in scripted.seen)
        assert cdn.seen and all("Authorization" not in h for _p, h in cdn.seen)
    finally:
        cdn.close()
        token.close()


def test_pull_of_a_digest_the_registry_lacks_is_one_line(registry):
    proc = cl("pull", f"{registry.host}/course/lab@sha256:" + "a" * 64, timeout=60)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "not found" in proc.stderr


def test_pull_help_explains():
    proc = cl("pull", "--help")
    assert proc.returncode == 0 and "registry" in proc.stdout.lower()



def _layer_with(name: str, data: bytes) -> bytes:
    import io
    import tarfile

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(data), 0o644, 0
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_rmi_keeps_what_a_container_uses(registry):
    """An image of its own (the lab layer and one more): untagged with -f while
    a container uses it, its own layer stays for the container."""
    manifest, parsed, blobs = lab_blobs()
    extra = _layer_with("kept.txt", b"still here\n")
    config = json.loads(blobs[parsed["config"]["digest"]])
    config["rootfs"]["diff_ids"].append(sha(extra))
    config_bytes = json.dumps(config).encode()
    own = json.dumps(dict(parsed, config=dict(parsed["config"], digest=sha(config_bytes), size=len(config_bytes)),
                          layers=parsed["layers"] + [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                                      "digest": sha(extra), "size": len(extra)}])).encode()
    registry.push("course/kept", "v1", own, OCI_MANIFEST,
                  {**blobs, sha(config_bytes): config_bytes, sha(extra): extra})
    ref = f"{registry.host}/course/kept:v1"
    layer_dir = ROOT / "lib" / "images" / "layers" / sha(extra)[7:]
    assert cl("pull", ref, timeout=120).returncode == 0 and layer_dir.is_dir()
    cl("run", "--name", "user-of-kept", ref, "cat", "/kept.txt", check=True)
    try:
        refused = cl("rmi", ref)
        assert refused.returncode == 1 and "container user-of-kept uses it" in refused.stderr
        assert refused.stderr.count("\n") == 1
        forced = cl("rmi", "-f", ref)
        assert forced.returncode == 0 and f"Untagged: {ref}" in forced.stdout
        assert ref not in cl("images").stdout and layer_dir.is_dir()
        again = cl("start", "-a", "user-of-kept")
        assert again.returncode == 0 and again.stdout == "still here\n", again.stderr
    finally:
        cl("rm", "-f", "user-of-kept")
    missing = cl("rmi", ref)
    assert missing.returncode == 1 and "No such image" in missing.stderr


# -- bounds and deadlines -----------------------------------------------------------------

def test_a_layer_declared_larger_than_an_image_may_be_is_refused_before_downloading(scripted):
    layer = b"x" * 4096
    scripted.image("big/image", "t", _config(), layer, layer_size=3 << 30)        # declares 3 GiB
    before = store_files()
    proc = cl("pull", f"{scripted.host}/big/image:t", timeout=60,
              env={"CONTAINER_LAB_MAX_IMAGE_BYTES": str(1 << 30)})
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert "more than the 1073741824 bytes an image may unpack to" in proc.stderr
    assert not any("/blobs/" in path for path, _h in scripted.seen)      # not one blob asked for
    assert store_files() == before


@pytest.mark.parametrize("slow", ["manifest", "token"])
def test_a_slow_registry_meets_a_deadline(scripted, slow):
    """A server that sends a byte a second never trips a timeout per read; the
    request's deadline (2 s here) ends the pull, with one line naming the registry."""
    layer = b"x" * 4096
    repo = "slow/image"
    scripted.image(repo, "t", _config(), layer)
    if slow == "manifest":
        scripted.drip[f"/v2/{repo}/manifests/t"] = 1.0
        words = f"did not send the manifest {repo}:t within 2 s"
    else:
        token = Scripted()
        token.routes["/token"] = (200, {}, b'{"token": "slow"}')
        token.drip["/token"] = 1.0
        challenge = f'Bearer realm="http://{token.host}/token",service="reg"'
        scripted.routes[f"/v2/{repo}/manifests/t"] = (401, {"WWW-Authenticate": challenge}, b"{}")
        words = f"did not send a token (from {token.host}) within 2 s"
    before = store_files()
    try:
        # Cut at 2 s, it fails fast; uncut, the drip would outlast cl's 60 s.
        proc = cl("pull", f"{scripted.host}/{repo}:t", timeout=60, env={"CONTAINER_LAB_PULL_TIMEOUT": "2"})
    finally:
        if slow == "token":
            token.close()
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"the registry {scripted.host} {words}" in proc.stderr, proc.stderr
    assert store_files() == before


def test_a_blob_must_keep_up_a_minimum_rate(scripted):
    """A blob is given the timeout plus its size at the minimum rate: 4 kB at
    1 kB/s and 1 s -> 5 s; dripped at a byte every 0.3 s (each read well
    inside the 1 s a read may take) it is cut there."""
    layer = b"x" * 4096
    repo = "crawl/image"
    scripted.image(repo, "t", _config(), layer)
    scripted.drip[f"/v2/{repo}/blobs/{sha(layer)}"] = 0.3
    proc = cl("pull", f"{scripted.host}/{repo}:t", timeout=60,
              env={"CONTAINER_LAB_PULL_TIMEOUT": "1", "CONTAINER_LAB_PULL_MIN_RATE": "1024"})
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"did not send the blob {sha(layer)[:19]} (4096 bytes) within 5 s" in proc.stderr, proc.stderr
    assert not any((ROOT / "lib" / "images" / "tmp").iterdir())
