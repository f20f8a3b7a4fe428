"""The image store and the built-in ``lab`` image.

Every store lives under tmp_path. Building ``lab`` copies real host binaries,
and the tests run them with chroot, so most of this module needs root.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from engine.errors import ImageError, ImageNotFound, InvalidArgument
from engine.images import Image, ImageStore, normalize_reference
from engine.images import lab as lab_module
from engine.images.layer import FIXED_MTIME

REPO = Path(__file__).resolve().parents[1]
HEX64 = "a" * 64

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chroot and unshare need root")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> ImageStore:
    """One store with lab built, shared by the read-only tests."""
    s = ImageStore(tmp_path_factory.mktemp("store") / "images")
    s.ensure_lab()
    return s


@pytest.fixture(scope="module")
def rootfs(store) -> Path:
    (layer,) = store.resolve("lab").layers
    return layer


def blob(store: ImageStore, digest: str) -> bytes:
    return (store.blobs / digest.removeprefix("sha256:")).read_bytes()


def in_image(rootfs: Path, script: str) -> subprocess.CompletedProcess:
    """Run ``script`` with the image's /bin/sh, chrooted, in a new mount and
    pid namespace with its own /proc (ps needs one) and the host's /dev bound
    in (so ``>/dev/null`` does not write a file into the layer). The mounts are
    private to that namespace: the host's mount table stays untouched."""
    root = shlex.quote(str(rootfs))
    setup = f'mount --bind /dev {root}/dev && exec chroot {root} /bin/sh -c "$0"'
    return subprocess.run(
        ["unshare", "--mount", "--pid", "--fork", f"--mount-proc={rootfs}/proc", "sh", "-c", setup, script],
        capture_output=True, text=True, timeout=30, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"},
    )


# -- references ---------------------------------------------------------------

@pytest.mark.parametrize(("ref", "normal"), [
    ("ubuntu", "ubuntu:latest"),
    ("ubuntu:22.04", "ubuntu:22.04"),
    ("registry:5000/x/y:tag", "registry:5000/x/y:tag"),
    ("registry.example.com/team/app", "registry.example.com/team/app:latest"),
    ("localhost/x", "localhost/x:latest"),
    ("a.b-c__d/e_f:V1.0-rc_2", "a.b-c__d/e_f:V1.0-rc_2"),
    (f"ubuntu@sha256:{HEX64}", f"ubuntu@sha256:{HEX64}"),
])
def test_references_are_normalised(ref, normal):
    assert normalize_reference(ref) == normal


@pytest.mark.parametrize("ref", [
    "", " ", "Ubuntu", "ubuntu ", "a b", "ubuntu:", ":tag", "-x", "x-", "x/", "/x", "x//y",
    "a:b:c", "x:-tag", "x:" + "t" * 129, "x" * 256, "ubuntu@sha256:abc", f"ubuntu@sha512:{HEX64}",
    f"ubuntu:tag@sha256:{HEX64}", f"ubuntu@sha256:{HEX64.upper()}", "x\ny", "ubuntü",
])
def test_bad_references_are_refused(ref, tmp_path):
    with pytest.raises(InvalidArgument) as exc:
        ImageStore(tmp_path).resolve(ref)
    assert "\n" not in str(exc.value)
    assert str(exc.value).startswith("invalid reference format")


def test_uppercase_names_say_so():
    with pytest.raises(InvalidArgument, match="must be lowercase"):
        normalize_reference("Ubuntu")


def test_unknown_image_is_not_found_and_builds_nothing(tmp_path):
    s = ImageStore(tmp_path)
    with pytest.raises(ImageNotFound) as exc:
        s.resolve("nope")
    assert str(exc.value) == "Unable to find image 'nope:latest' locally"
    with pytest.raises(ImageNotFound, match="Unable to find image 'lab:v2' locally"):
        s.resolve("lab:v2")
    assert not any(s.blobs.iterdir()) and not any(s.layers.iterdir())
    assert s.list() == []


# -- the lab image ------------------------------------------------------------

@needs_root
@pytest.mark.root
def test_lab_runs_real_binaries(rootfs):
    r = in_image(rootfs, "ps --version; hostname --help >/dev/null; ls /")
    assert r.returncode == 0, r.stderr
    assert "procps" in r.stdout
    assert {"bin", "etc", "usr", "proc", "tmp"} <= set(r.stdout.split())
    r = in_image(rootfs, "ps -e -o pid=,comm=; bash -c 'echo $BASH_VERSION'; id -un; wc -l < /etc/passwd")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split("\n")
    assert lines[0].split() == ["1", "sh"]
    assert lines[-3:] == ["root", "2", ""]


@needs_root
@pytest.mark.root
@pytest.mark.parametrize("tool", ["sh", "bash", "ps", "hostname", "ls"])
def test_lab_has_tool_and_its_libraries(rootfs, tool):
    host = shutil.which(tool, path="/usr/bin:/usr/sbin:/bin:/sbin")
    out = subprocess.run(["ldd", host], capture_output=True, text=True, check=True).stdout
    libs = re.findall(r"(/\S+) \(0x", out)
    assert any("libc.so" in lib for lib in libs) and any("ld-linux" in lib or "/ld" in lib for lib in libs)
    # Checked from inside: absolute symlinks must resolve within the image.
    checks = " && ".join(f"test -f {p}" for p in [f"/usr/bin/{tool}", f"/bin/{tool}", *libs])
    r = in_image(rootfs, checks)
    assert r.returncode == 0, (checks, r.stderr)


def test_lab_layout_is_merged_usr(rootfs):
    for d in ("bin", "sbin", "lib"):
        assert os.readlink(rootfs / d) == f"usr/{d}"
    assert os.readlink(rootfs / "usr/bin/sh") == "dash" or (rootfs / "usr/bin/sh").is_file()
    modes = {d: stat.S_IMODE(os.lstat(rootfs / d).st_mode) for d in ("tmp", "var/tmp", "root", "proc", "home")}
    assert modes == {"tmp": 0o1777, "var/tmp": 0o1777, "root": 0o700, "proc": 0o555, "home": 0o755}
    for d in ("dev", "sys", "run", "mnt"):
        assert (rootfs / d).is_dir() and not any((rootfs / d).iterdir())
    if os.geteuid() == 0:
        assert all(os.lstat(p).st_uid == 0 for p in rootfs.rglob("*"))


def test_lab_account_files_are_generated(rootfs):
    assert (rootfs / "etc/passwd").read_text().splitlines() == [
        "root:x:0:0:root:/root:/bin/bash",
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
    ]
    assert (rootfs / "etc/group").read_text().splitlines() == ["root:x:0:", "tty:x:5:", "nogroup:x:65534:"]
    assert not (rootfs / "etc/shadow").exists()
    assert 'PRETTY_NAME="container-lab lab image"' in (rootfs / "etc/os-release").read_text()
    for name in ("hostname", "hosts", "resolv.conf"):
        assert (rootfs / "etc" / name).read_bytes() == b""
    for rc in ("etc/bash.bashrc", "root/.bashrc"):
        assert r"PS1='\u@\h:\w\$ '" in (rootfs / rc).read_text()


def test_lab_terminfo(rootfs):
    for term in lab_module.TERMINALS:
        on_host = any(Path(d, term[0], term).is_file() for d in lab_module.HOST_TERMINFO_DIRS)
        assert (rootfs / "usr/share/terminfo" / term[0] / term).is_file() == on_host, term
    assert (rootfs / "usr/share/terminfo/x/xterm-256color").is_file()


def test_lab_config(store):
    image = store.resolve("lab")
    assert image.config["Env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    assert image.config["Cmd"] == ["/bin/bash"]
    assert image.config["Entrypoint"] == [] and image.config["User"] == ""
    assert image.config["Labels"] == {"org.container-lab.image": "lab", "org.container-lab.recipe": "2"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", image.created)


def test_a_lab_image_of_an_older_recipe_is_assembled_again(tmp_path, monkeypatch):
    from engine.images import lab

    s = ImageStore(tmp_path / "images")
    first = s.ensure_lab()
    assert s.ensure_lab().id == first.id                    # same recipe: kept
    labels = dict(lab.CONFIG["Labels"], **{"org.container-lab.recipe": "next"})
    monkeypatch.setitem(lab.CONFIG, "Labels", labels)
    again = s.ensure_lab()
    assert again.id != first.id and again.config["Labels"]["org.container-lab.recipe"] == "next"
    assert s.resolve("lab").id == again.id
    assert (again.layers[0] / "usr/bin/httpd").is_symlink()        # busybox's, from busybox-static


def test_lab_needs_sh_and_bash(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(shutil.which("bash"), bindir / "bash")  # bash, but no sh
    monkeypatch.setattr(lab_module, "HOST_BIN_DIRS", (str(bindir),))
    s = ImageStore(tmp_path / "images")
    with pytest.raises(ImageError, match="the host has no /bin/sh"):
        s.resolve("lab")
    assert s.list() == [] and not any(s.tmp.iterdir()) and not any(s.blobs.iterdir())


# -- the store ----------------------------------------------------------------

def test_store_round_trip(store):
    image = store.resolve("lab")
    assert image == store.resolve("lab:latest")
    assert image.ref == "lab:latest"
    assert store.list() == [image]
    assert image.size > 1_000_000
    assert store.resolve(f"lab@{image.digest}").digest == image.digest
    assert json.loads(store.repositories.read_text()) == {"lab:latest": image.digest}


def test_blobs_are_content_addressed(store):
    for p in store.blobs.iterdir():
        assert hashlib.sha256(p.read_bytes()).hexdigest() == p.name


def test_manifest_references_config_and_layer(store):
    image = store.resolve("lab")
    manifest = json.loads(blob(store, image.digest))
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    assert manifest["config"]["digest"] == image.id
    assert manifest["config"]["size"] == len(blob(store, image.id))
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar"
    assert layer["size"] == len(blob(store, layer["digest"]))
    config = json.loads(blob(store, image.id))
    assert config["os"] == "linux" and config["architecture"]
    # Uncompressed, so the layer's digest is its diff_id, which names its directory.
    assert config["rootfs"] == {"type": "layers", "diff_ids": [layer["digest"]]}
    assert image.layers == [store.layers / layer["digest"].removeprefix("sha256:")]
    assert image.lowerdir() == str(image.layers[0])


def test_layer_tar_matches_its_directory(store, rootfs):
    (layer_blob,) = [p for p in store.blobs.iterdir() if p.name == rootfs.name]
    with tarfile.open(layer_blob) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    on_disk = {str(p.relative_to(rootfs)) for p in rootfs.rglob("*")}
    assert set(names) == on_disk
    for m in members:
        st = os.lstat(rootfs / m.name)
        assert (m.mtime, m.uid, m.gid) == (FIXED_MTIME, 0, 0)
        assert m.mode == stat.S_IMODE(st.st_mode), m.name
        if m.issym():
            assert m.linkname == os.readlink(rootfs / m.name)
        elif m.isfile():
            assert stat.S_ISREG(st.st_mode) and m.size == st.st_size
        else:
            assert m.isdir() and stat.S_ISDIR(st.st_mode)


def test_layer_is_reproducible(store, tmp_path):
    again = ImageStore(tmp_path).ensure_lab()
    assert again.layers[0].name == store.resolve("lab").layers[0].name


def test_store_dirs_are_private(store):
    for d in (store.root, store.root / "blobs", store.blobs, store.layers, store.tmp):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    assert stat.S_IMODE((store.root / "repositories.json").stat().st_mode) == 0o600


def test_concurrent_builds_make_one_image(tmp_path):
    root = tmp_path / "images"
    # Each worker reads its stdin, one pipe for all, until it closes: all four race for the empty store.
    code = (
        "import sys\nfrom pathlib import Path\nfrom engine.images import ImageStore\n"
        "sys.stdin.read()\n"
        "print(ImageStore(Path(sys.argv[1])).ensure_lab().digest)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    gate, go = os.pipe()
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(root)], cwd=REPO, env=env, stdin=gate,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    os.close(gate)
    os.close(go)
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [err for _, err in results]
    digests = {out.strip() for out, _ in results}
    assert len(digests) == 1
    s = ImageStore(root)
    assert [i.digest for i in s.list()] == list(digests)
    assert len(list(s.blobs.iterdir())) == 3  # manifest, config, layer
    assert len(list(s.layers.iterdir())) == 1
    assert sorted(p.name for p in root.iterdir()) == ["blobs", "layers", "lock", "repositories.json", "sizes", "tmp"]
    assert list(s.tmp.iterdir()) == []


def test_remove_collects_garbage(tmp_path):
    s = ImageStore(tmp_path)
    image = s.ensure_lab()
    # A second tag on the same image, a stray blob and the debris of a crashed
    # writer: the tag keeps everything alive, the rest goes.
    s.repositories.write_text(json.dumps({"lab:latest": image.digest, "lab:copy": image.digest}))
    (s.blobs / HEX64).write_bytes(b"orphan")
    (s.tmp / "lab-crashed").mkdir()

    s.remove("lab:copy")
    assert [i.ref for i in s.list()] == ["lab:latest"]
    assert not (s.blobs / HEX64).exists() and list(s.tmp.iterdir()) == []
    assert len(list(s.blobs.iterdir())) == 3 and image.layers[0].is_dir()

    s.remove(f"lab@{image.digest}")
    assert s.list() == []
    assert json.loads(s.repositories.read_text()) == {}
    assert list(s.blobs.iterdir()) == [] and list(s.layers.iterdir()) == [] and list(s.tmp.iterdir()) == []
    with pytest.raises(ImageNotFound, match="No such image: lab:latest"):
        s.remove("lab")


def test_damaged_images(tmp_path):
    s = ImageStore(tmp_path)
    image = s.ensure_lab()
    # lab rebuilds itself when its layer goes missing...
    shutil.rmtree(image.layers[0])
    assert s.resolve("lab").layers[0].is_dir()
    # ...another image reports the damage on resolve and is left out of list().
    s.repositories.write_text(json.dumps({"lab:latest": image.digest, "broken:1": f"sha256:{HEX64}"}))
    with pytest.raises(ImageError, match="image broken:1 is damaged"):
        s.resolve("broken:1")
    assert [i.ref for i in s.list()] == ["lab:latest"]
    s.repositories.write_text("{not json")
    with pytest.raises(ImageError, match="unreadable"):
        s.list()


def test_lowerdir_is_top_first_and_escaped():
    image = Image(ref="x:latest", id="", digest="", layers=[Path("/s/a"), Path("/s/b:c,d")], config={},
                  created="", size=0)
    assert image.lowerdir() == r"/s/b\:c\,d:/s/a"
