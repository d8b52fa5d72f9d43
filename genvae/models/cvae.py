r"""The conditional VAE (Sohn et al., 2015; close to Kingma et al., 2014's M2 with labels given).

Both networks are told the class y (one-hot)::

    [x, y] -> encoder -> (mu, logvar) -> z ;  [z, y] -> decoder -> x_hat

Because the decoder already knows *which* digit to draw, the code z has no
reason to hold the class: the KL term squeezes out anything the decoder gets
for free, and what is left in z is how the digit is drawn (slant, thickness,
width), its "style". Decoding one z with every class then writes one style in
every digit. The multi-stage VAE of chapter 7 does the opposite: it puts the
class *into* z.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import N_PIXELS, IMAGE_SHAPE, _mlp, check_codes, check_images, check_labels
from ..checks import check_count
from .config import ModelConfig
from .registry import Family, register
from .outputs import VAEOutput
from ..utils import device_of
from .vae import reparameterize


@register
class CVAE(Family, nn.Module):
    """MLP encoder q(z | x, y) and decoder p(x | z, y); the widths mirror the plain VAE's."""

    kind = "cvae"
    archs = ("mlp",)
    uses_labels = True
    conditional = True  # forward takes (x, y); the training loop passes the labels

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        k = cfg.n_classes
        self.encoder = _mlp([N_PIXELS + k, *cfg.hidden, 2 * cfg.latent_dim])  # (B, 784+K) -> (B, 2D)
        self.decoder = _mlp([cfg.latent_dim + k, *reversed(cfg.hidden), N_PIXELS])  # (B, D+K) -> (B, 784)

    def _onehot(self, y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        check_labels(y, self.config.n_classes, batch=len(like))  # values only where cheap: no sync per step
        return F.one_hot(y.long(), self.config.n_classes).to(like.dtype)  # (B, K)

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of q(z | x, y): ``mu, logvar``, each ``(B, D)``."""
        check_images(x)
        h = torch.cat([x.flatten(1), self._onehot(y, x)], dim=1)  # (B, 784 + K)
        mu, logvar = self.encoder(h).chunk(2, dim=1)
        return mu, logvar

    def embed(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The style code of images of known class: the posterior mean ``(B, D)``."""
        return self.encode(x, y)[0]

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Pixel logits ``(B, 1, 28, 28)`` of codes ``(B, D)`` drawn as class ``y`` ``(B,)``."""
        check_codes(z, self.config.latent_dim)
        return self.decoder(torch.cat([z, self._onehot(y, z)], dim=1)).view(-1, *IMAGE_SHAPE)

    def generate(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decode(z, y))

    def reconstruct(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.generate(self.embed(x, y), y)

    @torch.no_grad()
    def sample(self, n: int, y: torch.Tensor | int | None = None,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images from z ~ N(0, I) (drawn on the CPU from ``generator``), of class ``y``
        (one class, ``n`` labels, or ``None``: the classes in turn, 0, 1, ..., K-1, 0, ...)."""
        dev = device_of(self)
        z = torch.randn(check_count(n), self.config.latent_dim, generator=generator).to(dev)
        if y is None:
            y = torch.arange(n) % self.config.n_classes
        elif isinstance(y, int):
            y = torch.full((n,), y)
        y = torch.as_tensor(y)
        check_labels(y, self.config.n_classes, batch=n, values=True)  # before it moves: one check per call
        return self.generate(z, y.to(dev))

    def forward(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None) -> VAEOutput:
        mu, logvar = self.encode(x, y)  # (B, D), (B, D)
        z = reparameterize(mu, logvar, generator)  # (B, D)
        x_logits = self.decode(z, y)  # (B, 1, 28, 28)
        return VAEOutput(x_hat=torch.sigmoid(x_logits), x_logits=x_logits, z=z, mu=mu, logvar=logvar)
