"""Research tools around JND maps: how well a map hides noise, and how observers make targets.

- :mod:`.evaluate`: JND-shaped noise at equal PSNR, the metric panel, paired statistics;
- :mod:`.ladders`: distortion ladders of a patch (KLT, JPEG, WebP, noise, blur, quantisation);
- :mod:`.annotation`: CPL annotation sessions (bisection on a ladder), merging observers, pair export;
- :mod:`.plots`: the quality-versus-PSNR plot of an evaluation.
"""

from .annotation import AnnotationSession, export_pairs, merge
from .evaluate import evaluate_image, jnd_maps, map_names, paired_stats
from .ladders import make_ladder

__all__ = [
    "AnnotationSession",
    "evaluate_image",
    "export_pairs",
    "jnd_maps",
    "make_ladder",
    "map_names",
    "merge",
    "paired_stats",
]
