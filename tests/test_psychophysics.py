"""Psychophysics: the psychometric function and its fit, QUEST+, the trial loop,
sessions that survive a kill, the simulated observer's recovery, the CLI."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from napari_resjnd.cli import main
from napari_resjnd.core.errors import ResJNDError
from napari_resjnd.core.visibility.psychophysics.observer import SimulatedObserver, run_once, simulate
from napari_resjnd.core.visibility.psychophysics.procedure import Response, answer_with, run
from napari_resjnd.core.visibility.psychophysics.psychometric import (
    fit,
    p_correct,
    percent_correct_at_threshold,
)
from napari_resjnd.core.visibility.psychophysics.quest import QuestPlus
from napari_resjnd.core.visibility.psychophysics.session import Condition, ObserverSession
from napari_resjnd.core.visibility.psychophysics.stimuli import ConditionStimuli
from napari_resjnd.core.zoo import classic_jnd

CAT = skdata.chelsea()[60:124, 120:184]  # 64 x 64


def test_the_psychometric_function_is_chance_far_above_threshold_and_816_at_it():
    assert p_correct(80.0, 35.0, 3.5) == pytest.approx(0.5, abs=1e-6)
    assert p_correct(35.0, 35.0, 3.5, lapse=0.0) == pytest.approx(0.816, abs=1e-3)
    assert p_correct(10.0, 35.0, 3.5) == pytest.approx(0.98, abs=1e-6)
    assert percent_correct_at_threshold(lapse=0) == pytest.approx(0.816, abs=1e-3)


def test_fit_recovers_a_threshold_from_many_answers_and_its_ci_narrows_with_more():
    rng = np.random.default_rng(0)
    s = np.repeat(np.arange(26.0, 46.0, 1.0), 60)
    y = rng.random(s.size) < p_correct(s, 36.0, 3.5)
    many = fit(s, y)
    few = fit(s[::10], y[::10])
    assert abs(many.threshold - 36.0) <= 0.5 and many.ci_low <= 36.0 <= many.ci_high
    assert many.ci_high - many.ci_low < few.ci_high - few.ci_low


def test_quest_places_trials_near_the_threshold():
    obs = SimulatedObserver(33.0, seed=3)
    q = QuestPlus()
    shown = []
    for _ in range(60):
        s = q.next_stimulus()
        q.update(s, obs.answer(s))
        shown.append(s)
    assert abs(np.median(shown[20:]) - 33.0) < 4
    mean, low, high = q.estimate()
    assert low <= mean <= high and abs(mean - 33.0) < 3


@pytest.mark.slow
def test_the_procedure_recovers_a_simulated_threshold():
    """80 trials, 100 runs: the 95 % CI covers the truth in >= 85 % of runs, median error <= 1.5 dB."""
    r = simulate(37.0, trials=80, runs=100, seed=7)
    assert len(r["runs"]) == 100
    assert r["coverage"] >= 0.85, r["coverage"]
    assert r["median_abs_error_db"] <= 1.5, r["median_abs_error_db"]


def test_a_blind_observer_gives_no_threshold_inside_the_tested_range():
    """An observer who never sees the noise (threshold far below the range): the fit
    puts the threshold below every PSNR shown, not at a made-up value."""
    f, session = run_once(SimulatedObserver(5.0, seed=1), 40)
    assert f.threshold < 20 and len(session.trials) == 40


def session(conditions=None, n=6, procedure="2afc-side-by-side", seed=5):
    conditions = conditions or [Condition("cat", "yang2005"), Condition("cat", "uniform")]
    return ObserverSession("obs1", procedure, conditions, trials_per_condition=n, seed=seed)


def test_trials_interleave_conditions_show_real_stimuli_and_save_after_each(tmp_path):
    jnd = {"cat | yang2005": classic_jnd("yang2005", CAT), "cat | uniform": np.ones(CAT.shape[:2], np.float32)}
    stimuli = {k: ConditionStimuli(CAT, m, seed=5) for k, m in jnd.items()}
    s = session()
    path = tmp_path / "s.json"
    loop = run(s, path, stimuli)
    trial = next(loop)
    seen, shown = [], []
    while True:
        st = trial.stimulus
        assert st.distorted.dtype == np.uint8 and st.distorted.shape == CAT.shape
        if trial.condition.model != "uniform":  # uniform noise on 8 bits: +-1, +-2... grey levels only
            assert abs(st.psnr - trial.psnr) < 0.1  # as asked, after 8-bit rounding
        shown.append(st.psnr)
        seen.append(trial.condition.key)
        saved = json.loads(path.read_text()) if path.exists() else {"trials": []}
        assert len(saved["trials"]) == trial.number  # everything before this trial is on disk
        try:
            trial = loop.send(Response(trial.target, 0.5, frame_times=(0.0, 0.125, 0.25)))
        except StopIteration as end:
            done = end.value
            break
    assert len(done.trials) == 12 and sorted(set(seen)) == sorted(jnd)
    assert seen[:6] != sorted(seen[:6]) or seen[6:] != sorted(seen[6:])  # interleaved, not blocked
    assert [t["psnr"] for t in done.trials] == pytest.approx(shown, abs=1e-4)  # the fit uses what was shown
    t = json.loads(path.read_text())["trials"][0]
    assert t["correct"] is True and t["measured_hz"] == pytest.approx(4.0) and t["beta"] > 0


def test_a_wrong_answer_type_is_refused():
    loop = run(session())
    next(loop)
    with pytest.raises(ResJNDError, match="choice 0 or 1"):
        loop.send(Response(3))


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from napari_resjnd.core.visibility.psychophysics.procedure import Response, run
    from napari_resjnd.core.visibility.psychophysics.session import Condition, ObserverSession
    conditions = [Condition("a", "m1"), Condition("b", "m2")]
    s = ObserverSession("obs1", "flicker", conditions, trials_per_condition=10, seed=9)
    loop = run(s, sys.argv[1])
    trial = next(loop)
    for _ in range(7):
        trial = loop.send(Response(trial.target if trial.psnr < 33 else 1 - trial.target))
    os.kill(os.getpid(), signal.SIGKILL)  # a crash in the middle of the eighth trial
    """
)


def noiseless(trial):
    return trial.target if trial.psnr < 33 else 1 - trial.target


@pytest.mark.slow
def test_a_session_resumes_after_a_kill_exactly_where_it_stopped(tmp_path):
    path = tmp_path / "obs1.json"
    proc = subprocess.run([sys.executable, "-c", KILLER, str(path)], env=os.environ.copy(), timeout=120)
    assert proc.returncode == -signal.SIGKILL
    resumed = ObserverSession.load(path)
    assert len(resumed.trials) == 7 and resumed.observer == "obs1"
    assert not list(tmp_path.glob("*.tmp"))  # nothing half-written
    answer_with(run(resumed, path), noiseless)
    conditions = [Condition("a", "m1"), Condition("b", "m2")]
    unbroken = ObserverSession("obs1", "flicker", conditions, trials_per_condition=10, seed=9)
    answer_with(run(unbroken), noiseless)
    strip = lambda trials: [{k: v for k, v in t.items() if k != "answered_at"} for t in trials]
    assert strip(ObserverSession.load(path).trials) == strip(unbroken.trials)


def test_a_damaged_or_foreign_session_file_is_one_line(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "other.json").write_text(json.dumps({"observer": "x"}))
    good = session()
    answer_with(run(good), noiseless)
    d = json.loads(json.dumps(dataclasses.asdict(good)))
    d["trials"][3].pop("psnr")
    (tmp_path / "no-psnr.json").write_text(json.dumps(d))
    d["trials"][3]["psnr"], d["trials"][5]["condition"] = 30.0, "elsewhere | m"
    (tmp_path / "stranger.json").write_text(json.dumps(d))
    for name, why in [
        ("bad.json", "not JSON"),
        ("other.json", "no format"),
        ("no-psnr.json", "trial 3 has no finite PSNR"),
        ("stranger.json", "unknown conditions"),
    ]:
        with pytest.raises(ResJNDError, match=f"{name}.*{why}"):
            ObserverSession.load(tmp_path / name)


def test_cli_simulate_prints_one_entry_per_run(capsys):
    args = ["visibility", "simulate", "--threshold-psnr", "34", "--trials", "30", "--runs", "3", "--seed", "2"]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["true_threshold_psnr"] == 34 and len(out["runs"]) == 3
    assert all(r["ci_low"] <= r["estimate"] <= r["ci_high"] for r in out["runs"])


@pytest.mark.slow
def test_cli_report_aggregates_observers(tmp_path, capsys, monkeypatch):
    Image.fromarray(CAT).save(tmp_path / "cat.png")
    Image.fromarray(skdata.astronaut()[:64, 200:264]).save(tmp_path / "astro.png")
    conditions = [Condition(i, m) for i in ("cat", "astro") for m in ("yang2005", "uniform")]
    truth = {"yang2005": 31.0, "uniform": 36.0}  # the model's noise hides 5 dB more
    paths = []
    for k, observer in enumerate(("ann", "bob")):
        s = ObserverSession(observer, "2afc-side-by-side", list(conditions), trials_per_condition=40, seed=k)
        sims = {c.key: SimulatedObserver(truth[c.model], seed=10 * k + i) for i, c in enumerate(conditions)}
        answer_with(run(s), lambda t, sims=sims: t.target if sims[t.condition.key].answer(t.psnr) else 1 - t.target)
        paths.append(s.save(tmp_path / f"{observer}.json"))
    out = tmp_path / "report"
    args = ["visibility", "report", *map(str, paths), "--out", str(out), "--images", str(tmp_path)]
    from napari_resjnd.core.visibility.psychophysics import stimuli

    seeds_seen: set[int] = set()
    real_stimuli = stimuli.ConditionStimuli

    def recording(*a, seed=0, **k):
        seeds_seen.add(seed)
        return real_stimuli(*a, seed=seed, **k)

    monkeypatch.setattr(stimuli, "ConditionStimuli", recording)
    assert main([*args, "--jnd", "yang2005,chou1995"]) == 0
    assert seeds_seen == {0, 1}  # each session's noise, not the first session's for all
    report = json.loads((out / "visibility_report.json").read_text())
    table = {r["model"]: r for r in report["models"]}
    assert table["yang2005"]["n"] == 4 and abs(table["yang2005"]["mean_threshold_psnr"] - 31) < 2
    assert table["uniform"]["mean_threshold_psnr"] - table["yang2005"]["mean_threshold_psnr"] > 3
    pair = report["paired"][0]
    # observers averaged per image first: the images are the units of the paired test
    assert (pair["a"], pair["b"], pair["n_images"]) == ("yang2005", "uniform", 2) and pair["mean_diff_db"] < -3
    assert pair["holm_p"] >= pair["wilcoxon_p"]
    assert [r["model"] for r in report["rank_agreement"]] == ["yang2005", "chou1995"]
    assert all(r["ranked_by"] == "detection_ratio" for r in report["rank_agreement"])
    assert (out / "thresholds.png").stat().st_size > 1000
    assert "| yang2005 |" in capsys.readouterr().out
    # two files of one name in --images: which one is meant? one line, nothing new written
    Image.fromarray(CAT).save(tmp_path / "cat.tif")
    assert main([*args, "--jnd", "yang2005", "--out", str(tmp_path / "r2")]) == 2
    assert "cat.png and cat.tif share the name 'cat'" in capsys.readouterr().err
    assert not (tmp_path / "r2" / "visibility_report.json").exists()


def test_beta_at_threshold_follows_the_real_noise():
    """The calibration the report gives (beta at threshold) is the beta the stimulus
    code finds for that PSNR."""
    from napari_resjnd.core.visibility.psychophysics.report import beta_at

    grey_room = np.clip(CAT, 30, 225).astype(np.uint8)  # little clipping at 30 dB
    stim = ConditionStimuli(grey_room, classic_jnd("yang2005", grey_room), seed=1)
    at30, at36 = stim.at(30.0), stim.at(36.0)
    predicted = beta_at(36.0, [{"psnr": at30.psnr, "beta": at30.beta}])
    assert predicted == pytest.approx(at36.beta, rel=0.05)
    assert np.isnan(beta_at(36.0, [{"psnr": 30.0, "beta": None}]))


def test_cli_report_and_simulate_refuse_bad_input_in_one_line(tmp_path, capsys):
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["visibility", "report", str(tmp_path / "bad.json"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and len(err.strip().splitlines()) == 1
    assert main(["visibility", "report", str(tmp_path / "missing.json"), "--out", str(tmp_path / "r")]) == 2
    assert "missing.json" in capsys.readouterr().err
    empty = ObserverSession("obs", "flicker", [Condition("a", "m")]).save(tmp_path / "empty.json")
    assert main(["visibility", "report", str(empty), "--out", str(tmp_path / "r")]) == 2
    assert "no answers" in capsys.readouterr().err and not (tmp_path / "r" / "visibility_report.json").exists()
    assert main(["visibility", "simulate", "--threshold-psnr", "-3"]) == 2
    assert main(["visibility", "simulate", "--threshold-psnr", "30", "--lapse", "1.5"]) == 2
