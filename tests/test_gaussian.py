"""The one diagonal-Gaussian log-density: against torch.distributions, and bit for bit against the expressions
it replaced at each call site (the IWAE bound, the grid posterior, the Monte-Carlo KL, chapter 5's fits and
quadrature), so that every number the book reports stays the same."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
import torch
from torch.distributions import Normal

from genvae.gaussian import LOG2PI, gaussian_log_density


def _draws(*shape, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=dtype)
    mean = torch.randn(shape[-1], generator=g, dtype=dtype)
    logvar = torch.randn(shape[-1], generator=g, dtype=dtype)
    return x, mean, logvar


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_it_is_the_log_prob_of_torch_distributions_summed_over_the_last_dimension(dtype):
    x, mean, logvar = _draws(50, 3, dtype=dtype)
    ref = Normal(mean, torch.exp(0.5 * logvar)).log_prob(x)  # (50, 3), an independent implementation
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gaussian_log_density(x, mean, logvar), ref.sum(-1), **tol)
    torch.testing.assert_close(gaussian_log_density(x, mean, log_std=0.5 * logvar), ref.sum(-1), **tol)
    torch.testing.assert_close(gaussian_log_density(x, mean, logvar, dim=None), ref, **tol)
    torch.testing.assert_close(gaussian_log_density(x, mean, logvar, dim=0), ref.sum(0), **tol)
    std_normal = Normal(torch.zeros((), dtype=dtype), torch.ones((), dtype=dtype)).log_prob(x).sum(-1)
    torch.testing.assert_close(gaussian_log_density(x), std_normal, **tol)  # no mean, no scale: N(0, I)


def test_standardised_input_and_the_constant():
    x, mean, logvar = _draws(40, 4)
    eps = (x - mean) / torch.exp(0.5 * logvar)
    ref = Normal(mean, torch.exp(0.5 * logvar)).log_prob(x).sum(-1)
    torch.testing.assert_close(gaussian_log_density(eps, logvar=logvar, standardised=True), ref)
    # Without log(2 pi) per coordinate: D / 2 log(2 pi) more.
    torch.testing.assert_close(gaussian_log_density(x, mean, logvar, constant=False), ref + 0.5 * 4 * LOG2PI)
    assert LOG2PI == math.log(2 * math.pi)


def test_python_floats_give_the_density_of_one_coordinate():
    assert gaussian_log_density(0.0, dim=None) == pytest.approx(-0.5 * math.log(2 * math.pi))
    u, sigma = 0.7, 1.9
    ref = float(Normal(torch.tensor(0.0, dtype=torch.float64), sigma).log_prob(torch.tensor(u * sigma, dtype=torch.float64)))
    assert gaussian_log_density(u, logvar=2 * math.log(sigma), standardised=True, dim=None) == pytest.approx(ref, rel=1e-14)


def test_it_refuses_two_scales_and_a_mean_for_standardised_input():
    x, mean, logvar = _draws(3, 2)
    with pytest.raises(ValueError, match="not both"):
        gaussian_log_density(x, mean, logvar, log_std=logvar)
    with pytest.raises(ValueError, match="leave mean as None"):
        gaussian_log_density(x, mean, standardised=True)


def test_the_module_imports_nothing_from_genvae():
    tree = ast.parse((Path(__file__).resolve().parents[1] / "genvae" / "gaussian.py").read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0}
    relative = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level > 0]
    assert imported <= {"__future__", "math", "torch"} and not relative


# --- bit for bit against the expressions each call site used before it called gaussian_log_density


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_iwae_and_log_joint_terms_are_unchanged_bit_for_bit(dtype):
    g = torch.Generator().manual_seed(1)
    mu, logvar = torch.randn(7, 5, generator=g, dtype=dtype), torch.randn(7, 5, generator=g, dtype=dtype)
    eps = torch.randn(11, 7, 5, generator=g, dtype=dtype)
    z = mu + torch.exp(0.5 * logvar) * eps
    log2pi = math.log(2 * math.pi)
    assert torch.equal(gaussian_log_density(z), -0.5 * (z.pow(2) + log2pi).sum(-1))  # log p(z)
    assert torch.equal(gaussian_log_density(eps, logvar=logvar, standardised=True),
                       -0.5 * (eps.pow(2) + logvar + log2pi).sum(-1))  # log q(z|x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_grid_posterior_density_is_unchanged_bit_for_bit(dtype):
    z, mu, logvar = _draws(2000, 2, dtype=dtype, seed=2)
    z = 4 * z
    old = -0.5 * (((z - mu).pow(2) / logvar.exp()) + logvar + math.log(2 * math.pi)).sum(-1)
    assert torch.equal(gaussian_log_density(z, mu, logvar), old)


def test_monte_carlo_kl_terms_and_their_gradients_are_unchanged_bit_for_bit():
    g = torch.Generator().manual_seed(3)
    mu = torch.randn(6, 4, generator=g, requires_grad=True)
    logvar = torch.randn(6, 4, generator=g, requires_grad=True)
    eps = torch.randn(9, 6, 4, generator=g)

    def both(new: bool):
        z = mu + torch.exp(0.5 * logvar) * eps
        if new:
            log_q = gaussian_log_density(eps, logvar=logvar, standardised=True, dim=None, constant=False)
            log_p = gaussian_log_density(z, dim=None, constant=False)
        else:
            log_q, log_p = -0.5 * (eps.pow(2) + logvar), -0.5 * z.pow(2)
        value = (log_q - log_p).sum(-1).mean(-1)
        return (value, *torch.autograd.grad(value.sum(), (mu, logvar)))

    for new, old in zip(both(True), both(False)):
        assert torch.equal(new, old)


def test_chapter_5_fit_density_and_its_gradient_are_unchanged_bit_for_bit():
    x = torch.linspace(-8, 8, 2001, dtype=torch.float64)

    def both(new: bool, theta):
        t = theta.clone().requires_grad_(True)
        if new:
            log_q = gaussian_log_density(x, t[0], log_std=t[1], dim=None)
        else:
            log_q = -0.5 * ((x - t[0]) / t[1].exp()).pow(2) - t[1] - 0.5 * math.log(2 * math.pi)
        loss = (log_q.exp() * log_q).sum()  # something of the density, as the fits integrate
        return (log_q.detach(), *torch.autograd.grad(loss, t))

    for theta in (torch.tensor([0.3, -0.4], dtype=torch.float64), torch.tensor([-2.0, 0.9], dtype=torch.float64)):
        for new, old in zip(both(True, theta), both(False, theta)):
            assert torch.equal(new, old)
    stds = torch.linspace(0.2, 3.0, 9, dtype=torch.float64).log().unsqueeze(1)  # (S, 1), as kl_profile passes
    old = -0.5 * ((x - 1.5) / stds.exp()).pow(2) - stds - 0.5 * math.log(2 * math.pi)
    assert torch.equal(gaussian_log_density(x, torch.tensor(1.5, dtype=torch.float64), log_std=stds, dim=None), old)


def test_chapter_5_quadrature_integrand_is_unchanged_bit_for_bit():
    import numpy as np

    rng = np.random.default_rng(0)
    for mu, sigma in zip(rng.normal(size=200), np.exp(0.5 * rng.normal(size=200))):
        logvar = 2 * math.log(sigma)
        for z in mu + sigma * rng.uniform(-12, 12, size=20):
            u = (z - mu) / sigma
            old_q = -0.5 * u * u - math.log(sigma) - 0.5 * math.log(2 * math.pi)
            old_p = -0.5 * z * z - 0.5 * math.log(2 * math.pi)
            assert gaussian_log_density(u, logvar=logvar, standardised=True, dim=None) == old_q
            assert gaussian_log_density(z, dim=None) == old_p
