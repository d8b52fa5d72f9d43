"""Latent-space tools: centroids, distances, straight paths, the PCA baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA as SkPCA

from genvae import latent
from genvae.models import ModelConfig, build_model

from conftest import images


def test_centroids_and_distance_matrix():
    z = torch.tensor([[0.0, 0.0], [2.0, 0.0], [10.0, 0.0], [10.0, 4.0], [0.0, 3.0]])
    y = torch.tensor([0, 0, 1, 1, 2])
    c = latent.centroids(z, y)
    torch.testing.assert_close(c, torch.tensor([[1.0, 0.0], [10.0, 2.0], [0.0, 3.0]]))
    d = latent.distance_matrix(c)
    assert torch.allclose(d, d.T) and torch.all(d.diagonal() == 0)
    assert float(d[0, 2]) == pytest.approx(np.hypot(1, 3))
    assert latent.nearest_classes(d, 0) == [2, 1]
    assert latent.neighbour_rank(d, 0, 2) == 1 and latent.neighbour_rank(d, 0, 1) == 2
    with pytest.raises(ValueError, match="class"):
        latent.centroids(z, y, n_classes=4)


def test_line_path_follows_the_unit_direction():
    a, b = torch.tensor([1.0, 1.0, 0.0]), torch.tensor([4.0, 5.0, 0.0])
    path = latent.line_path(a, b, 6)
    assert path.shape == (6, 3)
    torch.testing.assert_close(path[0], a)
    torch.testing.assert_close(path[-1], b)
    steps = path[1:] - path[:-1]
    torch.testing.assert_close(steps.norm(dim=1), torch.full((5,), 1.0))  # |b - a| = 5, 5 equal steps
    torch.testing.assert_close(steps / steps.norm(dim=1, keepdim=True), ((b - a) / 5).expand(5, 3))
    with pytest.raises(ValueError):
        latent.line_path(a, a, 4)
    with pytest.raises(ValueError):
        latent.line_path(a, b, 1)


def test_tour_visits_every_centroid_once_per_leg():
    c = torch.arange(8.0).view(4, 2)
    pts, legs = latent.tour(c, [0, 1, 2, 3], frames_per_leg=5)
    assert len(pts) == len(legs) == 5 + 4 + 4
    assert legs[0] == (0, 1) and legs[-1] == (2, 3)
    for k in range(4):
        assert any(torch.allclose(p, c[k]) for p in pts)


def test_encode_decode_shapes_and_mode_restored():
    torch.manual_seed(0)
    vae = build_model(ModelConfig("vae", latent_dim=2, hidden=(16,))).train()
    x = images(7)
    z = latent.encode(vae, x, batch_size=3)
    assert z.shape == (7, 2) and vae.training
    torch.testing.assert_close(z, vae.encode(x)[0].detach())  # the posterior mean, deterministic
    imgs = latent.decode(vae, z, batch_size=4)
    assert imgs.shape == (7, 1, 28, 28) and imgs.min() >= 0 and imgs.max() <= 1


def test_pca_matches_sklearn(mnist):
    x = mnist.x_train[:2000]
    ours = latent.PCA(8).fit(x)
    ref = SkPCA(8, svd_solver="full").fit(x.flatten(1).numpy())
    # Same subspace: the reconstructions agree (components may differ in sign).
    rec_ref = ref.inverse_transform(ref.transform(x.flatten(1).numpy())).clip(0, 1)
    np.testing.assert_allclose(ours.reconstruct(x).flatten(1).numpy(), rec_ref, atol=1e-4)
    emb = ours.embed(x)
    assert emb.shape == (2000, 8)
    # Variance along the components decreases, as principal components should.
    v = emb.var(0)
    assert torch.all(v[:-1] >= v[1:])


def test_pca_top_equals_a_smaller_fit(mnist):
    x = mnist.x_train[:3000]
    big, small = latent.PCA(16).fit(x).top(4), latent.PCA(4).fit(x)
    torch.testing.assert_close(big.reconstruct(mnist.x_test[:50]), small.reconstruct(mnist.x_test[:50]))


def test_fitted_gaussian_matches_the_codes_and_uses_only_its_generator():
    z = torch.randn(5000, 2, generator=torch.Generator().manual_seed(0)) @ torch.tensor([[2.0, 0.0], [1.0, 0.5]]) + 3
    fit = latent.FittedGaussian(z)
    state = torch.get_rng_state()
    s = fit.sample(20_000, generator=torch.Generator().manual_seed(1))
    assert torch.equal(state, torch.get_rng_state())
    torch.testing.assert_close(s.mean(0), z.mean(0), atol=0.05, rtol=0)
    torch.testing.assert_close(torch.cov(s.T), torch.cov(z.T), atol=0.08, rtol=0)
    assert torch.equal(s, fit.sample(20_000, generator=torch.Generator().manual_seed(1)))


def test_code_plane_is_identity_in_two_dimensions():
    z = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    plane = latent.CodePlane(z)
    assert not plane.projected and plane.axis_labels == ("$z_1$", "$z_2$")
    torch.testing.assert_close(plane.project(z), z)
    torch.testing.assert_close(plane.lift(z), z)


def test_code_plane_keeps_the_two_widest_directions():
    g = torch.Generator().manual_seed(0)
    # Spread 5 and 3 along two known directions of a 4-D space, 0.01 along the others.
    q, _ = torch.linalg.qr(torch.randn(4, 4, generator=g))
    z = (torch.randn(4000, 4, generator=g) * torch.tensor([5.0, 3.0, 0.01, 0.01])) @ q.T + 2.0
    plane = latent.CodePlane(z)
    assert plane.projected and "4-D" in plane.axis_labels[0]
    p = plane.project(z)
    assert p.std(0)[0] == pytest.approx(5.0, rel=0.05) and p.std(0)[1] == pytest.approx(3.0, rel=0.05)
    # lift(project(z)) recovers z up to the tiny spread off the plane
    assert (plane.lift(p) - z).abs().max() < 0.1
    with pytest.raises(ValueError, match="4-D"):
        plane.project(torch.zeros(3, 3))


def test_midpoint_norms_ratio_stays_put_and_the_gap_in_sds_grows():
    from genvae.latent import midpoint_norms

    rows = midpoint_norms([2, 32, 512], n=4000)
    for r in rows:
        assert abs(r["ratio"] - 2 ** -0.5) < 0.06
    gaps = [r["gap (sd)"] for r in rows]
    assert gaps[0] < gaps[1] < gaps[2]


def test_frame_changes_measures_consecutive_frames():
    import torch

    from genvae.latent import frame_changes

    frames = torch.zeros(3, 1, 28, 28)
    frames[2] = 1.0
    assert torch.allclose(frame_changes(frames), torch.tensor([0.0, 1.0]))


def test_style_alignment_follows_a_style_along_each_class_axis():
    import torch
    from genvae import latent

    g = torch.Generator().manual_seed(0)
    t = torch.randn(200, generator=g)
    z = torch.stack([3 * t, 0.1 * torch.randn(200, generator=g)], 1)  # one long arm along z1
    y = torch.zeros(200, dtype=torch.long)
    assert float(latent.style_alignment(z, y, 2 * t + 1)[0]) > 0.99
    assert float(latent.style_alignment(z, y, torch.randn(200, generator=g))[0]) < 0.3
    assert float(latent.style_alignment(z, y, 2 * t + 1, axis=1)[0]) < 0.3  # the short axis does not follow it


def test_neighbour_phrase_names_the_nearest_classes_and_the_rank_of_the_claimed_one():
    # Five classes on a line at 0, 1, 3, 6, 10: from class 1 the others are, nearest first, 0, 2, 3, 4.
    dist = latent.distance_matrix(torch.tensor([[0.0], [1.0], [3.0], [6.0], [10.0]]))
    assert latent.neighbour_phrase(dist, 1, 3, top=2) == (
        "the 2 classes nearest to the average 1 are, nearest first, 0 and 2, and 3 has rank 3")
    assert latent.neighbour_phrase(dist, 1, 4, top=3) == (
        "the 3 classes nearest to the average 1 are, nearest first, 0, 2 and 3, and 4 has rank 4")
    assert latent.neighbour_phrase(dist, 4, 0, top=1) == (
        "the 1 classes nearest to the average 4 are, nearest first, 3, and 0 has rank 4")
    for top in (0, 5):
        with pytest.raises(ValueError, match="top must be between 1 and 4"):
            latent.neighbour_phrase(dist, 1, 3, top=top)
