"""The training loop: it learns, it is deterministic, it stops clearly on NaN."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from genvae.data import ImageData
from genvae.models import ModelConfig, build_model
from genvae.train import (QUICK_EPOCHS, QUICK_TRAIN_SIZE, TrainConfig, TrainingDiverged, Watch, evaluate, fit,
                          forward)

TINY_AE = ModelConfig("ae", latent_dim=4, hidden=(64,))


def _fit(cfg=TINY_AE, data=None, **train):
    torch.manual_seed(0)
    model = build_model(cfg)
    tc = TrainConfig(**{"epochs": 3, "batch_size": 100, **train})
    return model, fit(model, data, tc, progress=False)


def test_fit_lowers_the_loss_and_records_history(small_mnist):
    _, history = _fit(data=small_mnist)
    assert [e["epoch"] for e in history.epochs] == [1, 2, 3]
    train, test = history.series("train"), history.series("test", "recon")
    assert train[-1] < 0.8 * train[0]
    assert test[-1] < test[0]
    assert history.seconds > 0


def test_fit_is_deterministic(small_mnist):
    m1, h1 = _fit(ModelConfig("vae", latent_dim=2, hidden=(32,)), small_mnist, epochs=1)
    m2, h2 = _fit(ModelConfig("vae", latent_dim=2, hidden=(32,)), small_mnist, epochs=1)
    assert h1.series("train") == h2.series("train") and h1.series("test") == h2.series("test")
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        assert torch.equal(p1, p2)


def test_nan_loss_stops_with_epoch_and_step(small_mnist):
    data = dataclasses.replace(small_mnist, x_train=small_mnist.x_train[:300], y_train=small_mnist.y_train[:300])
    torch.manual_seed(0)
    model = build_model(TINY_AE)
    forwards = []

    def poison(module, inputs, output):  # the decoder's output turns NaN at the second training step
        forwards.append(1)
        return output * float("nan") if len(forwards) == 2 else output

    model.decoder.register_forward_hook(poison)
    with pytest.raises(TrainingDiverged, match=r"^loss became nan at epoch 1, step 2;"):
        fit(model, data, TrainConfig(epochs=2, batch_size=100), progress=False)
    # NaN in the data itself never reaches a step: the data are refused as they enter fit.
    x = data.x_train.clone()
    x[150] = float("nan")
    with pytest.raises(ValueError, match=r"^train images: expected values in \[0, 1\], the images contain NaN$"):
        _fit(data=dataclasses.replace(data, x_train=x), epochs=2)


def test_huge_learning_rate_diverges_clearly(small_mnist):
    with pytest.raises(TrainingDiverged, match="epoch"):
        _fit(ModelConfig("vae", latent_dim=2, hidden=(64,)), small_mnist, lr=1e6, epochs=3)


def test_evaluate_reports_accuracy_for_models_with_logits(small_mnist):
    torch.manual_seed(0)
    clf = build_model(ModelConfig("classifier", channels=(4, 8), hidden=(16,)))
    res = evaluate(clf, small_mnist.x_test, small_mnist.y_test, TrainConfig())
    assert set(res) == {"total", "ce", "acc"} and 0 <= res["acc"] <= 1
    # Evaluation is seeded and does not touch the global RNG.
    vae = build_model(ModelConfig("vae", latent_dim=2, hidden=(8,)))
    state = torch.get_rng_state()
    r1 = evaluate(vae, small_mnist.x_test, small_mnist.y_test, TrainConfig())
    assert torch.equal(state, torch.get_rng_state())
    assert r1 == evaluate(vae, small_mnist.x_test, small_mnist.y_test, TrainConfig())


def test_binarized_training_runs(small_mnist):
    _, h = _fit(ModelConfig("vae", latent_dim=2, hidden=(32,)), small_mnist, epochs=1, recon="bce", binarize=True)
    assert h.epochs[0]["test"]["kl"] > 0


def test_watch_names_the_first_bad_step_although_it_reads_late():
    watch = Watch(steps=20, members=1, device=torch.device("cpu"), every=50)
    watch.start(3)
    for i in range(19):  # no reading before the last step of the epoch
        watch.update(i, torch.tensor([float("nan") if i >= 6 else 1.0]))
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 3, step 7;"):
        watch.update(19, torch.tensor([1.0]))


def test_watch_names_the_stack_member_and_reads_every_n_steps():
    reads = []
    watch = Watch(steps=10, members=3, device=torch.device("cpu"), every=4)
    real = watch.read
    watch.read = lambda upto: (reads.append(upto), real(upto))
    for i in range(8):
        watch.update(i, torch.ones(3))
    assert reads == [4, 8]
    watch.update(8, torch.tensor([1.0, 1.0, float("inf")]))
    with pytest.raises(TrainingDiverged, match=r"step 9 \(stack member 2\)"):
        watch.update(9, torch.ones(3))


def test_bf16_forward_comes_back_in_fp32_and_close_to_it():
    torch.manual_seed(0)
    model = build_model(ModelConfig("vae", latent_dim=2, hidden=(64,))).eval()
    x = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        torch.manual_seed(1)
        full = forward(model, x)
        torch.manual_seed(1)
        half = forward(model, x, "bf16")
    assert half.x_hat.dtype == half.mu.dtype == torch.float32
    torch.testing.assert_close(half.x_hat, full.x_hat, atol=3e-2, rtol=0)
    assert not torch.equal(half.x_hat, full.x_hat)  # it did run in reduced precision


def test_onecycle_and_bf16_recipe_learns(small_mnist):
    _, history = _fit(data=small_mnist, schedule="onecycle", lr=3e-3, precision="bf16")
    assert history.series("train")[-1] < 0.8 * history.series("train")[0]


@pytest.mark.parametrize("bad", [
    dict(epochs=0), dict(batch_size=0), dict(lr=0), dict(beta=-1), dict(recon="l1"), dict(dataset="cifar"),
    dict(schedule="cosine"), dict(precision="fp16"),
])
def test_bad_train_config(bad):
    with pytest.raises(ValueError):
        TrainConfig(**bad)


def test_quick_version_caps_epochs_and_data():
    q = TrainConfig(epochs=20, beta=4.0).quick()
    assert q.epochs == QUICK_EPOCHS and q.train_size == QUICK_TRAIN_SIZE and q.beta == 4.0
    assert TrainConfig(epochs=1, train_size=100).quick() == TrainConfig(epochs=1, train_size=100)


def test_a_test_size_evaluates_a_seeded_subset_of_the_test_set(small_mnist):
    """test_size: the epoch's test loss is the loss on one seeded subset of that many test images."""
    model, history = _fit(ModelConfig("ae", latent_dim=2, hidden=(32,)), small_mnist, epochs=1, test_size=100)
    keep = torch.randperm(len(small_mnist.x_test), generator=torch.Generator().manual_seed(0))[:100].sort().values
    on_subset = evaluate(model, small_mnist.x_test[keep], small_mnist.y_test[keep], TrainConfig())
    assert history.epochs[-1]["test"]["total"] == pytest.approx(on_subset["total"], rel=1e-6)
    whole = evaluate(model, small_mnist.x_test, small_mnist.y_test, TrainConfig())
    assert whole["total"] != pytest.approx(on_subset["total"], rel=1e-6)
    with pytest.raises(ValueError, match="test_size"):
        TrainConfig(test_size=0)
