"""The trained-model cache: miss, hit, corrupt and mismatched entries, quick vs full keys."""

from __future__ import annotations

import json
import math
import warnings

import pytest
import torch

import genvae
from genvae import cache, checkpoint
from genvae.cache import CacheWarning, cache_key, load_or_train
from genvae.models import ModelConfig
from genvae.train import TrainConfig
from genvae.utils import file_digest

MC = ModelConfig("ae", latent_dim=2, hidden=(16,))
TC = TrainConfig(epochs=1, train_size=256, batch_size=64)


def _train(**kw):
    return load_or_train(MC, TC, name="tiny", progress=False, **kw)


def _count_trainings(monkeypatch):
    calls = []
    real = cache.train_model

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(cache, "train_model", counting)
    return calls


def test_miss_trains_and_writes_safetensors_with_sidecar(monkeypatch):
    calls = _count_trainings(monkeypatch)
    t = _train()
    assert not t.from_cache and calls == [1]
    assert (t.path / "model.safetensors").is_file()
    meta = json.loads((t.path / "meta.json").read_text())
    assert ModelConfig.from_dict(meta["model_config"]) == MC and TrainConfig.from_dict(meta["train_config"]) == TC
    assert meta["genvae_version"] == genvae.__version__
    assert meta["train_seconds"] > 0 and "recon" in meta["metrics"]
    assert len(meta["history"]) == 1
    assert not list(t.path.glob("*.tmp"))


def test_hit_loads_equal_weights_without_training(monkeypatch):
    first = _train()
    calls = _count_trainings(monkeypatch)
    second = _train()
    assert second.from_cache and calls == []
    assert second.metrics == first.metrics and second.history.epochs == first.history.epochs
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)


def _expect_retrain(monkeypatch, match):
    calls = _count_trainings(monkeypatch)
    with pytest.warns(CacheWarning, match=match):
        t = _train()
    assert not t.from_cache and calls == [1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _train().from_cache  # the retrained entry is healthy again


def test_corrupt_weights_are_reported_and_retrained(monkeypatch):
    path = _train().path / "model.safetensors"
    blob = bytearray(path.read_bytes())
    blob[-5] ^= 0xFF
    path.write_bytes(bytes(blob))
    _expect_retrain(monkeypatch, "checksum")


def test_truncated_weights_with_matching_checksum_are_reported(monkeypatch):
    t = _train()
    path = t.path / "model.safetensors"
    path.write_bytes(path.read_bytes()[:50])
    meta = json.loads((t.path / "meta.json").read_text())
    meta["weights_sha256"] = file_digest(path)  # a consistent but broken entry
    (t.path / "meta.json").write_text(json.dumps(meta))
    _expect_retrain(monkeypatch, "cannot be loaded")


def test_unreadable_sidecar_is_reported(monkeypatch):
    (_train().path / "meta.json").write_text("{not json")
    _expect_retrain(monkeypatch, "not valid JSON")


def test_missing_sidecar_is_reported(monkeypatch):
    (_train().path / "meta.json").unlink()
    _expect_retrain(monkeypatch, "missing")


def test_mismatched_entry_is_reported(monkeypatch):
    t = _train()
    meta = json.loads((t.path / "meta.json").read_text())
    meta["train_config"]["epochs"] = 99
    (t.path / "meta.json").write_text(json.dumps(meta))
    _expect_retrain(monkeypatch, "different configuration")


def test_quick_and_full_never_share_an_entry(monkeypatch):
    full = _train(quick=False)
    quick = _train(quick=True)
    assert full.path != quick.path and full.path.exists() and quick.path.exists()
    assert cache_key(MC, TC, quick=True) != cache_key(MC, TC, quick=False)
    monkeypatch.setenv("GENVAE_QUICK", "1")
    assert _train().path == quick.path and _train().from_cache


@pytest.mark.parametrize("change", [
    dict(beta=2.0), dict(seed=1), dict(dataset="fashion-mnist"), dict(epochs=2), dict(recon="bce"),
])
def test_every_training_setting_changes_the_key(change):
    import dataclasses

    assert cache_key(MC, dataclasses.replace(TC, **change), False) != cache_key(MC, TC, False)
    assert cache_key(dataclasses.replace(MC, latent_dim=3), TC, False) != cache_key(MC, TC, False)


def test_failed_save_leaves_no_entry_behind(monkeypatch):
    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        _train()
    entries = list(genvae.settings.cache_root().glob("tiny-*"))
    assert all(not (e / "meta.json").exists() for e in entries)
    assert all(not list(e.glob("*.tmp")) for e in entries)
    monkeypatch.undo()


def test_retrain_flag_overwrites(monkeypatch):
    _train()
    calls = _count_trainings(monkeypatch)
    assert not _train(retrain=True).from_cache and calls == [1]


def test_cached_eval_computes_once_and_recomputes_when_the_inputs_change(monkeypatch):
    t = _train()
    calls = []

    def mean_code(model, x, scale=1.0):
        calls.append(1)
        with torch.no_grad():
            return float(model.embed(x).mean()) * scale

    x = torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    first = cache.cached_eval(t, mean_code, x)
    assert cache.cached_eval(t, mean_code, x) == first and calls == [1]
    assert (t.path / "evals.json").is_file()
    cache.cached_eval(t, mean_code, x, scale=2.0)
    cache.cached_eval(t, mean_code, x / 2)
    assert len(calls) == 3
    # Retraining replaces the weights and forgets their evaluations.
    load_or_train(MC, TC, name="tiny", progress=False, retrain=True)
    assert not (t.path / "evals.json").exists()


def test_cached_eval_does_not_keep_a_non_finite_number():
    t = _train()
    with pytest.warns(CacheWarning, match="not finite"):
        assert math.isnan(cache.cached_eval(t, lambda model: float("nan")))
    assert not (t.path / "evals.json").exists()
