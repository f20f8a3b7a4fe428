"""A content-addressed image store on local disk.

Layout under the store's root (every directory mode 0700; see SECURITY.md,
"The store" -- unpacked layers hold setuid-root binaries)::

    blobs/sha256/<hex>   layer tars, OCI image configs and manifests
    layers/<hex>/        each layer unpacked, named by its diff_id; an overlay lowerdir
    sizes/<hex>          bytes of each unpacked layer's files (what `images` adds up)
    repositories.json    {"lab:latest": "sha256:<manifest digest>", ...}; an image pulled
                         by digest is keyed "name@sha256:<digest>" (docker's <none> tag);
                         one kept with no name "<none>@sha256:<digest>" (see .names)
    origins.json         which repositories of which registry hold each blob (advisory:
                         push mounts from them; see engine.images.pull.remember_origins)
    tmp/                 work in progress, renamed into place when complete
    lock                 flock: shared to read, exclusive to write

Writers hold the exclusive lock, so anything left in ``tmp/`` when one takes it
is debris from a writer that died; it is cleared then -- except a work
directory whose ``.owner`` file is still flocked by a live process (a load
unpacking layers, which takes the exclusive lock only to publish them, so
containers keep starting meanwhile). Readers hold the shared lock, so a
removal never pulls blobs out from under them.

Images from elsewhere come in through :meth:`ImageStore.add_image` (``load``,
``pull``), and so do the images made here (``build`` and ``commit``, in
:mod:`engine.images.build`): every byte checked against its digest, every
layer unpacked by :mod:`engine.images.extract`, and nothing published until
all of it is. A build names its intermediate images for as long as it runs
and then drops the names (:meth:`ImageStore.untag`).

Where each part lives:

- :mod:`.imagestore` -- :class:`ImageStore`: the directories and the lock,
  the tag index (resolve, list, find, tags), reading images back, writing
  blobs, layers and their sizes, the ``lab`` image;
- :mod:`.adding` -- :meth:`ImageStore.add_image`'s work: verify, unpack,
  publish, all or nothing;
- :mod:`.names` -- the index's entries: names, and untagged (dangling)
  images -- what a tag moved to another image leaves;
- :mod:`.gc` -- removing images and deleting what no entry and no
  container needs (``rmi``, ``image prune``);
- :mod:`.manifest` -- the media types read and the checks of a manifest
  and its config;
- :mod:`.image` -- :class:`Image`, what the store hands out;
- :mod:`.disk` -- fsync, one-line errors, a layer's size, work dirs in use.

Everything is importable from here (``from engine.images.store import ImageStore``).
"""

from .image import CONFIG_DEFAULTS, Image
from .imagestore import LAB_REF, ImageStore
from .manifest import (
    CONFIG_MEDIA_TYPE,
    DOCKER_MANIFEST_MEDIA_TYPE,
    INDEX_MEDIA_TYPES,
    LAYER_MEDIA_TYPE,
    LAYER_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPE,
    MAX_JSON_BLOB,
    MAX_LAYERS,
    check_descriptor,
)

__all__ = [
    "CONFIG_DEFAULTS", "CONFIG_MEDIA_TYPE", "DOCKER_MANIFEST_MEDIA_TYPE", "INDEX_MEDIA_TYPES", "LAB_REF",
    "LAYER_MEDIA_TYPE", "LAYER_MEDIA_TYPES", "MANIFEST_MEDIA_TYPE", "MAX_JSON_BLOB", "MAX_LAYERS", "Image",
    "ImageStore", "check_descriptor",
]
