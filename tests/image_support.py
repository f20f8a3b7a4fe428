"""Small images made in a test: the built-in ``lab`` image's layer with one
layer of the test's own on top (symlinks, files) and config fields changed,
put in the session's store through its one way in (``ImageStore.add_image``,
every digest checked, as ``load`` and ``pull`` do)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

from engine.images import ImageStore

from conftest import ROOT


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer(*entries) -> bytes:
    """A layer tar; each entry ``(name, "d")``, ``(name, "s", target)`` or ``(name, "f", bytes)``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, *arg in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 946684800
            data = None
            if kind == "d":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "s":
                info.type, info.linkname = tarfile.SYMTYPE, arg[0]
            else:
                data = arg[0] if arg else b""
                info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def derived_image(ref: str, *entries, config: dict | None = None) -> str:
    """Tag ``ref``: lab's layers plus a layer of ``entries`` (if any), its
    config's ``config`` object updated with ``config``. Returns ``ref``."""
    store = ImageStore(ROOT / "lib" / "images")
    lab = store.resolve("lab")
    manifest, full_config = store.manifest_and_config(lab)
    descs = list(manifest["layers"])
    diff_ids = list(full_config["rootfs"]["diff_ids"])
    blobs: dict[str, bytes] = {}
    if entries:
        tar = layer(*entries)
        blobs[_sha(tar)] = tar
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": _sha(tar),
                      "size": len(tar)})
        diff_ids.append(_sha(tar))
    cfg = dict(full_config, config={**full_config.get("config", {}), **(config or {})},
               rootfs={"type": "layers", "diff_ids": diff_ids})
    cfg_bytes = json.dumps(cfg).encode()
    manifest_bytes = json.dumps(dict(manifest, layers=descs, config={
        "mediaType": "application/vnd.oci.image.config.v1+json", "digest": _sha(cfg_bytes),
        "size": len(cfg_bytes)})).encode()
    store.add_image(ref, manifest_bytes, cfg_bytes, lambda desc: io.BytesIO(blobs[desc["digest"]]))
    return ref
