"""The book's claims, checked on small seeded runs so that a change that breaks them is caught.

Each test trains in seconds on a subset of MNIST; the chapters measure the same
quantities on the full data. Marked slow: they train real models.
"""

from __future__ import annotations

import pytest
import torch

from genvae import latent, metrics
from genvae.cache import load_or_train
from genvae.models import ModelConfig
from genvae.train import TrainConfig

pytestmark = pytest.mark.slow


def _train(model: ModelConfig, **train):
    cfg = TrainConfig(**{"epochs": 3, "train_size": 20_000, **train})
    return load_or_train(model, cfg, quick=False, progress=False).model


def _pca_mse(mnist, d: int) -> float:
    pca = latent.PCA(d).fit(mnist.x_train[:20_000])
    return float((pca.reconstruct(mnist.x_test) - mnist.x_test).pow(2).mean())


@pytest.mark.parametrize("d", [2, 8])
def test_autoencoder_beats_pca_of_the_same_dimension(mnist, d):
    """Chapter 2: the nonlinear AE reconstructs test digits better than PCA with d components."""
    ae = _train(ModelConfig("ae", latent_dim=d))
    assert metrics.reconstruction_mse(ae, mnist.x_test) < 0.9 * _pca_mse(mnist, d)


def test_overcomplete_autoencoder_copies_noise_it_never_saw(mnist):
    """Chapter 4: without a bottleneck the AE learns (nearly) the identity, noise included."""
    noise = torch.rand(500, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    copier = _train(ModelConfig("ae", arch="fullconv", latent_dim=16 * 784))
    bottleneck = _train(ModelConfig("ae", latent_dim=8))
    copier_noise = metrics.reconstruction_mse(copier, noise)
    bottleneck_noise = metrics.reconstruction_mse(bottleneck, noise)
    # Predicting the constant 0.5 would score the noise variance, 1/12: the copier
    # must actually reproduce part of the noise, and the bottleneck must not.
    assert copier_noise < 0.75 * float(noise.var()), copier_noise
    assert copier_noise < 0.25 * bottleneck_noise, (copier_noise, bottleneck_noise)
    assert bottleneck_noise > float(noise.var()), bottleneck_noise
    # ...while it reconstructs real digits at least as well as the bottlenecked model.
    assert metrics.reconstruction_mse(copier, mnist.x_test) < metrics.reconstruction_mse(bottleneck, mnist.x_test)


def test_multistage_vae_separates_classes_better_than_the_vae(mnist):
    """Chapter 7: at equal beta, the classifier head raises the latent kNN accuracy."""
    from genvae.experiments import multistage

    gamma = multistage().train.gamma
    scores = {}
    for kind in ("vae", "multistage"):
        model = _train(ModelConfig(kind, latent_dim=2), beta=1.0, gamma=gamma)
        z_tr, z_te = latent.encode(model, mnist.x_train[:20_000]), latent.encode(model, mnist.x_test)
        scores[kind] = metrics.knn_accuracy(z_tr, mnist.y_train[:20_000], z_te, mnist.y_test)
    assert scores["multistage"] > scores["vae"] + 0.05, scores


def test_larger_beta_lowers_kl_and_raises_reconstruction_error(mnist):
    """Chapters 7 and 8: beta trades rate (KL) for distortion (reconstruction error)."""
    from genvae import losses

    results = {}
    for beta in (0.5, 4.0):
        model = _train(ModelConfig("vae", latent_dim=2), beta=beta)
        with torch.no_grad():
            mu, logvar = model.encode(mnist.x_test)
        results[beta] = (float(losses.gaussian_kl(mu, logvar)), metrics.reconstruction_mse(model, mnist.x_test))
    (kl_lo, mse_lo), (kl_hi, mse_hi) = results[0.5], results[4.0]
    assert kl_hi < kl_lo and mse_hi > mse_lo, results
