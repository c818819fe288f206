"""Distortion visibility: where, and how likely, a viewer sees a difference, and how observers measure it.

- :mod:`.detection`: a JND map and a distortion -> per-pixel detection probability and ``p_detect``;
- :mod:`.psychophysics`: observers' thresholds (2AFC and flicker trials, QUEST+, sessions, reports).
"""

from .detection import Visibility, VisibilityParams, visibility

__all__ = ["Visibility", "VisibilityParams", "visibility"]
