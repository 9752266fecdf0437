"""A run of `erase_manifest` on the bundled samples plus two bad rows, for the report tests.

Example:
    ```python
    output = run_sample(tmp_path, local_engine="echo")
    (output / "report.html").exists()
    ```
"""

from __future__ import annotations

import contextlib
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

SAMPLES = ("astronaut", "chelsea", "coffee", "rocket")
#: Deliberately bad rows and the error code each must show in the report.
BAD_ROWS = {
    "missing-photo": "inputNotFound",
    "wrong-size-mask": "invalidMaskDimensions",
}


def sample_manifest(root: Path, *, relative: bool = False) -> Path:
    """Write a manifest of the four sample photos and the two bad rows under ``root``.

    With ``relative``, the samples are copied to ``root/photos`` and ``root/masks`` and the
    manifest names them relative to ``root`` (what the documentation's screenshot shows).

    Example:
        ```python
        manifest = sample_manifest(tmp_path)   # tmp_path / "manifest.parquet", six rows
        ```
    """
    data = resources.files("prefect_flux_erase.sample_data")
    images = [str(data / "images" / f"{name}.jpg") for name in SAMPLES]
    masks = [str(data / "masks" / f"{name}.png") for name in SAMPLES]
    missing = str(root / "no-such-photo.jpg")
    if relative:
        for folder, uris in (("photos", images), ("masks", masks)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            for uri in uris:
                (root / folder / Path(uri).name).write_bytes(Path(uri).read_bytes())
        images = [f"photos/{name}.jpg" for name in SAMPLES]
        masks = [f"masks/{name}.png" for name in SAMPLES]
        missing = "photos/no-such-photo.jpg"
    table = pa.table(
        {
            "row_key": [*SAMPLES, *BAD_ROWS],
            "image_uri": [*images, missing, images[1]],
            # chelsea.jpg is 451x300, coffee.png 600x400: the sizes do not match.
            "mask_uri": [*masks, masks[0], masks[2]],
        }
    )
    manifest = root / "manifest.parquet"
    pq.write_table(table, manifest)
    return manifest


def run_sample(root: Path, *, relative: bool = False, **options: Any) -> Path:
    """Erase the sample manifest into ``root / "output"`` (a report included); return it.

    With ``relative``, the run happens inside ``root`` with relative URIs throughout.

    Example:
        ```python
        output = run_sample(tmp_path, local_engine="echo")
        ```
    """
    from prefect_flux_erase.flows import erase_manifest

    root.mkdir(parents=True, exist_ok=True)
    manifest = sample_manifest(root, relative=relative)
    options.setdefault("max_failed_fraction", 0.5)
    with contextlib.chdir(root) if relative else contextlib.nullcontext():
        state = erase_manifest(
            manifest.name if relative else str(manifest),
            "output" if relative else str(root / "output"),
            key_column="row_key",
            return_state=True,
            **options,
        )
    assert state.is_completed(), state.message
    return root / "output"
