"""Latent arithmetic against hand-built codes and decoders whose answers are known."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from genvae import arithmetic, metrics
from genvae.models import ModelConfig, build_model


class LinearToy(nn.Module):
    """An 'image' whose mean brightness is the first code coordinate: decode z -> images of value sigmoid(z0)."""

    def __init__(self, conditional: bool = False):
        super().__init__()
        self.conditional = conditional
        self.w = nn.Parameter(torch.ones(()))  # a parameter, so the helpers find a device

    def generate(self, z, y=None):
        base = torch.sigmoid(self.w * z[:, :1]).view(-1, 1, 1, 1).expand(-1, 1, 28, 28)
        if self.conditional:  # the class sets the first row of pixels to y / 10
            base = base.clone()
            base[:, :, 0, :] = (y.float() / 10).view(-1, 1, 1)
        return base

    def embed(self, x, y=None):
        v = x.mean((1, 2, 3)).clamp(1e-4, 1 - 1e-4)
        return torch.stack([torch.logit(v), torch.zeros_like(v)], 1)


def test_attribute_directions_are_top_minus_bottom_quartile_means():
    codes = torch.tensor([[0.0, 0], [1, 0], [2, 0], [3, 0], [10, 1], [10, 2], [10, 3], [10, 4]])
    values = torch.tensor([1.0, 2, 3, 4, 4, 3, 2, 1])
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    d = arithmetic.attribute_directions(codes, values, labels, 2)
    # class 0: top quartile (value 4) is code [3, 0], bottom (value 1) is [0, 0]; class 1 reversed in z1.
    torch.testing.assert_close(d, torch.tensor([[3.0, 0.0], [0.0, -3.0]]))


def test_quartile_groups_skip_nan_and_need_four_images():
    values = torch.tensor([float("nan"), 1.0, 2.0, 3.0, 4.0])
    low, high = arithmetic.quartile_groups(values, torch.zeros(5, dtype=torch.long), 0)
    assert low.tolist() == [1] and high.tolist() == [4]
    with pytest.raises(ValueError, match="at least 4"):
        arithmetic.quartile_groups(values[:3], torch.zeros(3, dtype=torch.long), 0)


def test_sweep_of_a_linear_attribute_correlates_perfectly_and_keeps_the_class():
    model = LinearToy()
    codes = torch.zeros(6, 2)
    labels = torch.arange(6) % 2
    directions = torch.tensor([[0.5, 0.0], [0.5, 0.0]])
    s = arithmetic.sweep(model, codes, labels, directions, [-2, -1, 0, 1, 2],
                         measure=lambda x: torch.logit(x.mean((1, 2, 3))),  # exactly linear in the step
                         judge_pred=lambda x: torch.arange(len(x)) % 2)
    assert s.images.shape == (5, 6, 1, 28, 28) and s.values.shape == (5, 6)
    assert s.correlation == pytest.approx(1.0, abs=1e-6)
    assert s.kept_rate == 1.0
    torch.testing.assert_close(s.mean_values(), torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0]), atol=1e-5, rtol=0)
    # A judge that reads every other image wrongly keeps the class half the time.
    s2 = arithmetic.sweep(model, codes, labels, directions, [0, 1], measure=lambda x: x.mean((1, 2, 3)),
                          judge_pred=lambda x: torch.zeros(len(x), dtype=torch.long))
    assert s2.kept_rate == 0.5


def test_transfer_unconditional_moves_by_the_centroid_difference_and_conditional_swaps_the_label():
    toy = LinearToy()
    z = torch.tensor([[0.0, 0.0]])
    cents = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    img = arithmetic.transfer(toy, z, torch.tensor([0]), torch.tensor([1]), cents)
    torch.testing.assert_close(img.mean(), torch.sigmoid(torch.tensor(2.0)))
    with pytest.raises(ValueError, match="centroids"):
        arithmetic.transfer(toy, z, torch.tensor([0]), torch.tensor([1]))
    cond = LinearToy(conditional=True)
    img = arithmetic.transfer(cond, z, torch.tensor([0]), torch.tensor([7]))
    assert float(img[0, 0, 0, 0]) == pytest.approx(0.7) and float(img[0, 0, 5, 5]) == pytest.approx(0.5)


def test_analogy_is_high_minus_low_plus_other():
    toy = LinearToy()
    out = arithmetic.analogy(toy, torch.tensor([[3.0, 0]]), torch.tensor([[1.0, 0]]), torch.tensor([[-1.0, 0]]),
                             torch.tensor([0]))
    torch.testing.assert_close(out.mean(), torch.sigmoid(torch.tensor(1.0)))


def test_cvae_encode_decode_need_labels_and_reconstruction_mse_uses_them():
    torch.manual_seed(0)
    cvae = build_model(ModelConfig("cvae", latent_dim=3, hidden=(16,)))
    x, y = torch.rand(5, 1, 28, 28), torch.arange(5)
    with pytest.raises(ValueError, match="class"):
        arithmetic.encode(cvae, x)
    z = arithmetic.encode(cvae, x, y)
    torch.testing.assert_close(z, cvae.eval().embed(x, y).detach())
    # The label matters to the decoder: one code drawn as two classes gives two images.
    a, b = arithmetic.decode(cvae, z[:1], torch.tensor([0])), arithmetic.decode(cvae, z[:1], torch.tensor([9]))
    assert not torch.allclose(a, b)
    with torch.no_grad():
        expected = float((cvae.reconstruct(x, y) - x).pow(2).mean())
    assert metrics.reconstruction_mse(cvae, x, y=y) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="pass y"):
        metrics.reconstruction_mse(cvae, x)


def test_cvae_rejects_bad_labels():
    cvae = build_model(ModelConfig("cvae", latent_dim=3, hidden=(16,)))
    x = torch.rand(2, 1, 28, 28)
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        cvae(x, torch.tensor([0, 10]))
    with pytest.raises(TypeError, match="integer class labels"):  # a wrong dtype is a TypeError
        cvae(x, torch.tensor([0.0, 1.0]))
    assert cvae.sample(4, y=3).shape == (4, 1, 28, 28)


def test_step_slope_matches_numpy_polyfit_and_skips_nan():
    import numpy as np

    g = torch.Generator().manual_seed(1)
    steps = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0])
    values = 0.7 * steps[:, None] + 3.0 + 0.3 * torch.randn(5, 8, generator=g)
    values[1, 3] = float("nan")
    t = steps[:, None].expand_as(values).reshape(-1).numpy()
    v = values.reshape(-1).numpy()
    ok = np.isfinite(v)
    ref = np.polyfit(t[ok], v[ok], 1)[0]
    assert arithmetic.step_slope(steps, values) == pytest.approx(float(ref), rel=1e-9)
    assert arithmetic.step_slope(steps, values.flip(0)) == pytest.approx(-arithmetic.step_slope(steps, values), rel=1e-9)
    s = arithmetic.Sweep(steps, torch.zeros(5, 8, 1, 28, 28), values, torch.ones(5, 8, dtype=torch.bool))
    assert s.slope == pytest.approx(float(ref), rel=1e-9)
    assert math.isnan(arithmetic.step_slope([0.0, 0.0], torch.ones(2, 3)))
    with pytest.raises(ValueError):
        arithmetic.step_slope(steps, torch.ones(4, 3))


def test_random_directions_keep_each_norm_and_point_anywhere():
    v = torch.zeros(4000, 8)
    v[:, 0] = torch.linspace(0.5, 3.0, 4000)  # every row points along the first axis, with its own norm
    r = arithmetic.random_directions(v, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(r.norm(dim=1), v.norm(dim=1))
    cos = (r / r.norm(dim=1, keepdim=True))[:, 0]
    assert abs(float(cos.mean())) < 0.03  # uniform on the sphere: no preferred side of the first axis
    assert float((cos ** 2).mean()) == pytest.approx(1 / 8, abs=0.02)  # E[cos²] = 1/D
    again = arithmetic.random_directions(v, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(r, again)  # a seeded generator reproduces the draw
    with pytest.raises(ValueError):
        arithmetic.random_directions(torch.ones(3))
