"""Every JND model's visibility prediction against ColorVideoVDP (docs: Visibility).

    python benchmarks/visibility_vs_vdp.py [--cache DIR] [--held-out] [--rules]

The four scikit-image photos (astronaut, coffee, chelsea, rocket; full size) x JPEG
95 90 80 70 50 30 10, WebP 90 70 50 20, AVIF 90 70 50 30 (Pillow), Gaussian noise
sigma 1 2 4 8 and Gaussian blur sigma 0.5 1 2: 88 conditions. For each JND model
(ResJND with the authors' weights in fp32) ``core.visibility.visibility`` at the
default viewing conditions against cvvdp 0.5.7 on display ``standard_4k`` (75.4
pixels per degree) and on our default display (``standard_fhd``, 37.8 pixels per
degree, the same conditions the JND model is given):

- Spearman's rho of p_detect against 10 - JOD (and of the never-saturating
  detection_ratio, and of the image-wide mean_visibility);
- unseen: the share of conditions with p_detect <= 0.5 among those the reference
  calls invisible (JOD >= 9.95); seen: p_detect > 0.5 where JOD <= 9.0;
- saturated: p_detect >= 0.999 among the conditions with JOD >= 9.5;
- AUC: per pixel, how well the error-to-threshold ratio separates the reference
  heatmap's top 10 % of pixels from the rest (the mean over conditions);
- the columns of the table the work started from (72 conditions: no AVIF).

``--rules`` adds ResJND with each candidate rule for CPL residuals
(``thresholds.CPL_RULES``); ``--held-out`` repeats the table on images the rules
were not chosen on (scikit-image's immunohistochemistry and hubble_deep_field, and
OpenJND's actor and lighthouse where ../shared/jnd-reference holds them).
JND maps and reference results are cached in ``--cache`` (ResJND takes 20-60 s per
full-size image on a 2-core CPU).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, features
from scipy import ndimage, stats
from skimage import data

IMAGES = ("astronaut", "coffee", "chelsea", "rocket")
HELD_OUT = ("immunohistochemistry", "hubble_deep_field")
OPENJND = Path(
    os.environ.get("RESJND_JND_REFERENCE_DIR", Path(__file__).resolve().parents[2] / "shared" / "jnd-reference")
)
DISPLAYS = ("standard_4k", "default")
CODECS = (("jpeg", "JPEG", (95, 90, 80, 70, 50, 30, 10)), ("webp", "WEBP", (90, 70, 50, 20)))
AVIF = ("avif", "AVIF", (90, 70, 50, 30))


def distortions(image: np.ndarray, index: int) -> dict[str, np.ndarray]:
    """Every condition's distorted image (as cvvdp's data were made: seeded noise, reflected blur)."""
    out = {}
    codecs = (*CODECS, AVIF) if features.check("avif") else CODECS
    for name, fmt, qualities in codecs:
        for q in qualities:
            buf = io.BytesIO()
            Image.fromarray(image).save(buf, format=fmt, quality=q)
            out[f"{name}_{q}"] = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    for s in (1, 2, 4, 8):
        rng = np.random.default_rng(1000 * index + s)
        noisy = np.round(image.astype(np.float64) + rng.normal(0.0, s, image.shape))
        out[f"noise_{s}"] = np.clip(noisy, 0, 255).astype(np.uint8)
    for s in (0.5, 1, 2):
        blurred = ndimage.gaussian_filter(image.astype(np.float64), sigma=(s, s, 0), mode="reflect", truncate=4.0)
        out[f"blur_{s:g}"] = np.clip(np.round(blurred), 0, 255).astype(np.uint8)
    return out


def load_images(held_out: bool) -> dict[str, np.ndarray]:
    names = HELD_OUT if held_out else IMAGES
    out = {n: np.ascontiguousarray(getattr(data, n)()[..., :3]) for n in names}
    if held_out:
        for n in ("actor", "lighthouse"):
            p = OPENJND / "inputs" / f"{n}.png"
            if p.is_file():
                out[n] = np.asarray(Image.open(p).convert("RGB"))
            else:
                print(f"{p} not found: left out", file=sys.stderr)
    return out


def maps_of(name: str, image: np.ndarray, cache: Path) -> dict[str, np.ndarray]:
    """Every model's JND map of one image (ResJND in fp32, the authors' weights), cached on disk."""
    from napari_resjnd.core import maps
    from napari_resjnd.core.weights import load_model

    path = cache / f"maps_{name}.npz"
    if path.is_file():
        return dict(np.load(path))
    os.environ.setdefault("RESJND_CACHE_DIR", str(OPENJND.parent / "resjnd-official"))
    model = load_model("resjnd-cplset")
    out = {}
    for m in maps.ALL:
        t0 = time.perf_counter()
        out[m] = maps.compute([m], image, maps.MapRequest(precision="fp32", model=model))[m].jnd
        print(f"  {name}: {m} map in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    np.savez_compressed(path, **out)
    return out


def reference_of(name: str, image: np.ndarray, dist: dict[str, np.ndarray], display: str, cache: Path) -> dict:
    """cvvdp's JOD and heatmap per condition, cached on disk."""
    from napari_resjnd.core.visibility import reference
    from napari_resjnd.core.visibility.viewing import DEFAULT_VIEWING

    path = cache / f"cvvdp_{display}_{name}.npz"
    if path.is_file():
        z = np.load(path)
        return {k: (float(z[f"jod__{k}"]), z[f"hm__{k}"].astype(np.float32)) for k in dist}
    out, arrays = {}, {}
    for k, d in dist.items():
        r = (
            reference.evaluate(image, d, display=display)
            if display != "default"
            else reference.evaluate(image, d, DEFAULT_VIEWING)
        )
        out[k] = (r.jod, r.heatmap)
        arrays[f"jod__{k}"], arrays[f"hm__{k}"] = np.array(r.jod), r.heatmap.astype(np.float16)
    np.savez_compressed(path, **arrays)
    return out


def auc(score: np.ndarray, heatmap: np.ndarray) -> float:
    """ROC area of ``score`` for the heatmap's top 10 % of pixels against the rest."""
    label = (heatmap >= np.percentile(heatmap, 90)).ravel()
    npos, nneg = int(label.sum()), int(label.size - label.sum())
    if npos == 0 or nneg == 0:
        return float("nan")
    r = stats.rankdata(score.ravel())
    return float((r[label].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def predict(image, distorted, jnd, model, rule="namm", sigma_deg: float | None = None) -> dict:
    from napari_resjnd.core.maps import source
    from napari_resjnd.core.visibility.detection import NEIGHBOURHOOD_DEG, VisibilityParams, pool
    from napari_resjnd.core.visibility.thresholds import ratio
    from napari_resjnd.core.visibility.viewing import DEFAULT_VIEWING

    src = source(model)
    params = VisibilityParams(neighbourhood_deg=sigma_deg or NEIGHBOURHOOD_DEG)
    r = ratio(
        image,
        distorted,
        jnd,
        domain=src.domain,
        viewing=DEFAULT_VIEWING,
        floor=params.jnd_floor,
        beta=params.beta,
        viewing_scale=src.viewing_scale,
        cpl_rule=rule,
    )
    v = pool(r, params, DEFAULT_VIEWING, src.domain)
    return {"p": v.p_detect, "R": v.detection_ratio, "mean": v.mean_visibility, "ratio": r}


def summarise(rows: list[dict], jod_key: str) -> dict:
    p = np.array([r["p"] for r in rows])
    jod = np.array([r[jod_key] for r in rows])
    invisible, visible, high = jod >= 9.95, jod <= 9.0, jod >= 9.5

    def rho(key: str) -> float:
        v = np.array([r[key] for r in rows])
        return float(stats.spearmanr(v, 10 - jod).statistic) if np.ptp(v) > 0 else float("nan")

    def share(mask: np.ndarray, hit: np.ndarray) -> str:
        return f"{hit[mask].mean():.0%} of {mask.sum()}" if mask.any() else "-"

    return {
        "rho_p": rho("p"),
        "rho_R": rho("R"),
        "rho_mean": rho("mean"),
        "unseen": share(invisible, p <= 0.5),
        "seen": share(visible, p > 0.5),
        "saturated": share(high, p >= 0.999),
        "auc": float(np.nanmean([r[f"auc_{jod_key}"] for r in rows])),
    }


def issue_columns(rows: list[dict]) -> dict:
    """The columns of the table the work started from: 72 conditions, AVIF left out."""
    sub = [r for r in rows if not r["condition"].startswith("avif")]
    p = np.array([r["p"] for r in sub])
    rho = stats.spearmanr(p, [10 - r["jod_standard_4k"] for r in sub]).statistic
    q90 = np.mean([r["p"] for r in sub if r["condition"] == "jpeg_90"])
    n1 = np.mean([r["p"] for r in sub if r["condition"] == "noise_1"])
    return {"rho": rho, "sat_all": float(np.mean(p >= 0.999)), "q90": q90, "noise1": n1, "n": len(sub)}


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        info = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        name = info.get("Model name", "?").strip()
        flags = [f for f in ("avx2", "avx512f", "avx512_vnni", "amx_tile") if f in info.get("Flags", "")]
    except OSError:
        name, flags = platform.processor(), []
    return f"{name}, {os.cpu_count()} cores ({', '.join(flags) or 'no AVX flags read'})"


def versions() -> str:
    import importlib.metadata as md

    import PIL
    import scipy
    import skimage
    import torch

    def v(name: str) -> str:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return "absent"

    return (
        f"Python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, torch "
        f"{torch.__version__}, cvvdp {v('cvvdp')}, scikit-image {skimage.__version__}, Pillow {PIL.__version__} "
        f"(libjpeg {features.version('jpg')}, libwebp {features.version('webp')}, libavif {features.version('avif')})"
    )


def run(
    images: dict[str, np.ndarray], cache: Path, rules: bool, offset: int, sigma_deg: float | None = None
) -> dict[str, list[dict]]:
    from napari_resjnd.core.maps import ALL

    variants = [(m, "namm") for m in ALL]
    if rules:
        from napari_resjnd.core.visibility.thresholds import CPL_RULES

        variants += [("resjnd", r) for r in CPL_RULES if r != "namm"]
    rows: dict[str, list[dict]] = {f"{m}" if r == "namm" else f"resjnd [{r}]": [] for m, r in variants}
    for index, (name, image) in enumerate(images.items()):
        dist = distortions(image, index + offset)
        maps = maps_of(name, image, cache)
        refs = {d: reference_of(name, image, dist, d, cache) for d in DISPLAYS}
        for key, distorted in dist.items():
            for m, rule in variants:
                out = predict(image, distorted, maps[m], m, rule, sigma_deg)
                row = {"image": name, "condition": key, **{k: out[k] for k in ("p", "R", "mean")}}
                for d in DISPLAYS:
                    jod, heat = refs[d][key]
                    row[f"jod_{d}"] = jod
                    row[f"auc_jod_{d}"] = auc(out["ratio"], heat)
                rows[m if rule == "namm" else f"resjnd [{rule}]"].append(row)
        print(f"  {name}: {len(dist)} conditions", file=sys.stderr, flush=True)
    return rows


def print_tables(rows: dict[str, list[dict]], title: str) -> None:
    for d in DISPLAYS:
        label = "standard_4k (75.4 ppd)" if d == "standard_4k" else "our default display (standard_fhd, 37.8 ppd)"
        print(f"\n{title}; reference: ColorVideoVDP on {label}\n")
        print(
            "| model | Spearman p_detect | Spearman detection ratio | Spearman mean visibility | "
            "invisible -> unseen | clearly visible -> seen | saturated (JOD >= 9.5) | pixel AUC |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for m, r in rows.items():
            s = summarise(r, f"jod_{d}")
            print(
                f"| {m} | {s['rho_p']:.3f} | {s['rho_R']:.3f} | {s['rho_mean']:.3f} | {s['unseen']} | "
                f"{s['seen']} | {s['saturated']} | {s['auc']:.3f} |"
            )


def sensitivity(images: dict[str, np.ndarray], cache: Path, sigmas: list[float]) -> None:
    """How p_detect depends on the neighbourhood's size (reference standard_4k)."""
    table = {sigma: run(images, cache, False, 0, sigma) for sigma in sigmas}
    print(f"Machine: {machine()}\nVersions: {versions()}\nCommand: python {' '.join(sys.argv)}\n")
    heads = " | ".join(f"sigma {s:g} deg" for s in sigmas)
    print(f"| model | {heads} |\n| --- |" + " ---: |" * len(sigmas))
    for m in table[sigmas[0]]:
        cells = []
        for sigma in sigmas:
            s = summarise(table[sigma][m], "jod_standard_4k")
            cells.append(f"{s['rho_p']:.3f} ({s['saturated'].split(' ')[0]})")
        print(f"| {m} | {' | '.join(cells)} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cache", default="/tmp/resjnd-visibility-vs-vdp", help="maps and reference results")
    ap.add_argument("--held-out", action="store_true", help="the images the rules were not chosen on")
    ap.add_argument("--rules", action="store_true", help="also ResJND with each candidate rule for CPL residuals")
    ap.add_argument("--json", default=None, help="write every row here")
    ap.add_argument(
        "--sensitivity",
        default=None,
        metavar="SIGMAS",
        help="instead of the tables: p_detect's Spearman and saturation at these neighbourhoods (degrees, 0.5,1,2)",
    )
    args = ap.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    images = load_images(args.held_out)
    if args.sensitivity:
        sensitivity(images, cache, [float(v) for v in args.sensitivity.split(",")])
        return 0
    rows = run(images, cache, args.rules, offset=len(IMAGES) if args.held_out else 0)
    print(f"Machine: {machine()}\nVersions: {versions()}\nCommand: python {' '.join(sys.argv)}")
    print(f"Images: {', '.join(f'{n} {a.shape[1]} x {a.shape[0]}' for n, a in images.items())}")
    print_tables(rows, "Held-out images" if args.held_out else "The four photos")
    if not args.held_out:
        print("\nThe columns of the starting table (72 conditions, no AVIF; reference standard_4k)\n")
        print("| model | Spearman p_detect | p_detect >= 0.999 | mean p_detect JPEG q90 | noise sigma 1 |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for m, r in rows.items():
            c = issue_columns(r)
            print(f"| {m} | {c['rho']:.2f} | {c['sat_all']:.0%} | {c['q90']:.3f} | {c['noise1']:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=float))
    print(f"\n{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
