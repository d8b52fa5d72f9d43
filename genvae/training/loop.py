"""The whole recipe: :func:`fit` trains a model, :func:`train_model` builds, seeds and fits one from its configs.

``fit`` asks the model's family how it trains: a two-player family (``two_player = True``) goes to
:func:`~genvae.training.adversarial.fit_adversarial`, every other model to one Adam on its loss.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from .. import data as gdata
from ..models import ModelConfig, build_model
from ..settings import resolve_device
from ..utils import init_seed
from .adversarial import fit_adversarial
from .config import History, TrainConfig
from .epochs import Resumable, training_epochs
from .step import loss_fn


def fit(
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
    """Train ``model`` on ``data.x_train`` for ``cfg.epochs``; evaluate on the test set each epoch.

    With ``resume``, save a resume state after every epoch and go on from a valid saved one.

    Raises:
        TrainingDiverged: the loss became NaN or inf (the message names epoch and step).
    """
    if getattr(model, "two_player", False):  # the family's own step, one optimiser per player
        return fit_adversarial(model, data, cfg, device=device, progress=progress, desc=desc,
                               check_every=check_every, resume=resume)
    device = resolve_device(device)
    epochs = training_epochs(model, loss_fn(model, cfg), loss_fn(model, replace(cfg, precision="fp32")), data, cfg,
                             seeds=[cfg.seed], device=device, progress=progress, desc=desc, check_every=check_every,
                             resume=resume)
    return History(list(epochs))


def train_model(
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    *,
    device: torch.device | str | None = None,
    progress: bool = True,
    desc: str = "training",
    resume: Resumable | None = None,
) -> tuple[nn.Module, History]:
    """Seed, build, load the data and :func:`fit`: the whole recipe behind a config pair.

    The model comes back in eval mode on the device it was trained on. ``resume``: see :func:`fit`.
    """
    with init_seed(train_cfg.seed):  # the initial weights depend on the seed alone
        model = build_model(model_cfg)
    data = gdata.load(train_cfg.dataset, train_size=train_cfg.train_size)
    history = fit(model, data, train_cfg, device=device, progress=progress, desc=desc, resume=resume)
    return model.eval(), history
