"""int8 side by side with the other CPU paths, in one run.

    python benchmarks/bench_int8.py                 # 512 x 512, two repeats
    python benchmarks/bench_int8.py --size 256 --reps 1 --json out.json

Rows: the plain fp32 forward (the authors' way: NCHW, whole image), ``predict`` in
fp32, bf16 (only where the CPU runs it natively) and int8, and OpenVINO's fp32
(the int8 backend without quantisation). Each row runs in a fresh process, so its
peak RSS is its own. Error: the JND against the plain forward's, grey levels.
Then the int8 cache: the first call (quantisation) time and its size on disk,
and the int8 JND error on held-out photos (not in the calibration set).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROWS = ("plain", "fp32", "bf16", "int8", "openvino-fp32")
#: The Markdown table this script prints, as README.md's Speed table and the
#: Performance page show it (tests/test_docs.py keeps them in step).
TABLE_HEADER = "| run | s / MP | × plain forward | peak RSS | JND error vs plain (mean / p99.9, grey levels) |"
ROW_LABELS = {
    "plain": "plain fp32 forward (NCHW, whole image)",
    "fp32": "`predict`, fp32",
    "bf16": "`predict`, bf16",
    "int8": "`predict`, int8 (OpenVINO)",
    "openvino-fp32": "OpenVINO fp32 (no quantisation)",
}


def markdown_table(runs: list[dict], size: int) -> str:
    """The runs as the docs' table (one run: single figures; the docs give ranges over runs)."""
    px = size * size
    lines = [TABLE_HEADER, "| --- | ---: | ---: | ---: | --- |"]
    for r in runs:
        if "skipped" in r:
            lines.append(f"| {ROW_LABELS[r['row']]} | — (skipped) | | | |")
            continue
        err = "—" if r["row"] == "plain" else f"{r['err_mean']:.3f} / {r['err_p99_9']:.2f}"
        lines.append(
            f"| {ROW_LABELS[r['row']]} | {r['seconds'] / px * 1e6:.0f} | {r['speedup']:.2f} | "
            f"{r['peak_rss_mb'] / 1000:.1f} GB | {err} |"
        )
    return "\n".join(lines)


def test_image(size: int) -> np.ndarray:
    from skimage import data

    img = data.coffee()  # not in the int8 calibration set
    reps = (size // img.shape[0] + 1, size // img.shape[1] + 1, 1)
    return np.tile(img, reps)[:size, :size]


def jnd(cpl: np.ndarray, img: np.ndarray) -> np.ndarray:
    r = (cpl - img / np.float32(255)) * 255
    return np.sqrt((r * r).mean(-1))


def child(row: str, size: int, reps: int, weights: str, out: str) -> None:
    """One row in this fresh process: best time of ``reps``, the JND, peak RSS."""
    from napari_resjnd import load_model, predict

    model = load_model(weights).eval()
    img = test_image(size)
    times = []
    for _ in range(reps + (1 if row in ("int8", "openvino-fp32") else 0)):  # one warm-up: compile
        t = time.perf_counter()
        if row == "plain":
            x = torch.from_numpy(img.astype(np.float32) / 255).permute(2, 0, 1)[None].contiguous()
            with torch.no_grad():
                cpl = model(x)[0].permute(1, 2, 0).numpy()
        elif row == "openvino-fp32":
            import openvino as ov

            if not times:
                ovm = ov.convert_model(model, example_input=torch.zeros(1, 3, 32, 32), input=[(1, 3, -1, -1)])
                cfg = {"INFERENCE_NUM_THREADS": torch.get_num_threads(), "INFERENCE_PRECISION_HINT": "f32"}
                compiled = ov.Core().compile_model(ovm, "CPU", cfg)
                t = time.perf_counter()
            x = np.ascontiguousarray(img.astype(np.float32).transpose(2, 0, 1)[None] / 255)
            cpl = compiled(x)[0][0].transpose(1, 2, 0)
        else:
            cpl = predict(model, img, device="cpu", precision=row).cpl
        times.append(time.perf_counter() - t)
    times = times[-reps:]
    np.save(out, jnd(np.asarray(cpl, np.float32), img))
    print(json.dumps({"row": row, "seconds": min(times), "peak_rss_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """This process's peak RSS. Not ru_maxrss: on Linux a child inherits its parent's."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(row: str, args: argparse.Namespace, tmp: Path) -> dict:
    out = tmp / f"{row}.npy"
    cmd = [sys.executable, __file__, "--child", row, "--size", str(args.size), "--reps", str(args.reps)]
    res = subprocess.run([*cmd, "--weights", args.weights, "--out", str(out)], capture_output=True, text=True)
    if res.returncode != 0:
        return {"row": row, "skipped": res.stderr.strip().splitlines()[-1] if res.stderr.strip() else "failed"}
    return {**json.loads(res.stdout.strip().splitlines()[-1]), "jnd": str(out)}


def held_out_errors(weights: str) -> list[dict]:
    """int8 against fp32 ``predict`` on photos outside the calibration set."""
    from skimage import data

    from napari_resjnd import load_model, predict

    model = load_model(weights)
    photos = {
        "coffee": data.coffee()[::2, ::2],
        "hubble": data.hubble_deep_field()[::4, ::4],
        "immunohistochemistry": data.immunohistochemistry()[::2, ::2],
    }
    out = []
    for name, img in photos.items():
        exact = predict(model, img, device="cpu", precision="fp32").jnd
        d = np.abs(predict(model, img, device="cpu", precision="int8").jnd - exact)
        p999 = float(np.percentile(d, 99.9))
        out.append({"photo": name, "shape": list(img.shape), "mean": float(d.mean()), "p99_9": p999})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--weights", default="resjnd-cplset")
    ap.add_argument("--json", default=None)
    ap.add_argument("--child", choices=ROWS, help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.size, args.reps, args.weights, args.out)
        return 0

    from napari_resjnd import load_model
    from napari_resjnd.core import int8
    from napari_resjnd.core.devices import cpu_has_fast_bf16

    results: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
        "native_bf16": cpu_has_fast_bf16(),
        "size": args.size,
    }
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        os.environ[int8.CACHE_ENV] = str(tmp / "int8-cache")
        model = load_model(args.weights)
        t = time.perf_counter()
        int8.network(model)
        results["int8_first_call_s"] = time.perf_counter() - t
        entry = int8.cached_model_path(model).parent
        results["int8_cache_bytes"] = sum(f.stat().st_size for f in entry.iterdir())
        rows = [r for r in ROWS if r != "bf16" or cpu_has_fast_bf16()]
        runs = [run_child(r, args, tmp) for r in rows]
        base = next(r for r in runs if r["row"] == "plain")
        ref = np.load(base["jnd"])
        for r in runs:
            if "jnd" in r:
                d = np.abs(np.load(r.pop("jnd")) - ref)
                p999 = float(np.percentile(d, 99.9))
                r.update(speedup=base["seconds"] / r["seconds"], err_mean=float(d.mean()), err_p99_9=p999)
        results["runs"] = runs
        results["held_out"] = held_out_errors(args.weights)

    px = args.size * args.size
    print(f"\n{results['machine']}, native bf16: {results['native_bf16']}; {args.size} x {args.size} coffee, tiled")
    print(f"{'run':15} {'s':>7} {'s/MP':>7} {'x plain':>8} {'peak RSS MB':>12} {'JND err mean':>13} {'p99.9':>6}")
    for r in runs:
        if "skipped" in r:
            print(f"{r['row']:15} skipped: {r['skipped']}")
            continue
        print(
            f"{r['row']:15} {r['seconds']:7.2f} {r['seconds'] / px * 1e6:7.1f} {r['speedup']:8.2f} "
            f"{r['peak_rss_mb']:12.0f} {r['err_mean']:13.4f} {r['err_p99_9']:6.3f}"
        )
    print(
        f"int8 first call (quantisation, cache empty): {results['int8_first_call_s']:.1f} s; "
        f"cache entry {results['int8_cache_bytes'] / 2**20:.2f} MiB"
    )
    for h in results["held_out"]:
        size = f"{h['shape'][1]}x{h['shape'][0]}"
        print(f"held out {h['photo']} {size}: int8 JND error mean {h['mean']:.3f}, p99.9 {h['p99_9']:.2f}")
    print("\n" + markdown_table(runs, args.size))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
