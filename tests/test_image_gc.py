"""Image removal goes through the supervisor: ``rmi``, ``image rm`` and
``image prune`` never delete a layer that a container -- a half-built one
among them -- stacks, however a start and a removal interleave."""

from __future__ import annotations

import fcntl
import io
import json
import os
import subprocess
import sys
import tarfile
import threading

import pytest

from engine.client import Client
from engine.errors import EngineError
from engine.images import ImageStore
from engine.spec import ContainerConfig

from conftest import REPO, ROOT, cl, needs_root
from waiting import wait_until

pytestmark = [needs_root, pytest.mark.usefixtures("lab_image")]

STORE = ROOT / "lib" / "images"


def _sha(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def own_image(tag: str, text: bytes) -> str:
    """An image of the lab layer and one layer of its own (a file /own.txt);
    returns the path of that layer's directory in the store."""
    store = ImageStore(STORE)
    lab = store.resolve("lab")
    manifest, config = store.manifest_and_config(lab)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("own.txt")
        info.size, info.mode = len(text), 0o644
        tar.addfile(info, io.BytesIO(text))
    extra = buf.getvalue()
    config = dict(config, rootfs={"type": "layers", "diff_ids": config["rootfs"]["diff_ids"] + [_sha(extra)]})
    config_bytes = json.dumps(config).encode()
    manifest = dict(manifest, config=dict(manifest["config"], digest=_sha(config_bytes), size=len(config_bytes)),
                    layers=manifest["layers"] + [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                                  "digest": _sha(extra), "size": len(extra)}])
    blobs = {_sha(extra): extra}
    store.add_image(tag, json.dumps(manifest).encode(), config_bytes,
                    lambda d: io.BytesIO(blobs[d["digest"]]))
    return str(STORE / "layers" / _sha(extra)[7:])


def lock_waiters(path) -> set[int]:
    """Pids waiting for a flock on ``path`` (the '->' lines of /proc/locks)."""
    st = os.stat(path)
    want = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    pids = set()
    with open("/proc/locks") as f:
        for line in f:
            fields = line.split()
            if "->" in fields and want in line:
                pids.add(int(fields[fields.index("->") + 4]))
    return pids


def finish_start(start) -> None:
    """Let a stage-by-stage start go on until its container runs."""
    while (report := start.next_stage()) is not None:
        if report["paused"]:
            start.proceed()


def test_rmi_and_a_start_in_flight_never_leave_a_container_without_its_layers():
    """rmi -f is held just before it deletes (the test holds the store's
    lock); a start of the same image goes in meanwhile. Whatever order the
    two end up in, a container that exists has every layer it stacks."""
    layer = own_image("racer:1", b"raced\n")
    client = Client()
    supervisor = client.ping()["pid"]
    lock = os.open(STORE / "lock", os.O_RDWR)
    rmi = None
    outcome: dict = {}
    try:
        fcntl.flock(lock, fcntl.LOCK_SH)        # what a reader (a start resolving an image) holds
        rmi = subprocess.Popen([sys.executable, "-m", "engine.cli", "rmi", "-f", "racer:1"], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        waiters = wait_until(lambda: lock_waiters(STORE / "lock"), timeout=30, message="rmi to wait for the store's lock")

        def start():
            try:
                outcome["start"] = client.run_stepwise(ContainerConfig("racer:1", cmd=["cat", "/own.txt"]))
            except EngineError as e:
                outcome["error"] = e

        thread = threading.Thread(target=start, daemon=True)
        thread.start()
        if supervisor not in waiters:
            # The deleting side is not the supervisor: the start goes through now.
            thread.join(30)
            assert not thread.is_alive()
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        os.close(lock)
        if rmi is not None:
            out, err = rmi.communicate(timeout=60)
    thread.join(60)
    assert rmi.returncode == 0 and "Untagged: racer:1" in out, err
    if "error" in outcome:          # the removal came first: the start finds no image
        assert "Unable to find image" in str(outcome["error"])
        assert not os.path.isdir(layer)
        return
    start = outcome["start"]
    try:
        layers = client.inspect(start.id)["rootfs"]["layers"]
        assert layer in layers and all(os.path.isdir(p) for p in layers), "a layer of the container is gone"
        finish_start(start)
        assert start.wait()["exit_code"] == 0
        assert cl("logs", start.id).stdout == "raced\n"
    finally:
        start.close()
        cl("rm", "-f", start.id)
    cl("image", "prune", "-f", check=True)
    assert not os.path.isdir(layer)


def test_a_half_built_container_keeps_its_image_and_prune_collects_it_after():
    layer = own_image("halfway:1", b"halfway\n")
    client = Client()
    start = client.run_stepwise(ContainerConfig("halfway:1", cmd=["cat", "/own.txt"]))
    try:
        assert client.inspect(start.id)["status"] == "starting"
        refused = cl("rmi", "halfway:1")
        assert refused.returncode == 1 and refused.stderr.count("\n") == 1
        assert f"container {start.name} uses it" in refused.stderr
        forced = cl("rmi", "-f", "halfway:1")
        assert forced.returncode == 0 and "Untagged: halfway:1" in forced.stdout, forced.stderr
        assert os.path.isdir(layer)
        # Nothing else needs the layer, but the container does: prune keeps it.
        assert cl("image", "prune", "-f", check=True).stdout.strip() == "Total reclaimed space: 0B"
        assert os.path.isdir(layer)
        finish_start(start)
        assert start.wait()["exit_code"] == 0
        assert cl("logs", start.id).stdout == "halfway\n"
    finally:
        start.close()
        cl("rm", "-f", start.id)
    pruned = cl("image", "prune", "-f", check=True)     # rmi -f left it dangling, for the container
    assert pruned.stdout.startswith("Deleted Images:\ndeleted: sha256:"), pruned.stdout
    assert "Total reclaimed space: 0B" not in pruned.stdout
    assert not os.path.isdir(layer) and not (STORE / "sizes" / os.path.basename(layer)).exists()
    assert "halfway" not in cl("images").stdout


def test_image_prune_asks_first_and_all_removes_unused_images():
    own_image("unused:1", b"unused\n")
    refused = cl("image", "prune", "-a")           # no terminal to ask on
    assert refused.returncode == 1 and "add -f" in refused.stderr and refused.stderr.count("\n") == 1
    kept = cl("run", "--name", "keeps-lab", "lab", "true")
    assert kept.returncode == 0, kept.stderr
    try:
        pruned = cl("image", "prune", "-a", "-f", check=True)
        assert "untagged: unused:1" in pruned.stdout and "untagged: lab:latest" not in pruned.stdout
        assert "unused" not in cl("images").stdout
    finally:
        cl("rm", "-f", "keeps-lab")


def test_an_image_stored_while_its_shared_layer_is_removed_is_refused(tmp_path):
    """A load finds layer X in the store and does not unpack it again; an rmi
    removes X before the load publishes: the load fails, no image without X."""
    from test_image_io import image_parts, layer_tar

    from engine.errors import ImageError

    store = ImageStore(tmp_path / "images")
    shared, own = layer_tar(("x", "f", b"x")), layer_tar(("y", "f", b"y"))
    blobs = {_sha(shared): shared, _sha(own): own}
    manifest, config, _ = image_parts([shared])
    store.add_image("first:1", manifest, config, lambda d: io.BytesIO(blobs[d["digest"]]))
    manifest, config, _ = image_parts([shared, own])

    def meanwhile(index, count, desc, read):
        if index == 1 and read == 0:
            store.remove("first:1")         # X goes: nothing tagged needs it yet

    with pytest.raises(ImageError, match="layer 1 of 2 was removed from the store meanwhile"):
        store.add_image("second:1", manifest, config, lambda d: io.BytesIO(blobs[d["digest"]]), progress=meanwhile)
    assert store.list() == [] and list(store.tmp.iterdir()) == []
