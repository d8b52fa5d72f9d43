r"""The multi-stage VAE: a VAE whose latent code also feeds a classifier head.

      x -> encoder -> (mu, logvar) -> z -> decoder    -> x_hat
                                       \-> head (MLP) -> class logits

Training adds gamma * cross-entropy(logits, y) to the VAE loss (see
``genvae.models.losses.multistage_loss``). The classification term pushes codes of
different classes apart, which is what the transitions chapter relies on.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import check_codes
from .config import ModelConfig
from .registry import register
from .outputs import MultiStageOutput
from .vae import VAE


@register
class MultiStageVAE(VAE):
    """A :class:`~genvae.models.vae.VAE` plus an MLP classifier head on z."""

    kind = "multistage"
    uses_labels = True  # the head's cross-entropy
    diagram = "posterior+head"

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.head = nn.Sequential(
            nn.Linear(cfg.latent_dim, cfg.head_hidden), nn.ReLU(),  # (B, H)
            nn.Linear(cfg.head_hidden, cfg.n_classes),  # (B, K)
        )

    def classify(self, z: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, K)`` of codes ``(B, D)``."""
        check_codes(z, self.config.latent_dim)
        return self.head(z)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> MultiStageOutput:
        out = super().forward(x, generator)
        # The head sees the *sampled* z, so it must classify well across the whole
        # posterior, not only at its mean: this is what separates the clusters.
        return MultiStageOutput(**vars(out), logits=self.classify(out.z))
