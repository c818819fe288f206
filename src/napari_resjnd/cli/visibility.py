"""`resjnd visibility map | simulate | report`: the commands, their arguments and checks.

:func:`add_viewing` and :func:`viewing_from` give any command the viewing-condition
options (distance, display size and resolution, peak luminance, or pixels per degree).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..core.errors import ResJNDError
from ..core.maps import DEFAULT_MODEL, SOURCES, is_source, parse_names, source
from ..core.maps import MODELS as CLASSIC_MODELS
from ..core.visibility.viewing import (
    DEFAULT_DIAGONAL_IN,
    DEFAULT_DISTANCE_CM,
    DEFAULT_PEAK_LUMINANCE,
    DEFAULT_RESOLUTION,
    DEFAULT_VIEWING,
    ViewingConditions,
)
from ..core.weights import DEFAULT_WEIGHTS, known_weights
from ._common import Command, Parser, UsageError, add_compute, exists, fail, out_folder
from ._types import fraction, nonnegative_int, positive_float, positive_int


def _jnd(model: str, image: np.ndarray, args: argparse.Namespace) -> np.ndarray:
    from ..core.maps import jnd_map

    return jnd_map(model, image, weights=args.weights, device=args.device, precision=args.precision)


def resolution(text: str) -> tuple[int, int]:
    """WIDTHxHEIGHT, both whole numbers above 0."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        w, h = (int(v) for v in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be WIDTHxHEIGHT in pixels (1920x1080), got {text!r}") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"must be two whole numbers above 0, got {text!r}")
    return w, h


def add_viewing(parser: argparse.ArgumentParser) -> None:
    """The viewing-condition options; the default is an office display (37.8 pixels per degree)."""
    g = parser.add_argument_group("viewing conditions", f"default: {DEFAULT_VIEWING.describe()} (docs: Visibility)")
    g.add_argument("--viewing-distance", type=positive_float, metavar="CM", help=f"(default {DEFAULT_DISTANCE_CM:g})")
    g.add_argument(
        "--display-size", type=positive_float, metavar="INCHES", help=f"diagonal (default {DEFAULT_DIAGONAL_IN:g})"
    )
    w, h = DEFAULT_RESOLUTION
    g.add_argument("--display-resolution", type=resolution, metavar="WxH", help=f"(default {w}x{h})")
    g.add_argument(
        "--peak-luminance", type=positive_float, metavar="CD_M2", help=f"(default {DEFAULT_PEAK_LUMINANCE:g})"
    )
    g.add_argument("--ppd", type=positive_float, help="pixels per degree, instead of distance, size and resolution")


def viewing_from(args: argparse.Namespace) -> ViewingConditions:
    """The viewing conditions the options give (checked: one line naming the first bad one)."""
    geometry = (args.viewing_distance, args.display_size, args.display_resolution)
    if args.ppd is not None and any(v is not None for v in geometry):
        raise UsageError(
            "--ppd replaces --viewing-distance, --display-size and --display-resolution: give one or the other"
        )
    return ViewingConditions(
        distance_cm=args.viewing_distance or DEFAULT_DISTANCE_CM,
        diagonal_in=args.display_size or DEFAULT_DIAGONAL_IN,
        resolution=args.display_resolution or DEFAULT_RESOLUTION,
        peak_luminance=args.peak_luminance or DEFAULT_PEAK_LUMINANCE,
        fixed_ppd=args.ppd,
    )


def _params(args: argparse.Namespace, viewing: ViewingConditions) -> tuple:
    """(VisibilityParams, the calibration's record or None)."""
    from ..core.visibility.calibration import select
    from ..core.visibility.detection import VisibilityParams

    if args.calibration is None:
        kw = {k: v for k, v in (("alpha", args.alpha), ("beta", args.slope)) if v is not None}
        return VisibilityParams(**kw), None
    cal = select(args.calibration, source(args.jnd).name, viewing, args.procedure)
    return cal.params(), {"file": str(args.calibration), **cal.as_dict()}


def cmd_visibility_map(args: argparse.Namespace) -> int:
    from ..core.files import atomic_write_all
    from ..core.images import read_image
    from ..core.visibility.detection import visibility

    try:
        viewing = args.viewing
        pristine = read_image(args.pristine)
        distorted = {}
        for path in args.distorted:
            d = read_image(path)
            if pristine.shape[:2] != d.shape[:2]:
                raise ResJNDError(
                    f"{path}: {d.shape[1]} x {d.shape[0]} px, but the pristine "
                    f"{args.pristine} is {pristine.shape[1]} x {pristine.shape[0]}"
                )
            distorted[path] = d
        params, calibration = _params(args, viewing)
        jnd = _jnd(args.jnd, pristine, args)  # once for every distorted image
        results = []
        for path, d in distorted.items():
            vis = visibility(pristine, d, jnd, params, model=args.jnd, viewing=viewing)
            ref = None
            if args.reference:
                from ..core.visibility import reference

                ref = reference.evaluate(pristine, d, viewing)
            results.append((path, vis, ref))
    except ResJNDError as e:
        return fail(str(e))
    files = _map_files(args, results, calibration)
    _say_if_replacing(*(f for f, _ in files))
    atomic_write_all(files)
    for path, vis, ref in results:
        extra = f"; ColorVideoVDP {ref.jod:.3f} JOD" if ref is not None else ""
        print(
            f"{Path(path).stem}: p_detect {vis.p_detect:.4f}, mean visibility {vis.mean_visibility:.4f} "
            f"({args.jnd}{extra})"
        )
    print(f"written in {Path(args.out)} ({viewing.describe()})", file=sys.stderr)
    return 0


def _map_files(args: argparse.Namespace, results: list, calibration: dict | None) -> list:
    """Every file of the run, written as one staged set."""
    from ..core.files import json_text

    out = Path(args.out)
    files: list[tuple[Path, Callable[[str], object]]] = []
    for path, vis, ref in results:
        stem = Path(path).stem
        info = {
            "pristine": str(args.pristine),
            "distorted": str(path),
            "model": args.jnd,
            "weights": args.weights if source(args.jnd).needs_weights else None,
            **vis.summary(),
            "calibration": calibration,
            "reference": None if ref is None else {**ref.summary(), "heatmap_file": f"{stem}_cvvdp.tif"},
            "formula": "p(x) = 1 - exp(-(r(x) / alpha)^beta), r the error-to-threshold ratio of the map's "
            "domain; p_detect = p(R) at the robust maximum of the neighbourhood ratio "
            "R(x) = (sum_y w(y - x) r(y)^beta)^(1/beta) (Gaussian w, sigma neighbourhood_deg); "
            "mean_visibility = p((mean_x r^beta)^(1/beta))",
        }
        text = json_text(info)
        files.append((out / f"{stem}_visibility.tif", _tiff(vis.probability)))
        if ref is not None:
            files.append((out / f"{stem}_cvvdp.tif", _tiff(ref.heatmap)))
        files.append((out / f"{stem}_visibility.json", _text(text)))
    return files


def _tiff(array: np.ndarray) -> Callable[[str], object]:
    import tifffile

    return lambda tmp: tifffile.imwrite(tmp, array)


def _text(text: str) -> Callable[[str], object]:
    return lambda tmp: Path(tmp).write_text(text)


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
        from ..core.files import json_text

        print(json_text(result, 1))
    else:
        print(
            f"{args.runs} runs of {args.trials} trials, true threshold {args.threshold_psnr:g} dB: "
            f"95 % intervals cover it in {result['coverage']:.0%} of runs, median error "
            f"{result['median_abs_error_db']:.2f} dB"
        )
    return 0


def add_commands(sub: argparse._SubParsersAction, command: Command) -> None:
    """`resjnd visibility map | simulate | report`."""
    from ..core.visibility.detection import DEFAULT_ALPHA, DEFAULT_SLOPE
    from ..core.visibility.psychophysics.psychometric import LAPSE
    from ..core.visibility.psychophysics.session import PROCEDURES
    from ..core.visibility.reference import REFERENCES
    from ._visibility_report import cmd_visibility_report

    vi = command(sub, "visibility", help="where a distortion is visible; observers' thresholds")
    vi_sub = vi.add_subparsers(dest="action", required=True, parser_class=Parser)
    models = ", ".join(SOURCES)
    vm = command(vi_sub, "map", help="per-pixel detection probability and p_detect of distorted images")
    vm.add_argument("pristine")
    vm.add_argument("distorted", nargs="+", help="one or more, each the same size as PRISTINE")
    vm.add_argument(
        "--jnd", default=DEFAULT_MODEL, metavar="MODEL", help=f"the JND model: {models} (default: {DEFAULT_MODEL})"
    )
    vm.add_argument("--out", required=True, help="folder for <stem>_visibility.tif and .json per distorted image")
    vm.add_argument(
        "--weights", default=DEFAULT_WEIGHTS, help=f"ResJND weights: registry name or file; known: {known_weights()}"
    )
    add_compute(vm, training=False)
    vm.add_argument(
        "--alpha",
        type=positive_float,
        default=None,
        help=f"error/threshold ratio seen with p = 1 - 1/e ({DEFAULT_ALPHA:g})",
    )
    vm.add_argument("--slope", type=positive_float, default=None, help=f"Weibull slope beta ({DEFAULT_SLOPE:g})")
    vm.add_argument(
        "--calibration", default=None, help="a calibration file of `visibility report`: alpha and beta from observers"
    )
    vm.add_argument("--procedure", choices=PROCEDURES, default=None, help="which of the calibration's procedures")
    vm.add_argument(
        "--reference",
        choices=REFERENCES,
        default=None,
        help="also ColorVideoVDP's JOD and heatmap (<stem>_cvvdp.tif): pip install --no-deps cvvdp==0.5.7",
    )
    add_viewing(vm)
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

    vr = command(vi_sub, "report", help="thresholds per model, paired tests, plot; calibration with --images")
    vr.add_argument("sessions", nargs="+", help="session files (Visibility test widget)")
    vr.add_argument("--out", required=True, help="folder for visibility_report.json, thresholds.png, calibration.json")
    vr.add_argument(
        "--images",
        default=None,
        help="folder of the tested images: adds the rank agreement and writes calibration.json (alpha, beta)",
    )
    vr.add_argument(
        "--jnd",
        default=",".join(CLASSIC_MODELS),
        help="models ranked and calibrated (with --images); default: the classic models, which need no "
        f"weights (add {DEFAULT_MODEL} or give all for every model)",
    )
    vr.add_argument("--weights", default=DEFAULT_WEIGHTS)
    add_compute(vr, training=False)
    vr.set_defaults(check=check_visibility, func=cmd_visibility_report)


def check_visibility(args: argparse.Namespace) -> None:
    """The visibility commands' arguments and paths, before any work."""
    if args.action == "map":
        _check_map(args)
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


def _check_map(args: argparse.Namespace) -> None:
    exists(args.pristine, "visibility map PRISTINE", folder=False)
    stems: dict[str, str] = {}
    for path in args.distorted:
        exists(path, "visibility map DISTORTED", folder=False)
        stem = Path(path).stem
        if stem in stems:
            raise UsageError(f"{stems[stem]} and {path} would both write {stem}_visibility.*: rename one")
        stems[stem] = path
    if not is_source(args.jnd):
        raise UsageError(f"--jnd {args.jnd}: unknown model; known: {', '.join(SOURCES)}")
    try:
        args.viewing = viewing_from(args)
    except ResJNDError as e:
        raise UsageError(str(e)) from None
    if args.calibration is not None:
        exists(args.calibration, "--calibration", folder=False)
        if args.alpha is not None or args.slope is not None:
            raise UsageError("--calibration sets alpha and beta: leave out --alpha and --slope")
    elif args.procedure is not None:
        raise UsageError("--procedure picks one of a calibration's procedures: give --calibration too")
    if args.reference:
        from ..core.visibility import reference

        try:
            reference.require()
        except ResJNDError as e:
            raise UsageError(f"--reference {args.reference}: {e}") from None
    out_folder(args.out)
