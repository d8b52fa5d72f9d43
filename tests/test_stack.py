"""Training a grid as one stacked model (torch.func): same maths as alone, own cache entries."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from genvae.cache import Request, load_or_train, load_or_train_many
from genvae.models import ModelConfig, build_model
from genvae.stack import ModelStack, fit_stack, stack_key
from genvae.train import TrainConfig, fit, loss_fn, make_optimizer, train_step

AE = ModelConfig("ae", latent_dim=3, hidden=(32,))
VAE = ModelConfig("vae", latent_dim=2, hidden=(64,))


def _members(cfg, seeds):
    models = []
    for s in seeds:
        torch.manual_seed(s)
        models.append(build_model(cfg))
    return models


def test_unstacking_gives_back_every_member_unchanged():
    models = _members(AE, [0, 1, 2])
    for a, b in zip(models, ModelStack(models).unstack()):
        for (n, p), q in zip(a.named_parameters(), b.parameters()):
            assert torch.equal(p, q), n


def test_stacked_losses_and_one_adam_step_equal_each_member_alone(small_mnist):
    """The autoencoder has no noise, so a stack must compute each member's own loss and update."""
    cfgs = [TrainConfig(seed=s, lr=1e-2) for s in (0, 1)]
    x, y = small_mnist.x_train, small_mnist.y_train
    idx = torch.arange(64)

    stack = ModelStack(_members(AE, [0, 1]))
    stack_loss = stack.loss_fn(cfgs, shared_batch=True)
    parts = train_step(stack_loss, make_optimizer(stack.parameters(), cfgs[0], torch.device("cpu")), x, y, idx, cfgs[0])
    for i, (model, cfg) in enumerate(zip(_members(AE, [0, 1]), cfgs)):
        alone = train_step(loss_fn(model, cfg), make_optimizer(model.parameters(), cfg, torch.device("cpu")),
                           x, y, idx, cfg)
        torch.testing.assert_close(parts["total"][i], alone["total"], rtol=1e-5, atol=1e-5)
        for p, q in zip(model.parameters(), stack.unstack()[i].parameters()):
            torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)  # an Adam step moves each weight by ~lr = 1e-2


def test_members_with_other_seeds_see_their_own_batches(small_mnist):
    """With per-member seeds, each member gets the batch order it would get alone (AE: no noise)."""
    tc = TrainConfig(epochs=1, batch_size=100, schedule="onecycle", lr=3e-3)
    data = replace(small_mnist, x_train=small_mnist.x_train[:300], y_train=small_mnist.y_train[:300])
    stacked = fit_stack(AE, [replace(tc, seed=s) for s in (3, 4)], data, progress=False)
    for (model, history), seed in zip(stacked, (3, 4)):
        torch.manual_seed(seed)
        alone = build_model(AE)
        h = fit(alone, data, replace(tc, seed=seed), progress=False)
        assert history.epochs[0]["train"]["total"] == pytest.approx(h.epochs[0]["train"]["total"], rel=1e-4)
        for p, q in zip(model.parameters(), alone.parameters()):
            torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-4)


def test_stacked_training_is_deterministic(small_mnist):
    cfgs = [TrainConfig(epochs=1, batch_size=100, beta=b) for b in (0.5, 2.0)]
    runs = [fit_stack(VAE, cfgs, small_mnist, progress=False) for _ in range(2)]
    for (m1, h1), (m2, h2) in zip(*runs):
        assert h1.epochs[0]["train"] == h2.epochs[0]["train"]
        for p, q in zip(m1.parameters(), m2.parameters()):
            assert torch.equal(p, q)


@pytest.mark.slow
def test_a_stacked_vae_reaches_the_metrics_of_one_trained_alone(mnist):
    """Not bit-equal (batched noise, batched matmuls), but as close as two seeds of the same recipe.

    Tolerance: the stacked member's test loss lies within 1.5% of the solo run's,
    and closer to it than twice the gap between two solo runs with other seeds.
    """
    from genvae import data as gdata

    data = gdata.load("mnist", train_size=10_000)
    tc = TrainConfig(epochs=3, schedule="onecycle", lr=3e-3)
    stacked = {b: h.epochs[-1]["test"]["total"]
               for b, (_, h) in zip((1.0, 4.0), fit_stack(VAE, [replace(tc, beta=b) for b in (1.0, 4.0)], data,
                                                          progress=False))}
    solo, other_seed = {}, {}
    for b in (1.0, 4.0):
        for seed, out in ((0, solo), (1, other_seed)):
            torch.manual_seed(seed)
            model = build_model(VAE)
            out[b] = fit(model, data, replace(tc, beta=b, seed=seed), progress=False).epochs[-1]["test"]["total"]
    for b in (1.0, 4.0):
        gap = abs(stacked[b] - solo[b])
        assert gap <= 0.015 * solo[b], (b, stacked[b], solo[b])
        assert gap <= 2 * abs(other_seed[b] - solo[b]) + 0.005 * solo[b], (b, gap, other_seed[b], solo[b])


def test_only_beta_gamma_and_seed_may_differ():
    assert stack_key(VAE, TrainConfig(beta=1)) == stack_key(VAE, TrainConfig(beta=4, gamma=2, seed=3))
    assert stack_key(VAE, TrainConfig()) != stack_key(VAE, TrainConfig(epochs=3))
    with pytest.raises(ValueError, match="may differ only"):
        fit_stack(VAE, [TrainConfig(epochs=1), TrainConfig(epochs=2)], progress=False)
    with pytest.raises(ValueError, match="one configuration"):
        ModelStack([build_model(VAE), build_model(replace(VAE, latent_dim=3))])


def test_stacked_members_are_ordinary_cache_entries(monkeypatch):
    tc = TrainConfig(epochs=1, train_size=256, batch_size=64)
    requests = [Request(f"vae_b{b:g}", VAE, replace(tc, beta=b)) for b in (0.5, 1.0, 2.0)]
    trained = load_or_train_many(requests, progress=False, stack=True)
    assert [t.name for t in trained] == ["vae_b0.5", "vae_b1", "vae_b2"]
    for t in trained:
        meta = json.loads((t.path / "meta.json").read_text())
        assert meta["stack"] == {"size": 3, "members": ["vae_b0.5", "vae_b1", "vae_b2"]}
        assert TrainConfig.from_dict(meta["train_config"]) == t.train_config
    # A chapter asking for one member alone gets the stacked member from the cache.
    again = load_or_train(VAE, replace(tc, beta=2.0), name="vae_b2", progress=False)
    assert again.from_cache
    for p, q in zip(again.model.parameters(), trained[2].model.parameters()):
        assert torch.equal(p, q)
