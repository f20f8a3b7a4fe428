"""The image verbs: images, image (ls, inspect, history, layers, load, save,
pull, rm, prune), history, pull, rmi, load, save. They fail the way docker's do: one
line, exit status 1."""

from __future__ import annotations

import json
import os
import sys

from .. import errors
from ..spec import human_size as _human
from . import PROG
from .output import _table, _warn
from .parser import _Parser


def _add_images(sub, help_text: str, name: str = "images", aliases: tuple[str, ...] = ()) -> None:
    im = sub.add_parser(name, aliases=list(aliases), help=help_text,
                        description="List the images in the local store. An image with no name -- built without "
                                    "-t, or left behind when its tag moved to a newer image -- is listed as "
                                    "<none> <none>: use it by its IMAGE ID, `tag` it, or let `image prune` "
                                    "remove it.")
    im.add_argument("-a", "--all", action="store_true",
                    help="show all images (a build's intermediate images are not kept as images here, only "
                         "their layers: the same list)")
    im.add_argument("-f", "--filter", action="append", default=[], metavar="dangling=true|false",
                    help="only untagged (dangling=true) or only named (dangling=false) images")
    im.add_argument("-q", "--quiet", action="store_true", help="only print image ids")
    im.set_defaults(func=cmd_images)


def _add_rmi(sub, help_text: str, name: str = "rmi") -> None:
    rm = sub.add_parser(name, help=help_text,
                        description="Remove images: a name removes that tag, and the image with it once no name "
                                    "is left to it; an image id (full, short, or sha256:...) removes the image "
                                    "and all its names (-f when it has several). Then the layers no other image "
                                    "and no container needs go. An image a container uses is kept unless -f: "
                                    "then only its names go, and it stays as <none> for the container.")
    rm.add_argument("-f", "--force", action="store_true", help="untag even when a container uses the image")
    rm.add_argument("images", nargs="+", metavar="IMAGE", help="image name[:tag], name@digest or image id")
    rm.set_defaults(func=cmd_rmi)


def _add_pull(sub, help_text: str) -> None:
    pl = sub.add_parser("pull", help=help_text,
                        description="Download an image from a registry: Docker Hub for a plain name (ubuntu, "
                                    "bitnami/redis) -- through the mirrors of registries.toml first, if any --, "
                                    "or the registry a name starts with (127.0.0.1:5000/team/app; loopback "
                                    "registries and those registries.toml calls insecure over plain HTTP, others "
                                    "HTTPS), with the credentials `login` stored. By tag or by digest "
                                    "(NAME@sha256:...). The image for this machine's platform is picked from a "
                                    "multi-platform one; every layer is checked against its digest; layers "
                                    "already here are not fetched again. Offline? `save` images on a machine "
                                    "with a network and `load` them here.")
    pl.add_argument("-q", "--quiet", action="store_true", help="print only the image's name")
    pl.add_argument("image", metavar="NAME[:TAG|@DIGEST]", help="the image, e.g. ubuntu:24.04")
    pl.set_defaults(func=cmd_pull)


def _add_load(sub, help_text: str) -> None:
    ld = sub.add_parser("load", help=help_text,
                        description="Load images from a tar archive (a `docker save` archive or an OCI image "
                                    "layout; gzip, bzip2 or xz compressed too), from a file or standard input. "
                                    "Every layer is checked against its digest and unpacked safely; an image "
                                    "that fails a check is not stored at all. No network needed: the way to "
                                    "bring images into an offline classroom.")
    ld.add_argument("-i", "--input", metavar="FILE", help="read from FILE instead of standard input")
    ld.add_argument("-q", "--quiet", action="store_true", help="no progress, only the names loaded")
    ld.set_defaults(func=cmd_load)


def _add_save(sub, help_text: str) -> None:
    sv = sub.add_parser("save", help=help_text,
                        description="Write one or more images to a tar archive (standard output unless -o): "
                                    "one archive that both `docker load` and OCI tools (skopeo, umoci) read, "
                                    "holding the stored layers as they are, so loading it elsewhere gives the "
                                    "same image id and digest.")
    sv.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    sv.add_argument("images", nargs="+", metavar="IMAGE", help="image name[:tag], name@digest or image id")
    sv.set_defaults(func=cmd_save)


def _add_history(sub, help_text: str) -> None:
    hi = sub.add_parser("history", help=help_text,
                        description="Show how an image was made, newest step first: one row per entry of its "
                                    "config's history; SIZE is the layer a step added (0B: it changed no file).")
    hi.add_argument("--no-trunc", action="store_true", help="do not shorten the output")
    hi.add_argument("-q", "--quiet", action="store_true", help="only print image ids")
    hi.add_argument("--format", choices=["table", "json"], default="table",
                    help="table (default) or json: one JSON object per line")
    hi.add_argument("image", metavar="IMAGE")
    hi.set_defaults(func=cmd_history)


def _add_layers(sub, help_text: str) -> None:
    la = sub.add_parser("layers", help=help_text,
                        description="Show an image's layers, top first (as `history`): for each build step the "
                                    "layer it made -- its size and what it changed against the layers below: "
                                    "A added, C changed (the whole file copied up), D deleted (a whiteout: the "
                                    "file below stays, hidden). Steps that changed no file (ENV, CMD ...) have "
                                    "no layer. With -c, NAME is a container: its image's layers and its own "
                                    "writable layer on top (what `diff` lists).")
    la.add_argument("-c", "--container", action="store_true",
                    help="NAME is a container: show its writable layer on top of its image's")
    la.add_argument("--files", action="store_true",
                    help=f"list every changed path (else at most {_FILES_SHOWN} per layer)")
    la.add_argument("--no-trunc", action="store_true", help="do not shorten the instructions")
    la.add_argument("--format", choices=["table", "json"], default="table",
                    help="table (default) or json: one JSON object per step, top first (its index: 0 is the "
                         "bottom layer; the table numbers them from 1)")
    la.add_argument("name", metavar="NAME", help="an image (name[:tag], name@digest or id), or a container with -c")
    la.set_defaults(func=cmd_layers)


def _add_image_inspect(sub, help_text: str) -> None:
    ii = sub.add_parser("inspect", help=help_text,
                        description="Print the record of one or more images as JSON, with Docker's field names: "
                                    "Id (the config's digest), RepoTags, RepoDigests (the manifest's digest), "
                                    "Created, Architecture, Os, Config (command, environment ...), "
                                    "RootFS.Layers (each layer's diff_id), Size, and the layer directories "
                                    "that overlayfs stacks (GraphDriver).")
    ii.add_argument("-f", "--format", metavar="TEMPLATE",
                    help="print one field per image: {{.Id}}, {{.Config.Cmd}}, {{json .RootFS}} ...")
    ii.add_argument("images", nargs="+", metavar="IMAGE", help="image name[:tag], name@digest or image id")
    ii.set_defaults(func=cmd_image_inspect)


def _add_image(sub, help_text: str) -> None:
    im = sub.add_parser("image", help=help_text, description="Manage images.")
    imsub = im.add_subparsers(dest="image_verb", metavar="VERB", parser_class=_Parser, required=True)
    _add_image_inspect(imsub, "show an image's record as JSON")
    _add_images(imsub, "list images", name="ls", aliases=("list",))
    _add_history(imsub, "show how an image was made")
    _add_layers(imsub, "show an image's layers and what each changed (A/C/D)")
    _add_load(imsub, "load images from a tar archive")
    _add_save(imsub, "save images to a tar archive")
    _add_pull(imsub, "download an image from a registry")
    from .share import _add_import, _add_push, _add_tag

    _add_push(imsub, "upload an image to a registry")
    _add_tag(imsub, "give an image another name")
    _add_import(imsub, "make a one-layer image of a tar archive")
    _add_rmi(imsub, "remove images", name="rm")
    pr = imsub.add_parser("prune", help="remove unused images",
                          description="Remove the dangling images (<none> <none>: built without a name, or "
                                      "left when their tag moved to a newer image) that no container uses, and "
                                      "the layers and blobs nothing needs any more; with -a, every image that "
                                      "no container uses. An image a container uses is never removed.")
    pr.add_argument("-a", "--all", action="store_true", help="remove every image no container uses")
    pr.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    pr.set_defaults(func=cmd_image_prune)


def cmd_images(args, client) -> int:
    dangling = None
    for item in args.filter:
        key, eq, value = item.partition("=")
        if key.strip().lower() != "dangling" or not eq:
            raise errors.InvalidArgument(f"invalid filter {item!r}: only dangling=true|false is understood here")
        if value.strip().lower() not in ("true", "false", "1", "0"):
            raise errors.InvalidArgument(f"invalid filter 'dangling={value}': use true or false")
        dangling = value.strip().lower() in ("true", "1")
    store = _image_store()
    store.ensure_lab()
    images = [im for im in store.list() if dangling is None or im.ref.startswith(UNTAGGED) == dangling]
    if args.quiet:
        for im in images:
            print(im.id.split(":", 1)[1][:12])
        return 0
    rows = [("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE")]
    for im in images:
        repo, _, tag = (im.ref.partition("@")[0], "", "<none>") if "@" in im.ref else im.ref.rpartition(":")
        rows.append((repo, tag, im.id.split(":", 1)[1][:12], im.created[:19].replace("T", " "), _human(im.size)))
    _table(rows)
    return 0


UNTAGGED = "<none>@"            # engine.images.store.names.UNTAGGED, without importing the store here


def _report_removed(results: list[dict], *, pruned: bool = False) -> int:
    """docker's lines for what ``rmi`` ("Untagged: ...", "Deleted: ...") or
    ``image prune`` (the same, lower case) removed; 1 if any part failed."""
    code = 0
    for r in results:
        if "error" in r:
            print(f"{PROG}: {r['error']}", file=sys.stderr)
            code = 1
            continue
        for word, items in (("Untagged", r["untagged"]), ("Deleted", r["deleted"])):
            for item in items:
                print(f"{word.lower() if pruned else word}: {item}")
    return code


def _image_store():
    """The image store, this process in the engine's user namespace first
    when rootless (so layers keep the owners their images name)."""
    from .. import paths
    from ..client import Client
    from ..images import ImageStore

    Client().enter_userns()
    return ImageStore(paths.ensure_private_dir(paths.data_dir()) / "images")


def _docker_exit(func):
    """Image verbs fail the way docker's do: the one-line error, exit status 1."""
    import functools

    @functools.wraps(func)
    def wrapper(args, client) -> int:
        try:
            return func(args, client)
        except errors.EngineError as e:
            print(f"{PROG}: {e}", file=sys.stderr)
            return 1
    return wrapper


class _Progress:
    """One line of progress on stderr, rewritten in place -- only when stderr is a terminal."""

    def __init__(self, quiet: bool):
        self.on = not quiet and sys.stderr.isatty()
        self.shown = False

    def __call__(self, text: str) -> None:
        if self.on:
            try:
                width = (os.get_terminal_size(2).columns or 80) - 1
            except OSError:
                width = 79
            sys.stderr.write("\r" + text[:width] + "\x1b[K")
            sys.stderr.flush()
            self.shown = True

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self.shown = False


@_docker_exit
def cmd_load(args, client) -> int:
    from ..images import archive
    from ..images.reference import DIGEST_RE

    if args.input is None and sys.stdin.isatty():
        raise errors.InvalidArgument("requested load from stdin, but stdin is empty "
                                     "(give a file with -i, or redirect one: container-lab load < FILE)")
    progress = _Progress(args.quiet)
    warnings: list[str] = []
    try:
        names = archive.load(_image_store(), args.input if args.input is not None else sys.stdin.buffer,
                             progress=progress, warn=warnings.append)
    finally:
        progress.done()
    _warn(warnings)
    for name in names:       # an image the archive names not: by its id, as docker says it
        print(f"Loaded image ID: {name}" if DIGEST_RE.fullmatch(name) else f"Loaded image: {name}")
    return 0


def cmd_rmi(args, client) -> int:
    # The supervisor decides what is in use and deletes, in one step: it
    # knows the containers being started right now, which `ps` here would not.
    return _report_removed(client.call("rmi", images=args.images, force=args.force)["results"])


@_docker_exit
def cmd_image_prune(args, client) -> int:
    what = "all images without at least one container associated to them" if args.all else \
        "all dangling images"
    if not args.force:
        if not sys.stdin.isatty():
            raise errors.InvalidArgument(f"image prune would remove {what}: add -f to do so without being asked")
        answer = input(f"WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return 0
    reply = client.call("rmi", prune=True, all=args.all)
    results = reply["results"]
    if any(r.get("untagged") or r.get("deleted") for r in results):
        print("Deleted Images:")
        code = _report_removed(results, pruned=True)
        print()
    else:
        code = _report_removed(results)
    print(f"Total reclaimed space: {_human(reply['freed'])}")
    return code


@_docker_exit
def cmd_pull(args, client) -> int:
    from ..images.reference import parse_reference

    ref = str(parse_reference(args.image))
    pulled = pull_reporting(_image_store(), ref, out=sys.stdout, quiet=args.quiet)
    client.image_event("pull", pulled["ref"], image_id=pulled["id"], digest=pulled["digest"])
    print(pulled["ref"])
    return 0


def pull_for_run(ref: str, policy: str) -> None:
    """``run``/``create``'s image, pulled first if ``policy`` says so, docker's lines on stderr."""
    from ..images.pull import Report, ensure_image

    progress = _Progress(False)
    report = Report(ref, lambda text: print(text, file=sys.stderr, flush=True), progress, done=progress.done)
    try:
        ensure_image(_image_store(), ref, policy, report)
    finally:
        progress.done()


def pull_reporting(store, ref: str, *, out, quiet: bool = False, announce: str | None = None) -> dict:
    """Pull ``ref`` into ``store`` saying docker's lines on ``out`` (stdout for
    ``pull``, stderr for ``run``), the bytes of a download in place on a
    terminal's stderr; returns what :func:`engine.images.pull.pull` returns."""
    from ..images.pull import Report, pull

    try:
        before = store.resolve(ref).digest
    except errors.ImageError:
        before = None
    progress = _Progress(quiet)
    report = Report(ref, lambda text: print(text, file=out, flush=True), progress, quiet=quiet, done=progress.done)
    report.announce = announce
    try:
        result = pull(store, ref, report)
    finally:
        progress.done()
    report.finish(result, fresh=result["new"] or before != result["digest"])
    return result


@_docker_exit
def cmd_save(args, client) -> int:
    from ..images import archive

    store = _image_store()
    if args.output:
        archive.save_to_file(store, args.images, args.output)
        client.image_event("save", args.images[0], names=args.images[:32])
        return 0
    if sys.stdout.isatty():
        raise errors.InvalidArgument("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    sys.stdout.flush()
    try:
        archive.save(store, args.images, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        client.image_event("save", args.images[0], names=args.images[:32])
    except BrokenPipeError:
        raise
    except OSError as e:
        raise errors.ImageError(f"cannot write the archive to standard output: {e.strerror or e}") from None
    return 0


@_docker_exit
def cmd_image_inspect(args, client) -> int:
    from ..images.describe import inspect_record

    store = _image_store()
    out, code = [], 0
    for name in args.images:
        try:
            out.append(inspect_record(store, store.find(name)))
        except errors.EngineError as e:
            print(f"{PROG}: {e}", file=sys.stderr)
            code = 1
    if args.format:
        for record in out:
            print(_template(args.format, record))
    else:
        print(json.dumps(out, indent=4))
    return code


def _template(template: str, record: dict) -> str:
    """The small part of Go templates that ``inspect -f`` needs: ``{{.A.B}}`` and ``{{json .A}}``."""
    import re

    def field(m) -> str:
        as_json, path = m[1], m[2]
        value = record
        for key in filter(None, path.split(".")):
            if not isinstance(value, dict) or key not in value:
                raise errors.InvalidArgument(f"template: no field {path!r} in an image record")
            value = value[key]
        if as_json:
            return json.dumps(value)
        if isinstance(value, list):
            return "[" + " ".join(str(v) for v in value) + "]"
        if isinstance(value, dict):
            return "map[" + " ".join(f"{k}:{v}" for k, v in value.items()) + "]"
        return str(value)
    result, n = re.subn(r"\{\{\s*(json\s+)?(\.[A-Za-z0-9_.]*)\s*\}\}", field, template)
    if "{{" in result:
        raise errors.InvalidArgument(f"template: cannot read {template!r} (only {{{{.Field}}}} and "
                                     "{{json .Field}} are understood)")
    return result


@_docker_exit
def cmd_history(args, client) -> int:
    from ..images.describe import history, since

    store = _image_store()
    image = store.find(args.image)
    rows = history(store, image)
    short = (lambda i: i) if args.no_trunc else (lambda i: i if i == "<missing>" else i.split(":", 1)[1][:12])
    if args.quiet:
        for row in rows:
            print(short(row["ID"]))
        return 0
    if args.format == "json":
        for row in rows:
            print(json.dumps({"Comment": row["Comment"], "CreatedAt": row["CreatedAt"],
                              "CreatedBy": row["CreatedBy"], "CreatedSince": since(row["CreatedAt"]),
                              "ID": short(row["ID"]), "Size": _human(row["Size"])}))
        return 0
    table = [("IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT")]
    for row in rows:
        created_by = " ".join(row["CreatedBy"].split()) if not args.no_trunc else row["CreatedBy"]
        if not args.no_trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        table.append((short(row["ID"]), since(row["CreatedAt"]) or row["CreatedAt"], created_by,
                      _human(row["Size"]), row["Comment"]))
    _table(table)
    return 0



_FILES_SHOWN = 10          # paths listed per layer without --files
_ORDER = {"D": 0, "C": 1, "A": 2}


@_docker_exit
def cmd_layers(args, client) -> int:
    from ..images.layers import counts, image_layers

    if args.container:
        layers = client.layers(args.name)
    else:
        store = _image_store()
        layers = image_layers(store, store.find(args.name))
    layers = list(reversed(layers))                 # top first, as history
    if args.format == "json":
        for layer in layers:
            print(json.dumps({**{k: v for k, v in layer.items() if k != "changes"},
                              "counts": counts(layer),
                              "changes": [{"kind": k, "path": p} for k, p in layer["changes"]]}))
        return 0
    table = [("LAYER", "SIZE", "CHANGES", "CREATED BY")]
    listed: list[list[str]] = []
    for layer in layers:
        n = counts(layer)
        created_by = layer["created_by"]
        if not args.no_trunc:
            created_by = " ".join(created_by.split())
            if len(created_by) > 60:
                created_by = created_by[:59] + "…"
        if layer["empty"]:
            table.append(("-", "0B", "", created_by))
        else:
            name = "writable" if layer["id"] == "writable" else f"#{layer['index'] + 1}"   # 1: the bottom
            table.append((name, _human(layer["size"]), f"+{n['A']} ~{n['C']} -{n['D']}",
                          created_by or ("(this container's changes)" if name == "writable" else "")))
        listed.append(_paths_shown(layer, every=args.files))
    widths = [max(len(r[i]) for r in table) for i in range(3)]
    def line(row) -> str:
        return "   ".join(v.ljust(w) for v, w in zip(row[:3], widths)) + "   " + row[3]
    print(line(table[0]).rstrip())
    for row, paths in zip(table[1:], listed):
        print(line(row).rstrip())
        for text in paths:
            print(f"    {text}")
    return 0


def _paths_shown(layer: dict, *, every: bool) -> list[str]:
    """The lines under a layer's row: its changes (``D /etc/passwd``), at most
    :data:`_FILES_SHOWN` unless ``every`` -- whiteouts first, they are what a
    layer hides -- and how many more there are."""
    changes = layer["changes"]
    opaque = set(layer["opaque"])
    if not every and len(changes) > _FILES_SHOWN:
        first = sorted(changes, key=lambda c: (_ORDER[c[0]], c[1]))[:_FILES_SHOWN]
        picked = set(first)
        changes = [c for c in changes if c in picked]
        more = len(layer["changes"]) - len(changes)
    else:
        more = 0
    out = [f"{k} {p}" + ("   (opaque: hides what is below)" if p in opaque else "") for k, p in changes]
    if more:
        out.append(f"… and {more} more (--files lists them all)")
    return out
