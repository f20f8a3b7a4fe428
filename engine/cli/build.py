"""The verbs that make images: ``build`` (from a Dockerfile and a context)
and ``commit`` (from a container's writable layer). The work is
:mod:`engine.images.build`'s; here are the flags and what is printed. They
fail the way docker's do: one line, exit status 1."""

from __future__ import annotations

import sys

from .. import errors
from . import PROG


def _add_build(sub, help_text: str) -> None:
    b = sub.add_parser("build", help=help_text,
                       description="Build an image from a Dockerfile and a context directory: FROM (an image, "
                                   "scratch, or an earlier stage: FROM ... AS name), RUN (in a real container, "
                                   "confined as `run` confines one), COPY and ADD (from the context, or "
                                   "--from=STAGE|IMAGE; ADD unpacks a local tar archive; no URLs), ENV, ARG, "
                                   "WORKDIR, USER, CMD, ENTRYPOINT, EXPOSE, LABEL, SHELL, VOLUME, STOPSIGNAL. "
                                   "Each RUN, COPY and ADD adds a layer; .dockerignore leaves files out of the "
                                   "context. Steps are cached: an unchanged step is not run again (--no-cache "
                                   "runs them all). Without -t the image has no name (<none> in `images`): use it "
                                   "by its id. A tag that named an older image moves to the new one; the old "
                                   "one stays as <none> (a cache for later builds) until `image prune`.")
    b.add_argument("-t", "--tag", action="append", default=[], metavar="NAME[:TAG]",
                   help="name the image (may be given more than once)")
    b.add_argument("-f", "--file", metavar="PATH", help="the Dockerfile (default: CONTEXT/Dockerfile; - reads "
                                                       "standard input)")
    b.add_argument("--build-arg", action="append", default=[], metavar="NAME=VALUE",
                   help="set a build argument an ARG declares")
    b.add_argument("--no-cache", action="store_true", help="run every step again, the cache unused")
    b.add_argument("--target", metavar="STAGE", help="build up to this stage (FROM ... AS STAGE)")
    b.add_argument("-q", "--quiet", action="store_true", help="print only the image id")
    b.add_argument("--progress", default="plain", choices=["auto", "plain", "tty", "quiet"],
                   help="how progress is shown: plain (BuildKit's plain text; auto and tty are the same "
                        "here) or quiet")
    b.add_argument("--network", default="bridge", metavar="NETWORK",
                   help="the network RUN containers join (bridge, none, host or a network's name)")
    b.add_argument("context", metavar="CONTEXT",
                   help="the build context: a directory; - reads a Dockerfile from standard input, with an "
                        "empty context (as `docker build - < Dockerfile`)")
    b.set_defaults(func=cmd_build)


def _add_commit(sub, help_text: str) -> None:
    c = sub.add_parser("commit", help=help_text,
                       description="Make a new image of a container's changes: its writable layer becomes the "
                                   "image's top layer (deleted files as whiteouts), over the container's image; "
                                   "what the container was run with (-e, its command, -w, -u) becomes the new "
                                   "image's settings. A running container is paused while its layer is read. "
                                   "Without a name the image has none (<none> in `images`): use it by its id.")
    c.add_argument("-a", "--author", default="", metavar="AUTHOR", help="the image's author")
    c.add_argument("-m", "--message", default="", metavar="MESSAGE", help="a comment in its history")
    c.add_argument("-c", "--change", action="append", default=[], metavar="INSTRUCTION",
                   help="apply a Dockerfile instruction: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, "
                        "WORKDIR or STOPSIGNAL")
    c.add_argument("-p", "--pause", default="true", choices=["true", "false"], metavar="true|false",
                   help="pause a running container while its layer is read (default true)")
    c.add_argument("container", metavar="CONTAINER")
    c.add_argument("name", nargs="?", metavar="REPOSITORY[:TAG]")
    c.set_defaults(func=cmd_commit)


def _fail(e: errors.EngineError) -> int:
    print(f"{PROG}: {e}", file=sys.stderr)
    return 1


def cmd_build(args, client) -> int:
    from ..images.build import Options, parse_build_args

    try:
        options = Options(tags=args.tag, dockerfile=args.file, build_args=parse_build_args(args.build_arg),
                          no_cache=args.no_cache, target=args.target, quiet=args.quiet or args.progress == "quiet",
                          network=args.network)
        if args.context == "-":
            result = _build_from_stdin(client, options)
        else:
            result = client.build(args.context, options)
    except errors.EngineError as e:
        return _fail(e)
    for line in result.warnings:
        print(f"WARNING: {line}", file=sys.stderr)
    client.image_event("build", result.names[0], names=result.names, image_id=result.id, steps=result.steps,
                       cached=result.cached, dockerfile=result.dockerfile)
    if options.quiet:
        print(result.id)
    return 0


STDIN_LIMIT = 1 << 20       # a Dockerfile, not a context


def _build_from_stdin(client, options):
    """``build -``: the Dockerfile read from standard input, alone in a
    context of its own (a temp dir, removed after)."""
    import shutil
    import tempfile

    text = sys.stdin.buffer.read(STDIN_LIMIT + 1)
    if len(text) > STDIN_LIMIT:
        raise errors.InvalidArgument(f"the Dockerfile on standard input is over {STDIN_LIMIT >> 20} MiB")
    if not text.strip():
        raise errors.InvalidArgument("no Dockerfile on standard input (build - < Dockerfile)")
    context = tempfile.mkdtemp(prefix="container-lab-build-")
    try:
        with open(f"{context}/Dockerfile", "wb") as f:
            f.write(text)
        options.dockerfile = None
        return client.build(context, options)
    finally:
        shutil.rmtree(context, ignore_errors=True)


def cmd_commit(args, client) -> int:
    try:
        result = client.commit(args.container, args.name, pause=args.pause == "true", message=args.message,
                               author=args.author, changes=args.change)
    except errors.EngineError as e:
        return _fail(e)
    for line in result.warnings:
        print(f"WARNING: {line}", file=sys.stderr)
    print(result.id)
    return 0
