"""Viewing conditions: how far the viewer sits from which display, one typed value
that the visibility model, the observer sessions and the reference predictor share.

Visibility depends on them: the same artefact is finer in degrees of visual angle
on a sharper display or from farther away, and a brighter display shows the same
grey-level step as a larger luminance step. What the model takes from them:

- **pixels per degree** (ppd) at the display's centre, from the viewing distance d
  and the pixel pitch p (the display diagonal over its diagonal in pixels):
  ppd = 1 / (2 atan(p / 2d)) in degrees; or given directly (``ppd``);
- **peak luminance** (cd/m^2) of white, with the display's black level
  (peak / 1000, a 1000:1 panel) and the light its screen reflects from an office's
  250 lux (k = 0.005: 250 x 0.005 / pi cd/m^2), as ColorVideoVDP's standard displays
  assume (Mantiuk et al. 2024). Grey levels become luminance through the sRGB
  transfer function.

The default is an ordinary office display: 24 inches, 1920 x 1080 pixels, seen from
60 cm, peak 200 cd/m^2: 37.8 pixels per degree (ColorVideoVDP's ``standard_fhd``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import ResJNDError

#: The default: a 24-inch 1920 x 1080 office display seen from 60 cm, 200 cd/m^2.
DEFAULT_DISTANCE_CM = 60.0
DEFAULT_DIAGONAL_IN = 24.0
DEFAULT_RESOLUTION = (1920, 1080)
DEFAULT_PEAK_LUMINANCE = 200.0
#: What the model assumes of every display: a 1000:1 panel under 250 lux of office light.
CONTRAST = 1000.0
AMBIENT_LUX = 250.0
REFLECTIVITY = 0.005
#: Two viewing conditions are the same within this relative difference (ppd, luminance).
SAME_WITHIN = 0.02


@dataclass(frozen=True)
class ViewingConditions:
    """Viewing distance, display size and resolution, peak luminance; ``ppd`` (pixels
    per degree), when given, replaces the distance and size geometry."""

    distance_cm: float = DEFAULT_DISTANCE_CM
    diagonal_in: float = DEFAULT_DIAGONAL_IN
    resolution: tuple[int, int] = DEFAULT_RESOLUTION
    peak_luminance: float = DEFAULT_PEAK_LUMINANCE
    fixed_ppd: float | None = None

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """One line naming the first parameter that is not a finite number above 0."""
        for what, value in (
            ("viewing distance (cm)", self.distance_cm),
            ("display size (diagonal, inches)", self.diagonal_in),
            ("peak luminance (cd/m^2)", self.peak_luminance),
        ):
            _positive(what, value)
        if self.fixed_ppd is not None:
            _positive("pixels per degree", self.fixed_ppd)
        res = self.resolution
        if (
            not isinstance(res, (tuple, list))
            or len(res) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in res)
        ):
            raise ResJNDError(f"display resolution must be two whole numbers above 0 (width, height), got {res!r}")

    @property
    def pixel_pitch_cm(self) -> float:
        w, h = self.resolution
        return self.diagonal_in * 2.54 / math.hypot(w, h)

    @property
    def ppd(self) -> float:
        """Pixels per degree of visual angle at the display's centre."""
        if self.fixed_ppd is not None:
            return float(self.fixed_ppd)
        return 1.0 / math.degrees(2 * math.atan(self.pixel_pitch_cm / (2 * self.distance_cm)))

    def pixels(self, degrees: float) -> float:
        """``degrees`` of visual angle in pixels."""
        return degrees * self.ppd

    @property
    def black_level(self) -> float:
        """The luminance of black (cd/m^2): the panel's own and the reflected office light."""
        return self.peak_luminance / CONTRAST + AMBIENT_LUX * REFLECTIVITY / math.pi

    def luminance(self, grey: np.ndarray) -> np.ndarray:
        """Grey levels (0-255) -> luminance on the display (cd/m^2): sRGB transfer."""
        v = np.clip(np.asarray(grey, np.float64) / 255.0, 0.0, 1.0)
        linear = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
        return self.peak_luminance * linear + self.black_level

    def luminance_slope(self, grey: np.ndarray) -> np.ndarray:
        """d luminance / d grey level (cd/m^2 per grey level) of :meth:`luminance`."""
        v = np.clip(np.asarray(grey, np.float64) / 255.0, 0.0, 1.0)
        d = np.where(v <= 0.04045, 1 / 12.92, 2.4 / 1.055 * ((v + 0.055) / 1.055) ** 1.4)
        return self.peak_luminance * d / 255.0

    def as_dict(self) -> dict:
        """What every output records: the parameters and the ppd they give."""
        d = asdict(self)
        d["resolution"] = list(self.resolution)
        d["ppd"] = round(self.ppd, 4)
        d["assumed"] = {"contrast": CONTRAST, "ambient_lux": AMBIENT_LUX, "reflectivity": REFLECTIVITY}
        return d

    @classmethod
    def from_dict(cls, d: object, where: object = "viewing conditions") -> ViewingConditions:
        """From :meth:`as_dict` (read back from a file); one line naming ``where`` otherwise."""
        if not isinstance(d, dict):
            raise ResJNDError(f"{where}: the viewing conditions are not a record ({type(d).__name__})")
        try:
            res = d.get("resolution", DEFAULT_RESOLUTION)
            return cls(
                distance_cm=_number("distance_cm", d.get("distance_cm", DEFAULT_DISTANCE_CM)),
                diagonal_in=_number("diagonal_in", d.get("diagonal_in", DEFAULT_DIAGONAL_IN)),
                resolution=tuple(res) if isinstance(res, (list, tuple)) else res,
                peak_luminance=_number("peak_luminance", d.get("peak_luminance", DEFAULT_PEAK_LUMINANCE)),
                fixed_ppd=None if d.get("fixed_ppd") is None else _number("fixed_ppd", d["fixed_ppd"]),
            )
        except ResJNDError as e:
            raise ResJNDError(f"{where}: {e}") from None

    def differs_from(self, other: ViewingConditions) -> str | None:
        """Why ``other`` is another viewing condition (ppd or peak luminance more than
        2 % apart), or None."""
        for what, a, b, unit in (
            ("pixels per degree", self.ppd, other.ppd, ""),
            ("peak luminance", self.peak_luminance, other.peak_luminance, " cd/m^2"),
        ):
            if abs(a - b) > SAME_WITHIN * max(abs(a), abs(b)):
                return f"{what} {b:.4g}{unit}, not {a:.4g}{unit}"
        return None

    def describe(self) -> str:
        if self.fixed_ppd is not None:
            return f"{self.ppd:.1f} pixels per degree, {self.peak_luminance:g} cd/m^2"
        w, h = self.resolution
        return (
            f'{self.diagonal_in:g}" {w} x {h} display at {self.distance_cm:g} cm, {self.peak_luminance:g} cd/m^2 '
            f"({self.ppd:.1f} pixels per degree)"
        )


def _positive(what: str, value: object) -> None:
    ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
    if not ok or not math.isfinite(float(value)) or float(value) <= 0:  # type: ignore[arg-type]
        raise ResJNDError(f"{what} must be a finite number above 0, got {value!r}")


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ResJNDError(f"{name} is not a number: {value!r}")
    return float(value)


#: The default viewing conditions (37.8 pixels per degree).
DEFAULT_VIEWING = ViewingConditions()
