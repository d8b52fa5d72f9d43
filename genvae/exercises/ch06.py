"""Chapter 6's exercise checkers: the reparameterisation trick and a free-bits KL, written by the learner,
and the short retraining that shows what free bits do against partial posterior collapse.

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

from . import Result, compare, compare_tensors, failed, not_attempted, passed

__all__ = ["check_reparameterize", "check_free_bits_kl", "retrain"]

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


def _kl_inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of 64 q's over 5 dimensions: some far from the prior (KL above a nat), some near it."""
    g = torch.Generator().manual_seed(seed)
    scale = torch.tensor([2.0, 1.0, 0.3, 0.05, 0.0])  # dimensions 3 and 4 are nearly or exactly the prior
    mu = scale * torch.randn(64, 5, generator=g)
    logvar = scale * torch.randn(64, 5, generator=g) - scale
    return mu, logvar


def check_free_bits_kl(fn) -> Result:
    """Check ``fn(mu, logvar, free_bits) -> scalar``: each dimension's KL(q || N(0, 1)), averaged over the
    batch, floored at ``free_bits`` nats, summed over dimensions (:func:`genvae.models.losses.free_bits_kl`).

    In this order: a scalar tensor; with ``free_bits = 0`` the ordinary KL term; with a floor, the right
    value (the messages recognise a floor applied per image instead of per dimension, and a floor on the
    total); and no gradient reaches a dimension whose KL is below the floor.
    """
    from ..models.losses import free_bits_kl, gaussian_kl, gaussian_kl_per_dim

    if fn is None:
        return not_attempted("the body of my_free_bits_kl")
    if not callable(fn):
        return failed(f"pass the function itself, got a {type(fn).__name__}")
    mu, logvar = _kl_inputs()
    try:
        got0 = fn(mu, logvar, 0.0)
        got = fn(mu, logvar, 0.5)
    except Exception as e:  # the learner's code: report, never raise
        return failed(f"calling it raised {type(e).__name__}: {e}")
    if got is None:
        return not_attempted("the body of my_free_bits_kl (it returned None)")
    for value in (got0, got):
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            return failed("the result should be one number, a tensor with one element (sum over dimensions, "
                          "mean over the batch)")
    plain = compare(float(got0), float(gaussian_kl(mu, logvar)), "with free_bits = 0 the result", rtol=1e-4)
    if not plain:
        return failed(plain.message + ": with no floor it should be the ordinary KL term, the sum over dimensions "
                      "of the batch mean")
    want = float(free_bits_kl(mu, logvar, 0.5))
    if not math.isclose(float(got), want, rel_tol=1e-4, abs_tol=1e-6):
        per_dim = gaussian_kl_per_dim(mu, logvar)
        total = float(gaussian_kl(mu, logvar))
        if math.isclose(float(got), float(per_dim.clamp(min=0.5).sum(1).mean()), rel_tol=1e-4):
            return failed("you floored each image's KL; free bits floor each dimension's KL after averaging it "
                          "over the batch")
        try:  # a floor above the whole KL tells a floor on the total from one per dimension
            big = float(fn(mu, logvar, 2 * total))
        except Exception:
            big = float("nan")
        if math.isclose(big, 2 * total, rel_tol=1e-4):
            return failed("you floored the total KL; free bits floor each dimension separately")
        if math.isclose(float(got), total, rel_tol=1e-4):
            return failed(f"with free_bits = 0.5 the result is {float(got):.6g}, the ordinary KL: the floor changed "
                          f"nothing (expected {want:.6g})")
        return compare(float(got), want, "with free_bits = 0.5 the result")
    mu_g, lv_g = mu.clone().requires_grad_(True), logvar.clone().requires_grad_(True)
    try:
        fn(mu_g, lv_g, 0.5).backward()
    except Exception as e:
        return failed(f"back-propagating through it raised {type(e).__name__}: {e}")
    below = gaussian_kl_per_dim(mu, logvar).mean(0) < 0.5  # (5,) the dimensions under the floor
    if mu_g.grad is None or lv_g.grad is None:
        return failed("no gradient reaches mu or logvar")
    if mu_g.grad[:, below].abs().max() > 0 or lv_g.grad[:, below].abs().max() > 0:
        return failed("a dimension whose KL is below the floor still gets a gradient: floor it with "
                      "clamp(min=free_bits), which passes no gradient below the floor")
    if mu_g.grad[:, ~below].abs().max() == 0:
        return failed("the dimensions above the floor get no gradient")
    return passed("the batch mean of each dimension's KL, floored and summed; below the floor no gradient")


def retrain(kl, x_train: torch.Tensor, x_test: torch.Tensor, beta: float = 4.0, latent_dim: int = 8,
            steps: int = 400, batch_size: int = 128, n_train: int = 6000, seed: int = 0) -> dict:
    """Train a small MLP VAE for ``steps`` Adam steps on the loss recon + ``beta`` * ``kl(mu, logvar)`` and
    count its active units: a short retraining for the exercise (about half a minute on a laptop CPU).

    ``kl`` is any function of ``mu, logvar`` ``(B, D)`` that returns the KL term, e.g. the learner's free-bits
    KL. Batches come from the first ``n_train`` training images with a generator seeded by ``seed``, and the
    model's initial weights from the same seed (the global RNG is left as it was), so the run is repeatable.
    Returns ``{"active units", "KL per dimension" (D,), "recon"}`` measured on the first 2,000 ``x_test``.
    """
    from ..analysis import latent, metrics
    from ..models import losses
    from ..models import ModelConfig, build_model

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = build_model(ModelConfig("vae", latent_dim=latent_dim))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(seed)
    x = x_train[:n_train]
    model.train()
    for _ in range(steps):
        xb = x[torch.randint(0, len(x), (batch_size,), generator=g)]
        out = model(xb, generator=g)
        loss = losses.reconstruction_loss(out.x_logits, xb, "mse") + beta * kl(out.mu, out.logvar)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    xt = x_test[:2000]
    with torch.no_grad():
        mu, logvar = model.encode(xt)
        recon = float(losses.reconstruction_loss(model.decode(mu), xt, "mse"))
    return {"active units": metrics.active_units(latent.encode(model, xt)),
            "KL per dimension": losses.gaussian_kl_per_dim(mu, logvar).mean(0), "recon": recon}
