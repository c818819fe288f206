"""The tables of a ``resjnd compress`` run, written as one set: ``rd.csv`` (a row per
stream), ``bd_rate.csv`` (per image and the mean; left out when BD-rates cannot be
computed here) and ``codecs.json`` (the settings, the libraries, which images are
done and which failed, whether the run is complete). They are written when a run
ends, however it ends (Ctrl-C included), and read back to resume one; every parse
error names its file.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ResJNDError
from ..files import atomic_write_all, json_writer
from .bdrate import mean_rows

RD_COLUMNS = ["image", "jnd", "codec", "quality", "bytes", "bpp"]
BD_COLUMNS = ["codec", "jnd", "image", "metric", "bd_rate_percent", "overlap", "images", "note"]
RECORD = "codecs.json"
#: What a compress run writes in its folder: an earlier run's, or one in progress, is never mixed with another's.
OUTPUTS = ("rd.csv", "bd_rate.csv", RECORD, "streams", "plots")


@dataclass
class Results:
    """A run's results so far: its settings, rows and per-image BD-rates, done and failed images."""

    #: What a resumed run must share with this one (codecs, qualities, models, pre-processing, ...).
    settings: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    bd: list[dict[str, Any]] = field(default_factory=list)
    #: Images finished, by their path below the input root.
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    #: The weights an earlier run recorded (read back with its results).
    recorded_weights: str | None = None

    def add(self, image: str, rows: list[dict[str, Any]], bd: list[dict[str, Any]]) -> None:
        self.rows += rows
        self.bd += bd
        self.done.append(image)
        self.failed.pop(image, None)

    def means(self) -> list[dict[str, Any]]:
        return mean_rows(self.bd)

    def write(self, out: Path, metrics: Sequence[str], info: dict[str, Any], complete: bool) -> None:
        """rd.csv, bd_rate.csv (when BD-rates were computed) and codecs.json, as one set."""
        extra = sorted({k for r in self.rows for k in r} - set(RD_COLUMNS) - set(metrics))
        files: list[tuple[Path, Callable[[str], object]]] = [
            (out / "rd.csv", _csv_writer(self.rows, RD_COLUMNS + list(metrics) + extra))
        ]
        if self.settings.get("bd_rate", True):
            files.append((out / "bd_rate.csv", _csv_writer(self.bd + self.means(), BD_COLUMNS)))
        record = {
            "complete": complete,
            **info,
            "settings": self.settings,
            "images": len(self.done),
            "done": self.done,
            "failed": self.failed,
        }
        files.append((out / RECORD, json_writer(record)))
        atomic_write_all(files)


def _csv_writer(rows: list[dict[str, Any]], columns: list[str]) -> Callable[[str], None]:
    def write(tmp: str) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow({k: (f"{v:.6g}" if isinstance(v, float) and math.isfinite(v) else v) for k, v in r.items()})

    return write


def read(out: Path) -> Results:
    """An earlier run's results in ``out`` (its codecs.json, rd.csv and bd_rate.csv)."""
    record = out / RECORD
    try:
        info = json.loads(record.read_text(encoding="utf-8"))
        settings, done, failed = info["settings"], info["done"], info["failed"]
        if not (isinstance(settings, dict) and isinstance(done, list) and isinstance(failed, dict)):
            raise TypeError("settings, done or failed of the wrong type")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ResJNDError(
            f"{record}: not the record of a compress run that can be resumed ({type(e).__name__}: {e})"
        ) from None
    earlier = Results(settings, failed={str(k): str(v) for k, v in failed.items()})
    finished = {str(d) for d in done}
    earlier.rows = [r for r in _read_csv(out / "rd.csv", RD_COLUMNS) if r["image"] in finished]
    if settings.get("bd_rate", True):
        per_image = [r for r in _read_csv(out / "bd_rate.csv", BD_COLUMNS) if r["image"] != "mean"]
        earlier.bd = [_bd_numbers(r, out / "bd_rate.csv") for r in per_image if r["image"] in finished]
    earlier.done = [str(d) for d in done]
    weights = info.get("weights")
    earlier.recorded_weights = weights if isinstance(weights, str) else None
    return earlier


def _read_csv(path: Path, columns: list[str]) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"no column {missing[0]!r}")
            return list(reader)
    except (OSError, ValueError, csv.Error) as e:
        raise ResJNDError(f"{path}: not the table of a compress run ({type(e).__name__}: {e})") from None


def _bd_numbers(row: dict[str, str], path: Path) -> dict[str, Any]:
    try:
        return {**row, "bd_rate_percent": float(row["bd_rate_percent"] or "nan"), "overlap": float(row["overlap"] or 0)}
    except ValueError as e:
        raise ResJNDError(f"{path}: image {row.get('image')!r}: {e}") from None


def check_resumable(earlier: Results, settings: dict[str, Any], record: Path) -> None:
    """A run resumes only with the recorded settings: one line naming each that differs."""
    differ = [k for k in sorted(set(settings) | set(earlier.settings)) if settings.get(k) != earlier.settings.get(k)]
    if differ:
        was = "; ".join(f"{k} {settings.get(k)!r}, recorded {earlier.settings.get(k)!r}" for k in differ)
        raise ResJNDError(
            f"--resume: {was} (in {record}); rerun with the recorded settings, or give a new --out folder"
        )


def earlier(out: Path, settings: dict[str, Any], resume: bool) -> Results | None:
    """An earlier run's results in ``out``: None when there are none; refused unless
    ``resume`` (nothing of two runs mixes); with ``resume`` read back, its settings checked."""
    found = [n for n in OUTPUTS if (out / n).exists()]
    if not found:
        return None
    try:
        complete = bool(json.loads((out / RECORD).read_text(encoding="utf-8")).get("complete", True))
    except (OSError, ValueError, AttributeError):
        complete = True
    if not resume:
        how = "add --resume to code the rest with the same settings, or give" if not complete else "give"
        raise ResJNDError(
            f"--out {out} holds an earlier {'interrupted ' if not complete else ''}compress run's results "
            f"({', '.join(found)}); {how} a new or empty folder (nothing was written)"
        )
    results = read(out)
    check_resumable(results, settings, out / RECORD)
    return results
