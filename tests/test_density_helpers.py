"""Chapter 1's helpers: log-densities, seeded sampling, highest-density regions and their panel.

References are independent of the code under test: scipy's multivariate normal, sklearn's own
``score_samples``, sample moments, and the analytic mass of a Gaussian's ellipse (chi-squared).
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from scipy import stats

from genvae import density, plots


@pytest.fixture(scope="module")
def fitted():
    p = density.toy_density()
    x = density.model_samples(p, 1500, seed=3)
    return density.fit_gmm(x, 3, seed=0)


def test_log_density_of_the_truth_matches_scipy():
    p = density.toy_density()
    x = np.array([[0.0, 0.0], [4.0, 0.0], [-2.0, 3.5], [1.0, -6.0]])
    probs = p.mixture_distribution.probs.double().numpy()
    means = p.component_distribution.loc.double().numpy()
    covs = p.component_distribution.covariance_matrix.double().numpy()
    reference = np.log(sum(w * stats.multivariate_normal(m, c).pdf(x) for w, m, c in zip(probs, means, covs)))
    np.testing.assert_allclose(density.log_density(p, x), reference, rtol=1e-4, atol=1e-4)


def test_log_density_of_a_fitted_mixture_matches_scipy_and_its_torch_copy(fitted):
    x = np.random.default_rng(0).normal(scale=4.0, size=(50, 2))
    reference = np.log(sum(w * stats.multivariate_normal(m, c).pdf(x)
                           for w, m, c in zip(fitted.weights_, fitted.means_, fitted.covariances_)))
    np.testing.assert_allclose(density.log_density(fitted, x), reference, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(density.log_density(density.as_torch(fitted), x), reference, rtol=1e-6, atol=1e-4)


def test_samples_are_reproducible_with_a_seed_and_leave_the_global_rng_alone(fitted):
    p = density.toy_density()
    state = torch.random.get_rng_state()
    for model in (p, fitted):
        a, b = density.model_samples(model, 100, seed=7), density.model_samples(model, 100, seed=7)
        c = density.model_samples(model, 100, seed=8)
        assert a.shape == (100, 2)
        np.testing.assert_array_equal(a, b)
        assert not np.allclose(a, c)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_samples_follow_the_mixture_moments(fitted):
    x = density.model_samples(fitted, 200_000, seed=0)
    mean = fitted.weights_ @ fitted.means_  # (2,)
    second = sum(w * (c + np.outer(m, m)) for w, m, c in zip(fitted.weights_, fitted.means_, fitted.covariances_))
    np.testing.assert_allclose(x.mean(0), mean, atol=0.03)
    np.testing.assert_allclose(np.cov(x.T), second - np.outer(mean, mean), atol=0.05)


def test_a_gaussians_region_holds_its_analytic_mass():
    # For one 2-D Gaussian the 90% region is the ellipse (x-m)^T S^-1 (x-m) <= chi2_2(0.9): check the level.
    cov = torch.tensor([[2.0, 0.6], [0.6, 0.5]], dtype=torch.float64)
    g = torch.distributions.MultivariateNormal(torch.tensor([1.0, -1.0], dtype=torch.float64), cov)
    level = density.region_level(g, 0.9, n_samples=200_000)
    analytic = -0.5 * stats.chi2(2).ppf(0.9) - np.log(2 * np.pi) - 0.5 * np.log(float(torch.linalg.det(cov)))
    assert level == pytest.approx(analytic, abs=0.02)


@pytest.mark.parametrize("mass", [0.5, 0.9])
def test_a_region_holds_its_mass_of_fresh_data_not_all_of_it(mass):
    p = density.toy_density()
    fresh = density.model_samples(p, 20_000, seed=11)
    assert density.fraction_inside(p, fresh, mass) == pytest.approx(mass, abs=0.01)


def test_density_panel_draws_the_region_and_the_points(fitted):
    fig, ax = plt.subplots()
    pts = density.model_samples(fitted, 50, seed=1)
    out = plots.density_panel(fitted, pts, ax=ax, title="t", resolution=60)
    assert out is ax and ax.get_title() == "t"
    assert len(ax.collections) >= 2  # the shading and contour, then the scatter
    np.testing.assert_allclose(ax.collections[-1].get_offsets(), pts)
    plt.close(fig)


def test_relative_density_against_a_closed_form():
    # Standard normal in 2-D: log p(x) = -|x|^2 / 2 - log(2 pi); reference points on a circle of radius 1.
    g = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64))
    angles = np.linspace(0, 2 * np.pi, 101)
    circle = np.stack([np.cos(angles), np.sin(angles)], 1)
    assert density.log10_relative_density(g, [0.0, 0.0], circle) == pytest.approx(0.5 / np.log(10), abs=1e-9)
    assert density.log10_relative_density(g, [3.0, 0.0], circle) == pytest.approx(-4.0 / np.log(10), abs=1e-9)
