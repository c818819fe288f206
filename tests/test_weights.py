"""Registry, verified cache, downloads over HTTP on loopback, and safe loading of files."""

import dataclasses
import hashlib
import os
import pickle
from pathlib import Path

import pytest
import torch
from conftest import make_tiny

from napari_resjnd.core import weights as W
from napari_resjnd.core.events import Download
from napari_resjnd.core.inference import Cancelled
from napari_resjnd.core.weights import REGISTRY, WeightsError, fetch, load_model, save_weights


@pytest.fixture
def tiny_pth(tmp_path):
    net = make_tiny()
    p = tmp_path / "tiny.pth"
    torch.save(net.state_dict(), p)
    return net, p


def register_tiny(monkeypatch, url, data: bytes):
    entry = dataclasses.replace(
        REGISTRY["resjnd-cplset"],
        name="tiny",
        url=url,
        filename="tiny.pth",
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        channels=8,
        recursions=2,
    )
    monkeypatch.setitem(REGISTRY, "tiny", entry)
    return entry


def test_registry_entry_is_pinned_and_says_academic_use():
    e = REGISTRY[W.DEFAULT_WEIGHTS]
    assert "06a857d11925452eb6540964f5951ad74d3e6bca" in e.url
    assert e.sha256 == "de68e9f682f2f756e9efd5acdf644c910ff1d042025a94d97cb3d4144451ec09"
    assert "academic" in e.licence


def test_prefilled_cache_loads_without_network(official_cache, monkeypatch):
    import pooch

    def no_network(*a, **k):
        raise AssertionError("network used although the file is cached")

    monkeypatch.setattr(pooch, "retrieve", no_network)
    monkeypatch.delenv("RESJND_OFFLINE")
    model = load_model("resjnd-cplset")
    assert model.provenance.sha256 == REGISTRY["resjnd-cplset"].sha256
    assert model.provenance.weights == "resjnd-cplset"
    assert W.is_cached("resjnd-cplset")


def test_offline_and_not_cached_says_where_to_put_the_file():
    with pytest.raises(WeightsError) as e:
        load_model("resjnd-cplset")
    msg = str(e.value)
    assert str(W.cached_path("resjnd-cplset")) in msg and REGISTRY["resjnd-cplset"].sha256 in msg


def test_unreachable_server_gives_clear_error(monkeypatch, tiny_pth):
    monkeypatch.delenv("RESJND_OFFLINE")
    register_tiny(monkeypatch, "http://127.0.0.1:9/tiny.pth", tiny_pth[1].read_bytes())
    with pytest.raises(WeightsError, match="could not download"):
        fetch("tiny")
    assert not W.cached_path("tiny").exists()


def test_download_verified_and_then_cached(monkeypatch, server, tiny_pth):
    net, p = tiny_pth
    www, base = server
    data = p.read_bytes()
    (www / "tiny.pth").write_bytes(data)
    monkeypatch.delenv("RESJND_OFFLINE")
    register_tiny(monkeypatch, f"{base}/tiny.pth", data)
    got = fetch("tiny")
    assert got == W.cached_path("tiny") and got.read_bytes() == data
    (www / "tiny.pth").unlink()  # a second fetch must not need the server
    model = load_model("tiny")
    for k, v in net.state_dict().items():
        assert torch.equal(model.state_dict()[k], v)


def test_download_reports_progress_and_cancel_leaves_nothing(monkeypatch, server, tiny_pth):
    www, base = server
    data = tiny_pth[1].read_bytes()
    (www / "tiny.pth").write_bytes(data)
    monkeypatch.delenv("RESJND_OFFLINE")
    register_tiny(monkeypatch, f"{base}/tiny.pth", data)
    with pytest.raises(Cancelled):
        fetch("tiny", should_stop=lambda: True)
    assert not W.cache_dir().exists() or list(W.cache_dir().iterdir()) == []
    seen = list(W.iter_fetch("tiny"))
    assert seen and seen[-1] == Download("tiny", len(data), len(data))
    assert [e.done for e in seen] == sorted(e.done for e in seen)
    assert W.is_cached("tiny") and list(W.iter_fetch("tiny")) == []  # cached: no download, no events


def test_partial_download_is_never_used(monkeypatch, server, tiny_pth):
    www, base = server
    data = tiny_pth[1].read_bytes()
    (www / "tiny.pth").write_bytes(data[: len(data) // 2])  # truncated on the server
    monkeypatch.delenv("RESJND_OFFLINE")
    register_tiny(monkeypatch, f"{base}/tiny.pth", data)
    with pytest.raises(WeightsError, match="sha256"):
        fetch("tiny")
    assert not W.cached_path("tiny").exists()


def test_corrupt_cached_file_is_set_aside(official_cache):
    data = bytearray(official_cache.read_bytes())
    data[1000] ^= 0xFF
    official_cache.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="not cached"):
        load_model("resjnd-cplset")
    assert not official_cache.exists()
    assert official_cache.with_name(official_cache.name + ".corrupt").exists()


def test_official_pth_loads_as_state_dict():
    from conftest import official_checkpoint

    model = load_model(official_checkpoint())
    assert model.channels == 128 and model.recursions == 25


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: p.write_bytes(b"not a checkpoint at all"), "not a readable PyTorch checkpoint"),
        (lambda p: p.write_bytes(b""), "not a readable PyTorch checkpoint"),
        (lambda p: torch.save([1, 2, 3], p), "not a state_dict"),
        (lambda p: torch.save({"input.weight": torch.zeros(8, 3, 3, 3)}, p), "missing keys"),
    ],
    ids=["garbage", "empty", "list", "missing-keys"],
)
def test_wrong_files_name_the_file_and_the_problem(tmp_path, make, match):
    p = tmp_path / "bad.pth"
    make(p)
    with pytest.raises(WeightsError, match=match) as e:
        load_model(p)
    assert str(p) in str(e.value)


def test_truncated_checkpoint(tmp_path, tiny_pth):
    p = tmp_path / "cut.pth"
    p.write_bytes(tiny_pth[1].read_bytes()[:700])
    with pytest.raises(WeightsError, match=r"cut\.pth"):
        load_model(p)


def test_wrong_shapes_and_extra_keys(tmp_path):
    sd = make_tiny().state_dict()
    sd["conv1.weight"] = torch.zeros(8, 8, 5, 5)
    sd["bias"] = torch.zeros(3)
    p = tmp_path / "shape.pth"
    torch.save(sd, p)
    with pytest.raises(WeightsError) as e:
        load_model(p)
    assert "conv1.weight has shape (8, 8, 5, 5)" in str(e.value) and "unexpected keys ['bias']" in str(e.value)


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_pickled_code_is_refused(tmp_path):
    p = tmp_path / "evil.pth"
    with open(p, "wb") as f:
        pickle.dump({"input.weight": Evil()}, f)
    with pytest.raises(WeightsError, match="not a readable PyTorch checkpoint"):
        load_model(p)


def test_safetensors_round_trip_keeps_metadata(tmp_path, tiny_pth):
    _, p = tiny_pth
    base = load_model(p)
    out = save_weights(base, tmp_path / "models" / "ft.safetensors", training={"epochs": 3})
    again = load_model(out)
    assert again.provenance.base_sha256 == W.sha256_of(p)
    assert again.provenance.training == {"epochs": 3}
    assert again.architecture == base.architecture
    for k, v in base.state_dict().items():
        assert torch.equal(again.state_dict()[k], v)
    # saving a fine-tuned model again keeps the original base hash
    out2 = save_weights(again, tmp_path / "ft2.safetensors")
    assert load_model(out2).provenance.base_sha256 == W.sha256_of(p)
    assert not list(out.parent.glob("*.tmp"))


def test_damaged_safetensors(tmp_path, tiny_pth):
    out = save_weights(load_model(tiny_pth[1]), tmp_path / "ft.safetensors")
    data = out.read_bytes()
    out.write_bytes(data[: len(data) - 100])
    with pytest.raises(WeightsError, match=r"ft\.safetensors"):
        load_model(out)


def test_local_models_lists_the_model_folder(tmp_path, tiny_pth):
    assert W.local_models() == []
    out = save_weights(load_model(tiny_pth[1]), Path(os.environ["RESJND_MODEL_DIR"]) / "a.safetensors")
    assert W.local_models() == [out]


def test_unknown_registry_name():
    with pytest.raises(WeightsError, match="unknown weights"):
        fetch("nope")
