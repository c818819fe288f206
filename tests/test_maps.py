"""The registry of JND map sources: one set of names everywhere, one compute path."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_tiny
from skimage import data as skdata

import napari_resjnd as rj
from napari_resjnd.core import maps
from napari_resjnd.core.coding.prefilter import guided_names
from napari_resjnd.core.errors import ResJNDError
from napari_resjnd.core.inference import predict
from napari_resjnd.core.research.evaluate import map_names
from napari_resjnd.core.weights import save_weights

CAT = skdata.chelsea()[:48, :64]


def test_every_source_declares_a_known_domain_and_all_leaves_controls_out():
    assert all(s.domain in maps.DOMAINS for s in maps.SOURCES.values())
    assert (maps.DEFAULT_MODEL, *maps.MODELS) == maps.ALL and "uniform" not in maps.ALL
    assert {maps.source(n).domain for n in ("zhang2005", "jia2006")} == {"dct"}
    assert {maps.source(n).domain for n in ("resjnd", "jiang2022")} == {"cpl"}
    assert maps.source("resjnd").gives_cpl and not maps.source("jiang2022").gives_cpl


def test_all_means_the_same_in_every_job():
    assert maps.parse_names("all") == list(maps.ALL)
    assert map_names("all") == list(maps.ALL)
    assert [n for n in guided_names("all") if not n.endswith("-smooth")] == list(maps.ALL)
    assert "resjnd-smooth" in guided_names("all") and guided_names("resjnd") == ["resjnd"]


def test_names_are_parsed_once_with_aliases_controls_and_extras():
    assert maps.parse_names("namm, chou,yang2005") == ["yang2005", "chou1995"]
    assert maps.parse_names("uniform") == ["uniform"]
    with pytest.raises(ResJNDError, match="unknown JND model 'uniform'"):
        maps.parse_names("uniform", controls=False)
    assert maps.parse_names("all,shuffled", extra=("shuffled",))[-1] == "shuffled"
    with pytest.raises(ResJNDError, match="unknown JND model 'magic'; known: all, resjnd"):
        maps.parse_names("chou,magic")


def test_compute_gives_the_cpl_image_only_for_cpl_models(tmp_path):
    weights = save_weights(make_tiny(), tmp_path / "tiny.safetensors")
    request = maps.MapRequest(weights=str(weights), precision="fp32")
    out = maps.compute(["resjnd", "yang2005", "uniform"], CAT, request)
    assert out["resjnd"].cpl is not None and out["resjnd"].cpl.shape == (*CAT.shape[:2], 3)
    assert out["yang2005"].cpl is None and (out["uniform"].jnd == 1).all()
    np.testing.assert_array_equal(out["yang2005"].jnd, rj.jnd_map("namm", CAT))


def test_jnd_map_passes_prediction_options_through(tmp_path):
    model = make_tiny()
    weights = save_weights(model, tmp_path / "tiny.safetensors")
    got = rj.jnd_map("resjnd", CAT, weights=str(weights), precision="fp32", device="cpu", tile=32)
    want = predict(rj.load_model(str(weights)), CAT, precision="fp32", device="cpu", tile=32).jnd
    np.testing.assert_allclose(got, want, atol=1e-5)
