"""Argument types that check their values before any work: argparse turns their
``ArgumentTypeError`` into one line naming the option."""

from __future__ import annotations

import argparse
import math


def _whole(text: str, least: int) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if v < least:
        raise argparse.ArgumentTypeError(f"must be {least} or more, got {v}")
    return v


def positive_int(text: str) -> int:
    return _whole(text, 1)


def nonnegative_int(text: str) -> int:
    return _whole(text, 0)


def _finite(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return v


def positive_float(text: str) -> float:
    v = _finite(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return v


def nonnegative_float(text: str) -> float:
    v = _finite(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return v


def fraction(text: str) -> float:
    v = _finite(text)
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, got {text}")
    return v


#: Above this PSNR the injected noise is weaker than 8-bit rounding itself
#: (uniform quantisation noise, variance 1/12 grey level squared).
MAX_PSNR_8BIT = 10 * math.log10(255**2 * 12)


def psnr_target(text: str) -> float:
    v = _finite(text)
    if not 0 < v <= MAX_PSNR_8BIT:
        raise argparse.ArgumentTypeError(
            f"{text} dB cannot be reached on 8-bit images: give a target above 0 and at most "
            f"{MAX_PSNR_8BIT:.1f} dB (beyond that the noise is smaller than 8-bit rounding)"
        )
    return v
