"""`resjnd visibility report`: sessions (each counted once) -> thresholds, paired tests,
plot; with ``--images`` (checked against the sessions' image hashes) the rank
agreement and a calibration file for every model in ``--jnd``."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from ..core.errors import ResJNDError
from ._common import fail


def cmd_visibility_report(args: argparse.Namespace) -> int:
    from ..core.files import atomic_write_all, json_text
    from ..core.visibility import calibration as cal_file
    from ..core.visibility.psychophysics import report
    from ..core.visibility.psychophysics.calibrate import calibrate
    from ..core.visibility.psychophysics.session import load_all

    try:
        sessions, notes = load_all(args.sessions)
        result = report.summary(sessions)
        if not result["thresholds"]:
            raise ResJNDError("the sessions hold no answers yet")
        ranks, calibrations = None, []
        if args.images:
            images = TestedImages(Path(args.images), sessions, args)
            ranks = _ranks(result["thresholds"], images, sessions, args.jnd.split(","))
            result["rank_agreement"] = ranks
            for model in args.jnd.split(","):
                calibrations += calibrate(sessions, model, images.image, images.jnd, where=images.where)
            result["calibrations"] = [c.as_dict() for c in calibrations]
            if not calibrations:
                notes.append("no calibration: no trial records the noise scale it showed (a simulated observer's?)")
    except ResJNDError as e:
        return fail(str(e))
    for note in notes:
        print(f"resjnd: {note}", file=sys.stderr)
    out = Path(args.out)
    text = json_text(result, 1)
    files = [
        (out / "visibility_report.json", lambda tmp: Path(tmp).write_text(text)),
        (out / "thresholds.png", lambda tmp: report.threshold_plot(result["thresholds"], tmp)),
    ]
    if calibrations:
        provenance = {"sessions": [str(p) for p in args.sessions], "weights": args.weights}
        cal_text = cal_file.dumps(calibrations, provenance)
        files.append((out / "calibration.json", lambda tmp: Path(tmp).write_text(cal_text)))
    _say_if_replacing(*(f for f, _ in files))
    atomic_write_all(files)
    print(report.markdown(result["models"], result["paired"], ranks, result.get("calibrations")))
    written = ", ".join(f.name for f, _ in files)
    print(f"written in {out}: {written}", file=sys.stderr)
    return 0


def _say_if_replacing(*files: Path) -> None:
    earlier = [f.name for f in files if f.exists()]
    if earlier:
        print(f"resjnd: replacing the earlier {' and '.join(earlier)} in {files[0].parent}", file=sys.stderr)


class TestedImages:
    """The tested images of ``--images``, found by file stem among image files, each
    checked against the image hash every session recorded; their JND maps, cached."""

    def __init__(self, folder: Path, sessions: list, args: argparse.Namespace) -> None:
        from ..core.images import IMAGE_SUFFIXES

        self.folder, self.args = folder, args
        self.files: dict[str, Path] = {}
        for p in sorted(folder.iterdir()):
            if not p.is_file() or p.suffix.lower() not in IMAGE_SUFFIXES:
                continue  # sidecars (good.json beside good.png) are not candidates
            if p.stem in self.files:
                raise ResJNDError(
                    f"--images {folder}: {self.files[p.stem].name} and {p.name} share the name {p.stem!r}"
                )
            self.files[p.stem] = p
        self.images: dict[str, np.ndarray] = {}
        self.maps: dict[tuple[str, str], np.ndarray] = {}
        self._where = {id(s): f"session of {s.observer!r} ({s.procedure})" for s in sessions}
        for s in sessions:
            for c in s.conditions:
                if c.image_sha256 is not None:
                    self._check(c.image, c.image_sha256, s)

    def _check(self, name: str, sha: str, session: object) -> None:
        from ..core.images import image_sha256

        if image_sha256(self.image(name)) != sha:
            raise ResJNDError(
                f"--images {self.files[Path(name).stem]}: other pixels than the image {name!r} the "
                f"{self.where(session)} was run on (its sha256 differs)"
            )

    def where(self, session: object) -> str:
        return self._where.get(id(session), "session")

    def image(self, name: str) -> np.ndarray:
        stem = Path(name).stem
        if stem not in self.files:
            raise ResJNDError(f"--images {self.folder}: no image named {stem!r} (a condition of the sessions)")
        if stem not in self.images:
            from ..core.images import read_image

            self.images[stem] = read_image(self.files[stem])
        return self.images[stem]

    def jnd(self, model: str, name: str) -> np.ndarray:
        from ..core.maps import jnd_map

        if (model, name) not in self.maps:
            a = self.args
            self.maps[(model, name)] = jnd_map(
                model, self.image(name), weights=a.weights, device=a.device, precision=a.precision
            )
        return self.maps[(model, name)]


def _ranks(rows: list[dict], images: TestedImages, sessions: list, models: list[str]) -> list[dict]:
    """Rank agreement of each model's detection ratio; the ratio of a condition is the
    mean over the sessions' noise (each session's seed) and viewing conditions."""
    from ..core.visibility.detection import visibility
    from ..core.visibility.psychophysics import stimuli as stimuli_module
    from ..core.visibility.psychophysics.report import rank_agreement
    from ..core.visibility.viewing import DEFAULT_VIEWING

    shown = Counter((s.seed, s.viewing_conditions or DEFAULT_VIEWING) for s in sessions)
    built: dict[tuple[str, str, int], object] = {}

    def predicted(model: str, name: str, noise: str, psnr: float) -> float:
        total = 0.0
        for (seed, viewing), n in shown.items():
            if (name, noise, seed) not in built:
                built[(name, noise, seed)] = stimuli_module.ConditionStimuli(
                    images.image(name), images.jnd(noise, name), seed=seed
                )
            stim = built[(name, noise, seed)].at(psnr)  # type: ignore[attr-defined]
            v = visibility(stim.pristine, stim.distorted, images.jnd(model, name), model=model, viewing=viewing)
            total += n * v.detection_ratio
        return total / len(sessions)

    return rank_agreement(rows, predicted, models)
