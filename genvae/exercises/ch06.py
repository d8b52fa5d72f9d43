"""Chapter 6's exercise checkers: the reparameterisation trick, written by the learner.

    >>> from genvae.exercises import ch06
    >>> from genvae.models.vae import reparameterize
    >>> ch06.check_reparameterize(reparameterize).ok
    True
    >>> ch06.check_reparameterize(None).ok is None  # not attempted yet
    True
"""

from __future__ import annotations

import math

import torch

from . import Result, compare_tensors, failed, not_attempted, passed

__all__ = ["check_reparameterize"]

_MU = (0.5, -1.0, 2.0)
_SIGMA = (2.0, 0.3, 1.0)


def _call(fn, mu: torch.Tensor, logvar: torch.Tensor, seed: int):
    """``fn(mu, logvar, generator)`` with a fresh generator, or the error message it raised."""
    try:
        return fn(mu, logvar, torch.Generator().manual_seed(seed)), None
    except Exception as e:  # the learner's code: report, never raise
        return None, f"calling it raised {type(e).__name__}: {e}"


def check_reparameterize(fn, n: int = 200_000) -> Result:
    """Check ``fn(mu, logvar, generator) -> z``, the reparameterisation trick z = mu + sigma * eps.

    In this order: it returns a tensor of mu's shape; two calls with equally seeded generators give the same
    z (eps comes from ``generator``); over ``n`` draws per code dimension, z has mean mu and standard deviation
    sigma = exp(logvar / 2) (within a few standard errors, with a fixed generator, so the check itself is
    deterministic); and gradients flow: dz/dmu = 1 and dz/dlogvar = (z - mu) / 2.
    """
    if fn is None:
        return not_attempted("the body of my_reparameterize")
    if not callable(fn):
        return failed(f"pass the function itself, got a {type(fn).__name__}")
    mu = torch.tensor([_MU]).repeat(n, 1)  # (n, 3)
    sigma = torch.tensor([_SIGMA])
    logvar = (2 * sigma.log()).repeat(n, 1)  # (n, 3)

    z, err = _call(fn, mu[:4], logvar[:4], 0)
    if err:
        return failed(err)
    if z is None:
        return not_attempted("the body of my_reparameterize (it returned None)")
    shape = compare_tensors(z, mu[:4], "z")  # type and shape first; the values differ by design
    if not isinstance(z, torch.Tensor) or tuple(z.shape) != (4, 3):
        return shape
    z2, _ = _call(fn, mu[:4], logvar[:4], 0)
    if not isinstance(z2, torch.Tensor) or not torch.equal(z, z2):
        return failed("two calls with generators seeded alike gave different z: draw eps with "
                      "torch.randn(..., generator=generator)")
    if torch.equal(z, mu[:4]):
        return failed("z equals mu: no noise was added")

    z, err = _call(fn, mu, logvar, 1)
    if err:
        return failed(err)
    z = z.detach().double()
    mean, std = z.mean(0), z.std(0)
    se = torch.tensor(_SIGMA, dtype=torch.float64) / math.sqrt(n)
    want_mu, want_sd = torch.tensor(_MU, dtype=torch.float64), torch.tensor(_SIGMA, dtype=torch.float64)
    if ((mean - want_mu).abs() > 5 * se).any():
        return failed(f"the mean of z over {n:,} draws is {[round(v, 3) for v in mean.tolist()]}, "
                      f"expected mu = {list(_MU)}")
    if not torch.allclose(std, want_sd, rtol=0.02):
        got = [round(v, 3) for v in std.tolist()]
        if torch.allclose(std, want_sd**2, rtol=0.02):
            hint = ": you scaled eps by the variance exp(logvar); the standard deviation is exp(logvar / 2)"
        elif torch.allclose(std, (2 * want_sd.log()).abs(), rtol=0.02):
            hint = ": you scaled eps by logvar itself; the standard deviation is exp(logvar / 2)"
        elif torch.allclose(std, want_sd.sqrt(), rtol=0.02):
            hint = ": you took exp(logvar / 4); the standard deviation is exp(logvar / 2)"
        else:
            hint = ""
        return failed(f"the standard deviation of z is {got}, expected sigma = {list(_SIGMA)}{hint}")

    mu_g = torch.tensor([_MU], requires_grad=True)
    lv_g = (2 * sigma.log()).clone().requires_grad_(True)
    z, err = _call(fn, mu_g, lv_g, 2)
    if err:
        return failed(err)
    if not z.requires_grad:
        return failed("z does not depend on mu and logvar in autograd's eyes (was something detached?)")
    z.sum().backward()
    if mu_g.grad is None or not torch.allclose(mu_g.grad, torch.ones_like(mu_g)):
        return failed("the gradient of z with respect to mu should be 1 in every dimension, got "
                      f"{None if mu_g.grad is None else mu_g.grad.tolist()}: compute z from mu with "
                      "differentiable operations (torch.normal gives no gradient)")
    want = 0.5 * (z.detach() - mu_g.detach())  # dz/dlogvar = sigma * eps / 2
    if lv_g.grad is None or not torch.allclose(lv_g.grad, want, atol=1e-5):
        return failed("the gradient of z with respect to logvar should be sigma * eps / 2, got "
                      f"{None if lv_g.grad is None else [round(v, 4) for v in lv_g.grad.flatten().tolist()]}, "
                      f"expected {[round(v, 4) for v in want.flatten().tolist()]}")
    return passed(f"z has mu's shape, the mean mu and the standard deviation sigma over {n:,} draws, "
                  "and the gradient reaches mu and logvar")
