"""Untagged images through the CLI, for real: ``build`` without ``-t``,
``build -t`` again with a change (the old image dangling, still a cache
source), ``images`` and its filters, use by id (run, tag, inspect, history,
save, load of a nameless archive), ``rmi`` and ``image prune`` with docker's
lines, and an image a container uses kept through all of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import cl, needs_root

pytestmark = [needs_root, pytest.mark.usefixtures("lab_image")]


def _build(ctx: Path, *args: str) -> str:
    """Build ``ctx``; the image id (``-q``)."""
    proc = cl("build", "-q", *args, str(ctx), timeout=180)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def _rows(*args: str) -> list[list[str]]:
    proc = cl("images", *args)
    assert proc.returncode == 0, proc.stderr
    return [line.split() for line in proc.stdout.splitlines()[1:]]


def _write(ctx: Path, text: str) -> None:
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text("FROM lab\nCOPY msg /msg\nCMD [\"cat\", \"/msg\"]\n")
    (ctx / "msg").write_text(text)


def test_build_without_a_tag_makes_an_untagged_image_used_by_its_id(tmp_path):
    ctx = tmp_path / "ctx"
    _write(ctx, "no name\n")
    image_id = _build(ctx)
    short = image_id[7:19]
    try:
        assert ["<none>", "<none>", short] in [r[:3] for r in _rows()]
        assert ["<none>", "<none>", short] in [r[:3] for r in _rows("--filter", "dangling=true")]
        assert short not in " ".join(sum(_rows("-f", "dangling=false"), []))
        assert short in cl("images", "-a", "-q").stdout.split()
        for handle in (short, image_id, f"sha256:{short}"):
            ran = cl("run", "--rm", handle)
            assert ran.returncode == 0 and ran.stdout == "no name\n", (handle, ran.stderr)
        (record,) = json.loads(cl("image", "inspect", short).stdout)
        assert record["Id"] == image_id and record["RepoTags"] == [] and record["RepoDigests"] == []
        assert cl("history", "-q", short).stdout.split()[0] == short
        # save by id: an archive with no name; loaded elsewhere it is untagged, by id.
        archive = tmp_path / "nameless.tar"
        assert cl("save", "-o", str(archive), short).returncode == 0
        removed = cl("rmi", short)
        assert removed.returncode == 0 and removed.stdout == f"Deleted: {image_id}\n", removed.stderr
        assert short not in cl("images", "-q").stdout
        loaded = cl("load", "-i", str(archive))
        assert loaded.returncode == 0 and loaded.stdout == f"Loaded image ID: {image_id}\n", loaded.stderr
        assert ["<none>", "<none>", short] in [r[:3] for r in _rows()]
        assert cl("tag", short, "named-now:1").returncode == 0
        assert ["named-now", "1", short] in [r[:3] for r in _rows()]
        assert ["<none>", "<none>", short] not in [r[:3] for r in _rows()]     # named: not dangling
        bad = cl("images", "--filter", "label=x")
        assert bad.returncode != 0 and bad.stderr.count("\n") == 1 and "dangling" in bad.stderr
    finally:
        cl("rmi", "-f", short)
    assert short not in cl("images", "-q").stdout


def test_a_rebuilt_tag_leaves_the_old_image_dangling_a_cache_source_until_pruned(tmp_path):
    ctx = tmp_path / "app"
    _write(ctx, "one\n")
    first = _build(ctx, "-t", "untagged-app")
    _write(ctx, "two\n")
    second = _build(ctx, "-t", "untagged-app")
    assert first != second
    rows = [r[:3] for r in _rows()]
    assert ["untagged-app", "latest", second[7:19]] in rows and ["<none>", "<none>", first[7:19]] in rows
    # The old image is a cache source still: going back to "one" runs nothing, gives it again.
    _write(ctx, "one\n")
    again = cl("build", "-t", "untagged-app", str(ctx), timeout=180)
    assert again.returncode == 0, again.stderr
    assert "CACHED" in again.stderr and f"writing image {first}" in again.stderr
    rows = [r[:3] for r in _rows()]
    assert ["untagged-app", "latest", first[7:19]] in rows and ["<none>", "<none>", second[7:19]] in rows
    # A container of the dangling image keeps it through prune; once it is gone, prune takes it.
    cl("create", "--name", "untagged-user", second[7:19], check=True)
    try:
        kept = cl("image", "prune", "-f")
        assert kept.returncode == 0 and second[7:19] in cl("images", "-q").stdout, kept.stdout
        refused = cl("rmi", second[7:19])
        assert refused.returncode == 1 and "container untagged-user uses it" in refused.stderr
        assert refused.stderr.count("\n") == 1
    finally:
        cl("rm", "-f", "untagged-user")
    pruned = cl("image", "prune", "-f")
    assert pruned.returncode == 0, pruned.stderr
    lines = pruned.stdout.splitlines()
    assert lines[0] == "Deleted Images:" and f"deleted: {second}" in lines
    assert lines[-1].startswith("Total reclaimed space: ") and lines[-1] != "Total reclaimed space: 0B"
    assert second[7:19] not in cl("images", "-q").stdout and first[7:19] in cl("images", "-q").stdout
    # tag moves the name too: the image it named before is left dangling.
    assert cl("tag", "lab", "untagged-app").returncode == 0
    assert ["<none>", "<none>", first[7:19]] in [r[:3] for r in _rows("--filter", "dangling=true")]
    assert cl("rmi", "untagged-app").stdout == "Untagged: untagged-app:latest\n"     # lab keeps its own name
    everything = cl("image", "prune", "-f")
    assert f"deleted: {first}" in everything.stdout.splitlines()
    assert first[7:19] not in cl("images", "-q").stdout
