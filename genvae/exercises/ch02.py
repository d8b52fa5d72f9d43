"""Chapter 2's exercises: the reconstruction loss written by the learner, and an autoencoder retrained at
another code size.

``check_reconstruction_loss(fn)`` compares ``fn(x_logits, x)`` with :func:`genvae.models.losses.reconstruction_loss`
and names the usual slips (a mean over pixels instead of a sum, a sum over the batch, a forgotten sigmoid,
a number that no longer carries gradients). ``check_retrained_autoencoder(model, latent_dim, x_train, x_test)``
checks that a freshly trained model has the asked code size and has learnt more than the average image.
"""

from __future__ import annotations

import torch

from . import Result, call_answer, compare, failed, not_attempted, passed

__all__ = ["check_reconstruction_loss", "check_retrained_autoencoder", "average_image_mse"]

_PIXELS = 784


def _loss_inputs(batch: int = 8):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 1, 28, 28, generator=g)
    x_logits = (2 * torch.randn(batch, 1, 28, 28, generator=g)).requires_grad_()
    return x_logits, x


def check_reconstruction_loss(fn) -> Result:
    """Check the learner's ``fn(x_logits, x) -> scalar``: squared error of sigmoid(logits) against x, summed
    over the 784 pixels, averaged over the batch."""
    from ..models.losses import reconstruction_loss

    if fn is None:
        return not_attempted("`my_reconstruction_loss`")
    x_logits, x = _loss_inputs()
    lg = x_logits.detach()  # for the reference numbers; the learner's call gets the tensor with gradients
    expected = float(reconstruction_loss(lg, x))
    got, raised = call_answer(lambda: fn(x_logits, x))
    if raised is not None:
        return raised
    if got is None:
        return not_attempted("`my_reconstruction_loss` (it still returns None)")
    if not isinstance(got, torch.Tensor):
        return failed(f"it returns a {type(got).__name__}; return a torch tensor (no `.item()`), so that "
                      "`backward()` can follow it to the weights")
    if got.numel() == len(x) and got.numel() > 1:
        return failed(f"it returns one number per image, shape {tuple(got.shape)}: average them over the batch")
    if got.numel() != 1:
        return failed(f"it returns shape {tuple(got.shape)}; a loss is one number (sum over pixels, mean over the batch)")
    if not got.requires_grad:
        return failed("the result carries no gradient: compute it with torch operations on `x_logits`, "
                      "without `.detach()`, NumPy or `torch.no_grad()`")
    value = float(got.detach())
    slips = {
        "it averages over the pixels: sum over them instead": expected / _PIXELS,
        "it sums over the batch: average over the images instead": expected * len(x),
        "it compares the logits with x: pass them through a sigmoid first":
            float((lg - x).pow(2).flatten(1).sum(1).mean()),
        "it takes the square root (an L2 distance), not the squared error":
            float((torch.sigmoid(lg) - x).flatten(1).norm(dim=1).mean()),
        "it uses the absolute error, not the squared error":
            float((torch.sigmoid(lg) - x).abs().flatten(1).sum(1).mean()),
    }
    result = compare(value, expected, "the loss", rtol=1e-5)
    if result.ok:
        return passed(f"the loss is {value:.4f} on a test batch, as `genvae.models.losses.reconstruction_loss` gives")
    for slip, wrong in slips.items():
        if abs(value - wrong) <= 1e-5 * max(1.0, abs(wrong)):
            return failed(slip)
    return result


@torch.no_grad()
def average_image_mse(x_train: torch.Tensor, x_test: torch.Tensor) -> float:
    """Per-pixel MSE of the trivial "model" that returns the average training image for every input."""
    return float((x_train.mean(0, keepdim=True) - x_test).pow(2).mean())


@torch.no_grad()
def check_retrained_autoencoder(model, latent_dim: int, x_train: torch.Tensor, x_test: torch.Tensor,
                                better_by: float = 0.8) -> Result:
    """Check a freshly trained autoencoder: a code of ``latent_dim`` numbers, and a test MSE per pixel below
    ``better_by`` times that of returning the average training image (a model that learnt nothing matches it)."""
    from ..analysis.latent import reconstruct

    if model is None:
        return not_attempted("`my_train_autoencoder`")
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "embed"):
        return failed(f"it returns a {type(model).__name__}; return the trained autoencoder (a genvae "
                      "`AutoEncoder`, built with `build_model(experiments.mlp_ae(d).model)`)")
    x = x_test
    try:
        was_training = model.training
        model.eval()
        z = model.embed(x[:4])
        recon = reconstruct(model, x)
        model.train(was_training)
    except Exception as err:
        return failed(f"running the model raised {type(err).__name__}: {err}")
    if z.shape[-1] != latent_dim:
        return failed(f"its code has {z.shape[-1]} numbers, expected {latent_dim}")
    mse = float((recon - x).pow(2).mean())
    baseline = average_image_mse(x_train, x)
    if not mse == mse:  # NaN
        return failed("its reconstructions hold NaN: lower the learning rate")
    if mse >= better_by * baseline:
        return failed(f"its test MSE per pixel is {mse:.4f}, not clearly below the {baseline:.4f} of returning the "
                      "average training image: did the optimizer step run, on this model's parameters?")
    return passed(f"a code of {latent_dim} numbers and a test MSE per pixel of {mse:.4f} (returning the average "
                  f"training image gives {baseline:.4f})")
