"""`resjnd predict` (files and folders to JND maps) and `resjnd gui`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..core.weights import WeightsError
from ._common import fail


def write_outputs(pred, out_dir: Path, stem: str, jnd_scale: str, extra: dict) -> list[Path]:
    """Write ``<stem>_jnd.png``, ``<stem>_jnd.tif`` (float32, absolute),
    ``<stem>_cpl.png`` (2-D images) and ``<stem>.json`` (provenance)."""
    import tifffile
    from PIL import Image

    from ..core.jnd import normalise_max, to_uint8_absolute

    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {**pred.metadata, **extra, "jnd_png_scale": jnd_scale}
    written = []
    tif = out_dir / f"{stem}_jnd.tif"
    tifffile.imwrite(tif, pred.jnd.astype(np.float32), metadata={"resjnd": json.dumps(meta)})
    written.append(tif)
    if pred.jnd.ndim == 2:
        j8 = normalise_max(pred.jnd) if jnd_scale == "max" else to_uint8_absolute(pred.jnd)
        Image.fromarray(j8).save(out_dir / f"{stem}_jnd.png")
        cpl8 = np.clip(np.rint(pred.cpl * 255), 0, 255).astype(np.uint8)
        Image.fromarray(cpl8).save(out_dir / f"{stem}_cpl.png")
        written += [out_dir / f"{stem}_jnd.png", out_dir / f"{stem}_cpl.png"]
    else:  # stacks: float TIFF of the CPL as well
        tifffile.imwrite(out_dir / f"{stem}_cpl.tif", pred.cpl.astype(np.float32))
        written.append(out_dir / f"{stem}_cpl.tif")
    side = out_dir / f"{stem}.json"
    side.write_text(json.dumps(meta, indent=2))
    return written + [side]


def cmd_predict(args) -> int:
    from tqdm import tqdm

    from ..core.batch import list_jobs, parse_shard, run_batch, shard, write_summary
    from ..core.inference import predict
    from ..core.weights import load_model

    try:
        model = load_model(args.weights)
        jobs = list_jobs(args.images, args.out, recursive=args.recursive)
        i, n = parse_shard(args.shard) if args.shard else (0, 1)
    except (WeightsError, ValueError) as e:
        return fail(str(e))
    jobs = shard(jobs, i, n)
    bar = tqdm(total=len(jobs), unit="image", disable=args.quiet)

    def compute(image, job):
        pred = predict(model, image, tile=args.tile, device=args.device, precision=args.precision)
        if not args.quiet:
            m = pred.metadata
            tqdm.write(f"{job.source.name}: JND mean {pred.jnd.mean():.2f}, max {pred.jnd.max():.2f} grey levels "
                       f"({m['seconds']:.1f} s, {m['device']}, {m['precision']})")
        return pred

    def write(pred, job):
        write_outputs(pred, job.out_dir, job.stem, args.jnd_scale, {"source": str(job.source)})

    def on_done(job, ok, error):
        bar.update(1)
        if error is not None:
            tqdm.write(f"resjnd: skipping {job.source}: {error}", file=sys.stderr)

    summary = run_batch(jobs, compute, write, skip_existing=args.skip_existing,
                        pipeline=not args.no_pipeline, on_done=on_done)
    bar.close()
    name = "summary.json" if n == 1 else f"summary-shard-{i}-of-{n}.json"
    write_summary(summary, Path(args.out) / name, {"shard": [i, n], "weights": model.provenance.get("weights")})
    if not args.quiet:
        c = summary.as_dict()["counts"]
        print(f"{c['done']} done, {c['skipped']} skipped, {c['failed']} failed in {summary.seconds:.1f} s; "
              f"summary in {Path(args.out) / name}")
    return 1 if summary.failed else 0


def cmd_gui(args) -> int:
    from ..launcher import launch

    launch(args.images, weights=args.weights)
    return 0
