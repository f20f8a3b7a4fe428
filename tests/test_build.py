"""`build` and `commit`: images made here, from a Dockerfile and a context or
from a container's changes -- built for real (RUN steps in containers of
ours), then looked at from outside: the image's config and history, its
files in a container, its layer tars, the build cache, and what skopeo and
umoci make of a saved one. The parser, expansion and .dockerignore rules
are checked on their own first (no root needed)."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from engine.images.build import parse_build_args
from engine.images.build.dockerfile import DockerfileError, parse, stages
from engine.images.build.ignore import Ignore
from engine.images.build.words import WordError, expand, split_words

from conftest import ROOT, cl, needs_root, overlay_mounts
from registry_support import RegistryServer

STORE = ROOT / "lib" / "images"


# -- the Dockerfile, words and .dockerignore on their own ------------------------------------------

def test_parser_joins_continuations_drops_comments_and_reads_directives():
    df = parse("# syntax=docker/dockerfile:1\n# escape=`\n\nFROM lab AS Build\n"
               "RUN echo a `\n  # a comment inside\n   b\ncopy --chown=1:2 --from=x a b\n"
               'CMD ["sh", "-c", "echo hi"]\nENTRYPOINT echo [not json\n')
    assert df.escape == "`" and len(df.notes) == 1 and "syntax" in df.notes[0]
    kinds = [(i.line, i.keyword) for i in df.instructions]
    assert kinds == [(4, "FROM"), (5, "RUN"), (8, "COPY"), (9, "CMD"), (10, "ENTRYPOINT")]
    assert df.instructions[1].rest == "echo a    b"
    assert df.instructions[2].flags == {"chown": "1:2", "from": "x"} and df.instructions[2].rest == "a b"
    assert df.instructions[3].json_form() == ["sh", "-c", "echo hi"]
    assert df.instructions[4].json_form() is None
    global_args, st = stages(df)
    assert global_args == [] and st[0].name == "build" and st[0].base == "lab"


@pytest.mark.parametrize("text, message", [
    ("FROM lab\nFROB x\n", "Dockerfile:2: unknown instruction: FROB"),
    ("RUN true\nFROM lab\n", "Dockerfile:1: RUN before FROM"),
    ("FROM lab\nCOPY --link a b\n", "Dockerfile:2: COPY --link is not supported"),
    ("FROM lab\nONBUILD RUN x\n", "Dockerfile:2: ONBUILD is not supported"),
    ("# escape=x\nFROM lab\n", "Dockerfile:1: invalid escape token"),
    ("FROM lab AS a\nFROM lab AS a\n", "Dockerfile:2: duplicate name for build stage"),
    ("\n# only a comment\n", "the Dockerfile is empty"),
    ("FROM lab\nRUN <<EOF\necho hi\nEOF\n", "Dockerfile:2: RUN with a here-document (<<EOF) is not supported"),
])
def test_parser_errors_name_the_line(text, message):
    with pytest.raises(DockerfileError) as e:
        stages(parse(text))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_words_expand_as_docker_does():
    env = {"A": "x", "E": "", "SP": "a b"}
    assert expand("$A-${A}_${B:-def}${E:-empty}${E-set}${A:+alt}${B+no}", env) == "x-x_defemptyalt"
    assert expand("'$A' \"$A\\$A\" \\$A", env) == "$A x$A $A"
    assert expand("${SP}", env) == "a b"
    with pytest.raises(WordError):
        expand("${B:?is required}", env)
    with pytest.raises(WordError):
        expand('"open', env)
    assert split_words('a=1 b="two words" c=\'x y\' d=e\\ f') == ["a=1", 'b="two words"', "c='x y'", "d=e\\ f"]
    assert parse_build_args(["A=1", "B", "C"], {"B": "from-env"}) == {"A": "1", "B": "from-env"}


@pytest.mark.parametrize("patterns, path, excluded", [
    (["*.md"], "README.md", True), (["*.md"], "docs/x.md", False), (["**/*.md"], "docs/x.md", True),
    (["**/*.md"], "x.md", True), (["docs"], "docs/deep/x", True), (["/docs/"], "docs/a", True),
    (["*", "!keep"], "keep", False), (["*", "!keep"], "other", True), (["docs", "!docs/keep.txt"], "docs/keep.txt",
                                                                       False),
    (["a/**/b"], "a/b", True), (["a/**/b"], "a/x/y/b", True), (["a?c"], "abc", True), (["a?c"], "a/c", False),
    (["[a-c]x"], "bx", True), (["# comment", ""], "anything", False), (["build", "!build/**"], "build/x", False),
])
def test_dockerignore_matches_as_docker_does(patterns, path, excluded):
    assert Ignore(patterns).excluded(path) is excluded


# -- building (real containers) ------------------------------------------------------------------

def write(ctx: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        p = ctx / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
    return ctx


def build(ctx: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    proc = cl("build", *args, str(ctx), timeout=180)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def inspect(ref: str) -> dict:
    proc = cl("image", "inspect", ref)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)[0]


def run(ref: str, *cmd: str) -> str:
    proc = cl("run", "--rm", ref, *cmd)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def top_layer(ref: str) -> list[tarfile.TarInfo]:
    """The entries of an image's top layer blob, as stored."""
    digest = json.loads((STORE / "repositories.json").read_text())[ref]
    manifest = json.loads((STORE / "blobs" / "sha256" / digest[7:]).read_bytes())
    with tarfile.open(STORE / "blobs" / "sha256" / manifest["layers"][-1]["digest"][7:]) as tar:
        return tar.getmembers()


def build_traces() -> dict:
    """What a build may leave behind: containers (build ones included), names, mounts, work dirs."""
    ps = json.loads("[" + ",".join(cl("ps", "-a", "--format", "json", "--filter",
                                      "label=org.container-lab.build").stdout.split("\n")[:-1]) + "]")
    repos = json.loads((STORE / "repositories.json").read_text())
    return {"containers": [c["name"] for c in ps], "names": sorted(repos),
            "mounts": overlay_mounts(), "tmp": sorted(os.listdir(STORE / "tmp"))}


@pytest.fixture
def ctx(tmp_path) -> Path:
    return tmp_path / "ctx"


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_every_instruction_lands_in_the_image_and_history_has_one_line_each(ctx, tmp_path):
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name, data in (("pkg/bin/tool", b"#!/bin/sh\necho tool\n"), ("pkg/README", b"read me\n")):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid = len(data), 0o755, 1000, 1000
            tar.addfile(info, io.BytesIO(data))
    write(ctx, {"conf/app.conf": "key=value\n", "pkg.tgz": archive.getvalue(), "Dockerfile": f"""\
ARG BASE=lab
FROM ${{BASE}}
# a comment, then an ARG with a default and one from --build-arg
ARG GREETING=hello
ARG WHO
ENV APP_HOME=/srv/app \\
    MODE="dev mode"
ENV LEGACY the old form
WORKDIR $APP_HOME
WORKDIR sub
COPY --chown=nobody:nogroup conf/ conf/
ADD pkg.tgz /opt/
LABEL org.example.who="$WHO" org.example.unique={ctx.name}
SHELL ["/bin/bash", "-c"]
RUN [[ -n "$BASH_VERSION" ]] && echo "$GREETING, $WHO, in $(pwd)" | tee greeting && id -u > /uid-at-build
USER nobody
EXPOSE 8080 53/udp
STOPSIGNAL SIGINT
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat greeting"]
"""})
    build(ctx, "-t", "every:1", "--build-arg", "WHO=learner")
    try:
        record = inspect("every:1")
        cfg = record["Config"]
        assert "APP_HOME=/srv/app" in cfg["Env"] and "MODE=dev mode" in cfg["Env"] and "LEGACY=the old form" in cfg["Env"]
        assert not any(e.startswith(("GREETING=", "WHO=")) for e in cfg["Env"])        # ARGs are not kept
        assert cfg["WorkingDir"] == "/srv/app/sub" and cfg["User"] == "nobody" and cfg["StopSignal"] == "SIGINT"
        assert cfg["Labels"]["org.example.who"] == "learner" and cfg["Shell"] == ["/bin/bash", "-c"]
        assert cfg["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
        assert cfg["Entrypoint"] == ["/bin/sh", "-c"] and cfg["Cmd"] == ["cat greeting"]
        assert run("every:1").strip() == "hello, learner, in /srv/app/sub"
        out = run("every:1", "stat -c '%U:%G %a %n' conf conf/app.conf; stat -c '%u:%g %a %n' /opt/pkg/bin/tool; "
                             "cat /uid-at-build; /opt/pkg/bin/tool; id -un")
        assert out.split("\n")[:6] == ["nobody:nogroup 755 conf", "nobody:nogroup 644 conf/app.conf",
                                       "1000:1000 755 /opt/pkg/bin/tool", "0", "tool", "nobody"]
        # One history line per instruction of the stage (ARG before FROM belongs to none), over lab's one.
        history = cl("history", "--format", "json", "every:1").stdout.splitlines()
        created = [json.loads(line)["CreatedBy"] for line in history]
        assert len(created) == 1 + 16, created
        assert created[0] == 'CMD ["cat greeting"]' and created[-2] == "ARG GREETING=hello"
        assert any(c.startswith("RUN |2 GREETING=hello WHO=learner /bin/bash -c") for c in created)
        assert len(record["RootFS"]["Layers"]) == 1 + 3                         # COPY, ADD, RUN
    finally:
        cl("rmi", "every:1")


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_multi_stage_copy_from_a_stage_an_index_and_an_image(ctx):
    write(ctx, {"Dockerfile": f"""\
FROM lab AS builder
RUN mkdir -p /out/bin && printf '#!/bin/sh\\necho built {ctx.name}\\n' > /out/bin/hello && chmod 755 /out/bin/hello

FROM scratch AS files
COPY --from=builder /out/ /

FROM lab AS unused
RUN exit 3

FROM lab
COPY --from=files /bin/hello /usr/local/bin/
COPY --from=0 /out/bin/hello /copy-by-index
COPY --from=lab /etc/os-release /from-image
CMD ["hello"]
"""})
    proc = build(ctx, "-t", "multi:1")
    assert "[unused" not in proc.stderr                     # a stage nothing needs is not built
    try:
        assert run("multi:1").strip() == f"built {ctx.name}"
        assert run("multi:1", "sh", "-c", "/copy-by-index && head -1 /from-image").split("\n")[:2] == \
            [f"built {ctx.name}", 'PRETTY_NAME="container-lab lab image"']
        files = build(ctx, "--target", "files", "-t", "multi:files")
        assert "[builder" in files.stderr and "[files" in files.stderr
        assert len(inspect("multi:files")["RootFS"]["Layers"]) == 1         # scratch + one COPY
        failing = build(ctx, "--target", "unused", "-t", "multi:unused", ok=False)
        assert failing.returncode == 1 and failing.stderr.strip().endswith(
            "Dockerfile:8: RUN failed with exit code 3")
    finally:
        cl("rmi", "multi:1", "multi:files")


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_cache_hits_and_exactly_the_steps_after_a_changed_file_run_again(ctx):
    write(ctx, {"a.txt": "a\n", "b.txt": "b1\n", "Dockerfile": f"""\
FROM lab
COPY a.txt /a.txt
RUN echo first-{ctx.name} > /first
COPY b.txt /b.txt
ARG FLAVOUR=plain
RUN cat /b.txt > /second && echo $FLAVOUR >> /second
"""})

    def statuses(proc) -> list[str]:
        steps = [b for b in proc.stderr.split("\n\n") if "] COPY" in b or "] RUN" in b]
        return ["CACHED" if "CACHED" in b else "RAN" for b in steps]

    first = build(ctx, "-q", "-t", "cached:1")
    assert statuses(first) == []                                # -q: nothing but the id
    image_id = first.stdout.strip()
    started = time.monotonic()
    again = build(ctx, "-t", "cached:1")
    took = time.monotonic() - started
    try:
        assert statuses(again) == ["CACHED"] * 4 and inspect("cached:1")["Id"] == image_id
        assert took < 5, took                                     # nothing ran (one CLI start, mostly)
        (ctx / "b.txt").write_text("b2\n")
        changed = build(ctx, "-t", "cached:1")
        assert statuses(changed) == ["CACHED", "CACHED", "RAN", "RAN"]
        assert run("cached:1", "cat", "/second").split() == ["b2", "plain"]
        assert statuses(build(ctx, "-t", "cached:1", "--build-arg", "FLAVOUR=spicy")) == \
            ["CACHED", "CACHED", "CACHED", "RAN"]                 # a build arg: from the RUN that sees it
        assert statuses(build(ctx, "-t", "cached:1", "--no-cache")) == ["RAN"] * 4
    finally:
        cl("rmi", "cached:1")


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_dockerignore_leaves_files_out(ctx):
    write(ctx, {"keep.txt": "k", "notes.md": "n", "docs/a.md": "a", "docs/keep-me.txt": "d", "docs/x.txt": "x",
                "build/out.o": "o", "src/main.c": "c", "src/deep/tmp.log": "l", "Dockerfile": "FROM lab\nCOPY . /ctx/\n",
                ".dockerignore": "# build output\nbuild\n**/*.log\n*.md\ndocs\n!docs/keep-me.txt\n"})
    build(ctx, "-t", "ignored:1")
    try:
        listed = run("ignored:1", "sh", "-c", "cd /ctx && find . -type f | sort").split()
        assert listed == ["./.dockerignore", "./Dockerfile", "./docs/keep-me.txt", "./keep.txt", "./src/main.c"]
        other = write(ctx.parent / "other", {"D": "FROM lab\nCOPY notes.md /\n"}) / "D"
        proc = build(ctx, "-f", str(other), ok=False)
        assert proc.returncode == 1 and "D:2: COPY notes.md: file not found in build context or excluded by " \
                                       ".dockerignore" in proc.stderr
    finally:
        cl("rmi", "ignored:1")


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_a_failing_run_names_its_line_and_leaves_nothing_behind(ctx):
    write(ctx, {"Dockerfile": f"FROM lab\nCOPY Dockerfile /\n\n# next\nRUN echo {ctx.name}; \\\n    exit 2\n"})
    before = build_traces()
    proc = build(ctx, "-t", "failing:1", ok=False)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == "container-lab: Dockerfile:5: RUN failed with exit code 2"
    assert f" {ctx.name}" in proc.stderr                                      # its output was shown
    assert build_traces() == before                                           # no image, container, mount, temp dir


@needs_root
@pytest.mark.usefixtures("lab_image")
@pytest.mark.parametrize("dockerfile, message", [
    ("COPY ../secret /", "Dockerfile:2: COPY ../secret: forbidden path outside the build context"),
    ("COPY link-out /", "Dockerfile:2: COPY link-out: it is a symlink pointing outside the build context"),
    ("COPY dir-out/passwd /", "Dockerfile:2: COPY dir-out/passwd: dir-out is a symlink pointing outside"),
    ("ADD https://example.com/x.tgz /", "Dockerfile:2: ADD https://example.com/x.tgz: ADD from a URL is not "
                                        "supported"),
    ("COPY missing /", "Dockerfile:2: COPY missing: file not found in build context"),
    ("COPY --from=127.0.0.1:9/nobody/home /x /", "Dockerfile:2: COPY --from=127.0.0.1:9/nobody/home: cannot "
                                                 "reach the registry"),
])
def test_hostile_or_broken_contexts_are_refused_in_one_line(ctx, tmp_path, dockerfile, message):
    write(tmp_path, {"secret": "s"})
    write(ctx, {"Dockerfile": f"FROM lab\n{dockerfile}\n"})
    os.symlink("/etc/shadow", ctx / "link-out")
    os.symlink("/etc", ctx / "dir-out")
    proc = build(ctx, "-t", "hostile:1", ok=False)
    assert proc.returncode == 1 and proc.stderr.splitlines()[-1].startswith(f"container-lab: {message}"), \
        proc.stderr
    assert "hostile:1" not in cl("images").stdout


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_absolute_sources_resolve_inside_the_context_and_links_inside_are_kept(ctx):
    write(ctx, {"etc/passwd": "not the host's\n", "Dockerfile": "FROM lab\nCOPY /etc/passwd /ctx-passwd\n"
                                                                "COPY tree /tree\n", "tree/file": "f"})
    os.symlink("file", ctx / "tree" / "link")
    os.symlink("/etc/shadow", ctx / "tree" / "abs-link")        # copied as a link, never followed here
    build(ctx, "-t", "inside:1")
    try:
        assert run("inside:1", "sh", "-c", "cat /ctx-passwd; readlink /tree/link /tree/abs-link").split("\n")[:3] \
            == ["not the host's", "file", "/etc/shadow"]
    finally:
        cl("rmi", "inside:1")


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_run_rm_shows_as_whiteouts_in_the_layer_tar(ctx):
    write(ctx, {"Dockerfile": f"FROM lab\nRUN mkdir -p /d/sub && echo x > /d/sub/f && echo y > /keep\n"
                              f"RUN rm /etc/os-release /keep && rm -rf /d && mkdir /d && echo {ctx.name} > /d/new\n"})
    build(ctx, "-t", "whiteout:1")
    try:
        names = {m.name: m for m in top_layer("whiteout:1")}
        assert names["etc/.wh.os-release"].isreg() and names["etc/.wh.os-release"].size == 0
        assert ".wh.keep" in names and "d/.wh..wh..opq" in names and names["d/new"].isreg()
        assert not any(n.startswith(("proc", "sys", "dev")) for n in names)   # the runtime's mount points
        assert run("whiteout:1", "sh", "-c", "ls /d; ls /etc/os-release /keep 2>&1 | wc -l").split() == ["new", "2"]
    finally:
        cl("rmi", "whiteout:1")


def _tree(root: Path) -> dict[str, tuple]:
    out = {}
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(base, name)
            st = p.lstat()
            kind = "l" if p.is_symlink() else "d" if p.is_dir() else "f"
            out[str(p.relative_to(root))] = (kind, st.st_mode & 0o7777 if kind != "l" else 0, st.st_uid, st.st_gid,
                                             st.st_size if kind == "f" else os.readlink(p) if kind == "l" else 0)
    return out


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_a_base_from_the_registry_and_a_saved_build_for_skopeo_and_umoci(ctx, tmp_path):
    if not shutil.which("umoci") or not shutil.which("skopeo"):
        pytest.fail("umoci and skopeo are needed (apt-get install umoci skopeo)")
    from engine.images.build.view import LayerView

    digest = json.loads((STORE / "repositories.json").read_text())["lab:latest"]
    manifest = (STORE / "blobs" / "sha256" / digest[7:]).read_bytes()
    parsed = json.loads(manifest)
    blobs = {d["digest"]: (STORE / "blobs" / "sha256" / d["digest"][7:]).read_bytes()
             for d in [parsed["config"], *parsed["layers"]]}
    server = RegistryServer()
    try:
        server.push("course/base", "1", manifest, parsed["mediaType"], blobs)
        base = f"{server.host}/course/base:1"
        write(ctx, {"app/run.sh": "#!/bin/sh\necho app\n", "Dockerfile": f"""\
FROM {base}
COPY app /app
RUN chmod 755 /app/run.sh && ln -s /app/run.sh /usr/local/bin/app && rm /etc/os-release && mkdir -p /var/x
CMD ["app"]
"""})
        build(ctx, "-t", "interop:v1")
    finally:
        server.close()
    archive = tmp_path / "interop.tar"
    try:
        assert run("interop:v1").strip() == "app"
        record = inspect("interop:v1")
        assert cl("save", "-o", str(archive), "interop:v1").returncode == 0
        for transport in ("oci-archive", "docker-archive"):
            proc = subprocess.run(["skopeo", "inspect", f"{transport}:{archive}"], capture_output=True, text=True,
                                  timeout=60)
            assert proc.returncode == 0, proc.stderr
            assert len(json.loads(proc.stdout)["Layers"]) == 3
        layout, bundle = tmp_path / "layout", tmp_path / "bundle"
        layout.mkdir()
        with tarfile.open(archive) as tar:
            tar.extractall(layout, filter="tar")
        proc = subprocess.run(["umoci", "unpack", "--image", f"{layout}:v1", str(bundle)], capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        ours = LayerView([STORE / "layers" / d[7:] for d in record["RootFS"]["Layers"]])
        seen = {rel: (("l" if (st.st_mode & 0o170000) == 0o120000 else "d" if (st.st_mode & 0o170000) == 0o040000
                       else "f"),) for rel, st, _h in ours.walk("/")}
        theirs = _tree(bundle / "rootfs")
        assert set(theirs) == set(seen)
        for rel, (kind,) in seen.items():
            assert theirs[rel][0] == kind, rel
        assert "etc/os-release" not in theirs and theirs["usr/local/bin/app"] == ("l", 0, 0, 0, "/app/run.sh")
        assert theirs["app/run.sh"][:2] == ("f", 0o755)
        # save, rmi, load: the same image id and digest
        cl("rmi", "interop:v1", check=True)
        assert cl("load", "-i", str(archive)).returncode == 0
        again = inspect("interop:v1")
        assert (again["Id"], again["RepoDigests"]) == (record["Id"], record["RepoDigests"])
    finally:
        cl("rmi", "interop:v1")
        cl("rmi", f"{base}")


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_commit_keeps_what_a_container_added_changed_and_deleted(tmp_path):
    name = f"commit-{tmp_path.name[-12:]}".replace("_", "-").lower()
    proc = cl("run", "-d", "--name", name, "-e", "FROM_RUN=yes", "lab", "sh", "-c",
              "echo added > /added; echo changed >> /etc/passwd; rm /etc/os-release; "
              "rm -rf /root && mkdir /root && touch /root/fresh; touch /ready; sleep 60")
    assert proc.returncode == 0, proc.stderr
    try:
        deadline = time.monotonic() + 10
        while cl("exec", name, "test", "-e", "/ready").returncode != 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc = cl("commit", "-m", "three changes", "-c", 'CMD ["cat", "/added"]', name, "committed:1")
        assert proc.returncode == 0 and proc.stdout.startswith("sha256:"), proc.stderr
        assert cl("exec", name, "true").returncode == 0                       # running again after the pause
        assert run("committed:1").strip() == "added"
        out = run("committed:1", "sh", "-c", "tail -1 /etc/passwd; ls -A /root; echo $FROM_RUN; "
                                             "test -e /etc/os-release || echo deleted")
        assert out.split() == ["changed", "fresh", "yes", "deleted"]
        names = {m.name for m in top_layer("committed:1")}
        assert {"added", "etc/passwd", "etc/.wh.os-release", "root/.wh..wh..opq", "root/fresh"} <= names
        top = json.loads(cl("history", "--format", "json", "committed:1").stdout.splitlines()[0])
        assert top["Comment"] == "three changes" and top["CreatedBy"].startswith("sh -c echo added")
        unnamed = cl("commit", name)
        assert unnamed.returncode == 0
        short = unnamed.stdout.strip()[7:19]
        assert run(short, "cat", "/added").strip() == "added"                 # named by its short id
        assert cl("rmi", short).returncode == 0
    finally:
        cl("rm", "-f", name)
        cl("rmi", "committed:1")
    bad = cl("commit", "no-such-container-here")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1


@needs_root
@pytest.mark.usefixtures("lab_image")
def test_what_a_killed_build_left_the_next_build_clears(ctx, tmp_path):
    import signal

    write(ctx, {"Dockerfile": f"FROM lab\nRUN echo {ctx.name} && sleep 60\n"})
    before = build_traces()
    killed = subprocess.Popen([sys.executable, "-m", "engine.cli", "build", "-t", "killed:1", str(ctx)],
                              cwd=Path(__file__).resolve().parent.parent, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not build_traces()["containers"]:
            assert time.monotonic() < deadline and killed.poll() is None
            time.sleep(0.1)
        running = build_traces()["containers"][0]
        assert running not in cl("ps", "-a").stdout                         # a build's container is not the learner's
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    left = build_traces()
    assert left["containers"] and any(n.startswith("container-lab-build/") for n in left["names"])
    write(tmp_path / "next", {"Dockerfile": "FROM lab\nCMD [\"true\"]\n"})
    build(tmp_path / "next", "-t", "next:1")
    cl("rmi", "next:1", check=True)
    assert build_traces() == before
