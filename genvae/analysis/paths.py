"""Rules about paths in latent space, judged by the classifier: off-path rates, class changes, switching once."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..checks import check_same_length
from .judge import Judge


def off_path_rate(
    pred: torch.Tensor,
    a: int,
    b: int,
    confidence: torch.Tensor | None = None,
    min_confidence: float | None = None,
    interior: bool = False,
) -> float:
    """Share of a path's frames judged as a third class, neither ``a`` nor ``b``.

    ``pred``: ``(F,)`` predicted classes along one path (or ``(P, F)`` for several paths of the same pair).
    With ``interior`` the first and last frame are left out: on a path between class centroids they decode
    c(a) and c(b) themselves, whose verdicts are the endpoint accuracy, not a detour. With
    ``min_confidence`` a frame counts only if the judge's top probability ``confidence`` (same shape as
    ``pred``) is above it, so a frame the judge merely leans towards a third class is not counted.
    """
    off = (pred != a) & (pred != b)  # (..., F)
    if min_confidence is not None:
        if confidence is None:
            raise ValueError("min_confidence needs the judge's confidence of every frame")
        if confidence.shape != pred.shape:
            raise ValueError(f"confidence must have the shape of pred, {tuple(pred.shape)}, got {tuple(confidence.shape)}")
        off = off & (confidence > min_confidence)
    if interior:
        if off.shape[-1] < 3:
            raise ValueError(f"a path needs at least 3 frames to have an interior, got {off.shape[-1]}")
        off = off[..., 1:-1]
    return float(off.double().mean())


@dataclass(frozen=True)
class ClassChanges:
    """How often a model's output is judged another class than its input (see :func:`class_changes`)."""

    read_right: int  # inputs the judge assigns to their own label: the ones that count
    changed: int  # of those, outputs the judge assigns to another class
    top_pair: tuple[int, int] | None  # the commonest change (input class, output class); None without changes
    top_pair_count: int

    @property
    def rate(self) -> float:
        """``changed / read_right``: the share of correctly judged inputs that come back as another class."""
        return self.changed / self.read_right if self.read_right else float("nan")


def class_changes(classifier: nn.Module | Judge, inputs: torch.Tensor, outputs: torch.Tensor, labels: torch.Tensor,
                  batch_size: int | None = None) -> ClassChanges:
    """Count the outputs (e.g. reconstructions) that the judge assigns to another class than their inputs.

    Only inputs that the judge itself reads as their label count: a misjudged input would otherwise be
    charged to the model. ``inputs`` and ``outputs`` are images ``(N, 1, 28, 28)`` in the same order,
    ``labels`` ``(N,)``.
    """
    check_same_length(inputs=inputs, outputs=outputs, labels=labels)
    if inputs.shape != outputs.shape:
        raise ValueError(f"inputs and outputs must have one shape, got {tuple(inputs.shape)} and {tuple(outputs.shape)}")
    judge = Judge(classifier, batch_size)
    before, after = judge.predict(inputs), judge.predict(outputs)  # (N,) each
    right = before == labels.cpu()
    changed = right & (after != before)
    pairs = torch.stack([labels.cpu()[changed], after[changed]], 1).tolist()  # (changed, 2)
    top, count = None, 0
    if pairs:
        counts: dict[tuple[int, int], int] = {}
        for a, b in pairs:
            counts[(a, b)] = counts.get((a, b), 0) + 1
        top, count = max(sorted(counts.items()), key=lambda kv: kv[1])  # ties go to the smallest pair
    return ClassChanges(int(right.sum()), int(changed.sum()), top, count)


def switches_once(pred: torch.Tensor, a: int, b: int) -> bool:
    """True if the predicted classes along a path read a, ..., a, b, ..., b (exactly one switch)."""
    p = pred.tolist()
    changes = sum(1 for u, v in zip(p[:-1], p[1:]) if u != v)
    return p[0] == a and p[-1] == b and changes == 1
