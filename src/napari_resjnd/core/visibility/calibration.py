"""Calibration files: the psychometric function's alpha (and beta) for one JND model,
one procedure and one viewing condition, fitted to observers' answers
(:mod:`.psychophysics.calibrate`, written by ``resjnd visibility report``), read by
``resjnd visibility map --calibration``, the Visibility map widget and the coding
tools.

A calibration is only valid where it was measured: for another model, another
procedure (flicker thresholds are lower than side-by-side ones) or another viewing
condition (pixels per degree, peak luminance) it is refused with the reason, never
applied quietly. It also records the pooling it was fitted with (neighbourhood,
robust-maximum area, floor): the alpha belongs to that model of detection.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ResJNDError
from .detection import VisibilityParams
from .viewing import ViewingConditions

FORMAT = "resjnd-visibility-calibration"


@dataclass(frozen=True)
class Calibration:
    """alpha and beta of one model's visibility prediction, fitted on observers' trials."""

    model: str
    procedure: str
    viewing: ViewingConditions
    alpha: float
    beta: float
    #: False: the data did not constrain beta, which stays at its default.
    beta_fitted: bool
    log_likelihood: float
    trials: int
    observers: tuple[str, ...] = ()
    #: The pooling parameters the fit used (neighbourhood_deg, peak_area_deg2, jnd_floor).
    pooling: dict = field(default_factory=dict)
    #: Anything else worth keeping: the beta profile, alpha's interval, notes.
    details: dict = field(default_factory=dict)

    def params(self) -> VisibilityParams:
        """The :class:`VisibilityParams` this calibration stands for."""
        keep = {k: v for k, v in self.pooling.items() if k in ("jnd_floor", "neighbourhood_deg", "peak_area_deg2")}
        return VisibilityParams(alpha=self.alpha, beta=self.beta, **keep)

    def as_dict(self) -> dict:
        return {
            "model": self.model,
            "procedure": self.procedure,
            "viewing": self.viewing.as_dict(),
            "alpha": self.alpha,
            "beta": self.beta,
            "beta_fitted": self.beta_fitted,
            "log_likelihood": self.log_likelihood,
            "trials": self.trials,
            "observers": list(self.observers),
            "pooling": self.pooling,
            "details": self.details,
        }

    @classmethod
    def from_dict(cls, d: object, where: str) -> Calibration:
        if not isinstance(d, dict):
            raise ResJNDError(f"{where}: a calibration entry is not a record")
        try:
            alpha, beta = d["alpha"], d["beta"]
            for name, v in (("alpha", alpha), ("beta", beta)):
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                    raise ResJNDError(f"{where}: {name} must be a number above 0, got {v!r}")
            return cls(
                model=str(d["model"]),
                procedure=str(d["procedure"]),
                viewing=ViewingConditions.from_dict(d["viewing"], f"{where}: viewing"),
                alpha=float(alpha),
                beta=float(beta),
                beta_fitted=bool(d.get("beta_fitted", False)),
                log_likelihood=float(d.get("log_likelihood") or math.nan),
                trials=int(d.get("trials", 0)),
                observers=tuple(d.get("observers", ())),
                pooling=dict(d.get("pooling", {})),
                details=dict(d.get("details", {})),
            )
        except KeyError as e:
            raise ResJNDError(f"{where}: a calibration entry has no {e.args[0]!r}") from None
        except (TypeError, ValueError) as e:
            raise ResJNDError(f"{where}: a calibration entry is damaged ({e})") from None


def dumps(calibrations: Sequence[Calibration], provenance: dict | None = None) -> str:
    """The file's text: strict JSON (no NaN or Infinity)."""
    from ..files import json_text

    return json_text({"format": FORMAT, "calibrations": [c.as_dict() for c in calibrations], **(provenance or {})}, 1)


def load(path: str | Path) -> list[Calibration]:
    """Every calibration in the file; a damaged or foreign file is one line naming it."""
    try:
        d = json.loads(Path(path).read_text())
    except OSError as e:
        raise ResJNDError(f"{path}: cannot read it ({e.strerror or e})") from None
    except ValueError as e:
        raise ResJNDError(f"{path}: not a calibration file (not JSON: {e})") from None
    if not isinstance(d, dict) or d.get("format") != FORMAT or not isinstance(d.get("calibrations"), list):
        raise ResJNDError(f"{path}: not a visibility calibration file (no format {FORMAT!r})")
    out = [Calibration.from_dict(c, str(path)) for c in d["calibrations"]]
    if not out:
        raise ResJNDError(f"{path}: the file holds no calibration")
    return out


def select(
    path: str | Path,
    model: str,
    viewing: ViewingConditions,
    procedure: str | None = None,
) -> Calibration:
    """The file's calibration for ``model`` (and ``procedure``) at ``viewing``; one line
    saying why none fits otherwise."""
    cals = load(path)
    mine = [c for c in cals if c.model == model]
    if not mine:
        held = ", ".join(sorted({c.model for c in cals}))
        raise ResJNDError(f"{path}: a calibration for {held}, not for {model}: calibrate {model} or pick its map")
    if procedure is not None:
        same = [c for c in mine if c.procedure == procedure]
        if not same:
            held = ", ".join(sorted({c.procedure for c in mine}))
            raise ResJNDError(f"{path}: {model} is calibrated for the procedure {held}, not {procedure}")
        mine = same
    elif len({c.procedure for c in mine}) > 1:
        held = ", ".join(sorted({c.procedure for c in mine}))
        raise ResJNDError(f"{path}: {model} is calibrated for several procedures ({held}): name one (--procedure)")
    reasons = []
    for c in mine:
        why = c.viewing.differs_from(viewing)
        if why is None:
            return c
        reasons.append(f"measured at {c.viewing.describe()}; asked for {why}")
    raise ResJNDError(f"{path}: {model}'s calibration does not fit these viewing conditions ({'; '.join(reasons)})")
