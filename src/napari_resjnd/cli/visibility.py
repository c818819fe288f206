"""`resjnd visibility map | simulate | report`: the commands, their arguments and checks."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ..core.errors import ResJNDError
from ..core.maps import DEFAULT_MODEL, SOURCES, is_source, parse_names, source
from ..core.maps import MODELS as CLASSIC_MODELS
from ..core.weights import DEFAULT_WEIGHTS, known_weights
from ._common import Command, Parser, UsageError, add_compute, exists, fail, out_folder
from ._types import fraction, nonnegative_int, positive_float, positive_int


def _jnd(model: str, image: np.ndarray, args: argparse.Namespace) -> np.ndarray:
    from ..core.maps import jnd_map

    return jnd_map(model, image, weights=args.weights, device=args.device, precision=args.precision)


def cmd_visibility_map(args: argparse.Namespace) -> int:
    import tifffile

    from ..core.files import atomic_write_all
    from ..core.images import read_image
    from ..core.visibility.detection import VisibilityParams, visibility

    try:
        pristine, distorted = read_image(args.pristine), read_image(args.distorted)
        if pristine.shape[:2] != distorted.shape[:2]:
            raise ResJNDError(
                f"{args.distorted}: {distorted.shape[1]} x {distorted.shape[0]} px, but the pristine "
                f"{args.pristine} is {pristine.shape[1]} x {pristine.shape[0]}"
            )
        params = VisibilityParams(alpha=args.alpha, beta=args.slope)
        vis = visibility(pristine, distorted, _jnd(args.jnd, pristine, args), params)
    except ResJNDError as e:
        return fail(str(e))
    out, stem = Path(args.out), Path(args.distorted).stem
    _say_if_replacing(out / f"{stem}_visibility.tif", out / f"{stem}_visibility.json")
    info = {
        "pristine": str(args.pristine),
        "distorted": str(args.distorted),
        "model": args.jnd,
        "weights": args.weights if source(args.jnd).needs_weights else None,
        **vis.summary(),
        "formula": "p(x) = 1 - exp(-(|dY(x)| / JND(x) / alpha)^beta); "
        "p_detect = 1 - exp(-mean_x (|dY| / JND / alpha)^beta)",
    }
    text = json.dumps(info, indent=2)
    tif, side = atomic_write_all(
        [
            (out / f"{stem}_visibility.tif", lambda tmp: tifffile.imwrite(tmp, vis.probability)),
            (out / f"{stem}_visibility.json", lambda tmp: Path(tmp).write_text(text)),
        ]
    )
    print(f"{stem}: p_detect {vis.p_detect:.4f} ({args.jnd}); {tif} and {side.name}")
    return 0


def _say_if_replacing(*files: Path) -> None:
    """A rerun into the same folder replaces its own earlier outputs, as a set: say so."""
    earlier = [f.name for f in files if f.exists()]
    if earlier:
        print(f"resjnd: replacing the earlier {' and '.join(earlier)} in {files[0].parent}", file=sys.stderr)


def cmd_visibility_simulate(args: argparse.Namespace) -> int:
    from ..core.visibility.psychophysics.observer import simulate

    result = simulate(
        args.threshold_psnr, trials=args.trials, runs=args.runs, seed=args.seed, slope=args.slope, lapse=args.lapse
    )
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(
            f"{args.runs} runs of {args.trials} trials, true threshold {args.threshold_psnr:g} dB: "
            f"95 % intervals cover it in {result['coverage']:.0%} of runs, median error "
            f"{result['median_abs_error_db']:.2f} dB"
        )
    return 0


def cmd_visibility_report(args: argparse.Namespace) -> int:
    from ..core.files import atomic_write_all
    from ..core.visibility.psychophysics import report
    from ..core.visibility.psychophysics.session import ObserverSession

    try:
        sessions = [ObserverSession.load(p) for p in args.sessions]
        result = report.summary(sessions)
        if not result["thresholds"]:
            raise ResJNDError("the sessions hold no answers yet")
        ranks = None
        if args.images:
            ranks = _ranks(result["thresholds"], args, [s.seed for s in sessions])
            result["rank_agreement"] = ranks
    except ResJNDError as e:
        return fail(str(e))
    out = Path(args.out)
    _say_if_replacing(out / "visibility_report.json", out / "thresholds.png")
    text = json.dumps(result, indent=1)
    atomic_write_all(
        [
            (out / "visibility_report.json", lambda tmp: Path(tmp).write_text(text)),
            (out / "thresholds.png", lambda tmp: report.threshold_plot(result["thresholds"], tmp)),
        ]
    )
    print(report.markdown(result["models"], result["paired"], ranks))
    print(f"report in {out / 'visibility_report.json'}, plot in {out / 'thresholds.png'}", file=sys.stderr)
    return 0


def _ranks(rows: list[dict], args: argparse.Namespace, seeds: list[int]) -> list[dict]:
    """Rank agreement of each model's p_detect, images read from ``--images``; the
    p_detect of a condition is the mean over the sessions' noise (each session's seed)."""
    from collections import Counter

    from ..core.images import read_image
    from ..core.visibility.detection import visibility
    from ..core.visibility.psychophysics.report import rank_agreement
    from ..core.visibility.psychophysics.stimuli import ConditionStimuli

    folder = Path(args.images)
    files: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.stem in files:
            raise ResJNDError(f"--images {folder}: {files[p.stem].name} and {p.name} share the name {p.stem!r}")
        if p.is_file():
            files[p.stem] = p
    images: dict[str, np.ndarray] = {}
    maps: dict[tuple[str, str], np.ndarray] = {}

    def image(name: str) -> np.ndarray:
        stem = Path(name).stem
        if stem not in files:
            raise ResJNDError(f"--images {folder}: no image named {stem!r} (a condition of the sessions)")
        if stem not in images:
            images[stem] = read_image(files[stem])
        return images[stem]

    def jnd(model: str, name: str) -> np.ndarray:
        if (model, name) not in maps:
            maps[(model, name)] = _jnd(model, image(name), args)
        return maps[(model, name)]

    sessions_per_seed = Counter(seeds)
    stimuli: dict[tuple[str, str, int], ConditionStimuli] = {}

    def p_detect(model: str, name: str, noise: str, psnr: float) -> float:
        total = 0.0
        for seed, n in sessions_per_seed.items():
            if (name, noise, seed) not in stimuli:
                stimuli[(name, noise, seed)] = ConditionStimuli(image(name), jnd(noise, name), seed=seed)
            stim = stimuli[(name, noise, seed)].at(psnr)
            total += n * visibility(stim.pristine, stim.distorted, jnd(model, name)).p_detect
        return total / len(seeds)

    return rank_agreement(rows, p_detect, args.jnd.split(","))


def add_commands(sub: argparse._SubParsersAction, command: Command) -> None:
    """`resjnd visibility map | simulate | report`."""
    from ..core.visibility.detection import DEFAULT_ALPHA, DEFAULT_SLOPE
    from ..core.visibility.psychophysics.psychometric import LAPSE

    vi = command(sub, "visibility", help="where a distortion is visible; observers' thresholds")
    vi_sub = vi.add_subparsers(dest="action", required=True, parser_class=Parser)
    models = ", ".join(SOURCES)
    vm = command(vi_sub, "map", help="per-pixel detection probability and p_detect of a distorted image")
    vm.add_argument("pristine")
    vm.add_argument("distorted", help="same size as PRISTINE")
    vm.add_argument(
        "--jnd", default=DEFAULT_MODEL, metavar="MODEL", help=f"the JND model: {models} (default: %(default)s)"
    )
    vm.add_argument("--out", required=True, help="folder for <stem>_visibility.tif and .json")
    vm.add_argument(
        "--weights", default=DEFAULT_WEIGHTS, help=f"ResJND weights: registry name or file; known: {known_weights()}"
    )
    add_compute(vm, training=False)
    vm.add_argument("--alpha", type=positive_float, default=DEFAULT_ALPHA, help="error/JND ratio seen with p = 1 - 1/e")
    vm.add_argument(
        "--slope", type=positive_float, default=DEFAULT_SLOPE, help="Weibull slope beta (default: %(default)s)"
    )
    vm.set_defaults(check=check_visibility, func=cmd_visibility_map)

    vs = command(vi_sub, "simulate", help="the adaptive procedure against a simulated observer")
    vs.add_argument("--threshold-psnr", type=positive_float, required=True, help="the observer's threshold (dB)")
    vs.add_argument("--trials", type=positive_int, default=80)
    vs.add_argument("--runs", type=positive_int, default=100)
    vs.add_argument("--seed", type=nonnegative_int, default=0)
    vs.add_argument("--slope", type=positive_float, default=3.5, help="the observer's Weibull slope")
    vs.add_argument("--lapse", type=fraction, default=LAPSE, help="the observer's lapse rate")
    vs.add_argument("--json", action="store_true", help="print every run as JSON")
    vs.set_defaults(check=check_visibility, func=cmd_visibility_simulate)

    vr = command(vi_sub, "report", help="thresholds per model from observers' sessions, paired tests, plot")
    vr.add_argument("sessions", nargs="+", help="session files (Visibility test widget)")
    vr.add_argument("--out", required=True, help="folder for visibility_report.json and thresholds.png")
    vr.add_argument("--images", default=None, help="folder of the tested images: adds p_detect rank agreement")
    vr.add_argument(
        "--jnd",
        default=",".join(CLASSIC_MODELS),
        help="models whose p_detect is ranked (with --images); default: the classic models, which need no "
        f"weights (add {DEFAULT_MODEL} or give all for every model)",
    )
    vr.add_argument("--weights", default=DEFAULT_WEIGHTS)
    add_compute(vr, training=False)
    vr.set_defaults(check=check_visibility, func=cmd_visibility_report)


def check_visibility(args: argparse.Namespace) -> None:
    """The visibility commands' arguments and paths, before any work."""
    if args.action == "map":
        exists(args.pristine, "visibility map PRISTINE", folder=False)
        exists(args.distorted, "visibility map DISTORTED", folder=False)
        if not is_source(args.jnd):
            raise UsageError(f"--jnd {args.jnd}: unknown model; known: {', '.join(SOURCES)}")
        out_folder(args.out)
    elif args.action == "report":
        for path in args.sessions:
            exists(path, "session", folder=False)
        out_folder(args.out)
        if args.images:
            exists(args.images, "--images", folder=True)
        try:
            args.jnd = ",".join(parse_names(args.jnd))
        except ResJNDError as e:
            raise UsageError(f"--jnd: {e}") from None
