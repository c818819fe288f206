"""The JND model zoo: the classic models, conformant to their authors' reference
code (as collected in OpenJND), by name; weight-free, Qt-free, numpy/scipy.

Every model takes a grey or RGB image (RGB: its luminance Y, BT.601 weights, as
the papers do) and returns an H x W float32 map in grey levels. ResJND itself is
``resjnd`` in :func:`napari_resjnd.jnd_map`; it needs weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import ResJNDError
from . import dct, jiang2022, liu2010, pixel, wu2013, wu2017


@dataclass(frozen=True)
class ClassicModel:
    """One classic model: its name, what it is, and where its reference code lives."""

    #: The name the CLI, the widgets and :func:`jnd_map` use.
    name: str
    #: Authors and year, as a picker shows it.
    title: str
    #: Where it works: "pixel", "DCT" or "KLT".
    domain: str
    #: image -> H x W float32 map in grey levels.
    compute: Callable[[np.ndarray], np.ndarray]
    #: The reference code in OpenJND (Terriao/OpenJND) this implementation follows.
    reference: str
    #: Whether it uses Canny edges (reference maps there carry the reference run's Canny).
    canny: bool = False


MODELS: dict[str, ClassicModel] = {
    m.name: m
    for m in (
        ClassicModel("chou1995", "Chou & Li 1995", "pixel", pixel.chou1995, "Chou and Li/Matlab/main.m"),
        ClassicModel("yang2005", "Yang et al. 2005 (NAMM)", "pixel", pixel.yang2005, "Yang et al/Matlab/main.m", True),
        ClassicModel("zhang2005", "Zhang, Lin & Xue 2005", "DCT", dct.zhang2005, "Zhang et al/Matlab/main.m"),
        ClassicModel("jia2006", "Jia, Lin & Kassim 2006", "DCT", dct.jia2006, "Jia et al/Matlab/JND_VIDEO.m"),
        ClassicModel(
            "liu2010",
            "Liu et al. 2010 (edge/texture decomposition)",
            "pixel",
            liu2010.liu2010,
            "Liu et al/Matlab/JND_ID.m (the TV-L1 solver is ours: see core/zoo/liu2010.py)",
        ),
        ClassicModel(
            "wu2013",
            "Wu et al. 2013 (free energy)",
            "pixel",
            wu2013.wu2013,
            "Wu et al (TMM)/Matlab/main.m",
            canny=True,
        ),
        ClassicModel(
            "wu2017",
            "Wu et al. 2017 (pattern complexity)",
            "pixel",
            wu2017.wu2017,
            "Wu et al (TIP)/Matlab/func_JND_modeling_pattern_complexity.m",
            canny=True,
        ),
        ClassicModel(
            "jiang2022",
            "Jiang et al. 2022 (KLT-JND)",
            "KLT",
            jiang2022.jiang2022,
            "Jiang et al/Matlab/KLT_JND.m",
            canny=True,
        ),
    )
}
#: Earlier names, kept working.
ALIASES = {"chou": "chou1995", "namm": "yang2005"}


def resolve(name: str) -> ClassicModel:
    """The model called ``name`` (or one of its :data:`ALIASES`); ValueError naming the known ones."""
    key = ALIASES.get(name, name)
    if key not in MODELS:
        raise ResJNDError(
            f"unknown classic JND model {name!r}; known: {', '.join(MODELS)} (aliases: {', '.join(ALIASES)})"
        )
    return MODELS[key]


def is_classic(name: str) -> bool:
    return name in MODELS or name in ALIASES


def classic_jnd(name: str, image: np.ndarray) -> np.ndarray:
    """The map of classic model ``name`` for ``image`` (grey or RGB), float32 grey levels."""
    return np.asarray(resolve(name).compute(image), np.float32)
