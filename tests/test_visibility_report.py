"""`resjnd visibility report`: each session counted once, tested images checked
against the sessions' hashes, hand-edited sessions named, censored thresholds,
per-condition bootstrap seeds, and the calibration file `visibility map` takes."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from napari_resjnd.cli import main
from napari_resjnd.core.images import image_sha256
from napari_resjnd.core.visibility.detection import VisibilityParams, visibility
from napari_resjnd.core.visibility.psychophysics import session as session_module
from napari_resjnd.core.visibility.psychophysics.observer import SimulatedObserver, run_once
from napari_resjnd.core.visibility.psychophysics.procedure import answer_with, run
from napari_resjnd.core.visibility.psychophysics.session import Condition, ObserverSession
from napari_resjnd.core.visibility.psychophysics.stimuli import ConditionStimuli
from napari_resjnd.core.visibility.viewing import DEFAULT_VIEWING
from napari_resjnd.core.zoo import classic_jnd

CAT = np.ascontiguousarray(skdata.chelsea()[60:124, 120:184])
TRUE_ALPHA = 1.8


def simulated(tmp_path, observer, seed, trials=8, sha=True):
    """A session of a simulated observer (no stimuli, answers from a PSNR threshold)."""
    conditions = [Condition("cat", m, image_sha256(CAT) if sha else None) for m in ("yang2005", "uniform")]
    s = ObserverSession(observer, "2afc-side-by-side", conditions, trials_per_condition=trials, seed=seed)
    sims = {c.key: SimulatedObserver(33.0, seed=seed + i) for i, c in enumerate(conditions)}
    answer_with(run(s), lambda t: t.target if sims[t.condition.key].answer(t.psnr) else 1 - t.target)
    return s.save(tmp_path / f"{observer}.json")


def report(tmp_path, *sessions, out="report", extra=()):
    return main(["visibility", "report", *map(str, sessions), "--out", str(tmp_path / out), *extra])


def test_the_same_session_twice_or_a_byte_copy_is_counted_once(tmp_path, capsys):
    a = simulated(tmp_path, "ann", 1)
    copy = tmp_path / "ann-copy.json"
    shutil.copyfile(a, copy)
    assert report(tmp_path, a, a, copy) == 0
    models = json.loads((tmp_path / "report" / "visibility_report.json").read_text())["models"]
    assert [m["n"] for m in models] == [1, 1]  # was 3 and 3
    err = capsys.readouterr().err
    assert "ann-copy.json is the same file as" in err


def test_two_stages_of_one_session_are_refused_and_nothing_written(tmp_path, capsys):
    a = simulated(tmp_path, "ann", 1)
    early = ObserverSession.load(a)
    early.trials = early.trials[:5]
    early.save(tmp_path / "early.json")
    assert report(tmp_path, a, tmp_path / "early.json") == 2
    err = capsys.readouterr().err.strip()
    assert "hold the same session" in err and "early.json" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "report").exists()


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [("seed", "abc", "seed"), ("seed", -1, "seed"), ("seed", 1.5, "seed"), ("rate_hz", -5, "rate_hz")],
)
def test_hand_edited_session_fields_are_one_line_naming_the_file(tmp_path, capsys, field, value, named):
    a = simulated(tmp_path, "ann", 1)
    d = json.loads(a.read_text())
    d[field] = value
    a.write_text(json.dumps(d))
    assert report(tmp_path, a) == 2
    err = capsys.readouterr().err.strip()
    assert "ann.json" in err and named in err and len(err.splitlines()) == 1 and "bug" not in err


def test_a_hand_edited_trial_beta_is_one_line_naming_the_file(tmp_path, capsys):
    a = simulated(tmp_path, "ann", 1)
    d = json.loads(a.read_text())
    d["trials"][0]["beta"] = "x"
    a.write_text(json.dumps(d))
    assert report(tmp_path, a) == 2
    err = capsys.readouterr().err.strip()
    assert "ann.json" in err and "beta" in err and len(err.splitlines()) == 1


def test_images_are_checked_against_the_sessions_hashes_and_sidecars_are_not_images(tmp_path, capsys):
    a = simulated(tmp_path, "ann", 1)
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(CAT).save(images / "cat.png")
    (images / "cat.json").write_text("{}")  # a sidecar, not a second image of that name
    extra = ["--images", str(images), "--jnd", "chou1995"]
    assert report(tmp_path, a, extra=extra) == 0
    capsys.readouterr()
    Image.fromarray(255 - CAT).save(images / "cat.png")  # other pixels under the tested name
    assert report(tmp_path, a, out="r2", extra=extra) == 2
    err = capsys.readouterr().err.strip()
    assert "cat.png" in err and "other pixels" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r2").exists()


def test_each_condition_has_its_own_bootstrap_seed(monkeypatch):
    seeds = []
    real = session_module.fit
    monkeypatch.setattr(session_module, "fit", lambda *a, seed=0, **k: seeds.append(seed) or real(*a, seed=seed, **k))
    s = ObserverSession("o", "flicker", [Condition("a", "m1"), Condition("a", "m2")], trials_per_condition=4, seed=3)
    answer_with(run(s), lambda t: t.target)
    s.fits()
    assert len(seeds) == 2 and seeds[0] != seeds[1]  # both used the session seed before


def test_thresholds_beyond_the_stimuli_shown_are_flagged_censored():
    blind, _ = run_once(SimulatedObserver(5.0, seed=1), 40)
    keen, _ = run_once(SimulatedObserver(69.0, seed=1), 40)
    assert blind.censored == "below" and keen.censored == "above"
    assert run_once(SimulatedObserver(36.0, seed=1), 40)[0].censored is None


def observed(tmp_path, observer, seed, trials):
    """A session with real stimuli and an observer who sees them as the visibility
    model says (yang2005's map, alpha = TRUE_ALPHA)."""
    maps = {"yang2005": classic_jnd("yang2005", CAT), "uniform": np.ones(CAT.shape[:2], np.float32)}
    conditions = [Condition("cat", m, image_sha256(CAT)) for m in maps]
    s = ObserverSession(
        observer, "flicker", conditions, trials_per_condition=trials, seed=seed, viewing=DEFAULT_VIEWING.as_dict()
    )
    stimuli = {c.key: ConditionStimuli(CAT, maps[c.model], seed=seed) for c in conditions}
    rng = np.random.default_rng(seed)
    truth = VisibilityParams(alpha=TRUE_ALPHA)

    def answer(t):
        p = visibility(t.stimulus.pristine, t.stimulus.distorted, maps["yang2005"], truth, model="yang2005").p_detect
        return t.target if rng.random() < 0.5 + 0.48 * p else 1 - t.target

    answer_with(run(s, stimuli=stimuli), answer)
    return s.save(tmp_path / f"{observer}.json")


@pytest.mark.slow
def test_report_calibrates_alpha_on_the_trials_as_shown_and_map_takes_it(tmp_path, capsys):
    sessions = [observed(tmp_path, f"o{k}", k, 50) for k in range(3)]
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(CAT).save(images / "cat.png")
    out = tmp_path / "report"
    assert report(tmp_path, *sessions, extra=["--images", str(images), "--jnd", "yang2005"]) == 0
    text = (out / "calibration.json").read_text()
    cal = json.loads(text)["calibrations"]
    assert len(cal) == 1 and cal[0]["model"] == "yang2005" and cal[0]["procedure"] == "flicker"
    low, high = cal[0]["details"]["alpha_ci95"]
    assert low <= TRUE_ALPHA <= high and cal[0]["trials"] == 300 and cal[0]["log_likelihood"] < 0
    assert "| yang2005 | flicker |" in capsys.readouterr().out
    # visibility map takes it (alpha and beta from the file) ...
    Image.fromarray(CAT).save(tmp_path / "cat.png")
    noisy = np.clip(CAT.astype(int) + 6, 0, 255).astype(np.uint8)
    Image.fromarray(noisy).save(tmp_path / "noisy.png")
    base = ["visibility", "map", str(tmp_path / "cat.png"), str(tmp_path / "noisy.png")]
    calib = ["--calibration", str(out / "calibration.json")]
    assert main([*base, "--jnd", "yang2005", *calib, "--out", str(tmp_path / "m")]) == 0
    info = json.loads((tmp_path / "m" / "noisy_visibility.json").read_text())
    expected = visibility(CAT, noisy, classic_jnd("yang2005", CAT), VisibilityParams(cal[0]["alpha"], cal[0]["beta"]))
    assert info["p_detect"] == pytest.approx(expected.p_detect) and info["calibration"]["alpha"] == cal[0]["alpha"]
    # ... and refuses it for another model or viewing condition, writing nothing
    capsys.readouterr()
    assert main([*base, "--jnd", "chou1995", *calib, "--out", str(tmp_path / "m2")]) == 2
    assert "not for chou1995" in capsys.readouterr().err
    assert main([*base, "--jnd", "yang2005", *calib, "--viewing-distance", "120", "--out", str(tmp_path / "m3")]) == 2
    assert "pixels per degree" in capsys.readouterr().err
    assert main([*base, "--jnd", "yang2005", *calib, "--alpha", "2", "--out", str(tmp_path / "m4")]) == 2
    assert not any((tmp_path / d).exists() for d in ("m2", "m3", "m4"))
