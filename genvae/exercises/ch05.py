"""Chapter 5 (KL divergence): the checker for the exercise in which the learner derives and implements a KL.

:func:`check_gaussian_kl` checks the closed form of KL(N(mu1, sigma1^2) || N(mu2, sigma2^2)), per
dimension, from means and log-variances, against ``torch.distributions.kl_divergence`` on random inputs.
The usual slips (a flipped sign, a missing or doubled 1/2, the two Gaussians swapped, a log-variance read
as a log standard deviation, a wrong constant, a reduced result) are named.

    >>> import torch
    >>> from genvae.exercises import ch05
    >>> ch05.check_gaussian_kl(None).ok is None       # not attempted yet
    True
    >>> def kl(mu1, logvar1, mu2, logvar2):
    ...     return 0.5 * (logvar2 - logvar1 + (logvar1.exp() + (mu1 - mu2) ** 2) / logvar2.exp() - 1)
    >>> ch05.check_gaussian_kl(kl).ok
    True
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from . import Result, call_answer, compare_tensors, failed, not_attempted, passed

__all__ = ["reference_gaussian_kl", "check_gaussian_kl"]


def reference_gaussian_kl(mu1: Tensor, logvar1: Tensor, mu2: Tensor, logvar2: Tensor) -> Tensor:
    """KL(N(mu1, e^logvar1) || N(mu2, e^logvar2)) per element, from ``torch.distributions``."""
    from torch.distributions import Normal, kl_divergence

    return kl_divergence(Normal(mu1, torch.exp(0.5 * logvar1)), Normal(mu2, torch.exp(0.5 * logvar2)))


def _inputs(seed: int = 5, shape: tuple[int, ...] = (8, 3)) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Random means and log-variances, float64: widths from about 0.2 to 5 times the standard."""
    g = torch.Generator().manual_seed(seed)
    mu1, mu2 = torch.randn(2, *shape, generator=g, dtype=torch.float64)
    logvar1, logvar2 = torch.empty(2, *shape, dtype=torch.float64).uniform_(-3, 3, generator=g)
    return mu1, logvar1, mu2, logvar2


def _close(got: Tensor, expected: Tensor) -> bool:
    return got.shape == expected.shape and torch.allclose(got, expected, rtol=1e-4, atol=1e-6)


def _call(answer: Callable, *args) -> tuple[Tensor | None, Result | None]:
    """Call the learner's function; a raised error or a non-tensor becomes a failed Result, never an exception."""
    got, raised = call_answer(lambda: answer(*args))
    if raised is not None:
        return None, raised
    if got is None:  # the exercise's stub, ``return None  # your code here``
        return None, not_attempted("`my_gaussian_kl`")
    if not isinstance(got, Tensor):
        return None, failed(f"it should return a torch.Tensor, got {type(got).__name__}")
    return got.detach().double(), None


def check_gaussian_kl(answer: Callable | None) -> Result:
    """Check ``answer(mu1, logvar1, mu2, logvar2)``: the KL of N(mu1, e^logvar1) from N(mu2, e^logvar2).

    It must return the divergence per element, with the inputs' shape (no sum, no mean), for any shape.
    Compared with ``torch.distributions.kl_divergence`` on a random batch, then at the prior (mu2 = 0,
    logvar2 = 0), where it must equal :func:`genvae.models.losses.gaussian_kl_per_dim`. A wrong answer's message
    names the slip when it is a common one.
    """
    if answer is None:
        return not_attempted("`my_gaussian_kl`")
    mu1, logvar1, mu2, logvar2 = _inputs()
    got, problem = _call(answer, mu1, logvar1, mu2, logvar2)
    if problem is not None:
        return problem
    expected = reference_gaussian_kl(mu1, logvar1, mu2, logvar2)  # (B, D)
    if got.shape != expected.shape:
        if got.numel() == 1 and (math.isclose(float(got.sum()), float(expected.sum()), rel_tol=1e-4)
                                 or math.isclose(float(got.sum()), float(expected.sum(-1).mean()), rel_tol=1e-4)):
            return failed(f"it returned one number ({float(got.sum()):.6g}), the KL summed over the inputs: "
                          f"return it per element, with the inputs' shape {tuple(expected.shape)}")
        return failed(f"it returned shape {tuple(got.shape)}, expected the inputs' shape {tuple(expected.shape)}")
    if not torch.isfinite(got).all():
        return failed("it returned NaN or infinite values")
    if _close(got, expected):
        prior_got, problem = _call(answer, mu1, logvar1, torch.zeros_like(mu2), torch.zeros_like(logvar2))
        if problem is not None:
            return problem
        from ..models.losses import gaussian_kl_per_dim

        at_prior = compare_tensors(prior_got, gaussian_kl_per_dim(mu1, logvar1), "at the prior, the KL")
        if not at_prior:
            return at_prior
        worst = float((got - expected).abs().max())
        return passed(f"it matches torch.distributions on {expected.numel()} random pairs (largest difference "
                      f"{worst:.1g} nats) and the chapter's formula at the prior")
    slips = [
        (-expected, "the sign is flipped: a KL is never negative. Check which log-density is subtracted from which"),
        (2 * expected, "it is twice the KL: the factor 1/2 in front is missing"),
        (expected / 2, "it is half the KL: the factor 1/2 is applied twice"),
        (reference_gaussian_kl(mu2, logvar2, mu1, logvar1),
         "it is KL(N(mu2, sigma2^2) || N(mu1, sigma1^2)): the two Gaussians are swapped. The expectation is "
         "under the first one"),
        (reference_gaussian_kl(mu1, 2 * logvar1, mu2, 2 * logvar2),
         "it treats the log-variance as a log standard deviation: sigma^2 = exp(logvar), so sigma = exp(logvar / 2)"),
        (expected - (mu1 - mu2).pow(2) / (2 * logvar2.exp()),
         "the term with the difference of the means is missing: under z ~ N(mu1, sigma1^2), "
         "E[(z - mu2)^2] = sigma1^2 + (mu1 - mu2)^2"),
        (expected + 0.5,
         "it is the KL plus 1/2: check the constant term (it is -1/2)"),
        (expected - 0.5,
         "it is the KL minus 1/2: check the constant term (it is -1/2)"),
    ]
    for wrong, message in slips:
        if _close(got, wrong):
            return failed(message)
    if (got < -1e-9).any():
        negative = int((got < -1e-9).sum())
        hint = f"; {negative} of its {got.numel()} values are negative, and no KL can be"
    else:
        hint = ""
    result = compare_tensors(got, expected, "the KL")
    return failed(result.message + hint)

