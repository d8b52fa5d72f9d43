"""The two-player loop (GAN, VAE-GAN): each family's own step, one Adam per player, curves and snapshots.

It differs from the one-optimiser loop only in what one step does; the epochs, the shuffling, the
finiteness watch and the test evaluation are the same functions (:func:`~genvae.training.epochs.training_epochs`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .. import data as gdata
from ..settings import resolve_device
from ..utils import eval_mode
from .config import History, TrainConfig, encode_images
from .epochs import Resumable, training_epochs
from .step import loss_fn

GAN_BETAS = (0.5, 0.999)  # Adam's momentum for every player (DCGAN): beta1 = 0.5 forgets the moving target faster
SNAPSHOTS = 16  # generated images kept at each snapshot, from one fixed noise batch


def players(model: nn.Module) -> dict[str, nn.Module]:
    """Who plays (the family's :meth:`~genvae.models.registry.Family.players`): the one that moves first first."""
    return model.players()


def player_optimizers(model: nn.Module, cfg: TrainConfig, device: torch.device) -> dict[str, torch.optim.Adam]:
    """One Adam per player, at ``cfg.lr`` with :data:`GAN_BETAS`."""
    fused = device.type in ("cuda", "cpu")
    return {name: torch.optim.Adam(m.parameters(), lr=cfg.lr, betas=GAN_BETAS, fused=fused)
            for name, m in players(model).items()}


def adversarial_step(model: nn.Module, optimizers: dict[str, torch.optim.Optimizer], x: Tensor,
                     cfg: TrainConfig, generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """One round of the game on the real batch ``x``: the family's own
    :meth:`~genvae.models.registry.Family.train_step` (:meth:`genvae.models.gan.GAN.train_step`,
    :meth:`genvae.models.vaegan.VAEGAN.train_step`); returns the loss parts, still on the device."""
    return model.train_step(optimizers, x, cfg, generator)


def snapshot_steps(total_steps: int, steps_per_epoch: int, first: int = 25) -> list[int]:
    """When to keep a sample grid: before training (0), then at ``first``, 2x, 4x... steps (a GAN
    changes fastest early on), and at the end of every epoch."""
    doubling = [0] + [first * 2 ** k for k in range(32) if first * 2 ** k < total_steps]
    epochs = range(steps_per_epoch, total_steps + 1, steps_per_epoch)
    return sorted(set(doubling) | set(epochs) | {total_steps})


def fit_adversarial(
    model: nn.Module,
    data: gdata.ImageData,
    cfg: TrainConfig,
    *,
    device: torch.device | str | None = None,
    progress: bool = True,
    desc: str = "training",
    check_every: int = 50,
    resume: Resumable | None = None,
) -> History:
    """Train a two-player family (GAN, VAE-GAN) with its own ``train_step``, one Adam per player at a constant
    ``cfg.lr`` (:func:`fit` hands such models here).

    Besides the per-epoch test losses, the history keeps every step's discriminator and generator
    losses (``History.curve``) and sample grids from one fixed noise batch at the
    :func:`snapshot_steps` (``History.snapshots``). ``resume``: see :func:`fit` (every player's
    Adam state is kept; a resumed epoch's record already holds its curves and snapshots).
    """
    device = resolve_device(device)
    if cfg.schedule != "constant" or cfg.precision != "fp32" or cfg.binarize:
        raise ValueError("the two-player loop trains at a constant learning rate, in fp32, on grey images")
    steps = math.ceil(len(data.x_train) / cfg.batch_size)
    keep = set(snapshot_steps(cfg.epochs * steps, steps))
    z_fixed = torch.randn(SNAPSHOTS, model.config.latent_dim, generator=torch.Generator().manual_seed(cfg.seed + 1))
    model.to(device)
    z_fixed = z_fixed.to(device)
    optimizers = player_optimizers(model, cfg, device)
    log = {"step": 0, "curve": [], "snapshots": []}  # per epoch: device tensors, read at its end

    def snapshot() -> None:
        with eval_mode(model), torch.no_grad():
            images = (model.generate(z_fixed) * 255).round().to(torch.uint8)  # (S, 1, 28, 28)
        log["snapshots"].append((log["step"], images))

    def make_step(x_train: Tensor, y_train: Tensor, noise: torch.Generator):
        def step(idx: Tensor) -> dict[str, Tensor]:
            if log["step"] == 0:
                snapshot()  # the untrained model
            parts = model.train_step(optimizers, x_train[idx], cfg, noise)
            log["curve"].append(torch.stack([parts["d"], parts["g"]]))
            log["step"] += 1
            if log["step"] in keep:  # every epoch's end is one of them
                snapshot()
            return parts
        return step, optimizers

    history = History()
    eval_loss = loss_fn(model, cfg)
    for record in training_epochs(model, None, eval_loss, data, cfg, seeds=[cfg.seed], device=device,
                                  progress=progress, desc=desc, check_every=check_every, make_step=make_step,
                                  resume=resume):
        if record.get("resumed"):  # trained by an earlier process, curves and snapshots included
            log["step"] = record["epoch"] * steps
            history.epochs.append(record)
            continue
        curve = torch.stack(log["curve"]).cpu()  # (steps, 2)
        record["curve"] = {"d": [round(v, 4) for v in curve[:, 0].tolist()],
                           "g": [round(v, 4) for v in curve[:, 1].tolist()]}
        record["snapshots"] = [{"step": s, "images": encode_images(im)} for s, im in log["snapshots"]]
        log["curve"], log["snapshots"] = [], []
        history.epochs.append(record)
    return history
