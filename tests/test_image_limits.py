"""Bounds on images: how many layers one may stack (128, as Docker), how much
an image may unpack to, and what `images` says they take."""

from __future__ import annotations

import json

import pytest
from test_image_io import docker_archive, empty_root, layer_tar, load, store_files  # noqa: F401 (a fixture)

from engine.images import ImageStore

from conftest import ROOT, cl, needs_root

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


# -- how much an image may unpack to -------------------------------------------------

def zeros_layer(name: str, size: int) -> bytes:
    """A gzip layer of one file of ``size`` zero bytes: a few kB that unpack to ``size``."""
    return layer_tar((name, "f", b"\0" * size), gz=True)


def tmp_is_empty(root) -> bool:
    return not any((root / "lib" / "images" / "tmp").iterdir())


@needs_root
def test_a_bomb_spread_over_layers_is_bounded_per_image(tmp_path, empty_root):
    """Each layer is under the per-layer bound; together they are over the image's."""
    layers = [zeros_layer(f"zero{i}", 24 << 20) for i in range(3)]
    assert sum(len(b) for b in layers) < 200 << 10            # ~72 MB unpacked from ~75 kB
    before = store_files(empty_root)
    proc = load(empty_root, docker_archive(tmp_path / "bomb.tar", layers, tags=("bombs:1",)),
                env={"CONTAINER_LAB_MAX_IMAGE_BYTES": str(40 << 20)})
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert "layer 2 of 3" in proc.stderr and "the image unpacks to more than 41943040 bytes in all" in proc.stderr
    assert "CONTAINER_LAB_MAX_IMAGE_BYTES" in proc.stderr
    assert store_files(empty_root) == before and tmp_is_empty(empty_root)


@needs_root
def test_entries_are_bounded_per_image(tmp_path, empty_root):
    layers = [layer_tar(*[(f"l{n}/f{i}", "f", b"x") for i in range(30)]) for n in range(2)]
    before = store_files(empty_root)
    proc = load(empty_root, docker_archive(tmp_path / "many.tar", layers, tags=("many:1",)),
                env={"CONTAINER_LAB_MAX_IMAGE_ENTRIES": "50"})
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "the image has more than 50 entries in all" in proc.stderr, proc.stderr
    assert store_files(empty_root) == before and tmp_is_empty(empty_root)
    # Under the bound, it loads.
    proc = load(empty_root, docker_archive(tmp_path / "many.tar", layers, tags=("many:1",)),
                env={"CONTAINER_LAB_MAX_IMAGE_ENTRIES": "62"})
    assert proc.returncode == 0, proc.stderr


@needs_root
def test_a_bad_bound_in_the_environment_is_one_line(tmp_path, empty_root):
    proc = load(empty_root, docker_archive(tmp_path / "x.tar", [layer_tar(("a", "f", b"a"))], tags=("x:1",)),
                env={"CONTAINER_LAB_MAX_IMAGE_BYTES": "lots"})
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1
    assert "CONTAINER_LAB_MAX_IMAGE_BYTES must be a positive whole number, not 'lots'" in proc.stderr


@needs_root
def test_images_shows_the_unpacked_size(tmp_path, empty_root):
    """SIZE is what the image takes on disk unpacked (as docker's), not its compressed download."""
    layer = zeros_layer("zeros", 3_000_000)
    assert len(layer) < 10_000
    proc = load(empty_root, docker_archive(tmp_path / "z.tar", [layer], tags=("zeros:1",)))
    assert proc.returncode == 0, proc.stderr
    listed = cl("images", env={"CONTAINER_LAB_ROOT": str(empty_root)}).stdout
    row = next(line for line in listed.splitlines() if line.startswith("zeros "))
    assert row.split()[-1] == "3MB", listed
    inspect = json.loads(cl("image", "inspect", "zeros:1", env={"CONTAINER_LAB_ROOT": str(empty_root)}).stdout)
    assert (inspect[0] if isinstance(inspect, list) else inspect)["Size"] == 3_000_000


@pytest.fixture
def small_disk(tmp_path):
    """An engine root on a 256 MiB tmpfs of its own: its free space moves only
    with what this test stores (the machine's disk is shared and moves on its own)."""
    import shutil
    import subprocess

    root = tmp_path / "disk"
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m,mode=0700", "cltest", str(root)], check=True)
    try:
        ImageStore(root / "lib" / "images")
        yield root
    finally:
        subprocess.run(["umount", str(root)], check=True)
        shutil.rmtree(root, ignore_errors=True)


@needs_root
def test_unpacking_keeps_the_disk_from_filling(tmp_path, small_disk):
    """The store's file system keeps CONTAINER_LAB_MIN_FREE_BYTES free: asked
    to keep more than the disk has, nothing is unpacked -- a small layer is
    refused before it is read, a bomb of declared size 0 while it unpacks."""
    import shutil

    disk = shutil.disk_usage(small_disk)
    keep = {"CONTAINER_LAB_MIN_FREE_BYTES": str(disk.free - (64 << 20))}     # 64 MiB to spare
    before = store_files(small_disk)
    small = load(small_disk, docker_archive(tmp_path / "s.tar", [zeros_layer("a", 1 << 20)], tags=("s:1",)),
                 env={"CONTAINER_LAB_MIN_FREE_BYTES": str(disk.total)})
    assert small.returncode == 1 and small.stderr.count("\n") == 1, small.stderr
    assert "must stay free; refused (CONTAINER_LAB_MIN_FREE_BYTES)" in small.stderr
    bomb = load(small_disk, docker_archive(tmp_path / "b.tar", [zeros_layer("z", 160 << 20)], tags=("b:1",)),
                env=keep)
    assert bomb.returncode == 1 and bomb.stderr.count("\n") == 1, bomb.stderr
    assert "must stay free; refused" in bomb.stderr and "layer 1 of 1" in bomb.stderr
    assert store_files(small_disk) == before and tmp_is_empty(small_disk)
    assert shutil.disk_usage(small_disk).used < 16 << 20          # the refused bytes went away too
