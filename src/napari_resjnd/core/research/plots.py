"""Quality-versus-PSNR plot of a noise-injection evaluation (matplotlib)."""

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
