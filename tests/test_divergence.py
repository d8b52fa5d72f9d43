"""genvae.divergence (chapter 5's helpers), checked against independent references: scipy's entropy and
numerical integration, torch.distributions, Monte Carlo with a fixed generator, and analytic results."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.integrate import quad
from scipy.stats import entropy, norm
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from genvae import divergence, losses


def _batch(seed: int = 0, b: int = 5, d: int = 3):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(b, d, generator=g, dtype=torch.float64)
    logvar = torch.empty(b, d, dtype=torch.float64).uniform_(-3, 1, generator=g)
    return mu, logvar


# --------------------------------------------------------------------------- discrete


def test_term_table_rows_sum_to_scipy_entropy():
    p = np.array([0.1, 0.1, 0.1, 0.1, 0.1, 0.5])
    q = np.full(6, 1 / 6)
    rows = divergence.term_table(p, q)
    assert len(rows) == 7 and rows[-1]["face"] == "sum"
    terms = np.array([r["p_i log(p_i / q_i)"] for r in rows[:-1]])
    assert rows[-1]["p_i log(p_i / q_i)"] == pytest.approx(entropy(p, q), rel=1e-12)
    np.testing.assert_allclose(terms, p * np.log(p / q))
    assert (terms[:5] < 0).all() and terms[5] > 0  # the die example's signs
    assert rows[-1]["p_i"] == pytest.approx(1) and rows[-1]["q_i"] == pytest.approx(1)


def test_term_table_rejects_zeros_and_mismatched_shapes():
    with pytest.raises(ValueError):
        divergence.term_table([0.5, 0.5, 0.0], [1 / 3] * 3)
    with pytest.raises(ValueError):
        divergence.term_table([0.5, 0.5], [1 / 3] * 3)


# --------------------------------------------------------------------------- a Gaussian against the prior


def test_prior_kl_reference_matches_full_covariance_and_closed_form():
    mu, logvar = _batch()
    q = MultivariateNormal(mu, covariance_matrix=torch.diag_embed(logvar.exp()))
    p = MultivariateNormal(torch.zeros(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64))
    torch.testing.assert_close(divergence.prior_kl_reference(mu, logvar), kl_divergence(q, p).mean())
    torch.testing.assert_close(divergence.prior_kl_reference(mu, logvar), losses.gaussian_kl(mu, logvar))


def test_quadrature_kl_matches_torch_distributions_and_monte_carlo():
    mu, logvar = _batch(1)
    exact = float(kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(1).mean())
    assert divergence.quadrature_kl(mu, logvar) == pytest.approx(exact, rel=1e-9, abs=1e-12)
    est, se = losses.monte_carlo_kl_with_error(mu, logvar, 20_000, torch.Generator().manual_seed(2))
    assert abs(divergence.quadrature_kl(mu, logvar) - float(est)) < 5 * float(se)
    zeros = torch.zeros(2, 2, dtype=torch.float64)
    assert divergence.quadrature_kl(zeros, zeros) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("mu, sigma", [(0.0, 1.0), (1.0, 1.0), (0.0, 0.1), (-2.0, 0.3), (1.5, 3.0), (0.0, 10.0)])
def test_kl_1d_matches_numerical_integration(mu, sigma):
    # Integrate q(z) [log q(z) - log p(z)] with scipy's own densities: no closed form involved.
    def integrand(z):
        return norm.pdf(z, mu, sigma) * (norm.logpdf(z, mu, sigma) - norm.logpdf(z))

    reference, _ = quad(integrand, mu - 15 * sigma, mu + 15 * sigma, points=[mu], limit=200)
    assert divergence.kl_1d(mu, sigma) == pytest.approx(reference, rel=1e-7, abs=1e-10)


def test_kl_1d_known_values_and_bad_sigma():
    assert divergence.kl_1d(1.0, 1.0) == pytest.approx(0.5)  # mu^2 / 2
    assert divergence.kl_1d(0.0, math.e ** 0.5) == pytest.approx(0.5 * (math.e - 1 - 1))
    with pytest.raises(ValueError):
        divergence.kl_1d(0.0, 0.0)


def test_sign_dropped_kl_is_minus_the_kl():
    mu, logvar = _batch(3)
    reference = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0))
    torch.testing.assert_close(divergence.sign_dropped_kl(mu, logvar), -reference)
    assert (divergence.sign_dropped_kl(mu, logvar) < 0).all()
    zeros = torch.zeros(1, 1, dtype=torch.float64)
    assert float(divergence.sign_dropped_kl(zeros, zeros)) == 0.0


def test_descend_follows_the_analytic_gradient_and_reaches_the_prior():
    start = torch.tensor([[-2.5, 2 * math.log(0.1)], [2.0, 2 * math.log(3.5)]], dtype=torch.float64)
    lr = 0.2
    path = divergence.descend(losses.gaussian_kl_per_dim, start, 3, lr)
    assert path.shape == (4, 2, 2)
    torch.testing.assert_close(path[0], start)
    # d KL / d mu = mu, so each step multiplies mu by (1 - lr) exactly.
    torch.testing.assert_close(path[3, :, 0], start[:, 0] * (1 - lr) ** 3)
    # d KL / d logvar = (exp(logvar) - 1) / 2: one step by hand.
    torch.testing.assert_close(path[1, :, 1], start[:, 1] - lr * 0.5 * (start[:, 1].exp() - 1))
    final = divergence.descend(losses.gaussian_kl_per_dim, start, 300, lr)[-1]
    assert float(final.abs().max()) < 1e-6  # mu = 0, log sigma^2 = 0: the prior


def test_descend_on_the_sign_dropped_formula_moves_away_from_the_prior():
    start = torch.tensor([[0.5, 0.3], [-1.0, -1.0]], dtype=torch.float64)
    path = divergence.descend(divergence.sign_dropped_kl, start, 2, 0.2)
    kl = losses.gaussian_kl_per_dim(path[:, :, :1], path[:, :, 1:]).squeeze(-1)  # (steps + 1, P)
    assert (kl[1:] > kl[:-1]).all()


# --------------------------------------------------------------------------- forward against reverse KL


def test_mixture_log_prob_mean_and_variance_match_sampling():
    mix = divergence.TWO_MODES
    x = torch.linspace(-4, 4, 9, dtype=torch.float64)
    by_hand = sum(w * norm.pdf(x.numpy(), m, s) for w, m, s in zip(mix.weights, mix.means, mix.stds))
    np.testing.assert_allclose(mix.log_prob(x).exp().numpy(), by_hand, rtol=1e-12)
    g = torch.Generator().manual_seed(0)
    n = 200_000
    comp = torch.multinomial(torch.tensor(mix.weights), n, replacement=True, generator=g)
    draws = torch.tensor(mix.means)[comp] + torch.tensor(mix.stds)[comp] * torch.randn(n, generator=g)
    assert float(draws.mean()) == pytest.approx(mix.mean(), abs=0.02)
    assert float(draws.var()) == pytest.approx(mix.variance(), rel=0.01)
    with pytest.raises(ValueError):
        divergence.Mixture1D((0.5, 0.6), (0.0, 1.0), (1.0, 1.0))


def test_grid_kl_matches_torch_distributions_for_two_gaussians():
    x = torch.linspace(-15, 15, 6001, dtype=torch.float64)
    a, b = Normal(0.5, 0.7), Normal(-1.0, 2.0)
    got = divergence.grid_kl(a.log_prob(x), b.log_prob(x), x)
    torch.testing.assert_close(got, kl_divergence(a, b).double(), rtol=1e-6, atol=1e-9)


def test_forward_fit_matches_the_moments_of_the_target():
    mix = divergence.TWO_MODES
    fit = divergence.fit_gaussian(mix, "forward")
    assert fit.mean == pytest.approx(mix.mean(), abs=1e-4)
    assert fit.std == pytest.approx(math.sqrt(mix.variance()), rel=1e-4)
    assert fit.kl == fit.forward_kl > 0


@pytest.mark.parametrize("side", [0, 1])
def test_reverse_fit_locks_onto_the_mode_it_starts_near(side):
    mix = divergence.TWO_MODES
    start = mix.means[side] + (-1.0 if side == 0 else 1.0)
    fit = divergence.fit_gaussian(mix, "reverse", init_mean=start)
    assert fit.mean == pytest.approx(mix.means[side], abs=0.05)
    assert fit.std == pytest.approx(mix.stds[side], rel=0.05)
    # Locked onto one mode, q's mass misses the other: the *forward* KL at this fit is large, and the
    # reverse KL is close to -log(weight) (q is nearly that component alone, seen by p at weight w).
    assert fit.forward_kl > 3 * divergence.fit_gaussian(mix, "forward").forward_kl
    assert fit.reverse_kl == pytest.approx(-math.log(mix.weights[side]), abs=0.01)


def test_fit_rejects_an_unknown_direction():
    with pytest.raises(ValueError):
        divergence.fit_gaussian(divergence.TWO_MODES, "sideways")


def test_kl_profile_has_one_forward_valley_and_a_reverse_valley_at_each_mode():
    mix = divergence.TWO_MODES
    means = torch.linspace(-4, 4, 81, dtype=torch.float64)
    forward, reverse = divergence.kl_profile(mix, means, torch.logspace(-1.3, 0.8, 120, dtype=torch.float64))
    assert forward.shape == reverse.shape == (81,)
    interior_minima = lambda v: [float(means[i]) for i in range(1, 80) if v[i] < v[i - 1] and v[i] < v[i + 1]]
    assert interior_minima(forward) == [pytest.approx(mix.mean(), abs=0.1)]
    found = interior_minima(reverse)
    for m in mix.means:
        assert any(abs(f - m) < 0.1 for f in found)


def test_prior_kl_map_is_the_one_dimensional_kl_on_the_grid_with_its_minimum_at_the_prior():
    mu_axis = np.linspace(-2, 2, 41)
    sigma_axis = np.logspace(-1, 0.5, 31)  # holds sigma = 1 (index 20)
    kl = divergence.prior_kl_map(mu_axis, sigma_axis)
    assert kl.shape == (31, 41) and kl.dtype == np.float64  # rows sigma, columns mu
    for i, j in [(0, 0), (20, 20), (7, 33)]:
        assert kl[i, j] == pytest.approx(divergence.kl_1d(mu_axis[j], sigma_axis[i]), abs=1e-12)
        q = Normal(torch.tensor(mu_axis[j]), torch.tensor(sigma_axis[i]))  # float64
        ref = kl_divergence(q, Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64)))
        assert kl[i, j] == pytest.approx(float(ref), abs=1e-9)
    assert np.unravel_index(kl.argmin(), kl.shape) == (20, 20) and kl.min() == pytest.approx(0, abs=1e-12)
    with pytest.raises(ValueError):
        divergence.prior_kl_map(mu_axis, np.array([0.0, 1.0]))


def test_kl_1d_grows_like_minus_log_sigma_as_sigma_shrinks():
    # Each factor of ten below sigma = 1 costs log 10 nats more, in the limit; sigma = 1e-3 costs about 6.4.
    assert divergence.kl_1d(0.0, 1e-3) == pytest.approx(0.5 * (1e-6 - 1) + 3 * math.log(10), rel=1e-12)
    assert divergence.kl_1d(0.0, 1e-4) - divergence.kl_1d(0.0, 1e-3) == pytest.approx(math.log(10), rel=1e-5)
