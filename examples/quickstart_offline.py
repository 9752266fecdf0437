"""Erase the sample photographs that ship with the package, offline.

The local erase engine, local files, no API key, no network. Writes a manifest of the four
samples, runs the ``erase_manifest`` flow and prints where the results and the report are.

Run:
    python examples/quickstart_offline.py --out flux-erase-quickstart
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from prefect_flux_erase import EraseSummary, erase_manifest

SAMPLES = ("astronaut", "chelsea", "coffee", "rocket")


def write_sample_manifest(root: Path) -> Path:
    """Write ``root/manifest.parquet``: one row per bundled sample photo and its mask."""
    data = resources.files("prefect_flux_erase") / "sample_data"
    table = pa.table(
        {
            "row_key": list(SAMPLES),
            "image_uri": [str(data / "images" / f"{name}.jpg") for name in SAMPLES],
            "mask_uri": [str(data / "masks" / f"{name}.png") for name in SAMPLES],
            "source": ["scikit-image sample data"] * len(SAMPLES),  # carried to the results
        }
    )
    root.mkdir(parents=True, exist_ok=True)
    manifest = root / "manifest.parquet"
    pq.write_table(table, manifest)
    return manifest


def main(out: str = "flux-erase-quickstart", engine: str = "local") -> EraseSummary:
    """Erase the samples into ``{out}/output`` and return the run's summary."""
    root = Path(out).resolve()
    manifest = write_sample_manifest(root)
    summary = erase_manifest(
        str(manifest),
        str(root / "output"),
        backend="local",  # the embedded engine; "runware" would call the API
        local_engine=engine,
    )
    assert isinstance(summary, EraseSummary)
    print(summary.describe())
    print(f"report: {summary.report_uri}")
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="flux-erase-quickstart", help="folder for everything")
    parser.add_argument(
        "--engine", default="local", help="local engine: local (default) or echo (fast stand-in)"
    )
    args = parser.parse_args()
    main(args.out, args.engine)
