"""The ``resjnd`` command line: ``predict`` files to JND maps, ``gui`` opens napari."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .core.weights import DEFAULT_WEIGHTS, REGISTRY, WeightsError


def _fail(msg: str, code: int = 2) -> int:
    print(f"resjnd: error: {msg}", file=sys.stderr)
    return code


def write_outputs(pred, out_dir: Path, stem: str, jnd_scale: str, extra: dict) -> list[Path]:
    """Write ``<stem>_jnd.png``, ``<stem>_jnd.tif`` (float32, absolute),
    ``<stem>_cpl.png`` (2-D images) and ``<stem>.json`` (provenance)."""
    import tifffile
    from PIL import Image

    from .core.jnd import normalise_max, to_uint8_absolute

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

    from .core.batch import list_jobs, parse_shard, run_batch, shard, write_summary
    from .core.inference import predict
    from .core.weights import load_model

    try:
        model = load_model(args.weights)
        jobs = list_jobs(args.images, args.out, recursive=args.recursive)
        i, n = parse_shard(args.shard) if args.shard else (0, 1)
    except (WeightsError, ValueError) as e:
        return _fail(str(e))
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


def _epoch_printer(args, quiet=False):
    """An on_event callback: a progress bar per epoch and one line per epoch."""
    from tqdm import tqdm

    bar = None

    def on_event(ev):
        nonlocal bar
        if quiet:
            return
        if ev["kind"] == "start":
            print(f"{ev['train_patches']} training and {ev['val_patches']} validation patches of "
                  f"{args.patch} px; {ev['steps']} steps per epoch")
        elif ev["kind"] == "step":
            if bar is None:
                bar = tqdm(total=ev["steps"], desc=f"epoch {ev['epoch']}", unit="step", leave=False)
            bar.update(1)
            bar.set_postfix(loss=f"{ev['loss']:.2e}")
        elif ev["kind"] == "epoch":
            if bar is not None:
                bar.close()
                bar = None
            train = "-" if ev["train_loss"] is None else f"{ev['train_loss']:.4e}"
            val = "-" if ev["val_loss"] is None else f"{ev['val_loss']:.4e}"
            print(f"epoch {ev['epoch']:3d}  train {train}  val {val}" + ("  (best, saved)" if ev["best"] else ""),
                  flush=True)

    return on_event


def cmd_train(args) -> int:
    import torch

    from .core.finetune import FinetuneConfig, history_path
    from .core.model import ResJND
    from .core.training import init_distributed, iter_train
    from .core.weights import load_model

    dist, device = init_distributed()
    rank = dist.get_rank() if dist is not None else 0
    try:
        if args.weights:
            model = load_model(args.weights)
        else:  # the authors' initialisation, the same on every rank
            torch.manual_seed(args.seed)
            model = ResJND(args.channels, args.recursions)
            model.provenance = {"weights": "random-init", "sha256": None}
        config = FinetuneConfig(
            epochs=args.epochs, patch=args.patch, batch=args.batch, preset=args.preset, lr=args.lr, seed=args.seed,
            val_fraction=args.val_fraction, val_every=args.val_every, patience=args.patience,
            device=args.device, precision=args.precision,
        )
        on_event = _epoch_printer(args, quiet=rank != 0)
        gen = iter_train(model, args.pairs, args.out, config, val_dir=args.val, workers=args.workers,
                         resume=args.resume, dist=dist, device=device)
        while True:
            try:
                on_event(next(gen))
            except StopIteration as end:
                result = end.value
                break
    except (WeightsError, ValueError, OSError) as e:
        return _fail(str(e))
    finally:
        if dist is not None:
            dist.destroy_process_group()
    if rank == 0:
        print(f"{result.stopped}; best weights in {result.checkpoint}, history in {history_path(result.checkpoint)}")
    return 0


def cmd_finetune(args) -> int:
    from .core.finetune import FinetuneConfig, finetune, history_path
    from .core.pairs import load_pair_folder
    from .core.weights import load_model

    try:
        model = load_model(args.weights)
        pairs = load_pair_folder(args.pairs)
        config = FinetuneConfig(
            epochs=args.epochs, patch=args.patch, batch=args.batch, preset=args.preset, lr=args.lr,
            seed=args.seed, val_fraction=args.val, device=args.device, precision=args.precision,
            patience=args.patience, freeze=tuple(args.freeze or ()),
        )
        print(f"{len(pairs)} image pairs")
        on_event = _epoch_printer(args)
        result = finetune(model, pairs, args.out, config, on_event=on_event, resume=args.resume)
    except (WeightsError, ValueError, OSError) as e:
        return _fail(str(e))
    print(f"{result.stopped}; best weights in {result.checkpoint}, history in {history_path(result.checkpoint)}")
    return 0


def cmd_evaluate(args) -> int:
    import csv

    from .core import evaluate as ev
    from .core.images import read_image

    names = [n.strip() for n in args.jnd.split(",") if n.strip()]
    targets = [float(t) for t in (args.psnr or [26.0])]
    model = None
    if "resjnd" in names:
        from .core.weights import load_model

        try:
            model = load_model(args.weights)
        except WeightsError as e:
            return _fail(str(e))
    rows, failed = [], 0
    for path in args.images:
        path = Path(path)
        try:
            image = read_image(path)
            maps = ev.jnd_maps(image, names, model=model, seed=args.seed, device=args.device,
                               precision=args.precision)
            for r in ev.evaluate_image(image, maps, targets, seed=args.seed):
                rows.append({"image": path.name, "jnd": r.jnd, "target_psnr": r.target_psnr,
                             "beta": r.beta, **r.metrics})
            if not args.quiet:
                print(f"{path.name}: {len(maps)} maps x {len(targets)} PSNR targets", file=sys.stderr)
        except (OSError, ValueError) as e:
            failed += 1
            print(f"resjnd: skipping {path}: {e}", file=sys.stderr)
    if not rows:
        return _fail("no image could be evaluated")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    reference = "resjnd" if "resjnd" in names else names[0]
    stats = ev.paired_stats(rows, reference=reference, seed=args.seed)
    print(ev.markdown_summary(stats, reference))
    if args.plot:
        from .core.plots import quality_plot

        quality_plot(rows, args.plot)
    return 1 if failed else 0


def cmd_patches(args) -> int:
    from tqdm import tqdm

    from .core.pairs import write_patches

    bar = tqdm(unit="pair", disable=args.quiet)

    def progress(done, total):
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        counts = write_patches(args.src, args.out, args.size, args.stride, args.min_std, progress)
    except (ValueError, OSError) as e:
        return _fail(str(e))
    finally:
        bar.close()
    print(f"{counts['patches']} patch pairs of {args.size} px from {counts['pairs']} image pairs"
          + (f"; {counts['skipped_flat']} flat patches skipped" if args.min_std else ""))
    return 0


def _box(text: str) -> tuple[int, int, int, int]:
    """"x,y,w,h" -> (y0, y1, x0, x1)."""
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--box takes x,y,w,h in pixels, got {text!r}") from None
    return y, y + h, x, x + w


def cmd_ladder(args) -> int:
    from PIL import Image

    from .core.images import read_image
    from .core.ladders import make_ladder

    try:
        image = read_image(args.image)
        y0, y1, x0, x1 = _box(args.box)
        if y1 > image.shape[0] or x1 > image.shape[1] or y0 < 0 or x0 < 0 or y1 <= y0 or x1 <= x0:
            raise ValueError(f"box {args.box} does not lie inside the {image.shape[1]} x {image.shape[0]} image")
        lad = make_ladder(image[y0:y1, x0:x1], args.generator, args.levels, seed=args.seed)
    except (OSError, ValueError) as e:
        return _fail(str(e))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for k, level in enumerate(lad.levels):
        Image.fromarray(np.clip(np.rint(level), 0, 255).astype(np.uint8)).save(out / f"level_{k:02d}.png")
    info = {"image": str(args.image), "box_xywh": args.box, "generator": args.generator, "seed": args.seed,
            "levels": [{"level": k, "psnr": p, "param": q} for k, (p, q) in enumerate(zip(lad.psnr, lad.params))]}
    (out / "ladder.json").write_text(json.dumps(info, indent=2))
    for row in info["levels"]:
        print(f"level {row['level']:2d}  PSNR {row['psnr']:6.2f} dB  ({args.generator} {row['param']})")
    return 0


def cmd_annotations_merge(args) -> int:
    from .core.annotation import Session, export_pairs, ladders_for, merge
    from .core.images import read_image

    try:
        sessions = [Session.load(p) for p in args.sessions]
        result = merge(sessions)
        image = read_image(args.image or sessions[0].image)
        ladders = ladders_for(image, sessions[0])
        by_box = {p.box: lad for p, lad in zip(sessions[0].patches, ladders)}
        boxes = [tuple(r["box"]) for r in result["patches"]]
        versions = [by_box[b].levels[r["median"]] for b, r in zip(boxes, result["patches"])]
        export_pairs(image, boxes, versions, args.out, stem=Path(sessions[0].image).stem)
    except (OSError, ValueError, KeyError) as e:
        return _fail(str(e))
    out = Path(args.out)
    (out / "merged.json").write_text(json.dumps(result, indent=2))
    a = result["agreement"]
    print(f"{a['patches']} patches from {len(a['observers'])} observers; mean std of critical levels "
          f"{a['mean_std']:.2f}, within one level of the median: {a['within_one_level']:.0%}; pairs in {out}")
    return 0


def cmd_gui(args) -> int:
    from .launcher import launch

    launch(args.images, weights=args.weights)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="resjnd", description="ResJND just-noticeable-difference maps.")
    sub = p.add_subparsers(dest="command", required=True)
    known = ", ".join(f"{k} ({v.licence})" for k, v in REGISTRY.items())

    pr = sub.add_parser("predict", help="JND maps for image files")
    pr.add_argument("images", nargs="+", help="image files or folders (PNG, BMP, JPEG, TIFF, ...)")
    pr.add_argument("--out", required=True, help="output folder")
    pr.add_argument("--weights", default=DEFAULT_WEIGHTS, help=f"registry name or weights file; known: {known}")
    pr.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:1, mps")
    pr.add_argument(
        "--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
        help="auto (default): bf16 where the hardware runs it natively (mean JND error ~0.1 grey "
             "level), else fp32; fp32 reproduces the authors' maps exactly",
    )
    pr.add_argument("--tile", type=int, default=None, help="tile size in px (default: automatic)")
    pr.add_argument(
        "--jnd-scale", default="absolute", choices=["absolute", "max"],
        help="8-bit PNG as absolute grey levels, or divided by its maximum as the authors wrote it",
    )
    pr.add_argument("--recursive", action="store_true", help="look into sub-folders of folder arguments")
    pr.add_argument("--shard", default=None, help="I/N: process only shard I (0..N-1) of the sorted file list")
    pr.add_argument("--skip-existing", action="store_true", help="skip files whose outputs are complete")
    pr.add_argument("--no-pipeline", action="store_true", help="read, compute and write one file at a time")
    pr.add_argument("-q", "--quiet", action="store_true")
    pr.set_defaults(func=cmd_predict)

    ft = sub.add_parser("finetune", help="fine-tune on pristine/target pairs (DIR/data, DIR/label)")
    ft.add_argument("--pairs", required=True, help="folder with data/ (pristine) and label/ (target CPL)")
    ft.add_argument("--out", required=True, help="checkpoint to write (.safetensors); history beside it")
    ft.add_argument("--weights", default=DEFAULT_WEIGHTS, help="starting weights: registry name or file")
    ft.add_argument("--epochs", type=int, default=10)
    ft.add_argument("--patch", type=int, default=48)
    ft.add_argument("--batch", type=int, default=8)
    ft.add_argument("--lr", type=float, default=None, help="learning rate (default: the preset's)")
    ft.add_argument("--preset", default="finetune", choices=["finetune", "authors"],
                    help="finetune: Adam 1e-4, clip 0.4; authors: SGD 0.1, momentum 0.9, wd 1e-4, "
                         "clip 0.4, lr/10 every 100 epochs, sum-reduced MSE")
    ft.add_argument("--val", type=float, default=0.2, help="fraction of patches held out for validation")
    ft.add_argument("--patience", type=int, default=5, help="early stopping after N epochs without gain (0: off)")
    ft.add_argument("--freeze", nargs="*", choices=["input", "conv1", "conv2", "output"])
    ft.add_argument("--seed", type=int, default=0)
    ft.add_argument("--resume", default=None, help="a checkpoint written by an earlier run")
    ft.add_argument("--device", default="auto")
    ft.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                    help="auto (default): bf16 autocast where the hardware runs it natively, else fp32")
    ft.set_defaults(func=cmd_finetune)

    ev = sub.add_parser("evaluate", help="JND-guided noise at equal PSNR, metric panel and statistics")
    ev.add_argument("images", nargs="+")
    ev.add_argument("--psnr", type=float, action="append", help="target PSNR in dB (repeatable; default 26)")
    ev.add_argument("--jnd", default="resjnd,chou,namm,wu2017,uniform,shuffled",
                    help="maps to compare, comma-separated: resjnd, chou, namm, wu2017, uniform, shuffled")
    ev.add_argument("--out", required=True, help="CSV with a row per image, map and target PSNR")
    ev.add_argument("--weights", default=DEFAULT_WEIGHTS)
    ev.add_argument("--plot", default=None, help="quality-versus-PSNR plot (PNG; needs matplotlib)")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--device", default="auto")
    ev.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    ev.add_argument("-q", "--quiet", action="store_true")
    ev.set_defaults(func=cmd_evaluate)

    pa = sub.add_parser("patches", help="crop aligned training patches from a pair folder")
    pa.add_argument("src", help="folder with data/ (pristine) and label/ (CPL)")
    pa.add_argument("out", help="output folder, same layout")
    pa.add_argument("--size", type=int, required=True)
    pa.add_argument("--stride", type=int, default=None, help="default: the patch size (no overlap)")
    pa.add_argument("--min-std", type=float, default=0.0,
                    help="skip patches whose pristine luminance std (grey levels) is below this")
    pa.add_argument("-q", "--quiet", action="store_true")
    pa.set_defaults(func=cmd_patches)

    tr = sub.add_parser("train", help="train on a pair folder (random init or given weights); torchrun-ready")
    tr.add_argument("--pairs", required=True, help="folder with data/ and label/ (e.g. from `resjnd patches`)")
    tr.add_argument("--out", required=True, help="checkpoint to write (.safetensors); history beside it")
    tr.add_argument("--val", default=None, help="validation pair folder (default: hold out --val-fraction)")
    tr.add_argument("--val-fraction", type=float, default=0.1)
    tr.add_argument("--val-every", type=int, default=10, help="validate every N epochs (and at the end)")
    tr.add_argument("--weights", default=None, help="start from these weights (default: random initialisation)")
    tr.add_argument("--channels", type=int, default=128, help="feature channels of a new network (published: 128)")
    tr.add_argument("--recursions", type=int, default=25, help="recursions of a new network (published: 25)")
    tr.add_argument("--preset", default="authors", choices=["authors", "finetune"])
    tr.add_argument("--epochs", type=int, default=250)
    tr.add_argument("--batch", type=int, default=32, help="global batch, split over processes")
    tr.add_argument("--patch", type=int, default=48)
    tr.add_argument("--lr", type=float, default=None)
    tr.add_argument("--patience", type=int, default=0, help="early stopping after N validations without gain")
    tr.add_argument("--workers", type=int, default=2, help="DataLoader worker processes per training process")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--resume", default=None, help="a checkpoint written by an earlier run")
    tr.add_argument("--device", default="auto")
    tr.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    tr.set_defaults(func=cmd_train)

    ld = sub.add_parser("ladder", help="a distortion ladder for one patch, with its PSNRs")
    ld.add_argument("image")
    ld.add_argument("--box", required=True, help="x,y,w,h in pixels")
    ld.add_argument("--generator", default="klt", choices=["klt", "jpeg", "webp", "noise", "blur", "quant"])
    ld.add_argument("--levels", type=int, default=8)
    ld.add_argument("--seed", type=int, default=0)
    ld.add_argument("--out", required=True)
    ld.set_defaults(func=cmd_ladder)

    an = sub.add_parser("annotations", help="CPL annotation sessions")
    an_sub = an.add_subparsers(dest="action", required=True)
    mg = an_sub.add_parser("merge", help="combine observers' sessions and write a pair folder")
    mg.add_argument("sessions", nargs="+", help="session JSON files (Annotate CPL widget)")
    mg.add_argument("--out", required=True, help="pair folder (data/, label/) plus merged.json")
    mg.add_argument("--image", default=None, help="the pristine image (default: the path in the session)")
    mg.set_defaults(func=cmd_annotations_merge)

    g = sub.add_parser("gui", help="open napari with the ResJND widget")
    g.add_argument("images", nargs="*", help="images to open (default: a sample photo)")
    g.add_argument("--weights", default=None, help="weights to select in the widget")
    g.set_defaults(func=cmd_gui)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
