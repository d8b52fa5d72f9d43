"""Training a grid of models at once: N copies of one architecture as one batched model.

The book's grids (the VAE at four values of beta, the multi-stage VAE over beta
and gamma, the autoencoder over seeds) share an architecture and the data and
differ only in ``beta``, ``gamma`` or ``seed``. PyTorch's ``torch.func`` turns
such a grid into one model:

* :func:`torch.func.stack_module_state` stacks the members' parameters along a
  new leading dimension (``(N, out, in)`` for a linear weight);
* :func:`torch.func.functional_call` runs the architecture with one member's
  parameters;
* :func:`torch.func.vmap` maps that call over the members, so each layer runs
  as one batched matrix product, and ``randomness="different"`` gives every
  member its own reparameterisation noise (drawn from the run's noise generator).

The members' losses are independent, so the gradient of their sum is each
member's own gradient, and Adam (an elementwise update) treats the stacked
tensors exactly as it would treat each member's. On a GPU, where a small model
leaves most of the chip idle, N members train in about the time of one. After
training, :meth:`ModelStack.unstack` gives back N ordinary models, and the cache
stores each one as its own entry (see :func:`genvae.storage.cache.load_or_train_many`).

A member trained in a stack is not bit-identical to the same configuration
trained alone, and cannot be: its noise comes out of one batched draw, and a
batched matrix product adds in another order than a single one, so the weights
part at the level of rounding and then drift apart as any two trainings do.
Initial weights and the order of the batches are the same as alone.
``tests/test_stack.py`` checks that the test metrics agree within the spread
that two seeds give.
"""

from __future__ import annotations

import copy
from dataclasses import replace

import torch
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap

from .. import data as gdata
from ..models import ModelConfig, build_model, family, model_from_state
from ..settings import resolve_device
from ..utils import init_seed
from .config import History, TrainConfig
from .epochs import Resumable, training_epochs
from .step import LossFn, batch_losses

# What may differ between the members of one stack.
STACK_FIELDS = ("beta", "gamma", "seed")


def stack_key(model_cfg: ModelConfig, train_cfg: TrainConfig) -> tuple:
    """Configurations with equal keys can train together in one stack. Only the autoencoder family
    stacks: a two-player model has several optimisers, and a conditional one takes labels. Each family
    declares whether it stacks (``Family.stackable``)."""
    if not family(model_cfg.kind).stackable:
        return (model_cfg, train_cfg)  # alone
    return model_cfg, replace(train_cfg, **{f: TrainConfig.__dataclass_fields__[f].default for f in STACK_FIELDS})


class ModelStack(nn.Module):
    """N models of one architecture as one batched model (``torch.func``)."""

    def __init__(self, models: list[nn.Module]):
        super().__init__()
        if len({m.config for m in models}) != 1:
            raise ValueError("a stack needs models of one configuration")
        if any(True for m in models for _ in m.buffers()):
            raise ValueError("stacking models with buffers (e.g. batch norm) is not supported")
        params, _ = stack_module_state(models)  # name -> (N, *shape)
        self.names = list(params)
        self.stacked = nn.ParameterList(nn.Parameter(p) for p in params.values())
        self.config = models[0].config
        self.size = len(models)
        # A weightless copy that only provides the code of forward(); a list keeps
        # it out of this module's parameters.
        self._base = [copy.deepcopy(models[0]).to("meta")]

    def loss_fn(self, cfgs: list[TrainConfig], *, shared_batch: bool, precision: str | None = None) -> LossFn:
        """Loss parts of every member on a batch, each ``(N,)``.

        ``shared_batch``: all members see the same batch ``(B, ...)``; otherwise
        each sees its own, ``(N, B, ...)``.
        """
        if len(cfgs) != self.size:
            raise ValueError(f"need {self.size} training configs, got {len(cfgs)}")
        base, recon = self._base[0], cfgs[0].recon
        precision = precision or cfgs[0].precision
        betas = torch.tensor([c.beta for c in cfgs])
        gammas = torch.tensor([c.gamma for c in cfgs])

        batch_dim = None if shared_batch else 0
        weights: dict[torch.device, tuple[Tensor, Tensor]] = {}  # moved once per device, never inside a CUDA graph

        def loss(x: Tensor, y: Tensor, generator: torch.Generator | None = None) -> dict[str, Tensor]:
            if x.device not in weights:
                weights[x.device] = betas.to(x.device), gammas.to(x.device)

            # vmap's randomness="different" turns each random draw from `generator` into one (N, ...) draw.
            def one(params: dict[str, Tensor], x: Tensor, y: Tensor, beta: Tensor, gamma: Tensor) -> dict[str, Tensor]:
                def model(xb, generator=None):
                    return functional_call(base, params, (xb,), {"generator": generator})
                return batch_losses(model, x, y, recon=recon, beta=beta, gamma=gamma, precision=precision,
                                    generator=generator)

            batched = vmap(one, in_dims=(0, batch_dim, batch_dim, 0, 0), randomness="different")
            return batched(dict(zip(self.names, self.stacked)), x, y, *weights[x.device])

        return loss

    def unstack(self) -> list[nn.Module]:
        """The members as ordinary models, in eval mode, on the stack's device."""
        return [model_from_state(self.config, {n: p[i].detach().clone() for n, p in zip(self.names, self.stacked)}).eval()
                for i in range(self.size)]


def fit_stack(
    model_cfg: ModelConfig,
    train_cfgs: list[TrainConfig],
    data: gdata.ImageData | None = None,
    *,
    device: torch.device | str | None = None,
    progress: bool = True,
    desc: str = "training a stack",
    resume: Resumable | None = None,
) -> list[tuple[nn.Module, History]]:
    """Train one model per config, all at once; returns ``(model, history)`` per member, in order.

    Every member starts from the weights it would get alone (its seed) and sees
    its own batch order; the configs may differ only in :data:`STACK_FIELDS`.
    ``resume``: save the whole stack's state after every epoch and go on from a valid saved one
    (see :func:`genvae.training.fit`).
    """
    keys = {stack_key(model_cfg, c) for c in train_cfgs}
    if len(keys) != 1:
        raise ValueError(f"configs of one stack may differ only in {STACK_FIELDS}")
    device = resolve_device(device)
    cfg = train_cfgs[0]
    if data is None:
        data = gdata.load(cfg.dataset, train_size=cfg.train_size)
    models = []
    for c in train_cfgs:
        with init_seed(c.seed):  # the initial weights depend on the seed alone, as in train_model
            models.append(build_model(model_cfg))
    stack = ModelStack(models)
    seeds = [c.seed for c in train_cfgs]
    shared = len(set(seeds)) == 1
    records = list(training_epochs(
        stack, stack.loss_fn(train_cfgs, shared_batch=shared),
        stack.loss_fn(train_cfgs, shared_batch=True, precision="fp32"),
        data, cfg, seeds=seeds, device=device, progress=progress, desc=desc, resume=resume))
    histories = [History([_member(r, i) for r in records]) for i in range(stack.size)]
    return list(zip(stack.unstack(), histories))


def _member(record: dict, i: int) -> dict:
    """Member ``i``'s view of one epoch record of a stack (its parts are lists)."""
    pick = lambda parts: {k: v[i] for k, v in parts.items()}  # noqa: E731
    return {**record, "train": pick(record["train"]), "test": pick(record["test"]), "stack_size": len(record["train"]["total"])}
