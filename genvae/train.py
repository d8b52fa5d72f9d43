"""The training loop, in plain sight: ``fit`` calls ``train_epoch`` and ``evaluate``.

No framework: batches are index slices of in-memory tensors, the optimiser is
Adam, and the loss is :func:`genvae.losses.objective`. ``fit`` returns the
per-epoch history so chapters can plot loss curves.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields, replace

import torch
from torch import nn
from tqdm import tqdm

from . import data as gdata
from .losses import RECON_KINDS, LossParts, objective
from .models import ModelConfig, build_model
from .settings import default_device
from .utils import eval_mode, seeded


# Quick mode (GENVAE_QUICK=1): at most this many epochs on at most this many images.
QUICK_EPOCHS = 2
QUICK_TRAIN_SIZE = 6000


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the epoch and step."""


@dataclass(frozen=True)
class TrainConfig:
    """How to train. Part of a trained model's cache key, with the :class:`ModelConfig`.

    Attributes:
        dataset: ``"mnist"`` or ``"fashion-mnist"``.
        epochs: passes over the training set.
        batch_size, lr: Adam's mini-batch size and learning rate.
        seed: seeds initialisation, shuffling and the reparameterisation noise.
        recon: ``"mse"`` or ``"bce"`` reconstruction term.
        beta: weight of the KL term (VAEs).
        gamma: weight of the cross-entropy term (multi-stage VAE).
        binarize: train on stochastically binarised images (a fresh draw per batch),
            evaluate on one fixed binarisation of the test set.
        train_size: train on a seeded subset of this many images (quick mode).
    """

    dataset: str = "mnist"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    seed: int = 0
    recon: str = "mse"
    beta: float = 1.0
    gamma: float = 1.0
    binarize: bool = False
    train_size: int | None = None

    def __post_init__(self) -> None:
        if self.dataset not in gdata.DATASETS:
            raise ValueError(f"dataset must be one of {sorted(gdata.DATASETS)}, got {self.dataset!r}")
        if self.recon not in RECON_KINDS:
            raise ValueError(f"recon must be one of {RECON_KINDS}, got {self.recon!r}")
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0:
            raise ValueError(f"need epochs >= 1, batch_size >= 1, lr > 0; got {self.epochs}, {self.batch_size}, {self.lr}")
        if self.beta < 0 or self.gamma < 0:
            raise ValueError(f"beta and gamma must be >= 0, got {self.beta}, {self.gamma}")

    def quick(self) -> "TrainConfig":
        """The quick-mode version: same recipe, fewer epochs on a subset."""
        size = QUICK_TRAIN_SIZE if self.train_size is None else min(self.train_size, QUICK_TRAIN_SIZE)
        return replace(self, epochs=min(self.epochs, QUICK_EPOCHS), train_size=size)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {sorted(unknown)}")
        return cls(**d)


@dataclass
class History:
    """Per-epoch losses: ``epochs[i] = {"epoch", "seconds", "train": {...}, "test": {...}}``."""

    epochs: list[dict] = field(default_factory=list)

    def series(self, split: str, key: str = "total") -> list[float]:
        """One loss part over epochs, e.g. ``series("test", "recon")``."""
        return [e[split][key] for e in self.epochs]

    @property
    def seconds(self) -> float:
        return sum(e["seconds"] for e in self.epochs)


def _loss_kwargs(cfg: TrainConfig) -> dict:
    return {"recon": cfg.recon, "beta": cfg.beta, "gamma": cfg.gamma}


def _batches(n: int, batch_size: int, generator: torch.Generator | None = None):
    """Index tensors covering range(n); shuffled when a generator is given."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    return order.split(batch_size)


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: TrainConfig,
    *,
    epoch: int = 1,
    generator: torch.Generator | None = None,
    bar: tqdm | None = None,
) -> dict[str, float]:
    """One pass over ``(x, y)`` in shuffled mini-batches; returns the mean loss parts."""
    model.train()
    sums: dict[str, float] = {}
    n_seen = 0
    for step, idx in enumerate(_batches(len(x), cfg.batch_size, generator), start=1):
        xb, yb = x[idx], y[idx]
        if cfg.binarize:
            xb = gdata.binarize(xb)  # a fresh draw per batch acts as data augmentation
        parts = objective(model(xb), xb, yb, **_loss_kwargs(cfg))
        value = float(parts.total.detach())
        if not math.isfinite(value):
            raise TrainingDiverged(
                f"loss became {value} at epoch {epoch}, step {step}; "
                "try a smaller learning rate or check the inputs"
            )
        optimizer.zero_grad(set_to_none=True)
        parts.total.backward()
        optimizer.step()
        for k, v in parts.to_dict().items():
            sums[k] = sums.get(k, 0.0) + v * len(idx)
        n_seen += len(idx)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{sums['total'] / n_seen:.4g}", refresh=False)
    return {k: v / n_seen for k, v in sums.items()}


@torch.no_grad()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, *, batch_size: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Mean loss parts on ``(x, y)`` in eval mode, plus ``acc`` for models with class logits.

    VAEs stay stochastic (one z per image, as in training), so the result is an
    unbiased one-sample estimate of the negative ELBO. The noise comes from a
    forked RNG seeded with ``seed``: evaluating never shifts the training's
    random stream, and the same model always gets the same number.
    """
    sums: dict[str, float] = {}
    correct = 0
    with eval_mode(model), seeded(seed, x.device):
        for idx in _batches(len(x), batch_size):
            out = model(x[idx])
            parts: LossParts = objective(out, x[idx], y[idx], **_loss_kwargs(cfg))
            for k, v in parts.to_dict().items():
                sums[k] = sums.get(k, 0.0) + v * len(idx)
            if getattr(out, "logits", None) is not None:
                correct += int((out.logits.argmax(1) == y[idx]).sum())
    result = {k: v / len(x) for k, v in sums.items()}
    if "ce" in result:  # models with class logits also report accuracy
        result["acc"] = correct / len(x)
    return result


def fit(
    model: nn.Module,
    data: gdata.ImageData,
    cfg: TrainConfig,
    *,
    device: torch.device | str | None = None,
    progress: bool = True,
    desc: str = "training",
) -> History:
    """Train ``model`` on ``data.x_train`` for ``cfg.epochs``; evaluate on the test set each epoch.

    Raises:
        TrainingDiverged: the loss became NaN or inf (the message names epoch and step).
    """
    device = torch.device(device) if device is not None else default_device()
    model.to(device)
    torch.manual_seed(cfg.seed)
    shuffle = torch.Generator().manual_seed(cfg.seed)
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    x_test, y_test = data.x_test, data.y_test
    if cfg.binarize:  # one fixed, seeded binarisation of the test set
        x_test = gdata.fixed_binarization(x_test)
    x_test, y_test = x_test.to(device), y_test.to(device)

    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    history = History()
    steps = math.ceil(len(x_train) / cfg.batch_size)
    with tqdm(total=cfg.epochs * steps, desc=desc, disable=not progress, leave=False, mininterval=0.5) as bar:
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            train = train_epoch(model, optimizer, x_train, y_train, cfg, epoch=epoch, generator=shuffle, bar=bar)
            test = evaluate(model, x_test, y_test, cfg)
            history.epochs.append(
                {"epoch": epoch, "seconds": time.perf_counter() - t0, "train": train, "test": test}
            )
    return history


def train_model(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    *,
    device: torch.device | str | None = None,
    progress: bool = True,
    desc: str = "training",
) -> tuple[nn.Module, History]:
    """Seed, build, load the data and :func:`fit`: the whole recipe behind a config pair."""
    torch.manual_seed(train_cfg.seed)  # the initial weights depend on the seed alone
    model = build_model(model_cfg)
    data = gdata.load(train_cfg.dataset, train_size=train_cfg.train_size)
    history = fit(model, data, train_cfg, device=device, progress=progress, desc=desc)
    return model.cpu().eval(), history
