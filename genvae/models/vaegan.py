r"""The VAE-GAN (Larsen et al., 2016): a VAE whose decoder is also a GAN's generator.

      x -> encoder -> (mu, logvar) -> z -> decoder = generator -> x_hat -> discriminator
                                 z_p ~ N(0, I) -> decoder      -> x_p   -> discriminator
                                                                  x     -> discriminator

A VAE with a pixel-wise loss (MSE) is paid for the average of the images that
could have produced a code, which is blurry. The VAE-GAN compares x and its
reconstruction x_hat in the *discriminator's feature space* instead: two images
that the discriminator describes alike count as close, even when their pixels
are shifted. The discriminator also plays the GAN game against both the
reconstructions and samples from the prior, which pushes the decoder towards
sharp images. The encoder's and decoder's losses are in :mod:`genvae.models.losses`
(``vaegan_losses``; the discriminator's is the GAN's ``discriminator_loss``) and the three
players' updates in :meth:`VAEGAN.train_step`.
"""

from __future__ import annotations

import torch
from torch import nn

from .autoencoder import AutoEncoder
from .blocks import ConvEncoder
from .config import ModelConfig
from .registry import Family, descend, register
from .losses import discriminator_loss, vaegan_losses
from .gan import GAN, Discriminator, Generator
from .outputs import VAEGANOutput
from .vae import VAE, reparameterize


@register
class VAEGAN(Family, nn.Module):
    """Convolutional encoder (-> mu, logvar), the GAN's generator as decoder, and its discriminator."""

    kind = "vaegan"
    archs = ("conv",)
    two_player = True
    feature_likelihood = True  # it reconstructs in the discriminator's features

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.encoder = ConvEncoder(cfg, 2 * cfg.latent_dim)  # (B, 2D): mu and log sigma^2
        self.decoder = Generator(cfg)
        self.discriminator = Discriminator(cfg)

    # Its encoder side is the VAE's, its decoder side the autoencoder's (self.decoder being the GAN's generator),
    # its judge the GAN's: the same methods, not copies. They use only self.encoder, self.decoder,
    # self.discriminator and self.config, so their random draws are those of the VAE and the GAN.
    encode = VAE.encode  # x -> mu, logvar
    embed = VAE.embed  # x -> mu, the deterministic code
    sample = VAE.sample  # n images decoded from z ~ N(0, I), drawn on the CPU
    decode = AutoEncoder.decode  # z -> pixel logits
    generate = AutoEncoder.generate  # z -> images in [0, 1]
    reconstruct = AutoEncoder.reconstruct  # x -> the decoded posterior mean, in [0, 1]
    discriminate = GAN.discriminate  # x -> the discriminator's logits and features

    def forward(self, x: torch.Tensor, z_prior: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> VAEGANOutput:
        """Encode, sample z, decode; decode prior noise too (z and, unless given, z_prior from ``generator``);
        let the discriminator judge all three."""
        mu, logvar = self.encode(x)  # (B, D) each
        z = reparameterize(mu, logvar, generator)  # (B, D)
        x_logits = self.decode(z)  # (B, 1, 28, 28)
        x_hat = torch.sigmoid(x_logits)
        if z_prior is None:
            z_prior = torch.randn(z.shape, generator=generator, dtype=z.dtype, device=z.device)  # (B, D)
        real, recon = self.discriminator(x), self.discriminator(x_hat)
        prior = self.discriminator(self.generate(z_prior))
        return VAEGANOutput(x_hat=x_hat, x_logits=x_logits, z=z, mu=mu, logvar=logvar,
                            real_logits=real.logits, recon_logits=recon.logits, prior_logits=prior.logits,
                            real_features=real.features, recon_features=recon.features)

    def players(self) -> dict[str, nn.Module]:
        """The discriminator moves first in every step, then the encoder, then the decoder."""
        return {"discriminator": self.discriminator, "encoder": self.encoder, "decoder": self.decoder}

    def train_step(self, optimizers: dict[str, torch.optim.Optimizer], x: torch.Tensor, cfg,
                   generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """One round of the three players on the real batch ``x`` (Larsen et al., 2016); noise from ``generator``.

        Encode and decode ``x``, decode prior noise too (one decoder call, so batch normalisation sees both);
        the discriminator steps on real against both kinds of fakes; then the encoder steps on
        ``feature + beta * kl`` and the decoder on ``feature + adv_weight * g``, both against the updated
        discriminator.
        """
        d_net = self.discriminator
        b = len(x)
        mu, logvar = self.encode(x)  # (B, D) each
        posterior = reparameterize(mu, logvar, generator)  # (B, D), drawn first
        prior = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)  # (B, D)
        z = torch.cat([posterior, prior])  # (2B, D): posterior, then prior
        logits = self.decode(z)  # (2B, 1, 28, 28): reconstructions, then prior samples
        fakes = torch.sigmoid(logits)
        d = discriminator_loss(d_net(x).logits, d_net(fakes.detach()).logits)
        descend(d, d_net, optimizers["discriminator"])
        real, judged = d_net(x), d_net(fakes)  # the updated discriminator; x's features are only a target
        out = VAEGANOutput(x_hat=fakes[:b], x_logits=logits[:b], z=z[:b], mu=mu, logvar=logvar,
                           real_logits=real.logits, recon_logits=judged.logits[:b], prior_logits=judged.logits[b:],
                           real_features=real.features.detach(), recon_features=judged.features[:b])
        p = vaegan_losses(out, cfg.beta, cfg.adv_weight, cfg.adversarial)
        descend(p["encoder"], self.encoder, optimizers["encoder"], retain_graph=True)
        descend(p["decoder"], self.decoder, optimizers["decoder"])
        return {"total": (d + p["encoder"] + p["decoder"]).detach(), "d": d.detach(), "g": p["g"].detach(),
                "feature": p["feature"].detach(), "kl": p["kl"].detach(),
                "p_fake": torch.sigmoid(judged.logits).mean().detach()}
