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
from ..utils import device_of
from .blocks import check_images
from .config import ModelConfig
from .losses import LossParts, objective, squared_error
from .registry import Family, register
from .unet import UNet, from_signal, to_signal

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
        tt = t.view(-1, 1, 1, 1)
        x_t = (1 - tt) * x0 + tt * x1
        return FlowOutput(v_hat=self.velocity(x_t, t), v=x1 - x0, t=t, x_t=x_t)

    @torch.no_grad()
    def decode(self, z: Tensor, steps: int = 50, solver: str = "euler") -> Tensor:
        """Images in [0, 1] from noise codes ``z`` ``(n, 784)`` (or ``(n, 1, 28, 28)``): the ODE from t = 0 to 1."""
        x = z.reshape(len(z), 1, 28, 28).to(device_of(self))
        return from_signal(integrate(self.velocity, x, steps, solver))

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, steps: int = 50,
               solver: str = "euler") -> Tensor:
        """``n`` images in [0, 1] from noise drawn on the CPU (``generator``), so one seed gives the same noise
        on every device; ``steps`` solver steps (:func:`network_evaluations` gives their cost)."""
        z = torch.randn(check_count(n), 1, 28, 28, generator=generator)
        return self.decode(z, steps, solver)


def flow_matching_loss(out: FlowOutput) -> LossParts:
    """The conditional flow-matching loss: ``|v_hat - (x_1 - x_0)|^2`` summed over pixels, mean over the batch."""
    mse = squared_error(out.v_hat, out.v)
    return LossParts(total=mse, recon=mse)


@objective.register(FlowOutput)
def _flow_objective(out, x, y, **_) -> LossParts:
    return flow_matching_loss(out)
