"""Training data for fine-tuning: pristine/target pairs and the patches cut from them.

A pair is a pristine image and its target CPL image (same size). Patches come
from rectangles or a mask drawn over the pristine image, or from a regular grid
over the whole image, or from folders in the authors' layout (``DIR/data/`` and
``DIR/label/`` with matching file names).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ResJNDError
from ..files import atomic_write, json_text
from ..images import IMAGE_SUFFIXES, image_size, layout_of, plane_rgb, read_image, to_unit_float


@dataclass
class Pair:
    """A pristine image and its target CPL image, H x W x 3 float32 in [0, 1]."""

    name: str
    pristine: np.ndarray
    target: np.ndarray


def as_rgb(image: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(image)
    layout = layout_of(a)
    if layout.n_planes != 1:
        raise ResJNDError(f"{what}: expected one 2-D image, got shape {a.shape}")
    try:
        unit = to_unit_float(a)
    except ValueError as e:  # NaN, another scale: say which image
        raise ResJNDError(f"{what}: {e}") from None
    return plane_rgb(unit, layout, 0)


def make_pair(
    pristine: np.ndarray, target: np.ndarray, name: str = "pair", files: tuple[str, str] | None = None
) -> Pair:
    """Check and convert one pair (any input kind that ``predict`` takes); ``files``
    (pristine, target) name them in errors."""
    p = as_rgb(pristine, files[0] if files else f"{name} (pristine)")
    t = as_rgb(target, files[1] if files else f"{name} (target)")
    if p.shape != t.shape:
        raise ResJNDError(
            f"{name}: pristine is {p.shape[1]} x {p.shape[0]} but target is {t.shape[1]} x {t.shape[0]}; "
            "a target CPL image must match its pristine image"
        )
    return Pair(name, p, t)


def pair_files(root: str | Path) -> list[tuple[str, Path, Path]]:
    """(name, pristine path, target path) for ``root/data/NAME`` and ``root/label/NAME``
    (the authors' layout); files without a partner are an error."""
    root = Path(root)
    data, label = root / "data", root / "label"
    for d in (data, label):
        if not d.is_dir():
            raise ResJNDError(f"{root}: expected sub-folders data/ (pristine) and label/ (CPL), missing {d.name}/")

    def names(d):
        return {p.name: p for p in sorted(d.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}

    dn, ln = names(data), names(label)
    missing = sorted(set(dn) ^ set(ln))
    if missing:
        where = ["label/" if m in dn else "data/" for m in missing]
        raise ResJNDError(
            f"{root}: files without a partner: " + ", ".join(f"{m} (not in {w})" for m, w in zip(missing, where))
        )
    if not dn:
        raise ResJNDError(f"{root}: no images in data/")
    return [(n, dn[n], ln[n]) for n in sorted(dn)]


def folder_patch(files: list[tuple[str, Path, Path]], patch: int | None, default: int) -> int:
    """The patch size for a pair folder, checked against every pair's size.

    ``patch=None`` means automatic: ``default``, or the pairs' own side when every
    pair has one size whose shorter side is below ``default`` (a folder written
    by ``resjnd patches --size 16``). Pristine and target sizes are checked here,
    before any work, and a patch larger than some pair is an error naming it.
    """
    sizes = {}
    for name, pp, tp in files:
        a, b = image_size(pp), image_size(tp)
        if a != b:
            raise ResJNDError(f"{name}: pristine is {a[1]} x {a[0]}, target is {b[1]} x {b[0]}; they must match")
        sizes[name] = a
    return checked_patch(sizes, patch, default)


def checked_patch(sizes: dict[str, tuple[int, int]], patch: int | None, default: int) -> int:
    """:func:`folder_patch` on known (height, width) sizes by pair name."""
    if patch is None:
        distinct = set(sizes.values())
        patch = default
        if len(distinct) == 1 and min(next(iter(distinct))) < default:
            patch = min(next(iter(distinct)))
    name, (h, w) = min(sizes.items(), key=lambda kv: min(kv[1]))
    if patch > min(h, w):
        raise ResJNDError(
            f"{name}: {w} x {h} is smaller than the patch size {patch}; use a patch size of {min(h, w)} or less"
        )
    return patch


def load_pair_folder(root: str | Path) -> list[Pair]:
    """All pairs of a folder in the authors' layout, in memory (see :func:`pair_files`)."""
    return [make_pair(read_image(p), read_image(t), n, (str(p), str(t))) for n, p, t in pair_files(root)]


def write_patches(
    src: str | Path,
    out: str | Path,
    size: int,
    stride: int | None = None,
    min_std: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Crop aligned patches from a pair folder into ``out/data`` and ``out/label``.

    One pair is in memory at a time. Patches lie on a grid (``stride``, default
    ``size``) that always includes the last row and column; with ``min_std`` > 0,
    patches whose pristine luminance varies less (std in grey levels) are skipped.
    Names: ``<stem>_y<Y>_x<X><suffix>``. Returns counts.
    """
    out = Path(out)
    files = pair_files(src)
    folder_patch(files, size, size)  # every pair's sizes, from the headers, before any file is written
    stems = [Path(name).stem for name, _, _ in files]
    if len({s.casefold() for s in stems}) < len(stems):  # x.png and x.bmp: name patches after whole names
        stems = [name for name, _, _ in files]
    earlier = _earlier_patches(out)
    counts = {"pairs": len(files), "patches": 0, "skipped_flat": 0, "replaced": len(earlier) // 2}
    made_out = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".tmp-patches-", dir=out))  # the new set, until it is whole
    new: list[str] = []
    try:
        for k, ((name, pp, tp), stem) in enumerate(zip(files, stems)):
            a, b = read_image(pp), read_image(tp)
            if a.shape != b.shape or a.dtype != b.dtype:
                raise ResJNDError(
                    f"{name}: pristine is {a.shape} {a.dtype}, target is {b.shape} {b.dtype}; they must match"
                )
            rgb = as_rgb(a, name)
            pair = Pair(name, rgb, rgb)  # only its size and luminance are used
            lum = pair.pristine @ np.array([0.299, 0.587, 0.114], np.float32) * 255
            suffix = ".png" if a.dtype == np.uint8 else ".tif"
            for y, x in patch_origins(pair, size, stride=stride):
                if min_std and lum[y : y + size, x : x + size].std() < min_std:
                    counts["skipped_flat"] += 1
                    continue
                for arr, sub in ((a, "data"), (b, "label")):
                    crop = np.ascontiguousarray(arr[y : y + size, x : x + size])
                    rel = f"{sub}/{stem}_y{y}_x{x}{suffix}"
                    atomic_write(stage / rel, _image_writer(crop, suffix))
                    new.append(rel)
                counts["patches"] += 1
            if progress is not None:
                progress(k + 1, len(files))
        _publish_patches(out, stage, new, earlier)
    except BaseException:  # all or nothing, and the earlier run's set untouched
        shutil.rmtree(stage, ignore_errors=True)
        if made_out:
            shutil.rmtree(out, ignore_errors=True)
        raise
    shutil.rmtree(stage, ignore_errors=True)
    return counts


#: The list of files ``write_patches`` wrote into a folder: a later run into the same
#: folder replaces exactly these, and refuses a folder holding files it does not list.
PATCHES_RECORD = "patches.json"


def _earlier_patches(out: Path) -> list[str]:
    """The files (``data/NAME``, ``label/NAME``) an earlier run recorded in ``out``."""
    record = out / PATCHES_RECORD
    recorded: list[str] = []
    if record.is_file():
        try:
            recorded = [str(p) for p in json.loads(record.read_text())["files"]]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise ResJNDError(f"{record}: unreadable ({e}); give a new or empty folder") from None
    present = [f"{sub}/{p.name}" for sub in ("data", "label") if (out / sub).is_dir() for p in (out / sub).iterdir()]
    foreign = sorted(set(present) - set(recorded))
    if foreign:
        raise ResJNDError(
            f"{out}: holds {len(foreign)} files of an earlier run that {PATCHES_RECORD} does not list "
            f"({foreign[0]}, ...); give a new or empty folder (nothing was written)"
        )
    return sorted(set(recorded) & set(present))


def _publish_patches(out: Path, stage: Path, new: list[str], earlier: list[str]) -> None:
    """Move the staged set into place and remove the earlier set's other files; the
    record lists every file that may be there at each step (an interruption leaves
    a folder the next run can still replace)."""

    def record(files: list[str]) -> None:
        text = json_text({"files": sorted(files)}, indent=1)
        atomic_write(out / PATCHES_RECORD, lambda tmp: Path(tmp).write_text(text))

    record(sorted(set(earlier) | set(new)))
    for rel in new:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        os.replace(stage / rel, out / rel)
    for rel in sorted(set(earlier) - set(new)):
        (out / rel).unlink(missing_ok=True)
    record(new)


def refuse_earlier_pairs(out: str | Path, also: tuple[str, ...] = ()) -> None:
    """Refuse an ``out`` whose ``data/`` or ``label/`` (or the files ``also``) hold an
    earlier run's files: writing beside them would mix two sets of pairs (a later
    fine-tune trains on both), and overwriting them would lose the earlier run."""
    out = Path(out)
    earlier = [p for sub in ("data", "label") if (out / sub).is_dir() for p in (out / sub).iterdir()]
    earlier += [out / name for name in also if (out / name).exists()]
    if earlier:
        raise ResJNDError(
            f"{out}: holds {len(earlier)} files of an earlier run ({earlier[0].relative_to(out)}, ...); "
            "give a new or empty folder (nothing was written)"
        )


def _image_writer(array: np.ndarray, suffix: str) -> Callable[[str], None]:
    def write(tmp: str) -> None:
        if suffix == ".png":
            from PIL import Image

            Image.fromarray(array).save(tmp, format="PNG")
        else:
            import tifffile

            tifffile.imwrite(tmp, array)

    return write


Box = tuple[int, int, int, int]  # y0, y1, x0, x1 (pixels, end exclusive)


def check_patch(pair: Pair, patch: int) -> None:
    h, w = pair.pristine.shape[:2]
    if patch > h or patch > w:
        raise ResJNDError(f"{pair.name}: patch size {patch} is larger than the image ({w} x {h})")


def grid_origins(y0: int, y1: int, x0: int, x1: int, patch: int, h: int, w: int, stride: int) -> list:
    """Top-left corners of patches covering a box; a box smaller than a patch
    gets one patch centred on it, moved inside the image."""

    def starts(a0, a1, n):
        if a1 - a0 <= patch:
            c = (a0 + a1) // 2 - patch // 2
            return [int(np.clip(c, 0, n - patch))]
        s = list(range(a0, a1 - patch + 1, stride))
        if s[-1] != a1 - patch:
            s.append(a1 - patch)
        return s

    return [(y, x) for y in starts(y0, y1, h) for x in starts(x0, x1, w)]


def patch_origins(
    pair: Pair,
    patch: int,
    *,
    boxes: list[Box] | None = None,
    mask: np.ndarray | None = None,
    stride: int | None = None,
) -> list[tuple[int, int]]:
    """Where to cut patches from ``pair``: inside ``boxes``, where ``mask`` is set
    (a patch whose centre lies in the mask), or over the whole image."""
    check_patch(pair, patch)
    h, w = pair.pristine.shape[:2]
    stride = stride or patch
    if boxes:
        out = []
        for i, (y0, y1, x0, x1) in enumerate(boxes):
            y0, y1, x0, x1 = max(0, y0), min(h, y1), max(0, x0), min(w, x1)
            if y1 <= y0 or x1 <= x0:
                raise ResJNDError(f"{pair.name}: rectangle {i} lies outside the image")
            out += grid_origins(y0, y1, x0, x1, patch, h, w, stride)
        return sorted(set(out))
    if mask is not None:
        m = np.asarray(mask).astype(bool)
        if m.shape != (h, w):
            raise ResJNDError(f"{pair.name}: mask is {m.shape[1]} x {m.shape[0]}, image is {w} x {h}")
        if not m.any():
            raise ResJNDError(f"{pair.name}: the mask marks no pixel")
        cands = grid_origins(0, h, 0, w, patch, h, w, max(1, stride // 2))
        out = [(y, x) for y, x in cands if m[y + patch // 2, x + patch // 2]]
        if not out:  # small regions: centre a patch on each marked pixel's bounding box
            ys, xs = np.nonzero(m)
            out = grid_origins(ys.min(), ys.max() + 1, xs.min(), xs.max() + 1, patch, h, w, stride)
        return out
    return grid_origins(0, h, 0, w, patch, h, w, stride)


@dataclass(frozen=True)
class PatchIndex:
    pair: int
    y: int
    x: int


def cut(pairs: list[Pair], idx: PatchIndex, patch: int) -> tuple[np.ndarray, np.ndarray]:
    p = pairs[idx.pair]
    sl = (slice(idx.y, idx.y + patch), slice(idx.x, idx.x + patch))
    return p.pristine[sl], p.target[sl]


def augment(a: np.ndarray, b: np.ndarray, code: int) -> tuple[np.ndarray, np.ndarray]:
    """One of the 8 flips/90-degree rotations (``code`` 0-7), the same for both."""
    k, flip = code % 4, code >= 4
    a, b = np.rot90(a, k), np.rot90(b, k)
    if flip:
        a, b = a[:, ::-1], b[:, ::-1]
    return np.ascontiguousarray(a), np.ascontiguousarray(b)


def split(
    pairs: list[Pair], origins: list[list[tuple[int, int]]], val_fraction: float, by: str, seed: int
) -> tuple[list[PatchIndex], list[PatchIndex]]:
    """Deterministic train/validation split by patches or by whole images."""
    rng = np.random.default_rng(seed)
    if by == "images":
        if len(pairs) < 2:
            raise ResJNDError("a validation split by images needs at least two image pairs")
        order = rng.permutation(len(pairs))
        n_val = max(1, round(val_fraction * len(pairs)))
        val_pairs = set(order[:n_val].tolist())
        train = [PatchIndex(i, y, x) for i, o in enumerate(origins) if i not in val_pairs for y, x in o]
        val = [PatchIndex(i, y, x) for i, o in enumerate(origins) if i in val_pairs for y, x in o]
    elif by == "patches":
        every = [PatchIndex(i, y, x) for i, o in enumerate(origins) for y, x in o]
        order = rng.permutation(len(every))
        n_val = max(1, round(val_fraction * len(every))) if val_fraction > 0 else 0
        if len(every) - n_val < 1:
            raise ResJNDError(f"only {len(every)} patches: too few to hold {n_val} out for validation")
        val = [every[i] for i in sorted(order[:n_val])]
        train = [every[i] for i in sorted(order[n_val:])]
    else:
        raise ResJNDError(f"validation split must be by 'patches' or 'images', got {by!r}")
    return train, val
