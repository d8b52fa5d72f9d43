"""Checkers for chapter 4 (convolutional autoencoders): the learner derives, as formulas, the output size
of a convolution and of a transposed convolution, and a convolution's parameter count, and each formula
is checked against PyTorch's own layers; and the learner writes a denoising loss, checked against the
reference and then used to train a small convolutional autoencoder for a few hundred steps
(:func:`train_with_loss`).

    >>> from genvae.exercises import ch04
    >>> ch04.check_conv_output_size(lambda n, k, s, p: (n + 2 * p - k) // s + 1).ok
    True
    >>> ch04.check_conv_output_size(lambda n, k, s, p: (n - k) // s + 1).ok
    False
"""

from __future__ import annotations

import torch
from torch import nn

from . import Result, failed, not_attempted, passed

__all__ = ["check_conv_output_size", "check_transposed_output_size", "check_conv_parameters", "CASES",
           "check_denoising_loss", "reference_denoising_loss", "train_with_loss"]

# (input side, kernel, stride, padding): the chapter's layers first, then odd sizes where rounding matters.
CASES = [(28, 4, 2, 1), (14, 4, 2, 1), (28, 3, 1, 1), (28, 5, 1, 0), (27, 3, 2, 0), (13, 4, 3, 2), (7, 7, 1, 0)]
# (input channels, output channels, kernel)
PARAM_CASES = [(1, 16, 4), (16, 32, 4), (3, 8, 5), (8, 8, 1)]


def _call(fn, *args, shown: str | None = None):
    try:
        return fn(*args), None
    except Exception as err:  # a learner's bug is reported, not raised
        return None, failed(f"your function raised {type(err).__name__}: {err} (for arguments {shown or args})")


def _side(layer: nn.Module, n: int) -> int:
    with torch.no_grad():
        return int(layer(torch.zeros(1, layer.in_channels, n, n)).shape[-1])


def _check_sizes(fn, name: str, transposed: bool) -> Result:
    if fn is None:
        return not_attempted(f"`{name}(n, kernel, stride, padding)` (it should return an int)")
    for n, k, s, p in CASES:
        layer = (nn.ConvTranspose2d if transposed else nn.Conv2d)(1, 1, k, stride=s, padding=p)
        expected = _side(layer, n)
        got, error = _call(fn, n, k, s, p)
        if error is not None:
            return error
        if got is None:
            return not_attempted(f"the body of `{name}`: it still returns None")
        if isinstance(got, float) and not got.is_integer():
            return failed(f"for n={n}, kernel={k}, stride={s}, padding={p} you return {got:g}, not a whole number: "
                          "a layer cannot place a filter a fraction of a step, so round down")
        try:
            got = int(got)
        except (TypeError, ValueError):
            return failed(f"`{name}` should return an int, got {type(got).__name__}")
        if got != expected:
            what = "transposed convolution" if transposed else "convolution"
            hint = ""
            if not transposed and got == (n + 2 * p - k) // s:
                hint = ": count the first position of the filter too (+1)"
            elif not transposed and got == (n - k) // s + 1:
                hint = ": the padding adds p pixels on each side"
            elif not transposed and got == (n + p - k) // s + 1:
                hint = ": the padding is added on both sides, so 2p"
            elif transposed and got == s * n:
                hint = ": that holds for the chapter's layers only; derive it from the convolution's formula run backwards"
            return failed(f"a {what} with n={n}, kernel={k}, stride={s}, padding={p} gives {expected} pixels "
                          f"on a side, your formula gives {got}{hint}")
    return passed(f"`{name}` agrees with PyTorch on all {len(CASES)} layer shapes tried")


def check_conv_output_size(fn) -> Result:
    """Check ``fn(n, kernel, stride, padding) -> int``: the side of a ``nn.Conv2d``'s output for an ``n``×``n``
    input (dilation 1)."""
    return _check_sizes(fn, "conv_output_size", transposed=False)


def check_transposed_output_size(fn) -> Result:
    """Check ``fn(n, kernel, stride, padding) -> int``: the side of a ``nn.ConvTranspose2d``'s output for an
    ``n``×``n`` input (no output padding, dilation 1)."""
    return _check_sizes(fn, "transposed_output_size", transposed=True)


def check_conv_parameters(fn) -> Result:
    """Check ``fn(c_in, c_out, kernel) -> int``: the number of weights and biases of
    ``nn.Conv2d(c_in, c_out, kernel)``."""
    if fn is None:
        return not_attempted("`conv_parameters(c_in, c_out, kernel)` (it should return an int)")
    for c_in, c_out, k in PARAM_CASES:
        expected = sum(p.numel() for p in nn.Conv2d(c_in, c_out, k).parameters())
        got, error = _call(fn, c_in, c_out, k)
        if error is not None:
            return error
        if got is None:
            return not_attempted("the body of `conv_parameters`: it still returns None")
        try:
            got = int(got)
        except (TypeError, ValueError):
            return failed(f"`conv_parameters` should return an int, got {type(got).__name__}")
        if got != expected:
            hint = ""
            if got == expected - c_out:
                hint = ": each output channel also has a bias"
            elif got == c_out * (c_in * k + 1):
                hint = ": a filter is kernel × kernel, not kernel, wide"
            elif got == c_out * (k * k + 1):
                hint = ": each filter reads every input channel"
            return failed(f"nn.Conv2d({c_in}, {c_out}, {k}) has {expected:,} parameters, your formula gives {got:,}{hint}")
    return passed(f"`conv_parameters` agrees with PyTorch on all {len(PARAM_CASES)} layers tried")


def reference_denoising_loss(model: nn.Module, x: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
    """The denoising objective for one batch: corrupt ``x`` ``(B, 1, 28, 28)`` with Gaussian noise of standard
    deviation ``sigma`` (drawn from ``generator``), clip to [0, 1], reconstruct, and take the mean squared error
    per pixel against the *clean* ``x``. A scalar that gradients flow through."""
    noisy = (x + sigma * torch.randn(x.shape, generator=generator)).clamp(0, 1)
    return (model(noisy).x_hat - x).pow(2).mean()


def _tiny_case(seed: int = 0):
    from .. import experiments
    from ..models import build_model

    torch.manual_seed(seed)  # the weights of the small test model
    model = build_model(experiments.conv_ae(2, small=True).model)
    x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(seed + 1))
    return model, x


def check_denoising_loss(fn, sigma: float = 0.3) -> Result:
    """Check ``fn(model, x, sigma, generator) -> scalar tensor``: the denoising loss of
    :func:`reference_denoising_loss`, with the noise drawn from ``generator`` as ``torch.randn(x.shape, generator=...)``."""
    if fn is None:
        return not_attempted("`denoising_loss(model, x, sigma, generator)` (it should return a scalar tensor)")
    model, x = _tiny_case()
    expected = reference_denoising_loss(model, x, sigma, torch.Generator().manual_seed(0))
    got, error = _call(fn, model, x.clone(), sigma, torch.Generator().manual_seed(0),
                       shown=f"a small model, a batch of {len(x)} images, sigma={sigma} and a generator")
    if error is not None:
        return error
    if got is None:
        return not_attempted("the body of `denoising_loss`: it still returns None")
    if not isinstance(got, torch.Tensor) or got.numel() != 1:
        return failed(f"`denoising_loss` should return a scalar tensor, got {type(got).__name__}"
                      + (f" of shape {tuple(got.shape)}" if isinstance(got, torch.Tensor) else ""))
    if not got.requires_grad:
        return failed("no gradient flows through your loss: compute it from the model's output, without .item() or no_grad")
    if torch.isclose(got.detach(), expected.detach(), rtol=1e-4, atol=1e-7):
        return passed(f"your loss is {float(got.detach()):.6f}, as the reference")
    g = torch.Generator().manual_seed(0)
    noisy = (x + sigma * torch.randn(x.shape, generator=g)).clamp(0, 1)
    with torch.no_grad():
        hints = [
            ((model(noisy).x_hat - noisy).pow(2).mean(), "you compare with the noisy images: the target is the clean x"),
            ((model(x).x_hat - x).pow(2).mean(), "the model should see the noisy images, not the clean ones"),
            ((model(noisy).x_hat - x).pow(2).flatten(1).sum(1).mean(), "take the mean over pixels too, not the sum"),
        ]
    for value, hint in hints:
        if torch.isclose(got.detach(), value, rtol=1e-4, atol=1e-7):
            return failed(f"your loss is {float(got.detach()):.6f}, expected {float(expected):.6f}: {hint}")
    return failed(f"your loss is {float(got.detach()):.6f}, expected {float(expected):.6f}; draw the noise once, with "
                  "torch.randn(x.shape, generator=generator), so that it matches the reference's draw")


def train_with_loss(loss, x_train: torch.Tensor, *, latent_dim: int = 16, sigma: float = 0.3, steps: int = 300,
                    batch_size: int = 128, lr: float = 3e-3, seed: int = 0) -> nn.Module:
    """Train the chapter's small convolutional autoencoder (``latent_dim``-D code) for ``steps`` Adam steps on
    random batches of ``x_train`` with ``loss(model, x, sigma, generator)``, on the CPU, seeded; returns it in
    eval mode. With :func:`reference_denoising_loss` and ``sigma=0`` this is a plain autoencoder."""
    from .. import experiments
    from ..models import build_model

    torch.manual_seed(seed)
    model = build_model(experiments.conv_ae(latent_dim, small=True).model).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        idx = torch.randint(len(x_train), (batch_size,), generator=g)
        value = loss(model, x_train[idx], sigma, g)
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
    return model.eval()
