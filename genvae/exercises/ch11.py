"""Checkers for chapter 11 (the conditional VAE and latent arithmetic).

``check_attribute_direction(fn)``: the learner writes ``fn(codes, values, labels, k) -> (D,)``, the attribute
direction of class ``k``: the mean code of the class's images in the top quartile of ``values`` minus the mean
code of those in the bottom quartile, leaving out NaN values. The reference is
:func:`genvae.arithmetic.attribute_directions`.
"""

from __future__ import annotations

import torch

from . import Result, compare_tensors, failed, not_attempted, passed

__all__ = ["check_attribute_direction", "direction_cases"]


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
    from ..arithmetic import attribute_directions

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
    return passed("your direction matches genvae.arithmetic.attribute_directions for every class")
