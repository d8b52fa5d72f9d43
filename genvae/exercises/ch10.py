"""Chapter 10 (VAE-GAN): the checker for the exercise in which the learner implements the learned-similarity
(feature reconstruction) loss.

The loss is a unit-variance Gaussian likelihood in the discriminator's features, up to a constant:
(1/2) times the squared distance between the features of the reconstruction and of the original, summed
over features and averaged over the batch. :func:`check_feature_loss` compares the learner's function with
:func:`genvae.models.losses.feature_reconstruction_loss` on random features, and names the usual slips (a missing or
doubled 1/2, a mean over features, a sum over the batch).

    >>> from genvae.exercises import ch10
    >>> ch10.check_feature_loss(None).ok is None       # not attempted yet
    True
    >>> ch10.check_feature_loss(lambda f_hat, f: 0.5 * (f_hat - f).pow(2).sum(1).mean()).ok
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from ..models.losses import feature_reconstruction_loss
from . import Result, call_answer, failed, not_attempted, passed

__all__ = ["check_feature_loss"]


def _features(seed: int, batch: int, n_features: int) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    real = torch.randn(batch, n_features, generator=g, dtype=torch.float64)
    recon = real + 0.3 * torch.randn(batch, n_features, generator=g, dtype=torch.float64)
    return recon, real


def check_feature_loss(answer: Callable | None) -> Result:
    """Check ``answer(recon_features, real_features)``, both ``(B, F)``: the feature reconstruction loss, a 0-d
    tensor. Two batches of different sizes are tried, so that a factor of B or F shows."""
    if answer is None:
        return not_attempted("`my_feature_loss`")
    for seed, (b, f) in enumerate([(8, 50), (5, 12)]):
        recon, real = _features(seed, b, f)
        got, raised = call_answer(lambda: answer(recon, real))
        if raised is not None:
            return raised
        if got is None:
            return not_attempted("the body of `my_feature_loss` (it returned None)")
        if not isinstance(got, Tensor):
            return failed(f"it should return a torch.Tensor, got {type(got).__name__}")
        if got.dim() != 0:
            return failed(f"it returned shape {tuple(got.shape)}: reduce to one number (a 0-d tensor), "
                          "summing over features and averaging over the batch")
        value, expected = float(got), float(feature_reconstruction_loss(recon, real))
        if not math.isfinite(value):
            return failed(f"it returned {value}")
        if math.isclose(value, expected, rel_tol=1e-6):
            continue
        slips = {2.0: "it is twice the loss: the Gaussian's log-density has a factor 1/2",
                 0.5: "it is half the loss: use 1/2 once, not twice (or sum the squares, do not average them)",
                 1 / f: "it averages over the features: sum over them (each feature is one Gaussian dimension)",
                 b: "it sums over the batch: average over the images instead",
                 1 / (2 * f): "it averages over the features and drops the 1/2's partner: sum over features",
                 2.0 / f: "it averages over the features without the 1/2: sum over features, times 1/2"}
        for ratio, why in slips.items():
            if math.isclose(value / expected, ratio, rel_tol=1e-6):
                return failed(f"{why} (got {value:.6g}, expected {expected:.6g})")
        return failed(f"on a batch of {b} images with {f} features it gives {value:.6g}, expected {expected:.6g}")
    return passed("your loss matches genvae.models.losses.feature_reconstruction_loss on two batches")
