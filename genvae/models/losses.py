"""Loss functions: pure functions of model outputs and targets.

**One reduction everywhere:** sum over pixels (and over latent dimensions),
mean over the batch. A number such as ``recon = 25.3`` is therefore "per image",
comparable across batch sizes, and the reconstruction and KL terms are on the
same scale, which is what gives beta its usual meaning.

Reconstruction terms are negative log-likelihoods of a decoder p(x|z):

* ``"bce"``: Bernoulli pixels, -log p(x|z) = sum BCE(x_hat, x) exactly;
* ``"mse"``: Gaussian pixels with variance 1/2, for which
  -log p(x|z) = sum (x - x_hat)^2 + (784/2) log(pi): the squared error plus a constant.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..gaussian import gaussian_log_density
from .outputs import AEOutput, ClassifierOutput, GANOutput, MultiStageOutput, VAEGANOutput, VAEOutput

RECON_KINDS = ("mse", "bce")
GENERATOR_LOSSES = ("nonsaturating", "minimax")


@dataclass
class LossParts:
    """A loss and its parts, each a scalar tensor (``None`` where a part does not apply)."""

    total: Tensor
    recon: Tensor | None = None
    kl: Tensor | None = None
    ce: Tensor | None = None
    d: Tensor | None = None  # the discriminator's loss (GANs)
    g: Tensor | None = None  # the generator's adversarial loss (GANs)
    feature: Tensor | None = None  # the VAE-GAN's reconstruction error in the discriminator's features

    def tensors(self) -> dict[str, Tensor]:
        """The parts that apply, by name, still tensors (on their device, in the graph)."""
        return {k: v for k, v in vars(self).items() if v is not None}

    def to_dict(self) -> dict[str, float]:
        """Plain floats, for histories and tables (the ``None`` parts left out)."""
        return {k: float(v.detach()) for k, v in self.tensors().items()}


def _check_recon(kind: str) -> None:
    if kind not in RECON_KINDS:
        raise ValueError(f"reconstruction loss must be one of {RECON_KINDS}, got {kind!r}")


def _check_targets(x_logits: Tensor, x: Tensor, samples: bool = False) -> None:
    """Logits and images must have one shape, or broadcasting would pair pixels of different images without
    a word. With ``samples``, the logits may also have leading sample dimensions and x a batch of 1 (one image
    against many decodings), as long as x broadcasts to the logits' shape. Shapes only: no host sync."""
    ok = x.dim() >= 3 and tuple(x_logits.shape[-3:]) == tuple(x.shape[-3:])
    if ok and samples:
        try:
            ok = torch.broadcast_shapes(x_logits.shape, x.shape) == x_logits.shape
        except RuntimeError:
            ok = False
    elif ok:
        ok = x_logits.shape == x.shape
    if not ok:
        also = " (or (S, B, 1, 28, 28): S samples per image)" if samples else ""
        raise ValueError(f"x_logits {tuple(x_logits.shape)} and images x {tuple(x.shape)} do not match: "
                         f"expected x (B, 1, 28, 28) and x_logits of the same shape{also}")


def _check_weight(name: str, value) -> None:
    """A Python number weighting a loss term must be >= 0 (a tensor of weights, a stack's, is the caller's)."""
    if isinstance(value, (int, float)) and not value >= 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


_IMAGE_DIMS = (-3, -2, -1)


def squared_error(a: Tensor, b: Tensor) -> Tensor:
    """``|a - b|^2`` summed over each image's pixels, mean over the batch: images ``(B, C, H, W)`` -> 0-d."""
    return (a - b).pow(2).sum(_IMAGE_DIMS).mean()


def _image_dot(a: Tensor, b: Tensor) -> Tensor:
    """Sum of ``a * b`` over the image dimensions; ``b`` may lack ``a``'s leading sample dimension.

    For ``(S, B, 1, 28, 28)`` against ``(B, 1, 28, 28)`` this is one batched matrix
    product, about twice as fast on a CPU as the elementwise product and sum.
    """
    if a.dim() == b.dim() + 1:
        return torch.einsum("sbp,bp->sb", a.flatten(-3), b.flatten(-3))
    return (a * b).sum(_IMAGE_DIMS)


def decoder_log_prob(x_logits: Tensor, x: Tensor, kind: str = "mse") -> Tensor:
    """log p(x|z) per image, constants included (see the module docstring).

    Sums over the last three (image) dimensions, so ``x_logits`` of shape
    ``(S, B, 1, 28, 28)`` against ``x`` of shape ``(B, 1, 28, 28)`` gives ``(S, B)``
    by broadcasting, without copying x S times. Both are written as sums of
    products, which the IWAE bound evaluates for millions of codes:

    * Bernoulli: ``log p = sum x * l - softplus(l)`` with logits l (the same number
      as minus the binary cross-entropy, for any x in [0, 1]);
    * Gaussian, variance 1/2: ``-sum (x_hat - x)^2 = -(sum x_hat^2 - 2 sum x_hat x + sum x^2)``,
      minus the constant ``(784 / 2) log(pi)``.
    """
    _check_recon(kind)
    _check_targets(x_logits, x, samples=True)
    if kind == "bce":
        return _image_dot(x_logits, x) - F.softplus(x_logits).sum(_IMAGE_DIMS)
    x_hat = torch.sigmoid(x_logits)
    sq = x_hat.pow(2).sum(_IMAGE_DIMS) - 2 * _image_dot(x_hat, x) + x.pow(2).sum(_IMAGE_DIMS)
    n_pixels = x_hat.shape[-3] * x_hat.shape[-2] * x_hat.shape[-1]
    return -sq - 0.5 * n_pixels * math.log(math.pi)


def reconstruction_loss(x_logits: Tensor, x: Tensor, kind: str = "mse") -> Tensor:
    """Squared error (``"mse"``) or binary cross-entropy (``"bce"``) between x_hat and x.

    Takes the decoder's logits ``(B, 1, 28, 28)`` (BCE on logits is numerically
    stable); MSE compares ``sigmoid(logits)`` with x. Sum over pixels, mean over batch.
    """
    _check_recon(kind)
    _check_targets(x_logits, x)
    if kind == "bce":
        per_pixel = F.binary_cross_entropy_with_logits(x_logits, x, reduction="none")
    else:
        per_pixel = (torch.sigmoid(x_logits) - x).pow(2)
    return per_pixel.flatten(1).sum(1).mean()


def gaussian_kl_per_dim(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) for each latent dimension, ``(B, D)``, unreduced.

    KL = -1/2 (1 + log sigma^2 - mu^2 - sigma^2). Note the leading minus sign:
    the bracket is <= 0 and the KL is >= 0, with equality only at mu=0, sigma=1.
    """
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have the same shape (B, D), got {tuple(mu.shape)} and {tuple(logvar.shape)}")
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(q(z|x) || N(0, I)) in closed form: sum over latents, mean over batch."""
    return gaussian_kl_per_dim(mu, logvar).sum(1).mean()


def free_bits_kl(mu: Tensor, logvar: Tensor, free_bits: float) -> Tensor:
    """The KL term with "free bits" (Kingma et al., 2016): each latent dimension's KL, averaged over the
    batch, counts at least ``free_bits`` nats; the floors are summed over dimensions.

    Below the floor a dimension's KL has no gradient, so the loss stops pushing that dimension towards the
    prior: the cure for (partial) posterior collapse that it is used for. With ``free_bits = 0`` it is
    :func:`gaussian_kl`.
    """
    _check_weight("free_bits", free_bits)
    return gaussian_kl_per_dim(mu, logvar).mean(0).clamp(min=free_bits).sum()


def _mc_log_ratios(mu: Tensor, logvar: Tensor, n_samples: int, generator: torch.Generator | None) -> Tensor:
    """``n_samples`` draws of the batch mean of sum_j [log q(z_j) - log p(z_j)], z ~ q; shape ``(S,)``."""
    std = torch.exp(0.5 * logvar)
    eps = torch.randn((n_samples, *mu.shape), generator=generator, dtype=mu.dtype, device=mu.device)
    z = mu + std * eps  # (S, B, D)
    # log q(z) - log p(z), per dimension; the log(2 pi) terms cancel.
    log_q = gaussian_log_density(eps, logvar=logvar, standardised=True, dim=None, constant=False)
    log_p = gaussian_log_density(z, dim=None, constant=False)
    return (log_q - log_p).sum(-1).mean(-1)


def monte_carlo_kl(
    mu: Tensor, logvar: Tensor, n_samples: int = 1000, generator: torch.Generator | None = None
) -> Tensor:
    """Monte-Carlo estimate of the same KL: mean over z ~ q of log q(z) - log p(z).

    Shapes ``(B, D)``; same reduction as :func:`gaussian_kl`. Unbiased; its
    standard error shrinks like 1/sqrt(n_samples).
    """
    return _mc_log_ratios(mu, logvar, n_samples, generator).mean()


def monte_carlo_kl_with_error(
    mu: Tensor, logvar: Tensor, n_samples: int = 1000, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """:func:`monte_carlo_kl` together with its standard error, ``(estimate, stderr)``.

    Each of the ``n_samples`` draws (one z per image) gives one value of the batch
    mean of sum_j [log q(z_j) - log p(z_j)]; the standard error is their standard
    deviation over sqrt(n_samples). Given the same generator state, the estimate
    equals :func:`monte_carlo_kl`'s.
    """
    if n_samples < 2:
        raise ValueError(f"a standard error needs at least 2 samples, got n_samples={n_samples}")
    log_ratio = _mc_log_ratios(mu, logvar, n_samples, generator)
    return log_ratio.mean(), log_ratio.std() / math.sqrt(n_samples)


def discrete_kl(p: Tensor, q: Tensor) -> Tensor:
    """KL(p || q) = sum_i p_i log(p_i / q_i) in nats, over the last dimension.

    Terms with p_i = 0 contribute 0; a q_i = 0 where p_i > 0 gives +inf.
    """
    p, q = torch.as_tensor(p, dtype=torch.float64), torch.as_tensor(q, dtype=torch.float64)
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape, got {tuple(p.shape)} and {tuple(q.shape)}")
    for name, t in (("p", p), ("q", q)):
        if (t < 0).any() or not torch.allclose(t.sum(-1), torch.ones((), dtype=t.dtype)):
            raise ValueError(f"{name} must be a probability vector (non-negative, summing to 1)")
    terms = torch.where(p > 0, p * (p.log() - q.log()), torch.zeros_like(p))
    return terms.sum(-1)


def ae_loss(out: AEOutput, x: Tensor, recon: str = "mse") -> LossParts:
    """Autoencoder: reconstruction only."""
    r = reconstruction_loss(out.x_logits, x, recon)
    return LossParts(total=r, recon=r)


def vae_loss(out: VAEOutput, x: Tensor, beta: float = 1.0, recon: str = "mse") -> LossParts:
    """Negative ELBO (beta = 1), or the beta-VAE objective: recon + beta * KL."""
    _check_weight("beta", beta)
    r = reconstruction_loss(out.x_logits, x, recon)
    kl = gaussian_kl(out.mu, out.logvar)
    return LossParts(total=r + beta * kl, recon=r, kl=kl)


def multistage_loss(
    out: MultiStageOutput, x: Tensor, y: Tensor, beta: float = 1.0, gamma: float = 1.0, recon: str = "mse"
) -> LossParts:
    """recon + beta * KL + gamma * CE, with categorical cross-entropy over the K classes."""
    _check_weight("gamma", gamma)
    parts = vae_loss(out, x, beta, recon)
    ce = F.cross_entropy(out.logits, y)
    return LossParts(total=parts.total + gamma * ce, recon=parts.recon, kl=parts.kl, ce=ce)


def classifier_loss(out: ClassifierOutput, y: Tensor) -> LossParts:
    ce = F.cross_entropy(out.logits, y)
    return LossParts(total=ce, ce=ce)


# --- The adversarial game -------------------------------------------------------------------------
# D outputs a logit l; D(x) = sigmoid(l) is its probability that x is real. With
# log sigmoid(l) = -softplus(-l) and log(1 - sigmoid(l)) = -softplus(l), each loss below is a
# binary cross-entropy written so that it stays finite for any logit.


def discriminator_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """-[log D(x) + log(1 - D(G(z)))], each term a mean over its batch: the discriminator's cross-entropy
    for "real = 1, generated = 0". It is 2 log 2 = 1.386 when D says 1/2 to everything."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(fake_logits: Tensor, kind: str = "nonsaturating") -> Tensor:
    """The generator's loss on the discriminator's logits of generated images, mean over the batch.

    * ``"minimax"``: log(1 - D(G(z))), the game's own objective, which G minimises. When D
      rejects the fakes confidently (l << 0), log(1 - sigmoid(l)) is flat: its gradient with
      respect to l is -sigmoid(l), close to 0, and G stops learning just when it is worst.
    * ``"nonsaturating"``: -log D(G(z)) (Goodfellow et al., 2014): the same fixed point, but the
      gradient, -(1 - sigmoid(l)), is close to -1 exactly there.
    """
    if kind == "nonsaturating":
        return F.softplus(-fake_logits).mean()
    if kind == "minimax":
        return -F.softplus(fake_logits).mean()
    raise ValueError(f"generator loss must be one of {GENERATOR_LOSSES}, got {kind!r}")


def feature_reconstruction_loss(recon_features: Tensor, real_features: Tensor) -> Tensor:
    """(1/2) sum over features of the squared difference, mean over the batch: -log N(f(x) | f(x_hat), I)
    up to a constant, the VAE-GAN's likelihood in the discriminator's feature space (Larsen et al., 2016)."""
    return 0.5 * (recon_features - real_features).pow(2).flatten(1).sum(1).mean()


def gan_loss(out: GANOutput, adversarial: str = "nonsaturating") -> LossParts:
    """Both players' losses of one round; ``total`` is their sum, for monitoring only: in training each
    player follows its own part (:func:`genvae.training.adversarial_step`)."""
    d = discriminator_loss(out.real_logits, out.fake_logits)
    g = generator_loss(out.fake_logits, adversarial)
    return LossParts(total=d + g, d=d, g=g)


def vaegan_losses(out: VAEGANOutput, beta: float = 1.0, adv_weight: float = 1.0,
                  adversarial: str = "nonsaturating") -> dict[str, Tensor]:
    """The VAE-GAN's encoder and decoder losses, each a 0-d tensor, plus their parts.

    * encoder: ``feature + beta * kl`` (a VAE whose likelihood lives in D's features);
    * decoder: ``feature + adv_weight * g`` (reconstruct in D's features, and fool D with both
      reconstructions and prior samples).

    The third player, the discriminator, has the GAN's :func:`discriminator_loss`, real against both kinds
    of generated images; :func:`genvae.training.adversarial_step` takes its step first, on detached fakes.
    """
    feature = feature_reconstruction_loss(out.recon_features, out.real_features)
    kl = gaussian_kl(out.mu, out.logvar)
    g = generator_loss(torch.cat([out.recon_logits, out.prior_logits]), adversarial)  # both kinds of fakes, (2B,)
    return {"encoder": feature + beta * kl, "decoder": feature + adv_weight * g, "feature": feature, "kl": kl, "g": g}


@functools.singledispatch
def objective(out, x: Tensor, y: Tensor, *, recon: str = "mse", beta: float = 1.0, gamma: float = 1.0,
              adversarial: str = "nonsaturating", adv_weight: float = 1.0) -> LossParts:
    """The training loss of whichever model produced ``out``, chosen by the output's type.

    Each model family registers the loss of its output type (``@objective.register(MyOutput)``, a function
    taking the same arguments); the most specific registered type wins, so a subclass of
    :class:`~genvae.models.outputs.VAEOutput` with a loss of its own is never scored as a plain VAE. Each loss
    uses the keywords it needs and ignores the others. For the adversarial models, ``total`` is the sum of
    the players' losses: one number to watch and to test gradients with. Their training never descends it;
    each player follows its own part (the family's ``train_step``).
    """
    raise TypeError(f"no loss defined for {type(out).__name__}: register one with "
                    "@genvae.models.losses.objective.register(" + type(out).__name__ + ")")


@objective.register(AEOutput)
def _ae_objective(out, x, y, *, recon="mse", **_) -> LossParts:
    return ae_loss(out, x, recon)


@objective.register(VAEOutput)
def _vae_objective(out, x, y, *, recon="mse", beta=1.0, **_) -> LossParts:
    return vae_loss(out, x, beta, recon)


@objective.register(MultiStageOutput)
def _multistage_objective(out, x, y, *, recon="mse", beta=1.0, gamma=1.0, **_) -> LossParts:
    return multistage_loss(out, x, y, beta, gamma, recon)


@objective.register(ClassifierOutput)
def _classifier_objective(out, x, y, **_) -> LossParts:
    return classifier_loss(out, y)


@objective.register(GANOutput)
def _gan_objective(out, x, y, *, adversarial="nonsaturating", **_) -> LossParts:
    return gan_loss(out, adversarial)


@objective.register(VAEGANOutput)
def _vaegan_objective(out, x, y, *, beta=1.0, adversarial="nonsaturating", adv_weight=1.0, **_) -> LossParts:
    p = vaegan_losses(out, beta, adv_weight, adversarial)
    d = discriminator_loss(out.real_logits, torch.cat([out.recon_logits, out.prior_logits]))  # monitoring
    mse = squared_error(out.x_hat, x)
    return LossParts(total=p["encoder"] + p["decoder"] + d, recon=mse, kl=p["kl"], d=d, g=p["g"], feature=p["feature"])
