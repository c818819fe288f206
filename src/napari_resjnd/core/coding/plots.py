"""Rate-distortion curves of one image and codec (matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ResJNDError


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
