"""Chapter 3's exercise checker tells a right centroid-distance table from wrong ones, and says what is wrong."""

import torch

from genvae import latent
from genvae.exercises import ch03


def right(z, y):
    return latent.distance_matrix(latent.centroids(z, y))


def test_the_reference_answer_passes():
    assert ch03.check_centroid_distances(right).ok is True


def test_an_answer_not_attempted_is_neither_right_nor_wrong():
    assert ch03.check_centroid_distances(None).ok is None
    assert ch03.check_centroid_distances(lambda z, y: None).ok is None


def test_squared_distances_are_named():
    bad = ch03.check_centroid_distances(lambda z, y: right(z, y) ** 2)
    assert bad.ok is False and "squared" in bad.message


def test_a_mean_over_all_codes_or_a_wrong_shape_fails():
    def unweighted(z, y):  # the centroid of the first half of each class only
        c = torch.stack([z[y == k][: max(1, int((y == k).sum()) // 2)].mean(0) for k in range(int(y.max()) + 1)])
        return torch.cdist(c, c)

    assert ch03.check_centroid_distances(unweighted).ok is False
    shape = ch03.check_centroid_distances(lambda z, y: torch.cdist(z, z))
    assert shape.ok is False and "shape" in shape.message


def test_a_function_that_raises_is_reported_not_raised():
    def broken(z, y):
        raise RuntimeError("boom")

    bad = ch03.check_centroid_distances(broken)
    assert bad.ok is False and "boom" in bad.message
