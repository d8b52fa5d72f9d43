"""Chapter 1's claims: a fitted mixture approaches the true density; a single Gaussian cannot."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genvae import density


def test_toy_density_is_a_normalised_density():
    p = density.toy_density()
    xs = torch.linspace(-8, 8, 401)
    grid = torch.stack(torch.meshgrid(xs, xs, indexing="ij"), -1).reshape(-1, 2)
    cell = float((xs[1] - xs[0]) ** 2)
    assert float(p.log_prob(grid).exp().sum()) * cell == pytest.approx(1.0, abs=1e-3)


def test_gmm_beats_a_single_gaussian_on_held_out_points_and_stays_below_the_truth():
    p = density.toy_density()
    torch.manual_seed(0)
    train, test = p.sample((2000,)).numpy(), p.sample((2000,)).numpy()
    gmm = density.fit_gmm(train, 6)
    single = density.fit_gmm(train, 1)
    ll_true = density.mean_log_likelihood(p, test)
    ll_gmm = density.mean_log_likelihood(gmm, test)
    ll_single = density.mean_log_likelihood(single, test)
    assert ll_single < ll_gmm - 0.5  # the single Gaussian smears mass over the empty centre
    assert ll_gmm < ll_true + 0.05  # the truth is the best possible model (up to sampling noise)
    assert ll_true - ll_gmm < 0.1  # ...and the mixture gets close to it


def test_highest_density_level_holds_the_requested_mass():
    p = density.toy_density()
    torch.manual_seed(1)
    s = p.log_prob(p.sample((20000,))).numpy()
    level = density.highest_density_level(s, 0.9)
    assert np.mean(s >= level) == pytest.approx(0.9, abs=0.005)


def test_log_likelihood_difference_gives_a_paired_interval_that_tells_real_gaps_from_noise():
    from genvae.density import log_likelihood_difference

    truth = density.toy_density(seed=0)
    x = density.model_samples(truth, 3000, seed=1)
    x_fit = density.model_samples(truth, 2000, seed=2)
    single, mixture = density.fit_gmm(x_fit, 1), density.fit_gmm(x_fit, 6)
    real = log_likelihood_difference(mixture, single, x)
    assert real.low <= real.mean <= real.high and real.low > 0 and not real.within_noise
    same = log_likelihood_difference(mixture, mixture, x)
    assert same.mean == 0 and same.within_noise
    again = log_likelihood_difference(mixture, single, x)
    assert again == real  # seeded: the same interval on every run
    wider = log_likelihood_difference(mixture, single, x[:100])
    assert wider.high - wider.low > real.high - real.low
    with pytest.raises(ValueError):
        log_likelihood_difference(mixture, single, x, level=1.5)
