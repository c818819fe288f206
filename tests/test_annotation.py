"""Ladders, the bisection staircase, sessions, merging, target assembly, CLI."""

import json

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from napari_resjnd.cli import main
from napari_resjnd.core.research.annotation import (
    AnnotationSession,
    Bisection,
    PatchRecord,
    assemble_target,
    export_pairs,
    ladders_for,
    merge,
)
from napari_resjnd.core.research.ladders import GENERATORS, klt_reconstruct, make_ladder

PATCH = skdata.astronaut()[180:244, 200:268]  # 64 x 68: not a multiple of 8 across


@pytest.mark.parametrize("gen", GENERATORS)
def test_ladders_are_monotonic_start_at_the_original_and_are_deterministic(gen):
    lad = make_ladder(PATCH, gen, 7, seed=3)
    assert len(lad.levels) == 7 and np.array_equal(lad.levels[0], PATCH.astype(float))
    assert lad.psnr[0] == float("inf") and all(a >= b for a, b in zip(lad.psnr, lad.psnr[1:]))
    assert lad.psnr[-1] < 40
    again = make_ladder(PATCH, gen, 7, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(lad.levels, again.levels))


def test_klt_with_all_components_is_exact():
    x = PATCH.astype(np.float64)
    np.testing.assert_allclose(klt_reconstruct(x, 64), x, atol=1e-8)
    assert np.abs(klt_reconstruct(x, 4) - x).mean() > 1


@pytest.mark.parametrize("levels, threshold", [(8, 0), (8, 3), (8, 7), (13, 5), (2, 1)])
def test_bisection_finds_a_simulated_observers_threshold(levels, threshold):
    s = Bisection(levels)
    trials = 0
    while not s.done:
        lvl = s.next_level()
        s.answer(lvl, lvl <= threshold)
        trials += 1
    assert s.critical == threshold and trials <= int(np.ceil(np.log2(levels))) + 1


def session_for(tmp_path, boxes, levels=6):
    s = AnnotationSession(
        "obs1",
        str(tmp_path / "img.png"),
        (200, 300, 3),
        "jpeg",
        levels,
        seed=1,
        patches=[PatchRecord(b) for b in boxes],
    )
    return s


def test_sessions_survive_a_kill_between_answers(tmp_path):
    path = tmp_path / "s.json"
    s = session_for(tmp_path, [(0, 40, 0, 40), (50, 90, 60, 100)])
    thresholds = [2, 4]
    answered = 0
    while (i := s.next_patch()) is not None:
        lvl = s.staircase(i).next_level()
        s.record(i, lvl, lvl <= thresholds[i], t_shown=0.0, t_answer=0.5)
        s.save(path)
        answered += 1
        if answered == 2:  # "kill": drop everything, reload from disk and go on
            s = AnnotationSession.load(path)
    assert [p.critical for p in s.patches] == thresholds
    assert [p.critical for p in AnnotationSession.load(path).patches] == thresholds
    assert not list(tmp_path.glob("*.tmp"))


def test_target_assembly_is_exact():
    img = skdata.coffee()[:100, :120]
    boxes = [(10, 30, 20, 50), (60, 90, 70, 110)]
    versions = [np.full((20, 30, 3), 7.0), np.full((30, 40, 3), 200.0)]
    t = assemble_target(img, boxes, versions)
    assert np.all(t[10:30, 20:50] == 7) and np.all(t[60:90, 70:110] == 200)
    mask = np.ones(img.shape[:2], bool)
    mask[10:30, 20:50] = mask[60:90, 70:110] = False
    assert np.array_equal(t[mask], img[mask].astype(float))


def test_merge_takes_the_median_and_reports_agreement(tmp_path):
    boxes = [(0, 40, 0, 40), (50, 90, 60, 100)]
    sessions = []
    for obs, crit in (("a", [2, 4]), ("b", [3, 4]), ("c", [2, 5])):
        s = session_for(tmp_path, boxes)
        s.observer = obs
        for p, c in zip(s.patches, crit):
            p.critical = c
        sessions.append(s)
    m = merge(sessions)
    assert [r["median"] for r in m["patches"]] == [2, 4]
    assert m["agreement"]["within_one_level"] == 1.0 and m["agreement"]["observers"] == ["a", "b", "c"]
    other = session_for(tmp_path, boxes, levels=9)
    with pytest.raises(ValueError, match="other settings"):
        merge([sessions[0], other])


def test_cli_ladder_and_merge(tmp_path, capsys):
    img = skdata.chelsea()[:120, :160]
    Image.fromarray(img).save(tmp_path / "img.png")
    assert (
        main(
            [
                "ladder",
                str(tmp_path / "img.png"),
                "--box",
                "20,10,48,40",
                "--generator",
                "klt",
                "--levels",
                "5",
                "--out",
                str(tmp_path / "lad"),
            ]
        )
        == 0
    )
    info = json.loads((tmp_path / "lad" / "ladder.json").read_text())
    assert len(info["levels"]) == 5 and info["levels"][1]["param"] == 48
    assert np.asarray(Image.open(tmp_path / "lad" / "level_00.png")).shape == (40, 48, 3)
    assert main(["ladder", str(tmp_path / "img.png"), "--box", "150,10,48,40", "--out", str(tmp_path / "x")]) == 2

    boxes = [(10, 50, 20, 68), (60, 100, 80, 140)]
    paths = []
    for obs, crit in (("a", [1, 3]), ("b", [2, 3]), ("c", [1, 4])):
        s = AnnotationSession(
            obs,
            str(tmp_path / "img.png"),
            img.shape,
            "jpeg",
            5,
            seed=0,
            patches=[PatchRecord(b, critical=c) for b, c in zip(boxes, crit)],
        )
        s.save(tmp_path / f"{obs}.json")
        paths.append(str(tmp_path / f"{obs}.json"))
    assert main(["annotations", "merge", *paths, "--out", str(tmp_path / "pairs")]) == 0
    lad = ladders_for(img, AnnotationSession.load(paths[0]))
    label = np.asarray(Image.open(tmp_path / "pairs" / "label" / "img_001.png"))
    np.testing.assert_array_equal(label, np.clip(np.rint(lad[1].levels[3]), 0, 255).astype(np.uint8))
    assert "2 patches from 3 observers" in capsys.readouterr().out
    export_pairs(img, boxes, [lad[0].levels[1], lad[1].levels[3]], tmp_path / "p2")
    assert sorted(p.name for p in (tmp_path / "p2" / "data").iterdir()) == ["patch_000.png", "patch_001.png"]
    # exported again with one box: this image's earlier pairs go, another image's stay
    export_pairs(img, boxes, [lad[0].levels[1], lad[1].levels[3]], tmp_path / "p2", stem="other")
    export_pairs(img, boxes[:1], [lad[0].levels[2]], tmp_path / "p2")
    for sub in ("data", "label"):
        names = sorted(p.name for p in (tmp_path / "p2" / sub).iterdir())
        assert names == ["other_000.png", "other_001.png", "patch_000.png"], names
