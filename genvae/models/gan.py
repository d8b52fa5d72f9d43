r"""A DCGAN-style generative adversarial network for 28x28 images (Goodfellow et al., 2014; Radford et al., 2016).

Two networks play a game. The generator G turns noise z ~ N(0, I) into an
image; the discriminator D looks at an image and outputs one logit, "real"
(positive) or "generated" (negative)::

    z (B, D) -> G -> x_fake (B, 1, 28, 28) -> D -> logit (B,)
                     x_real (B, 1, 28, 28) -> D -> logit (B,)

DCGAN's recipe, scaled to MNIST: the generator upsamples with transposed
convolutions and batch normalisation, the discriminator downsamples with strided
convolutions and leaky ReLUs, and neither has pooling. The losses are in
:mod:`genvae.models.losses` (``discriminator_loss``, ``generator_loss``) and the
two-player loop in :mod:`genvae.training` (``adversarial_step``). The generator
ends in a sigmoid, so its images are in [0, 1] like the data; the discriminator
rescales its input to [-1, 1] first.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import check_codes, check_images
from ..checks import check_count
from .config import ModelConfig
from .registry import Family, descend, register
from .losses import discriminator_loss, generator_loss
from .outputs import DiscriminatorOutput, GANOutput
from ..utils import device_of


class Generator(nn.Module):
    """z ``(B, D)`` -> pixel logits ``(B, 1, 28, 28)``: a dense layer to 7x7 maps, then two 2x upsamplings."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c1, c2 = cfg.channels
        self.net = nn.Sequential(
            nn.Linear(cfg.latent_dim, c2 * 49, bias=False), nn.BatchNorm1d(c2 * 49), nn.ReLU(),  # (B, c2*49)
            nn.Unflatten(1, (c2, 7, 7)),  # (B, c2, 7, 7)
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(c1), nn.ReLU(),  # (B, c1, 14, 14)
            nn.ConvTranspose2d(c1, 1, 4, stride=2, padding=1),  # (B, 1, 28, 28) logits
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    """Images ``(B, 1, 28, 28)`` -> a real/fake logit ``(B,)`` and the features it is computed from ``(B, F)``.

    ``F = c2 * 7 * 7``: the last convolution's maps, flattened. The VAE-GAN
    compares images through these features instead of through their pixels.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        c1, c2 = cfg.channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # (B, c1, 14, 14)
            nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.LeakyReLU(0.2),  # (B, c2, 7, 7)
            nn.Flatten(),  # (B, F)
        )
        self.out = nn.Linear(c2 * 49, 1)  # (B, 1)

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        feats = self.features(2 * x - 1)  # data in [0, 1] -> [-1, 1]
        return DiscriminatorOutput(logits=self.out(feats).squeeze(1), features=feats)


@register
class GAN(Family, nn.Module):
    """A generator and a discriminator built from one :class:`ModelConfig` (``kind="gan"``, ``arch="conv"``)."""

    kind = "gan"
    archs = ("conv",)
    two_player = True

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.generator = Generator(cfg)
        self.discriminator = Discriminator(cfg)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel logits ``(B, 1, 28, 28)`` of noise ``(B, D)``."""
        check_codes(z, self.config.latent_dim, name="noise")
        return self.generator(z)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] ``(B, 1, 28, 28)`` from noise ``(B, D)``."""
        return torch.sigmoid(self.decode(z))

    def discriminate(self, x: torch.Tensor) -> DiscriminatorOutput:
        check_images(x)
        return self.discriminator(x)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images from z ~ N(0, I); z is drawn on the CPU (from ``generator``), so one seed gives the
        same noise on every device. Call in eval mode: batch normalisation then uses its running statistics."""
        z = torch.randn(check_count(n), self.config.latent_dim, generator=generator)
        return self.generate(z.to(device_of(self)))

    def forward(self, x: torch.Tensor, z: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> GANOutput:
        """One round of the game on real images ``x``: draw z (unless given; from ``generator``, on x's device),
        generate, judge both.

        The fake images are *not* detached: :func:`genvae.models.losses.gan_loss` of this output
        reaches both players. Training (:meth:`train_step`) instead updates each player on its own loss.
        """
        check_images(x)
        if z is None:
            z = torch.randn(len(x), self.config.latent_dim, generator=generator, device=x.device)  # (B, D)
        x_fake = self.generate(z)  # (B, 1, 28, 28)
        return GANOutput(x_fake=x_fake, z=z, real_logits=self.discriminator(x).logits,
                         fake_logits=self.discriminator(x_fake).logits)

    def players(self) -> dict[str, nn.Module]:
        """The discriminator moves first in every step, then the generator."""
        return {"discriminator": self.discriminator, "generator": self.generator}

    def train_step(self, optimizers: dict[str, torch.optim.Optimizer], x: torch.Tensor, cfg,
                   generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """One round of the game on the real batch ``x`` (z from ``generator``, on x's device).

        The discriminator takes one step on real ``x`` against ``G(z)`` (detached, so G does not move),
        then the generator takes one step on :func:`~genvae.models.losses.generator_loss` of the updated
        discriminator's verdict on the same ``G(z)``.
        """
        d_net = self.discriminator
        z = torch.randn(len(x), self.config.latent_dim, generator=generator, device=x.device)  # (B, D)
        fake = self.generate(z)  # (B, 1, 28, 28)
        d = discriminator_loss(d_net(x).logits, d_net(fake.detach()).logits)
        descend(d, d_net, optimizers["discriminator"])
        fake_logits = d_net(fake).logits  # the updated discriminator's verdict
        g = generator_loss(fake_logits, cfg.adversarial)
        descend(g, self.generator, optimizers["generator"])
        return {"total": (d + g).detach(), "d": d.detach(), "g": g.detach(),
                "p_fake": torch.sigmoid(fake_logits).mean().detach()}
