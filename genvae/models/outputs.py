"""What ``forward`` returns: small dataclasses with named fields, never tuples."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class AEOutput:
    x_hat: Tensor  # (B, 1, 28, 28) reconstruction in [0, 1]
    x_logits: Tensor  # (B, 1, 28, 28) pre-sigmoid; BCE uses these for stability
    z: Tensor  # (B, D) latent code


@dataclass
class VAEOutput(AEOutput):
    mu: Tensor  # (B, D) mean of q(z|x)
    logvar: Tensor  # (B, D) log-variance of q(z|x); z = mu + exp(logvar/2) * eps


@dataclass
class MultiStageOutput(VAEOutput):
    logits: Tensor  # (B, K) class scores from the head, computed from the sampled z


@dataclass
class ClassifierOutput:
    logits: Tensor  # (B, K) class scores
    features: Tensor  # (B, F) penultimate layer; used for Frechet distances


@dataclass
class DiscriminatorOutput:
    logits: Tensor  # (B,) real-vs-generated logit: > 0 means "real"
    features: Tensor  # (B, F) the last convolution's maps, flattened (the VAE-GAN's comparison space)


@dataclass
class GANOutput:
    x_fake: Tensor  # (B, 1, 28, 28) generated images in [0, 1]
    z: Tensor  # (B, D) the noise they came from
    real_logits: Tensor  # (B,) the discriminator on the real batch
    fake_logits: Tensor  # (B,) the discriminator on the generated batch


@dataclass
class VAEGANOutput(VAEOutput):
    real_logits: Tensor  # (B,) the discriminator on the real batch
    recon_logits: Tensor  # (B,) the discriminator on the reconstructions x_hat
    prior_logits: Tensor  # (B,) the discriminator on images decoded from z ~ N(0, I)
    real_features: Tensor  # (B, F) the discriminator's features of x
    recon_features: Tensor  # (B, F) ...and of x_hat: the reconstruction is compared here, not in pixels
