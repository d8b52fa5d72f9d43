"""Encoder and decoder bodies shared by the autoencoder family.

An encoder maps images ``(B, 1, 28, 28)`` to a flat vector ``(B, out_dim)``; a
decoder maps a code ``(B, latent_dim)`` to pixel logits ``(B, 1, 28, 28)``.
The AE asks its encoder for ``D`` outputs, the VAE for ``2D`` (mean and
log-variance), so the bodies are written once.
"""

from __future__ import annotations

import torch
from torch import nn

from ..checks import IMAGE_SHAPE, check_codes, check_images, check_labels  # noqa: F401  (the models' input checks)
from .config import ModelConfig

N_PIXELS = 784


def _mlp(widths: list[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig, out_dim: int):
        super().__init__()
        self.net = _mlp([N_PIXELS, *cfg.hidden, out_dim])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))  # (B, 784) -> (B, out_dim)


class MLPDecoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.net = _mlp([cfg.latent_dim, *reversed(cfg.hidden), N_PIXELS])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *IMAGE_SHAPE)  # (B, D) -> (B, 784) -> (B, 1, 28, 28)


class ConvEncoder(nn.Module):
    def __init__(self, cfg: ModelConfig, out_dim: int):
        super().__init__()
        c1, c2 = cfg.channels
        self.net = nn.Sequential(
            nn.Conv2d(1, c1, 4, stride=2, padding=1), nn.ReLU(),  # (B, c1, 14, 14)
            nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.ReLU(),  # (B, c2, 7, 7)
            nn.Flatten(),  # (B, c2*49)
            nn.Linear(c2 * 49, cfg.hidden[-1]), nn.ReLU(),  # (B, H)
            nn.Linear(cfg.hidden[-1], out_dim),  # (B, out_dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c1, c2 = cfg.channels
        self.net = nn.Sequential(
            nn.Linear(cfg.latent_dim, cfg.hidden[-1]), nn.ReLU(),  # (B, H)
            nn.Linear(cfg.hidden[-1], c2 * 49), nn.ReLU(),  # (B, c2*49)
            nn.Unflatten(1, (c2, 7, 7)),  # (B, c2, 7, 7)
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), nn.ReLU(),  # (B, c1, 14, 14)
            nn.ConvTranspose2d(c1, 1, 4, stride=2, padding=1),  # (B, 1, 28, 28) logits
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class FullConvEncoder(nn.Module):
    """No bottleneck: ``out_dim / 784`` feature maps at full resolution, flattened."""

    def __init__(self, cfg: ModelConfig, out_dim: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, out_dim // 784, 3, padding=1), nn.ReLU(),  # (B, C, 28, 28)
            nn.Flatten(),  # (B, C*784): as many numbers as C images
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class FullConvDecoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.net = nn.Sequential(
            nn.Unflatten(1, (cfg.latent_dim // 784, 28, 28)),  # (B, C, 28, 28)
            nn.Conv2d(cfg.latent_dim // 784, 1, 3, padding=1),  # (B, 1, 28, 28) logits
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


_ENCODERS = {"mlp": MLPEncoder, "conv": ConvEncoder, "fullconv": FullConvEncoder}
_DECODERS = {"mlp": MLPDecoder, "conv": ConvDecoder, "fullconv": FullConvDecoder}


def make_encoder(cfg: ModelConfig, out_dim: int) -> nn.Module:
    return _ENCODERS[cfg.arch](cfg, out_dim)


def make_decoder(cfg: ModelConfig) -> nn.Module:
    return _DECODERS[cfg.arch](cfg)
