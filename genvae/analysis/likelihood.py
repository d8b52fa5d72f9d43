"""How well a model explains the data: per-pixel reconstruction error, the ELBO and the IWAE bound (per image, in nats),
and what one nat of code buys."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..checks import check_count, check_images, check_labels
from ..gaussian import gaussian_log_density
from ..models.losses import decoder_log_prob, gaussian_kl
from ..models.registry import is_conditional
from ..utils import batched, device_of, inference_batch, noise_generator
from .traces import exact_jacobian_trace, hutchinson_trace


@torch.no_grad()
def reconstruction_mse(model: nn.Module, x: torch.Tensor, batch_size: int | None = None,
                       y: torch.Tensor | None = None) -> float:
    """Mean squared error per pixel between images and their deterministic reconstructions
    (a class-conditional model is given the classes ``y``)."""
    conditional = is_conditional(model)
    if conditional and y is None:
        raise ValueError("a conditional model reconstructs with the class of every image: pass y")
    check_images(x, values=True)  # once, here: the batches then move to the model's device unchecked
    if conditional:
        check_labels(y, model.config.n_classes, batch=len(x), values=True)

    def squared_error(xb: torch.Tensor, *yb: torch.Tensor) -> torch.Tensor:  # one batch's sum, as (1,)
        return (model.reconstruct(xb, *yb) - xb).pow(2).sum().reshape(1)

    per_batch = batched(model, squared_error, *((x, y) if conditional else (x,)), batch_size=batch_size)
    total = 0.0
    for s in per_batch.tolist():  # in float64, batch after batch (Python 3.12's sum() would compensate)
        total += s
    return total / x.numel()


@torch.no_grad()
def elbo(model: nn.Module, x: torch.Tensor, recon: str = "mse", batch_size: int | None = None, seed: int = 0) -> dict[str, float]:
    """The ELBO of a VAE, per image in nats, split into its parts (one z sample per image).

    Returns ``{"recon_nll": E_q[-log p(x|z)], "kl": KL(q||p), "elbo": -(recon_nll + kl)}``.
    The z samples come from a generator on the model's device seeded with ``seed``.
    """
    _check_vae(model, "elbo")
    check_images(x, values=True)
    g = noise_generator(seed, device_of(model))

    def sums(xb: torch.Tensor) -> torch.Tensor:  # one batch's -log p(x|z) and KL, summed over its images: (1, 2)
        out = model(xb, generator=g)
        return torch.stack([decoder_log_prob(out.x_logits, xb, recon).sum(), gaussian_kl(out.mu, out.logvar) * len(xb)])[None]

    nll = kl = torch.zeros((), dtype=torch.float64)
    for part_nll, part_kl in batched(model, sums, x, batch_size=batch_size):  # added in float64, batch by batch
        nll, kl = nll - part_nll, kl + part_kl
    nll, kl, n = float(nll), float(kl), len(x)
    return {"recon_nll": nll / n, "kl": kl / n, "elbo": -(nll + kl) / n}


@torch.no_grad()
def iwae_bound(
    model: nn.Module, x: torch.Tensor, k: int = 1000, recon: str = "mse",
    batch_size: int = 500, max_codes: int = 16_384, seed: int = 0,
) -> float:
    """Importance-weighted lower bound on log p(x) (Burda et al., 2016), mean per image in nats.

    log p(x) >= E[log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x)], z_i ~ q(z|x).
    k = 1 gives the ELBO; the bound tightens as k grows. Runs where the model
    is: ``batch_size`` images at a time, decoding at most ``max_codes`` codes in
    one call (which bounds the memory), and summing on the device. The importance samples come from a
    generator on the model's device seeded with ``seed``.
    """
    _check_vae(model, "iwae_bound")
    check_images(x, values=True)
    k, batch_size, max_codes = check_count(k, "k"), check_count(batch_size, "batch_size"), check_count(max_codes, "max_codes")
    dev = device_of(model)
    g = noise_generator(seed, dev)

    def bound_sum(xb: torch.Tensor) -> torch.Tensor:  # one batch's bound, summed over its images: (1,)
        mu, logvar = model.encode(xb)  # (B, D)
        std = torch.exp(0.5 * logvar)
        chunk = max(1, min(k, max_codes // len(xb)))  # importance samples per decoder call
        log_w = []
        for start in range(0, k, chunk):
            eps = torch.randn(min(chunk, k - start), *mu.shape, generator=g, device=dev)  # (S, B, D)
            z = mu + std * eps
            x_logits = model.decode(z.flatten(0, 1)).unflatten(0, z.shape[:2])  # (S, B, 1, 28, 28)
            log_px = decoder_log_prob(x_logits, xb, recon)  # (S, B), x broadcast, not copied
            log_pz = gaussian_log_density(z)  # the prior N(0, I)
            log_qz = gaussian_log_density(eps, logvar=logvar, standardised=True)  # q(z|x) at z = mu + std * eps
            log_w.append(log_px + log_pz - log_qz)
        return (torch.logsumexp(torch.cat(log_w), 0) - math.log(k)).sum()[None]

    total = torch.zeros((), dtype=torch.float64)
    for part in batched(model, bound_sum, x, batch_size=batch_size):  # added in float64, batch by batch
        total = total + part
    return float(total) / len(x)


def dequantize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Uniform dequantisation of 8-bit images: pixel k / 255 becomes (k + u) / 256 with u ~ U(0, 1) from
    ``generator``, a continuous point inside the k-th of 256 cells of [0, 1]."""
    k = torch.round(x * 255)
    return (k + torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)) / 256


@torch.no_grad()
def diffusion_bits_per_dim(model: nn.Module, x: torch.Tensor, samples: int = 50, seed: int = 0,
                           batch_size: int | None = None) -> float:
    """An upper bound on the negative log-likelihood of 8-bit images under a diffusion model, in bits per pixel.

    The protocol (the same for every model with a continuous density): dequantise each image uniformly
    (:func:`dequantize`), map it to the model's [-1, 1] scale (s = 2 y - 1), and bound -log p(s) by the
    model's negative ELBO (``model.negative_elbo``, estimated with ``samples`` steps per image). Then, per pixel,

        -log2 P(k) / D  <=  8 + E[-log2 p(y)] / D  =  7 + E[-log p(s)] / (D ln 2),

    because the cell of k has volume 256^-D in y (Jensen), and y -> s doubles each of the D = 784 coordinates.
    Dequantisation noise, steps and forward-process noise come from a generator seeded with ``seed`` on the
    model's device.
    """
    check_images(x, values=True)
    g = noise_generator(seed, device_of(model))

    def nats(xb: torch.Tensor) -> torch.Tensor:  # one batch's bound, summed over its images: (1,) float64
        return model.negative_elbo(2 * dequantize(xb, g) - 1, g, samples).sum()[None]

    total = torch.zeros((), dtype=torch.float64)
    for part in batched(model, nats, x, batch_size=batch_size):
        total = total + part
    d = x[0].numel()
    return 7.0 + float(total) / len(x) / (d * math.log(2))


def flow_log_likelihood(velocity, x1: torch.Tensor, steps: int = 50, generator: torch.Generator | None = None,
                        n_probes: int = 1, exact: bool = False) -> torch.Tensor:
    """log p_1(x1) under the flow of ``velocity(x, t)`` from N(0, I) at t = 0: ``(B,)`` nats, float64.

    The instantaneous change of variables: along a path of dx/dt = v(x, t), d log p_t(x(t)) / dt = -div v.
    So the path is followed backwards from x(1) = x1 to x(0) with ``steps`` Heun steps (two evaluations each),
    and log p_1(x1) = log N(x(0); 0, I) - integral_0^1 div v dt, the divergence integrated by the same rule.
    The divergence is the trace of v's Jacobian: exact (one backward pass per coordinate, ``exact=True``) or
    Hutchinson's estimate (:func:`genvae.analysis.traces.hutchinson_trace`, ``n_probes`` Rademacher probes from
    ``generator``, on x1's device): unbiased for the integral, though the logarithm of an estimate is not.
    """
    steps = check_count(steps, "steps")
    if not exact and generator is None:
        raise ValueError("Hutchinson's estimator needs a generator for its probes (or exact=True)")

    def div(x: torch.Tensor, t: float) -> torch.Tensor:  # (B,) float64
        f = lambda z: velocity(z, torch.full((len(z),), t, device=z.device, dtype=z.dtype))
        tr = exact_jacobian_trace(f, x) if exact else hutchinson_trace(f, x, generator, n_probes)
        return tr.double()

    dt = 1.0 / steps
    x, integral = x1, torch.zeros(len(x1), dtype=torch.float64, device=x1.device)
    for i in range(steps, 0, -1):  # t = 1 down to 0
        t = i * dt
        with torch.no_grad():
            d1 = velocity(x, torch.full((len(x),), t, device=x.device, dtype=x.dtype))
        x_pred = x - dt * d1
        with torch.no_grad():
            d2 = velocity(x_pred, torch.full((len(x),), t - dt, device=x.device, dtype=x.dtype))
        integral += 0.5 * dt * (div(x, t) + div(x_pred, t - dt))
        x = x - 0.5 * dt * (d1 + d2)
    return gaussian_log_density(x.double().flatten(1)) - integral


@torch.no_grad()
def flow_bits_per_dim(model: nn.Module, x: torch.Tensor, steps: int = 50, n_probes: int = 1, seed: int = 0,
                      batch_size: int | None = None) -> float:
    """The negative log-likelihood of 8-bit images under a flow-matching model, in bits per pixel, by the
    protocol of :func:`diffusion_bits_per_dim` (uniform dequantisation, the [-1, 1] scale, 7 + nats / (D ln 2)),
    with -log p(s) from :func:`flow_log_likelihood` (``steps`` Heun steps, ``n_probes`` Hutchinson probes).
    Not a bound but an estimate: the ODE's discretisation and the probes both add error."""
    check_images(x, values=True)
    g = noise_generator(seed, device_of(model))

    def nats(xb: torch.Tensor) -> torch.Tensor:  # one batch's -log p(s), summed over its images: (1,) float64
        s = 2 * dequantize(xb, g) - 1
        return -flow_log_likelihood(model.velocity, s, steps, g, n_probes).sum()[None]

    total = torch.zeros((), dtype=torch.float64)
    for part in batched(model, nats, x, batch_size=batch_size):
        total = total + part
    return 7.0 + float(total) / len(x) / (x[0].numel() * math.log(2))


def gaussian_decoder_scale(model: nn.Module, x: torch.Tensor) -> float:
    """The maximum-likelihood scale sigma of a Gaussian decoder N(x; x_hat(mu), sigma^2 I) for a VAE whose
    decoder gives only a mean x_hat (trained with the squared error): the root of :func:`reconstruction_mse`,
    the mean squared error per pixel of images ``x`` decoded from their posterior means. Fit it on training
    images, then evaluate elsewhere."""
    _check_vae(model, "gaussian_decoder_scale")
    return math.sqrt(reconstruction_mse(model, x))


@torch.no_grad()
def vae_bits_per_dim(model: nn.Module, x: torch.Tensor, sigma: float, samples: int = 1, seed: int = 0) -> float:
    """An upper bound on the negative log-likelihood of 8-bit images under a VAE read as a density on
    continuous images, in bits per pixel: the protocol of :func:`diffusion_bits_per_dim` with the VAE's ELBO.

    Each image is dequantised (:func:`dequantize`) to y in [0, 1]^D; the decoder is the Gaussian
    N(y; x_hat(z), sigma^2 I), with x_hat the VAE's decoded mean and ``sigma`` a fixed scale
    (:func:`gaussian_decoder_scale`, fitted on training images); -log p(y) <= -ELBO, estimated with
    ``samples`` draws of z ~ q(z|y) per image (the KL term exact). Then bits/dim = 8 + nats / (D ln 2), since
    the cells of 8-bit values are 1/256 wide in y. Noise from a generator seeded with ``seed``."""
    _check_vae(model, "vae_bits_per_dim")
    check_images(x, values=True)
    samples = check_count(samples, "samples")
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma must be a positive number, got {sigma!r}")
    g = noise_generator(seed, device_of(model))
    log_sigma = math.log(sigma)

    def nats(xb: torch.Tensor) -> torch.Tensor:  # one batch's -ELBO, summed over its images: (1,) float64
        y = dequantize(xb, g)
        mu, logvar = model.encode(y)  # (B, d)
        recon = torch.zeros(len(y), dtype=torch.float64, device=y.device)
        for _ in range(samples):
            z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=g, device=mu.device, dtype=mu.dtype)
            mean = torch.sigmoid(model.decode(z)).flatten(1)  # (B, D)
            recon += gaussian_log_density(y.flatten(1).double(), mean.double(),
                                          log_std=torch.tensor(log_sigma, dtype=torch.float64, device=y.device))
        kl = gaussian_kl(mu, logvar).double() * len(y)  # gaussian_kl is the batch mean
        return (kl - recon.sum() / samples)[None]

    total = sum(float(v) for v in batched(model, nats, x))
    return 8.0 + total / len(x) / (x[0].numel() * math.log(2))


def _check_vae(model: nn.Module, what: str) -> None:
    """A likelihood bound needs q(z|x): a model with ``encode`` giving (mu, logvar) and no labels."""
    if not hasattr(model, "encode") or is_conditional(model):
        raise ValueError(f"{what} needs a VAE (a model with encode(x) -> mu, logvar), got {type(model).__name__}")


@torch.no_grad()
def code_gain(model: nn.Module, x: torch.Tensor, recon: str = "mse") -> dict[str, float]:
    """What a VAE's or VAE-GAN's code buys, per image of ``x``, in the reconstruction term it trains on.

    The term is computed twice: with every image decoded from its posterior mean, and with every image
    decoded from z = 0, the prior's mean, which says nothing about the image. Their difference, ``"gain"``,
    is what the code's information lowers the term by; ``"kl"`` is what the encoder pays for it (nats per
    image, the closed form at its posterior), and ``"gain per nat"`` their ratio. A VAE's term is its
    pixel reconstruction loss (``recon``, summed over pixels); a VAE-GAN's is the feature reconstruction
    loss in its discriminator's features (:func:`genvae.models.losses.feature_reconstruction_loss`). At the same
    beta, a term that drops more per nat of code makes more code units worth their KL.
    """
    from ..models.losses import feature_reconstruction_loss, reconstruction_loss

    check_images(x, values=True)
    in_features = getattr(model, "feature_likelihood", False)  # the family says where its reconstruction lives

    def means(xb: torch.Tensor) -> torch.Tensor:  # one batch's KL and terms with and without the code: (1, 3)
        mu, logvar = model.encode(xb)
        logits_code, logits_none = model.decode(mu), model.decode(torch.zeros_like(mu))
        if in_features:
            target = model.discriminate(xb).features
            term = lambda logits: feature_reconstruction_loss(model.discriminate(torch.sigmoid(logits)).features, target)
        else:
            term = lambda logits: reconstruction_loss(logits, xb, recon)
        return torch.stack([gaussian_kl(mu, logvar), term(logits_code), term(logits_none)])[None]

    size = inference_batch(device_of(model))
    parts = batched(model, means, x, batch_size=size)  # (batches, 3)
    counts = [len(xb) for xb in x.split(size)]
    kl, with_code, without = ([float(v) * c for v, c in zip(parts[:, i].tolist(), counts)] for i in range(3))
    n = len(x)
    w, wo, k = sum(with_code) / n, sum(without) / n, sum(kl) / n
    return {"without code": wo, "with code": w, "gain": wo - w, "kl": k, "gain per nat": (wo - w) / k if k > 0 else math.inf}
