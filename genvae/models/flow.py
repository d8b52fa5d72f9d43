"""Flow matching (Lipman et al., 2023; Liu et al., 2023, rectified flow): learn a velocity field that carries
noise to digits along straight lines, then follow it with an ODE solver.

Pair a noise image x_0 ~ N(0, I) with a digit x_1 (in [-1, 1]) and a time t ~ U(0, 1). The point
x_t = (1 - t) x_0 + t x_1 moves at the constant velocity x_1 - x_0. A network v(x_t, t) regresses on that
*conditional* velocity; the minimiser of the squared error is its average over every pair through x_t,
the *marginal* velocity, whose flow carries the whole noise distribution to the data distribution.
Sampling integrates dx/dt = v(x, t) from t = 0 to 1 (Euler or Heun steps).

Diffusion (:mod:`genvae.models.diffusion`) is the same idea with curved paths and another weighting; both
use the same U-Net (:mod:`genvae.models.unet`), so comparing them compares the objectives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

from ..checks import check_count
from ..utils import batched, device_of
from .blocks import check_images
from .config import ModelConfig
from .losses import LossParts, objective, squared_error
from .registry import Family, register
from .unet import UNet, from_signal, sampling_precision, to_signal

SOLVERS = ("euler", "heun")


def integrate(velocity: Callable[[Tensor, Tensor], Tensor], x: Tensor, steps: int, solver: str = "euler") -> Tensor:
    """Follow dx/dt = velocity(x, t) from t = 0 to t = 1 in ``steps`` equal steps; ``t`` is passed as ``(N,)``.

    Euler costs one velocity evaluation per step; Heun (the trapezoid rule with an Euler predictor) two,
    and its error falls with the square of the step size instead of the step size.
    """
    steps = check_count(steps, "steps")
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    dt = 1.0 / steps
    for i in range(steps):
        t = torch.full((len(x),), i * dt, device=x.device, dtype=x.dtype)  # (N,)
        d1 = velocity(x, t)
        if solver == "euler":
            x = x + dt * d1
        else:
            d2 = velocity(x + dt * d1, t + dt)
            x = x + 0.5 * dt * (d1 + d2)
    return x


def gaussian_marginal_velocity(x: Tensor, t: Tensor, mean: float, std: float) -> Tensor:
    """The marginal velocity E[x_1 - x_0 | x_t = x] in closed form, for noise x_0 ~ N(0, 1) and data
    x_1 ~ N(mean, std^2) drawn independently (elementwise; ``t`` broadcasts against ``x``):

        u(x, t) = mean + (t std^2 - (1 - t)) / ((1 - t)^2 + t^2 std^2) * (x - t mean),

    the regression line of x_1 - x_0 on x_t, both Gaussian. Its flow carries N(0, 1) to N(mean, std^2): the
    problem on which flow matching's claims can be checked exactly."""
    return mean + (t * std**2 - (1 - t)) / ((1 - t) ** 2 + t**2 * std**2) * (x - t * mean)


def network_evaluations(steps: int, solver: str) -> int:
    """How many times :func:`integrate` calls the network: the cost of a sample in network evaluations."""
    return steps * (2 if solver == "heun" else 1)


@dataclass
class FlowOutput:
    v_hat: Tensor  # (B, 1, 28, 28) the network's velocity at (x_t, t)
    v: Tensor  # (B, 1, 28, 28) the conditional velocity x_1 - x_0
    t: Tensor  # (B,) times in [0, 1)
    x_t: Tensor  # (B, 1, 28, 28) the points on the straight paths, in the model's [-1, 1] scale


@register
class FlowMatching(Family, nn.Module):
    """A flow-matching model with the diffusion model's U-Net as velocity field (``ModelConfig(kind="flow", arch="conv")``)."""

    kind = "flow"
    archs = ("conv",)

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg
        self.net = UNet(cfg)

    def velocity(self, x: Tensor, t: Tensor) -> Tensor:
        """v(x, t) for points ``(B, 1, 28, 28)`` at times ``(B,)`` in [0, 1]."""
        return self.net(x, t)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> FlowOutput:
        """Pair each digit with noise and a time (both from ``generator``) and predict the velocity there."""
        check_images(x)
        x1 = to_signal(x)  # (B, 1, 28, 28) in [-1, 1]
        x0 = torch.randn(x1.shape, generator=generator, device=x.device, dtype=x1.dtype)
        t = torch.rand(len(x), generator=generator, device=x.device, dtype=x1.dtype)  # (B,)
        x_t, v = conditional_path(x0, x1, t)
        return FlowOutput(v_hat=self.velocity(x_t, t), v=v, t=t, x_t=x_t)

    @torch.no_grad()
    def decode(self, z: Tensor, steps: int = 50, solver: str = "euler") -> Tensor:
        """Images in [0, 1] from noise codes ``z`` ``(n, 784)`` (or ``(n, 1, 28, 28)``): the ODE from t = 0 to 1, in
        batches (:func:`genvae.utils.batched`), the network in :func:`~genvae.models.unet.sampling_precision`."""
        with sampling_precision(device_of(self)):
            return batched(self, lambda x: from_signal(integrate(self.velocity, x, steps, solver)).float(),
                           z.reshape(len(z), 1, 28, 28))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, steps: int = 50,
               solver: str = "euler") -> Tensor:
        """``n`` images in [0, 1] from noise drawn on the CPU (``generator``), so one seed gives the same noise
        on every device; ``steps`` solver steps (:func:`network_evaluations` gives their cost)."""
        z = torch.randn(check_count(n), 1, 28, 28, generator=generator)
        return self.decode(z, steps, solver)


class LatentVelocity(nn.Module):
    """A velocity field on codes: an MLP from (z_t, t) to dz/dt, for flow matching in an autoencoder's latent space.

        z_t (B, D), t (B,) -> concat [z_t, sinusoidal features of t] (B, D + E) -> MLP (SiLU) -> (B, D)

    Small on purpose: a 16-D code needs no U-Net, and it trains in seconds on a CPU.
    """

    def __init__(self, dim: int, hidden: tuple[int, ...] = (256, 256), emb_dim: int = 32):
        super().__init__()
        self.dim = check_count(dim, "dim")
        self.emb_dim = emb_dim
        widths = [dim + emb_dim, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.SiLU()]
        self.net = nn.Sequential(*layers, nn.Linear(widths[-1], dim))

    def forward(self, z: Tensor, t: Tensor) -> Tensor:
        from .unet import time_embedding

        return self.net(torch.cat([z, time_embedding(t, self.emb_dim, scale=100.0).to(z.dtype)], dim=1))  # (B, D)


def conditional_path(x0: Tensor, x1: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
    """The straight path's point and velocity: ``x_t = (1 - t) x0 + t x1`` and ``x1 - x0``, with ``t`` ``(B,)``
    broadcast over the other dimensions of ``x0`` and ``x1`` (images or codes)."""
    tt = t.view(-1, *([1] * (x0.dim() - 1)))
    return (1 - tt) * x0 + tt * x1, x1 - x0


def latent_flow_loss(v_hat: Tensor, v: Tensor) -> Tensor:
    """The same regression on codes: ``|v_hat - v|^2`` summed over a code's dimensions, mean over the batch ``(B, D)``."""
    return (v_hat - v).pow(2).sum(1).mean()


def flow_matching_loss(out: FlowOutput) -> LossParts:
    """The conditional flow-matching loss: ``|v_hat - (x_1 - x_0)|^2`` summed over pixels, mean over the batch."""
    mse = squared_error(out.v_hat, out.v)
    return LossParts(total=mse, recon=mse)


@objective.register(FlowOutput)
def _flow_objective(out, x, y, **_) -> LossParts:
    return flow_matching_loss(out)
