"""Quality-versus-PSNR plot of an evaluation (matplotlib, optional)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ResJNDError

PANEL = (("ssim", "SSIM"), ("ms_ssim", "MS-SSIM"), ("vifp", "VIFp"), ("gmsd", "GMSD (lower is better)"))


def quality_plot(rows: list[dict[str, Any]], path: str | Path, fmt: str | None = None) -> None:
    """Mean of each metric over images against the target PSNR, one line per JND map."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ResJNDError("--plot needs matplotlib: pip install matplotlib") from e
    fig, axes = plt.subplots(1, len(PANEL), figsize=(4 * len(PANEL), 3.4), constrained_layout=True)
    maps = list(dict.fromkeys(r["jnd"] for r in rows))
    targets = sorted({r["target_psnr"] for r in rows})
    for ax, (key, title) in zip(axes, PANEL):
        for name in maps:
            ys = [np.nanmean([r[key] for r in rows if r["jnd"] == name and r["target_psnr"] == t]) for t in targets]
            ax.plot(targets, ys, marker="o", label=name)
        ax.set_title(title)
        ax.set_xlabel("target PSNR (dB)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.savefig(path, dpi=120, format=fmt or None)
    plt.close(fig)


def rd_plot(points: list[Any], title: str, path: str | Path, metrics: tuple[str, ...]) -> None:
    """Rate-distortion curves of one image and codec: one panel per metric (score
    against the original) over bits per pixel, one line per picture coded."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ResJNDError("--plot needs matplotlib: pip install matplotlib") from e
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.2), constrained_layout=True, squeeze=False)
    names = list(dict.fromkeys(p.jnd for p in points))
    for ax, metric in zip(axes[0], metrics):
        for name in names:
            curve = sorted((p.bpp, p.metrics[metric]) for p in points if p.jnd == name)
            ax.plot(*zip(*curve), marker="o", markersize=3, label=name, lw=2 if name == "none" else 1)
        ax.set_title(metric + (" (lower is better)" if metric == "gmsd" else ""))
        ax.set_xlabel("bits per pixel")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
