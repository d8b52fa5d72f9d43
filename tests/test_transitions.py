"""Transition metrics and sample-quality measures, on hand-built cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from genvae import metrics
from genvae.models.outputs import ClassifierOutput
from genvae.transitions import Transitions, class_transitions


class _Decoder(nn.Module):
    """A 'model' whose decoded image is a constant image holding z's first coordinate."""

    def __init__(self):
        super().__init__()
        self.p = nn.Parameter(torch.zeros(()))

    def generate(self, z):
        return z[:, :1, None, None].expand(-1, 1, 28, 28).clamp(0, 1) + 0 * self.p


class _Judge(nn.Module):
    """Classifies a constant image by its brightness into K = 3 equal bins."""

    def __init__(self):
        super().__init__()
        self.p = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        v = x.mean((1, 2, 3))
        logits = torch.stack([-(v - c).abs() * 50 for c in (1 / 6, 3 / 6, 5 / 6)], 1) + 0 * self.p
        return ClassifierOutput(logits=logits, features=logits)


def test_transitions_through_a_middle_class_are_off_path():
    # Centroids on a line: class 0 dark, class 1 grey, class 2 bright.
    c = torch.tensor([[1 / 6, 0.0], [3 / 6, 0.0], [5 / 6, 0.0]])
    t = class_transitions(_Decoder(), _Judge(), c, n_frames=9)
    off = t.off_path_matrix()
    assert off[0, 1] == 0 and off[1, 2] == 0  # neighbours: no third class on the way
    assert off[0, 2] > 0.2 and off[2, 0] > 0.2  # 0 -> 2 crosses class 1
    assert math.isnan(off[1, 1])
    assert t.one_switch_rate() == pytest.approx(4 / 6)  # all but 0->2 and 2->0
    assert t.off_path_rate() == pytest.approx(float(off.nanmean()))
    assert 0.3 < t.mean_confidence() <= 1


def test_transitions_follow_another_path_when_given_one():
    c = torch.tensor([[1 / 6, 0.0], [3 / 6, 0.0], [5 / 6, 0.0]])

    def jump(c_a, c_b, n_frames):  # stays on c_a, then jumps to c_b: never crosses the middle class
        return torch.stack([c_a] * (n_frames - 1) + [c_b])

    t = class_transitions(_Decoder(), _Judge(), c, n_frames=9, path=jump)
    assert t.off_path_rate() == 0 and t.one_switch_rate() == 1
    assert class_transitions(_Decoder(), _Judge(), c, n_frames=9).off_path_rate() > 0  # the straight line does cross
    with pytest.raises(ValueError, match="n_frames"):
        class_transitions(_Decoder(), _Judge(), c, n_frames=9, path=lambda c_a, c_b, n: torch.stack([c_a, c_b]))


def test_transitions_handmade_predictions():
    pred = torch.zeros(2, 2, 4, dtype=torch.long)
    pred[0, 1] = torch.tensor([0, 0, 1, 1])
    pred[1, 0] = torch.tensor([1, 0, 1, 0])  # flickers: on path but not one switch
    t = Transitions(pred=pred, confidence=torch.full((2, 2, 4), 0.9))
    assert t.off_path_rate() == 0 and t.one_switch_rate() == 0.5
    assert t.mean_confidence() == pytest.approx(0.9)


def test_frechet_distance_known_cases():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 3, generator=g, dtype=torch.float64)
    assert metrics.frechet_distance(a, a) == pytest.approx(0, abs=1e-6)
    # N(m, s^2 I) vs N(0, I): ||m||^2 + d (s - 1)^2
    b = 2.0 * torch.randn(20000, 3, generator=g, dtype=torch.float64) + torch.tensor([1.0, 0.0, -1.0], dtype=torch.float64)
    assert metrics.frechet_distance(a, b) == pytest.approx(2 + 3 * 1.0, rel=0.05)


def test_class_entropy_and_pairwise_distance():
    assert metrics.class_entropy(torch.arange(1000) % 10) == pytest.approx(math.log(10))
    one_class = metrics.class_entropy(torch.zeros(50, dtype=torch.long))
    assert one_class == 0 and math.copysign(1, one_class) == 1  # +0.0, never printed as "-0.000"
    pts = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    assert metrics.mean_pairwise_distance(pts, n_pairs=100) == pytest.approx(5.0)
    g = torch.Generator().manual_seed(1)
    spread = metrics.mean_pairwise_distance(torch.randn(1000, 5, generator=g) * 3)
    tight = metrics.mean_pairwise_distance(torch.randn(1000, 5, generator=g))
    assert spread == pytest.approx(3 * tight, rel=0.1)
    assert np.isfinite(spread)


def test_class_transitions_takes_a_judge_object_as_well_as_its_classifier():
    c = torch.tensor([[1 / 6, 0.0], [3 / 6, 0.0], [5 / 6, 0.0]])
    plain = class_transitions(_Decoder(), _Judge(), c, n_frames=9)
    judged = class_transitions(_Decoder(), metrics.Judge(_Judge(), batch_size=4), c, n_frames=9)
    assert torch.equal(plain.pred, judged.pred)
    torch.testing.assert_close(plain.confidence, judged.confidence, rtol=0, atol=0, equal_nan=True)  # NaN: a == b
