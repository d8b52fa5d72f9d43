"""What training costs in floating-point operations, counted by :class:`torch.utils.flop_counter.FlopCounterMode`:
one step of any family (:func:`step_flops`) and a whole training run (:func:`training_flops`). ``genvae reproduce``
uses it for its time estimates, the scoreboard (chapter 14) for its cost column."""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from ..checks import check_count, check_images
from ..utils import device_of, noise_generator
from .adversarial import player_optimizers
from .config import TrainConfig
from .step import loss_fn

__all__ = ["TRAIN_IMAGES", "step_flops", "training_images", "training_steps", "training_flops"]

# Training images of each data set: a config without train_size trains on all of them.
TRAIN_IMAGES = {"mnist": 60_000, "fashion-mnist": 60_000}


def step_flops(model: nn.Module, x: Tensor, train_config: TrainConfig, y: Tensor | None = None, seed: int = 0) -> int:
    """FLOPs of one training step of ``model`` on the batch ``x`` ``(B, 1, 28, 28)``, counted by
    :class:`torch.utils.flop_counter.FlopCounterMode`.

    A one-player family: the forward pass, its family's objective (:func:`genvae.training.step.loss_fn`, in
    fp32: the count does not depend on the precision) and the backward pass. A two-player family (GAN,
    VAE-GAN): one :meth:`~genvae.models.registry.Family.train_step`, each player's forward and backward
    passes and its Adam step. The counter counts matrix products and convolutions (a Linear layer's forward
    is 2 x in x out per example, its backward twice that, less the input's gradient where none is needed);
    element-wise work (activations, batch normalisation, the loss's sums, Adam's update, binarisation) is
    not counted, in either kind of family.

    Everything runs on a deep copy of the model, in training mode, with its own optimisers and a noise
    generator seeded with ``seed``: the caller's model, its mode, its optimisers and torch's global random
    stream are untouched. ``y``: class labels ``(B,)`` for conditional models (zeros if not given: labels
    do not change the count).
    """
    check_images(x, values=True)
    if train_config is None or not isinstance(train_config, TrainConfig):
        raise TypeError(f"expected a TrainConfig, got {type(train_config).__name__}")
    trainee = copy.deepcopy(model).train()
    device = device_of(trainee)
    x = x.to(device)
    y = torch.zeros(len(x), dtype=torch.long, device=device) if y is None else y.to(device)
    if y.shape != (len(x),):
        raise ValueError(f"expected labels y ({len(x)},) for images {tuple(x.shape)}, got {tuple(y.shape)}")
    noise = noise_generator(seed, device)
    with FlopCounterMode(display=False) as counter:
        if getattr(trainee, "two_player", False):  # the family's own step, both players
            trainee.train_step(player_optimizers(trainee, train_config, device), x, train_config, noise)
        else:
            parts = loss_fn(trainee, replace(train_config, precision="fp32"))(x, y, generator=noise)
            parts["total"].sum().backward()
    return int(counter.get_total_flops())


def training_images(train_config: TrainConfig) -> int:
    """Images per epoch of a training run: ``train_size``, or the whole training set of its data set."""
    return train_config.train_size or TRAIN_IMAGES[train_config.dataset]


def training_steps(train_config: TrainConfig) -> int:
    """Optimiser steps of a training run: epochs x batches per epoch (the last batch may be smaller)."""
    return train_config.epochs * math.ceil(training_images(train_config) / train_config.batch_size)


def training_flops(model: nn.Module, x: Tensor, train_config: TrainConfig, y: Tensor | None = None,
                   n_train: int | None = None) -> float:
    """FLOPs of a whole training run of ``model`` under ``train_config``: :func:`step_flops` on the batch
    ``x`` (of any size; ``train_config.batch_size`` real training images is the natural choice), per image,
    times the images the run passes through a step: ``epochs x n_train``, where ``n_train`` defaults to
    :func:`training_images` (``train_size``, or the whole training set).

    Counting per image gives the last, smaller batch of each epoch its share: with full batches only it
    is :func:`step_flops` x :func:`training_steps`. Every counted operation (matrix products, convolutions)
    scales with the batch, so per image is exact. The test-set evaluation after each epoch is not counted.
    """
    n_train = training_images(train_config) if n_train is None else check_count(n_train, "n_train")
    return step_flops(model, x, train_config, y) / len(x) * n_train * train_config.epochs
