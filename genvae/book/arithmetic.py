"""Arithmetic in latent space: style transfer between classes, attribute directions, analogies.

Works for the three models of chapter 11 alike:

* an **unconditional** model (the VAE, the multi-stage VAE) holds the class in its code, so
  "the same style as another class" is reached by moving the code by the difference of the
  two class centroids: ``z' = z - c(a) + c(b)``;
* a **conditional** model (the CVAE, ``model.conditional``) is told the class, so its code is
  kept and only the label changes: decode ``z`` as class ``b``.

Attribute directions follow the recipe of word-vector arithmetic (Mikolov et al., 2013) with
measured attributes (:mod:`genvae.book.morpho`) in place of words: within a class, the mean code of
the images in the top quartile of an attribute minus the mean code of the bottom quartile.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..analysis.latent import decode, encode  # noqa: F401  (one encode/decode for every model; y for a conditional one)
from ..models.registry import is_conditional

__all__ = [
    "is_conditional", "encode", "decode", "transfer", "attribute_directions", "sweep", "Sweep",
    "quartile_groups", "analogy", "random_directions", "step_slope",
]


def transfer(model: nn.Module, z: torch.Tensor, y: torch.Tensor, target: torch.Tensor,
             centroids: torch.Tensor | None = None) -> torch.Tensor:
    """The codes' style drawn as class ``target`` ``(N,)``: images ``(N, 1, 28, 28)``.

    Conditional model: decode ``z`` with the new label. Unconditional: decode
    ``z - c(y) + c(target)``, which needs the class ``centroids`` ``(K, D)``.
    """
    if is_conditional(model):
        return decode(model, z, target)
    if centroids is None:
        raise ValueError("an unconditional model changes class through the class centroids: pass centroids")
    return decode(model, z - centroids[y] + centroids[target])


def quartile_groups(values: torch.Tensor, labels: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of class ``k``'s images in the bottom and in the top quartile of ``values`` (NaNs left out)."""
    idx = torch.nonzero((labels == k) & torch.isfinite(values)).squeeze(1)
    if len(idx) < 4:
        raise ValueError(f"class {k} has {len(idx)} measured images; quartiles need at least 4")
    v = values[idx]
    lo, hi = torch.quantile(v, 0.25), torch.quantile(v, 0.75)
    return idx[v <= lo], idx[v >= hi]


def attribute_directions(codes: torch.Tensor, values: torch.Tensor, labels: torch.Tensor,
                         n_classes: int) -> torch.Tensor:
    """Per class, mean code of the top quartile of ``values`` minus that of the bottom quartile: ``(K, D)``."""
    rows = []
    for k in range(n_classes):
        low, high = quartile_groups(values, labels, k)
        rows.append(codes[high].mean(0) - codes[low].mean(0))
    return torch.stack(rows)


@dataclass
class Sweep:
    """Codes moved along an attribute direction, decoded, and measured again."""

    steps: torch.Tensor  # (S,) the multiples of the direction
    images: torch.Tensor  # (S, N, 1, 28, 28)
    values: torch.Tensor  # (S, N) the attribute measured on the decoded images
    kept: torch.Tensor  # (S, N) bool: the judge still reads the image's own class

    @property
    def correlation(self) -> float:
        """Pearson correlation between the step and the measured attribute, over every (step, image) pair
        with a finite measurement."""
        t = self.steps[:, None].expand_as(self.values).reshape(-1).double()
        v = self.values.reshape(-1).double()
        ok = torch.isfinite(v)
        return float(torch.corrcoef(torch.stack([t[ok], v[ok]]))[0, 1])

    @property
    def kept_rate(self) -> float:
        """Share of decoded images (all steps) that the judge reads as their own class."""
        return float(self.kept.double().mean())

    @property
    def slope(self) -> float:
        """Change of the measured attribute per unit step (least-squares slope, see :func:`step_slope`)."""
        return step_slope(self.steps, self.values)

    def mean_values(self) -> torch.Tensor:
        """The mean measured attribute at each step ``(S,)`` (NaNs left out)."""
        return torch.nanmean(self.values, dim=1)


def sweep(model: nn.Module, codes: torch.Tensor, labels: torch.Tensor, directions: torch.Tensor,
          steps, measure, judge_pred) -> Sweep:
    """Decode ``codes + t * directions[labels]`` for each ``t`` in ``steps``, as each code's own class.

    ``measure(images) -> (N,)`` measures the attribute (e.g. ``lambda x: morpho.measure(x).thickness``);
    ``judge_pred(images) -> (N,)`` gives the judge's classes, e.g. ``judge.predict`` of a :class:`~genvae.analysis.metrics.Judge`.
    """
    steps = torch.as_tensor(steps, dtype=codes.dtype)
    images, values, kept = [], [], []
    for t in steps:
        x = decode(model, codes + t * directions[labels], labels)
        images.append(x)
        values.append(measure(x))
        kept.append(judge_pred(x) == labels)
    return Sweep(steps, torch.stack(images), torch.stack(values), torch.stack(kept))


def analogy(model: nn.Module, z_a_high: torch.Tensor, z_a_low: torch.Tensor, z_b_low: torch.Tensor,
            b: torch.Tensor) -> torch.Tensor:
    """"high a" - "low a" + "low b": decode ``z_a_high - z_a_low + z_b_low`` as class ``b`` ``(N,)``.

    The word-vector analogy "king - man + woman = queen", with an attribute (thick - thin) for the
    gender and the class for the rest. For an unconditional model ``b`` is ignored: the class is in
    the code, carried by ``z_b_low``.
    """
    return decode(model, z_a_high - z_a_low + z_b_low, b)


def random_directions(v: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A control for a direction: for each row of ``v`` ``(N, D)``, a direction drawn uniformly at random
    (a normalised Gaussian draw) with that row's norm. A move by ``v`` that does no more than a move by
    ``random_directions(v)`` says nothing about the direction ``v`` points in."""
    if v.dim() != 2:
        raise ValueError(f"expected directions (N, D), got {tuple(v.shape)}")
    r = torch.randn(v.shape, generator=generator, dtype=torch.float64)
    r = r / r.norm(dim=1, keepdim=True)
    return (r * v.double().norm(dim=1, keepdim=True)).to(v.dtype)


def step_slope(steps, values: torch.Tensor) -> float:
    """Least-squares slope of ``values`` ``(S, N)`` (N images measured at each of S steps) against the
    steps ``(S,)``, over every finite measurement: how much the measured quantity changes per unit step.
    Used on any attribute of a sweep's images, not only the one the direction was built for, so that a
    direction's side effects (another attribute that drifts along) are measured in the same units."""
    steps = torch.as_tensor(steps, dtype=torch.float64)
    if values.dim() != 2 or values.shape[0] != len(steps):
        raise ValueError(f"expected values (S, N) with S = {len(steps)} steps, got {tuple(values.shape)}")
    t = steps[:, None].expand_as(values).reshape(-1)
    v = values.reshape(-1).double()
    ok = torch.isfinite(v)
    t, v = t[ok], v[ok]
    if len(t) < 2 or float(t.var()) == 0:
        return float("nan")
    tc = t - t.mean()
    return float((tc * (v - v.mean())).sum() / (tc * tc).sum())
