"""Chapter 1's toy world: a known 2-D density p(x), samples from it, and models fitted to them.

Because p(x) is known exactly here, the quality of a fitted model p_theta can be
measured the way the rest of the book cannot: by comparing held-out
log-likelihoods with the truth. The gap E_p[log p(x) - log p_theta(x)] is the
KL divergence KL(p || p_theta), which chapter 5 studies.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.mixture import GaussianMixture
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal

__all__ = ["toy_density", "fit_gmm", "mean_log_likelihood", "highest_density_level"]


def toy_density(n_components: int = 6, radius: float = 4.0, seed: int = 0) -> MixtureSameFamily:
    """A mixture of ``n_components`` elongated Gaussians placed around a ring: the "true" p(x).

    Returns a ``torch.distributions`` object with ``.sample`` and ``.log_prob``.
    """
    g = torch.Generator().manual_seed(seed)
    angles = torch.arange(n_components) * (2 * torch.pi / n_components)
    means = radius * torch.stack([angles.cos(), angles.sin()], 1)  # (K, 2)
    # Each component is stretched along the ring's tangent, with a random width.
    tangent = torch.stack([-angles.sin(), angles.cos()], 1)
    normal = torch.stack([angles.cos(), angles.sin()], 1)
    long = 0.6 + 0.6 * torch.rand(n_components, generator=g)
    short = 0.15 + 0.15 * torch.rand(n_components, generator=g)
    covs = (long[:, None, None] ** 2) * tangent[:, :, None] * tangent[:, None, :] + \
           (short[:, None, None] ** 2) * normal[:, :, None] * normal[:, None, :]  # (K, 2, 2)
    weights = torch.softmax(torch.randn(n_components, generator=g) * 0.5, 0)
    return MixtureSameFamily(Categorical(probs=weights), MultivariateNormal(means, covariance_matrix=covs))


def fit_gmm(x: np.ndarray, n_components: int, seed: int = 0) -> GaussianMixture:
    """Maximum-likelihood Gaussian mixture (EM, full covariances) fitted to points ``(N, 2)``."""
    return GaussianMixture(n_components, covariance_type="full", random_state=seed, n_init=3).fit(np.asarray(x))


def mean_log_likelihood(model, x) -> float:
    """Average log-density of points ``(N, 2)`` in nats: a torch distribution or a fitted sklearn model."""
    if isinstance(model, torch.distributions.Distribution):
        return float(model.log_prob(torch.as_tensor(x, dtype=torch.float32)).mean())
    return float(model.score(np.asarray(x)))


def highest_density_level(log_density_of_samples: np.ndarray, mass: float = 0.9) -> float:
    """The log-density level whose super-level set holds ``mass`` of the probability.

    Estimated from the log-density at samples of the same distribution: 90% of
    samples lie where the density is above the 10% quantile of those values.
    """
    return float(np.quantile(np.asarray(log_density_of_samples), 1 - mass))
