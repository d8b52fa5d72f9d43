"""Seeded subsets of the data the metrics are computed on: test splits, disjoint subsets, the recipe search's reference."""

from __future__ import annotations

import torch


def test_split(n: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two disjoint, seeded random choices of ``size`` indices out of ``range(n)``, each sorted.

    MNIST's test set is ordered by writer population (the first 5,000 digits
    differ from the last 5,000), so index *slices* are biased samples and two
    slices differ in more than chance; every subset the book evaluates on, and
    every real-against-real reference, comes from here instead.
    """
    if not 0 < 2 * size <= n:
        raise ValueError(f"two subsets of {size} do not fit in {n}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[:size].sort().values, perm[size:2 * size].sort().values


def test_subset(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """A seeded random choice of ``size`` of ``range(n)`` (sorted): the first part of :func:`test_split`."""
    if not 0 < size <= n:
        raise ValueError(f"size must be in [1, {n}], got {size}")
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:size].sort().values


RECIPE_REFERENCE_SIZE = 2000  # real test images the GAN recipe search scored samples against


def recipe_reference(n: int) -> torch.Tensor:
    """The test indices against which ``benchmarks/gan_recipes.py`` scored the candidate GAN recipes
    (:func:`test_subset` of :data:`RECIPE_REFERENCE_SIZE` with seed 0). A chapter that ranks the chosen
    recipe checks its own reference images against these, so a choice and its report need not share data."""
    return test_subset(n, RECIPE_REFERENCE_SIZE, seed=0)


def disjoint_subsets(n: int, k: int, seed: int = 0) -> list[torch.Tensor]:
    """``k`` disjoint, seeded random subsets of ``range(n)`` of ``n // k`` indices each (each sorted).

    A number measured once on each subset gives a spread over test subsets: a difference between two
    models that changes sign from one subset to another is within the noise of the test set.

        >>> [len(s) for s in disjoint_subsets(10, 3)]
        [3, 3, 3]
    """
    if not 0 < k <= n:
        raise ValueError(f"cannot split {n} indices into {k} non-empty subsets")
    size = n // k
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return [perm[i * size:(i + 1) * size].sort().values for i in range(k)]
