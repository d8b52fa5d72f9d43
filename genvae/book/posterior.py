"""The exact posterior of a 2-D latent model, by brute force on a grid, and the ELBO's gap.

With a 2-D code, the integral that makes a VAE's likelihood intractable in general,

    log p(x) = log ∫ p(x|z) p(z) dz,

is a 2-D integral that a fine grid of codes evaluates to high accuracy. The same grid holds the exact
(normalised) posterior p(z|x) = p(x|z) p(z) / p(x), which can then be compared with the encoder's
Gaussian q(z|x), and it splits log p(x) into the two terms of

    log p(x) = ELBO(x) + KL(q(z|x) || p(z|x)).

The grid is found in two passes (:func:`grid_posterior`): a coarse grid over a box that holds almost all
of the prior's mass locates the posterior, then a fine grid over the region where the posterior *or* q
has mass does the integrals. Everything is a sum over grid cells (the midpoint rule) in float64, with
log-sum-exp for the normalising constant.

    >>> import math, torch
    >>> r = posterior_from_log_joint(lambda z: -0.5 * (z.pow(2).sum(1) + 2 * math.log(2 * math.pi)),
    ...                              torch.zeros(2), torch.zeros(2))
    >>> abs(r.log_px) < 1e-5, abs(r.gap) < 1e-5  # p(z) alone integrates to 1; q = p(z|x) = N(0, I)
    (True, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..gaussian import LOG2PI, gaussian_log_density
from ..models.losses import decoder_log_prob
from ..utils import batched, device_of, eval_mode

__all__ = ["GridPosterior", "log_joint", "posterior_from_log_joint", "grid_posterior",
           "grid_elbo", "GapSplit", "split_gap", "aggregate_log_density", "prior_hole_mass",
           "prior_hole_mask"]

Box = tuple[float, float, float, float]  # (z1 min, z1 max, z2 min, z2 max)


@dataclass
class GridPosterior:
    """The exact posterior of one image on a grid, the encoder's q on the same grid, and the bound's terms.

    All log-values are in nats. ``z1`` and ``z2`` are the grid's axes; the 2-D arrays are indexed
    ``[i2, i1]`` (rows = z2, as matplotlib's ``contour(z1, z2, values)`` expects).
    """

    z1: torch.Tensor  # (n,) grid coordinates along z1
    z2: torch.Tensor  # (n,) grid coordinates along z2
    log_joint: torch.Tensor  # (n, n) log p(x, z) = log p(x|z) + log p(z)
    log_q: torch.Tensor  # (n, n) log q(z|x), the encoder's Gaussian
    log_px: float  # log p(x) = log ∫ p(x, z) dz, by the midpoint rule
    elbo: float  # E_q[log p(x, z) - log q(z|x)], integrated on the same grid
    mu: torch.Tensor  # (2,) q's mean
    logvar: torch.Tensor  # (2,) q's log-variances
    border: float  # the largest posterior density on the grid's edge, relative to its peak (small = no mass cut off)

    @property
    def gap(self) -> float:
        """log p(x) - ELBO = KL(q(z|x) || p(z|x)) >= 0."""
        return self.log_px - self.elbo

    @property
    def log_posterior(self) -> torch.Tensor:
        """log p(z|x) on the grid, ``(n, n)``."""
        return self.log_joint - self.log_px

    @property
    def cell_area(self) -> float:
        return float((self.z1[1] - self.z1[0]) * (self.z2[1] - self.z2[0]))

    @property
    def posterior_mean(self) -> torch.Tensor:
        """E_p(z|x)[z], ``(2,)``."""
        w = (self.log_posterior.exp() * self.cell_area)
        return torch.stack([(w.sum(0) * self.z1).sum(), (w.sum(1) * self.z2).sum()])


@torch.no_grad()
def log_joint(model: nn.Module, x: torch.Tensor, z: torch.Tensor, recon: str = "mse", batch_size: int = 8192) -> torch.Tensor:
    """log p(x|z) + log p(z) of one image ``x`` ``(1, 28, 28)`` at codes ``z`` ``(G, D)``: ``(G,)`` in float64.

    The decoder's likelihood is the one the model was trained with (``recon``, see
    :func:`genvae.models.losses.decoder_log_prob`, constants included), the prior is N(0, I).
    """
    xb = x.to(device_of(model)).unsqueeze(0)  # (1, 1, 28, 28)

    def log_p(zb: torch.Tensor) -> torch.Tensor:  # codes (g, D) -> (g,)
        log_px_z = decoder_log_prob(model.decode(zb), xb, recon)
        log_pz = gaussian_log_density(zb)  # the prior N(0, I)
        return log_px_z.double() + log_pz.double()

    return batched(model, log_p, z, batch_size=batch_size)


def _grid(box: Box, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cell centres of an ``n`` x ``n`` midpoint grid over ``box``: axes ``(n,)``, ``(n,)`` and points ``(n*n, 2)``."""
    a0, a1, b0, b1 = box
    h1, h2 = (a1 - a0) / n, (b1 - b0) / n
    z1 = torch.linspace(a0 + h1 / 2, a1 - h1 / 2, n, dtype=torch.float64)
    z2 = torch.linspace(b0 + h2 / 2, b1 - h2 / 2, n, dtype=torch.float64)
    g2, g1 = torch.meshgrid(z2, z1, indexing="ij")  # rows = z2
    return z1, z2, torch.stack([g1.reshape(-1), g2.reshape(-1)], 1)


def posterior_from_log_joint(
    log_joint_fn: Callable[[torch.Tensor], torch.Tensor],
    mu: torch.Tensor,
    logvar: torch.Tensor,
    box: Box = (-5.0, 5.0, -5.0, 5.0),
    n: int = 201,
) -> GridPosterior:
    """Integrate a 2-D log-joint ``log_joint_fn(z (G, 2)) -> (G,)`` on an ``n`` x ``n`` grid over ``box``.

    ``mu`` and ``logvar`` ``(2,)`` describe q(z|x). The box must hold the mass of both the posterior
    and q: :attr:`GridPosterior.border` reports how much density the posterior still has on the edge,
    and q's mass inside the box is checked (an error if q is cut off, since the ELBO would then be wrong).
    """
    mu, logvar = mu.double().reshape(2), logvar.double().reshape(2)
    z1, z2, pts = _grid(box, n)
    area = float((z1[1] - z1[0]) * (z2[1] - z2[0]))
    lj = log_joint_fn(pts).double().reshape(n, n)
    log_px = float(torch.logsumexp(lj.reshape(-1), 0)) + math.log(area)
    lq = gaussian_log_density(pts, mu, logvar).reshape(n, n)
    q_cell = lq.exp() * area  # q's probability of each cell
    mass = float(q_cell.sum())
    if not 0.999 < mass < 1.001:
        raise ValueError(f"the grid holds {mass:.4f} of q's mass: widen the box or refine the grid")
    q_cell = q_cell / mass
    elbo = float((q_cell * (lj - lq)).sum())
    edge = torch.cat([lj[0], lj[-1], lj[:, 0], lj[:, -1]])
    border = float((edge.max() - lj.max()).exp())
    return GridPosterior(z1, z2, lj, lq, log_px, elbo, mu, logvar, border)


def _mass_box(lj: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor, drop: float) -> Box:
    """The smallest axis-aligned box around the grid points whose log-value is within ``drop`` of the peak."""
    keep = lj >= lj.max() - drop  # (n, n), rows = z2
    rows, cols = keep.any(1).nonzero().squeeze(1), keep.any(0).nonzero().squeeze(1)
    return float(z1[cols.min()]), float(z1[cols.max()]), float(z2[rows.min()]), float(z2[rows.max()])


@torch.no_grad()
def grid_posterior(
    model: nn.Module,
    x: torch.Tensor,
    recon: str = "mse",
    extent: float = 5.0,
    coarse: int = 121,
    n: int = 201,
    q_sigmas: float = 6.0,
) -> GridPosterior:
    """The exact posterior p(z|x) of a 2-D VAE for one image ``x`` ``(1, 28, 28)``, and q(z|x) beside it.

    Pass 1 evaluates log p(x, z) on a ``coarse`` grid over ``[-extent, extent]^2`` (the prior's mass
    beyond 5 is below 1e-5) to locate the posterior. Pass 2 integrates on an ``n`` x ``n`` grid over a
    box holding the posterior's mass (every point within 30 nats of the peak, plus two coarse cells on
    each side) and q's mass (``q_sigmas`` standard deviations around its mean).
    """
    if model.config.latent_dim != 2:
        raise ValueError(f"the grid posterior needs a 2-D code, the model has {model.config.latent_dim}")
    with eval_mode(model) as dev:
        mu, logvar = (t[0].double().cpu() for t in model.encode(x.to(dev).unsqueeze(0)))

    def fn(z: torch.Tensor) -> torch.Tensor:
        return log_joint(model, x, z.float(), recon)

    z1, z2, pts = _grid((-extent, extent, -extent, extent), coarse)
    a0, a1, b0, b1 = _mass_box(fn(pts).reshape(coarse, coarse), z1, z2, drop=30.0)
    pad = 2 * 2 * extent / coarse
    sd = (0.5 * logvar).exp() * q_sigmas
    box = (min(a0 - pad, float(mu[0] - sd[0])), max(a1 + pad, float(mu[0] + sd[0])),
           min(b0 - pad, float(mu[1] - sd[1])), max(b1 + pad, float(mu[1] + sd[1])))
    return posterior_from_log_joint(fn, mu, logvar, box, n)


def grid_elbo(r: GridPosterior, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """The ELBO of another Gaussian q = N(``mu``, diag exp(``logvar``)) for ``r``'s image, on ``r``'s grid.

    It reuses the log-joint that ``r`` already holds (no decoder pass) and is differentiable in ``mu`` and
    ``logvar`` (each ``(2,)``), so q can be optimised for this one image. With ``r.mu, r.logvar`` it gives
    ``r.elbo``.
    """
    g2, g1 = torch.meshgrid(r.z2, r.z1, indexing="ij")  # rows = z2, as r's arrays
    pts = torch.stack([g1.reshape(-1), g2.reshape(-1)], 1)
    lq = gaussian_log_density(pts, mu.double().reshape(2), logvar.double().reshape(2))
    q_cell = lq.exp() * r.cell_area
    q_cell = q_cell / q_cell.sum()
    return (q_cell * (r.log_joint.reshape(-1) - lq)).sum()


@dataclass
class GapSplit:
    """``log p(x) - ELBO`` of the encoder's q split in two (Cremer et al., 2018), in nats.

    ``approximation`` = log p(x) - ELBO(q*), the cost of the Gaussian family: q* is the best diagonal
    Gaussian for this image alone. ``amortisation`` = ELBO(q*) - ELBO(q), the cost of one encoder serving
    every image. They add up to ``total``, the gap of the encoder's own q.
    """

    total: float
    approximation: float
    amortisation: float
    best: GridPosterior  # q* on the same grid (its mu, logvar, elbo)


def split_gap(r: GridPosterior, steps: int = 300, lr: float = 0.05) -> GapSplit:
    """Optimise q's ``mu`` and ``logvar`` for ``r``'s image alone (``steps`` of Adam on :func:`grid_elbo`,
    started at the encoder's q) and split the encoder's gap into approximation and amortisation gaps.

    The optimised q is evaluated again by :func:`posterior_from_log_joint` on the same grid, which checks
    that the grid holds its mass. If the optimiser ends below the encoder's own q, the encoder's q is kept
    as the best Gaussian found (the amortisation gap is then 0).
    """
    mu = r.mu.detach().clone().double().requires_grad_(True)
    logvar = r.logvar.detach().clone().double().requires_grad_(True)
    opt = torch.optim.Adam([mu, logvar], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        (-grid_elbo(r, mu, logvar)).backward()
        opt.step()
    h1, h2 = float(r.z1[1] - r.z1[0]), float(r.z2[1] - r.z2[0])
    box = (float(r.z1[0]) - h1 / 2, float(r.z1[-1]) + h1 / 2, float(r.z2[0]) - h2 / 2, float(r.z2[-1]) + h2 / 2)
    stored = r.log_joint.reshape(-1)
    best = posterior_from_log_joint(lambda z: stored, mu.detach(), logvar.detach(), box, len(r.z1))
    if best.elbo < r.elbo:
        best = r
    return GapSplit(total=r.gap, approximation=best.gap, amortisation=best.elbo - r.elbo, best=best)


def aggregate_log_density(mu: torch.Tensor, logvar: torch.Tensor, points: torch.Tensor, plane=None,
                          chunk: int = 256) -> torch.Tensor:
    """log q(z) of the aggregate posterior q(z) = (1/N) sum_n N(z; mu_n, diag sigma_n^2), at 2-D ``points``.

    ``mu`` and ``logvar`` ``(N, D)`` are the encoder's outputs for N images; ``points`` is ``(G, 2)``; the
    result is ``(G,)`` in float64. It is exact: the mixture of the images' Gaussians, not a kernel estimate.
    With D = 2 and no ``plane`` the points are codes. With a ``plane`` (a :class:`genvae.analysis.latent.CodePlane`)
    they are plane coordinates, and the density is that of the codes' projection: each q(z|x_n) projects to
    a 2-D Gaussian with mean ``plane.project(mu_n)`` and covariance ``B diag(sigma_n^2) B^T``. The prior
    N(0, I) projects to N(``plane.project(0)``, I), since the plane's basis B is orthonormal.
    """
    mu, var = mu.detach().double().cpu(), logvar.detach().double().cpu().exp()
    if plane is None:
        if mu.shape[1] != 2:
            raise ValueError(f"codes of {mu.shape[1]} dimensions need a plane to be drawn in 2-D")
        basis, centre = torch.eye(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    else:
        basis, centre = plane.basis.double(), plane.mean.double()
    m = (mu - centre) @ basis.T  # (N, 2) the projected means
    cov = torch.einsum("id,nd,jd->nij", basis, var, basis)  # (N, 2, 2) the projected covariances
    a, b, c = cov[:, 0, 0], cov[:, 0, 1], cov[:, 1, 1]
    det = a * c - b * b
    out = []
    for p in points.double().split(chunk):
        d = p[:, None, :] - m[None]  # (g, N, 2)
        quad = (c * d[..., 0] ** 2 - 2 * b * d[..., 0] * d[..., 1] + a * d[..., 1] ** 2) / det
        log_n = -0.5 * quad - 0.5 * det.log() - LOG2PI  # (g, N)
        out.append(torch.logsumexp(log_n, 1) - math.log(len(m)))
    return torch.cat(out)


def prior_hole_mass(log_q: torch.Tensor, points: torch.Tensor, cell_area: float, centre: torch.Tensor | None = None,
                    ratio: float = 0.1) -> float:
    """The prior's probability mass, on a grid of 2-D ``points`` ``(G, 2)`` with cells of ``cell_area``, where
    the aggregate posterior's density ``log_q`` ``(G,)`` is below ``ratio`` times the prior's.

    The prior is N(``centre``, I) (N(0, I) by default; in a plane, see :func:`aggregate_log_density`). A code
    drawn from the prior there is one the decoder has rarely met in training: a "prior hole".
    """
    log_p = _log_prior_2d(points, centre)
    return float((log_p.exp() * cell_area)[prior_hole_mask(log_q, points, centre, ratio)].sum())


def _log_prior_2d(points: torch.Tensor, centre: torch.Tensor | None) -> torch.Tensor:
    centre = torch.zeros(2, dtype=torch.float64) if centre is None else centre.double()
    return -0.5 * ((points.double() - centre) ** 2).sum(1) - LOG2PI


def prior_hole_mask(log_q: torch.Tensor, points: torch.Tensor, centre: torch.Tensor | None = None,
                    ratio: float = 0.1) -> torch.Tensor:
    """Which 2-D ``points`` ``(G, 2)`` lie in a prior hole: the aggregate posterior's density ``log_q`` ``(G,)``
    is below ``ratio`` times the density of the prior N(``centre``, I) there. ``(G,)`` booleans."""
    return log_q.double() < _log_prior_2d(points, centre) + math.log(ratio)
