"""The bundled sample photos and masks, copied out and paired into a manifest (the demo's).

Example:
    ```python
    inputs = prepare_demo_inputs("flux-erase-demo")
    erase_manifest(inputs.manifest, inputs.output, backend="local")
    ```
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from prefect_flux_erase.storage.files import join, write_bytes

#: Package folder of the sample photographs (``images/``) and masks (``masks/``).
SAMPLE_PACKAGE = "prefect_flux_erase.sample_data"


@dataclass(frozen=True)
class DemoInputs:
    """Where the demo's inputs, manifest and outputs are."""

    images: str
    masks: str
    manifest: str
    output: str
    rows: int


def sample_files(kind: str) -> dict[str, bytes]:
    """The bundled sample files of one kind (``images`` or ``masks``), by file name.

    Example:
        >>> sorted(sample_files("masks"))[:2]
        ['astronaut.png', 'chelsea.png']
    """
    folder = resources.files(SAMPLE_PACKAGE).joinpath(kind)
    return {
        entry.name: entry.read_bytes()
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.is_file() and not entry.name.startswith(".")
    }


def prepare_demo_inputs(root: str) -> DemoInputs:
    """Copy the samples under ``{root}/inputs`` and pair them into ``{root}/manifest.parquet``.

    Example:
        >>> prepare_demo_inputs("memory://doc/demo").rows
        4
    """
    from prefect_flux_erase.manifest.pairing import build_manifest

    images, masks = join(root, "inputs", "images"), join(root, "inputs", "masks")
    for kind, target in (("images", images), ("masks", masks)):
        for name, data in sample_files(kind).items():
            write_bytes(join(target, name), data)
    manifest = join(root, "manifest.parquet")
    paired = build_manifest(images, masks, manifest)
    return DemoInputs(
        images=images, masks=masks, manifest=manifest, output=join(root, "output"), rows=paired.rows
    )
