"""The trained-model cache: miss, hit, corrupt and mismatched entries, quick vs full keys."""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import math
import os
import warnings

import pytest
import torch

import genvae
from genvae import cache, checkpoint
from genvae.cache import CacheWarning, cache_key, load_or_train
from genvae.models import ModelConfig, build_model
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
    _expect_retrain(monkeypatch, "model.safetensors is truncated")


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
    _expect_retrain(monkeypatch, "different configuration than its name says: epochs is 99 in meta.json, 1 asked for")


def test_quick_and_full_never_share_an_entry(monkeypatch):
    full = _train(quick=False)
    quick = _train(quick=True)
    assert full.path != quick.path and full.path.exists() and quick.path.exists()
    assert cache_key(MC, TC, quick=True) != cache_key(MC, TC, quick=False)
    monkeypatch.setenv("GENVAE_QUICK", "1")
    assert _train().path == quick.path and _train().from_cache


def test_resolve_gives_the_mode_s_config_key_and_folder(tmp_path):
    tc = TrainConfig(epochs=5)  # quick mode trains it for fewer epochs on a subset
    r = cache.Request("tiny model", MC, tc)
    full, quick = cache.resolve(r, False, tmp_path), cache.resolve(r, True, tmp_path)
    assert full.request == quick.request == r
    assert full.train_config == tc and quick.train_config == tc.quick() != tc
    assert full.key == cache_key(MC, tc, False) and quick.key == cache_key(MC, tc.quick(), True) != full.key
    assert full.path == tmp_path / f"tiny-model-{full.key}" == cache.entry_path("tiny model", full.key, tmp_path)
    assert full.meta_path == full.path / checkpoint.META
    assert not full.is_complete
    checkpoint.save(build_model(MC), full.path)  # the sidecar is written last: a finished save
    assert full.is_complete and not quick.is_complete
    assert cache.resolve(r, False).path.parent == genvae.settings.cache_root()


def test_load_or_train_keeps_a_model_where_resolve_says():
    t = _train()
    slot = cache.resolve(cache.Request("tiny", MC, TC), False)
    assert t.path == slot.path and slot.is_complete and t.train_config == slot.train_config


def test_load_entry_checks_the_entry_against_its_key_and_configs():
    t = _train()
    slot = cache.resolve(cache.Request("tiny", MC, TC), False)
    model, meta = cache.load_entry(slot.path, slot.key, MC, slot.train_config)
    assert meta["cache_key"] == slot.key and not model.training
    for name, tensor in t.model.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor.cpu()), name
    with pytest.raises(checkpoint.CheckpointError, match="records the key '[0-9a-f]{16}', the folder's name says '0+'"):
        cache.load_entry(slot.path, "0" * 16, MC, TC)
    with pytest.raises(checkpoint.CheckpointError, match="epochs is 1 in meta.json, 2 asked for"):
        cache.load_entry(slot.path, slot.key, MC, dataclasses.replace(TC, epochs=2))


@pytest.mark.parametrize("change", [
    dict(beta=2.0), dict(seed=1), dict(dataset="fashion-mnist"), dict(epochs=2), dict(recon="bce"),
])
def test_every_training_setting_changes_the_key(change):
    import dataclasses

    assert cache_key(MC, dataclasses.replace(TC, **change), False) != cache_key(MC, TC, False)
    assert cache_key(dataclasses.replace(MC, latent_dim=3), TC, False) != cache_key(MC, TC, False)


def _no_entry_left():
    assert not list(genvae.settings.cache_root().glob("tiny-*"))  # not even an empty folder


@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC])
@pytest.mark.parametrize("stage", ["weights", "sidecar"])
def test_unwritable_cache_warns_naming_the_folder_and_still_returns_the_model(monkeypatch, code, stage):
    # Tests run as root, where chmod stops nothing: the write itself fails, as on a read-only or full disk.
    def broken(*a, **k):
        raise OSError(code, os.strerror(code), "somewhere")

    root = genvae.settings.cache_root()
    with monkeypatch.context() as m:  # not monkeypatch.undo(): that would also undo the isolated cache
        m.setattr(checkpoint, "save_file" if stage == "weights" else "atomic_write_text", broken)
        with pytest.warns(CacheWarning, match="cannot write the model cache folder") as record:
            t = _train()
    message = str(record[0].message)
    assert str(root) in message and os.strerror(code) in message and "tiny" in message
    assert not t.from_cache and not t.saved
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert t.model(x).x_hat.shape == (3, 1, 28, 28)  # a usable model comes back
    _no_entry_left()
    assert not _train().from_cache  # nothing was cached, so it trains again, and now keeps it
    assert _train().from_cache


def test_a_cache_root_that_is_a_file_warns_and_returns_every_model(monkeypatch, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache should be")
    monkeypatch.setenv("GENVAE_CACHE", str(blocker))
    requests = [cache.Request("tiny", MC, TC), cache.Request("tiny2", dataclasses.replace(MC, latent_dim=3), TC)]
    with pytest.warns(CacheWarning) as record:
        trained = cache.load_or_train_many(requests, progress=False)
    messages = [str(w.message) for w in record if "cannot write" in str(w.message)]
    assert len(messages) == 2 and all(str(blocker) in m for m in messages)
    assert [t.name for t in trained] == ["tiny", "tiny2"] and not any(t.saved for t in trained)
    assert trained[1].model.config.latent_dim == 3
    assert blocker.read_text() == "a file where the cache should be"
    # Evaluations of a model that could not be kept are computed, returned and not kept anywhere.
    assert cache.cached_eval(trained[0], lambda model: 1.5) == 1.5


def test_cached_eval_survives_an_unwritable_folder(monkeypatch):
    t = _train()
    calls = []

    def one(model):
        calls.append(1)
        return 1.0

    def broken(*a, **k):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(t.path / "evals.json"))

    monkeypatch.setattr(checkpoint, "atomic_write_text", broken)
    with pytest.warns(CacheWarning, match="cannot write .*evals.json.*Read-only file system"):
        assert cache.cached_eval(t, one) == 1.0
    with pytest.warns(CacheWarning):
        assert cache.cached_eval(t, one) == 1.0
    assert calls == [1, 1] and not (t.path / "evals.json").exists()


def _diverging(monkeypatch):
    """Training that ends with a NaN test metric, as a model that blew up in its last epoch would."""
    real = cache.train_model
    calls = []

    def nan_metrics(*a, **k):
        calls.append(1)
        model, history = real(*a, **k)
        history.epochs[-1]["test"]["recon"] = float("nan")
        return model, history

    monkeypatch.setattr(cache, "train_model", nan_metrics)
    return calls


def test_non_finite_metrics_are_never_cached(monkeypatch):
    calls = _diverging(monkeypatch)
    with pytest.warns(CacheWarning, match=r"tiny: the trained model's test metrics are not finite \(.*recon=nan"):
        t = _train()
    assert not t.saved and math.isnan(t.metrics["recon"])
    assert not t.path.exists()
    with pytest.warns(CacheWarning, match="not finite"):
        _train()
    assert calls == [1, 1]


def test_an_entry_recording_non_finite_metrics_is_refused(monkeypatch):
    t = _train()
    meta = json.loads((t.path / "meta.json").read_text())
    meta["metrics"]["recon"] = float("inf")
    (t.path / "meta.json").write_text(json.dumps(meta))
    _expect_retrain(monkeypatch, "records test metrics that are not finite")


@pytest.mark.parametrize("field", ["cache_key", "train_config", "history", "metrics", "train_seconds",
                                   "model_config", "weights_sha256"])
def test_a_sidecar_without_a_field_the_cache_needs_is_reported(monkeypatch, field):
    t = _train()
    meta = json.loads((t.path / "meta.json").read_text())
    del meta[field]
    (t.path / "meta.json").write_text(json.dumps(meta))
    required = "model_config, weights_sha256, cache_key, train_config, history, metrics, train_seconds"
    _expect_retrain(monkeypatch, f"meta.json lacks the field {field} \\(required: {required}\\)")


def test_a_request_for_another_model_config_is_reported(monkeypatch):
    t = _train()
    meta = json.loads((t.path / "meta.json").read_text())
    meta["model_config"]["latent_dim"] = 3  # the sidecar now describes a model the request did not ask for
    (t.path / "meta.json").write_text(json.dumps(meta))
    _expect_retrain(monkeypatch, "describes another model than the one asked for: latent_dim is 3 in meta.json, "
                                 "2 asked for")


def test_a_pickle_in_place_of_the_weights_is_refused_and_never_unpickled(monkeypatch, tmp_path):
    t = _train()
    marker = tmp_path / "unpickled"
    weights = t.path / "model.safetensors"
    torch.save({"w": _SideEffect(marker)}, weights)
    meta = json.loads((t.path / "meta.json").read_text())
    meta["weights_sha256"] = file_digest(weights)  # consistent: only the format can give it away
    (t.path / "meta.json").write_text(json.dumps(meta))
    _expect_retrain(monkeypatch, "is not a safetensors file: it is a zip archive, which is what torch.save writes")
    assert not marker.exists()


class _SideEffect:
    """Unpickling this creates a folder: the visible side effect that must never happen."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


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
    # Each computation, and only a computation, leaves its cost in the cache's log.
    from genvae.storage.evals import eval_seconds

    logged = eval_seconds(t.path.parent)
    assert [(r["model"], r["fn"].rsplit(".", 1)[-1]) for r in logged] == [("tiny", "mean_code")] * 3
    assert all(r["seconds"] >= 0 for r in logged)
    # Retraining replaces the weights and forgets their evaluations.
    load_or_train(MC, TC, name="tiny", progress=False, retrain=True)
    assert not (t.path / "evals.json").exists()


def test_cached_eval_keeps_what_another_process_kept_while_it_computed():
    """Two chapters evaluate one model side by side: each keeps its result, neither writes the other's away."""
    t = _train()
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))

    def other(model, x):
        return 2.0

    def slow(model, x):  # while this computes, another process keeps its own evaluation of the same model
        cache.cached_eval(t, other, x)
        return 1.0

    assert cache.cached_eval(t, slow, x) == 1.0
    kept = json.loads((t.path / "evals.json").read_text())
    assert sorted(json.loads(k)["fn"].rsplit(".", 1)[-1] for k in kept) == ["other", "slow"]


def test_cached_eval_keys_a_module_argument_on_its_weights(monkeypatch):
    """A judge network passed to an evaluation: the same weights find the kept result, other weights do not."""
    t = _train()
    calls = []

    def judged(model, judge):
        calls.append(1)
        return float(judge.weight.sum())

    judge = torch.nn.Linear(3, 2)
    first = cache.cached_eval(t, judged, judge)
    copy = torch.nn.Linear(3, 2)
    copy.load_state_dict(judge.state_dict())
    assert cache.cached_eval(t, judged, copy) == first and calls == [1]
    with torch.no_grad():
        copy.weight.add_(1.0)
    assert cache.cached_eval(t, judged, copy) != first and calls == [1, 1]


def test_cached_eval_does_not_keep_a_non_finite_number():
    t = _train()
    with pytest.warns(CacheWarning, match="not finite"):
        assert math.isnan(cache.cached_eval(t, lambda model: float("nan")))
    with pytest.warns(CacheWarning, match="not finite"):
        assert cache.cached_eval(t, lambda model: {"a": [1.0, float("-inf")]})["a"][1] == -math.inf
    assert not (t.path / "evals.json").exists()


@pytest.mark.parametrize("value, problem", [
    (torch.tensor(1.0), "not made of JSON numbers"),
    ({"label": None, "x": (1.0, 2.0)}, "come back from JSON changed"),
    ({1: 0.5}, "come back from JSON changed"),
])
def test_cached_eval_keeps_only_what_json_gives_back_unchanged(value, problem):
    t = _train()
    with pytest.warns(CacheWarning, match=problem):
        assert cache.cached_eval(t, lambda model: value) is value
    assert not (t.path / "evals.json").exists()


def test_cached_eval_ignores_a_non_finite_number_in_its_file():
    t = _train()
    calls = []

    def two(model):
        calls.append(1)
        return 2.0

    assert cache.cached_eval(t, two) == 2.0
    path = t.path / "evals.json"
    path.write_text(path.read_text().replace("2.0", "NaN"))  # an older version, or a hand edit
    assert cache.cached_eval(t, two) == 2.0 and calls == [1, 1]
    assert cache.cached_eval(t, two) == 2.0 and calls == [1, 1]  # kept again, finite


@pytest.mark.parametrize("content, problem", [
    (b"", "is empty"),
    (b"not weights at all\n", "is not a safetensors file: it is a text file"),
])
def test_an_empty_or_text_weights_file_is_reported(monkeypatch, content, problem):
    t = _train()
    weights = t.path / "model.safetensors"
    weights.write_bytes(content)
    meta = json.loads((t.path / "meta.json").read_text())
    meta["weights_sha256"] = file_digest(weights)
    (t.path / "meta.json").write_text(json.dumps(meta))
    _expect_retrain(monkeypatch, problem)


def test_weights_of_another_shape_are_reported(monkeypatch, tmp_path):
    t = _train()
    other = checkpoint.save(build_model(dataclasses.replace(MC, hidden=(12,))), tmp_path / "other")
    weights = t.path / "model.safetensors"
    weights.write_bytes((other / "model.safetensors").read_bytes())
    meta = json.loads((t.path / "meta.json").read_text())
    meta["weights_sha256"] = file_digest(weights)
    (t.path / "meta.json").write_text(json.dumps(meta))
    _expect_retrain(monkeypatch, r"does not fit the model_config in .*meta.json: shapes differ: "
                                 r"encoder.net.0.weight is \(12, 784\) in the file, \(16, 784\) in the model")


def test_cached_eval_keys_on_the_function_and_its_version_not_the_whole_package(monkeypatch):
    t = _train()
    calls = []

    def score(model):
        calls.append(1)
        return 1.0

    assert cache.cached_eval(t, score) == 1.0 and calls == [1]
    monkeypatch.setattr(cache, "_package_digest", lambda: "another package")  # an edit elsewhere in genvae
    assert cache.cached_eval(t, score) == 1.0 and calls == [1]  # kept: not computed again

    cache.eval_version(2)(score)  # what it calls has changed: its version says so
    assert cache.cached_eval(t, score) == 1.0 and calls == [1, 1]
    kept = json.loads((t.path / "evals.json").read_text())
    assert [json.loads(k)["version"] for k in kept] == [2]  # the result of version 0 is gone, not piled up
    assert cache.cached_eval(t, score) == 1.0 and calls == [1, 1]


def test_late_fields_of_either_config_enter_the_key_only_away_from_their_defaults(monkeypatch):
    mc, tc = ModelConfig("ae", latent_dim=2, hidden=(8,)), TrainConfig(epochs=1)
    before = cache.cache_key(mc, tc, False)
    monkeypatch.setitem(cache._LATE_FIELDS, ModelConfig, ("head_hidden",))  # as if head_hidden were new
    model = mc.to_dict()
    del model["head_hidden"]
    train = tc.to_dict()
    del train["adversarial"], train["adv_weight"], train["test_size"]
    blob = json.dumps({"format": cache.CACHE_FORMAT, "model": model, "train": train, "quick": False}, sort_keys=True)
    assert cache.cache_key(mc, tc, False) == hashlib.sha256(blob.encode()).hexdigest()[:16] != before
    assert cache.cache_key(dataclasses.replace(mc, head_hidden=32), tc, False) != cache.cache_key(mc, tc, False)
