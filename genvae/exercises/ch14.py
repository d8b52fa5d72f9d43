"""Chapter 14 (the scoreboard): checkers for the exercises in which the learner implements two of the board's
measures.

:func:`check_precision` checks improved precision (Kynkäänniemi et al., 2019), the share of generated
feature vectors that fall inside some real vector's k-nearest-neighbour ball, against
:func:`genvae.analysis.samples.precision_recall`; :func:`check_copying_ratio` checks the data-copying test's
median ratio against :func:`genvae.analysis.samples.copying_report`.

    >>> from genvae.exercises import ch14
    >>> ch14.check_precision(None).ok is None
    True
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from . import Result, call_answer, compare, failed, not_attempted, passed

__all__ = ["precision_cases", "check_precision", "check_copying_ratio"]


def precision_cases() -> list[tuple[Tensor, Tensor, int]]:
    """``(real, fake, k)`` feature sets on which :func:`check_precision` runs: fakes drawn like the reals, shifted
    halfway out of them, and much narrower, in 8 dimensions, float64."""
    g = torch.Generator().manual_seed(7)
    real = torch.randn(300, 8, generator=g, dtype=torch.float64)
    fakes = [torch.randn(200, 8, generator=g, dtype=torch.float64),
             torch.randn(200, 8, generator=g, dtype=torch.float64) + 1.5,
             0.3 * torch.randn(200, 8, generator=g, dtype=torch.float64) + 2.0]
    return [(real, fake, k) for fake, k in zip(fakes, (3, 3, 5))]


def _self_neighbour_precision(real: Tensor, fake: Tensor, k: int) -> float:
    """The slip of counting each real point as its own first neighbour: the radius of the (k - 1)-th other."""
    d = torch.cdist(real, real)
    radii = d.kthvalue(k, dim=1).values  # k-th smallest, itself (distance 0) included
    return float((torch.cdist(fake, real) <= radii[None]).any(1).double().mean())


def check_precision(fn: Callable[[Tensor, Tensor, int], float] | None) -> Result:
    """``fn(real_feats, fake_feats, k)`` -> precision, a number in [0, 1], on the cases of :func:`precision_cases`."""
    from ..analysis.samples import precision_recall

    if fn is None:
        return not_attempted("`my_precision`")
    for i, (real, fake, k) in enumerate(precision_cases()):
        got, raised = call_answer(lambda: fn(real.clone(), fake.clone(), k))
        if raised is not None:
            return raised
        if got is None:
            return not_attempted("`my_precision`")
        expected = precision_recall(real, fake, k)["precision"]
        result = compare(got, expected, f"the precision of case {i + 1}", rtol=0, atol=1e-9)
        if not result:
            if abs(float(got) - _self_neighbour_precision(real, fake, k)) < 1e-9:
                return failed("each real point's ball should reach its k-th nearest *other* real point: this counts "
                              "the point itself as its first neighbour")
            return result
    return passed("your precision matches genvae.analysis.samples.precision_recall on all three cases (fakes like "
                  "the reals, shifted, and narrower)")


def check_copying_ratio(fn: Callable[[Tensor, Tensor, Tensor], float] | None) -> Result:
    """``fn(samples, train, test)`` -> the median distance of the samples to their nearest training image over
    the median distance of the test images to theirs, on a generator that copies a third of its samples."""
    from ..analysis.samples import copying_report, nearest_distances

    if fn is None:
        return not_attempted("`my_copying_ratio`")
    g = torch.Generator().manual_seed(8)
    train = torch.rand(400, 1, 28, 28, generator=g)
    test = torch.rand(100, 1, 28, 28, generator=g)
    samples = torch.cat([train[:40] + 0.01 * torch.randn(40, 1, 28, 28, generator=g),  # a third copied
                         torch.rand(80, 1, 28, 28, generator=g) ** 2])  # the rest from another distribution
    got, raised = call_answer(lambda: fn(samples.clone(), train.clone(), test.clone()))
    if raised is not None:
        return raised
    if got is None:
        return not_attempted("`my_copying_ratio`")
    expected = copying_report(samples, train, test)["median ratio"]
    d_s, d_t = nearest_distances(samples, train), nearest_distances(test, train)
    near = lambda a, b: abs(a - b) <= 1e-2 * abs(b)  # the tolerance of the final comparison
    if isinstance(got, (int, float, Tensor)) and not near(float(got), expected):
        if near(float(got), float(d_s.mean() / d_t.mean())):
            return failed("this is a ratio of means: the test uses medians, which a few copies cannot drag as far")
        if near(float(got), 1 / expected):
            return failed("the ratio is upside down: the samples' median distance goes on top")
    return compare(got, expected, "the copying ratio", rtol=1e-2)  # torch.median (the lower middle) passes too
