"""Chapter 12 (diffusion): checkers for the two exercises in which the learner derives part of the model.

:func:`check_alpha_bar` checks alpha_bar_t, the share of x_0's variance left at step t, computed from the
betas, against the chain q(x_t | x_{t-1}) iterated one step at a time (the signal's coefficient is multiplied
by sqrt(1 - beta_t) at every step). :func:`check_elbo_weight` checks the weight lambda_t that turns the
ELBO's t-th KL term into ``lambda_t |eps - eps_hat|^2``, against :func:`genvae.models.diffusion.elbo_weights`.

    >>> import torch
    >>> from genvae.exercises import ch12
    >>> ch12.check_alpha_bar(None).ok is None
    True
    >>> ch12.check_alpha_bar(lambda betas: torch.cumprod(1 - betas, 0)).ok
    True
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from . import Result, call_answer, compare_tensors, failed, not_attempted, passed

__all__ = ["example_betas", "chain_alpha_bar", "check_alpha_bar", "check_elbo_weight"]


def example_betas(timesteps: int = 50) -> Tensor:
    """A short linear schedule, float64, on which the checks run (the book's model has T = 1,000)."""
    from ..models.diffusion import noise_schedule

    return noise_schedule(timesteps, "linear")


def chain_alpha_bar(betas: Tensor) -> Tensor:
    """alpha_bar by iterating the chain: x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) eps_t scales x_0's
    coefficient by sqrt(1 - beta_t) at each step; alpha_bar_t is that coefficient squared (``(T,)``)."""
    coefficient, out = 1.0, []
    for b in betas.double().tolist():
        coefficient *= (1 - b) ** 0.5
        out.append(coefficient**2)
    return torch.tensor(out, dtype=torch.float64)


def _answer(fn: Callable, betas: Tensor, name: str) -> tuple[Tensor | None, Result | None]:
    if fn is None:
        return None, not_attempted(f"`{name}`")
    got, raised = call_answer(lambda: fn(betas.clone()))
    if raised is not None:
        return None, raised
    if got is None:
        return None, not_attempted(f"`{name}`")
    if not isinstance(got, Tensor):
        return None, failed(f"`{name}` should return a torch.Tensor, got {type(got).__name__}")
    if tuple(got.shape) != tuple(betas.shape):
        return None, failed(f"`{name}` should return one value per step, shape {tuple(betas.shape)}, "
                            f"got {tuple(got.shape)}")
    return got.detach().double(), None


def check_alpha_bar(fn: Callable[[Tensor], Tensor] | None) -> Result:
    """``fn(betas)`` -> alpha_bar, ``(T,)``, against the chain iterated step by step; common slips named."""
    betas = example_betas()
    got, problem = _answer(fn, betas, "my_alpha_bar")
    if problem is not None:
        return problem
    expected = chain_alpha_bar(betas)
    if torch.allclose(got, expected, rtol=1e-6, atol=1e-9):
        return passed("alpha_bar matches the chain q(x_t | x_{t-1}) iterated step by step "
                      f"({len(betas)} steps; alpha_bar at the last step {float(expected[-1]):.3g})")
    slips = {
        "a product of the betas, not of 1 - beta": torch.cumprod(betas, 0),
        "a sum where a product belongs": 1 - torch.cumsum(betas, 0),
        "off by one step: alpha_bar_t includes beta_t itself": torch.cat([torch.ones(1, dtype=betas.dtype),
                                                                          expected[:-1]]),
        "the coefficient of x_0, not its square (alpha_bar is a share of the variance)": expected.sqrt(),
    }
    for words, wrong in slips.items():
        if torch.allclose(got, wrong, rtol=1e-6, atol=1e-9):
            return failed(f"this looks like {words}")
    return compare_tensors(got, expected, "alpha_bar", rtol=1e-6, atol=1e-9)


def check_elbo_weight(fn: Callable[[Tensor], Tensor] | None) -> Result:
    """``fn(betas)`` -> lambda, ``(T,)``, with the ELBO's term t = ``lambda_t |eps - eps_hat|^2`` for t >= 1 (index 0,
    the decoder term, is not checked), against :func:`genvae.models.diffusion.elbo_weights`."""
    from ..models.diffusion import alpha_bars, elbo_weights

    betas = example_betas()
    got, problem = _answer(fn, betas, "my_elbo_weight")
    if problem is not None:
        return problem
    expected = elbo_weights(betas)
    if torch.allclose(got[1:], expected[1:], rtol=1e-5):
        ratio = expected[1:].max() / expected[1:].min()
        return passed(f"lambda_t matches genvae.models.diffusion.elbo_weights at every step t >= 1; on this "
                      f"{len(betas)}-step schedule it varies {float(ratio):.3g}-fold, where the simple loss weighs "
                      "every step by 1")
    abar = alpha_bars(betas)
    slips = {
        "the weight of |x_0 - x0_hat|^2: the factor (1 - alpha_bar_t) / alpha_bar_t is missing": expected * abar / (1 - abar),
        "twice the weight: the 1/2 of the Gaussian's exponent is missing": 2 * expected,
    }
    for words, wrong in slips.items():
        if torch.allclose(got[1:], wrong[1:], rtol=1e-5):
            return failed(f"this looks like {words}")
    return compare_tensors(got[1:], expected[1:], "lambda_t for t >= 1", rtol=1e-5)
