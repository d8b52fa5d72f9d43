"""The log-density of a diagonal Gaussian: the one formula the package evaluates it with.

    log N(x; mu, diag(sigma^2)) = -1/2 sum_j [ (x_j - mu_j)^2 / sigma_j^2 + log sigma_j^2 + log(2 pi) ]

The prior and the encoder's q in the IWAE bound (:func:`genvae.analysis.metrics.iwae_bound`), the grid posterior
(:mod:`genvae.book.posterior`), the Monte-Carlo KL (:func:`genvae.models.losses.monte_carlo_kl`) and chapter 5's
integrals and fits (:mod:`genvae.book.divergence`) all call :func:`gaussian_log_density`. This module imports
nothing from genvae, so every other module can use it.

    >>> import torch
    >>> round(float(gaussian_log_density(torch.zeros(2))), 4)  # N(0, I) in 2-D at its mean: -log(2 pi)
    -1.8379
"""

from __future__ import annotations

import math

import torch

__all__ = ["LOG2PI", "gaussian_log_density"]

LOG2PI = math.log(2 * math.pi)  # the normalising constant of one dimension, log(2 pi)


def _square(v):
    return v.pow(2) if isinstance(v, torch.Tensor) else v * v


def _exp(v):
    return v.exp() if isinstance(v, torch.Tensor) else math.exp(v)


def gaussian_log_density(x, mean=None, logvar=None, *, log_std=None, standardised: bool = False,
                         dim: int | None = -1, constant: bool = True):
    """log N(x; mean, diag(sigma^2)), in nats, summed over the dimensions ``dim`` of a diagonal Gaussian.

    ``x``: points ``(..., D)``. ``mean``: the mean, broadcast against ``x`` (``None``: 0). The scale is
    given as ``logvar`` = log sigma^2 or as ``log_std`` = log sigma, broadcast against ``x`` (neither: sigma = 1,
    the prior N(0, I)); the formula uses the one given as it is, so a caller that holds log sigma^2 never
    rounds through log sigma or back.

    ``standardised``: ``x`` already holds (x - mean) / sigma, the noise eps that a reparameterised draw
    z = mean + sigma * eps was made from; the density of z is then computed from eps exactly, without
    recomputing it from z (``mean`` must be ``None``; the scale still enters through its log-determinant).

    ``dim``: the dimension summed over (default the last, D); ``None`` returns the per-coordinate terms,
    the shape of ``x`` broadcast with the parameters. ``constant=False`` leaves out log(2 pi) per
    coordinate: it cancels in a difference of two log-densities such as log q(z) - log p(z).

    Works on tensors of any float dtype and device, with autograd, and, with ``dim=None``, on Python
    floats (with ``standardised`` or without a scale), as the scalar integrand of a quadrature needs.
    """
    if logvar is not None and log_std is not None:
        raise ValueError("give the scale as logvar or as log_std, not both")
    if standardised and mean is not None:
        raise ValueError("standardised x is already (x - mean) / sigma: leave mean as None")
    d = x if standardised or mean is None else x - mean  # the deviation from the mean (..., D)
    if standardised or (logvar is None and log_std is None):
        terms = _square(d)  # the squared standardised deviation
    elif logvar is not None:
        terms = _square(d) / _exp(logvar)
    else:
        terms = _square(d / _exp(log_std))
    if logvar is not None:  # + log sigma^2
        terms = terms + logvar
    elif log_std is not None:
        terms = terms + 2 * log_std
    if constant:
        terms = terms + LOG2PI
    return -0.5 * (terms if dim is None else terms.sum(dim))
