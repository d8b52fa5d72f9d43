"""The loss functions, checked against independent references (torch.distributions, scipy)."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import entropy
from torch.distributions import Bernoulli, Categorical, Normal, kl_divergence

from genvae import losses
from genvae.models.outputs import AEOutput, MultiStageOutput, VAEOutput

from conftest import images

g = torch.Generator().manual_seed(0)
MU = torch.randn(8, 5, generator=g, dtype=torch.float64)
LOGVAR = torch.randn(8, 5, generator=g, dtype=torch.float64)


def test_gaussian_kl_matches_torch_distributions():
    q = Normal(MU, torch.exp(0.5 * LOGVAR))
    p = Normal(torch.zeros_like(MU), torch.ones_like(MU))
    reference = kl_divergence(q, p).sum(1).mean()  # sum over latents, mean over batch
    torch.testing.assert_close(losses.gaussian_kl(MU, LOGVAR), reference)
    torch.testing.assert_close(losses.gaussian_kl_per_dim(MU, LOGVAR), kl_divergence(q, p))


def test_gaussian_kl_matches_monte_carlo():
    exact = float(losses.gaussian_kl(MU, LOGVAR))
    gen = torch.Generator().manual_seed(1)
    estimate = float(losses.monte_carlo_kl(MU, LOGVAR, n_samples=200_000, generator=gen))
    # Per-image log-ratio samples have a spread of a few nats; 200k x 8 samples
    # put the standard error well under 0.02, so 0.05 is a > 3-sigma band.
    assert estimate == pytest.approx(exact, abs=0.05)


def test_gaussian_kl_is_zero_exactly_at_the_prior():
    zeros = torch.zeros(3, 4)
    assert losses.gaussian_kl(zeros, zeros).item() == 0.0
    assert torch.equal(losses.gaussian_kl_per_dim(zeros, zeros), torch.zeros(3, 4))


@pytest.mark.parametrize("mu, sigma", [(2.0, 1.0), (0.0, 2.0), (0.0, 0.5), (-1.5, 0.3), (0.7, 3.0)])
def test_gaussian_kl_is_positive_and_equals_the_integral_of_its_definition(mu, sigma):
    """KL(q || p) = integral of q(z) log(q(z) / p(z)) dz, integrated numerically (scipy), without any
    closed form: positive away from the prior, and the closed form's value. A formula without the leading
    minus sign (the source outline's) would be the same numbers negated, and fail here."""
    from scipy.integrate import quad
    from scipy.stats import norm

    integral, _ = quad(lambda z: norm.pdf(z, mu, sigma) * (norm.logpdf(z, mu, sigma) - norm.logpdf(z)),
                       mu - 15 * sigma, mu + 15 * sigma, points=[mu], epsabs=1e-12, epsrel=1e-10)
    kl = losses.gaussian_kl_per_dim(torch.tensor([[mu]], dtype=torch.float64),
                                    torch.tensor([[2 * math.log(sigma)]], dtype=torch.float64))
    assert integral > 0
    assert float(kl) == pytest.approx(integral, rel=1e-8)


def test_kl_closed_form_value_by_hand():
    # mu = 1, sigma = 1: KL = mu^2 / 2 = 0.5; mu = 0, sigma^2 = e: KL = (e - 1 - 1) / 2
    mu = torch.tensor([[1.0, 0.0]])
    logvar = torch.tensor([[0.0, 1.0]])
    torch.testing.assert_close(losses.gaussian_kl_per_dim(mu, logvar), torch.tensor([[0.5, (math.e - 2) / 2]]))


def test_discrete_kl_matches_scipy_and_is_asymmetric():
    p = torch.tensor([0.5, 0.3, 0.2])
    q = torch.tensor([0.1, 0.6, 0.3])
    assert float(losses.discrete_kl(p, q)) == pytest.approx(entropy(p.numpy(), q.numpy()))
    assert float(losses.discrete_kl(p, q)) != pytest.approx(float(losses.discrete_kl(q, p)))
    assert float(losses.discrete_kl(p, p)) == 0.0
    torch.testing.assert_close(
        losses.discrete_kl(p, q), kl_divergence(Categorical(probs=p.double()), Categorical(probs=q.double()))
    )


def test_discrete_kl_edge_cases():
    assert float(losses.discrete_kl(torch.tensor([1.0, 0.0]), torch.tensor([0.5, 0.5]))) == pytest.approx(math.log(2))
    assert math.isinf(float(losses.discrete_kl(torch.tensor([0.5, 0.5]), torch.tensor([1.0, 0.0]))))
    with pytest.raises(ValueError, match="probability vector"):
        losses.discrete_kl(torch.tensor([0.5, 0.6]), torch.tensor([0.5, 0.5]))
    with pytest.raises(ValueError, match="same shape"):
        losses.discrete_kl(torch.tensor([1.0]), torch.tensor([0.5, 0.5]))


def test_reconstruction_reduction_is_sum_over_pixels_mean_over_batch():
    x = images(6, seed=1)
    logits = torch.randn(6, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    manual = ((torch.sigmoid(logits) - x) ** 2).sum() / 6
    torch.testing.assert_close(losses.reconstruction_loss(logits, x, "mse"), manual)
    # Doubling the batch by repetition leaves a mean-over-batch loss unchanged.
    doubled = losses.reconstruction_loss(torch.cat([logits, logits]), torch.cat([x, x]), "mse")
    torch.testing.assert_close(doubled, manual)


def test_bce_matches_bernoulli_log_prob():
    x = torch.bernoulli(images(4, seed=3))
    logits = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(4))
    ref = -Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(losses.reconstruction_loss(logits, x, "bce"), ref.mean())
    torch.testing.assert_close(losses.decoder_log_prob(logits, x, "bce"), -ref)


def test_mse_is_a_gaussian_log_likelihood_with_variance_one_half():
    x = images(4, seed=5)
    logits = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(6))
    ref = Normal(torch.sigmoid(logits), math.sqrt(0.5)).log_prob(x).flatten(1).sum(1)
    torch.testing.assert_close(losses.decoder_log_prob(logits, x, "mse"), ref)
    # ...so the MSE loss is that negative log-likelihood minus a constant.
    const = 0.5 * 784 * math.log(math.pi)
    torch.testing.assert_close(losses.reconstruction_loss(logits, x, "mse"), -ref.mean() - const)


def _outputs(kind):
    gen = torch.Generator().manual_seed(7)
    logits = torch.randn(4, 1, 28, 28, generator=gen)
    base = dict(x_hat=torch.sigmoid(logits), x_logits=logits, z=torch.randn(4, 2, generator=gen))
    if kind == "ae":
        return AEOutput(**base)
    vae = dict(base, mu=torch.randn(4, 2, generator=gen), logvar=torch.randn(4, 2, generator=gen))
    if kind == "vae":
        return VAEOutput(**vae)
    return MultiStageOutput(**vae, logits=torch.randn(4, 10, generator=gen))


def test_vae_and_multistage_losses_compose_their_parts():
    x, y = images(4), torch.tensor([0, 3, 5, 9])
    ms = _outputs("ms")
    parts = losses.multistage_loss(ms, x, y, beta=4.0, gamma=0.5)
    r = losses.reconstruction_loss(ms.x_logits, x)
    kl = losses.gaussian_kl(ms.mu, ms.logvar)
    ce = torch.nn.functional.cross_entropy(ms.logits, y)  # categorical over 10 classes
    torch.testing.assert_close(parts.total, r + 4.0 * kl + 0.5 * ce)
    torch.testing.assert_close(parts.ce, ce)
    v = losses.vae_loss(_outputs("vae"), x, beta=0.0)
    torch.testing.assert_close(v.total, v.recon)  # beta = 0 is a plain (noisy) autoencoder


def test_objective_dispatches_on_output_type():
    x, y = images(4), torch.tensor([0, 3, 5, 9])
    assert set(losses.objective(_outputs("ae"), x, y).to_dict()) == {"total", "recon"}
    assert set(losses.objective(_outputs("vae"), x, y).to_dict()) == {"total", "recon", "kl"}
    assert set(losses.objective(_outputs("ms"), x, y).to_dict()) == {"total", "recon", "kl", "ce"}
    with pytest.raises(TypeError):
        losses.objective(object(), x, y)
    with pytest.raises(ValueError, match="mse"):
        losses.reconstruction_loss(x, x, "l1")


@pytest.mark.parametrize("kind", ["bce", "mse"])
def test_decoder_log_prob_of_many_samples_broadcasts_the_images(kind):
    x = images(3, seed=7)
    logits = torch.randn(5, 3, 1, 28, 28, generator=torch.Generator().manual_seed(8))  # 5 samples per image
    many = losses.decoder_log_prob(logits, x, kind)
    assert many.shape == (5, 3)
    for s in range(5):
        torch.testing.assert_close(many[s], losses.decoder_log_prob(logits[s], x, kind), rtol=1e-5, atol=1e-3)
