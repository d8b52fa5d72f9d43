"""The KL divergence, worked by hand: the helpers of chapter 5.

The closed forms themselves live in :mod:`genvae.models.losses` (``discrete_kl``, ``gaussian_kl_per_dim``,
``gaussian_kl``, ``monte_carlo_kl_with_error``). This module holds what the chapter builds around them:

* :func:`term_table`: the terms of a discrete KL, one row per outcome, for a Markdown table;
* :func:`prior_kl_reference` and :func:`quadrature_kl`: two computations of KL(q || N(0, I)) that do not
  use the closed form (``torch.distributions``, and numerical integration of the definition);
* :func:`kl_1d` and :func:`prior_kl_map`: the one-dimensional KL at one point and on a grid of means and
  standard deviations (the map :func:`genvae.book.plots.kl_landscape` draws);
* :func:`sign_dropped_kl`: the closed form without its leading minus sign, which is -KL;
* :func:`descend`: plain gradient descent on a function of ``(mu, log sigma^2)``;
* :class:`Mixture1D`, :func:`grid_kl` and :func:`fit_gaussian`: a single Gaussian fitted to a two-mode
  target by minimising the forward KL(p || q) or the reverse KL(q || p).

    >>> from genvae import divergence
    >>> round(divergence.kl_1d(1.0, 1.0), 4)   # mu = 1, sigma = 1: half a nat
    0.5
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor
from torch.distributions import Independent, Normal, kl_divergence

from ..models import losses
from ..gaussian import gaussian_log_density

__all__ = [
    "term_table", "prior_kl_reference", "quadrature_kl", "kl_1d", "prior_kl_map", "sign_dropped_kl", "descend",
    "Mixture1D", "TWO_MODES", "grid_kl", "GaussianFit", "fit_gaussian", "kl_profile",
]

Objective = Callable[[Tensor, Tensor], Tensor]


# --------------------------------------------------------------------------- discrete


def term_table(p: Sequence[float], q: Sequence[float], outcome: str = "face") -> list[dict]:
    """The terms p_i log(p_i / q_i) of KL(p || q), one row per outcome plus a final ``sum`` row.

    ``p`` and ``q`` are probability vectors of the same length K with every entry positive (each row
    shows the ratio p_i / q_i). Columns: the outcome (numbered from 1), p_i, q_i, p_i / q_i,
    log(p_i / q_i) and the term. The ``sum`` row adds the probabilities (both 1) and the terms (the KL).
    """
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    if p.shape != q.shape or p.ndim != 1:
        raise ValueError(f"p and q must be vectors of one length, got shapes {p.shape} and {q.shape}")
    if (p <= 0).any() or (q <= 0).any():
        raise ValueError("term_table needs every probability positive (a zero makes a ratio undefined)")
    log_ratio = np.log(p) - np.log(q)  # (K,)
    terms = p * log_ratio  # (K,)
    rows = [
        {outcome: i, "p_i": pi, "q_i": qi, "p_i / q_i": pi / qi, "log(p_i / q_i)": lr, "p_i log(p_i / q_i)": t}
        for i, (pi, qi, lr, t) in enumerate(zip(p, q, log_ratio, terms), start=1)
    ]
    rows.append({outcome: "sum", "p_i": p.sum(), "q_i": q.sum(), "p_i / q_i": "", "log(p_i / q_i)": "",
                 "p_i log(p_i / q_i)": terms.sum()})
    return rows


# --------------------------------------------------------------------------- a Gaussian against the prior


def prior_kl_reference(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(q || N(0, I)) from ``torch.distributions``, summed over latents and averaged over the batch.

    ``mu`` and ``logvar`` are ``(B, D)``. An implementation written by other people, with the same
    reduction as :func:`genvae.models.losses.gaussian_kl`, so the two can be compared number for number.
    """
    q = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)
    p = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    return kl_divergence(q, p).mean()  # (B,) -> scalar


def _quad_1d(mu: float, sigma: float) -> float:
    """KL(N(mu, sigma^2) || N(0, 1)) by numerical integration of q(z) [log q(z) - log p(z)]."""
    from scipy.integrate import quad

    logvar = 2 * math.log(sigma)

    def integrand(z: float) -> float:
        log_q = gaussian_log_density((z - mu) / sigma, logvar=logvar, standardised=True, dim=None)
        log_p = gaussian_log_density(z, dim=None)
        return math.exp(log_q) * (log_q - log_p)

    # q puts all but ~1e-30 of its mass within 12 standard deviations of its mean.
    value, _ = quad(integrand, mu - 12 * sigma, mu + 12 * sigma, points=[mu], limit=200,
                    epsabs=1e-13, epsrel=1e-11)
    return value


def quadrature_kl(mu: Tensor, logvar: Tensor) -> float:
    """KL(q || N(0, I)) by numerical integration (``scipy.integrate.quad``), one dimension at a time.

    ``mu`` and ``logvar`` are ``(B, D)``. A diagonal Gaussian and the prior both factorise over the
    dimensions, so the KL is a sum of one-dimensional integrals; each is integrated from the
    definition, without the closed form. Reduced like :func:`genvae.models.losses.gaussian_kl`: summed over
    latents, averaged over the batch.
    """
    mu_np = mu.detach().cpu().double().numpy()
    sigma_np = np.exp(0.5 * logvar.detach().cpu().double().numpy())
    per_dim = np.vectorize(_quad_1d)(mu_np, sigma_np)  # (B, D)
    return float(per_dim.sum(1).mean())


def kl_1d(mu: float, sigma: float) -> float:
    """KL(N(mu, sigma^2) || N(0, 1)) in nats, from the closed form (:func:`genvae.models.losses.gaussian_kl_per_dim`)."""
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    mu_t = torch.tensor(float(mu), dtype=torch.float64)
    logvar_t = torch.tensor(2 * math.log(sigma), dtype=torch.float64)
    return float(losses.gaussian_kl_per_dim(mu_t, logvar_t))


def prior_kl_map(mu_axis, sigma_axis) -> np.ndarray:
    """KL(N(mu, sigma^2) || N(0, 1)) on the grid of every ``mu`` in ``mu_axis`` and ``sigma`` in ``sigma_axis``.

    Returns a float64 array of shape ``(len(sigma_axis), len(mu_axis))``: rows follow sigma and columns mu,
    the layout ``matplotlib``'s ``contourf(mu_axis, sigma_axis, kl)`` expects. Computed with the closed form
    (:func:`genvae.models.losses.gaussian_kl_per_dim`); every sigma must be positive.
    """
    mu_axis = np.asarray(mu_axis, dtype=np.float64)
    sigma_axis = np.asarray(sigma_axis, dtype=np.float64)
    if mu_axis.ndim != 1 or sigma_axis.ndim != 1:
        raise ValueError(f"mu_axis and sigma_axis must be 1-D, got shapes {mu_axis.shape} and {sigma_axis.shape}")
    if (sigma_axis <= 0).any():
        raise ValueError("every sigma must be positive")
    mu_grid, sigma_grid = np.meshgrid(mu_axis, sigma_axis)  # (S, M) each
    kl = losses.gaussian_kl_per_dim(torch.from_numpy(mu_grid), torch.from_numpy(2 * np.log(sigma_grid)))
    return kl.numpy()


def sign_dropped_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """The KL term without its leading minus sign, 1/2 (1 + log sigma^2 - mu^2 - sigma^2), per dimension, unreduced.

    It lacks the leading minus sign, so it equals -KL: never positive, zero only at the prior. It is the
    correct *ELBO* term (which is maximised) and a wrong *loss* (which is minimised). Shapes as
    :func:`genvae.models.losses.gaussian_kl_per_dim`.
    """
    return 0.5 * (1 + logvar - mu.pow(2) - logvar.exp())


def descend(objective: Objective, start: Tensor, steps: int, lr: float) -> Tensor:
    """Plain gradient descent on ``objective(mu, logvar)``, for several starting points at once.

    ``start`` is ``(P, 2)``: one row per point, columns ``mu`` and ``log sigma^2``. ``objective`` maps
    ``(P, 1)`` means and log-variances to per-point values (any shape; they are summed, so each point
    follows its own gradient). Each step is ``theta <- theta - lr * grad``, with the gradient from
    autograd. Returns the whole path, ``(steps + 1, P, 2)``, starting with ``start``.
    """
    theta = start.detach().clone().requires_grad_(True)
    path = [start.detach().clone()]
    for _ in range(steps):
        grad, = torch.autograd.grad(objective(theta[:, :1], theta[:, 1:]).sum(), theta)
        with torch.no_grad():
            theta -= lr * grad
        path.append(theta.detach().clone())
    return torch.stack(path)  # (steps + 1, P, 2)


# --------------------------------------------------------------------------- forward against reverse KL


@dataclass(frozen=True)
class Mixture1D:
    """A mixture of one-dimensional Gaussians: ``weights`` (summing to 1), ``means`` and ``stds``."""

    weights: tuple[float, ...]
    means: tuple[float, ...]
    stds: tuple[float, ...]

    def __post_init__(self):
        if not (len(self.weights) == len(self.means) == len(self.stds)):
            raise ValueError("weights, means and stds must have one length")
        if abs(sum(self.weights) - 1) > 1e-9 or min(self.weights) <= 0 or min(self.stds) <= 0:
            raise ValueError("weights must be positive and sum to 1, stds positive")

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) for any shape of ``x`` (same shape out)."""
        w = torch.tensor(self.weights, dtype=x.dtype, device=x.device)
        m = torch.tensor(self.means, dtype=x.dtype, device=x.device)
        s = torch.tensor(self.stds, dtype=x.dtype, device=x.device)
        return torch.logsumexp(w.log() + Normal(m, s).log_prob(x.unsqueeze(-1)), dim=-1)

    def mean(self) -> float:
        """E[x] = sum_k w_k m_k."""
        return float(sum(w * m for w, m in zip(self.weights, self.means)))

    def variance(self) -> float:
        """Var[x] = sum_k w_k (s_k^2 + m_k^2) - E[x]^2 (the law of total variance)."""
        second = sum(w * (s * s + m * m) for w, m, s in zip(self.weights, self.means, self.stds))
        return float(second - self.mean() ** 2)

    def grid(self, n: int = 4001, width: float = 10.0) -> Tensor:
        """``n`` evenly spaced points covering every component to ``width`` standard deviations, float64."""
        lo = min(m - width * s for m, s in zip(self.means, self.stds))
        hi = max(m + width * s for m, s in zip(self.means, self.stds))
        return torch.linspace(lo, hi, n, dtype=torch.float64)


# The chapter's target: two well-separated modes of unequal weight, so the reverse KL has a best mode.
TWO_MODES = Mixture1D(weights=(0.6, 0.4), means=(-2.0, 2.0), stds=(0.5, 0.5))


def grid_kl(log_a: Tensor, log_b: Tensor, x: Tensor) -> Tensor:
    """KL(a || b) = integral of a(x) [log a(x) - log b(x)] dx, by the trapezoidal rule on the grid ``x``.

    ``log_a`` and ``log_b`` are log-densities evaluated at ``x`` (shape ``(..., N)``, the grid on the
    last axis). Differentiable, so it can be minimised with autograd. Accurate when the grid covers
    both densities' mass and resolves the narrower one.
    """
    integrand = log_a.exp() * (log_a - log_b)  # (..., N)
    return torch.trapezoid(integrand, x, dim=-1)


@dataclass
class GaussianFit:
    """A single Gaussian q = N(mean, std^2) fitted to a target by one direction of the KL."""

    direction: str  # "forward": KL(p || q); "reverse": KL(q || p)
    mean: float
    std: float
    kl: float  # the minimised divergence, nats
    forward_kl: float  # KL(p || q) at the fit
    reverse_kl: float  # KL(q || p) at the fit


def fit_gaussian(
    target: Mixture1D, direction: str, init_mean: float = 0.0, init_std: float = 1.0, max_iter: int = 200
) -> GaussianFit:
    """Fit q = N(mean, std^2) to ``target`` by minimising KL(p || q) (``"forward"``) or KL(q || p)
    (``"reverse"``) over ``mean`` and ``log std``.

    Both divergences are integrated on ``target.grid(n=2001)`` (:func:`grid_kl`) and minimised with L-BFGS
    from ``(init_mean, init_std)``, in float64. The forward KL has a single minimum, at the target's
    mean and variance (moment matching). The reverse KL of a two-mode target has a minimum at each mode
    when the modes are far apart (and, for :data:`TWO_MODES`, a higher one for a wide q between them),
    so the start decides which one the fit finds.
    """
    if direction not in ("forward", "reverse"):
        raise ValueError(f"direction must be 'forward' or 'reverse', got {direction!r}")
    x = target.grid(n=2001)  # (N,)
    log_p = target.log_prob(x)  # (N,)
    theta = torch.tensor([init_mean, math.log(init_std)], dtype=torch.float64, requires_grad=True)

    def divergences(t: Tensor) -> tuple[Tensor, Tensor]:
        log_q = gaussian_log_density(x, t[0], log_std=t[1], dim=None)
        return grid_kl(log_p, log_q, x), grid_kl(log_q, log_p, x)

    opt = torch.optim.LBFGS([theta], lr=1.0, max_iter=max_iter, tolerance_grad=1e-12,
                            tolerance_change=1e-15, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        fwd, rev = divergences(theta)
        loss = fwd if direction == "forward" else rev
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        fwd, rev = divergences(theta)
    theta = theta.detach()
    return GaussianFit(direction=direction, mean=float(theta[0]), std=float(theta[1].exp()),
                       kl=float(fwd if direction == "forward" else rev), forward_kl=float(fwd),
                       reverse_kl=float(rev))


def kl_profile(target: Mixture1D, means: Tensor, stds: Tensor) -> tuple[Tensor, Tensor]:
    """The forward and reverse KL of q = N(m, s^2) against ``target``, each minimised over s in ``stds``,
    for every m in ``means``. Returns two ``(M,)`` tensors: min_s KL(p || q) and min_s KL(q || p).

    A picture of the two landscapes along the mean: one valley for the forward KL, one per mode for
    the reverse KL.
    """
    x = target.grid(n=1201)  # (N,)
    log_p = target.log_prob(x)  # (N,)
    forward, reverse = [], []
    for m in means.double():
        log_q = gaussian_log_density(x, m, log_std=stds.double().log().unsqueeze(1), dim=None)  # (S, N)
        forward.append(grid_kl(log_p.expand_as(log_q), log_q, x).min())
        reverse.append(grid_kl(log_q, log_p.expand_as(log_q), x).min())
    return torch.stack(forward), torch.stack(reverse)
