"""Images in and out of the store: the layer extractor, ``load``, ``save``,
``image inspect`` and ``history``.

Every archive here is a real tar written in the test with Python's tarfile,
never a mock. Hostile layers (SECURITY.md, "Images are hostile input") are
replayed against the extractor alone and through ``container-lab load``;
each must fail with a one-line error that names the problem and leave the
store exactly as it was.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pty
import re
import shutil
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from engine.errors import ImageError, InvalidArgument
from engine.images import ImageStore
from engine.images.extract import Limits, extract_layer

from conftest import REPO, ROOT, cl, needs_root, overlay_mounts, stop_engine

IS_ROOT = os.geteuid() == 0


# -- building tars ------------------------------------------------------------

def layer_tar(*entries, gz: bool = False) -> bytes:
    """A layer tar. Each entry: (name, kind, arg, extra); kind is f(ile, arg =
    bytes), d(ir), s(ymlink, arg = target), h(ardlink, arg = target),
    c(har device, arg = (major, minor)), p (fifo); extra: TarInfo fields."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            name, kind, arg, extra = (*entry, None, None)[:4]
            info = tarfile.TarInfo(name)
            info.mtime = 946684800
            data = None
            if kind == "f":
                data = arg if arg is not None else b"x"
                info.size = len(data)
                info.mode = 0o644
            elif kind == "d":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "s":
                info.type, info.linkname = tarfile.SYMTYPE, arg
            elif kind == "h":
                info.type, info.linkname = tarfile.LNKTYPE, arg
            elif kind == "c":
                info.type = tarfile.CHRTYPE
                info.devmajor, info.devminor = arg
            elif kind == "p":
                info.type = tarfile.FIFOTYPE
            for key, value in (extra or {}).items():
                setattr(info, key, value)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0) if gz else raw


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _gunzip(blob: bytes) -> bytes:
    try:
        return gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
    except (EOFError, OSError):
        return blob         # a damaged one: any diff_id will do


def image_parts(layers: list[bytes], *, created_by: list[str] | None = None) -> tuple[bytes, bytes, list[dict]]:
    """(manifest bytes, config bytes, layer descriptors) of an image made of ``layers``."""
    diff_ids = [sha(_gunzip(b)) for b in layers]
    history = [{"created": "2024-01-02T03:04:05Z", "created_by": c} for c in
               (created_by or [f"step {i + 1}" for i in range(len(layers))])]
    history.insert(0, {"created": "2024-01-01T00:00:00Z", "created_by": "ENV A=1", "empty_layer": True})
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": history,
    }).encode()
    descs = [{"mediaType": "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if b[:2] == b"\x1f\x8b" else ""),
              "digest": sha(b), "size": len(b)} for b in layers]
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config),
                   "size": len(config)},
        "layers": descs,
    }).encode()
    return manifest, config, descs


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def docker_archive(path: Path, layers: list[bytes], tags=("hostile:1",), *, config: bytes | None = None) -> Path:
    """A ``docker save`` archive (the classic layout: <id>/layer.tar)."""
    _manifest, cfg, _descs = image_parts(layers)
    cfg = config if config is not None else cfg
    with tarfile.open(path, "w") as tar:
        names = []
        for i, layer in enumerate(layers):
            name = f"{hashlib.sha256(layer + bytes([i])).hexdigest()}/layer.tar"
            _add(tar, name, layer)
            names.append(name)
        _add(tar, f"{sha(cfg)[7:]}.json", cfg)
        _add(tar, "manifest.json", json.dumps(
            [{"Config": f"{sha(cfg)[7:]}.json", "RepoTags": list(tags), "Layers": names}]).encode())
    return path


def oci_archive(path: Path, layers: list[bytes], name="hostile:1", *, skip: tuple = (),
                replace: dict | None = None) -> Path:
    """An OCI image layout archive; ``skip`` leaves blobs out, ``replace`` swaps a blob's bytes."""
    manifest, config, _descs = image_parts(layers)
    with tarfile.open(path, "w") as tar:
        _add(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add(tar, "index.json", json.dumps({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(manifest),
            "size": len(manifest), "annotations": {"org.opencontainers.image.ref.name": name}}]}).encode())
        for blob in (*layers, config, manifest):
            if sha(blob) in skip:
                continue
            _add(tar, f"blobs/sha256/{sha(blob)[7:]}", (replace or {}).get(sha(blob), blob))
    return path


def store_files(root: Path) -> list[tuple[str, int]]:
    """Every path under an engine root's image store, with sizes (the lock file aside)."""
    base = root / "lib" / "images"
    return sorted((str(p.relative_to(base)), p.lstat().st_size) for p in base.rglob("*") if p.name != "lock")


@pytest.fixture(scope="module")
def empty_root(tmp_path_factory) -> Path:
    """An engine root of our own for load tests that need no container."""
    root = tmp_path_factory.mktemp("ioroot")
    ImageStore(root / "lib" / "images")       # the store's empty layout, as the first command makes it
    yield root
    shutil.rmtree(root, ignore_errors=True)


def load(root: Path, archive: Path, *extra, env=None) -> subprocess.CompletedProcess:
    return cl("load", "-i", str(archive), *extra, env={"CONTAINER_LAB_ROOT": str(root), **(env or {})})


# -- hostile layers -------------------------------------------------------------

FILE = ("ok", "f", b"fine")
HOSTILE = {
    "dotdot": ([layer_tar(FILE, ("../evil", "f"))], "climbs out of the layer"),
    "dotdot-deep": ([layer_tar(("a/b/../../../evil", "f"))], "climbs out of the layer"),
    "absolute": ([layer_tar(("/etc/evil", "f"))], "is an absolute path"),
    "symlink-then-write": ([layer_tar(("etc", "s", "/etc"), ("etc/cron.d/evil", "f"))],
                           "would be written through the symlink 'etc'"),
    "symlink-up-then-write": ([layer_tar(("x", "s", "../../../../"), ("x/evil", "f"))],
                              "would be written through the symlink 'x'"),
    "symlink-in-lower-layer": ([layer_tar(("etc", "s", "/etc")), layer_tar(("etc/evil", "f"))],
                               "would be written through the symlink 'etc' of a lower layer"),
    "hardlink-outside": ([layer_tar(FILE, ("evil", "h", "../../etc/shadow"))], "climbs out of the layer"),
    "hardlink-absolute": ([layer_tar(FILE, ("evil", "h", "/etc/shadow"))], "is an absolute path"),
    "hardlink-missing": ([layer_tar(FILE, ("evil", "h", "etc/shadow"))], "which is not in this layer"),
    "hardlink-through-symlink": ([layer_tar(("l", "s", "/etc"), ("evil", "h", "l/shadow"))],
                                 "which is not in this layer"),
    "whiteout-dot": ([layer_tar(FILE, (".wh..", "f", b""))], "is a malformed whiteout"),
    "whiteout-dotdot": ([layer_tar(FILE, ("a/.wh...", "f", b""))], "is a malformed whiteout"),
    "too-deep": ([layer_tar(("/".join(["d"] * 200) + "/f", "f"))], "is nested deeper than 128"),
    "name-too-long": ([layer_tar(("n" * 300, "f"))], "has a component longer than 255 bytes"),
    "gzip-bomb": ([gzip.compress(b"\0" * (24 << 20))], "unpacks to more than"),
    "zstd": ([b"\x28\xb5\x2f\xfd" + b"\0" * 64], "zstd"),
    "truncated-tar": ([layer_tar(("big", "f", b"y" * 5000))[:2048]], "unexpected end of data"),
    "corrupt-gzip": ([layer_tar(FILE, gz=True)[:-12] + b"garbage!garb"], "not a valid gzip stream"),
}
SMALL = Limits(max_bytes=16 << 20)     # the bomb test's bound; the CLI gets it through the env


@pytest.mark.parametrize("case", list(HOSTILE))
def test_extractor_refuses(case, tmp_path):
    layers, expected = HOSTILE[case]
    lowers = []
    with pytest.raises(ImageError) as exc:
        for i, layer in enumerate(layers):
            dest = tmp_path / f"layer{i}"
            extract_layer(io.BytesIO(layer), dest, limits=SMALL, lowers=lowers, what=f"layer {i + 1}")
            lowers.append(dest)
    message = str(exc.value)
    assert expected in message and "\n" not in message, message
    # Nothing of the payload landed outside the layer directories.
    outside = [p for p in tmp_path.parent.rglob("evil") if tmp_path not in p.parents]
    assert outside == []


@pytest.mark.parametrize("case", list(HOSTILE))
def test_load_refuses_and_changes_nothing(case, tmp_path, empty_root):
    layers, expected = HOSTILE[case]
    before = store_files(empty_root)
    proc = load(empty_root, docker_archive(tmp_path / "a.tar", layers),
                env={"CONTAINER_LAB_MAX_LAYER_BYTES": str(16 << 20)})
    assert proc.returncode == 1, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout == ""
    assert store_files(empty_root) == before


def test_entry_count_is_bounded(tmp_path):
    layer = layer_tar(*[(f"f{i}", "f", b"") for i in range(20)])
    with pytest.raises(ImageError, match="has more than 10 entries"):
        extract_layer(io.BytesIO(layer), tmp_path / "l", limits=Limits(max_entries=10))


def test_end_of_archive_marker_is_required(tmp_path):
    """A tar cut at a header boundary reads as a shorter, valid-looking one:
    the missing end-of-archive blocks give it away."""
    whole = layer_tar(("a", "f", b"1" * 512), ("b", "f", b"2" * 512))
    with pytest.raises(ImageError, match="truncated or damaged: no end-of-archive marker"):
        extract_layer(io.BytesIO(whole[:2048]), tmp_path / "l")


# -- what a layer becomes ------------------------------------------------------

def test_layer_unpacks_with_owners_modes_links_and_whiteouts(tmp_path):
    layer = layer_tar(
        ("etc", "d", None, {"mode": 0o750, "uid": 7, "gid": 8}),
        ("etc/passwd", "f", b"root:x:0:0\n", {"mode": 0o4755, "uid": 5, "gid": 6}),
        ("etc/alias", "h", "etc/passwd"),
        ("bin", "s", "usr/bin"),
        ("usr/bin/tool", "f", b"#!/bin/sh\n", {"mode": 0o755}),
        (".wh.gone", "f", b""),
        ("usr/.wh..wh..opq", "f", b""),
        ("kept", "f", b"same layer"), (".wh.kept", "f", b""),   # a whiteout hides lower layers only
        ("fifo", "p"),
        ("dev/sda", "c", (8, 0)),
        ("x", "f", b"1", {"pax_headers": {"SCHILY.xattr.user.note": "hello",
                                          "SCHILY.xattr.user.overlay.opaque": "y",
                                          "SCHILY.xattr.trusted.overlay.redirect": "/etc"}}),
        gz=True,
    )
    dest = tmp_path / "layer"
    result = extract_layer(io.BytesIO(layer), dest)
    assert result.diff_id == sha(gzip.decompress(layer)) and result.compression == "gzip"
    assert result.skipped == ["dev/sda"] and result.stripped == 2
    assert not (dest / "dev/sda").exists()
    passwd = os.lstat(dest / "etc/passwd")
    assert stat.S_IMODE(os.lstat(dest / "etc").st_mode) == 0o750
    assert passwd.st_nlink == 2 and os.lstat(dest / "etc/alias").st_ino == passwd.st_ino
    assert passwd.st_mtime == 946684800
    if IS_ROOT:
        assert (passwd.st_uid, passwd.st_gid, stat.S_IMODE(passwd.st_mode)) == (5, 6, 0o4755)
        assert (os.lstat(dest / "etc").st_uid, os.lstat(dest / "etc").st_gid) == (7, 8)
    assert os.readlink(dest / "bin") == "usr/bin"
    gone = os.lstat(dest / "gone")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == os.makedev(0, 0)
    opaque = "trusted.overlay.opaque" if IS_ROOT else "user.overlay.opaque"
    assert os.getxattr(dest / "usr", opaque) == b"y"
    assert (dest / "kept").read_bytes() == b"same layer"
    assert stat.S_ISFIFO(os.lstat(dest / "fifo").st_mode)
    assert os.getxattr(dest / "x", "user.note") == b"hello"
    assert "user.overlay.opaque" not in os.listxattr(dest / "x")
    assert not any(n.startswith("trusted.overlay") for n in os.listxattr(dest / "x"))
    assert stat.S_IMODE(os.lstat(dest).st_mode) == 0o755


def test_aufs_bookkeeping_is_left_out(tmp_path):
    layer = layer_tar((".wh..wh.plnk", "d"), (".wh..wh.plnk/12.34", "f"), ("a/.wh..wh.aufs", "f"), ("a/b", "f"))
    extract_layer(io.BytesIO(layer), tmp_path / "l")
    assert sorted(str(p.relative_to(tmp_path / "l")) for p in (tmp_path / "l").rglob("*")) == ["a", "a/b"]


def test_later_entries_replace_earlier_ones(tmp_path):
    layer = layer_tar(("a", "d"), ("a/inner", "f"), ("a", "f", b"now a file"),
                      ("b", "f", b"file"), ("b", "d"), ("b/c", "f", b"in b"),
                      (".wh.w", "f", b""), ("w", "f", b"back"))
    dest = tmp_path / "layer"
    extract_layer(io.BytesIO(layer), dest)
    assert (dest / "a").read_bytes() == b"now a file"
    assert (dest / "b/c").read_bytes() == b"in b"
    assert (dest / "w").read_bytes() == b"back"


def test_lower_symlink_hidden_by_an_opaque_dir_is_no_obstacle(tmp_path):
    """Overlay rules, not a plain path check: a symlink that an upper layer
    hides (here: replaced by a directory) does not count."""
    lowers = []
    for i, layer in enumerate([layer_tar(("etc", "s", "/elsewhere")), layer_tar(("etc", "d"), ("etc/a", "f"))]):
        extract_layer(io.BytesIO(layer), tmp_path / f"l{i}", lowers=lowers)
        lowers.append(tmp_path / f"l{i}")
    extract_layer(io.BytesIO(layer_tar(("etc/b/c", "f"))), tmp_path / "l2", lowers=lowers)
    assert (tmp_path / "l2/etc/b/c").is_file()


# -- add_image: all or nothing --------------------------------------------------

def test_add_image_checks_everything_and_commits_nothing_on_error(tmp_path):
    store = ImageStore(tmp_path / "images")
    layers = [layer_tar(("a", "f", b"1")), layer_tar(("b", "f", b"2"), gz=True)]
    manifest, config, descs = image_parts(layers)
    blobs = {d["digest"]: layer for d, layer in zip(descs, layers)}
    opened = []

    def open_blob(desc):
        opened.append(desc["digest"])
        return io.BytesIO(blobs[desc["digest"]])

    def snapshot():
        return sorted(str(p.relative_to(store.root)) for p in store.root.rglob("*") if p.name != "lock")

    empty = snapshot()
    bad = dict(blobs)
    blob = bytearray(layers[1])
    blob[len(blob) // 2] ^= 0xFF                        # same size, one byte off
    bad[descs[1]["digest"]] = bytes(blob)
    with pytest.raises(ImageError, match="layer 2 of 2 .* does not match its digest"):
        store.add_image("t:1", manifest, config, lambda d: io.BytesIO(bad[d["digest"]]))
    assert snapshot() == empty
    with pytest.raises(ImageError, match="the config does not match its descriptor"):
        store.add_image("t:1", manifest, config + b" ", open_blob)
    with pytest.raises(ImageError, match="image index"):
        store.add_image("t:1", json.dumps({"schemaVersion": 2, "manifests": []}).encode(), config, open_blob)
    with pytest.raises(InvalidArgument):
        store.add_image("Bad Name", manifest, config, open_blob)
    assert snapshot() == empty and opened == []

    image = store.add_image(["docker.io/library/t:1", "t:2"], manifest, config, open_blob)
    assert image.ref == "t:1" and image.digest == sha(manifest) and image.id == sha(config)
    assert [i.ref for i in store.list()] == ["t:1", "t:2"]
    assert (image.layers[1] / "b").read_bytes() == b"2"
    assert list(store.tmp.iterdir()) == []
    # A second add reads nothing: every blob and layer is there.
    opened.clear()
    store.add_image("t:3", manifest, config, open_blob)
    assert opened == []
    # Blob and layer both stored is not enough: a config that pairs the gzip
    # blob with another layer's diff_id is caught all the same.
    cfg = json.loads(config)
    cfg["rootfs"]["diff_ids"] = [cfg["rootfs"]["diff_ids"][0]] * 2
    swapped_config = json.dumps(cfg).encode()
    m = json.loads(manifest)
    m["config"].update(digest=sha(swapped_config), size=len(swapped_config))
    before = snapshot()
    with pytest.raises(ImageError, match="layer 2 of 2 .*but the image's config says"):
        store.add_image("t:4", json.dumps(m).encode(), swapped_config, open_blob)
    assert snapshot() == before


def test_a_live_work_dir_survives_another_writer(tmp_path):
    store = ImageStore(tmp_path / "images")
    with store.work_dir() as work:
        (work / "part").write_bytes(b"in progress")
        with store._lock(exclusive=True):      # another writer clears tmp/ here
            pass
        assert (work / "part").exists()
    (store.tmp / "crashed").mkdir()
    (store.tmp / "crashed" / ".owner").touch()   # its owner died: nobody holds the flock
    with store._lock(exclusive=True):
        pass
    assert list(store.tmp.iterdir()) == []


# -- load: archives -------------------------------------------------------------

def test_load_docker_and_oci_archives(tmp_path, empty_root):
    base = layer_tar(("data", "d"), ("data/a", "f", b"A"), gz=True)
    top = layer_tar(("data/b", "f", b"B"))
    proc = load(empty_root, docker_archive(tmp_path / "d.tar", [base, top], tags=("docker.io/library/demo:1",
                                                                                  "demo:extra")))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Loaded image: demo:1\nLoaded image: demo:extra\n"
    archive = oci_archive(tmp_path / "o.tar", [base, top], name="registry.example:5000/team/demo:2")
    with open(archive, "rb") as stdin:          # from standard input, as `docker load < FILE`
        proc = subprocess.run([sys.executable, "-m", "engine.cli", "load", "-q"], stdin=stdin, capture_output=True,
                              text=True, cwd=REPO, env={**os.environ, "CONTAINER_LAB_ROOT": str(empty_root)},
                              timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Loaded image: registry.example:5000/team/demo:2\n"
    # gzip-compressed archive, as docker load takes them
    (tmp_path / "o.tar.gz").write_bytes(gzip.compress(archive.read_bytes()))
    proc = load(empty_root, tmp_path / "o.tar.gz")
    assert proc.returncode == 0, proc.stderr
    store = ImageStore(empty_root / "lib" / "images")
    oci = store.resolve("registry.example:5000/team/demo:2")
    manifest, _config, _descs = image_parts([base, top])
    assert oci.digest == sha(manifest)                  # an OCI archive keeps its manifest
    assert store.resolve("demo:1").id == oci.id         # the same config, the same image id
    assert len(list(store.layers.iterdir())) == 2 and list(store.tmp.iterdir()) == []


def written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


ARCHIVE_ERRORS = {
    "not-a-tar": (lambda p, ls: written(p, b"hello, not a tar" * 100), "is not a tar file"),
    "truncated": (lambda p, ls: written(p, docker_archive(p, ls).read_bytes()[:3000]), "truncated"),
    "neither-layout": (lambda p, ls: tarfile.open(p, "w").close() or p, "neither a docker save archive"),
    "missing-blob": (lambda p, ls: oci_archive(p, ls, skip=(sha(ls[1]),)),
                     "which it does not hold"),
    "wrong-digest": (lambda p, ls: oci_archive(p, ls, replace={sha(ls[1]): ls[1].replace(b"data/b", b"data/c")}),
                     "does not match its digest"),
    "wrong-diff-id": (lambda p, ls: docker_archive(p, ls, config=image_parts([ls[0], ls[0]])[1]),
                      "but the image's config says"),
    "bad-tag": (lambda p, ls: docker_archive(p, ls, tags=("UPPER:case",)), "must be lowercase"),
}


@pytest.mark.parametrize("case", list(ARCHIVE_ERRORS))
def test_bad_archives(case, tmp_path, empty_root):
    # Layers of this case alone: the store skips a blob it already holds.
    layers = [layer_tar(("data", "d"), ("data/a", "f", case.encode())), layer_tar(("data/b", "f", b"B" + case.encode()))]
    make, expected = ARCHIVE_ERRORS[case]
    archive = make(tmp_path / "a.tar", layers)
    before = store_files(empty_root)
    proc = load(empty_root, archive)
    assert proc.returncode == 1, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in proc.stderr, proc.stderr
    assert store_files(empty_root) == before


def test_load_warns_of_device_nodes_left_out(tmp_path, empty_root):
    layer = layer_tar(("dev", "d"), ("dev/sda", "c", (8, 0)), ("dev/null", "c", (1, 3)), ("etc/x", "f"))
    proc = load(empty_root, docker_archive(tmp_path / "dev.tar", [layer], tags=("devices:1",)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Loaded image: devices:1\n"
    assert proc.stderr.startswith("WARNING: layer 1 of 1 (sha256:") and "2 device node(s) left out" in proc.stderr
    image = ImageStore(empty_root / "lib" / "images").resolve("devices:1")
    assert list((image.layers[0] / "dev").iterdir()) == [] and (image.layers[0] / "etc/x").is_file()


def test_load_from_empty_stdin_and_a_missing_file(empty_root):
    proc = cl("load", input="", env={"CONTAINER_LAB_ROOT": str(empty_root)})
    assert proc.returncode == 1 and "stdin is empty" in proc.stderr
    proc = load(empty_root, Path("/nonexistent.tar"))
    assert proc.returncode == 1 and proc.stderr.strip() == \
        "container-lab: cannot open /nonexistent.tar: No such file or directory"


def test_save_refuses_a_terminal(empty_root):
    master, slave = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "engine.cli", "save", "lab"], stdout=slave,
                              stderr=subprocess.PIPE, text=True, cwd=REPO, timeout=60,
                              env={**os.environ, "CONTAINER_LAB_ROOT": str(empty_root)})
    finally:
        os.close(slave)
        os.close(master)
    assert proc.returncode == 1
    assert "cowardly refusing to save to a terminal" in proc.stderr


def test_load_shows_progress_only_on_a_terminal(tmp_path, empty_root):
    layer = layer_tar(("big", "f", os.urandom(9 << 20)))
    archive = docker_archive(tmp_path / "p.tar", [layer], tags=("progress:1",))
    master, slave = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "engine.cli", "load", "-i", str(archive)], stderr=slave,
                              stdout=subprocess.PIPE, text=True, cwd=REPO, timeout=60,
                              env={**os.environ, "CONTAINER_LAB_ROOT": str(empty_root)})
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
    assert proc.returncode == 0 and proc.stdout == "Loaded image: progress:1\n"
    assert b"progress:1: layer 1/1 " in shown and b": 0B of 9.44MB" in shown
    assert re.search(rb": [89][.0-9]*MB of 9.44MB", shown), shown      # and again, 8 MiB on
    assert shown.endswith(b"\r\x1b[K")                  # the line is wiped at the end
    # not a terminal (the other tests): nothing but the names
    proc = load(empty_root, archive)
    assert proc.returncode == 0 and proc.stderr == ""


def test_save_errors_are_one_line_and_leave_nothing(tmp_path, empty_root):
    env = {"CONTAINER_LAB_ROOT": str(empty_root)}
    layers = [layer_tar(("saved", "f"))]
    manifest, config, descs = image_parts(layers)
    ImageStore(empty_root / "lib" / "images").add_image("saveme:1", manifest, config, lambda d: io.BytesIO(layers[0]))
    proc = cl("save", "-o", str(tmp_path), "saveme:1", env=env)       # a directory
    assert proc.returncode == 1 and proc.stderr.startswith(f"container-lab: cannot write {tmp_path}:"), proc.stderr
    proc = cl("save", "-o", str(tmp_path / "x.tar"), "nope:1", env=env)
    assert proc.returncode == 1 and proc.stderr.strip() == "container-lab: No such image: nope:1"
    assert list(tmp_path.iterdir()) == []


# -- inspect and history ----------------------------------------------------------

def test_image_inspect_and_history(tmp_path, empty_root):
    layers = [layer_tar(("a", "f", b"x" * 1000)), layer_tar(("b", "f", b"y" * 20))]
    by = ["/bin/sh -c apt-get update && apt-get install -y a-rather-long-package-name", "COPY b /b"]
    manifest, config, descs = image_parts(layers, created_by=by)
    store = ImageStore(empty_root / "lib" / "images")
    files = {}                                  # as a puller passes them: downloaded files by digest
    for desc, layer in zip(descs, layers):
        files[desc["digest"]] = tmp_path / desc["digest"][7:]
        files[desc["digest"]].write_bytes(layer)
    store.add_image("hist:1", manifest, config, files)
    env = {"CONTAINER_LAB_ROOT": str(empty_root)}

    proc = cl("image", "inspect", "hist:1", env=env)
    assert proc.returncode == 0, proc.stderr
    (record,) = json.loads(proc.stdout)
    assert record["Id"] == sha(config) and record["RepoTags"] == ["hist:1"]
    assert record["RepoDigests"] == [f"hist@{sha(manifest)}"]
    assert (record["Architecture"], record["Os"], record["Created"]) == ("amd64", "linux", "2024-01-02T03:04:05Z")
    assert record["Config"]["Cmd"] == ["/bin/sh"] and record["Size"] == 1020
    assert record["RootFS"] == {"Type": "layers", "Layers": json.loads(config)["rootfs"]["diff_ids"]}
    short_id = sha(config)[7:19]
    assert cl("image", "inspect", "-f", "{{.Id}} {{json .RootFS.Type}}", short_id, env=env).stdout == \
        f"{sha(config)} \"layers\"\n"
    proc = cl("image", "inspect", "hist:1", "nope", env=env)
    assert proc.returncode == 1 and "No such image: nope" in proc.stderr and json.loads(proc.stdout)[0]["Id"]

    proc = cl("history", "hist:1", env=env)
    assert proc.returncode == 0, proc.stderr
    rows = proc.stdout.splitlines()
    assert rows[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert rows[1].startswith(short_id) and "COPY b /b" in rows[1] and "20B" in rows[1]
    assert rows[2].startswith("<missing>") and "/bin/sh -c apt-get update && apt-get install…" in rows[2]
    assert "1kB" in rows[2] and "ENV A=1" in rows[3] and "0B" in rows[3] and len(rows) == 4
    assert "a-rather-long-package-name" in cl("history", "--no-trunc", "hist:1", env=env).stdout
    lines = [json.loads(line) for line in cl("image", "history", "--format", "json", "hist:1", env=env).stdout.splitlines()]
    assert [x["CreatedBy"] for x in lines] == ["COPY b /b", by[0], "ENV A=1"]
    assert lines[0]["ID"] == short_id and lines[1]["ID"] == "<missing>" and lines[0]["Size"] == "20B"
    assert "years ago" in lines[0]["CreatedSince"]
    proc = cl("history", "nope", env=env)
    assert proc.returncode == 1 and proc.stderr.strip() == "container-lab: No such image: nope"
    assert "hist" in cl("image", "ls", env=env).stdout


# -- through a real overlay, and a round trip -----------------------------------------

@needs_root
@pytest.mark.root
def test_whiteouts_and_opaque_dirs_in_a_running_container(lab_image, tmp_path):
    """A 3-layer image: lab's own layer, one that adds files, one that deletes
    a file, makes a directory opaque and adds a file to it in the same layer."""
    store = ImageStore(ROOT / "lib" / "images")
    lab = store.resolve("lab")
    lab_layer = (store.blobs / lab.layers[0].name).read_bytes()
    middle = layer_tar(("data", "d"), ("data/keep", "f", b"k"), ("data/gone", "f", b"g"),
                       ("opq", "d"), ("opq/old1", "f"), ("opq/old2", "f"), gz=True)
    top = layer_tar(("data/.wh.gone", "f", b""), ("opq", "d"), ("opq/.wh..wh..opq", "f", b""),
                    ("opq/new", "f", b"n"))
    archive = docker_archive(tmp_path / "wh.tar", [lab_layer, middle, top], tags=("whiteout-test:1",))
    proc = cl("load", "-i", str(archive))
    assert proc.returncode == 0, proc.stderr
    try:
        proc = cl("run", "--rm", "whiteout-test:1", "sh", "-c", "ls -A /data; echo --; ls -A /opq")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["keep", "--", "new"]
    finally:
        store.remove("whiteout-test:1")
    assert overlay_mounts() == []


@needs_root
@pytest.mark.root
def test_save_then_load_into_an_empty_root_round_trips(lab_image, tmp_path):
    second = tmp_path / "second"
    archive = tmp_path / "lab.tar"
    proc = cl("save", "-o", str(archive), "lab")
    assert proc.returncode == 0 and proc.stdout == "", proc.stderr
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {"index.json", "manifest.json", "oci-layout", "repositories"} <= names
    env = {"CONTAINER_LAB_ROOT": str(second)}
    try:
        proc = cl("load", "-i", str(archive), env=env)
        assert proc.returncode == 0 and proc.stdout == "Loaded image: lab:latest\n", proc.stderr
        ours = json.loads(cl("image", "inspect", "lab").stdout)[0]
        theirs = json.loads(cl("image", "inspect", "lab", env=env).stdout)[0]
        for key in ("Id", "RepoDigests", "RootFS", "Config", "Created", "Size"):
            assert ours[key] == theirs[key], key
        # a second save of the loaded image is byte for byte the first
        again = tmp_path / "again.tar"
        assert cl("save", "-o", str(again), "lab", env=env).returncode == 0
        assert again.read_bytes() == archive.read_bytes()
        proc = cl("run", "--rm", "lab", "sh", "-c", "echo from the loaded image; ls /usr/bin/ps", env=env)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == "from the loaded image\n/usr/bin/ps\n"
    finally:
        stop_engine(second)
        with open("/proc/self/mountinfo") as f:
            assert str(second) not in f.read()
        shutil.rmtree(second, ignore_errors=True)


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed (apt-get install skopeo)")
def test_skopeo_reads_what_save_writes(tmp_path, empty_root):
    layers = [layer_tar(("a", "f", b"1")), layer_tar(("b", "f", b"2"), gz=True)]
    manifest, config, descs = image_parts(layers)
    store = ImageStore(empty_root / "lib" / "images")
    store.add_image("skopeo-test:1", manifest, config,
                    lambda d: io.BytesIO(layers[[x["digest"] for x in descs].index(d["digest"])]))
    archive = tmp_path / "s.tar"
    assert cl("save", "-o", str(archive), "skopeo-test:1", env={"CONTAINER_LAB_ROOT": str(empty_root)}).returncode == 0
    for transport in ("oci-archive", "docker-archive"):
        proc = subprocess.run(["skopeo", "inspect", f"{transport}:{archive}"], capture_output=True, text=True,
                              timeout=60)
        assert proc.returncode == 0, (transport, proc.stderr)
        info = json.loads(proc.stdout)
        assert info["Layers"] == [d["digest"] for d in descs] or transport == "docker-archive"
        assert info["Os"] == "linux" and info["Architecture"] == "amd64"
    proc = subprocess.run(["skopeo", "inspect", "--raw", f"oci-archive:{archive}"], capture_output=True, timeout=60)
    assert proc.stdout == manifest


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed (apt-get install skopeo)")
def test_load_reads_what_skopeo_writes(tmp_path, empty_root):
    """skopeo's docker-archive (legacy layout, a layer reached through a
    symlink) and its OCI archive with gzip layers."""
    layers = [layer_tar(("s", "f", b"skopeo"))]
    manifest, config, descs = image_parts(layers)
    src = oci_archive(tmp_path / "src.tar", layers, name="src:1")
    env = {"CONTAINER_LAB_ROOT": str(empty_root)}
    for transport, dest, flags, name in (("docker-archive", "d.tar", [], "example.com/team/from-skopeo:1"),
                                         ("oci-archive", "o.tar", ["--dest-compress"], "from-skopeo:gz")):
        proc = subprocess.run(["skopeo", "copy", "-q", *flags, f"oci-archive:{src}",
                               f"{transport}:{tmp_path / dest}:{name}"], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        proc = load(empty_root, tmp_path / dest)
        assert proc.returncode == 0 and proc.stdout == f"Loaded image: {name}\n", proc.stderr
        record = json.loads(cl("image", "inspect", name, env=env).stdout)[0]
        assert record["Id"] == sha(config) and record["RootFS"]["Layers"] == json.loads(config)["rootfs"]["diff_ids"]
