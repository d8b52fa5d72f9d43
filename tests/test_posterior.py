"""The grid posterior against models whose answer is known in closed form, and against the IWAE bound."""

import math

import pytest
import torch

from genvae import metrics, posterior
from genvae.models import ModelConfig, build_model


def linear_gaussian(seed: int = 0, dim_x: int = 5, noise: float = 0.7):
    """x = W z + b + s * e, z ~ N(0, I_2), e ~ N(0, I): p(x), p(z|x) and the ELBO of any Gaussian q are exact."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(dim_x, 2, generator=g, dtype=torch.float64)
    b = torch.randn(dim_x, generator=g, dtype=torch.float64)
    x = w @ torch.randn(2, generator=g, dtype=torch.float64) + b + noise * torch.randn(dim_x, generator=g, dtype=torch.float64)

    def log_joint(z):  # (G, 2) -> (G,)
        lik = torch.distributions.Normal(z @ w.T + b, noise).log_prob(x).sum(1)
        return lik + torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)

    marginal = torch.distributions.MultivariateNormal(b, w @ w.T + noise**2 * torch.eye(dim_x, dtype=torch.float64))
    prec = torch.eye(2, dtype=torch.float64) + w.T @ w / noise**2  # posterior precision
    cov = torch.linalg.inv(prec)
    post = torch.distributions.MultivariateNormal(cov @ w.T @ (x - b) / noise**2, cov)
    return log_joint, float(marginal.log_prob(x)), post, (w, b, x, noise)


def exact_elbo(mu, var, w, b, x, noise):
    """E_q[log p(x|z)] - KL(q || N(0, I)) for q = N(mu, diag(var)), in closed form."""
    resid = x - (w @ mu + b)
    e_sq = resid.pow(2).sum() + (w.pow(2) * var).sum()  # E_q ||x - W z - b||^2
    e_lik = -0.5 * e_sq / noise**2 - len(x) * (math.log(noise) + 0.5 * math.log(2 * math.pi))
    kl = 0.5 * (var + mu.pow(2) - 1 - var.log()).sum()
    return float(e_lik - kl)


def test_log_px_matches_the_closed_form_marginal():
    fn, log_px, post, _ = linear_gaussian()
    r = posterior.posterior_from_log_joint(fn, post.mean, post.covariance_matrix.diagonal().log(), (-6, 6, -6, 6), 301)
    assert r.log_px == pytest.approx(log_px, abs=1e-6)
    assert r.border < 1e-6


def test_posterior_on_the_grid_is_the_exact_posterior():
    fn, _, post, _ = linear_gaussian(seed=1)
    r = posterior.posterior_from_log_joint(fn, post.mean, torch.zeros(2), (-6, 6, -6, 6), 301)
    g2, g1 = torch.meshgrid(r.z2, r.z1, indexing="ij")
    exact = post.log_prob(torch.stack([g1, g2], -1))  # (n, n), rows = z2
    peak = exact > exact.max() - 10  # where the posterior has mass
    assert torch.allclose(r.log_posterior[peak], exact[peak], atol=1e-6)
    assert torch.allclose(r.posterior_mean, post.mean, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 2])
def test_elbo_and_gap_match_the_closed_form(seed):
    fn, log_px, post, (w, b, x, noise) = linear_gaussian(seed=seed)
    mu, var = post.mean + 0.3, post.covariance_matrix.diagonal() * 0.5  # a mean-field q that is off
    r = posterior.posterior_from_log_joint(fn, mu, var.log(), (-6, 6, -6, 6), 301)
    assert r.elbo == pytest.approx(exact_elbo(mu, var, w, b, x, noise), abs=1e-5)
    assert r.gap > 0.01  # q is not the posterior: the bound is loose
    assert r.elbo + r.gap == pytest.approx(log_px, abs=1e-6)


def test_gap_vanishes_when_q_is_the_posterior():
    # With a diagonal posterior covariance (orthogonal columns of W), a mean-field q can be exact.
    fn = lambda z: torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1) + torch.distributions.Normal(
        2 * z[:, 0], 0.5).log_prob(torch.tensor(1.0, dtype=torch.float64))
    var1 = 1 / (1 + 4 / 0.25)
    mu = torch.tensor([var1 * 2 * 1.0 / 0.25, 0.0], dtype=torch.float64)
    r = posterior.posterior_from_log_joint(fn, mu, torch.tensor([math.log(var1), 0.0]), (-6, 6, -6, 6), 301)
    assert r.gap == pytest.approx(0.0, abs=1e-6)


def test_a_q_cut_off_by_the_box_is_an_error():
    fn, _, post, _ = linear_gaussian()
    with pytest.raises(ValueError, match="mass"):
        posterior.posterior_from_log_joint(fn, torch.tensor([5.5, 0.0]), torch.zeros(2), (-6, 6, -6, 6), 101)


def test_vae_grid_log_px_bounds_the_iwae_bound_from_above_and_is_close():
    with torch.random.fork_rng():  # seeds only the initial weights of this throwaway model
        torch.manual_seed(0)
        model = build_model(ModelConfig("vae", latent_dim=2, hidden=(32,)))
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0)).round()
    for recon in ("mse", "bce"):
        r = [posterior.grid_posterior(model, xi, recon=recon, coarse=81, n=161) for xi in x]
        log_px = sum(p.log_px for p in r) / len(r)
        iwae = metrics.iwae_bound(model, x, k=2000, recon=recon)
        elbo = sum(p.elbo for p in r) / len(r)
        assert elbo <= iwae + 0.05 and iwae <= log_px + 0.05
        assert log_px - iwae < 0.1 * max(log_px - elbo, 0.05) + 0.05
        assert all(p.border < 1e-6 for p in r)


def test_grid_posterior_refuses_other_latent_sizes():
    model = build_model(ModelConfig("vae", latent_dim=3, hidden=(8,)))
    with pytest.raises(ValueError, match="2-D"):
        posterior.grid_posterior(model, torch.zeros(1, 28, 28))


def test_grid_elbo_is_the_grids_elbo_of_the_same_q():
    fn, _, post, _ = linear_gaussian(seed=3)
    mu, logvar = post.mean - 0.2, post.covariance_matrix.diagonal().log() + 0.4
    r = posterior.posterior_from_log_joint(fn, mu, logvar, (-6, 6, -6, 6), 201)
    assert float(posterior.grid_elbo(r, mu, logvar)) == pytest.approx(r.elbo, abs=1e-9)


@pytest.mark.parametrize("seed", [0, 2])
def test_split_gap_finds_the_best_mean_field_gaussian(seed):
    """For a Gaussian posterior N(m, S) the best diagonal q (reverse KL) is N(m, 1 / diag(S^-1)): the
    approximation gap is KL(q* || p(z|x)) in closed form, and the rest of the encoder's gap is amortisation."""
    fn, log_px, post, _ = linear_gaussian(seed=seed)
    mu, var = post.mean + 0.3, post.covariance_matrix.diagonal() * 0.5  # an encoder's q that is off
    r = posterior.posterior_from_log_joint(fn, mu, var.log(), (-6, 6, -6, 6), 201)
    split = posterior.split_gap(r, steps=500, lr=0.05)
    prec = torch.linalg.inv(post.covariance_matrix)
    best = torch.distributions.MultivariateNormal(post.mean, torch.diag(1 / prec.diagonal()))
    approx = float(torch.distributions.kl_divergence(best, post))
    assert split.approximation == pytest.approx(approx, abs=2e-3)
    assert split.total == pytest.approx(split.approximation + split.amortisation, abs=1e-9)
    assert split.amortisation > 0.01 and torch.allclose(split.best.mu, post.mean, atol=1e-2)


def test_split_gap_of_the_best_q_has_no_amortisation_gap():
    fn, _, post, _ = linear_gaussian(seed=4)
    prec = torch.linalg.inv(post.covariance_matrix)
    r = posterior.posterior_from_log_joint(fn, post.mean, (1 / prec.diagonal()).log(), (-6, 6, -6, 6), 201)
    assert posterior.split_gap(r).amortisation == pytest.approx(0, abs=1e-6)


def test_aggregate_log_density_of_one_gaussian_and_of_a_projection():
    import math as m
    pts = torch.tensor([[0.0, 0.0], [1.0, -2.0]])
    mu, logvar = torch.tensor([[0.5, -1.0]]), torch.tensor([[0.0, math.log(4.0)]])
    got = posterior.aggregate_log_density(mu, logvar, pts)
    want = torch.distributions.Normal(mu[0], torch.tensor([1.0, 2.0])).log_prob(pts).sum(1).double()
    assert torch.allclose(got, want, atol=1e-9)
    # a mixture of two equal components is the mean of their densities
    mu2, lv2 = torch.tensor([[0.0, 0.0], [2.0, 0.0]]), torch.zeros(2, 2)
    both = posterior.aggregate_log_density(mu2, lv2, pts).exp()
    each = [torch.distributions.Normal(c, 1.0).log_prob(pts).sum(1).exp() for c in mu2]
    assert torch.allclose(both, ((each[0] + each[1]) / 2).double(), atol=1e-9)
    # in a plane: N(0, I) codes in 4-D project to N(project(0), I), whatever the plane
    from genvae import latent
    plane = latent.CodePlane(torch.randn(200, 4, generator=torch.Generator().manual_seed(0)))
    centre = plane.project(torch.zeros(1, 4))[0]
    got = posterior.aggregate_log_density(torch.zeros(1, 4), torch.zeros(1, 4), pts, plane=plane)
    want = -0.5 * ((pts - centre) ** 2).sum(1) - m.log(2 * m.pi)
    assert torch.allclose(got, want.double(), atol=1e-6)
    with pytest.raises(ValueError):
        posterior.aggregate_log_density(torch.zeros(1, 4), torch.zeros(1, 4), pts)


def test_prior_hole_mass_is_zero_for_the_prior_and_large_for_a_narrow_posterior():
    z1 = torch.linspace(-5.95, 5.95, 120, dtype=torch.float64)
    g2, g1 = torch.meshgrid(z1, z1, indexing="ij")
    pts, area = torch.stack([g1.reshape(-1), g2.reshape(-1)], 1), float(z1[1] - z1[0]) ** 2
    prior_q = posterior.aggregate_log_density(torch.zeros(1, 2), torch.zeros(1, 2), pts)
    assert posterior.prior_hole_mass(prior_q, pts, area) == 0.0
    narrow = posterior.aggregate_log_density(torch.zeros(1, 2), torch.full((1, 2), math.log(0.01)), pts)
    assert posterior.prior_hole_mass(narrow, pts, area) > 0.9
