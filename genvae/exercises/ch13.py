"""Chapter 13 (flow matching): checkers for the exercises in which the learner writes the straight path's
target and an ODE solver.

:func:`check_path` checks the point x_t and the conditional velocity on the straight path from noise x_0
to data x_1; :func:`check_euler` checks an Euler solver on the Gaussian-to-Gaussian problem, whose
velocity field (:func:`genvae.models.flow.gaussian_marginal_velocity`) and answer (N(mean, std^2)) are known.

    >>> import torch
    >>> from genvae.exercises import ch13
    >>> ch13.check_path(None).ok is None
    True
    >>> ch13.check_path(lambda x0, x1, t: ((1 - t[:, None]) * x0 + t[:, None] * x1, x1 - x0)).ok
    True
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from . import Result, call_answer, compare_tensors, failed, not_attempted, passed

__all__ = ["TOY_MEAN", "TOY_STD", "toy_velocity", "check_path", "check_euler"]

TOY_MEAN, TOY_STD = 1.5, 0.5  # the data N(1.5, 0.5^2) of the exercises' toy problem; the noise is N(0, 1)


def toy_velocity(x: Tensor, t: Tensor) -> Tensor:
    """The marginal velocity of the toy problem, ``x`` ``(N, 1)`` and ``t`` ``(N,)`` -> ``(N, 1)``."""
    from ..models.flow import gaussian_marginal_velocity

    return gaussian_marginal_velocity(x, t.view(-1, *([1] * (x.dim() - 1))), TOY_MEAN, TOY_STD)


def check_path(fn: Callable[[Tensor, Tensor, Tensor], tuple[Tensor, Tensor]] | None) -> Result:
    """``fn(x0, x1, t)`` with codes ``(B, D)`` and times ``(B,)`` -> ``(x_t, v)``, against
    :func:`genvae.models.flow.conditional_path`."""
    from ..models.flow import conditional_path

    if fn is None:
        return not_attempted("`my_path`")
    g = torch.Generator().manual_seed(3)
    x0, x1 = torch.randn(2, 6, 4, generator=g, dtype=torch.float64)
    t = torch.rand(6, generator=g, dtype=torch.float64)
    got, raised = call_answer(lambda: fn(x0.clone(), x1.clone(), t.clone()))
    if raised is not None:
        return raised
    if got is None:
        return not_attempted("`my_path`")
    if not (isinstance(got, tuple) and len(got) == 2):
        return failed(f"`my_path` should return a pair (x_t, v), got {type(got).__name__}")
    x_t, v = got
    want_x, want_v = conditional_path(x0, x1, t)
    swapped, _ = conditional_path(x1, x0, t)
    if isinstance(x_t, Tensor) and x_t.shape == want_x.shape and torch.allclose(x_t.double(), swapped):
        return failed("x_t runs from the data to the noise: at t = 0 the path should be at the noise x_0")
    result = compare_tensors(x_t, want_x, "x_t")
    if not result:
        return result
    if isinstance(v, Tensor) and v.shape == want_v.shape and torch.allclose(v.double(), -want_v):
        return failed("the velocity points backwards: x_t moves from x_0 towards x_1, so v = x_1 - x_0")
    result = compare_tensors(v, want_v, "v")
    if not result:
        return result
    return passed("x_t and v match the straight path from noise to data at every time")


def check_euler(fn: Callable[[Callable, Tensor, int], Tensor] | None, steps: int = 100) -> Result:
    """``fn(velocity, x, steps)`` follows dx/dt = velocity(x, t) from t = 0 to 1 in ``steps`` Euler steps
    (``t`` passed as ``(N,)``). Checked against :func:`genvae.models.flow.integrate` on the toy problem, and its
    samples' mean and standard deviation against the data's."""
    from ..models.flow import integrate

    if fn is None:
        return not_attempted("`my_euler`")
    x = torch.randn(20_000, 1, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    got, raised = call_answer(lambda: fn(toy_velocity, x.clone(), steps))
    if raised is not None:
        return raised
    if got is None:
        return not_attempted("`my_euler`")
    expected = integrate(toy_velocity, x, steps, "euler")
    result = compare_tensors(got, expected, f"the end points after {steps} Euler steps", rtol=1e-6, atol=1e-8)
    if not result:
        return result
    return passed(f"{steps} Euler steps carry N(0, 1) to mean {float(got.mean()):.3f} and standard deviation "
                  f"{float(got.std()):.3f}; the data are N({TOY_MEAN}, {TOY_STD}^2)")
