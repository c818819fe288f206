"""``resjnd doctor``: this machine, what ``auto`` picks and why, and each inference
path measured (speed and error against fp32), for choosing a precision and for
bug reports."""

from __future__ import annotations

import argparse
import sys

from ..core.errors import ResJNDError
from ..core.files import json_text
from ..core.weights import DEFAULT_WEIGHTS
from ._common import Command, fail
from ._types import positive_int


def cmd_doctor(args: argparse.Namespace) -> int:
    from ..core import doctor
    from ..core.precision import ACCURACY_BOUND
    from ..core.weights import load_model

    info = {"versions": doctor.versions(), "machine": doctor.machine()}
    for name, why in info["machine"]["libraries"].items():  # type: ignore[index]
        if why != "ok" and "does not import" in why:  # broken, not just absent: say so, then do without it
            print(f"resjnd: doctor: {why}; treated as missing ({doctor.OPTIONAL[name]} left out)", file=sys.stderr)
    model, problem = None, None
    try:
        model = load_model(args.weights or DEFAULT_WEIGHTS)
    except (ResJNDError, OSError) as e:
        problem = str(e)
        if args.weights is None:  # the default weights (not downloaded, offline): the machine still described
            print(f"resjnd: doctor: no weights to measure with ({e})", file=sys.stderr)
    if model is not None:
        choice = doctor.auto_choice(model)
        reason = choice.reason
        if choice.precision == "int8" and not doctor.int8_usable():
            reason += "; but OpenVINO does not import here: predict fails until it is repaired"
        info["auto"] = {"weights": model.provenance.name, "precision": choice.precision, "reason": reason}
    rows = []
    if model is not None and args.measure:
        from skimage import data

        image = data.coffee()[: args.size, : args.size]
        rows = doctor.measure(model, image, repeat=args.repeat)
        info["measured"] = {
            "image": f"skimage.data.coffee() top-left {image.shape[1]} x {image.shape[0]}",
            "bound": {"mean": ACCURACY_BOUND.mean, "p999": ACCURACY_BOUND.p999},
            "paths": [{**vars(r), "within_bound": r.within_bound} for r in rows],
            "fastest_within_bound": doctor.fastest_within_bound(rows).precision,
        }
    if args.json:
        print(json_text(info, indent=1))
    else:
        _print_text(info, rows)
    if problem is not None and args.weights is not None:  # weights asked for by name: their failure is the result
        return fail(f"--weights: {problem}")
    return 0


def _print_text(info: dict, rows: list) -> None:
    v, m = info["versions"], info["machine"]
    print(" · ".join(f"{k} {val}" for k, val in v.items()))
    print(f"CPU: {m['cpu']} ({m['threads']} threads); features: {' '.join(m['features']) or 'none known'}")
    extra = f"yes, scheme {m['int8_scheme']}" if m["int8_extra"] else "no"
    print(f"native bf16: {'yes' if m['native_bf16'] else 'no'}; int8 extra: {extra}")
    print(f"devices: {', '.join(m['devices'])}")
    print("optional libraries: " + "; ".join(f"{k}: {v.removeprefix(k + ' ')}" for k, v in m["libraries"].items()))
    if "auto" in info:
        a = info["auto"]
        print(f"auto on the CPU with {a['weights']}: {a['precision']} ({a['reason']})")
    if rows:
        meas = info["measured"]
        print(f"\nmeasured on {meas['image']} (error: |JND - JND(fp32)| in grey levels):")
        print("| path | s/MP | error mean / p99.9 | within the bound |\n| --- | ---: | --- | --- |")
        for r in rows:
            ok = "yes" if r.within_bound else "no"
            print(f"| {r.precision} | {r.seconds_per_mp:.1f} | {r.mean_error:.3f} / {r.p999_error:.2f} | {ok} |")
        print(f"fastest within the bound here: {meas['fastest_within_bound']}")


def add_commands(sub: argparse._SubParsersAction, command: Command) -> None:
    """`resjnd doctor`."""
    d = command(sub, "doctor", help="this machine, what auto picks and why, every path's speed and error")
    d.add_argument("--weights", default=None, help=f"weights to measure with (default: {DEFAULT_WEIGHTS})")
    d.add_argument("--no-measure", dest="measure", action="store_false", help="only say what auto picks")
    d.add_argument("--size", type=positive_int, default=128, help="side of the photo crop measured (default: 128)")
    d.add_argument("--repeat", type=positive_int, default=1, help="runs per path, best kept (default: 1)")
    d.add_argument("--json", action="store_true", help="print JSON")
    d.set_defaults(func=cmd_doctor)
