"""Sample colour photographs from scikit-image (public domain, shipped offline)."""

from __future__ import annotations

SAMPLES = {
    "astronaut": "Astronaut (Eileen Collins), 512 x 512",
    "coffee": "Coffee cup, 400 x 600",
    "chelsea": "Chelsea the cat, 300 x 451",
    "rocket": "Rocket launch, 427 x 640",
}


def _sample(key: str):
    from skimage import data

    return [(getattr(data, key)(), {"name": key, "rgb": True})]


def astronaut():
    return _sample("astronaut")


def coffee():
    return _sample("coffee")


def chelsea():
    return _sample("chelsea")


def rocket():
    return _sample("rocket")
