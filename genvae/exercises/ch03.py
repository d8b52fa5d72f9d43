"""Checkers for chapter 3 (latent space): the learner implements the class-centroid distance table.

    >>> import torch
    >>> from genvae import latent
    >>> from genvae.exercises import ch03
    >>> ch03.check_centroid_distances(lambda z, y: latent.distance_matrix(latent.centroids(z, y))).ok
    True
    >>> ch03.check_centroid_distances(None).ok is None
    True
"""

from __future__ import annotations

import torch

from . import Result, compare_tensors, failed, not_attempted, passed

__all__ = ["check_centroid_distances", "centroid_test_case"]


def centroid_test_case(dim: int = 2, n_classes: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes ``(N, dim)`` and labels ``(N,)`` with classes of unequal sizes, in shuffled order: a mean taken
    over the wrong points, or a class count taken as equal, shows up here."""
    g = torch.Generator().manual_seed(seed)
    sizes = [3 + 4 * k for k in range(n_classes)]  # 3, 7, 11, ...: unequal on purpose
    y = torch.cat([torch.full((s,), k) for k, s in enumerate(sizes)])
    centres = 3 * torch.randn(n_classes, dim, generator=g)
    z = centres[y] + torch.randn(len(y), dim, generator=g)
    order = torch.randperm(len(y), generator=g)
    return z[order], y[order]


def check_centroid_distances(fn) -> Result:
    """Check ``fn(z, y) -> (K, K)``: the Euclidean distances between the class centroids (mean codes) of
    codes ``z`` ``(N, D)`` with labels ``y`` ``(N,)`` in ``0 .. K-1``; entry ``[a, b]`` is the distance
    between the centroids of classes ``a`` and ``b``."""
    if fn is None:
        return not_attempted("`my_centroid_distances` (it should return a (K, K) tensor)")
    for dim, n_classes, seed in ((2, 4, 0), (3, 5, 1)):
        z, y = centroid_test_case(dim, n_classes, seed)
        c = torch.stack([z[y == k].mean(0) for k in range(n_classes)])
        expected = torch.cdist(c[None].double(), c[None].double())[0]
        try:
            got = fn(z.clone(), y.clone())
        except Exception as err:  # a learner's bug is reported, not raised
            return failed(f"your function raised {type(err).__name__}: {err}")
        if got is None:
            return not_attempted("the body of `my_centroid_distances`: it still returns None")
        result = compare_tensors(got, expected, f"the distance table for {n_classes} classes of {dim}-D codes")
        if result.ok:
            continue
        if isinstance(got, torch.Tensor) and got.shape == expected.shape:
            g = got.detach().double().cpu()
            if torch.allclose(g, expected ** 2, rtol=1e-4, atol=1e-6):
                return failed("these are squared distances: take the square root")
            if not torch.allclose(torch.diagonal(g), torch.zeros(n_classes, dtype=g.dtype), atol=1e-6):
                return failed("the diagonal should be zero: every centroid is at distance 0 from itself")
            if not torch.allclose(g, g.T, rtol=1e-4, atol=1e-6):
                return failed("the table should be symmetric: the distance from a to b is the distance from b to a")
        return failed(result.message + "; check that each centroid is the mean of the codes of its class only")
    return passed("your table matches `latent.distance_matrix(latent.centroids(z, y))` on two test sets")
