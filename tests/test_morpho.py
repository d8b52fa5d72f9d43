"""Digit morphometrics (genvae.morpho) on images whose answers are known by construction, and on real MNIST."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

import genvae
from genvae import morpho


def bar(w: int, h: int, angle: float = 0.0, size: int = 28, value: float = 1.0) -> torch.Tensor:
    """A ``w``-wide, ``h``-tall bar, ``(size, size)``, sheared by ``angle`` degrees (positive: top to the right).

    Row ``r`` is shifted right by ``round((r_c - r) * tan(angle))`` pixels, ``r_c`` the middle row,
    so every row keeps exactly ``w`` pixels: area ``w * h`` and horizontal width ``w`` whatever the angle.
    """
    img = np.zeros((size, size), np.float32)
    r0, c0 = (size - h) // 2, (size - w) // 2
    rc = r0 + (h - 1) / 2
    for r in range(r0, r0 + h):
        shift = int(round((rc - r) * math.tan(math.radians(angle))))
        img[r, c0 + shift:c0 + shift + w] = value
    return torch.from_numpy(img)


def batch(*imgs: torch.Tensor) -> torch.Tensor:
    """Stack ``(H, W)`` images into ``(N, 1, H, W)``."""
    return torch.stack(imgs)[:, None]


def ring(outer: float, inner: float, size: int = 28) -> torch.Tensor:
    """An annulus centred in the image: a closed stroke of thickness ``outer - inner``."""
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    r = np.hypot(yy, xx)
    return torch.from_numpy(((r <= outer) & (r > inner)).astype(np.float32))


def test_upright_bar_has_known_measures():
    m = morpho.measure(bar(3, 16))
    assert m.area.item() == 3 * 16
    assert m.thickness.item() == pytest.approx(3, abs=0.25)
    assert m.slant.item() == pytest.approx(0, abs=0.5)
    assert m.width.item() == pytest.approx(3, abs=0.25)
    assert m.height.item() == pytest.approx(16, abs=0.5)


@pytest.mark.parametrize("angle", [15.0, -20.0, 30.0])
def test_sheared_bar_measures_its_angle(angle):
    w, h = 4, 18
    upright, sheared = morpho.measure(bar(w, h)), morpho.measure(bar(w, h, angle))
    assert sheared.slant.item() == pytest.approx(angle, abs=1.5)  # rounding rows to pixels costs ~1°
    assert sheared.area.item() == upright.area.item() == w * h
    # a shear keeps horizontal width w; the stroke measured across is w·cos(angle)
    assert abs(sheared.thickness.item() - w * math.cos(math.radians(angle))) < 0.75
    assert sheared.width.item() == pytest.approx(w, abs=1.0)  # jagged edges add up to ~1 px
    assert sheared.height.item() == pytest.approx(h, abs=0.5)


@pytest.mark.parametrize("angle", [0.0, 15.0])
def test_thickness_grows_with_bar_width(angle):
    widths = [2, 3, 4, 5]
    t = morpho.thickness(batch(*(bar(w, 18, angle) for w in widths)))
    assert bool((t.diff() > 0).all()), t
    if angle == 0.0:
        assert torch.allclose(t, torch.tensor(widths, dtype=torch.float32), atol=0.75), t


def test_closed_loop_thickness():
    t = morpho.thickness(ring(9.5, 6.5)).item()  # no end points: thickness is area / length
    assert t == pytest.approx(3, abs=0.75)


def test_mirror_image_flips_slant():
    img = bar(5, 16, 20.0)
    m = morpho.measure(batch(img, img.flip(-1)))
    assert m.slant[0].item() > 10
    assert m.slant[1].item() == pytest.approx(-m.slant[0].item(), abs=1e-4)
    for name in ("area", "thickness", "width", "height"):
        a, b = getattr(m, name)
        assert a.item() == pytest.approx(b.item(), abs=1e-4), name


def test_empty_image_gives_nan_and_zero_area():
    m = morpho.measure(batch(torch.zeros(28, 28), bar(3, 10)))
    assert m.area.tolist()[0] == 0
    for name in ("thickness", "slant", "width", "height"):
        v = getattr(m, name)
        assert math.isnan(v[0].item()), name
        assert not math.isnan(v[1].item()), name
    assert morpho.measure(torch.zeros(0, 1, 28, 28)).area.shape == (0,)


def test_threshold_decides_foreground():
    faint = bar(3, 12, value=0.4)
    assert morpho.area(faint).item() == 0
    assert morpho.area(faint, threshold=0.3).item() == 36


def test_output_shapes_and_functions_agree():
    x = batch(bar(2, 14), bar(4, 20, 10.0), ring(9, 6))
    m = morpho.measure(x)
    assert len(m) == 3
    for name, value in m.as_dict().items():
        assert value.shape == (3,) and value.dtype == torch.float32
        assert torch.equal(value, getattr(morpho, name)(x)), name
    assert morpho.measure(bar(2, 14)).slant.shape == (1,)  # a single (H, W) image is N = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.area = m.width  # type: ignore[misc]


@pytest.mark.parametrize("shape", [(28,), (2, 28, 28), (2, 3, 28, 28), (1, 1, 28, 28, 1), (28, 0)])
def test_wrong_shape_raises(shape):
    with pytest.raises(ValueError, match="shape|must be"):
        morpho.measure(torch.zeros(shape))


@pytest.mark.parametrize("bad", [1.5, -0.1, math.nan])
def test_values_outside_unit_interval_raise(bad):
    x = bar(3, 10).clone()
    x[0, 0] = bad
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        morpho.measure(x)


def test_other_bad_inputs_raise():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        morpho.area((bar(3, 10) * 255).to(torch.uint8))
    with pytest.raises(ValueError, match="torch.Tensor"):
        morpho.area(bar(3, 10).numpy())  # type: ignore[arg-type]
    for threshold in (0.0, 1.5):
        with pytest.raises(ValueError, match="threshold"):
            morpho.area(bar(3, 10), threshold=threshold)


def test_real_mnist_digits_are_plausible(mnist):
    x, y = mnist.x_test[:100], mnist.y_test[:100]
    m = morpho.measure(x)
    for name, value in m.as_dict().items():
        assert not bool(value.isnan().any()), name
    assert 1.5 < m.thickness.mean().item() < 4
    assert m.slant.abs().max().item() < 45
    assert 1 < m.width.min().item() and m.width.max().item() <= 28
    assert 10 < m.height.mean().item() <= 28
    ones, zeros = y == 1, y == 0
    assert ones.sum() >= 5 and zeros.sum() >= 5
    assert m.width[ones].mean() < m.width[zeros].mean()
    assert m.area[ones].mean() < m.area[zeros].mean()


def test_threshold_gap_reads_grey_edges_as_thickness():
    """A 3-px bar with a grey (0.5) column on each side is 5 px thick at threshold 0.3 and 3 px at 0.7;
    the same bar without the grey edges measures the same at both."""
    sharp = bar(3, 16)
    blurred = torch.maximum(sharp, 0.5 * bar(5, 16))
    gap = morpho.threshold_gap(batch(sharp, blurred), "thickness", low=0.3, high=0.7)
    ref = morpho.measure(bar(5, 16)).thickness - morpho.measure(bar(3, 16)).thickness
    assert gap[0].item() == pytest.approx(0.0, abs=1e-6)
    torch.testing.assert_close(gap[1:], ref)
    assert gap[1].item() == pytest.approx(2.0, abs=0.5)
    assert morpho.threshold_gap(batch(blurred), "area", 0.3, 0.7).item() == 2 * 16
    assert math.isnan(morpho.threshold_gap(batch(torch.zeros(28, 28)), "thickness").item())
    with pytest.raises(ValueError):
        morpho.threshold_gap(batch(sharp), "thickness", low=0.7, high=0.3)
    with pytest.raises(ValueError):
        morpho.threshold_gap(batch(sharp), "colour")
