"""The variational autoencoder (Kingma & Welling, 2014).

The encoder outputs a Gaussian q(z|x) = N(mu, diag(sigma^2)) instead of a point.
A code is sampled with the reparameterisation trick, z = mu + sigma * eps with
eps ~ N(0, I), so gradients flow through mu and sigma. The loss (in
``genvae.models.losses``) adds KL(q(z|x) || N(0, I)), which pulls the codes towards the
prior; that is what makes sampling z ~ N(0, I) and decoding it produce digits.
"""

from __future__ import annotations

import torch
from .autoencoder import AutoEncoder
from .registry import register
from .blocks import check_images
from ..checks import check_count
from .outputs import VAEOutput
from ..utils import device_of


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I). Shapes ``(B, D)``.

    eps comes from ``generator`` (on mu's device), else from torch's global RNG.
    """
    std = torch.exp(0.5 * logvar)  # sigma = exp(log sigma^2 / 2)
    eps = torch.randn(std.shape, generator=generator, dtype=std.dtype, device=std.device)  # (B, D)
    return mu + std * eps


@register
class VAE(AutoEncoder):
    """Gaussian-latent VAE, MLP or convolutional (``cfg.arch``).

    The decoder side (``decode``, ``generate``, ``reconstruct``) is the autoencoder's;
    what changes is that the encoder describes a distribution over codes.
    """

    # One encoder body with 2D outputs: the first D are mu, the last D log sigma^2.
    outputs_per_latent = 2
    kind = "vae"
    diagram = "posterior"

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Parameters of q(z|x): ``mu, logvar``, each ``(B, D)``."""
        check_images(x)
        mu, logvar = self.encoder(x).chunk(2, dim=1)  # (B, 2D) -> 2 x (B, D)
        return mu, logvar

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic latent code: the posterior mean ``(B, D)``."""
        return self.encode(x)[0]

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images in [0, 1] decoded from z ~ N(0, I), on the model's device.

        z is drawn on the CPU (from ``generator`` if given), so one seed gives the
        same codes on every device.
        """
        z = torch.randn(check_count(n), self.config.latent_dim, generator=generator)
        return self.generate(z.to(device_of(self)))

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> VAEOutput:
        """Encode, sample one z per image (from ``generator``), decode. Always stochastic, as the ELBO needs."""
        mu, logvar = self.encode(x)  # (B, D), (B, D)
        z = reparameterize(mu, logvar, generator)  # (B, D)
        x_logits = self.decode(z)  # (B, 1, 28, 28)
        return VAEOutput(x_hat=torch.sigmoid(x_logits), x_logits=x_logits, z=z, mu=mu, logvar=logvar)
