"""Benchmark the local erase engine against OpenCV Telea/NS and pypatchmatch on real photos.

Every method erases the same masks from the same scikit-image photographs in one run, so the
figures compare side by side on the same (shared, loaded) machine. Per case it measures, over the
bounding box of the (dilated) mask: PSNR and SSIM against the untouched photo, the detail ratio
(mean gradient magnitude of the filled hole ÷ the original's in the same hole: ~0.3 is a smear,
~1 keeps texture) and the wall time of one call. Then it erases one small object from a 12 MP and
a 1 MP photo, each in a fresh interpreter, to show that cost follows the mask (time ratio and
peak RSS).

Run (needs the ``bench`` extra: scikit-image and pypatchmatch)::

    nice python benchmarks/engine_quality.py [--quick] [--sheet engine-contact-sheet.png]

The last line is machine-readable:
``engine detail_ratio=… psnr_delta_vs_telea=… ssim_delta_vs_telea=… time_ratio_vs_patchmatch=…``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
from numpy.typing import NDArray

from prefect_flux_erase.engine.erase import erase
from prefect_flux_erase.engine.regions import dilate

Engine = Callable[[NDArray[np.uint8], NDArray[np.bool_], int], NDArray[np.uint8]]
KINDS = ("small", "medium", "thin", "large")
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
DILATIONS = (0, 10)


def load_photo(name: str) -> NDArray[np.uint8]:
    """A bundled scikit-image colour photograph as contiguous (H, W, 3) uint8."""
    import skimage.data

    return np.ascontiguousarray(getattr(skimage.data, name)()[:, :, :3])


def _blob(shape: tuple[int, int], area: float, rng: np.random.Generator) -> NDArray[np.bool_]:
    """A smooth random star-shaped blob covering ``area`` (fraction) of the frame."""
    h, w = shape
    angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    radii = np.ones(64)
    for k in range(1, 5):  # a few low harmonics make organic, object-like outlines
        radii += rng.uniform(0.0, 0.25 / k) * np.cos(k * angles + rng.uniform(0, 2 * np.pi))
    stretch = rng.uniform(0.6, 1.0)
    xs, ys = radii * np.cos(angles), radii * np.sin(angles) * stretch
    poly_area = 0.5 * abs(np.dot(xs, np.roll(ys, 1)) - np.dot(ys, np.roll(xs, 1)))
    scale = np.sqrt(area * h * w / poly_area)
    rot = rng.uniform(0, np.pi)
    px = scale * (xs * np.cos(rot) - ys * np.sin(rot))
    py = scale * (xs * np.sin(rot) + ys * np.cos(rot))
    cx = (
        rng.uniform(px.max() - px.min(), w - (px.max() - px.min())) if w > 2 * np.ptp(px) else w / 2
    )
    cy = (
        rng.uniform(py.max() - py.min(), h - (py.max() - py.min())) if h > 2 * np.ptp(py) else h / 2
    )
    pts = np.stack([px + cx, py + cy], axis=1).round().astype(np.int32)
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [pts], 1)
    return mask.astype(bool)


def _strokes(shape: tuple[int, int], rng: np.random.Generator) -> NDArray[np.bool_]:
    """Text-like marks: a few words and a scribble, 3–5 px wide (like watermarks, captions)."""
    h, w = shape
    mask = np.zeros(shape, np.uint8)
    words = ("SAMPLE", "2024", "PROOF", "(c) photo", "DRAFT")
    for _ in range(3):
        word = words[int(rng.integers(len(words)))]
        scale = w / 600 * rng.uniform(0.9, 1.4)
        org = (int(rng.uniform(0.05, 0.55) * w), int(rng.uniform(0.15, 0.95) * h))
        cv2.putText(mask, word, org, cv2.FONT_HERSHEY_SIMPLEX, scale, 1, int(rng.integers(3, 6)))
    pts = np.cumsum(rng.normal(0, w / 25, (8, 2)), axis=0) + np.array([w * 0.5, h * 0.5])
    cv2.polylines(mask, [pts.astype(np.int32)], False, 1, int(rng.integers(3, 6)))
    return mask.astype(bool)


def make_mask(kind: str, shape: tuple[int, int], seed: int) -> NDArray[np.bool_]:
    """The benchmark's mask of ``kind`` (small ~2 %, medium ~8 %, thin strokes, large ~20 %)."""
    rng = np.random.default_rng(seed)
    if kind == "thin":
        return _strokes(shape, rng)
    return _blob(shape, {"small": 0.02, "medium": 0.08, "large": 0.20}[kind], rng)


def _crop_1mp(mask: NDArray[np.bool_]) -> tuple[slice, slice]:
    """A ≤ 1 MP window centred on the mask (the whole frame when it is already ≤ 1 MP)."""
    h, w = mask.shape
    side = 1000
    if h * w <= side * side:
        return slice(0, h), slice(0, w)
    ys, xs = np.nonzero(mask)
    cy, cx = int(ys.mean()), int(xs.mean())
    y0 = min(max(cy - side // 2, 0), max(h - side, 0))
    x0 = min(max(cx - side // 2, 0), max(w - side, 0))
    return slice(y0, y0 + side), slice(x0, x0 + side)


def _telea(rgb: NDArray[np.uint8], hole: NDArray[np.bool_], _: int) -> NDArray[np.uint8]:
    return np.asarray(cv2.inpaint(rgb, hole.view(np.uint8), 3, cv2.INPAINT_TELEA))


def _ns(rgb: NDArray[np.uint8], hole: NDArray[np.bool_], _: int) -> NDArray[np.uint8]:
    return np.asarray(cv2.inpaint(rgb, hole.view(np.uint8), 3, cv2.INPAINT_NS))


def _patchmatch(rgb: NDArray[np.uint8], hole: NDArray[np.bool_], _: int) -> NDArray[np.uint8]:
    import patchmatch

    patchmatch.set_random_seed(0)
    ys, xs = _crop_1mp(hole)
    out = rgb.copy()
    out[ys, xs] = patchmatch.inpaint(rgb[ys, xs], hole[ys, xs], patch_size=5)
    return out


#: Baselines receive the already-dilated hole; the engine gets the raw mask and the dilation.
BASELINES: dict[str, Engine] = {"telea": _telea, "ns": _ns, "patchmatch": _patchmatch}


@dataclass
class Score:
    """One engine on one case."""

    psnr: float
    ssim: float
    detail: float
    seconds: float


def _gradient(gray: NDArray[np.float32]) -> NDArray[np.float32]:
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    return np.asarray(np.hypot(gx, gy))


def score(
    orig: NDArray[np.uint8], out: NDArray[np.uint8], hole: NDArray[np.bool_], secs: float
) -> Score:
    """PSNR/SSIM over the hole's bounding box, and the detail ratio inside the hole."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    ys, xs = np.nonzero(hole)
    box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    a, b = orig[box], out[box]
    psnr = float(peak_signal_noise_ratio(a, b, data_range=255))
    ssim = float(structural_similarity(a, b, channel_axis=2, data_range=255))
    g_orig = _gradient(cv2.cvtColor(orig, cv2.COLOR_RGB2GRAY).astype(np.float32))
    g_out = _gradient(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY).astype(np.float32))
    detail = float(g_out[hole].mean() / max(float(g_orig[hole].mean()), 1e-6))
    return Score(psnr, ssim, detail, secs)


def _timed(fn: Callable[[], NDArray[np.uint8]]) -> tuple[NDArray[np.uint8], float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


@dataclass
class Case:
    """One benchmark case: a photo, a mask and a dilation, and every engine's output."""

    photo: str
    kind: str
    variant: int
    dilation: int
    rgb: NDArray[np.uint8]
    mask: NDArray[np.bool_]
    outs: dict[str, NDArray[np.uint8]] = field(default_factory=dict)

    @property
    def hole(self) -> NDArray[np.bool_]:
        """The region every engine replaces: the mask grown by the dilation."""
        return dilate(self.mask, self.dilation)


def _engine(rgb: NDArray[np.uint8], mask: NDArray[np.bool_], dil: int) -> NDArray[np.uint8]:
    return erase(rgb, mask, dilate_pixels=dil)


def run_cases(photos: tuple[str, ...], variants: int) -> tuple[dict[str, list[Score]], list[Case]]:
    """Erase every case with every engine, interleaved; return scores per engine and the cases."""
    warm = np.zeros((96, 96, 3), np.uint8)
    warm[::3] = 200
    erase(warm, np.pad(np.ones((24, 24), bool), 36), dilate_pixels=3)  # load JIT code and libs
    names = ["engine", *BASELINES]
    scores: dict[str, list[Score]] = {name: [] for name in names}
    cases: list[Case] = []
    for pi, photo in enumerate(photos):
        rgb = load_photo(photo)
        for ki, kind in enumerate(KINDS):
            for v in range(variants):
                mask = make_mask(kind, rgb.shape[:2], seed=1000 * pi + 10 * ki + v)
                for dil in DILATIONS:
                    case = Case(photo, kind, v, dil, rgb, mask)
                    hole = case.hole
                    for name in names:
                        # The engine gets the raw mask and dilates it itself, like the API.
                        fn, arg = (_engine, mask) if name == "engine" else (BASELINES[name], hole)
                        t0 = time.perf_counter()
                        out = fn(rgb, arg, dil)
                        secs = time.perf_counter() - t0
                        case.outs[name] = out
                        scores[name].append(score(rgb, out, hole, secs))
                    cases.append(case)
                    print(
                        f"  {photo:9s} {kind:6s} v{v} dil={dil:2d} hole={hole.mean():5.1%} "
                        + " ".join(
                            f"{n}: {scores[n][-1].psnr:5.2f}dB {scores[n][-1].ssim:.3f} "
                            f"d={scores[n][-1].detail:.2f} {scores[n][-1].seconds:.2f}s"
                            for n in names
                        ),
                        flush=True,
                    )
    return scores, cases


def summarise(scores: dict[str, list[Score]], cases: list[Case]) -> str:
    """Print per-engine and per-kind figures; return the machine-readable last line."""
    mean, median = statistics.mean, statistics.median
    print(f"\n{'engine':12s} {'PSNR dB':>8s} {'SSIM':>6s} {'detail':>7s} {'median s':>9s}")
    for name, ss in scores.items():
        print(
            f"{name:12s} {mean(s.psnr for s in ss):8.2f} {mean(s.ssim for s in ss):6.3f} "
            f"{median(s.detail for s in ss):7.2f} {median(s.seconds for s in ss):9.3f}"
        )
    print(f"({len(cases)} cases; PSNR/SSIM means, detail and time medians)")
    eng, tel, pm = scores["engine"], scores["telea"], scores["patchmatch"]
    print("\nengine vs telea by mask kind (PSNR dB / SSIM deltas, engine detail):")
    for kind in KINDS:
        idx = [i for i, c in enumerate(cases) if c.kind == kind]
        print(
            f"  {kind:6s} {mean(eng[i].psnr - tel[i].psnr for i in idx):+6.2f} / "
            f"{mean(eng[i].ssim - tel[i].ssim for i in idx):+.4f}   "
            f"detail {median(eng[i].detail for i in idx):.2f}"
        )
    per_case = median(e.seconds / p.seconds for e, p in zip(eng, pm, strict=True))
    print(f"median per-case time ratio engine/patchmatch: {per_case:.3f}")
    psnr_delta = mean(s.psnr for s in eng) - mean(s.psnr for s in tel)
    ssim_delta = mean(s.ssim for s in eng) - mean(s.ssim for s in tel)
    time_ratio = median(s.seconds for s in eng) / median(s.seconds for s in pm)
    return (
        f"engine detail_ratio={median(s.detail for s in eng):.3f} "
        f"psnr_delta_vs_telea={psnr_delta:+.3f} ssim_delta_vs_telea={ssim_delta:+.4f} "
        f"time_ratio_vs_patchmatch={time_ratio:.3f}"
    )


def scale_child(megapixels: float, relative: bool) -> None:
    """In a fresh interpreter: erase one small object from an upscaled photo; print JSON."""
    warm = np.zeros((96, 96, 3), np.uint8)
    erase(warm, np.pad(np.ones((24, 24), bool), 36), dilate_pixels=3)  # load JIT code and libs
    side = round((megapixels * 1e6) ** 0.5)
    rgb = cv2.resize(load_photo("astronaut"), (side, side), interpolation=cv2.INTER_CUBIC)
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    # The object covers 2 % of a 1 MP frame (the same object in both photos), or, when
    # relative, 2 % of this frame (the object scales with the photo).
    mask_side = side if relative else 1000
    mask = np.zeros((side, side), bool)
    y0 = (side - mask_side) // 2
    mask[y0 : y0 + mask_side, y0 : y0 + mask_side] = make_mask("small", (mask_side,) * 2, seed=7)
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        erase(rgb, mask, dilate_pixels=10)
        runs.append(time.perf_counter() - t0)
    with open("/proc/self/status") as f:
        hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
    result = {"mp": side * side / 1e6, "seconds": statistics.median(runs), "peak_mb": hwm / 1024}
    print(json.dumps(result))


def run_scale() -> None:
    """Erase the same small object from a 12 MP and a 1 MP photo, each in a fresh interpreter."""
    for relative in (False, True):
        res = {}
        for mp in (1.0, 12.0):
            cmd = [sys.executable, __file__, "--scale-child", str(mp)]
            cmd += ["--relative"] if relative else []
            child = subprocess.run(cmd, check=True, capture_output=True, text=True)
            res[mp] = json.loads(child.stdout.strip().splitlines()[-1])
        label = "object 2 % of each frame" if relative else "same 20k-px object"
        small, big = res[1.0], res[12.0]
        print(
            f"scale ({label}): 1 MP {small['seconds']:.3f}s peak {small['peak_mb']:.0f} MB | "
            f"12 MP {big['seconds']:.3f}s peak {big['peak_mb']:.0f} MB | "
            f"time ratio 12/1 = {big['seconds'] / small['seconds']:.2f}"
        )


def write_sheet(cases: list[Case], path: str, tile: int = 200) -> None:
    """Contact sheet: original | mask | each engine, one row per photo and mask kind (dil 10)."""
    from PIL import Image, ImageDraw

    names = ["original", "mask", "engine", "telea", "ns", "patchmatch"]
    rows: list[list[NDArray[np.uint8]]] = []
    for case in cases:
        if case.dilation != 10 or case.variant != 0:
            continue
        hole = case.hole
        shown = case.rgb.copy()
        shown[hole] = (shown[hole] * 0.35 + np.array([255, 0, 255]) * 0.65).astype(np.uint8)
        height = round(case.rgb.shape[0] * tile / case.rgb.shape[1])
        tiles = [case.rgb, shown] + [case.outs[n] for n in names[2:]]
        size = (tile, height)
        rows.append([np.asarray(cv2.resize(t, size, interpolation=cv2.INTER_AREA)) for t in tiles])
    sheet = Image.new("RGB", (tile * len(names), 16 + sum(r[0].shape[0] for r in rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, name in enumerate(names):
        draw.text((i * tile + 4, 2), name, fill="black")
    y = 16
    for row in rows:
        for i, t in enumerate(row):
            sheet.paste(Image.fromarray(t), (i * tile, y))
        y += row[0].shape[0]
    # A 256-colour palette keeps the sheet small enough for the docs.
    sheet.quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    print(f"contact sheet: {path}")


def main() -> None:
    """Parse arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 photos, 1 mask per kind")
    parser.add_argument("--sheet", metavar="FILE.png", help="write a contact sheet")
    parser.add_argument("--no-scale", action="store_true", help="skip the 12 MP vs 1 MP run")
    parser.add_argument("--scale-child", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--relative", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scale_child:
        scale_child(args.scale_child, args.relative)
        return
    photos = PHOTOS[:2] if args.quick else PHOTOS
    scores, cases = run_cases(photos, variants=1 if args.quick else 2)
    if args.sheet:
        write_sheet(cases, args.sheet)
    if not args.no_scale:
        run_scale()
    print(summarise(scores, cases))


if __name__ == "__main__":
    main()
