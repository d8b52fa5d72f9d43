"""Chapter 5 (KL divergence): the Monte-Carlo standard error and the claims the chapter makes,
checked against independent references (torch.distributions, scipy)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import entropy, sem
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

from genvae import losses

g = torch.Generator().manual_seed(0)
MU = torch.randn(6, 4, generator=g, dtype=torch.float64)
LOGVAR = torch.randn(6, 4, generator=g, dtype=torch.float64)


def _exact(mu, logvar):
    """KL(q || N(0, I)) from torch.distributions, summed over latents, mean over batch."""
    q = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)
    p = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    return kl_divergence(q, p).mean()


def test_monte_carlo_kl_is_the_mean_log_ratio_of_its_draws_scored_by_torch_distributions():
    n = 3000
    est = losses.monte_carlo_kl(MU, LOGVAR, n, torch.Generator().manual_seed(3))
    # The same draws (eps from the same seed, z = mu + sigma * eps), scored with torch.distributions' densities.
    eps = torch.randn((n, *MU.shape), generator=torch.Generator().manual_seed(3), dtype=MU.dtype)
    q = Normal(MU, torch.exp(0.5 * LOGVAR))
    z = q.mean + q.stddev * eps  # (S, B, D)
    ratio = (q.log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum(-1).mean()  # over latents, then draws and batch
    assert float(est) == pytest.approx(float(ratio), rel=1e-10)
    # ...and so it lands within a few standard errors of the exact KL.
    per_draw = (q.log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum(-1).mean(-1)  # (S,)
    assert abs(float(est) - float(_exact(MU, LOGVAR))) < 4 * float(per_draw.std()) / math.sqrt(n)


def test_standard_error_matches_scipy_sem_of_log_prob_ratios():
    n = 2000
    est, se = losses.monte_carlo_kl_with_error(MU, LOGVAR, n, torch.Generator().manual_seed(4))
    # Rebuild the same draws and score them with torch.distributions' log densities.
    eps = torch.randn((n, *MU.shape), generator=torch.Generator().manual_seed(4), dtype=MU.dtype)
    std = torch.exp(0.5 * LOGVAR)
    z = MU + std * eps
    ratio = (Normal(MU, std).log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum(-1).mean(-1)
    assert float(est) == pytest.approx(float(ratio.mean()), rel=1e-10)
    assert float(se) == pytest.approx(sem(ratio.numpy()), rel=1e-10)


def test_standard_error_is_calibrated_and_shrinks_like_one_over_sqrt_n():
    mu, logvar = MU[:2], LOGVAR[:2]
    exact = float(_exact(mu, logvar))
    gen = torch.Generator().manual_seed(5)
    runs = [losses.monte_carlo_kl_with_error(mu, logvar, 400, gen) for _ in range(300)]
    estimates = np.array([float(e) for e, _ in runs])
    errors = np.array([float(s) for _, s in runs])
    # The reported standard error predicts the actual spread of the estimates...
    assert estimates.std() == pytest.approx(errors.mean(), rel=0.15)
    # ...and the estimates are centred on the exact value (unbiased).
    assert abs(estimates.mean() - exact) < 4 * estimates.std() / math.sqrt(len(runs))
    # Sixteen times the samples, a quarter of the standard error.
    _, se_big = losses.monte_carlo_kl_with_error(mu, logvar, 6400, gen)
    assert float(se_big) == pytest.approx(errors.mean() / 4, rel=0.15)


def test_zero_at_the_prior_and_too_few_samples():
    zeros = torch.zeros(2, 3, dtype=torch.float64)
    est, se = losses.monte_carlo_kl_with_error(zeros, zeros, 10)
    assert float(est) == 0.0 and float(se) == 0.0  # every log-ratio is exactly 0
    with pytest.raises(ValueError, match="at least 2"):
        losses.monte_carlo_kl_with_error(zeros, zeros, 1)


def test_gaussian_kl_matches_a_full_covariance_reference():
    # A diagonal Gaussian written as a MultivariateNormal: an independent code path.
    q = MultivariateNormal(MU, covariance_matrix=torch.diag_embed(LOGVAR.exp()))
    p = MultivariateNormal(torch.zeros(4, dtype=torch.float64), torch.eye(4, dtype=torch.float64))
    torch.testing.assert_close(losses.gaussian_kl(MU, LOGVAR), kl_divergence(q, p).mean())


def test_discrete_kl_is_non_negative_and_asymmetric_on_random_pairs():
    rng = np.random.default_rng(0)
    p, q = rng.dirichlet(np.ones(6), size=(2, 2000))
    forward = losses.discrete_kl(torch.from_numpy(p), torch.from_numpy(q)).numpy()
    backward = losses.discrete_kl(torch.from_numpy(q), torch.from_numpy(p)).numpy()
    np.testing.assert_allclose(forward, entropy(p, q, axis=-1), rtol=1e-10)
    assert (forward > 0).all()  # Gibbs' inequality, strict since p != q
    assert np.abs(forward - backward).max() > 0.1
    # Pinsker's inequality: KL >= 2 TV^2, so a small KL forces p close to q.
    tv = 0.5 * np.abs(p - q).sum(-1)
    assert (forward >= 2 * tv**2).all()
    assert (losses.discrete_kl(torch.from_numpy(p), torch.from_numpy(p)) == 0).all()
