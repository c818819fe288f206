"""`resjnd evaluate`, `resjnd ladder` and `resjnd annotations merge`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..core.errors import ResJNDError
from ..core.files import json_text
from ..core.maps import ALL
from ..core.research.ladders import GENERATORS
from ..core.weights import DEFAULT_WEIGHTS, WeightsError
from ._common import Command, Parser, UsageError, add_compute, exists, fail, out_file, out_folder
from ._types import nonnegative_int, positive_int, psnr_target


def cmd_evaluate(args: argparse.Namespace) -> int:
    import csv

    from ..core.images import read_image
    from ..core.maps import is_source, source
    from ..core.research import evaluate as ev

    names = ev.map_names(args.jnd)
    targets = [float(t) for t in (args.psnr or [26.0])]
    model = None
    learned = [n for n in names if is_source(n) and source(n).needs_weights]
    if learned:
        from ..core.weights import load_model

        try:
            model = load_model(args.weights)
        except WeightsError as e:
            return fail(str(e))
    rows, failed = [], 0
    for path in args.images:
        path = Path(path)
        try:
            image = read_image(path)
            maps = ev.jnd_maps(image, names, model=model, seed=args.seed, device=args.device, precision=args.precision)
            skipped: list[tuple[str, float, str]] = []
            for r in ev.evaluate_image(image, maps, targets, seed=args.seed, skipped=skipped):
                rows.append(
                    {"image": path.name, "jnd": r.jnd, "target_psnr": r.target_psnr, "beta": r.beta, **r.metrics}
                )
            for name, target, why in skipped:
                print(f"resjnd: {path.name}: map {name} left out at {target:g} dB: {why}", file=sys.stderr)
            if not args.quiet:
                print(f"{path.name}: {len(maps)} maps x {len(targets)} PSNR targets", file=sys.stderr)
        except (OSError, ResJNDError) as e:
            failed += 1
            print(f"resjnd: skipping {path}: {e}", file=sys.stderr)
    if not rows:
        return fail("no image could be evaluated")
    from ..core.files import atomic_write

    def write_csv(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)

    atomic_write(args.out, write_csv)
    reference = learned[0] if learned else names[0]
    stats = ev.paired_stats(rows, reference=reference, seed=args.seed)
    print(ev.markdown_summary(stats, reference))
    if args.plot:
        from ..core.research.plots import quality_plot

        atomic_write(args.plot, lambda tmp: quality_plot(rows, tmp, fmt=Path(args.plot).suffix[1:]))
    return 1 if failed else 0


def _box(text: str) -> tuple[int, int, int, int]:
    """ "x,y,w,h" -> (y0, y1, x0, x1)."""
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise ResJNDError(f"--box takes x,y,w,h in pixels, got {text!r}") from None
    return y, y + h, x, x + w


def _refuse_stack(image: np.ndarray, rgb: bool, path: str) -> None:
    from ..core.images import layout_of

    layout = layout_of(image, rgb)
    if layout.n_planes != 1:
        raise ResJNDError(
            f"{path}: a stack of {layout.n_planes} planes (shape {image.shape}); a ladder is cut from one "
            "2-D image: save the plane you want as its own file"
        )


def _earlier_ladder(out: Path) -> int | None:
    """The number of levels of the ladder an earlier run wrote into ``out`` (None: no
    ladder there). Level files without a readable ``ladder.json`` are not this
    command's to replace: refused."""
    levels = sorted(out.glob("level_*.png")) if out.is_dir() else []
    record = out / "ladder.json"
    if not record.exists():
        if levels:
            raise ResJNDError(
                f"--out {out}: holds {len(levels)} level files but no ladder.json; give a new or empty folder"
            )
        return None
    try:
        n = len(json.loads(record.read_text())["levels"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ResJNDError(f"--out {out}: its ladder.json is unreadable ({e}); give a new or empty folder") from None
    unrecorded = [p.name for p in levels if p.name not in {f"level_{k:02d}.png" for k in range(n)}]
    if unrecorded:
        raise ResJNDError(
            f"--out {out}: {unrecorded[0]} is not recorded in its ladder.json; give a new or empty folder"
        )
    return n


def cmd_ladder(args: argparse.Namespace) -> int:

    from ..core.images import load_image
    from ..core.research.ladders import make_ladder

    try:
        loaded = load_image(args.image)
        image = loaded.data
        _refuse_stack(image, loaded.rgb, args.image)
        earlier = _earlier_ladder(Path(args.out))
        y0, y1, x0, x1 = _box(args.box)
        if y1 > image.shape[0] or x1 > image.shape[1] or y0 < 0 or x0 < 0 or y1 <= y0 or x1 <= x0:
            raise ResJNDError(f"box {args.box} does not lie inside the {image.shape[1]} x {image.shape[0]} image")
        lad = make_ladder(image[y0:y1, x0:x1], args.generator, args.levels, seed=args.seed)
    except (OSError, ResJNDError) as e:
        return fail(str(e))
    from ..core.files import atomic_write_all, png_writer

    out = Path(args.out)
    files = [
        (out / f"level_{k:02d}.png", png_writer(np.clip(np.rint(level), 0, 255).astype(np.uint8)))
        for k, level in enumerate(lad.levels)
    ]
    info = {
        "image": str(args.image),
        "box_xywh": args.box,
        "generator": args.generator,
        "seed": args.seed,
        "levels": [{"level": k, "psnr": p, "param": q} for k, (p, q) in enumerate(zip(lad.psnr, lad.params))],
    }
    text = json_text(info)
    # the levels and their record as one set: a failure leaves an earlier ladder as it was
    atomic_write_all([*files, (out / "ladder.json", lambda tmp: Path(tmp).write_text(text))])
    if earlier is not None:  # the earlier run's recorded levels beyond this one's go with it
        for k in range(len(lad.levels), earlier):
            (out / f"level_{k:02d}.png").unlink(missing_ok=True)
        print(f"replaced the earlier ladder in {out} ({earlier} levels, recorded in its ladder.json)")
    for row in info["levels"]:
        print(f"level {row['level']:2d}  PSNR {row['psnr']:6.2f} dB  ({args.generator} {row['param']})")
    return 0


def cmd_annotations_merge(args: argparse.Namespace) -> int:
    from ..core.files import atomic_write
    from ..core.images import read_image
    from ..core.research.annotation import (
        AnnotationSession,
        check_mergeable,
        check_same_image,
        export_pairs,
        ladders_for,
        merge,
    )
    from ..core.training.pairs import refuse_earlier_pairs

    try:  # every session checked (complete, same image) before anything is written
        sessions = [AnnotationSession.load(p) for p in args.sessions]
        check_mergeable(sessions, [str(p) for p in args.sessions])
        refuse_earlier_pairs(args.out, also=("merged.json",))
        image_path = args.image or sessions[0].image
        image = read_image(image_path)
        check_same_image(sessions, [str(p) for p in args.sessions], image, str(image_path), read=read_image)
        result = merge(sessions)
        ladders = ladders_for(image, sessions[0])
        by_box = {p.box: lad for p, lad in zip(sessions[0].patches, ladders)}
        boxes = [tuple(r["box"]) for r in result["patches"]]
        missing = [b for b in boxes if b not in by_box]
        if missing:
            raise ResJNDError(f"{args.sessions[0]}: no ladder for the merged box {missing[0]}")
        versions = [by_box[b].levels[r["median"]] for b, r in zip(boxes, result["patches"])]
        export_pairs(image, boxes, versions, args.out, stem=Path(sessions[0].image).stem)
    except (OSError, ResJNDError) as e:
        return fail(str(e))
    out = Path(args.out)
    text = json_text(result)
    atomic_write(out / "merged.json", lambda tmp: Path(tmp).write_text(text))
    a = result["agreement"]
    print(
        f"{a['patches']} patches from {len(a['observers'])} observers; mean std of critical levels "
        f"{a['mean_std']:.2f}, within one level of the median: {a['within_one_level']:.0%}; pairs in {out}"
    )
    return 0


def _check_evaluate(args: argparse.Namespace) -> None:
    out_file(args.out, suffixes=(".csv",))
    if args.plot:
        out_file(args.plot, "--plot", suffixes=(".png", ".pdf", ".svg"))
    from ..core.research.evaluate import map_names

    try:
        map_names(args.jnd)
    except ValueError as e:
        raise UsageError(f"--jnd {args.jnd!r}: {e}") from None


def _check_ladder(args: argparse.Namespace) -> None:
    exists(args.image, "ladder IMAGE", folder=False)
    out_folder(args.out)
    if args.levels < 2:
        raise UsageError(f"--levels {args.levels}: a ladder needs at least 2 levels")


def _check_merge(args: argparse.Namespace) -> None:
    for path in args.sessions:
        exists(path, "session", folder=False)
    out_folder(args.out)
    if args.image:
        exists(args.image, "--image", folder=False)


def add_commands(sub: argparse._SubParsersAction, command: Command) -> None:
    """`resjnd evaluate`, `resjnd ladder` and `resjnd annotations merge`."""
    ev = command(sub, "evaluate", help="JND-guided noise at equal PSNR, metric panel and statistics")
    ev.add_argument("images", nargs="+")
    ev.add_argument("--psnr", type=psnr_target, action="append", help="target PSNR in dB (repeatable; default 26)")
    ev.add_argument(
        "--jnd",
        default="all,uniform,shuffled",
        help=f"maps to compare, comma-separated: all ({', '.join(ALL)}), uniform, shuffled (default: %(default)s)",
    )
    ev.add_argument("--out", required=True, help="CSV with a row per image, map and target PSNR")
    ev.add_argument("--weights", default=DEFAULT_WEIGHTS)
    ev.add_argument("--plot", default=None, help="quality-versus-PSNR plot (PNG; needs matplotlib)")
    ev.add_argument("--seed", type=nonnegative_int, default=0)
    add_compute(ev, training=False)
    ev.add_argument("-q", "--quiet", action="store_true")
    ev.set_defaults(func=cmd_evaluate, check=_check_evaluate)

    ld = command(sub, "ladder", help="a distortion ladder for one patch, with its PSNRs")
    ld.add_argument("image")
    ld.add_argument("--box", required=True, help="x,y,w,h in pixels")
    ld.add_argument("--generator", default="klt", choices=GENERATORS)
    ld.add_argument("--levels", type=positive_int, default=8)
    ld.add_argument("--seed", type=nonnegative_int, default=0)
    ld.add_argument("--out", required=True)
    ld.set_defaults(func=cmd_ladder, check=_check_ladder)

    an = command(sub, "annotations", help="CPL annotation sessions")
    an_sub = an.add_subparsers(dest="action", required=True, parser_class=Parser)
    mg = command(an_sub, "merge", help="combine observers' sessions and write a pair folder")
    mg.add_argument("sessions", nargs="+", help="session JSON files (Annotate CPL widget)")
    mg.add_argument("--out", required=True, help="pair folder (data/, label/) plus merged.json")
    mg.add_argument("--image", default=None, help="the pristine image (default: the path in the session)")
    mg.set_defaults(func=cmd_annotations_merge, check=_check_merge)
