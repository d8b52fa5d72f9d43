"""The GAN and VAE-GAN losses against independent formulas, the two-player step, and the two-player loop."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from genvae import cache, losses
from genvae.data import ImageData
from genvae.models import ModelConfig, build_model
from genvae.train import (
    TrainConfig, adversarial_step, fit_adversarial, player_optimizers, snapshot_steps, train_model,
)

TINY_GAN = ModelConfig("gan", "conv", latent_dim=4, channels=(4, 8))
TINY_VAEGAN = ModelConfig("vaegan", "conv", latent_dim=4, channels=(4, 8), hidden=(16,))


def test_discriminator_loss_is_binary_cross_entropy_of_the_probabilities():
    real, fake = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-3.0, 0.2])
    expected = (F.binary_cross_entropy(torch.sigmoid(real), torch.ones(3))
                + F.binary_cross_entropy(torch.sigmoid(fake), torch.zeros(2)))
    torch.testing.assert_close(losses.discriminator_loss(real, fake), expected)
    # A discriminator that says 1/2 to everything pays 2 log 2.
    assert float(losses.discriminator_loss(torch.zeros(4), torch.zeros(4))) == pytest.approx(2 * math.log(2))


def test_generator_losses_and_where_the_minimax_one_saturates():
    l = torch.tensor([-8.0, -2.0, 0.0, 3.0], requires_grad=True)
    p = torch.sigmoid(l.detach())
    torch.testing.assert_close(losses.generator_loss(l, "nonsaturating"), -torch.log(p).mean())
    torch.testing.assert_close(losses.generator_loss(l, "minimax"), torch.log1p(-p).mean())
    # d/dl of each per-image term: minimax -sigmoid(l) (vanishes where D rejects the fakes), NS -(1 - sigmoid(l)).
    g_mm, = torch.autograd.grad(losses.generator_loss(l, "minimax") * 4, l)
    g_ns, = torch.autograd.grad(losses.generator_loss(l, "nonsaturating") * 4, l)
    torch.testing.assert_close(g_mm, -p)
    torch.testing.assert_close(g_ns, -(1 - p))
    assert abs(float(g_mm[0])) < 1e-3 < abs(float(g_ns[0]))
    with pytest.raises(ValueError, match="nonsaturating"):
        losses.generator_loss(l, "wasserstein")


def test_feature_loss_is_a_unit_gaussian_negative_log_likelihood_up_to_its_constant():
    g = torch.Generator().manual_seed(0)
    f_hat, f = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    nll = -torch.distributions.Normal(f_hat, 1.0).log_prob(f).sum(1).mean()
    const = 5 / 2 * math.log(2 * math.pi)
    torch.testing.assert_close(losses.feature_reconstruction_loss(f_hat, f), nll - const)


def _params(module):
    return [p.detach().clone() for p in module.parameters()]


def _moved(before, module):
    return [not torch.equal(a, b) for a, b in zip(before, module.parameters())]


@pytest.mark.parametrize("cfg", [TINY_GAN, TINY_VAEGAN], ids=["gan", "vaegan"])
def test_each_player_moves_on_its_own_loss_only(cfg):
    torch.manual_seed(0)
    model = build_model(cfg).train()
    train = TrainConfig(lr=1e-2)
    opts = player_optimizers(model, train, torch.device("cpu"))
    x = torch.rand(8, 1, 28, 28)
    for frozen in opts:  # freeze one player at a time: it must not move, every other player must
        torch.manual_seed(0)
        model = build_model(cfg).train()
        opts = player_optimizers(model, train, torch.device("cpu"))
        for g in opts[frozen].param_groups:
            g["lr"] = 0.0
        players = {"discriminator": model.discriminator, **({"generator": model.generator} if cfg.kind == "gan" else
                                                            {"encoder": model.encoder, "decoder": model.decoder})}
        before = {n: _params(m) for n, m in players.items()}
        parts = adversarial_step(model, opts, x, train)
        assert all(torch.isfinite(v) for v in parts.values())
        for name, m in players.items():
            moved = _moved(before[name], m)
            if name == frozen:
                assert not any(moved), f"{name} moved with a learning rate of 0"
            else:
                assert any(moved), f"{name} did not move"


def test_the_discriminator_step_uses_detached_fakes():
    # With the generator frozen by a zero learning rate, its gradient must never be taken through the
    # discriminator's loss; with D frozen, one step must still move G (the NS loss reaches it).
    torch.manual_seed(1)
    model = build_model(TINY_GAN).train()
    opts = player_optimizers(model, TrainConfig(), torch.device("cpu"))
    adversarial_step(model, opts, torch.rand(4, 1, 28, 28), TrainConfig())
    assert all(p.grad is not None for p in model.generator.parameters())
    assert all(p.grad is not None for p in model.discriminator.parameters())


def test_snapshot_steps():
    assert snapshot_steps(1000, 400) == [0, 25, 50, 100, 200, 400, 800, 1000]
    assert snapshot_steps(30, 15) == [0, 15, 25, 30]


def _tiny_data(n=96):
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(n, 1, 28, 28, generator=g) > 0.7).float()
    y = torch.arange(n) % 10
    return ImageData("mnist", tuple("0123456789"), x, y, x[:32], y[:32], x[:0], y[:0])


def test_fit_adversarial_keeps_curves_and_snapshots_and_is_deterministic():
    data, cfg = _tiny_data(), TrainConfig(epochs=2, batch_size=32, lr=1e-3, seed=3)
    runs = []
    for _ in range(2):
        torch.manual_seed(cfg.seed)
        model = build_model(TINY_VAEGAN)
        history = fit_adversarial(model, data, cfg, device="cpu", progress=False)
        runs.append((model, history))
    (m1, h1), (m2, h2) = runs
    for p1, p2 in zip(m1.state_dict().values(), m2.state_dict().values()):
        assert torch.equal(p1, p2)
    assert h1.curve("d") == h2.curve("d") and len(h1.curve("d")) == len(h1.curve("g")) == 6
    steps, images = h1.snapshots()
    assert steps == [0, 3, 6] and images.shape == (3, 16, 1, 28, 28)
    assert 0 <= float(images.min()) and float(images.max()) <= 1
    assert set(h1.epochs[-1]["test"]) == {"total", "recon", "kl", "d", "g", "feature"}
    # The last snapshot is the trained generator on the fixed noise (to uint8 precision).
    z = torch.randn(16, TINY_VAEGAN.latent_dim, generator=torch.Generator().manual_seed(cfg.seed + 1))
    with torch.no_grad():
        expected = m1.eval().generate(z)
    assert float((images[-1] - expected).abs().max()) <= 0.5 / 255 + 1e-6


def test_fit_adversarial_refuses_what_it_does_not_do():
    with pytest.raises(ValueError, match="constant learning rate"):
        fit_adversarial(build_model(TINY_GAN), _tiny_data(), TrainConfig(schedule="onecycle"), progress=False)
    with pytest.raises(ValueError, match="two-player"):
        player_optimizers(build_model(ModelConfig("vae", latent_dim=2)), TrainConfig(), torch.device("cpu"))


def test_train_config_validates_the_adversarial_options():
    with pytest.raises(ValueError, match="adversarial"):
        TrainConfig(adversarial="hinge")
    with pytest.raises(ValueError, match="adv_weight"):
        TrainConfig(adv_weight=-1)


def test_cache_key_ignores_late_fields_at_their_defaults():
    mc, tc = ModelConfig("vae", latent_dim=2), TrainConfig(epochs=3)
    explicit = replace(tc, adversarial="nonsaturating", adv_weight=1.0)
    assert cache.cache_key(mc, tc, False) == cache.cache_key(mc, explicit, False)
    assert cache.cache_key(mc, tc, False) != cache.cache_key(mc, replace(tc, adversarial="minimax"), False)
    assert cache.cache_key(mc, tc, False) != cache.cache_key(mc, replace(tc, adv_weight=0.5), False)
    # A key computed before the fields existed (format 2), kept here so that a change that orphans every
    # trained model fails this test instead of passing unnoticed.
    assert cache.cache_key(ModelConfig("ae", latent_dim=2), TrainConfig(), False) == _KEY_BEFORE


_KEY_BEFORE = "251af06db77d5cba"  # cache_key(ModelConfig("ae", latent_dim=2), TrainConfig(), False) at 20fe363


def test_train_model_dispatches_to_the_two_player_loop(monkeypatch):
    from genvae import data as gdata
    from genvae.training import loop

    calls = []
    real = loop.fit_adversarial
    monkeypatch.setattr(loop, "fit_adversarial", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(gdata, "load", lambda name, train_size=None: _tiny_data())
    model, history = train_model(TINY_GAN, TrainConfig(epochs=1, batch_size=32), progress=False, device="cpu")
    assert calls == [1] and not model.training and len(history.curve("g")) == 3
