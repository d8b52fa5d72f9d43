"""Checkers for chapter 11 (the conditional VAE and latent arithmetic).

``check_decoder_input(fn, model)``: the learner writes ``fn(z, y, n_classes)``, the input of the CVAE's
decoder: the codes followed by the one-hot classes.

``check_attribute_direction(fn)``: the learner writes ``fn(codes, values, labels, k) -> (D,)``, the attribute
direction of class ``k``: the mean code of the class's images in the top quartile of ``values`` minus the mean
code of those in the bottom quartile, leaving out NaN values. The reference is
:func:`genvae.book.arithmetic.attribute_directions`.
"""

from __future__ import annotations

import torch

from ..utils import device_of
from . import Result, compare_tensors, failed, not_attempted, passed

__all__ = ["check_attribute_direction", "direction_cases", "check_decoder_input"]


def direction_cases(seed: int = 0) -> dict[str, torch.Tensor]:
    """Made-up codes ``(N, D)``, attribute values ``(N,)`` with a few NaNs, and labels ``(N,)`` of three
    classes: the data a direction is checked on. The codes depend on the values, the classes differ, and the
    quartile and median splits give different answers, so that each usual slip gives a wrong direction."""
    g = torch.Generator().manual_seed(seed)
    n, d = 90, 4
    labels = torch.arange(n) % 3
    values = torch.rand(n, generator=g, dtype=torch.float64) * 3 + labels.double()
    codes = torch.randn(n, d, generator=g, dtype=torch.float64)
    codes[:, 0] += values ** 2  # thicker images have larger first coordinates, not linearly
    codes[:, 1] += 2.0 * labels.double()  # the class moves the code too
    values[[4, 17, 40]] = float("nan")
    return {"codes": codes, "values": values, "labels": labels}


def _reference(codes, values, labels, k):
    from ..book.arithmetic import attribute_directions

    return attribute_directions(codes, values, labels, int(labels.max()) + 1)[k]


def _median_split(codes, values, labels, k):
    mine = (labels == k) & torch.isfinite(values)
    v, c = values[mine], codes[mine]
    m = v.median()
    return c[v > m].mean(0) - c[v <= m].mean(0)


def _all_classes(codes, values, labels, k):
    ok = torch.isfinite(values)
    return _reference(codes[ok], values[ok], torch.zeros_like(labels[ok]), 0)


def check_attribute_direction(fn) -> Result:
    """Check ``fn(codes, values, labels, k)`` against the package's attribute direction, for every class of
    :func:`direction_cases`; say what is wrong (sign, median split, other classes mixed in, NaN kept)."""
    if fn is None:
        return not_attempted("my_attribute_direction")
    case = direction_cases()
    codes, values, labels = case["codes"], case["values"], case["labels"]
    for k in range(int(labels.max()) + 1):
        try:
            got = fn(codes.clone(), values.clone(), labels.clone(), k)
        except Exception as e:  # the learner's code may fail in any way; the check says how, and does not raise
            return failed(f"your function raised {type(e).__name__}: {e}")
        if got is None:
            return not_attempted("my_attribute_direction (it returned None)")
        if not isinstance(got, torch.Tensor):
            return failed(f"the direction should be a torch.Tensor, got {type(got).__name__}")
        if got.dim() == 2 and got.shape[-1] == codes.shape[1]:
            return failed(f"return the direction of class k alone, shape ({codes.shape[1]},), not {tuple(got.shape)}")
        got = got.detach().double().cpu()
        expected = _reference(codes, values, labels, k)
        res = compare_tensors(got, expected, f"the direction of class {k}")
        if res.ok:
            continue
        if tuple(got.shape) == tuple(expected.shape):
            if not torch.isfinite(got).all():
                return failed(f"the direction of class {k} holds NaN: leave out the images whose value is NaN")
            if torch.allclose(got, -expected):
                return failed("the sign is flipped: the direction goes from the bottom quartile (thin) to the top "
                              "quartile (thick), so it is mean(top) − mean(bottom)")
            if torch.allclose(got, _median_split(codes, values, labels, k)):
                return failed("you split at the median; compare the top quartile with the bottom quartile")
            if torch.allclose(got, _all_classes(codes, values, labels, k)):
                return failed("the answer mixes in other classes: take the quartiles and means of class k alone")
        return res
    return passed("your direction matches genvae.book.arithmetic.attribute_directions for every class")


def check_decoder_input(fn, model=None) -> Result:
    """Check ``fn(z, y, n_classes)``, the CVAE decoder's input: the codes ``(B, D)`` followed by the one-hot
    classes ``(B, K)``, one ``(B, D + K)`` tensor of the codes' dtype. With a CVAE ``model``, also check that
    its decoder fed this input draws what ``model.decode(z, y)`` draws."""
    if fn is None:
        return not_attempted("my_decoder_input")
    g = torch.Generator().manual_seed(0)
    n_classes, d = 10, 3
    z = torch.randn(6, d, generator=g)
    y = torch.tensor([0, 3, 9, 3, 7, 1])
    try:
        got = fn(z.clone(), y.clone(), n_classes)
    except Exception as e:  # the learner's code may fail in any way; the check says how, and does not raise
        return failed(f"your function raised {type(e).__name__}: {e}")
    if got is None:
        return not_attempted("my_decoder_input (it returned None)")
    expected = torch.cat([z, torch.nn.functional.one_hot(y, n_classes).to(z.dtype)], dim=1)
    if isinstance(got, torch.Tensor) and tuple(got.shape) == (len(z), d + 1):
        return failed(f"shape {tuple(got.shape)}: the class went in as one number; encode it as a one-hot "
                      f"vector of {n_classes} entries")
    if isinstance(got, torch.Tensor) and got.shape == expected.shape and got.dtype != z.dtype:
        return failed(f"the input is {got.dtype}, but the decoder's weights want the codes' dtype {z.dtype}")
    if isinstance(got, torch.Tensor) and got.shape == expected.shape and torch.equal(
            got.detach().cpu(), torch.cat([expected[:, d:], expected[:, :d]], dim=1)):
        return failed("the one-hot vector comes first; the CVAE's decoder takes the code first, then the class")
    res = compare_tensors(got, expected, "the decoder input")
    if not res.ok or model is None:
        return res if not res.ok else passed("the code, then the one-hot class: the CVAE decoder's input")
    z = torch.randn(4, model.config.latent_dim, generator=g)
    y = torch.arange(4) % model.config.n_classes
    with torch.no_grad():
        dev = device_of(model)
        ref = model.decode(z.to(dev), y.to(dev)).cpu()
        try:
            mine = model.decoder(fn(z.to(dev), y.to(dev), model.config.n_classes)).view_as(ref).cpu()
        except Exception as e:  # e.g. an input built on the CPU for a model on a GPU
            return failed(f"fed to the CVAE's decoder, your input raised {type(e).__name__}: {e}")
    if not torch.allclose(mine, ref, atol=1e-5):
        return failed("on the CVAE itself, the decoder fed your input draws something else than model.decode")
    return passed("the code, then the one-hot class: fed to the CVAE's decoder it draws what model.decode draws")
