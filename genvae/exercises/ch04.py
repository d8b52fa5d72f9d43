"""Checkers for chapter 4 (convolutional autoencoders): the learner derives, as formulas, the output size
of a convolution and of a transposed convolution, and a convolution's parameter count, and each formula
is checked against PyTorch's own layers.

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

__all__ = ["check_conv_output_size", "check_transposed_output_size", "check_conv_parameters", "CASES"]

# (input side, kernel, stride, padding): the chapter's layers first, then odd sizes where rounding matters.
CASES = [(28, 4, 2, 1), (14, 4, 2, 1), (28, 3, 1, 1), (28, 5, 1, 0), (27, 3, 2, 0), (13, 4, 3, 2), (7, 7, 1, 0)]
# (input channels, output channels, kernel)
PARAM_CASES = [(1, 16, 4), (16, 32, 4), (3, 8, 5), (8, 8, 1)]


def _call(fn, *args):
    try:
        return fn(*args), None
    except Exception as err:  # a learner's bug is reported, not raised
        return None, failed(f"your function raised {type(err).__name__}: {err} (for arguments {args})")


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
