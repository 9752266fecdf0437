"""build_manifest: pairing image and mask files by stem on local disk, memory:// and S3."""

from __future__ import annotations

import pytest

from prefect_flux_erase import storage
from prefect_flux_erase.manifest.pairing import PairingError, build_manifest
from prefect_flux_erase.manifest.plan import ManifestSpec, plan_manifest, read_shard
from tests.fixtures.roots import Root, root

__all__ = ["root"]


def touch(root: Root, *names: str) -> None:
    for name in names:
        storage.write_bytes(root.join(*name.split("/")), b"...", root.options)


def test_pairs_by_stem_with_any_case_of_extension(root: Root) -> None:
    touch(
        root,
        "images/cat.JPG",
        "images/dog.webp",
        "images/owl.jpeg",
        "images/notes.txt",
        "images/sub/deep.png",
        "masks/cat.png",
        "masks/dog_mask.PNG",
        "masks/bat.png",
    )
    out = root.join("manifest.parquet")
    result = build_manifest(
        root.join("images"), root.join("masks"), out, root.options, unpaired="skip"
    )
    assert result.rows == 2
    assert [u.rsplit("/", 1)[-1] for u in result.unpaired_images] == ["owl.jpeg"]
    assert [u.rsplit("/", 1)[-1] for u in result.unpaired_masks] == ["bat.png"]
    spec = ManifestSpec(out, storage_options=root.options)
    rows = read_shard(spec, plan_manifest(spec).shards[0])
    assert [r.key for r in rows] == ["cat", "dog"]  # row_key column is the key
    assert [r.image_uri.rsplit("/", 1)[-1] for r in rows if r.image_uri] == ["cat.JPG", "dog.webp"]
    assert [r.mask_uri.rsplit("/", 1)[-1] for r in rows if r.mask_uri] == [
        "cat.png",
        "dog_mask.PNG",
    ]
    for row in rows:  # the URIs read back on the same backend
        assert storage.read_bytes(row.image_uri, root.options) == b"..."


def test_images_and_masks_in_one_folder_are_told_apart_by_suffix(root: Root) -> None:
    touch(root, "all/cat.png", "all/cat_mask.png", "all/dog.jpg", "all/dog-mask.png", "all/x.png")
    result = build_manifest(
        root.join("all"), root.join("all"), root.join("m.parquet"), root.options, unpaired="skip"
    )
    assert result.rows == 2
    assert [u.rsplit("/", 1)[-1] for u in result.unpaired_images] == ["x.png"]
    assert result.unpaired_masks == []


def test_ambiguous_stems_are_left_out_not_guessed(tmp_path: object) -> None:
    local = Root("local", str(tmp_path))
    touch(local, "i/cat.png", "i/cat.jpg", "i/dog.png", "m/cat.png", "m/dog.png")
    result = build_manifest(
        local.join("i"), local.join("m"), local.join("m.parquet"), unpaired="skip"
    )
    assert result.rows == 1
    assert result.ambiguous == ["cat"]


def test_unpaired_files_fail_with_their_list_and_write_nothing(root: Root) -> None:
    touch(root, "images/cat.png", "images/owl.png", "images/a.png", "images/a.jpg")
    touch(root, "masks/cat.png", "masks/bat.png", "masks/a.png")
    out = root.join("m.parquet")

    with pytest.raises(PairingError) as info:
        build_manifest(root.join("images"), root.join("masks"), out, root.options)

    assert info.value.code == "unpairedFiles"
    message = info.value.message
    assert "1 image without a mask: " in message
    assert "owl.png" in message
    assert "1 mask without an image: " in message
    assert "bat.png" in message
    assert "1 name with several files: a" in message
    assert "unpaired='skip'" in message
    assert not storage.exists(out, root.options)
    assert info.value.unpaired_images[0].endswith("owl.png")


def test_nothing_pairs_is_a_clear_error_and_writes_nothing(root: Root) -> None:
    touch(root, "images/a.png", "images/b.png", "masks/c.png")
    out = root.join("m.parquet")
    with pytest.raises(PairingError) as info:
        build_manifest(root.join("images"), root.join("masks"), out, root.options)
    assert info.value.code == "nothingPaired"
    assert "['a', 'b']" in info.value.message
    assert "['c']" in info.value.message
    assert not storage.exists(out, root.options)


def test_missing_folder_is_named(root: Root) -> None:
    touch(root, "masks/c.png")
    with pytest.raises(PairingError, match="does not exist") as info:
        build_manifest(root.join("nope"), root.join("masks"), root.join("m.parquet"), root.options)
    assert info.value.code == "pairingSourceNotFound"
    assert "nope" in info.value.message
