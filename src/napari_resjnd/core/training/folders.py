"""Dataset-scale training: pair folders streamed through a DataLoader, from
random initialisation or given weights, on one process or many (torchrun, DDP).

The loop is :func:`~.finetune.run_training`, shared with fine-tuning. Data are
read file by file by DataLoader workers (the folder is never held in memory).
Every random choice (crop position, flip/rotation) is drawn from a generator
seeded by (seed, epoch, sample index), and the sample order by
DistributedSampler's (seed, epoch) permutation, so a run is reproducible,
resumable, and gives the same global batches on 1 process or K.
"""

from __future__ import annotations

import math
import os
from collections.abc import Generator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..errors import ResJNDError
from ..events import TrainingEvent
from ..images import read_image
from ..model import ResJND
from . import interrupts
from .config import DEFAULT_PATCH, FinetuneConfig, FinetuneResult, check_config
from .loop import Batch, RunOptions, run_training
from .pairs import as_rgb, augment, folder_patch, pair_files

if TYPE_CHECKING:
    from typing_extensions import Unpack


def _read(path: Path) -> np.ndarray:
    try:
        return read_image(path)
    except ResJNDError:
        raise  # it names the file already
    except OSError as e:  # in a worker: say which file, in one line
        raise ResJNDError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None


class PairFolder(Dataset):
    """(pristine, target) patches of ``patch`` px from ``root/data`` and ``root/label``."""

    def __init__(self, files: list[tuple[str, Path, Path]], patch: int, augment: bool, seed: int):
        self.files, self.patch, self.augment, self.seed = files, patch, augment, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        name, p, t = self.files[i]
        a, b = as_rgb(_read(p), name), as_rgb(_read(t), name)
        if a.shape != b.shape:
            raise ResJNDError(f"{name}: pristine is {a.shape}, target is {b.shape}; they must match")
        h, w = a.shape[:2]
        if h < self.patch or w < self.patch:
            raise ResJNDError(f"{name}: {w} x {h} is smaller than the patch size {self.patch}")
        rng = np.random.default_rng([self.seed, self.epoch, i])
        y, x = int(rng.integers(0, h - self.patch + 1)), int(rng.integers(0, w - self.patch + 1))
        a, b = a[y : y + self.patch, x : x + self.patch], b[y : y + self.patch, x : x + self.patch]
        if self.augment:
            a, b = augment(a, b, int(rng.integers(8)))
        return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1), torch.from_numpy(
            np.ascontiguousarray(b)
        ).permute(2, 0, 1)


def _unwrapped(loader):
    """Iterate a DataLoader; an error raised in a worker process (a file that
    cannot be read, a pair whose sizes differ) comes back as one line naming the
    file, not as the worker's traceback that PyTorch puts into the message. A
    Ctrl-C while the workers fork is held until they are up, then raised
    (:mod:`.interrupts`)."""
    batches = None
    try:
        with interrupts.held():
            batches = iter(loader)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except (ResJNDError, OSError) as e:  # a bad file, re-raised by PyTorch from a worker
                text = str(e)
                if "Original Traceback" not in text:
                    raise
                last = [line for line in text.strip().splitlines() if line.strip()][-1]
                message = last.split(": ", 1)[-1] if last[:1].isalpha() and ": " in last else last
                break
            interrupts.check()
            yield batch
    finally:
        # Stop the worker processes now (an error, a Ctrl-C, or a run stopped mid-epoch):
        # left to garbage collection, their shutdown came later and waited 5 s per worker.
        shutdown = getattr(batches, "_shutdown_workers", None)  # no public way in torch
        if shutdown is not None:
            with interrupts.held(then_raise=False):
                shutdown()
    raise ResJNDError(message)


class FolderData:
    """Training and validation pairs on disk, for :func:`~.finetune.run_training`."""

    def __init__(
        self,
        pairs_dir: str | Path,
        config: FinetuneConfig,
        val_dir: str | Path | None = None,
        workers: int = 2,
        dist: Any = None,
    ):
        files = pair_files(pairs_dir)
        if val_dir:
            val_files = pair_files(val_dir)
        else:  # hold out a deterministic share of the files
            order = np.random.default_rng(config.seed).permutation(len(files))
            n_val = round(config.val_fraction * len(files)) if config.val_fraction > 0 else 0
            val_files = [files[i] for i in sorted(order[:n_val])]
            files = [files[i] for i in sorted(order[n_val:])]
        if not files:
            raise ResJNDError(f"{pairs_dir}: no training pairs left after the validation split")
        patch = folder_patch(files + val_files, config.patch, DEFAULT_PATCH)
        config = replace(config, patch=patch)
        self.world = dist.get_world_size() if dist is not None else 1
        self.rank = dist.get_rank() if dist is not None else 0
        if config.batch % self.world:
            raise ResJNDError(f"batch {config.batch} must be divisible by the {self.world} processes")
        self.config, self.workers = config, workers
        self.train_set = PairFolder(files, patch, config.augment, config.seed)
        self.val_set = PairFolder(val_files, patch, False, config.seed)
        self.summary = {
            "pairs_dir": str(pairs_dir),
            "val_dir": str(val_dir) if val_dir else None,
            "train_patches": len(files),
            "val_patches": len(val_files),
            "patch": config.patch,
        }

    def steps(self) -> int:
        per_rank = math.ceil(len(self.train_set) / self.world)
        return math.ceil(per_rank / (self.config.batch // self.world))

    def _loader(self, dataset, sampler, batch):
        return DataLoader(
            dataset,
            batch_size=batch,
            sampler=sampler,
            num_workers=self.workers,
            persistent_workers=False,
            worker_init_fn=interrupts.ignore_in_worker if self.workers else None,
            pin_memory=torch.cuda.is_available(),
        )

    def train_batches(self, epoch: int, device: torch.device) -> Iterator[Batch]:
        self.train_set.epoch = epoch
        sampler: DistributedSampler[Any] = DistributedSampler(
            self.train_set, num_replicas=self.world, rank=self.rank, shuffle=True, seed=self.config.seed
        )
        sampler.set_epoch(epoch)
        for x, y in _unwrapped(self._loader(self.train_set, sampler, self.config.batch // self.world)):
            yield (
                x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last),
                y.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last),
            )

    def val_batches(self, device: torch.device, batch: int = 16) -> Iterator[Batch]:
        mine = list(range(self.rank, len(self.val_set), self.world))  # no padding: every file once
        for x, y in _unwrapped(self._loader(self.val_set, mine, batch)):
            yield x.to(device), y.to(device)

    def state(self) -> str:
        return "{}"  # every random choice derives from (seed, epoch, index)

    def load_state(self, text: str) -> None:
        pass


def init_distributed():
    """torch.distributed set up from torchrun's environment, or None for one process.

    Returns (dist or None, device): nccl and one GPU per process where CUDA is
    available, else gloo on the CPU with the cores shared between processes."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None, None
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
        dist.init_process_group("nccl")
        return dist, torch.device("cuda", local)
    dist.init_process_group("gloo")
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    return dist, torch.device("cpu")


def iter_train(
    model: ResJND,
    pairs_dir: str | Path,
    out: str | Path,
    config: FinetuneConfig,
    *,
    val_dir: str | Path | None = None,
    workers: int = 2,
    **run: Unpack[RunOptions],
) -> Generator[TrainingEvent, None, FinetuneResult]:
    """Train ``model`` on a pair folder; a generator like :func:`~.finetune.iter_finetune`.
    ``run``: how the loop is driven (:class:`~.loop.RunOptions`: resume, stop, DDP, device, overrides)."""
    check_config(config)
    data = FolderData(pairs_dir, config, val_dir=val_dir, workers=workers, dist=run.get("dist"))
    return (yield from run_training(model, data, out, data.config, **run))
