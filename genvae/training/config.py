"""How to train: :class:`TrainConfig` (part of a model's cache key) and :class:`History` (what training recorded)."""

from __future__ import annotations

import base64
import math
import numbers
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import Tensor

from .. import data as gdata
from ..models.losses import GENERATOR_LOSSES, RECON_KINDS
from ..utils import ConfigDict

# Quick mode (GENVAE_QUICK=1): at most this many epochs on at most this many images.
QUICK_EPOCHS = 2
QUICK_TRAIN_SIZE = 6000

SCHEDULES = ("constant", "onecycle")
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class TrainConfig(ConfigDict):
    """How to train. Part of a trained model's cache key, with the :class:`ModelConfig`.

    Attributes:
        dataset: ``"mnist"`` or ``"fashion-mnist"``.
        epochs: passes over the training set.
        batch_size, lr: Adam's mini-batch size and (peak) learning rate.
        seed: seeds initialisation, shuffling and the reparameterisation noise.
        recon: ``"mse"`` or ``"bce"`` reconstruction term.
        beta: weight of the KL term (VAEs).
        gamma: weight of the cross-entropy term (multi-stage VAE).
        binarize: train on stochastically binarised images (a fresh draw per batch),
            evaluate on one fixed binarisation of the test set.
        train_size: train on a seeded subset of this many images (quick mode).
        schedule: ``"constant"`` learning rate, or ``"onecycle"``: warm up to ``lr``
            over the first 30% of the steps, then anneal (``torch.optim.lr_scheduler.OneCycleLR``).
        precision: ``"fp32"``, or ``"bf16"`` autocast for the training forward pass
            (evaluation always runs in fp32).
        adversarial: the generator's loss in a GAN or VAE-GAN: ``"nonsaturating"`` (-log D(G(z)))
            or ``"minimax"`` (log(1 - D(G(z))), the game's own, which saturates).
        adv_weight: the VAE-GAN decoder's weight on fooling the discriminator, against 1 on
            reconstructing in the discriminator's features.
        test_size: evaluate each epoch on a seeded random subset of this many test images (``None``: all of
            them); for models whose forward pass is costly (a U-Net), where the test loss needs no more.
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
    schedule: str = "constant"
    precision: str = "fp32"
    adversarial: str = "nonsaturating"
    adv_weight: float = 1.0
    test_size: int | None = None

    def __post_init__(self) -> None:
        if self.dataset not in gdata.DATASETS:
            raise ValueError(f"dataset must be one of {sorted(gdata.DATASETS)}, got {self.dataset!r}")
        if self.recon not in RECON_KINDS:
            raise ValueError(f"recon must be one of {RECON_KINDS}, got {self.recon!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        for name in ("epochs", "batch_size", "seed", "train_size", "test_size"):
            value, least = getattr(self, name), 0 if name == "seed" else 1
            if name in ("train_size", "test_size") and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
                raise ValueError(f"{name} must be a whole number >= {least}, got {value!r}")
            object.__setattr__(self, name, int(value))  # a numpy integer becomes an int (JSON, cache keys)
        # Numbers are left as given (1 and 1.0 are different cache keys); NaN and infinity fail the range test.
        if isinstance(self.lr, bool) or not isinstance(self.lr, numbers.Real) or not 0 < self.lr < math.inf:
            raise ValueError(f"lr must be a number > 0, got {self.lr!r}")
        for name in ("beta", "gamma", "adv_weight"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < math.inf:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        if self.adversarial not in GENERATOR_LOSSES:
            raise ValueError(f"adversarial must be one of {GENERATOR_LOSSES}, got {self.adversarial!r}")

    def quick(self) -> "TrainConfig":
        """The quick-mode version: same recipe, fewer epochs on a subset."""
        size = QUICK_TRAIN_SIZE if self.train_size is None else min(self.train_size, QUICK_TRAIN_SIZE)
        return replace(self, epochs=min(self.epochs, QUICK_EPOCHS), train_size=size)

    def describe(self) -> str:
        """The recipe in words, for the chapters: "5 epochs in batches of 128, one-cycle learning rate ..."."""
        images = f" on {self.train_size:,} images" if self.train_size else ""
        if self.schedule == "onecycle":
            lr = f"a one-cycle learning rate that warms up to {self.lr:g} over the first 30% of the steps, then anneals"
        else:
            lr = f"a constant learning rate of {self.lr:g}"
        precision = "bf16 autocast" if self.precision == "bf16" else "fp32"
        epochs = f"{self.epochs} epoch" + ("" if self.epochs == 1 else "s")
        return f"{epochs}{images} in batches of {self.batch_size}, {lr}, {precision}"


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

    def curve(self, key: str) -> list[float]:
        """A two-player model's loss ``"d"`` or ``"g"`` at every training step, in order."""
        return [v for e in self.epochs for v in e.get("curve", {}).get(key, [])]

    def snapshots(self) -> tuple[list[int], Tensor]:
        """A two-player model's sample grids over training: the steps, and images ``(T, S, 1, 28, 28)``
        generated at each of them from one fixed noise batch (see :func:`fit_adversarial`)."""
        shots = [s for e in self.epochs for s in e.get("snapshots", [])]
        if not shots:
            raise ValueError("this history has no snapshots (only the two-player loop keeps them)")
        return [s["step"] for s in shots], torch.stack([_decode_images(s["images"]) for s in shots])



def encode_images(images: Tensor) -> str:
    """uint8 images ``(S, 1, 28, 28)`` as base64 text, for a JSON history."""
    return base64.b64encode(images.cpu().numpy().tobytes()).decode("ascii")


def _decode_images(text: str) -> Tensor:
    flat = np.frombuffer(base64.b64decode(text), dtype=np.uint8).copy()
    return torch.from_numpy(flat).view(-1, 1, 28, 28).float() / 255
