"""`flux-erase manifest`: pair image files with mask files by name and write a manifest.

An image ``photos/cat.jpg`` pairs with the mask of the same stem, ``masks/cat.png`` (any of
png/jpg/jpeg/webp, extensions case-insensitive), or, failing that, with ``cat_mask.png``,
``cat-mask.png`` or ``cat.mask.png``. When images and masks share one folder, files with a
mask suffix are the masks. A stem with two images (``cat.png`` and ``cat.jpg``) or two masks is
ambiguous rather than guessed. The manifest has ``image_uri``, ``mask_uri`` and ``row_key`` (the
stem), sorted by key.

Files that pair with nothing (an image without a mask, a mask without an image, an ambiguous
name) fail the pairing with their list (``unpairedFiles``) and nothing is written, because a
manifest that quietly leaves a photo out breaks "every row once" before the run starts.
``unpaired="skip"`` (``flux-erase manifest --skip-unpaired``) writes the pairs and reports the
rest in the result instead.

Example:
    >>> from prefect_flux_erase import storage
    >>> for name in ("images/cat.jpg", "images/dog.PNG", "masks/cat.png", "masks/owl.png"):
    ...     storage.write_bytes(f"memory://doc/pairing/{name}", b"...")
    >>> result = build_manifest("memory://doc/pairing/images", "memory://doc/pairing/masks",
    ...                         "memory://doc/pairing/manifest.parquet", unpaired="skip")
    >>> result.rows, result.unpaired_images, result.unpaired_masks
    (1, ['memory:///doc/pairing/images/dog.PNG'], ['memory:///doc/pairing/masks/owl.png'])
"""

from __future__ import annotations

import io
import posixpath
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from prefect_flux_erase import storage
from prefect_flux_erase.errors import FluxEraseError

#: File extensions treated as images or masks (compared case-insensitively).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp")
#: Mask name suffixes accepted after the image's stem (``cat_mask.png``).
MASK_SUFFIXES = ("_mask", "-mask", ".mask")
_EXAMPLES = 5


class PairingError(FluxEraseError, ValueError):
    """Nothing to pair, files left unpaired, or a folder that cannot be listed; ``code`` is
    stable.

    Codes: ``pairingSourceNotFound``, ``pairingSourceUnreadable``, ``nothingPaired``,
    ``unpairedFiles``.

    With ``unpairedFiles``, the attributes unpaired_images, unpaired_masks and ambiguous list
    the files (and names) that paired with nothing.

    Example:
        >>> PairingError("no images", code="nothingPaired").code
        'nothingPaired'
    """

    code: str

    def __init__(self, message: str, *, code: str, **extra: Any) -> None:
        super().__init__(message, code=code, **extra)


@dataclass(frozen=True)
class PairingResult:
    """What :func:`build_manifest` wrote and what it could not pair.

    Example:
        >>> PairingResult(rows=2, unpaired_images=[], unpaired_masks=[]).rows
        2
    """

    rows: int
    unpaired_images: list[str]
    unpaired_masks: list[str]
    ambiguous: list[str] = field(default_factory=list)
    manifest_uri: str = ""


def _list_images(uri: str, options: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """Image files directly in ``uri`` (not recursive), grouped by stem, as URIs."""
    shown = storage.redact_url(uri)
    try:
        fs, path = storage.resolve(uri, options)
        fs.invalidate_cache(path)
        entries = fs.ls(path, detail=True)
    except FileNotFoundError as exc:
        raise PairingError(f"{shown} does not exist", code="pairingSourceNotFound") from exc
    except Exception as exc:
        detail = storage.redact_url(f"{type(exc).__name__}: {exc}")
        raise PairingError(
            f"cannot list {shown} ({detail})", code="pairingSourceUnreadable"
        ) from exc
    by_stem: dict[str, list[str]] = defaultdict(list)
    for entry in entries:
        name = posixpath.basename(str(entry["name"]).rstrip("/"))
        stem, ext = posixpath.splitext(name)
        if entry.get("type") != "file" or ext.lower() not in IMAGE_EXTENSIONS or not stem:
            continue
        full = str(entry["name"])
        by_stem[stem].append(storage.listed_uri(fs, full, uri))
    return {stem: sorted(uris) for stem, uris in by_stem.items()}


def _mask_base(stem: str) -> str | None:
    for suffix in MASK_SUFFIXES:
        if stem.lower().endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)]
    return None


def _split_shared_folder(files: dict[str, list[str]]) -> tuple[dict[str, list[str]], ...]:
    images = {s: u for s, u in files.items() if _mask_base(s) is None}
    masks = {s: u for s, u in files.items() if _mask_base(s) is not None}
    return images, masks


def build_manifest(
    images_uri: str,
    masks_uri: str,
    out_uri: str,
    storage_options: Mapping[str, Any] | None = None,
    *,
    unpaired: Literal["fail", "skip"] = "fail",
) -> PairingResult:
    """Pair images and masks by stem and write the Parquet manifest to ``out_uri``.

    Args:
        images_uri: Folder of the photos (not recursive).
        masks_uri: Folder of the masks (may be ``images_uri``: masks then carry a suffix).
        out_uri: Where to write the manifest.
        storage_options: fsspec options for all three.
        unpaired: ``"fail"`` (default): any file that pairs with nothing fails the pairing
            with the list and nothing is written; ``"skip"``: write the pairs and list the
            rest in the result.

    Raises:
        PairingError: a folder is missing or unreadable (``pairingSourceNotFound``,
            ``pairingSourceUnreadable``), no image has a mask (``nothingPaired``), or files
            are left unpaired (``unpairedFiles``, with ``unpaired="fail"``).

    Example:
        >>> from prefect_flux_erase import storage
        >>> storage.write_bytes("memory://doc/nothing/images/a.png", b"...")
        >>> storage.write_bytes("memory://doc/nothing/masks/b.png", b"...")
        >>> try:
        ...     build_manifest("memory://doc/nothing/images", "memory://doc/nothing/masks",
        ...                    "memory://doc/nothing/m.parquet")
        ... except PairingError as e:
        ...     e.code
        'nothingPaired'
    """
    images = _list_images(images_uri, storage_options)
    if images_uri.rstrip("/") == masks_uri.rstrip("/"):
        images, masks = _split_shared_folder(images)
    else:
        masks = _list_images(masks_uri, storage_options)
    used_masks: set[str] = set()
    ambiguous: list[str] = []
    unpaired_images: list[str] = []
    pairs: list[tuple[str, str, str]] = []
    for stem in sorted(images):
        candidates = [stem] + [stem + suffix for suffix in MASK_SUFFIXES]
        mask_stem = next((c for c in candidates if c in masks), None)
        if mask_stem is None:
            unpaired_images.extend(images[stem])
            continue
        used_masks.add(mask_stem)
        if len(images[stem]) > 1 or len(masks[mask_stem]) > 1:
            ambiguous.append(stem)
            continue
        pairs.append((images[stem][0], masks[mask_stem][0], stem))
    unpaired_masks = sorted(u for s, uris in masks.items() if s not in used_masks for u in uris)
    if unpaired not in ("fail", "skip"):
        raise ValueError(f"unpaired must be 'fail' or 'skip'; got {unpaired!r}")
    if not pairs:
        image_names = sorted(images)[:_EXAMPLES]
        mask_names = sorted(masks)[:_EXAMPLES]
        raise PairingError(
            f"no image in {storage.redact_url(images_uri)} ({len(images)} image names, e.g. "
            f"{image_names}) has a mask with the same name in "
            f"{storage.redact_url(masks_uri)} ({len(masks)} mask names, e.g. {mask_names})"
            + (f"; ambiguous names (several files): {ambiguous[:_EXAMPLES]}" if ambiguous else "")
            + f". Masks must be named like their image (extensions {', '.join(IMAGE_EXTENSIONS)}"
            f", optionally with a {'/'.join(MASK_SUFFIXES)} suffix).",
            code="nothingPaired",
        )
    if unpaired == "fail" and (unpaired_images or unpaired_masks or ambiguous):
        raise _unpaired_error(unpaired_images, unpaired_masks, ambiguous)
    table = pa.table(
        {
            "image_uri": [p[0] for p in pairs],
            "mask_uri": [p[1] for p in pairs],
            "row_key": [p[2] for p in pairs],
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    storage.write_bytes(out_uri, buffer.getvalue(), storage_options)
    return PairingResult(
        rows=len(pairs),
        unpaired_images=unpaired_images,
        unpaired_masks=unpaired_masks,
        ambiguous=ambiguous,
        manifest_uri=out_uri,
    )


def describe_unpaired(label: str, items: list[str], limit: int = 10) -> str:
    """``"2 images without a mask: a.png, b.png"`` (at most ``limit`` names, then "…").

    Example:
        >>> describe_unpaired("image without a mask", ["s3://b/i/a.png", "s3://b/i/b.png"])
        '2 images without a mask: s3://b/i/a.png, s3://b/i/b.png'
    """
    noun, _, rest = label.partition(" ")
    plural = f"{noun}s" if len(items) != 1 else noun
    shown = ", ".join(storage.redact_url(i) for i in items[:limit])
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return f"{len(items)} {plural} {rest}: {shown}{more}"


def _unpaired_error(images: list[str], masks: list[str], ambiguous: list[str]) -> PairingError:
    parts = [
        describe_unpaired(label, items)
        for label, items in (
            ("image without a mask", images),
            ("mask without an image", masks),
            ("name with several files", ambiguous),
        )
        if items
    ]
    return PairingError(
        "; ".join(parts) + ". Every file must pair (masks named like their image, extensions "
        f"{', '.join(IMAGE_EXTENSIONS)}, optionally with a {'/'.join(MASK_SUFFIXES)} suffix), "
        "or pass unpaired='skip' to write the pairs and leave the rest out; nothing was written",
        code="unpairedFiles",
        unpaired_images=images,
        unpaired_masks=masks,
        ambiguous=ambiguous,
    )
