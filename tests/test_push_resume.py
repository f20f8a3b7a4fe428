"""A chunked push cut part-way resumes where the registry has it: the CLI is
killed (SIGKILL, a real process) while it waits to send a chunk, and the
next push sends only the rest -- counted by a proxy in front of a real
registry on 127.0.0.1 -- and the image pulls back with its digest. A
registry that has forgotten the upload (404) gets the blob afresh."""

from __future__ import annotations

import collections
import io
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from test_image_io import image_parts, layer_tar

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
