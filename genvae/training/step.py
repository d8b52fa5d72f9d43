"""One optimiser's step, one epoch of steps, the finiteness watch and the test evaluation.

Loss parts stay in device tensors: the host reads them only every few steps (:class:`Watch`) and at
the end of an epoch, so a GPU runs ahead of it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import torch
from torch import Tensor, nn

from ..checks import check_images, check_labels, values_checked
from ..models.losses import objective
from ..models import family, is_conditional
from ..utils import eval_mode, inference_batch, noise_generator
from .config import TrainConfig

# A loss function maps a batch (x, y) (and a generator for its noise, keyword ``generator``) to named
# loss parts: 0-d tensors for one model, (N,) tensors for a stack of N models.
LossFn = Callable[..., dict[str, Tensor]]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the epoch and the first bad step."""


def forward(model: nn.Module | Callable, x: Tensor, precision: str = "fp32", y: Tensor | None = None,
            generator: torch.Generator | None = None):
    """``model(x)`` (``model(x, y)`` for a class-conditional model), its noise drawn from ``generator``,
    under bf16 autocast when asked; the output's tensors always come back in fp32."""
    args = (x, y) if is_conditional(model) else (x,)
    if precision == "fp32":
        return model(*args, generator=generator)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, cache_enabled=False):  # no cache: CUDA-graph safe
        out = model(*args, generator=generator)
    return type(out)(**{k: v.float() for k, v in vars(out).items()})


def _label_classes(model: nn.Module) -> int | None:
    """How many classes ``model``'s labels range over, if its loss or input uses them (else ``None``: unchecked)."""
    kind = getattr(getattr(model, "config", None), "kind", None)  # a stack's config is its members'
    return model.config.n_classes if kind is not None and family(kind).uses_labels else None


def batch_losses(model: nn.Module | Callable, x: Tensor, y: Tensor, *, recon: str = "mse", beta=1.0, gamma=1.0,
                 precision: str = "fp32", adversarial: str = "nonsaturating", adv_weight: float = 1.0,
                 generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """Loss parts of one batch (the loss itself in fp32), plus ``acc`` for models with class logits.
    The model's noise comes from ``generator``."""
    out = forward(model, x, precision, y, generator)
    parts = objective(out, x, y, recon=recon, beta=beta, gamma=gamma, adversarial=adversarial,
                      adv_weight=adv_weight).tensors()
    if getattr(out, "logits", None) is not None:
        parts["acc"] = (out.logits.argmax(1) == y).float().mean()
    return parts


def loss_fn(model: nn.Module, cfg: TrainConfig) -> LossFn:
    """The training loss of ``model`` under ``cfg``, as a function of a batch ``(x, y)``."""
    kw = dict(recon=cfg.recon, beta=cfg.beta, gamma=cfg.gamma, precision=cfg.precision,
              adversarial=cfg.adversarial, adv_weight=cfg.adv_weight)
    return lambda x, y, generator=None: batch_losses(model, x, y, generator=generator, **kw)


def make_optimizer(params, cfg: TrainConfig, device: torch.device) -> torch.optim.Adam:
    """Adam; the fused kernel on CUDA and CPU (one kernel for all parameters), the default elsewhere."""
    fused = device.type in ("cuda", "cpu")
    # A tensor learning rate lets a CUDA graph see the schedule's updates.
    lr = torch.tensor(cfg.lr, device=device) if device.type == "cuda" else cfg.lr
    return torch.optim.Adam(params, lr=lr, fused=fused, capturable=device.type == "cuda")


def make_scheduler(optimizer, cfg: TrainConfig, steps_per_epoch: int):
    """The learning-rate schedule named by ``cfg.schedule`` (``None`` for a constant rate)."""
    if cfg.schedule == "constant":
        return None
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, cycle_momentum=False)


def train_step(loss: LossFn, optimizer: torch.optim.Optimizer, x: Tensor, y: Tensor, idx: Tensor,
               cfg: TrainConfig, generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """One mini-batch ``x[idx]``: forward, loss, backward, Adam; the noise from ``generator``.
    Returns the loss parts, still on the device."""
    xb, yb = x[idx], y[idx]
    if cfg.binarize:
        xb = torch.bernoulli(xb, generator=generator)  # a fresh draw per batch acts as data augmentation
    parts = loss(xb, yb, generator=generator)
    optimizer.zero_grad(set_to_none=True)
    parts["total"].sum().backward()  # a stack of models: the sum of their independent losses
    optimizer.step()
    return {k: v.detach().float() for k, v in parts.items()}


def train_epoch(step: Callable[[Tensor], dict[str, Tensor]], order: Tensor, batch_size: int,
                watch: "Watch", scheduler=None) -> dict[str, Tensor]:
    """One pass over the data in ``order`` (indices on the device). Returns the mean loss parts, on the device."""
    sums: dict[str, Tensor] = {}
    for i, idx in enumerate(order.split(batch_size, dim=-1)):
        parts = step(idx)
        if scheduler is not None:
            scheduler.step()
        for k, v in parts.items():
            sums[k] = sums[k] + v * idx.shape[-1] if k in sums else v * idx.shape[-1]
        watch.update(i, parts["total"])  # the host looks only every few steps
    return {k: v / order.shape[-1] for k, v in sums.items()}


class Watch:
    """Keeps every step's loss in a device buffer and reads it on the host every ``every`` steps.

    A reading checks that all losses since the last one are finite (naming the
    first bad step, and the stack member, when one is not) and moves the
    progress bar. Reading rarely is what lets a GPU run ahead of the host.
    """

    def __init__(self, steps: int, members: int, device: torch.device, bar=None, every: int = 50):
        self.buf = torch.zeros(steps, members, device=device)
        self.steps, self.every, self.bar = steps, every, bar
        self.epoch, self.seen = 1, 0

    def start(self, epoch: int) -> None:
        self.epoch, self.seen = epoch, 0

    def update(self, i: int, total: Tensor) -> None:
        self.buf[i] = total
        if (i + 1) % self.every == 0 or i + 1 == self.steps:
            self.read(i + 1)

    def read(self, upto: int) -> None:
        chunk = self.buf[self.seen:upto]
        bad = ~torch.isfinite(chunk)
        if bool(bad.any()):  # one host sync per `every` steps
            step, member = (int(v) for v in bad.nonzero()[0])
            which = f" (stack member {member})" if self.buf.shape[1] > 1 else ""
            raise TrainingDiverged(
                f"loss became {float(chunk[step, member])} at epoch {self.epoch}, step {self.seen + step + 1}{which}; "
                "try a smaller learning rate or check the inputs")
        if self.bar is not None:
            self.bar.update(upto - self.seen)
            self.bar.set_postfix(epoch=self.epoch, loss=f"{float(chunk[-1].mean()):.4g}", refresh=False)
        self.seen = upto


@torch.no_grad()
def evaluate_fn(loss: LossFn, x: Tensor, y: Tensor, *, batch_size: int | None = None, seed: int = 0) -> dict[str, Tensor]:
    """Mean loss parts of ``loss`` over ``(x, y)``, on the device; the noise comes from a fresh generator
    on x's device seeded with ``seed``."""
    sums: dict[str, Tensor] = {}
    generator = noise_generator(seed, x.device)
    batch_size = batch_size or inference_batch(x.device)
    for xb, yb in zip(x.split(batch_size), y.split(batch_size)):
        for k, v in loss(xb, yb, generator=generator).items():
            sums[k] = sums[k] + v * len(xb) if k in sums else v * len(xb)
    return {k: v / len(x) for k, v in sums.items()}


def evaluate(model: nn.Module, x: Tensor, y: Tensor, cfg: TrainConfig, *, batch_size: int | None = None,
             seed: int = 0) -> dict[str, float]:
    """Mean loss parts on ``(x, y)`` in eval mode, plus ``acc`` for models with class logits.

    VAEs stay stochastic (one z per image, as in training), so the result is an
    unbiased one-sample estimate of the negative ELBO. The noise comes from a
    fresh generator seeded with ``seed``: evaluating never shifts the training's
    random stream (nor torch's global one), and the same model always gets the same number.
    """
    check_images(x, values=True)  # once, here, rather than at every batch
    check_labels(y, _label_classes(model), batch=len(x), values=True)
    with eval_mode(model) as dev, values_checked():
        result = evaluate_fn(loss_fn(model, replace(cfg, precision="fp32")), x.to(dev), y.to(dev), batch_size=batch_size, seed=seed)
    return {k: float(v) for k, v in result.items()}


def epoch_order(n: int, generators: list[torch.Generator], device: torch.device) -> Tensor:
    """A shuffled order of ``range(n)`` per generator, drawn on the CPU, moved to ``device``.

    One generator gives ``(n,)``; several (a stack whose members have their own
    seeds) give ``(N, n)``, so that every member sees the batches it would see alone.
    """
    orders = [torch.randperm(n, generator=g) for g in generators]
    return (orders[0] if len(orders) == 1 else torch.stack(orders)).to(device)
