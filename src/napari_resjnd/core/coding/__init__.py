"""JND-guided coding: what an encoder is given instead of the original, and what it saves.

- :mod:`.prefilter`: the pictures an encoder is given (a CPL image, or a map bounding a low-pass filter);
- :mod:`.sweep`: rate-distortion sweeps, every decoded picture scored against the original;
- :mod:`.bdrate`: Bjontegaard delta rates of the guided curves against the plain codec;
- :mod:`.pipeline`: one image through all of it, as ``resjnd compress`` and the coding widget run it;
- :mod:`.results`: a compress run's tables, written however it ends and read back to resume it;
- :mod:`.plots`: rate-distortion curves.
"""

from .bdrate import bd_rate, bd_rows, mean_rows
from .pipeline import CodedImage, Prefilter, iter_code_image, iter_pictures
from .prefilter import guided_names, guided_pictures, jnd_smooth
from .sweep import PLAIN, RDPoint, encode_point, iter_sweep

__all__ = [
    "PLAIN",
    "CodedImage",
    "Prefilter",
    "RDPoint",
    "bd_rate",
    "bd_rows",
    "encode_point",
    "guided_names",
    "guided_pictures",
    "iter_code_image",
    "iter_pictures",
    "iter_sweep",
    "jnd_smooth",
    "mean_rows",
]
