"""`erase_images`: erase a list of (image, mask) URI pairs through the manifest pipeline."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import flow

from prefect_flux_erase.flows.manifest_flow import erase_manifest
from prefect_flux_erase.results.summary import EraseSummary
from prefect_flux_erase.run.spec import RunConfigError
from prefect_flux_erase.storage.files import join, write_bytes


def pairs_table(pairs: Sequence[tuple[str, str] | Mapping[str, Any]]) -> pa.Table:
    """A manifest table from ``(image, mask)`` tuples or dicts.

    Dicts take ``image_uri``/``image``, ``mask_uri``/``mask`` and optionally ``key``/``row_key``
    and ``dilate_pixels``.

    Example:
        >>> pairs_table([("a.png", "a-mask.png"), {"image": "b.png", "mask": "m.png",
        ...                                         "key": "b"}]).column_names
        ['image_uri', 'mask_uri', 'row_key', 'dilate_pixels']
    """
    images: list[str | None] = []
    masks: list[str | None] = []
    keys: list[str | None] = []
    dilate: list[int | None] = []
    for n, pair in enumerate(pairs):
        if isinstance(pair, Mapping):
            image = pair.get("image_uri", pair.get("image"))
            mask = pair.get("mask_uri", pair.get("mask"))
            key = pair.get("row_key", pair.get("key"))
            images.append(image)
            masks.append(mask)
            keys.append(None if key is None else str(key))
            dilate.append(pair.get("dilate_pixels"))
        elif isinstance(pair, Sequence) and not isinstance(pair, str) and len(pair) == 2:
            images.append(pair[0])
            masks.append(pair[1])
            keys.append(None)
            dilate.append(None)
        else:
            raise RunConfigError(
                f"pairs[{n}] must be an (image_uri, mask_uri) tuple or a dict with image_uri "
                f"and mask_uri; got {pair!r:.80}",
                parameter="pairs",
            )
    # Rows without a key get their position, so every key is unique and stable.
    keys = [k if k is not None else f"{n:06d}" for n, k in enumerate(keys)]
    return pa.table(
        {
            "image_uri": pa.array(images, pa.string()),
            "mask_uri": pa.array(masks, pa.string()),
            "row_key": pa.array(keys, pa.string()),
            "dilate_pixels": pa.array(dilate, pa.int64()),
        }
    )


def write_pairs_manifest(
    pairs: Sequence[tuple[str, str] | Mapping[str, Any]],
    output: str,
    storage_options: Mapping[str, Any] | None = None,
) -> str:
    """Write the pairs as a manifest under ``{output}/_inputs/`` and return its URI.

    The file name is a hash of the pairs, so the same list gives the same manifest (and so the
    same run key: a rerun resumes instead of starting over).

    Example:
        >>> write_pairs_manifest([("a.png", "m.png")], "memory://doc/images")  # doctest: +ELLIPSIS
        'memory://doc/images/_inputs/pairs-....parquet'
    """
    table = pairs_table(pairs)
    digest = hashlib.sha256(
        json.dumps(table.to_pylist(), sort_keys=True, default=str).encode()
    ).hexdigest()[:16]
    uri = join(output, "_inputs", f"pairs-{digest}.parquet")
    buf = io.BytesIO()
    pq.write_table(table, buf)
    write_bytes(uri, buf.getvalue(), storage_options)
    return uri


@flow(name="erase_images", validate_parameters=False)
def erase_images(
    pairs: Sequence[tuple[str, str] | Mapping[str, Any]],
    output: str,
    **options: Any,
) -> EraseSummary:
    """Erase a list of image/mask URI pairs: a small manifest, then :func:`erase_manifest`.

    Args:
        pairs: ``(image_uri, mask_uri)`` tuples, or dicts with ``image_uri``, ``mask_uri`` and
            optionally ``key`` and ``dilate_pixels``.
        output: Root URI of the outputs (the manifest is written under ``_inputs/``).
        **options: Any option of :func:`erase_manifest` (``backend``, ``settings``, …).

    Raises:
        TooManyFailedRows: as :func:`erase_manifest` (the subflow's exception, with its
            ``summary``).

    Example:
        ```python
        summary = erase_images([("photos/a.jpg", "masks/a.png")], "erased/", backend="local")
        ```
    """
    if "manifest" in options:
        raise RunConfigError(
            "erase_images writes its own manifest; do not pass manifest=", parameter="manifest"
        )
    out_options = options.get("output_storage_options") or options.get("storage_options")
    manifest = write_pairs_manifest(pairs, output, out_options)
    # The manifest lives next to the outputs, so read it with the output's storage options.
    options = {**options, "key_column": "row_key"}
    if out_options is not None and options.get("storage_options") is None:
        options["storage_options"] = out_options
    summary: EraseSummary = erase_manifest(manifest, output, **options)
    return summary
