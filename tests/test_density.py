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
