"""A chunked push cut part-way resumes where the registry has it: the CLI is
killed (SIGKILL, a real process) while it waits to send a chunk, and the
next push sends only the rest -- counted by a proxy in front of a real
registry on 127.0.0.1 -- and the image pulls back with its digest. A
registry that has forgotten the upload (404) gets the blob afresh."""

from __future__ import annotations

import collections
import hashlib
import http.server
import io
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from test_image_io import image_parts, layer_tar, sha

from engine.images import ImageStore

from conftest import REPO, ROOT, cl, needs_root
from registry_support import RegistryServer
from waiting import wait_until

pytestmark = [needs_root]

STORE = ROOT / "lib" / "images"
CHUNK = 256 << 10
SIZE = (2 << 20) + 12345            # a layer of about 2 MiB: 9 chunks, the last one short
ENV = {"CONTAINER_LAB_PUSH_CHUNK": str(CHUNK)}


class HoldingProxy:
    """A TCP proxy on 127.0.0.1 to ``port`` that counts the bytes each kind of
    request sends up (``sent["PATCH"]`` ...), one connection a request as the
    engine's HTTP client makes them, and -- when ``hold_patch`` is n -- parks
    the n-th PATCH unsent, so that the pusher waits there to be killed."""

    def __init__(self, port: int):
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.lock = threading.Lock()
        self.sent: collections.Counter = collections.Counter()
        self.requests: list[tuple[str, str]] = []
        self.patches = 0
        self.hold_patch: int | None = None
        self.held = threading.Event()
        self.parked: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self.lock:
            self.sent.clear()
            self.requests.clear()
            self.patches = 0

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n" not in head:
            data = client.recv(1 << 16)
            if not data:
                client.close()
                return
            head += data
        method, path = head.decode("latin-1").split(" ", 2)[:2]
        with self.lock:
            self.requests.append((method, path))
            if method == "PATCH":
                self.patches += 1
                if self.hold_patch is not None and self.patches >= self.hold_patch:
                    self.parked.append(client)
                    self.held.set()
                    return
            self.sent[method] += len(head)
        upstream = socket.create_connection(("127.0.0.1", self.target))
        upstream.sendall(head)
        threading.Thread(target=self._pipe, args=(client, upstream, method), daemon=True).start()
        self._pipe(upstream, client, None)

    def _pipe(self, src: socket.socket, dst: socket.socket, method: str | None) -> None:
        try:
            while data := src.recv(1 << 16):
                if method:
                    with self.lock:
                        self.sent[method] += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.listener.close()
        for s in self.parked:
            s.close()


@pytest.fixture
def served():
    registry = RegistryServer()
    proxy = HoldingProxy(registry.port)
    yield registry, proxy
    proxy.close()
    registry.close()


def _big_image(ref: str) -> str:
    """An image of one layer of ``SIZE`` random bytes, stored as ``ref``; its digest."""
    blob = layer_tar(("noise.bin", "f", os.urandom(SIZE - 4096)))
    manifest, config, _ = image_parts([blob])
    return ImageStore(STORE).add_image([ref], manifest, config, lambda _d: io.BytesIO(blob)).digest


def _killed_after(proxy: HoldingProxy, ref: str, chunks: int) -> None:
    """Push ``ref``, and kill the CLI (SIGKILL) as it is about to send chunk ``chunks + 1``."""
    proxy.hold_patch = chunks + 1
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "push", ref], cwd=REPO,
                            env={**os.environ, **ENV}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(proxy.held.is_set, timeout=60, message="the push to reach its chunk")
    finally:
        proc.kill()
        proc.wait(30)
    proxy.hold_patch = None
    proxy.held.clear()


def _notes() -> list[Path]:
    d = STORE / "uploads"
    return sorted(p for p in d.iterdir() if not p.name.startswith(".")) if d.is_dir() else []


def _pulled_back(ref: str, digest: str) -> None:
    assert cl("rmi", ref).returncode == 0
    pulled = cl("pull", ref, timeout=120)
    assert pulled.returncode == 0, pulled.stderr
    assert ImageStore(STORE).resolve(ref).digest == digest
    cl("rmi", ref)


def test_a_killed_chunked_push_resumes_where_the_registry_has_it(served):
    _registry, proxy = served
    ref = f"{proxy.host}/resume/big:v1"
    digest = _big_image(ref)
    _killed_after(proxy, ref, chunks=3)
    assert proxy.patches == 4 and len(_notes()) == 1          # 3 chunks taken; where the 4th goes, noted
    layer_size = ImageStore(STORE).manifest_and_config(ImageStore(STORE).resolve(ref))[0]["layers"][0]["size"]
    proxy.reset()
    again = cl("push", ref, env=ENV, timeout=120)
    assert again.returncode == 0, again.stderr
    rest = layer_size - 3 * CHUNK
    assert "Resuming upload at 786kB/" in again.stdout, again.stdout                # 3 x 256 KiB
    # Only the rest went up (request lines and headers besides: a few hundred bytes each).
    assert rest <= proxy.sent["PATCH"] < rest + 16 * 1024, (proxy.sent, rest)
    assert ("GET" in {m for m, _ in proxy.requests}) and proxy.patches == -(-rest // CHUNK)
    assert again.stdout.splitlines()[-1].split()[2] == digest and _notes() == []
    _pulled_back(ref, digest)


def test_an_upload_the_registry_forgot_is_sent_afresh(served):
    registry, proxy = served
    ref = f"{proxy.host}/resume/forgot:v1"
    digest = _big_image(ref)
    _killed_after(proxy, ref, chunks=2)
    assert len(_notes()) == 1
    uploads = registry.work / "storage" / "docker" / "registry" / "v2" / "repositories" / "resume" / "forgot" / "_uploads"
    assert uploads.is_dir() and any(uploads.iterdir())
    shutil.rmtree(uploads)                                     # as a registry expiring abandoned uploads
    proxy.reset()
    again = cl("push", ref, env=ENV, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "no longer has the unfinished upload: starting it again" in again.stdout, again.stdout
    assert "Resuming" not in again.stdout and proxy.sent["PATCH"] >= SIZE - 4096
    assert again.stdout.splitlines()[-1].split()[2] == digest and _notes() == []
    _pulled_back(ref, digest)


def test_a_pull_of_a_newer_tag_leaves_the_old_image_dangling(served):
    """Untagged images from the other side: ``pull`` of app:latest after the
    registry's app:latest changed keeps the old image, as ``<none>``."""
    from registry_support import OCI_MANIFEST

    registry, _proxy = served
    ref = f"{registry.host}/resume/app:latest"
    ids = []
    for text in (b"old\n", b"new\n"):
        blob = layer_tar(("version", "f", text))
        manifest, config, _ = image_parts([blob])
        registry.push("resume/app", "latest", manifest, OCI_MANIFEST, {sha(blob): blob, sha(config): config})
        pulled = cl("pull", ref, timeout=120)
        assert pulled.returncode == 0, pulled.stderr
        ids.append(sha(config)[7:19])
    try:
        rows = [line.split()[:3] for line in cl("images").stdout.splitlines()[1:]]
        assert [f"{registry.host}/resume/app", "latest", ids[1]] in rows and ["<none>", "<none>", ids[0]] in rows
        assert cl("images", "-q", "--filter", "dangling=true").stdout.split().count(ids[0]) == 1
    finally:
        cl("rmi", ref)
        cl("rmi", ids[0])
    assert not {ids[0], ids[1]} & set(cl("images", "-q").stdout.split())


class _Lying(http.server.BaseHTTPRequestHandler):
    """Just enough of a registry, whose answer about an unfinished upload
    names a range no part of the blob (more bytes than it has)."""

    received: collections.Counter = collections.Counter()
    asked: list[str] = []

    def _answer(self, status: int, headers: dict | None = None) -> None:
        self.send_response(status)
        for key, value in {"Content-Length": "0", **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()

    def do_HEAD(self):  # noqa: N802 - the http.server API
        self._answer(404)

    def do_GET(self):  # noqa: N802
        self.asked.append(self.path)
        self._answer(204, {"Range": "0-999999999", "Location": "/v2/fake/blobs/uploads/lied"})

    def do_POST(self):  # noqa: N802
        self._answer(202, {"Location": "/v2/fake/blobs/uploads/fresh"})

    def do_PATCH(self):  # noqa: N802
        n = int(self.headers["Content-Length"])
        self.received[self.path] += len(self.rfile.read(n))
        self._answer(202, {"Location": self.path})

    def do_PUT(self):  # noqa: N802
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(n)
        if "/manifests/" in self.path:
            self._answer(201, {"Docker-Content-Digest": "sha256:" + hashlib.sha256(data).hexdigest()})
        else:
            self._answer(201)

    def log_message(self, *args):
        pass


def test_a_range_that_is_no_part_of_the_blob_starts_the_upload_afresh(tmp_path, monkeypatch):
    """A seam in addition to the real tests above: a registry that answers an
    impossible Range for the noted upload gets the whole blob in a new one."""
    from engine.images import uploads
    from engine.images.push import push
    from engine.images.registry import Registry

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Lying)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = f"127.0.0.1:{server.server_address[1]}"
    try:
        store = ImageStore(tmp_path / "images")
        blob = layer_tar(("noise.bin", "f", os.urandom(300 << 10)))
        manifest, config, _ = image_parts([blob])
        store.add_image([f"{host}/fake:v1"], manifest, config, lambda _d: io.BytesIO(blob))
        uploads.note(store, host, "fake", sha(blob), f"http://{host}/v2/fake/blobs/uploads/old", 65536)
        events = []
        monkeypatch.setenv("CONTAINER_LAB_PUSH_CHUNK", str(1 << 16))
        push(store, f"{host}/fake:v1", events.append, registry=Registry(host))
        assert _Lying.asked == ["/v2/fake/blobs/uploads/old"]
        assert [e["event"] for e in events if e.get("digest") == sha(blob)][:1] == ["restarting"]
        assert _Lying.received == {"/v2/fake/blobs/uploads/fresh": len(blob)}
        assert uploads.saved(store, host, "fake", sha(blob)) is None
    finally:
        server.shutdown()
        server.server_close()
