"""Erase images with FLUX Erase on the Runware API: as a Prefect flow, or with the bare client.

The API key comes from a saved ``RunwareCredentials`` block (``--credentials-block NAME``) or
from ``RUNWARE_API_KEY``; ``RUNWARE_BASE_URL`` points the same code at another endpoint, such as
``flux-erase emulator`` for a dry run without credits.

Run:
    RUNWARE_API_KEY=rk-… python examples/runware_api.py photo.jpg mask.png --out erased
    python examples/runware_api.py --samples --out erased --credentials-block runware

Dry run against the emulator (in another shell: ``flux-erase emulator --port 8765``):
    RUNWARE_API_KEY=any RUNWARE_BASE_URL=http://127.0.0.1:8765/v1 \
        python examples/runware_api.py --samples --out erased
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import uuid
from importlib import resources
from pathlib import Path

from prefect_flux_erase import EraseSummary, FluxEraseSettings, RunwareCredentials, erase_images


def load_credentials(block: str | None = None) -> RunwareCredentials:
    """A saved block by name, or ``RUNWARE_API_KEY`` / ``RUNWARE_BASE_URL`` from the environment."""
    return RunwareCredentials.load(block) if block else RunwareCredentials()


def erase_with_prefect(
    pairs: list[tuple[str, str]], output: str, credentials: RunwareCredentials
) -> EraseSummary:
    """Erase (image, mask) pairs with the ``erase_images`` flow: resumable, with artifacts."""
    summary = erase_images(
        pairs,
        output,
        backend="runware",
        credentials=credentials,
        settings=FluxEraseSettings(dilate_pixels=12, output_format="PNG", include_cost=True),
    )
    assert isinstance(summary, EraseSummary)
    print(summary.describe())
    return summary


def data_uri(data: bytes) -> str:
    """An image's bytes as a ``data:`` URI (JPEG, PNG or WEBP, told apart by their magic)."""
    mime = "image/png"
    if data[:3] == b"\xff\xd8\xff":
        mime = "image/jpeg"
    elif data[8:12] == b"WEBP":
        mime = "image/webp"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


async def erase_with_client(image: bytes, mask: bytes, credentials: RunwareCredentials) -> bytes:
    """Erase one image with the bare ``RunwareClient`` (no Prefect): PNG bytes back."""
    settings = FluxEraseSettings(output_format="PNG", include_cost=True)
    task = settings.to_task(str(uuid.uuid4()), image=data_uri(image), mask=data_uri(mask))
    async with credentials.get_client() as client:
        items = await client.run(task)
        print(f"erased: image {items[0].image_uuid}, cost ${items[0].cost or 0:.4f}")
        png: bytes = await client.fetch_output(items[0])
        return png


def sample_pairs() -> list[tuple[str, str]]:
    """The bundled sample photos and their masks, as (image, mask) paths."""
    data = resources.files("prefect_flux_erase") / "sample_data"
    names = ("astronaut", "chelsea", "coffee", "rocket")
    return [(str(data / "images" / f"{n}.jpg"), str(data / "masks" / f"{n}.png")) for n in names]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", nargs="?", help="photo (any fsspec URI)")
    parser.add_argument("mask", nargs="?", help="its mask: white = erase")
    parser.add_argument("--samples", action="store_true", help="erase the bundled samples")
    parser.add_argument("--out", default="erased", help="output folder or URI")
    parser.add_argument("--credentials-block", help="name of a saved RunwareCredentials block")
    parser.add_argument("--client", action="store_true", help="one image with the bare client")
    args = parser.parse_args()
    creds = load_credentials(args.credentials_block)
    pairs = sample_pairs() if args.samples else [(args.image, args.mask)]
    if not all(all(pair) for pair in pairs):
        parser.error("give IMAGE and MASK, or --samples")
    if args.client:
        image, mask = (Path(p).read_bytes() for p in pairs[0])
        png = asyncio.run(erase_with_client(image, mask, creds))
        target = Path(args.out) / "erased.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(png)
        print(f"wrote {target}")
    else:
        erase_with_prefect(pairs, args.out, creds)
