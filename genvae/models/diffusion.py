"""Denoising diffusion (Ho et al., 2020): learn to undo a fixed process that turns digits into noise.

The forward process adds a little Gaussian noise at each of T steps,

    q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I),

so that, with alpha_bar_t = prod_{s <= t} (1 - beta_s), any step has the closed form

    q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I),   x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps.

A U-Net (:mod:`genvae.models.unet`) sees x_t and t and predicts the noise eps; training is a regression
on it (the "simple" loss, the ELBO with its terms reweighted). Sampling runs the process backwards from
pure noise: ancestral sampling takes all T steps, DDIM (Song et al., 2021) a few deterministic ones.

Images live in [-1, 1] inside the model (x_0 = 2 x - 1) and come back in [0, 1]. Time steps are numbered
0 .. T-1 here (step t of the papers is index t - 1); the network sees (index + 1) / T, in (0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..checks import check_count
from ..utils import batched, device_of
from .blocks import check_images
from .config import ModelConfig
from .losses import LossParts, objective, squared_error
from .registry import Family, register
from .unet import UNet, from_signal, sampling_precision, to_signal

NOISE_SCHEDULES = ("linear", "cosine")


def noise_schedule(timesteps: int, kind: str = "linear") -> Tensor:
    """beta_t for t = 0 .. T-1, ``(T,)`` float64.

    ``"linear"``: Ho et al.'s 1e-4 to 0.02 over 1,000 steps, scaled by 1000 / T so that other T keep the
    same total amount of noise. ``"cosine"``: Nichol & Dhariwal (2021), alpha_bar_t = f(t) / f(0) with
    f(t) = cos^2(((t / T) + s) / (1 + s) * pi / 2), s = 0.008, and beta capped at 0.999.
    """
    if kind == "linear":
        scale = 1000.0 / timesteps
        return torch.linspace(1e-4 * scale, 0.02 * scale, timesteps, dtype=torch.float64).clamp(max=0.999)
    if kind == "cosine":
        s = 0.008
        steps = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
        f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2  # (T+1,)
        return (1 - f[1:] / f[:-1]).clamp(max=0.999)
    raise ValueError(f"noise_schedule must be one of {NOISE_SCHEDULES}, got {kind!r}")


def alpha_bars(betas: Tensor) -> Tensor:
    """alpha_bar_t = prod_{s <= t} (1 - beta_s): the share of the signal's variance left at step t, ``(T,)``."""
    return torch.cumprod(1 - betas, dim=0)


def q_sample(x0: Tensor, alpha_bar: Tensor, eps: Tensor) -> Tensor:
    """x_t from its closed form: ``sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) eps``; ``alpha_bar`` ``(B,)``."""
    a = alpha_bar.to(x0.dtype).view(-1, *([1] * (x0.dim() - 1)))  # (B, 1, 1, 1)
    return a.sqrt() * x0 + (1 - a).sqrt() * eps


def posterior_coefficients(betas: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The Gaussian q(x_{t-1} | x_t, x_0) = N(c0_t x_0 + c1_t x_t, var_t I) at every step index, each ``(T,)``:

        c0_t = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t),  c1_t = sqrt(1 - beta_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t),
        var_t = beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)   (beta tilde),

    with alpha_bar_{-1} = 1, so that at index 0 the posterior is x_0 itself (c0 = 1, c1 = 0, var = 0).
    """
    abar = alpha_bars(betas)
    prev = torch.cat([torch.ones(1, dtype=abar.dtype), abar[:-1]])  # alpha_bar_{t-1}
    c0 = prev.sqrt() * betas / (1 - abar)
    c1 = (1 - betas).sqrt() * (1 - prev) / (1 - abar)
    return c0, c1, betas * (1 - prev) / (1 - abar)


def signal_to_noise(alpha_bar: Tensor) -> Tensor:
    """SNR_t = alpha_bar_t / (1 - alpha_bar_t): the signal's variance over the noise's in x_t (x_0 of unit scale)."""
    return alpha_bar / (1 - alpha_bar)


def elbo_weights(betas: Tensor) -> Tensor:
    """lambda_t, ``(T,)``: the ELBO's term at step index t >= 1 is ``lambda_t |eps - eps_hat|^2`` (float64).

    The KL between q(x_{t-1} | x_t, x_0) and the model's step, both with variance beta tilde_t, is
    ``c0_t^2 |x_0 - x0_hat|^2 / (2 beta tilde_t)``, and x_0 - x0_hat = sqrt((1 - alpha_bar_t) / alpha_bar_t) (eps_hat - eps).
    The simple loss weighs every step by 1 instead. Index 0 (the decoder term, not a KL) is set to NaN.
    """
    c0, _, var = posterior_coefficients(betas.double())
    abar = alpha_bars(betas.double())
    w = c0.pow(2) * (1 - abar) / abar / (2 * var)
    w[0] = math.nan
    return w


def ddim_steps(timesteps: int, steps: int) -> list[int]:
    """The step indices a ``steps``-step DDIM visits, from T-1 down to 0, evenly spaced and distinct."""
    steps = min(check_count(steps, "steps"), timesteps)
    return sorted({round(v) for v in torch.linspace(timesteps - 1, 0, steps).tolist()}, reverse=True)


@dataclass
class DiffusionOutput:
    eps_hat: Tensor  # (B, 1, 28, 28) the network's guess of the noise
    eps: Tensor  # (B, 1, 28, 28) the noise that was added
    t: Tensor  # (B,) step indices, 0 .. T-1
    x_t: Tensor  # (B, 1, 28, 28) the noised images, in the model's [-1, 1] scale


@register
class DDPM(Family, nn.Module):
    """A denoising diffusion model with a U-Net noise predictor (``ModelConfig(kind="ddpm", arch="conv")``)."""

    kind = "ddpm"
    archs = ("conv",)

    @classmethod
    def check_config(cls, cfg) -> None:
        super().check_config(cfg)
        if cfg.timesteps < 2:
            raise ValueError(f"a ddpm needs timesteps >= 2, got {cfg.timesteps}")
        if cfg.noise_schedule not in NOISE_SCHEDULES:
            raise ValueError(f"noise_schedule must be one of {NOISE_SCHEDULES}, got {cfg.noise_schedule!r}")

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.net = UNet(cfg)

    def schedule(self, device: torch.device | None = None) -> tuple[Tensor, Tensor]:
        """``betas, alpha_bars``, each ``(T,)`` float32 on ``device`` (computed in float64, then rounded).

        Made once per device and kept (not in the state dict: the config defines them). A training step
        captured as a CUDA graph then only reads them: a copy from the CPU cannot be captured."""
        key = str(torch.device("cpu") if device is None else torch.device(device))
        cache = self.__dict__.setdefault("_schedules", {})
        if key not in cache:
            betas = noise_schedule(self.config.timesteps, self.config.noise_schedule)
            cache[key] = (betas.float().to(key), alpha_bars(betas).float().to(key))
        return cache[key]

    def predict_noise(self, x_t: Tensor, t: Tensor) -> Tensor:
        """The network's eps for noised images ``(B, 1, 28, 28)`` at step indices ``t`` ``(B,)``."""
        return self.net(x_t, (t.float() + 1) / self.config.timesteps)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> DiffusionOutput:
        """Noise each image to a random step (t and eps from ``generator``) and predict the noise."""
        check_images(x)
        x0 = to_signal(x)  # (B, 1, 28, 28) in [-1, 1]
        t = torch.randint(0, self.config.timesteps, (len(x),), generator=generator, device=x.device)  # (B,)
        eps = torch.randn(x0.shape, generator=generator, device=x.device, dtype=x0.dtype)
        x_t = q_sample(x0, self.schedule(x.device)[1][t], eps)
        return DiffusionOutput(eps_hat=self.predict_noise(x_t, t), eps=eps, t=t, x_t=x_t)

    @torch.no_grad()
    def ddim(self, x_T: Tensor, steps: int = 50) -> Tensor:
        """Deterministic DDIM (eta = 0) from noise ``x_T`` ``(n, 1, 28, 28)`` in ``steps`` network calls:
        images in [0, 1]. Each step predicts x_0 (clipped to [-1, 1]) and moves to the next step's noise level."""
        _, abar = self.schedule(x_T.device)
        visit = ddim_steps(self.config.timesteps, steps)
        x = x_T
        for j, i in enumerate(visit):
            a = abar[i]
            a_next = abar[visit[j + 1]] if j + 1 < len(visit) else torch.ones((), device=x.device)
            x0 = self.predict_x0(x, torch.full((len(x),), i, device=x.device)).clamp(-1, 1)
            eps = (x - a.sqrt() * x0) / (1 - a).sqrt()  # the noise consistent with the clipped x_0
            x = a_next.sqrt() * x0 + (1 - a_next).sqrt() * eps
        return from_signal(x)

    @torch.no_grad()
    def ancestral(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """Ho et al.'s sampler: all T steps, each a draw from the Gaussian posterior q(x_{t-1} | x_t, x_0) at the
        predicted x_0 (clipped to [-1, 1]); the noise is drawn on the CPU from ``generator``. Images in [0, 1]."""
        dev = device_of(self)
        betas, abar = self.schedule(dev)
        shape = (check_count(n), 1, 28, 28)
        x = torch.randn(shape, generator=generator).to(dev)
        for i in reversed(range(self.config.timesteps)):
            a, b = abar[i], betas[i]
            a_prev = abar[i - 1] if i > 0 else torch.ones((), device=dev)
            x0 = self.predict_x0(x, torch.full((len(x),), i, device=dev)).clamp(-1, 1)
            mean = (a_prev.sqrt() * b * x0 + (1 - b).sqrt() * (1 - a_prev) * x) / (1 - a)
            if i > 0:
                var = b * (1 - a_prev) / (1 - a)  # the posterior's variance, beta tilde
                x = mean + var.sqrt() * torch.randn(shape, generator=generator).to(dev)
            else:
                x = mean
        return from_signal(x)

    def predict_x0(self, x_t: Tensor, t: Tensor) -> Tensor:
        """The x_0 that the predicted noise implies at step indices ``t`` (not clipped): the reverse step's mean
        is the posterior q(x_{t-1} | x_t, x_0) at this guess."""
        a = self.schedule(x_t.device)[1][t].view(-1, 1, 1, 1)
        return (x_t - (1 - a).sqrt() * self.predict_noise(x_t, t)) / a.sqrt()

    @torch.no_grad()
    def negative_elbo(self, x0: Tensor, generator: torch.Generator | None = None, samples: int = 50) -> Tensor:
        """An unbiased estimate of -ELBO for signals ``x0`` ``(B, 1, 28, 28)`` in [-1, 1]: ``(B,)`` nats, float64.

        The bound is a sum of Gaussian KL divergences (chapter 5's closed form), one per step, between the
        forward process's posterior q(x_{t-1} | x_t, x_0) and the model's reverse step, which has the same
        variance (beta tilde) and the posterior's mean at the predicted x_0:

            -ELBO = KL(q(x_T | x_0) || N(0, I))                     the prior term, exact
                  + sum_{t >= 1} E_q KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))   T - 1 terms
                  + E_q[-log N(x_0; predicted x_0 at step 0, beta_0 I)]           the decoder term.

        The T - 1 middle terms are estimated by ``samples`` steps drawn uniformly per image, each with one
        x_t ~ q(x_t | x_0) (times T - 1); the decoder term by one draw. Steps and noise come from ``generator``.
        """
        check_images(x0, values=False)
        dev, T = x0.device, self.config.timesteps
        betas64 = noise_schedule(T, self.config.noise_schedule)
        abar64 = alpha_bars(betas64)
        c0, _, var = (v.to(dev) for v in posterior_coefficients(betas64))
        abar = abar64.float().to(dev)
        flat = x0.double().flatten(1)  # (B, D)
        a_T = float(abar64[-1])
        prior = 0.5 * (a_T * flat.pow(2) - a_T - math.log(1 - a_T)).sum(1)  # KL(N(sqrt(a) x0, 1 - a) || N(0, 1))

        def draw(t: Tensor) -> Tensor:  # the model's x_0 guess from one x_t ~ q(x_t | x_0), (B, D) float64
            eps = torch.randn(x0.shape, generator=generator, device=dev, dtype=x0.dtype)
            return self.predict_x0(q_sample(x0, abar[t], eps), t).double().flatten(1)

        zero = torch.zeros(len(x0), dtype=torch.long, device=dev)
        b0 = float(betas64[0])
        decoder = 0.5 * ((flat - draw(zero)).pow(2) / b0 + math.log(2 * math.pi * b0)).sum(1)
        middle = torch.zeros(len(x0), dtype=torch.float64, device=dev)
        for _ in range(check_count(samples, "samples")):
            t = torch.randint(1, T, (len(x0),), generator=generator, device=dev)  # (B,) in 1 .. T-1
            middle += c0[t].pow(2) * (flat - draw(t)).pow(2).sum(1) / (2 * var[t])
        return prior + decoder + middle * (T - 1) / samples

    def decode(self, z: Tensor, steps: int = 50) -> Tensor:
        """Images in [0, 1] from noise codes ``z`` ``(n, 784)`` (or ``(n, 1, 28, 28)``), by DDIM in ``steps`` calls:
        in batches (:func:`genvae.utils.batched`), the network in :func:`~genvae.models.unet.sampling_precision`."""
        with sampling_precision(device_of(self)):
            return batched(self, lambda x: self.ddim(x, steps).float(), z.reshape(len(z), 1, 28, 28))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, steps: int = 50) -> Tensor:
        """``n`` images in [0, 1]: DDIM in ``steps`` network calls from noise drawn on the CPU (``generator``),
        so one seed gives the same noise on every device. :meth:`ancestral` takes all T steps instead."""
        z = torch.randn(check_count(n), 1, 28, 28, generator=generator)
        return self.decode(z, steps)


def denoising_loss(out: DiffusionOutput) -> LossParts:
    """Ho et al.'s "simple" loss: ``|eps - eps_hat|^2`` summed over pixels, mean over the batch."""
    mse = squared_error(out.eps_hat, out.eps)
    return LossParts(total=mse, recon=mse)


@objective.register(DiffusionOutput)
def _ddpm_objective(out, x, y, **_) -> LossParts:
    return denoising_loss(out)
