"""`resjnd doctor`: this machine's paths measured, and `auto`'s choice held against them."""

from __future__ import annotations

import json

import pytest

from napari_resjnd.cli import main
from napari_resjnd.core import doctor
from napari_resjnd.core.precision import ACCURACY_BOUND


@pytest.mark.slow
def test_auto_takes_the_fastest_path_within_the_bound_as_measured_here(official_cache, capsys):
    assert main(["doctor", "--json", "--size", "96", "--repeat", "2"]) == 0
    info = json.loads(capsys.readouterr().out)
    paths = {p["precision"]: p for p in info["measured"]["paths"]}
    assert set(paths) == set(doctor.cpu_paths()) and paths["fp32"]["mean_error"] == 0
    auto = info["auto"]["precision"]
    assert auto in paths and info["auto"]["reason"].startswith("auto:")
    mine, best = paths[auto], paths[info["measured"]["fastest_within_bound"]]
    assert ACCURACY_BOUND.holds(mine["mean_error"], mine["p999_error"]), mine
    # the fastest within the bound, or within timing noise of it (a shared 2-core machine)
    assert mine["seconds_per_mp"] <= 1.3 * best["seconds_per_mp"], info["measured"]


def test_doctor_says_what_auto_picks_without_measuring(official_cache, capsys):
    assert main(["doctor", "--no-measure"]) == 0
    out = capsys.readouterr().out
    assert "auto on the CPU with resjnd-cplset:" in out and "CPU:" in out and "torch" in out
    assert "measured on" not in out


def test_doctor_without_weights_still_describes_the_machine(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("RESJND_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("RESJND_OFFLINE", "1")
    assert main(["doctor"]) == 0
    captured = capsys.readouterr()
    assert "CPU:" in captured.out and "no weights to measure with" in captured.err
