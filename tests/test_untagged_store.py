"""Untagged images in the store, as docker has them: an image stored with no
name, a tag moved to a newer image leaving the old one dangling, ``rmi`` by
id, ``image prune`` (dangling, or ``-a``), an image a container uses never
removed -- and the index file: an old one loads, a damaged one is one line
and is left as it was."""

from __future__ import annotations

import io
import json

import pytest
from test_image_io import image_parts, layer_tar, sha

from engine.errors import ImageError, ImageNotFound, InvalidArgument
from engine.images import ImageStore
from engine.images.store.names import dangling, point, untagged_key, well_formed


def _add(store: ImageStore, names: list[str], text: bytes):
    blob = layer_tar(("f", "f", text))
    manifest, config, _ = image_parts([blob])
    return store.add_image(names, manifest, config, lambda _d: io.BytesIO(blob))


def _repos(store: ImageStore) -> dict:
    return json.loads(store.repositories.read_text())


def test_point_keeps_the_image_a_name_moves_away_from():
    a, b, c = (f"sha256:{x * 64}" for x in "abc")
    repos = {"app:latest": a, "other:1": c}
    point(repos, ["app:latest"], b)
    assert repos == {"app:latest": b, "other:1": c, untagged_key(a): a} and dangling(repos) == [a]
    point(repos, ["again:1"], a)                       # named again: no longer dangling
    assert dangling(repos) == [] and repos[untagged_key(a)] == a
    point(repos, [], c)                                # kept with no name (c is named: not dangling)
    assert repos[untagged_key(c)] == c and dangling(repos) == []
    assert well_formed(repos)
    assert not well_formed({untagged_key(a): b}) and not well_formed({"x:1": "sha256:nope"})


def test_an_image_stored_without_a_name_is_listed_and_used_by_its_id(tmp_path):
    store = ImageStore(tmp_path / "images")
    image = _add(store, [], b"one")
    assert image.ref == untagged_key(image.digest)
    assert _repos(store) == {untagged_key(image.digest): image.digest}
    assert [i.ref for i in store.list()] == [image.ref]
    for handle in (image.id, image.id[7:19], image.id[:19], image.id[7:]):
        assert store.find(handle).digest == image.digest
    assert store.tags_of(image) == []
    with pytest.raises((ImageNotFound, InvalidArgument)):
        store.resolve(image.ref)                       # "<none>" is no name
    named = store.tag(image.id[7:19], "named:1")
    assert named.digest == image.digest and [i.ref for i in store.list()] == ["named:1"]


def test_a_moved_tag_leaves_the_old_image_dangling_and_rmi_prune_follow_docker(tmp_path):
    store = ImageStore(tmp_path / "images")
    old = _add(store, ["app:latest"], b"v1")
    new = _add(store, ["app:latest"], b"v2")          # as a pull or load of a newer app:latest
    listed = store.list()
    assert [i.ref for i in listed] == ["app:latest", untagged_key(old.digest)]
    assert listed[0].digest == new.digest and old.layers[0].is_dir()
    assert store.find(old.id[7:19]).digest == old.digest

    # A container uses the old image: prune keeps it, rmi refuses, rmi -f keeps it untagged.
    used = {old.id: "user-of-old"}
    assert store.prune(used=used, keep={old.layers[0].name}) == {"untagged": [], "deleted": [], "freed": 0}
    with pytest.raises(ImageError, match="container user-of-old uses it"):
        store.delete(old.id[7:19], used=used)
    assert store.find(old.id).digest == old.digest

    # Nobody uses it: prune removes it, and only it; its layer and blobs go.
    done = store.prune()
    assert done["deleted"] == [old.id] and done["untagged"] == [] and done["freed"] > 0
    assert not old.layers[0].exists() and not store.blob_path(old.digest).exists()
    assert [i.ref for i in store.list()] == ["app:latest"]

    # Two names: rmi by id wants -f; a name goes alone, the last one takes the image.
    store.tag("app", "copy:1")
    with pytest.raises(ImageError, match="referenced in multiple repositories"):
        store.delete(new.id[7:19])
    assert store.delete("copy:1") == {"untagged": ["copy:1"], "deleted": [], "freed": 0}
    gone = store.delete("app")
    assert gone["untagged"] == ["app:latest"] and gone["deleted"] == [new.id] and gone["freed"] > 0
    assert _repos(store) == {} and list(store.layers.iterdir()) == []


def test_rmi_force_of_a_used_image_keeps_it_untagged_and_prune_all(tmp_path):
    store = ImageStore(tmp_path / "images")
    image = _add(store, ["used:1"], b"used")
    spare = _add(store, ["spare:1"], b"spare")
    loose = _add(store, [], b"loose")
    used = {image.id: "c1"}
    keep = {image.layers[0].name}
    with pytest.raises(ImageError, match="must force"):
        store.delete("used:1", used=used, keep=keep)
    done = store.delete("used:1", used=used, keep=keep, force=True)
    assert done == {"untagged": ["used:1"], "deleted": [], "freed": 0}
    assert untagged_key(image.digest) in _repos(store) and image.layers[0].is_dir()
    assert store.delete(image.id[7:19], used={}, keep=set())["deleted"] == [image.id]  # by id, once unused

    image = _add(store, ["used:1"], b"used")
    done = store.prune(every=True, used={image.id: "c1"}, keep={image.layers[0].name})
    assert done["untagged"] == ["spare:1"] and sorted(done["deleted"]) == sorted([spare.id, loose.id])
    assert [i.ref for i in store.list()] == ["used:1"]


def test_an_old_index_loads_and_a_damaged_one_is_one_line_and_kept(tmp_path):
    store = ImageStore(tmp_path / "images")
    image = _add(store, ["old:1"], b"old")
    store.repositories.write_text(json.dumps({"old:1": image.digest}))   # as written before untagged entries
    assert [i.ref for i in store.list()] == ["old:1"]
    for bad in ('{"<none>@sha256:' + "0" * 64 + f'": "{image.digest}"}}', "{not json", '["old:1"]'):
        store.repositories.write_text(bad)
        with pytest.raises(ImageError) as e:
            store.list()
        assert "\n" not in str(e.value) and str(store.repositories) in str(e.value)
        with pytest.raises(ImageError):
            store.prune()
        assert store.repositories.read_text() == bad and image.layers[0].is_dir()
        assert store.blob_path(image.digest).exists()


def test_an_untagged_entry_keeps_an_image_whose_other_names_are_dropped(tmp_path):
    """A build stores an intermediate image under a temporary name and drops it
    after; an image identical to it that was kept untagged stays."""
    store = ImageStore(tmp_path / "images")
    image = _add(store, [], b"same")
    again = _add(store, ["container-lab-build/x:1"], b"same")
    assert again.digest == image.digest and store.list()[0].ref == "container-lab-build/x:1"
    store.untag(["container-lab-build/x:1"])
    assert [i.ref for i in store.list()] == [untagged_key(image.digest)]
    assert store.collect_garbage() == 0 and image.layers[0].is_dir()
    assert sha(b"") != image.digest


def test_a_docker_archive_that_names_no_image_loads_it_untagged(tmp_path):
    from test_image_io import docker_archive

    from engine.images import archive

    store = ImageStore(tmp_path / "images")
    blob = layer_tar(("data", "d"), ("data/a", "f", b"nameless"))
    loaded = archive.load(store, docker_archive(tmp_path / "a.tar", [blob], tags=()))
    (image,) = store.list()
    assert loaded == [image.id] and image.ref == untagged_key(image.digest) and image.id == sha(image_parts([blob])[1])
