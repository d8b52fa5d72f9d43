"""Chapter 3's claim test: ranks of one class among the neighbours of another, on class centroids."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist
from scipy.stats import special_ortho_group

from genvae import latent

# Ten classes whose centroids sit on a line at 1, 2, 4, ..., 512. Seen from any one class, the distances
# to the others are all different (2^a - 2^i = 2^j - 2^a has no solution with i < a < j), so every rank is
# defined without ties, whatever the order of the classes along the line.
POSITIONS = 2.0 ** np.arange(10)


def clustered(positions: np.ndarray, dim: int = 2, per_class: int = 4, seed: int = 0):
    """Codes ``(K * per_class, dim)`` whose class means are exactly ``positions`` along the first axis.

    Each class gets ``per_class`` points symmetric about its centroid (offsets +-e and their negatives),
    so the class mean is the centroid by construction, whatever the offsets. A random rotation (seeded)
    moves everything off the axes: distances, hence ranks, do not change.
    """
    rng = np.random.default_rng(seed)
    k = len(positions)
    centres = np.zeros((k, dim))
    centres[:, 0] = positions
    offsets = rng.normal(scale=0.3, size=(k, per_class // 2, dim))
    points = np.concatenate([centres[:, None] + offsets, centres[:, None] - offsets], axis=1)  # (K, per_class, dim)
    rotation = special_ortho_group.rvs(dim, random_state=seed) if dim > 1 else np.eye(1)
    z = points.reshape(-1, dim) @ rotation.T
    y = np.repeat(np.arange(k), per_class)
    return torch.tensor(z, dtype=torch.float32), torch.tensor(y), centres @ rotation.T


def reference_rank(centres: np.ndarray, a: int, b: int) -> int:
    """1 + the number of other classes strictly nearer to ``a`` than ``b`` is (scipy distances)."""
    d = cdist(centres, centres)[a]
    return 1 + sum(1 for c in range(len(centres)) if c not in (a, b) and d[c] < d[b])


def test_ranks_known_by_construction():
    z, y, _ = clustered(POSITIONS)
    # The gaps double along the line: class 0's neighbours are 1, 2, 3, ... in that order, and class 9's
    # nearest is 8.
    assert latent.claim_ranks(z, y, [(0, 1), (0, 9), (9, 8), (0, 5)]) == [1, 9, 1, 5]
    # Class 4 sits at 16: its neighbours are 3 (8 away), 2 (12), 1 (14), 0 (15), 5 (16), 6 (48), 7 (112), ...
    assert latent.claim_ranks(z, y, [(4, 3), (4, 2), (4, 1), (4, 0), (4, 5), (4, 6), (4, 7)]) == [1, 2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize("dim", [2, 5, 784])
def test_ranks_match_an_independent_reference(dim):
    positions = np.random.default_rng(dim).permutation(POSITIONS)  # the line order no longer follows the labels
    z, y, centres = clustered(positions, dim=dim, seed=dim)
    claims = [(a, b) for a in range(10) for b in range(10) if a != b]
    assert latent.claim_ranks(z, y, claims) == [reference_rank(centres, a, b) for a, b in claims]


def test_claims_as_lists_and_errors():
    z, y, _ = clustered(POSITIONS)
    assert latent.claim_ranks(z, y, [[0, 1], [9, 8]]) == [1, 1]  # papermill passes pairs as JSON lists
    assert latent.claim_ranks(z, y, []) == []
    with pytest.raises(ValueError, match="two different classes"):
        latent.claim_ranks(z, y, [(3, 3)])
    with pytest.raises(ValueError, match="class"):  # class 7 has no points: no centroid
        keep = y != 7
        latent.claim_ranks(z[keep], y[keep], [(3, 8)])


def test_the_benchmark_uses_the_package_function():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "latent_claims.py"
    spec = importlib.util.spec_from_file_location("latent_claims", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.claim_ranks is latent.claim_ranks
    positions = POSITIONS.copy()
    positions[[3, 8]] = positions[[8, 3]]  # 3 and 8 swap places: 3 at 256, 8 at 8
    z, y, _ = clustered(positions)
    # From 3 (at 256): 7 (128 away), 6 (192), 5 (224), 4 (240), 8 (248), ...; from 4 (at 16), 9 is farthest.
    assert module.ranks(z, y) == [5, 9]
