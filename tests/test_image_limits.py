"""Bounds on images: how many layers one may stack (128, as Docker), how much
an image may unpack to, and what `images` says they take."""

from __future__ import annotations

import json

import pytest

from conftest import ROOT, cl, needs_root
from test_image_io import docker_archive, layer_tar, load, store_files

from engine.images import ImageStore

STORE = ROOT / "lib" / "images"


def lab_layer() -> bytes:
    """The lab image's layer tar, as the test session's store holds it."""
    store = ImageStore(STORE)
    manifest, _config = store.manifest_and_config(store.resolve("lab"))
    return store.blob_path(manifest["layers"][0]["digest"]).read_bytes()


def stacked(count: int) -> list[bytes]:
    """The lab layer and ``count - 1`` layers above it: each adds /layers/N and rewrites /top."""
    return [lab_layer()] + [layer_tar(("layers", "d"), (f"layers/{i}", "f", b"%d\n" % i), ("top", "f", b"%d\n" % i))
                            for i in range(1, count)]


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_an_image_of_128_layers_runs_and_129_are_refused(tmp_path):
    archive = docker_archive(tmp_path / "tall.tar", stacked(128), tags=("tall:128",))
    proc = load(ROOT, archive)
    assert proc.returncode == 0, proc.stderr
    try:
        run = cl("run", "--rm", "tall:128", "sh", "-c", "ls /layers | wc -l; cat /top")
        assert run.returncode == 0, run.stderr
        assert run.stdout.split() == ["127", "127"]          # every layer below, the top one on top
    finally:
        cl("rmi", "tall:128")
    before = store_files(ROOT)
    refused = load(ROOT, docker_archive(tmp_path / "taller.tar", stacked(129), tags=("tall:129",)))
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1
    assert "the image has 129 layers; at most 128 can be stacked" in refused.stderr
    assert store_files(ROOT) == before
