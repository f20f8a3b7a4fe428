"""`image layers`: each build step's layer and what it changed -- added,
changed, deleted (whiteouts), opaque directories -- and a container's
writable layer on top. First the walk on layer directories made by hand
(the whiteout forms overlayfs reads), then an image built for real with
``build`` and a container run from it, seen through the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.images.layers import (
    Stack,
    counts,
    layer_changes,
    paired_history,
    stack_of,
    writable_layer,
)

from conftest import cl, needs_root


def whiteout(path: Path) -> None:
    """What the unpacker writes for ``.wh.NAME``: a 0/0 character device."""
    os.mknod(path, 0o020000, os.makedev(0, 0))


def opaque(path: Path) -> None:
    os.setxattr(path, "trusted.overlay.opaque", b"y")


def tree_of(root: Path, files: dict[str, str | None]) -> Path:
    """Files (text) and directories (None) under ``root``."""
    for rel, content in files.items():
        p = root / rel
        if content is None:
            p.mkdir(parents=True, exist_ok=True)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(content)
    return root


# -- the walk, on layers made by hand ----------------------------------------------------------

@needs_root
def test_each_layer_is_compared_with_what_the_layers_below_show(tmp_path):
    base = tree_of(tmp_path / "0", {"etc/passwd": "root:x:0:0\n", "etc/group": "root:x:0:\n", "opt/a/b": "b",
                                    "opt/a/c": "c", "var": None, "srv": "a file"})
    one = tree_of(tmp_path / "1", {"etc/group": "root:x:0:\nstaff:x:50:\n", "new": "", "opt/a/d": "d",
                                   "srv/now-a-dir": "x"})
    whiteout(one / "etc/passwd")
    opaque(one / "opt/a")
    two = tree_of(tmp_path / "2", {"etc/passwd": "again\n", "opt/a/b": "back"})
    whiteout(two / "new")
    config = {"history": [{"created_by": "base"}, {"created_by": "ENV A=1", "empty_layer": True},
                          {"created_by": "RUN one"}, {"created_by": "RUN two"}],
              "rootfs": {"diff_ids": ["sha256:0", "sha256:1", "sha256:2"]}}
    stack = stack_of([base, one, two], config)
    rows = stack.layers
    assert [(r["index"], r["id"], r["created_by"], r["empty"]) for r in rows] == [
        (0, "sha256:0", "base", False), (None, "", "ENV A=1", True),
        (1, "sha256:1", "RUN one", False), (2, "sha256:2", "RUN two", False)]
    assert rows[0]["changes"][:3] == [("A", "/etc"), ("A", "/etc/group"), ("A", "/etc/passwd")]
    assert rows[0]["size"] == len("root:x:0:0\n") + len("root:x:0:\n") + 1 + 1 + len("a file")
    assert rows[1]["changes"] == [] and rows[1]["size"] == 0
    # A whiteout deletes; an opaque directory hides what was below (b, c): d is new in it;
    # a directory where a file was is a change.
    assert rows[2]["changes"] == [("C", "/etc"), ("C", "/etc/group"), ("D", "/etc/passwd"), ("A", "/new"),
                                  ("C", "/opt"), ("C", "/opt/a"), ("A", "/opt/a/d"), ("C", "/srv"),
                                  ("A", "/srv/now-a-dir")]
    assert rows[2]["opaque"] == ["/opt/a"] and counts(rows[2]) == {"A": 3, "C": 5, "D": 1}
    # What layer 1 deleted or hid comes back as added; what it added, a whiteout removes.
    assert rows[3]["changes"] == [("C", "/etc"), ("A", "/etc/passwd"), ("D", "/new"), ("C", "/opt"),
                                  ("C", "/opt/a"), ("A", "/opt/a/b")]
    assert stack.tree["opt"]["a"] == {"b": None, "d": None} and "new" not in stack.tree
    # The store's recorded sizes instead of a stat per file: the same changes, found from the entries' types.
    recorded = stack_of([base, one, two], config, size_of=lambda p: 7).layers
    assert [r["changes"] for r in recorded] == [r["changes"] for r in rows]
    assert [r["size"] for r in recorded] == [7, 0, 7, 7] and recorded[2]["opaque"] == ["/opt/a"]


@needs_root
def test_a_writable_layer_is_read_against_the_image_and_changes_nothing(tmp_path):
    base = tree_of(tmp_path / "image", {"etc/passwd": "root\n", "etc/hosts": "", "bin/sh": "#!"})
    upper = tree_of(tmp_path / "upper", {"etc/hostname": "", "etc/hosts": "", "proc": None, "dev": None,
                                         "tmp/out": "12345"})
    (upper / "tmp/host").symlink_to("/etc")              # a link is an entry, never walked
    whiteout(upper / "etc/passwd")
    (upper / "gone").write_text("")
    os.setxattr(upper / "gone", "trusted.overlay.whiteout", b"y")   # a nested overlay's whiteout
    stack = stack_of([base], {})
    before = json.dumps(stack.tree, sort_keys=True)
    layer = writable_layer(upper, stack)
    # The runtime's mount points (empty /proc, /dev, /etc/hostname ...) are no change.
    assert layer["changes"] == [("C", "/etc"), ("D", "/etc/passwd"), ("D", "/gone"), ("A", "/tmp"),
                                ("A", "/tmp/host"), ("A", "/tmp/out")]
    assert layer["id"] == "writable" and layer["index"] == 1 and layer["size"] == 5 + len("/etc")
    assert json.dumps(stack.tree, sort_keys=True) == before      # the image's tree serves again


def test_history_pairs_with_layers_or_one_row_per_layer():
    config = {"created": "2024-01-01T00:00:00Z",
              "history": [{"created_by": "a"}, {"created_by": "CMD x", "empty_layer": True}]}
    assert [h.get("created_by") for h in paired_history(config, 1)] == ["a", "CMD x"]
    assert paired_history(config, 2) == [{"created": "2024-01-01T00:00:00Z"}] * 2
    assert isinstance(stack_of([], {}), Stack) and stack_of([], {}).layers == []


def test_an_unreadable_layer_directory_has_no_changes(tmp_path):
    assert layer_changes(tmp_path / "missing", {}) == ([], [], 0)


# -- built for real, through the CLI --------------------------------------------------------------

DOCKERFILE = """\
FROM lab
RUN touch /new
RUN rm /etc/passwd
ENV GREETING=hi
RUN echo x > /etc/profile
RUN mkdir /data && rm -rf /etc/alternatives && mkdir /etc/alternatives && touch /etc/alternatives/mine
"""


@pytest.fixture(scope="module")
def layered(lab_image, tmp_path_factory):
    ctx = tmp_path_factory.mktemp("layers-ctx")
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    proc = cl("build", "-q", "-t", "layered:1", str(ctx), timeout=180)
    assert proc.returncode == 0, proc.stderr
    yield "layered:1"
    cl("rmi", "-f", "layered:1")


def layers_json(*args: str) -> list[dict]:
    proc = cl("image", "layers", "--format", "json", *args)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def changes(row: dict) -> list[tuple[str, str]]:
    return [(c["kind"], c["path"]) for c in row["changes"]]


@needs_root
def test_a_built_image_shows_each_step_with_its_changes(layered):
    rows = layers_json(layered)          # top first, as history
    assert [(r["index"], r["created_by"]) for r in rows] == [
        (4, "RUN /bin/sh -c mkdir /data && rm -rf /etc/alternatives && mkdir /etc/alternatives && "
            "touch /etc/alternatives/mine"),
        (3, "RUN /bin/sh -c echo x > /etc/profile"),
        (None, "ENV GREETING=hi"),
        (2, "RUN /bin/sh -c rm /etc/passwd"),
        (1, "RUN /bin/sh -c touch /new"),
        (0, "container-lab: host binaries, assembled offline")]
    assert changes(rows[4]) == [("A", "/new")]
    assert changes(rows[3]) == [("C", "/etc"), ("D", "/etc/passwd")] and rows[3]["counts"] == {"A": 0, "C": 1, "D": 1}
    assert rows[2]["empty"] and rows[2]["changes"] == [] and rows[2]["size"] == 0
    assert changes(rows[1]) == [("C", "/etc"), ("C", "/etc/profile")] and rows[1]["size"] == 2
    assert changes(rows[0]) == [("A", "/data"), ("C", "/etc"), ("C", "/etc/alternatives"),
                                ("A", "/etc/alternatives/mine")]
    assert rows[0]["opaque"] == ["/etc/alternatives"]
    base = rows[5]
    assert base["counts"]["A"] > 50 and base["counts"]["C"] == base["counts"]["D"] == 0
    assert ("A", "/etc/passwd") in changes(base) and base["size"] > 1_000_000
    inspect = json.loads(cl("image", "inspect", layered).stdout)[0]
    assert [r["id"] for r in reversed(rows) if not r["empty"]] == inspect["RootFS"]["Layers"]


@needs_root
def test_the_table_lists_a_layers_paths_under_it(layered):
    proc = cl("image", "layers", layered)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["LAYER", "SIZE", "CHANGES", "CREATED", "BY"]
    rm = next(i for i, line in enumerate(lines) if line.startswith("#3 "))      # numbered from 1, the bottom
    assert "+0 ~1 -1" in lines[rm] and lines[rm].endswith("RUN /bin/sh -c rm /etc/passwd")
    assert lines[rm + 1:rm + 3] == ["    C /etc", "    D /etc/passwd"]
    env = next(line for line in lines if "ENV GREETING=hi" in line)
    assert env.split()[:2] == ["-", "0B"]
    assert "    C /etc/alternatives   (opaque: hides what is below)" in lines
    base = next(i for i, line in enumerate(lines) if line.startswith("#1 "))
    assert lines[-1].startswith("    … and ") and len(lines) - base - 2 == 10      # 10 paths, then the rest counted
    every = cl("image", "layers", "--files", layered).stdout.splitlines()
    assert "    A /etc/passwd" in every and not any("… and" in line for line in every)


@needs_root
def test_a_containers_writable_layer_sits_on_its_image(layered):
    name = "layers-rm"
    try:
        proc = cl("run", "--name", name, layered, "rm", "/etc/group", "/new")
        assert proc.returncode == 0, proc.stderr
        rows = layers_json("-c", name)
        assert rows[0]["id"] == "writable" and rows[0]["index"] == 5
        assert changes(rows[0]) == [("C", "/etc"), ("D", "/etc/group"), ("D", "/new")]
        assert [r["created_by"] for r in rows[1:]] == [r["created_by"] for r in layers_json(layered)]
        table = cl("image", "layers", "-c", name).stdout.splitlines()
        assert table[1].startswith("writable ") and table[2:5] == ["    C /etc", "    D /etc/group", "    D /new"]
        # what `diff` lists, the same changes
        assert cl("diff", name).stdout.splitlines() == ["C /etc", "D /etc/group", "D /new"]
    finally:
        cl("rm", "-f", name)


def test_an_unknown_image_or_container_is_one_line():
    proc = cl("image", "layers", "no-such-image:1")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == "container-lab: No such image: no-such-image:1\n"
    proc = cl("image", "layers", "-c", "no-such-container")
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1
    assert "no-such-container" in proc.stderr and "Traceback" not in proc.stderr


def test_the_image_group_lists_layers():
    from engine.cli import VERBS

    assert "layers" in VERBS["image"][0]
    assert "layers" in cl("image", "--help").stdout
    assert "-c, --container" in cl("image", "layers", "--help").stdout
