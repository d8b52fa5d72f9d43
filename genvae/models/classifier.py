"""A small CNN classifier, the book's independent judge of generated images.

It is trained on real digits only and never sees a generative model, so its
verdict on decoded images (which class? how confident?) is a fair measure of
image quality and of which class an interpolation frame looks like.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import check_images
from .config import ModelConfig
from .registry import Family, register
from .outputs import ClassifierOutput


@register
class Classifier(Family, nn.Module):
    kind = "classifier"
    uses_labels = True
    stackable = True
    diagram = "classes"

    @classmethod
    def check_config(cls, cfg) -> None:
        super().check_config(cfg)
        if not cfg.hidden:
            raise ValueError("conv models and the classifier need at least one hidden width")

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        c1, c2 = cfg.channels
        width = cfg.hidden[-1]
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, c1, 14, 14)
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),  # (B, c2, 7, 7)
            nn.Flatten(),  # (B, c2*49)
            nn.Linear(c2 * 49, width), nn.ReLU(),  # (B, F)
        )
        self.dropout = nn.Dropout(0.3)
        self.out = nn.Linear(width, cfg.n_classes)  # (B, K)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> ClassifierOutput:
        """Class logits and features; in training mode the dropout mask comes from ``generator``."""
        check_images(x)
        feats = self.features(x)  # (B, F)
        return ClassifierOutput(logits=self.out(dropout(feats, self.dropout.p, self.training, generator)),
                                features=feats)


def dropout(x: torch.Tensor, p: float, training: bool, generator: torch.Generator | None) -> torch.Tensor:
    """``nn.functional.dropout`` with the mask drawn from ``generator``: each entry is kept with
    probability 1 - p and scaled by 1 / (1 - p), so the expected output is x. On the CPU this is the
    same computation, in the same order, as ``nn.Dropout`` with the global generator."""
    if not training or p == 0:
        return x
    if generator is None:
        return nn.functional.dropout(x, p, training=True)
    keep = torch.empty_like(x).bernoulli_(1 - p, generator=generator)  # (B, F) of 0 and 1
    return x * keep.div_(1 - p)
