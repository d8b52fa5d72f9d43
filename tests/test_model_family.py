"""A new model family, added from outside genvae by this file alone: no genvae module is edited.

The family is one class (a linear autoencoder, the smallest model with a code) and one loss registered for
its output type. While the fixture below holds it registered, it builds from a ModelConfig, passes the model
suite every family of the book passes, trains through the book's loop, is cached and loaded like any
experiment, and samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import Tensor, nn

from genvae import experiments, losses, plots
from genvae.models import FAMILIES, Family, ModelConfig, build_model, kinds, register
from genvae.train import TrainConfig, train_model

from model_suite import ModelTesterMixin, check_decoded

KIND = "toy-linear"


@dataclass
class ToyOutput:
    x_hat: Tensor  # (B, 1, 28, 28) in [0, 1]
    x_logits: Tensor  # (B, 1, 28, 28)
    z: Tensor  # (B, D)


class LinearAutoEncoder(Family, nn.Module):
    """784 -> D -> 784, two linear maps: PCA's model, trained by gradient descent."""

    kind = KIND
    archs = ("mlp",)

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.encoder = nn.Linear(784, cfg.latent_dim)
        self.decoder = nn.Linear(cfg.latent_dim, 784)

    def encode(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1:] != (1, 28, 28):
            raise ValueError(f"expected images of shape (B, 1, 28, 28), got {tuple(x.shape)}")
        if x.dtype == torch.uint8:
            raise TypeError("expected float images, got torch.uint8; convert with x.float() / 255")
        if float(x.max()) > 1:
            raise ValueError(f"expected values in [0, 1], got max {float(x.max()):.1f}; divide by 255")
        return self.encoder(x.flatten(1))  # (B, D)

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z).view(-1, 1, 28, 28)  # (B, 1, 28, 28) logits

    def reconstruct(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.decode(self.encode(x)))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        z = torch.randn(n, self.config.latent_dim, generator=generator)
        return torch.sigmoid(self.decode(z.to(self.decoder.weight.device)))

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> ToyOutput:
        z = self.encode(x)
        logits = self.decode(z)
        return ToyOutput(x_hat=torch.sigmoid(logits), x_logits=logits, z=z)


@losses.objective.register(ToyOutput)
def toy_loss(out: ToyOutput, x: Tensor, y: Tensor, *, recon: str = "mse", **_) -> losses.LossParts:
    r = losses.reconstruction_loss(out.x_logits, x, recon)
    return losses.LossParts(total=r, recon=r)


@pytest.fixture(autouse=True, scope="module")
def toy_family():
    """The family is registered for this module's tests only; the book's kinds are left as they were."""
    register(LinearAutoEncoder)
    yield LinearAutoEncoder
    FAMILIES.pop(KIND)


class TestLinearAutoEncoder(ModelTesterMixin):
    configs = {"toy": dict(kind=KIND, arch="mlp", latent_dim=3, hidden=())}
    output_type = ToyOutput
    loss_parts = {"total", "recon"}
    stochastic = False

    def check_output(self, out, cfg):
        check_decoded(out, cfg)


def test_the_family_is_registered_and_checks_its_configs():
    assert kinds()[-1] == KIND and type(build_model(ModelConfig(KIND, latent_dim=3))) is LinearAutoEncoder
    with pytest.raises(ValueError, match=r"toy-linear is built with arch in \('mlp',\), got 'conv'"):
        ModelConfig(KIND, "conv", latent_dim=3)
    with pytest.raises(ValueError, match="already registered"):
        register(type("Impostor", (Family, nn.Module), {"kind": KIND}))
    with pytest.raises(ValueError, match="no architecture figure"):
        plots.architecture_stages(ModelConfig(KIND, latent_dim=3))


def test_it_trains_is_cached_loads_and_samples(mnist, monkeypatch, tmp_path):
    cfg = ModelConfig(KIND, latent_dim=8, hidden=())
    train = TrainConfig(epochs=2, batch_size=100, lr=1e-2, train_size=2000)
    model, history = train_model(cfg, train, progress=False)
    first, last = history.series("test", "recon")
    assert last < first  # it learns: the test reconstruction error falls

    e = experiments.Experiment("toy_linear_d8", "tests", "a linear autoencoder", cfg, train)
    assert not e.is_cached(quick=False)
    trained = e.load(quick=False, progress=False)
    assert e.is_cached(quick=False)
    for p, q in zip(model.parameters(), trained.model.parameters()):
        assert torch.equal(p.cpu(), q.cpu())  # the cache's run is the same run: CPU training is bit-identical
    again = e.load(quick=False, progress=False)
    assert again.history.seconds == trained.history.seconds  # loaded, not trained again
    for p, q in zip(trained.model.parameters(), again.model.parameters()):
        assert torch.equal(p, q)

    images = again.model.sample(6, generator=torch.Generator().manual_seed(0))
    assert images.shape == (6, 1, 28, 28) and float(images.min()) >= 0 and float(images.max()) <= 1
