"""A small U-Net for 28x28 images with a time input: the network of the diffusion and flow-matching families.

    x_t (B, 1, 28, 28), t (B,) in [0, 1]
      -> conv 3x3                       (B, c1, 28, 28)  --- skip a
      -> res block(t)                   (B, c1, 28, 28)
      -> conv 4x4 stride 2              (B, c2, 14, 14)  --- skip b
      -> res block(t)                   (B, c2, 14, 14)
      -> conv 4x4 stride 2              (B, c2, 7, 7)
      -> res block(t), res block(t)     (B, c2, 7, 7)    the middle
      -> transposed conv, concat b      (B, 2 c2, 14, 14) -> res block(t) (B, c2, 14, 14)
      -> transposed conv, concat a      (B, c2 + c1, 28, 28) -> res block(t) (B, c1, 28, 28)
      -> norm, SiLU, conv 3x3           (B, 1, 28, 28)   the prediction (noise or velocity)

The time enters every residual block as a per-channel shift, from a sinusoidal embedding of t
followed by a two-layer MLP (Ho et al. 2020, after the Transformer's positional encoding). Widths come
from ``ModelConfig.channels`` (c1, c2) and the embedding's width from ``hidden[-1]``.
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import nn

from ..settings import training_precision
from .config import ModelConfig


def to_signal(x: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] -> the [-1, 1] scale the diffusion and flow models work in (so noise N(0, 1) matches)."""
    return 2 * x - 1


def from_signal(s: torch.Tensor) -> torch.Tensor:
    """The models' [-1, 1] scale -> images in [0, 1] (clipped)."""
    return ((s + 1) / 2).clamp(0, 1)


def sampling_precision(device: torch.device):
    """The context in which the samplers call the U-Net: bf16 autocast where the book trains in bf16 (a CPU with
    native bf16, :func:`genvae.settings.training_precision`), else nothing. The solver's state stays float32;
    only the network's convolutions run in bf16 (measured: 0.85-0.9 ms instead of 1.5-3.4 ms per image and
    evaluation on one CPU thread, batches of 100-500, the 16/32 U-Net)."""
    if training_precision() == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def time_embedding(t: torch.Tensor, dim: int, scale: float = 1000.0) -> torch.Tensor:
    """Sinusoidal features of times ``t`` ``(B,)`` in [0, 1]: ``(B, dim)``, sines then cosines of ``scale * t``
    at ``dim / 2`` frequencies from 1 down to 1/10,000 (``dim`` even)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)  # (dim/2,)
    angles = scale * t.float()[:, None] * freqs[None]  # (B, dim/2)
    return torch.cat([angles.sin(), angles.cos()], dim=1)  # (B, dim)


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, c), c)  # 8 groups where they divide the channels


class ResBlock(nn.Module):
    """Two 3x3 convolutions with a skip; the time embedding shifts the channels between them."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int):
        super().__init__()
        self.norm1, self.conv1 = _norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(emb_dim, c_out)
        self.norm2, self.conv2 = _norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(torch.nn.functional.silu(self.norm1(x)))  # (B, c_out, H, W)
        h = h + self.time(emb)[:, :, None, None]  # the time, one shift per channel
        h = self.conv2(torch.nn.functional.silu(self.norm2(h)))
        return h + self.skip(x)


class UNet(nn.Module):
    """``net(x, t)``: images ``(B, 1, 28, 28)`` and times ``(B,)`` in [0, 1] -> ``(B, 1, 28, 28)``."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c1, c2 = cfg.channels
        emb = cfg.hidden[-1]
        if emb % 2:
            raise ValueError(f"the time embedding's width hidden[-1] must be even, got {emb}")
        self.emb_dim = emb
        self.time_mlp = nn.Sequential(nn.Linear(emb, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.inp = nn.Conv2d(1, c1, 3, padding=1)
        self.down1, self.pool1 = ResBlock(c1, c1, emb), nn.Conv2d(c1, c2, 4, stride=2, padding=1)
        self.down2, self.pool2 = ResBlock(c2, c2, emb), nn.Conv2d(c2, c2, 4, stride=2, padding=1)
        self.mid1, self.mid2 = ResBlock(c2, c2, emb), ResBlock(c2, c2, emb)
        self.up2, self.dec2 = nn.ConvTranspose2d(c2, c2, 4, stride=2, padding=1), ResBlock(2 * c2, c2, emb)
        self.up1, self.dec1 = nn.ConvTranspose2d(c2, c2, 4, stride=2, padding=1), ResBlock(c2 + c1, c1, emb)
        self.out = nn.Sequential(_norm(c1), nn.SiLU(), nn.Conv2d(c1, 1, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.time_mlp(time_embedding(t, self.emb_dim))  # (B, E)
        a = self.down1(self.inp(x), emb)  # (B, c1, 28, 28)
        b = self.down2(self.pool1(a), emb)  # (B, c2, 14, 14)
        h = self.mid2(self.mid1(self.pool2(b), emb), emb)  # (B, c2, 7, 7)
        h = self.dec2(torch.cat([self.up2(h), b], dim=1), emb)  # (B, c2, 14, 14)
        h = self.dec1(torch.cat([self.up1(h), a], dim=1), emb)  # (B, c1, 28, 28)
        return self.out(h)  # (B, 1, 28, 28)
