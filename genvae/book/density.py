"""Chapter 1's toy world: a known 2-D density p(x), samples from it, and models fitted to them.

Because p(x) is known exactly here, the quality of a fitted model p_theta can be
measured the way the rest of the book cannot: by comparing held-out
log-likelihoods with the truth. The gap E_p[log p(x) - log p_theta(x)] is the
KL divergence KL(p || p_theta), which chapter 5 studies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.mixture import GaussianMixture
from torch.distributions import Categorical, Distribution, MixtureSameFamily, MultivariateNormal

__all__ = [
    "toy_density", "fit_gmm", "mean_log_likelihood", "highest_density_level",
    "as_torch", "log_density", "model_samples", "region_level", "fraction_inside", "log10_relative_density",
    "LogLikelihoodDifference", "log_likelihood_difference",
]

# A density model here is a ``torch.distributions`` object (the known truth) or a fitted
# sklearn ``GaussianMixture`` (a model of it); the helpers below accept either.
DensityModel = Distribution | GaussianMixture


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


def as_torch(model: DensityModel) -> Distribution:
    """The same density as a ``torch.distributions`` object (float64 for a fitted mixture).

    A fitted ``GaussianMixture`` (full covariances) becomes a ``MixtureSameFamily`` of
    ``MultivariateNormal`` components with the fitted weights, means and covariances.
    """
    if isinstance(model, Distribution):
        return model
    if model.covariance_type != "full":
        raise ValueError(f"only full-covariance mixtures are supported, got {model.covariance_type!r}")
    weights = torch.as_tensor(model.weights_, dtype=torch.float64)  # (K,)
    means = torch.as_tensor(model.means_, dtype=torch.float64)  # (K, D)
    covs = torch.as_tensor(model.covariances_, dtype=torch.float64)  # (K, D, D)
    return MixtureSameFamily(Categorical(probs=weights), MultivariateNormal(means, covariance_matrix=covs))


def log_density(model: DensityModel, points) -> np.ndarray:
    """log p(x) in nats at each of the points ``(N, D)``, as an ``(N,)`` array."""
    if isinstance(model, Distribution):
        dtype = model.mean.dtype if model.mean.is_floating_point() else torch.float32
        return model.log_prob(torch.as_tensor(np.asarray(points), dtype=dtype)).numpy()
    return model.score_samples(np.asarray(points))


def model_samples(model: DensityModel, n: int = 20000, seed: int = 0) -> np.ndarray:
    """``n`` points ``(n, D)`` drawn from the model, reproducibly: the same ``seed`` gives the same points.

    The draw goes through its own ``torch.Generator``, so it neither uses nor moves the global
    random state. A Gaussian mixture is sampled the way the chapter describes it: pick a
    component with probability equal to its weight, then draw from that Gaussian,
    ``x = mean_k + L_k @ eps`` with ``L_k`` the Cholesky factor of its covariance.
    """
    dist = as_torch(model)
    g = torch.Generator().manual_seed(seed)
    if isinstance(dist, MixtureSameFamily) and isinstance(dist.component_distribution, MultivariateNormal):
        probs = dist.mixture_distribution.probs  # (K,)
        comps = dist.component_distribution
        k = torch.multinomial(probs, n, replacement=True, generator=g)  # (n,) component of each point
        loc, scale_tril = comps.loc[k], comps.scale_tril[k]  # (n, D), (n, D, D)
    elif isinstance(dist, MultivariateNormal):
        loc = dist.loc.expand(n, -1)
        scale_tril = dist.scale_tril.expand(n, -1, -1)
    else:
        raise TypeError(f"cannot sample {type(dist).__name__} with an explicit generator")
    eps = torch.randn(loc.shape, generator=g, dtype=loc.dtype)  # (n, D)
    return (loc + (scale_tril @ eps[..., None])[..., 0]).numpy()


def region_level(model: DensityModel, mass: float = 0.9, n_samples: int = 20000, seed: int = 0) -> float:
    """The log-density level of the model's highest-density region holding ``mass`` of its probability.

    Estimated from ``n_samples`` of the model's own samples (:func:`highest_density_level`);
    the region is every x with ``log_density(model, x) >= level``.
    """
    return highest_density_level(log_density(model, model_samples(model, n_samples, seed)), mass)


def fraction_inside(model: DensityModel, points, mass: float = 0.9, n_samples: int = 20000, seed: int = 0) -> float:
    """The fraction of ``points`` ``(N, D)`` that lie inside the model's ``mass`` highest-density region.

    For points drawn from the model itself this is close to ``mass``: a 90% region holds about 90%
    of the data, not "almost all" of it.
    """
    level = region_level(model, mass, n_samples, seed)
    return float(np.mean(log_density(model, points) >= level))


def log10_relative_density(model: DensityModel, at, reference) -> float:
    """log10 of the density at the point ``at`` ``(D,)`` over the density at the median ``reference`` point.

    "Median" is the median of the log-densities of the ``reference`` points ``(N, D)``, so a value
    of 0.4 means ``at`` is 10**0.4 = 2.5 times as dense as a typical reference point, and -40 means
    forty orders of magnitude less dense.
    """
    at = np.asarray(at, dtype=float).reshape(1, -1)
    return float(log_density(model, at)[0] - np.median(log_density(model, reference))) / np.log(10)


@dataclass(frozen=True)
class LogLikelihoodDifference:
    """The held-out log-likelihood of one model minus another's, in nats per point, with its spread.

    ``low`` and ``high`` bound a bootstrap interval over the test points (``level``, e.g. 0.95): the
    same points are resampled for both models, so the interval measures how much the difference
    depends on which test points happened to be drawn.
    """

    mean: float
    low: float
    high: float
    level: float
    n_points: int

    @property
    def within_noise(self) -> bool:
        """True when the interval includes zero: these test points cannot tell the two models apart."""
        return self.low <= 0.0 <= self.high


def log_likelihood_difference(model_a: DensityModel, model_b: DensityModel, x, n_boot: int = 2000,
                              level: float = 0.95, seed: int = 0) -> LogLikelihoodDifference:
    """Mean of ``log p_a(x) - log p_b(x)`` over the points ``x`` ``(N, D)``, with a paired bootstrap interval.

    Both models are scored on the same resampled points (a *paired* bootstrap), which removes the
    spread that the two models share: a point that is unlikely under both moves both scores alike.
    The resampling uses its own seeded generator, so the interval is the same on every run.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    diff = log_density(model_a, x).astype(float) - log_density(model_b, x).astype(float)  # (N,)
    if diff.size == 0:
        raise ValueError("no points to score")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for i in range(n_boot):  # one resample at a time: memory stays O(N) whatever n_boot is
        means[i] = diff[rng.integers(0, diff.size, diff.size)].mean()
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return LogLikelihoodDifference(float(diff.mean()), float(low), float(high), level, int(diff.size))
