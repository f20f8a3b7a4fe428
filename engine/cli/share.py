"""The verbs that share images: ``login``, ``logout``, ``tag``, ``push``,
``export`` and ``import`` (and ``image tag|push|import``).

They fail as docker's image verbs do: one line on stderr, exit status 1.
The work is in :mod:`engine.images` -- :mod:`.auth` and :mod:`.config`
(credentials, registries.toml), :mod:`.push`, :mod:`.export`; these only
read the command line and print docker's lines.
"""

from __future__ import annotations

import sys

from .. import errors
from . import PROG
from .images import _docker_exit, _image_store, _Progress
from .output import _warn


def _add_login(sub, help_text: str) -> None:
    lg = sub.add_parser("login", help=help_text,
                        description="Log in to a registry (Docker Hub when no SERVER is given): the user name "
                                    "and password are checked against it, then kept in "
                                    "~/.config/container-lab/auth.json (mode 0600; docker's config.json "
                                    "format) for pull and push to send.")
    lg.add_argument("-u", "--username", metavar="USER", help="the user name (asked for when not given)")
    lg.add_argument("-p", "--password", metavar="PASSWORD",
                    help="the password (insecure: it shows in the process list and history; "
                         "use --password-stdin)")
    lg.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    lg.add_argument("server", nargs="?", metavar="SERVER", help="the registry, e.g. 127.0.0.1:5000")
    lg.set_defaults(func=cmd_login)


def _add_logout(sub, help_text: str) -> None:
    lo = sub.add_parser("logout", help=help_text,
                        description="Forget the credentials kept for a registry (Docker Hub when no SERVER is given).")
    lo.add_argument("server", nargs="?", metavar="SERVER")
    lo.set_defaults(func=cmd_logout)


def _add_tag(sub, help_text: str) -> None:
    tg = sub.add_parser("tag", help=help_text,
                        description="Give an image another name: TARGET names the same image as SOURCE (no "
                                    "copy is made). A name that starts with a registry (127.0.0.1:5000/team/app) "
                                    "is where `push` sends it. A name that named another image moves; that "
                                    "image stays, as <none> if no other name is left to it (image prune "
                                    "removes it).")
    tg.add_argument("source", metavar="SOURCE[:TAG]", help="the image: a name, name@digest or image id")
    tg.add_argument("target", metavar="TARGET[:TAG]", help="its new name")
    tg.set_defaults(func=cmd_tag)


def _add_push(sub, help_text: str) -> None:
    pu = sub.add_parser("push", help=help_text,
                        description="Upload an image to the registry its name starts with (Docker Hub for a "
                                    "plain name): the layers the repository lacks (one the registry holds in "
                                    "another repository is mounted, not sent), the config, then the manifest "
                                    "under the tag. Blobs go as they are stored, so the digest printed is the "
                                    "image's own. Pushing again after an interruption sends only what is "
                                    "missing: a big layer sent in chunks (CONTAINER_LAB_PUSH_CHUNK bytes, "
                                    "16 MiB by default) goes on from the last chunk the registry took. Uses the "
                                    "credentials `login` kept.")
    pu.add_argument("-q", "--quiet", action="store_true", help="print only the digest line")
    pu.add_argument("image", metavar="NAME[:TAG]", help="the image, e.g. 127.0.0.1:5000/team/app:v1")
    pu.set_defaults(func=cmd_push)


def _add_export(sub, help_text: str) -> None:
    ex = sub.add_parser("export", help=help_text,
                        description="Write a container's file system (its image with its changes) as a tar "
                                    "archive, to standard output unless -o. What is mounted inside (/proc, "
                                    "volumes ...) is not part of it. `import` makes an image of it again.")
    ex.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    ex.add_argument("container", metavar="CONTAINER")
    ex.set_defaults(func=cmd_export)


def _add_import(sub, help_text: str) -> None:
    im = sub.add_parser("import", help=help_text,
                        description="Make a one-layer image of a tar archive (plain, gzip, bzip2 or xz) -- "
                                    "a file, or - for standard input -- such as `export` writes. Its entries "
                                    "are checked as those of `load` (nothing outside the image, no write "
                                    "through a link). Without a NAME the image has none (<none> in `images`): "
                                    "use it by its id, or `tag` it.")
    im.add_argument("-m", "--message", default="", help="a comment for the image's history")
    im.add_argument("file", metavar="FILE|-")
    im.add_argument("name", nargs="?", metavar="NAME[:TAG]")
    im.set_defaults(func=cmd_import)


@_docker_exit
def cmd_login(args, client) -> int:
    from ..images import auth
    from ..images.pull import registry_for
    from ..images.registry import DOCKER_HUB

    server = auth.server_key(args.server or DOCKER_HUB)
    user = args.username
    interactive = sys.stdin.isatty()
    if args.password is not None and args.password_stdin:
        raise errors.InvalidArgument("--password and --password-stdin are mutually exclusive")
    if args.password_stdin:
        if not user:
            raise errors.InvalidArgument("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    elif args.password is not None:
        print("WARNING! Using --password via the CLI is insecure. Use --password-stdin.", file=sys.stderr)
        password = args.password
    else:
        if not interactive:
            raise errors.InvalidArgument("Cannot perform an interactive login from a non TTY device")
        import getpass

        if not user:
            user = input("Username: ").strip()
        password = getpass.getpass("Password: ")
    if not user:
        raise errors.InvalidArgument("a user name is needed (-u USER)")
    if not password:
        raise errors.InvalidArgument("a password is needed")
    reg = registry_for(server)
    reg.credentials = (user, password)
    reg.check_login()
    path = auth.store(server, user, password)
    print(f"WARNING! Your password will be stored unencrypted in {path} (readable by you alone).", file=sys.stderr)
    print("Login Succeeded")
    return 0


@_docker_exit
def cmd_logout(args, client) -> int:
    from ..images import auth
    from ..images.registry import DOCKER_HUB

    server = auth.server_key(args.server or DOCKER_HUB)
    if auth.erase(server):
        print(f"Removing login credentials for {server}")
    else:
        print(f"Not logged in to {server}")
    return 0


@_docker_exit
def cmd_tag(args, client) -> int:
    _image_store().tag(args.source, args.target)
    return 0


@_docker_exit
def cmd_push(args, client) -> int:
    from ..images.push import push
    from ..images.reference import parse_reference
    from ..spec import human_size

    ref = str(parse_reference(args.image))
    progress = _Progress(args.quiet)
    shown: set[str] = set()

    def say(text: str) -> None:
        progress.done()
        if not args.quiet:
            print(text, flush=True)

    def report(event: dict) -> None:
        short = event.get("digest", "").removeprefix("sha256:")[:12]
        kind = event["event"]
        if kind == "repository":
            say(f"The push refers to repository [{event['name']}]")
        elif event.get("kind") == "config" or short in shown:
            return
        elif kind == "pushing":
            progress(f"{short}: Pushing {human_size(event['bytes'])}/{human_size(event['size'])}")
        elif kind == "resuming":
            say(f"{short}: Resuming upload at {human_size(event['bytes'])}/{human_size(event['size'])}")
        elif kind == "restarting":
            say(f"{short}: The registry no longer has the unfinished upload: starting it again")
        elif kind in ("exists", "mounted", "pushed"):
            shown.add(short)
            say(f"{short}: " + {"exists": "Layer already exists", "pushed": "Pushed",
                                "mounted": f"Mounted from {event.get('from')}"}[kind])

    try:
        result = push(_image_store(), ref, report)
    finally:
        progress.done()
    client.image_event("push", result["ref"], digest=result["digest"])
    print(f"{result['tag']}: digest: {result['digest']} size: {result['size']}")
    return 0


@_docker_exit
def cmd_export(args, client) -> int:
    from ..images.export import export_container

    record = client.inspect(args.container)
    if args.output:
        _export_to_file(record, args.output)
        return 0
    if sys.stdout.isatty():
        raise errors.InvalidArgument("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    sys.stdout.flush()
    try:
        export_container(record, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        raise
    except OSError as e:
        raise errors.ContainerError(f"cannot write the archive to standard output: {e.strerror or e}") from None
    return 0


def _export_to_file(record: dict, output: str) -> None:
    """The archive into ``output`` through a temp file renamed into place."""
    from ..images.export import export_container
    from ..records import atomic_file

    try:
        with atomic_file(output) as f:
            export_container(record, f)
    except BrokenPipeError:
        raise
    except OSError as e:
        raise errors.ContainerError(f"cannot write {output}: {e.strerror or e}") from None


@_docker_exit
def cmd_import(args, client) -> int:
    from ..images.export import import_tar

    if args.file == "-":
        if sys.stdin.isatty():
            raise errors.InvalidArgument("requested import from stdin, but stdin is a terminal "
                                         f"(redirect an archive: {PROG} import - NAME < FILE)")
        source = sys.stdin.buffer
    else:
        source = args.file
    warnings: list[str] = []
    store = _image_store()
    image = import_tar(store, source, args.name, message=args.message, warn=warnings.append)
    _warn(warnings)
    print(image.id)
    return 0
