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
