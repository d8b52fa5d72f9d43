"""Chapter 8's measures: interior off-path rate, endpoint accuracy, the confident variant, the sample judge.

A synthetic judge reads a constant image's brightness, so the right answer for every frame of a path
is known in advance and is computed here independently, with numpy.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from genvae import metrics
from genvae.models.outputs import ClassifierOutput
from genvae.metrics import off_path_rate
from genvae.transitions import Transitions, class_transitions

from test_transitions import _Decoder  # noqa: E402  (a constant image holding z's first coordinate)

CENTRES = np.array([1 / 6, 3 / 6, 5 / 6])  # brightness of classes 0, 1, 2


class _Judge(nn.Module):
    """Logits -scale * |brightness - centre|: small ``scale`` gives a hesitant judge."""

    def __init__(self, scale: float = 50.0):
        super().__init__()
        self.scale = scale
        self.p = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        v = x.mean((1, 2, 3))
        logits = torch.stack([-(v - c).abs() * self.scale for c in CENTRES.tolist()], 1) + 0 * self.p
        return ClassifierOutput(logits=logits, features=torch.stack([v, v ** 2], 1))


def _expected(a_bright, b_bright, n, scale):
    """Brightness, judged class and top probability of each frame, with numpy."""
    v = np.linspace(a_bright, b_bright, n)
    logits = -scale * np.abs(v[:, None] - CENTRES[None])
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    return p.argmax(1), p.max(1)


def test_off_path_rate_can_leave_out_the_endpoints():
    pred = torch.tensor([0, 2, 2, 1])
    assert off_path_rate(pred, 0, 1, interior=True) == 1.0  # both interior frames are a third class
    assert off_path_rate(pred, 0, 1, interior=False) == 0.5  # the old measure counted 4 frames
    wrong_end = torch.tensor([2, 0, 1, 2])  # endpoints misjudged: not a detour
    assert off_path_rate(wrong_end, 0, 1, interior=True) == 0.0
    assert off_path_rate(wrong_end, 0, 1, interior=False) == 0.5
    conf = torch.tensor([0.9, 0.4, 0.8, 0.9])
    assert off_path_rate(pred, 0, 1, conf, min_confidence=0.5, interior=True) == 0.5
    with pytest.raises(ValueError):
        off_path_rate(pred, 0, 1, min_confidence=0.5, interior=True)
    with pytest.raises(ValueError):
        off_path_rate(torch.tensor([0, 1]), 0, 1, interior=True)


@pytest.mark.parametrize("n_frames", [6, 8, 11])
def test_off_path_rate_matches_an_independent_count(n_frames):
    c = torch.tensor([[1 / 6, 0.0], [3 / 6, 0.0], [5 / 6, 0.0]])
    t = class_transitions(_Decoder(), _Judge(), c, n_frames=n_frames)
    shares = []
    for a in range(3):
        for b in range(3):
            if a != b:
                cls, _ = _expected(CENTRES[a], CENTRES[b], n_frames, 50.0)
                inner = cls[1:-1]
                shares.append(np.mean((inner != a) & (inner != b)))
                assert float(t.off_path_matrix()[a, b]) == pytest.approx(shares[-1])
    assert t.off_path_rate() == pytest.approx(np.mean(shares))
    assert t.off_path_rate() > 0  # 0 -> 2 and 2 -> 0 cross class 1
    assert t.endpoint_accuracy() == 1.0 and t.endpoint_classes().tolist() == [0, 1, 2]


def test_a_misplaced_centroid_lowers_the_endpoint_accuracy_not_the_off_path_rate():
    # Class 2's centroid decodes to grey, which the judge reads as class 1.
    c = torch.tensor([[1 / 6, 0.0], [3 / 6, 0.0], [0.52, 0.0]])
    t = class_transitions(_Decoder(), _Judge(), c, n_frames=8)
    assert t.endpoint_classes().tolist() == [0, 1, 1]
    assert t.endpoint_accuracy() == pytest.approx(8 / 12)  # class 2 is one end of 4 of the 6 paths
    # Path 1 -> 2 stays in grey: every frame is class 1, an endpoint class, so no detour.
    assert float(t.off_path_matrix()[1, 2]) == 0.0
    assert float(t.off_path_matrix(interior=False)[1, 2]) == 0.0


def test_a_hesitant_judge_counts_no_confident_third_class():
    c = torch.tensor([[1 / 6, 0.0], [3 / 6, 0.0], [5 / 6, 0.0]])
    scale = 1.0  # every top probability is below 0.5 (checked with numpy below)
    t = class_transitions(_Decoder(), _Judge(scale), c, n_frames=8)
    cls, top = _expected(CENTRES[0], CENTRES[2], 8, scale)
    assert top.max() < 0.5 and (cls[1:-1] == 1).any()
    assert t.off_path_rate() > 0
    assert t.off_path_rate(min_confidence=0.5) == 0.0
    sure = class_transitions(_Decoder(), _Judge(50.0), c, n_frames=8)
    assert sure.off_path_rate(min_confidence=0.5) == pytest.approx(sure.off_path_rate())


def test_hand_built_transitions_confident_variant():
    pred = torch.zeros(2, 2, 5, dtype=torch.long)
    conf = torch.full((2, 2, 5), 0.9)
    pred[0, 1] = torch.tensor([0, 3, 3, 1, 1])
    conf[0, 1, 1] = 0.3  # the first detour frame is a guess
    pred[1, 0] = torch.tensor([1, 1, 0, 0, 0])
    t = Transitions(pred=pred, confidence=conf)
    assert t.off_path_rate() == pytest.approx((2 / 3 + 0) / 2)
    assert t.off_path_rate(min_confidence=0.5) == pytest.approx((1 / 3 + 0) / 2)
    assert t.off_path_rate(interior=False) == pytest.approx((2 / 5 + 0) / 2)
    assert t.endpoint_accuracy() == 1.0 and t.n_frames == 5


def test_sample_judge_is_sample_quality_against_the_reference():
    judge = _Judge()
    ref = torch.rand(200, 1, 1, 1, generator=torch.Generator().manual_seed(0)).expand(-1, 1, 28, 28)
    imgs = torch.rand(150, 1, 1, 1, generator=torch.Generator().manual_seed(1)).expand(-1, 1, 28, 28)
    score = metrics.SampleJudge(judge, ref)
    assert score.feature_dim == 2
    got = score(imgs)
    want = metrics.sample_quality(metrics.Judge(judge).judgement(imgs), metrics.Judge(judge).judgement(ref).features)
    assert got == pytest.approx(want)
    # An independent pairwise-distance reference: all distinct pairs, with numpy.
    f = score.features(imgs).double().numpy()
    d = np.linalg.norm(f[:, None] - f[None], axis=-1)
    exact = d[~np.eye(len(f), dtype=bool)].mean()
    assert got["pairwise feature distance"] == pytest.approx(exact, rel=0.05)
