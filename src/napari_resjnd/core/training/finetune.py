"""Fine-tuning ResJND on pristine/target pairs held in memory: patches from
rectangles, masks or the whole image, a generator that yields progress and
losses, checks a stop flag every step, and keeps the best checkpoint (the loop
is :mod:`.loop`, the files :mod:`.checkpoints`, the settings :mod:`.config`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Generator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ResJNDError
from ..events import TrainingEvent, drive
from ..files import json_text
from ..model import ResJND
from .checkpoints import RESUME_KEYS, history_path, read_resume, recorded_config, resume_path
from .config import DEFAULT_PATCH, LAYERS, PRESETS, FinetuneConfig, FinetuneResult, check_config
from .loop import Batch, evaluate_loss, run_training
from .pairs import Box, Pair, PatchIndex, augment, checked_patch, cut, patch_origins, split


def _batches(items: list[PatchIndex], batch: int, rng: np.random.Generator | None) -> Iterator[list[PatchIndex]]:
    order = rng.permutation(len(items)) if rng is not None else np.arange(len(items))
    for i in range(0, len(items), batch):
        yield [items[j] for j in order[i : i + batch]]


def _tensors(pairs, idxs, patch, device, rng=None):
    xs, ys = [], []
    for idx in idxs:
        a, b = cut(pairs, idx, patch)
        if rng is not None:
            a, b = augment(a, b, int(rng.integers(8)))
        xs.append(a)
        ys.append(b)
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).to(device)
    y = torch.from_numpy(np.stack(ys)).permute(0, 3, 1, 2).to(device)
    return x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last)


class MemoryData:
    """Patches cut from pairs held in memory (fine-tuning on annotated images).

    Batches come from one seeded generator whose state the checkpoints keep, so a
    resumed run continues exactly."""

    def __init__(
        self,
        pairs: list[Pair],
        config: FinetuneConfig,
        boxes: dict[int, list[Box]] | None = None,
        masks: dict[int, np.ndarray] | None = None,
    ):
        if not pairs:
            raise ResJNDError("no training pairs")
        sizes = {p.name: p.pristine.shape[:2] for p in pairs}
        patch = checked_patch(sizes, config.patch, DEFAULT_PATCH)
        config = replace(config, patch=patch)
        self.pairs, self.config = pairs, config
        origins = [
            patch_origins(p, patch, boxes=(boxes or {}).get(i), mask=(masks or {}).get(i)) for i, p in enumerate(pairs)
        ]
        self.train, self.val = split(pairs, origins, config.val_fraction, config.val_by, config.seed)
        self.rng = np.random.default_rng(config.seed)
        self.summary = {
            "pairs": [p.name for p in pairs],
            "patch": config.patch,
            "train_patches": len(self.train),
            "val_patches": len(self.val),
            "annotated": sorted(set(boxes or {}) | set(masks or {})),
        }

    def steps(self) -> int:
        return math.ceil(len(self.train) / self.config.batch)

    def train_batches(self, epoch: int, device: torch.device) -> Iterator[Batch]:
        aug = self.rng if self.config.augment else None
        for b in _batches(self.train, self.config.batch, self.rng):
            yield _tensors(self.pairs, b, self.config.patch, device, aug)

    def val_batches(self, device: torch.device, batch: int = 16) -> Iterator[Batch]:
        for b in _batches(self.val, batch, None):
            yield _tensors(self.pairs, b, self.config.patch, device)

    def state(self) -> str:
        return json_text(self.rng.bit_generator.state, indent=None)

    def load_state(self, text: str) -> None:
        self.rng.bit_generator.state = json.loads(text)


def iter_finetune(
    model: ResJND,
    pairs: list[Pair],
    out: str | Path,
    config: FinetuneConfig | None = None,
    *,
    boxes: dict[int, list[Box]] | None = None,
    masks: dict[int, np.ndarray] | None = None,
    resume: str | Path | None = None,
    should_stop: Callable[[], bool] | None = None,
    override: tuple[str, ...] = (),
) -> Generator[TrainingEvent, None, FinetuneResult]:
    """Fine-tune ``model`` in place on pairs in memory; yields typed events
    (:class:`~.events.TrainingStarted`, a :class:`~.events.TrainingStep` per
    optimiser step, an :class:`~.events.EpochDone` per epoch, epoch 0 being the
    validation before the first step) and returns a :class:`FinetuneResult`.
    ``boxes``/``masks`` map a pair's index to its annotation.
    """
    config = config or FinetuneConfig()
    check_config(config)
    data = MemoryData(pairs, config, boxes, masks)
    return (
        yield from run_training(
            model, data, out, data.config, resume=resume, should_stop=should_stop, override=override
        )
    )


def finetune(
    model: ResJND,
    pairs: list[Pair],
    out: str | Path,
    config: FinetuneConfig | None = None,
    *,
    on_event: Callable[[TrainingEvent], object] | None = None,
    **kw: Any,
) -> FinetuneResult:
    """:func:`iter_finetune`, driven to the end; ``on_event(event)`` sees each event."""
    return drive(iter_finetune(model, pairs, out, config, **kw), on_event)


__all__ = [
    "DEFAULT_PATCH",
    "LAYERS",
    "PRESETS",
    "RESUME_KEYS",
    "FinetuneConfig",
    "FinetuneResult",
    "check_config",
    "evaluate_loss",
    "finetune",
    "history_path",
    "iter_finetune",
    "read_resume",
    "recorded_config",
    "resume_path",
    "run_training",
]
