"""The plain autoencoder: x -> z = f(x) -> x_hat = g(z).

Trained to make x_hat close to x. With a latent smaller than the input
(784 -> D) it must learn a compressed code; with a larger one it can learn to
copy its input (the identity trap shown in the convolutional-AE chapter).
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import check_codes, check_images, make_decoder, make_encoder
from .config import ModelConfig
from .registry import Family, register
from .outputs import AEOutput


@register
class AutoEncoder(Family, nn.Module):
    """Deterministic autoencoder, MLP or convolutional (``cfg.arch``)."""

    # Encoder outputs per latent dimension: 1 for a point code (the VAE needs 2).
    outputs_per_latent = 1
    kind = "ae"
    stackable = True
    diagram = "code"

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.encoder = make_encoder(cfg, self.outputs_per_latent * cfg.latent_dim)
        self.decoder = make_decoder(cfg)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Latent code of images ``(B, 1, 28, 28)`` -> ``(B, D)``."""
        check_images(x)
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel logits ``(B, 1, 28, 28)`` of codes ``(B, D)``."""
        check_codes(z, self.config.latent_dim)
        return self.decoder(z)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] ``(B, 1, 28, 28)`` decoded from codes ``(B, D)``."""
        return torch.sigmoid(self.decode(z))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic reconstruction in [0, 1]."""
        return self.generate(self.embed(x))

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> AEOutput:
        """Encode and decode; deterministic (``generator`` is accepted, like every model's, and unused)."""
        z = self.embed(x)  # (B, D)
        x_logits = self.decode(z)  # (B, 1, 28, 28)
        return AEOutput(x_hat=torch.sigmoid(x_logits), x_logits=x_logits, z=z)
