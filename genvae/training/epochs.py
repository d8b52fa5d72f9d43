"""The epochs of any training, one per ``next()``: shuffling, steps, the test evaluation, resume states.

:func:`training_epochs` is shared by :func:`genvae.training.fit` (one optimiser),
:func:`genvae.training.fit_adversarial` (two players, their own step) and :func:`genvae.training.stack.fit_stack`.
"""

from __future__ import annotations

import math
import time
from typing import Callable, Iterator, Protocol

import torch
from torch import Tensor, nn

from .. import data as gdata
from ..checks import check_training_data, values_checked
from ..frontend import progress_bar
from ..settings import cuda_graphs_enabled
from ..utils import eval_mode, noise_generator
from .config import TrainConfig
from .graphs import GraphedStep
from .step import (
    LossFn, Watch, _label_classes, epoch_order, evaluate_fn, make_optimizer, make_scheduler, train_epoch, train_step,
)


class Resumable(Protocol):
    """What the loop asks of a resume store (:class:`genvae.storage.resume.ResumeStore` is one): the storage
    layer sits above training, so training names only the methods it calls."""

    def load(self): ...

    def restore(self, state, trainee: nn.Module, optimizers: dict, scheduler, generators: dict) -> bool: ...

    def save(self, epoch: int, trainee: nn.Module, optimizers: dict, scheduler, generators: dict,
             history: list[dict]) -> None: ...


# What ``make_step`` returns: the function that trains on a batch of indices, and the optimisers it
# steps (by name; a resume state keeps their state).
StepMaker = Callable[[Tensor, Tensor, torch.Generator],
                     tuple[Callable[[Tensor], dict[str, Tensor]], dict[str, torch.optim.Optimizer]]]


def training_epochs(
    trainee: nn.Module,
    train_loss: LossFn | None,
    eval_loss: LossFn,
    data: gdata.ImageData,
    cfg: TrainConfig,
    *,
    seeds: list[int],
    device: torch.device,
    progress: bool = True,
    desc: str = "training",
    check_every: int = 50,
    make_step: StepMaker | None = None,
    resume: Resumable | None = None,
) -> Iterator[dict]:
    """The loop behind :func:`fit` and :func:`genvae.training.stack.fit_stack`, one epoch per ``next()``.

    ``trainee`` holds the parameters (a model or a stack); ``train_loss`` and
    ``eval_loss`` compute its loss parts; ``seeds`` has one entry per member and
    seeds each member's shuffle order. Yields one record per epoch, after the
    epoch's test evaluation, whose loss parts are floats (one model) or lists (a stack).
    ``make_step(x_train, y_train, noise)``, if given, returns the function that trains on the batch of
    indices ``idx`` (the two-player loop's, :func:`fit_adversarial`) and its optimisers, in place of one
    Adam step on ``train_loss``.

    The training noise comes from one generator on ``device`` seeded with ``seeds[0]``; torch's global
    RNG is never used. With ``resume``, a valid saved state is loaded first: its epochs are yielded
    again (marked ``"resumed": True``) and training goes on after them; and the state after each
    epoch but the last is saved when the consumer asks for the next epoch, so it includes whatever
    the consumer added to the record (the two-player loop adds its curves).
    """
    # The data's values are checked here, once per fit, on the CPU where they live (about 20 ms for MNIST);
    # the steps then run inside values_checked(), so no model call checks them again (a host sync per step
    # on a GPU). Shapes and dtypes are still checked at every call, which costs nothing.
    check_training_data(data, n_classes=_label_classes(trainee))
    trainee.to(device)
    noise = noise_generator(seeds[0], device)  # reparameterisation, binarisation, dropout, a GAN's z
    shuffles = [torch.Generator().manual_seed(s) for s in seeds]
    if len(set(seeds)) == 1:
        shuffles = shuffles[:1]  # one shared order: members can share each batch
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    x_test, y_test = data.x_test, data.y_test
    if cfg.test_size is not None and cfg.test_size < len(x_test):  # a seeded subset, the same every epoch
        keep = torch.randperm(len(x_test), generator=torch.Generator().manual_seed(0))[:cfg.test_size].sort().values
        x_test, y_test = x_test[keep], y_test[keep]
    if cfg.binarize:  # one fixed, seeded binarisation of the test set
        x_test = gdata.fixed_binarization(x_test)
    x_test, y_test = x_test.to(device), y_test.to(device)

    steps = math.ceil(len(x_train) / cfg.batch_size)
    if make_step is not None:
        (step, optimizers), scheduler, lr_in_place = make_step(x_train, y_train, noise), None, False
    else:
        optimizer = make_optimizer(trainee.parameters(), cfg, device)
        optimizers = {"adam": optimizer}
        scheduler = make_scheduler(optimizer, cfg, steps)

        def step(idx: Tensor) -> dict[str, Tensor]:
            return train_step(train_loss, optimizer, x_train, y_train, idx, cfg, noise)

        # A CUDA graph reads the learning rate from a tensor, which the schedule must update in place.
        lr_in_place = all(isinstance(g["lr"], Tensor) for g in optimizer.param_groups)
    generators = {"noise": noise, **{f"shuffle{i}": g for i, g in enumerate(shuffles)}}

    history: list[dict] = []
    state = resume.load() if resume is not None else None
    if state is not None and resume.restore(state, trainee, optimizers, scheduler, generators):
        for record in state.history:
            history.append({**record, "resumed": True})
            yield history[-1]
    done = len(history)

    if device.type == "cuda" and cuda_graphs_enabled() and lr_in_place and hasattr(torch.cuda.CUDAGraph, "register_generator_state"):
        batch_shape = (len(shuffles), cfg.batch_size) if len(shuffles) > 1 else (cfg.batch_size,)
        step = GraphedStep(step, torch.Size(batch_shape), generators=(noise,))

    # One bar of the kind that fits where we run (genvae.frontend): text in a terminal, a widget in a
    # live notebook, none in the book build or a log.
    with progress_bar(cfg.epochs * steps, desc=desc, enabled=progress, initial=done * steps) as bar:
        watch = Watch(steps, len(seeds), device, bar=bar, every=check_every)
        for epoch in range(done + 1, cfg.epochs + 1):
            t0 = time.perf_counter()
            watch.start(epoch)
            trainee.train()
            order = epoch_order(len(x_train), shuffles, device)
            with values_checked():  # per epoch, never across a yield: the caller's own calls stay checked
                train = train_epoch(step, order, cfg.batch_size, watch, scheduler)
                with eval_mode(trainee):
                    test = evaluate_fn(eval_loss, x_test, y_test)
            train, test = _to_host(train), _to_host(test)  # the epoch's one full host sync
            record = {"epoch": epoch, "seconds": time.perf_counter() - t0, "train": train, "test": test}
            yield record
            history.append(record)
            if resume is not None and epoch < cfg.epochs:  # once per epoch, never per step
                resume.save(epoch, trainee, optimizers, scheduler, generators, history)


def _to_host(parts: dict[str, Tensor]) -> dict:
    return {k: (float(v) if v.dim() == 0 else v.tolist()) for k, v in parts.items()}

