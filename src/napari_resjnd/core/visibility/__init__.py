"""Distortion visibility: where, and how likely, a viewer sees a difference on a given
display, and how observers measure it.

- :mod:`.viewing`: viewing conditions (distance, display, peak luminance -> pixels per degree);
- :mod:`.thresholds`: the error-to-threshold ratio of each map family (pixel, DCT, CPL);
- :mod:`.detection`: ratios -> per-pixel probability and ``p_detect`` (neighbourhood pooling);
- :mod:`.calibration`: alpha and beta from observers, checked against model, procedure, viewing;
- :mod:`.reference`: ColorVideoVDP, the reference predictor (optional);
- :mod:`.psychophysics`: observers' thresholds (2AFC and flicker trials, QUEST+, sessions,
  reports, calibration fits).
"""

from .detection import Visibility, VisibilityParams, visibility
from .viewing import DEFAULT_VIEWING, ViewingConditions

__all__ = ["DEFAULT_VIEWING", "ViewingConditions", "Visibility", "VisibilityParams", "visibility"]
