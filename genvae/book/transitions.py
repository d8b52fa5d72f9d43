"""Walking in a straight line from one class centroid to another, and judging every frame.

For a model with a 2-D (or any) latent space and an independent classifier:

1. take the class centroids c(k) of the test codes;
2. for each ordered pair (a, b), decode ``n_frames`` evenly spaced points on the
   segment r(d) = c(a) + d (c(b) - c(a)) / ||c(b) - c(a)||, 0 <= d <= ||c(b) - c(a)||;
3. classify every decoded frame.

The chapter on transitions reports, per model:

* **off-path rate**: the share of *interior* frames (the two endpoints are the centroids themselves,
  judged separately) classified as neither a nor b; a stricter variant counts a third class only
  when the judge gives it probability above a threshold (``min_confidence=0.5``);
* **endpoint accuracy**: the share of decoded centroids judged as their own class;
* **one-switch rate**: the share of paths whose predicted class reads a...a b...b;
* **mean confidence**: the classifier's average top probability along the paths.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..analysis.latent import decode, line_path
from ..analysis.judge import Judge
from ..analysis.paths import off_path_rate, switches_once

__all__ = ["Transitions", "class_transitions", "ordered_pairs"]


def ordered_pairs(k: int) -> list[tuple[int, int]]:
    """Every ordered pair (a, b) of distinct classes out of ``k``: k (k - 1) of them."""
    return [(a, b) for a in range(k) for b in range(k) if a != b]


@dataclass
class Transitions:
    """Judged frames of every ordered class pair. ``pred[a, b]`` is ``(F,)``; the diagonal is unused."""

    pred: torch.Tensor  # (K, K, F) predicted class of each frame
    confidence: torch.Tensor  # (K, K, F) the classifier's top probability for each frame

    @property
    def n_classes(self) -> int:
        return self.pred.shape[0]

    def pairs(self) -> list[tuple[int, int]]:
        return ordered_pairs(self.n_classes)

    @property
    def n_frames(self) -> int:
        return self.pred.shape[-1]

    def off_path_matrix(self, min_confidence: float | None = None, interior: bool = True) -> torch.Tensor:
        """``(K, K)`` share of interior frames (all frames without ``interior``) judged as neither endpoint
        (:func:`genvae.analysis.metrics.off_path_rate`); NaN on the diagonal."""
        off = torch.full((self.n_classes, self.n_classes), float("nan"), dtype=torch.float64)
        for a, b in self.pairs():
            off[a, b] = off_path_rate(self.pred[a, b], a, b, self.confidence[a, b], min_confidence, interior)
        return off

    def off_path_rate(self, min_confidence: float | None = None, interior: bool = True) -> float:
        """Share of all interior frames (all frames without ``interior``), over all ordered pairs, judged as
        neither endpoint; with ``min_confidence``, only those judged so with top probability above it.
        Every path has the same number of frames, so this is also the mean of :meth:`off_path_matrix`."""
        return float(self.off_path_matrix(min_confidence, interior).nanmean())

    def endpoint_classes(self) -> torch.Tensor:
        """``(K,)`` the judged class of each decoded centroid (the first frame of every path from it)."""
        k = self.n_classes
        return torch.stack([self.pred[a, (a + 1) % k, 0] for a in range(k)])

    def endpoint_accuracy(self) -> float:
        """Share of endpoint frames, over both ends of all paths, judged as their own class.

        Both ends of path (a, b) decode c(a) and c(b), so this is the share of decoded centroids that
        the judge reads as their own class (up to rounding in the path's last point).
        """
        pairs = self.pairs()
        hits = [int(self.pred[a, b, 0] == a) + int(self.pred[a, b, -1] == b) for a, b in pairs]
        return sum(hits) / (2 * len(pairs))

    def one_switch_rate(self) -> float:
        """Share of paths whose predictions read a, ..., a, b, ..., b."""
        pairs = self.pairs()
        return sum(switches_once(self.pred[a, b], a, b) for a, b in pairs) / len(pairs)

    def mean_confidence(self) -> float:
        """Mean top-class probability over all frames of all paths."""
        mask = ~torch.eye(self.n_classes, dtype=torch.bool)
        return float(self.confidence[mask].mean())


@torch.no_grad()
def class_transitions(model: nn.Module, judge: Judge | nn.Module, centroids: torch.Tensor, n_frames: int = 16,
                      path: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor] = line_path) -> Transitions:
    """Decode and classify paths between every ordered pair of centroids ``(K, D)``: straight ones by default,
    or any ``path(c_a, c_b, n_frames) -> (n_frames, D)`` that starts at c_a and ends at c_b (a slerp, say)."""
    k = len(centroids)
    pairs = ordered_pairs(k)
    points = []
    for a, b in pairs:
        p = torch.as_tensor(path(centroids[a], centroids[b], n_frames), dtype=centroids.dtype)
        if tuple(p.shape) != (n_frames, centroids.shape[1]):
            raise ValueError(f"path must return (n_frames, D) = ({n_frames}, {centroids.shape[1]}) points, "
                             f"got {tuple(p.shape)}")
        points.append(p)
    points = torch.cat(points)  # (P*F, D)
    probs = Judge.of(judge).predict_proba(decode(model, points)).view(len(pairs), n_frames, -1)  # (P, F, K')
    pred = torch.full((k, k, n_frames), -1, dtype=torch.long)
    conf = torch.full((k, k, n_frames), float("nan"))
    for i, (a, b) in enumerate(pairs):
        conf[a, b], pred[a, b] = probs[i].max(-1)
    return Transitions(pred=pred, confidence=conf)
