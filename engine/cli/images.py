"""The image verbs: images, image (ls, inspect, history, load, save, pull, rm,
prune), history, pull, rmi, load, save. They fail the way docker's do: one
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
    im = sub.add_parser(name, aliases=list(aliases), help=help_text, description="List the images in the local store.")
    im.add_argument("-q", "--quiet", action="store_true", help="only print image ids")
    im.set_defaults(func=cmd_images)


def _add_rmi(sub, help_text: str, name: str = "rmi") -> None:
    rm = sub.add_parser(name, help=help_text,
                        description="Remove images (their tags; then the layers no other image and no container "
                                    "needs). An image a container uses is kept unless -f: then only its tag goes, "
                                    "and the layers stay for the container.")
    rm.add_argument("-f", "--force", action="store_true", help="untag even when a container uses the image")
    rm.add_argument("images", nargs="+", metavar="IMAGE")
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
    _add_load(imsub, "load images from a tar archive")
    _add_save(imsub, "save images to a tar archive")
    _add_pull(imsub, "download an image from a registry")
    from .share import _add_import, _add_push, _add_tag

    _add_push(imsub, "upload an image to a registry")
    _add_tag(imsub, "give an image another name")
    _add_import(imsub, "make a one-layer image of a tar archive")
    _add_rmi(imsub, "remove images", name="rm")
    pr = imsub.add_parser("prune", help="remove unused images",
                          description="Remove the layers and blobs that no image and no container needs (left "
                                      "by `rmi -f` of an image a container was using); with -a, also every "
                                      "image that no container uses.")
    pr.add_argument("-a", "--all", action="store_true", help="remove every image no container uses")
    pr.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")
    pr.set_defaults(func=cmd_image_prune)


def cmd_images(args, client) -> int:
    store = _image_store()
    store.ensure_lab()
    images = store.list()
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


def _image_store():
    from .. import paths
    from ..images import ImageStore

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
    for name in names:
        print(f"Loaded image: {name}")
    return 0


def cmd_rmi(args, client) -> int:
    # The supervisor decides what is in use and deletes, in one step: it
    # knows the containers being started right now, which `ps` here would not.
    results = client.call("rmi", images=args.images, force=args.force)["results"]
    code = 0
    for r in results:
        if "error" in r:
            print(f"{PROG}: {r['error']}", file=sys.stderr)
            code = 1
        else:
            print(f"Untagged: {r['untagged']}")
    return code


@_docker_exit
def cmd_image_prune(args, client) -> int:
    what = "all images without at least one container associated to them" if args.all else \
        "all dangling images (layers no image and no container needs)"
    if not args.force:
        if not sys.stdin.isatty():
            raise errors.InvalidArgument(f"image prune would remove {what}: add -f to do so without being asked")
        answer = input(f"WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return 0
    reply = client.call("rmi", prune=True, all=args.all)
    for r in reply["results"]:
        if "error" in r:
            print(f"{PROG}: {r['error']}", file=sys.stderr)
        else:
            print(f"Untagged: {r['untagged']}")
    print(f"Total reclaimed space: {_human(reply['freed'])}")
    return 0


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

