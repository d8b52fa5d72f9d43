"""Chapter 2's exercise checkers tell right answers from the usual wrong ones."""

import torch

from genvae import experiments, losses
from genvae.exercises import ch02
from genvae.models import build_model


def right(x_logits, x):
    return (torch.sigmoid(x_logits) - x).pow(2).flatten(1).sum(1).mean()


def test_the_reconstruction_loss_check_accepts_the_right_loss():
    assert ch02.check_reconstruction_loss(right).ok is True
    assert ch02.check_reconstruction_loss(losses.reconstruction_loss).ok is True
    assert ch02.check_reconstruction_loss(None).ok is None
    assert ch02.check_reconstruction_loss(lambda a, b: None).ok is None


def test_the_reconstruction_loss_check_names_each_slip():
    cases = {
        "pixels": lambda lg, x: torch.nn.functional.mse_loss(torch.sigmoid(lg), x),
        "sums over the batch": lambda lg, x: (torch.sigmoid(lg) - x).pow(2).sum(),
        "sigmoid": lambda lg, x: (lg - x).pow(2).flatten(1).sum(1).mean(),
        "per image": lambda lg, x: (torch.sigmoid(lg) - x).pow(2).flatten(1).sum(1),
        "no `.item()`": lambda lg, x: right(lg, x).item(),
        "gradient": lambda lg, x: right(lg.detach(), x),
        "absolute": lambda lg, x: (torch.sigmoid(lg) - x).abs().flatten(1).sum(1).mean(),
        "raised": lambda lg, x: 1 / 0,
        "expected": lambda lg, x: 2 * right(lg, x) + 1,
    }
    for words, fn in cases.items():
        result = ch02.check_reconstruction_loss(fn)
        assert result.ok is False and words in result.message, (words, result.message)


def _data():
    g = torch.Generator().manual_seed(0)
    centres = torch.rand(4, 1, 28, 28, generator=g).round()  # four very different "images"
    x = centres[torch.arange(400) % 4] * 0.9 + 0.05 * torch.rand(400, 1, 28, 28, generator=g)
    return x[:300], x[300:]


def test_the_retraining_check_passes_a_trained_model_and_fails_an_untrained_one():
    x_train, x_test = _data()
    torch.manual_seed(0)
    model = build_model(experiments.mlp_ae(2).model)
    untrained = ch02.check_retrained_autoencoder(model, 2, x_train, x_test)
    assert untrained.ok is False and "average training image" in untrained.message
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(150):
        loss = losses.reconstruction_loss(model(x_train).x_logits, x_train)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert ch02.check_retrained_autoencoder(model, 2, x_train, x_test).ok is True
    wrong_size = ch02.check_retrained_autoencoder(model, 8, x_train, x_test)
    assert wrong_size.ok is False and "expected 8" in wrong_size.message
    assert ch02.check_retrained_autoencoder(None, 2, x_train, x_test).ok is None
    assert ch02.check_retrained_autoencoder("model", 2, x_train, x_test).ok is False
