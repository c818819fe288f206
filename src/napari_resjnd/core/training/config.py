"""Settings of a fine-tuning or training run: presets, the configuration, the
result, and their checks. One source for the defaults the CLI and widgets show."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from ..devices import AUTO, PRECISIONS
from ..errors import ResJNDError
from ..model import ResJND

LAYERS = ("input", "conv1", "conv2", "output")


@dataclass(frozen=True)
class Preset:
    """An optimisation recipe: optimiser, rate, regularisation, clipping, schedule, loss reduction."""

    optimizer: Literal["sgd", "adam"]
    lr: float
    momentum: float
    weight_decay: float
    #: Gradient-norm clipping.
    clip: float
    #: Multiply the rate by ``gamma`` every ``step_epochs`` epochs (0: never).
    step_epochs: int
    gamma: float
    #: How the squared error is reduced over a batch ("sum": the authors' recipe).
    reduction: Literal["sum", "mean"]

    def with_lr(self, lr: float | None) -> Preset:
        """This recipe with another learning rate (None: its own)."""
        return self if lr is None else replace(self, lr=lr)

    def describe(self) -> str:
        """One line for help texts: "SGD 0.1, momentum 0.9, wd 0.0001, clip 0.4, ..."."""
        opt = f"{self.optimizer.upper() if self.optimizer == 'sgd' else self.optimizer.title()} {self.lr:g}"
        extra = [f"momentum {self.momentum:g}"] if self.momentum else []
        extra += [f"wd {self.weight_decay:g}"] if self.weight_decay else []
        extra += [f"clip {self.clip:g}"]
        extra += [f"lr x{self.gamma:g} every {self.step_epochs} epochs"] if self.step_epochs else []
        extra += [f"{self.reduction}-reduced MSE"]
        return f"{opt}, " + ", ".join(extra)


#: Optimisation presets. "authors": the ResJND training recipe. "finetune": for
#: starting from trained weights (Adam at a small rate, gradient clipping kept).
PRESETS: dict[str, Preset] = {
    "authors": Preset("sgd", 0.1, 0.9, 1e-4, clip=0.4, step_epochs=100, gamma=0.1, reduction="sum"),
    "finetune": Preset("adam", 1e-4, 0.0, 0.0, clip=0.4, step_epochs=0, gamma=0.1, reduction="mean"),
}


#: The patch side used when none is given and the images allow it.
DEFAULT_PATCH = 48


@dataclass(frozen=True)
class FinetuneConfig:
    """Hyperparameters; ``lr=None`` takes the preset's."""

    epochs: int = 10
    #: Patch side in px; None: :data:`DEFAULT_PATCH`, or the pairs' own side when
    #: every pair has one size smaller than that (a folder of small patches).
    patch: int | None = None
    batch: int = 8
    preset: str = "finetune"
    lr: float | None = None
    seed: int = 0
    val_fraction: float = 0.2
    val_by: str = "patches"
    augment: bool = True
    freeze: tuple[str, ...] = ()
    patience: int = 5
    val_every: int = 1
    device: str = AUTO
    precision: str = PRECISIONS[0]


#: Fine-tuning's defaults (the widget's and ``resjnd finetune``'s).
FINETUNE_CONFIG = FinetuneConfig()
#: Dataset-scale training's defaults (``resjnd train``): the authors' recipe.
TRAIN_CONFIG = replace(
    FINETUNE_CONFIG, epochs=250, batch=32, preset="authors", val_fraction=0.1, val_every=10, patience=0
)


@dataclass
class FinetuneResult:
    model: ResJND
    history: dict
    checkpoint: Path | None
    stopped: str  # "finished", "early stop", "stopped", "diverged"


def check_config(config: FinetuneConfig) -> None:
    if config.preset not in PRESETS:
        raise ResJNDError(f"preset must be one of {list(PRESETS)}, got {config.preset!r}")
    bad = set(config.freeze) - set(LAYERS)
    if bad:
        raise ResJNDError(f"cannot freeze {sorted(bad)}; layers are {list(LAYERS)}")
    if (config.patch is not None and config.patch < 8) or config.batch < 1 or config.epochs < 0 or config.val_every < 1:
        raise ResJNDError("patch must be >= 8 px, batch >= 1, epochs >= 0 and val_every >= 1")
