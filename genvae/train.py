"""The training loop, in plain sight: ``fit`` calls ``train_epoch``, which calls ``train_step``.

No framework. Batches are index slices of in-memory tensors that live on the
training device, the optimiser is Adam (fused where the device supports it) and
the loss is :func:`genvae.losses.objective`. The loop is written for a GPU as
much as for a laptop:

* **no host sync per step**: loss parts accumulate in device tensors, and the
  host looks at them every ``check_every`` steps (finiteness check, progress
  bar) and at the end of each epoch;
* **the shuffle order is drawn on the CPU** from the seeded generator and then
  indexes the data on the device, so a CPU and a GPU see the same batches;
* **on CUDA the whole step can be replayed as one CUDA graph** (see
  :class:`GraphedStep`), which removes the launch overhead of small models.

**Randomness** goes through explicit :class:`torch.Generator` objects, never through torch's global
RNG (which training and evaluation leave as they found it): the initial weights come from the
seed (:func:`genvae.utils.init_seed`), the shuffle order from CPU generators seeded with the seed, the
training noise (reparameterisation, binarisation, dropout, a GAN's z) from one generator on the
training device seeded with the seed, and evaluation noise from a fresh generator seeded with the
evaluation seed on the model's device. See "Reproducibility" in the README for what is and is not
bit-identical across runs and devices.

**Interruptions**: given a :class:`genvae.resume.ResumeStore`, the loop writes a resume state at the
end of every epoch and, when it starts, goes on from a valid one (see :mod:`genvae.resume`).

The same loop (:func:`training_epochs`) trains a *stack* of models (a grid over beta, gamma or the seed,
see :mod:`genvae.stack`): the loss parts then have one entry per member.
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Callable, Iterator

import torch
from torch import Tensor, nn

from . import data as gdata
from .checks import check_images, check_labels, check_training_data, values_checked
from .frontend import progress_bar
from .losses import GENERATOR_LOSSES, RECON_KINDS, objective
from .models import ModelConfig, build_model, family, is_conditional
from .resume import ResumeStore
from .settings import cuda_graphs_enabled, resolve_device
from .utils import eval_mode, inference_batch, init_seed, noise_generator

# Quick mode (GENVAE_QUICK=1): at most this many epochs on at most this many images.
QUICK_EPOCHS = 2
QUICK_TRAIN_SIZE = 6000

SCHEDULES = ("constant", "onecycle")
PRECISIONS = ("fp32", "bf16")

# A loss function maps a batch (x, y) (and a generator for its noise, keyword ``generator``) to named
# loss parts: 0-d tensors for one model, (N,) tensors for a stack of N models.
LossFn = Callable[..., dict[str, Tensor]]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message names the epoch and the first bad step."""


@dataclass(frozen=True)
class TrainConfig:
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

    def __post_init__(self) -> None:
        if self.dataset not in gdata.DATASETS:
            raise ValueError(f"dataset must be one of {sorted(gdata.DATASETS)}, got {self.dataset!r}")
        if self.recon not in RECON_KINDS:
            raise ValueError(f"recon must be one of {RECON_KINDS}, got {self.recon!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        for name in ("epochs", "batch_size", "seed", "train_size"):
            value, least = getattr(self, name), 0 if name == "seed" else 1
            if name == "train_size" and value is None:
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


class GraphedStep:
    """A training step captured once as a CUDA graph and replayed for every full batch.

    The first ``warmup`` calls run eagerly on a side stream (CUDA graphs need the
    optimiser state and the allocator warmed up); the next full-size batch is
    captured, and from then on one ``replay`` does forward, backward and Adam.
    A batch of another size (the last one of an epoch) runs eagerly. The
    returned parts are the graph's static outputs: read them before the next call.

    The step's random draws come from the CUDA ``generators`` (the training noise), which are
    registered with the graph: each replay then advances them as the eager step would, so a
    replayed step draws the same numbers as the same step run eagerly.
    """

    def __init__(self, step: Callable[[Tensor], dict[str, Tensor]], batch_shape: torch.Size, warmup: int = 3,
                 generators: tuple[torch.Generator, ...] = ()):
        self.step, self.batch_shape, self.warmup = step, batch_shape, warmup
        self.generators = [g for g in generators if g.device.type == "cuda"]
        self.calls, self.graph = 0, None

    def __call__(self, idx: Tensor) -> dict[str, Tensor]:
        if idx.shape != self.batch_shape:
            return self.step(idx)
        if self.graph is None and self.calls < self.warmup:
            self.calls += 1
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                out = self.step(idx)
            torch.cuda.current_stream().wait_stream(side)
            return out
        if self.graph is None:
            self.idx = idx.clone()
            self.graph = torch.cuda.CUDAGraph()
            for g in self.generators:  # before capture begins: the graph then owns their offsets
                self.graph.register_generator_state(g)
            with torch.cuda.graph(self.graph):
                self.out = self.step(self.idx)
        self.idx.copy_(idx)
        self.graph.replay()
        return self.out


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
    resume: ResumeStore | None = None,
) -> Iterator[dict]:
    """The loop behind :func:`fit` and :func:`genvae.stack.fit_stack`, one epoch per ``next()``.

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


def fit(
    model: nn.Module,
    data: gdata.ImageData,
    cfg: TrainConfig,
    *,
    device: torch.device | str | None = None,
    progress: bool = True,
    desc: str = "training",
    check_every: int = 50,
    resume: ResumeStore | None = None,
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
    resume: ResumeStore | None = None,
) -> tuple[nn.Module, History]:
    """Seed, build, load the data and :func:`fit`: the whole recipe behind a config pair.

    The model comes back in eval mode on the device it was trained on. ``resume``: see :func:`fit`.
    """
    with init_seed(train_cfg.seed):  # the initial weights depend on the seed alone
        model = build_model(model_cfg)
    data = gdata.load(train_cfg.dataset, train_size=train_cfg.train_size)
    history = fit(model, data, train_cfg, device=device, progress=progress, desc=desc, resume=resume)
    return model.eval(), history


# --- The two-player loop (GAN, VAE-GAN) --------------------------------------------------------------
# Separate from the autoencoder loop above in what one step does; the epochs, the shuffling, the
# finiteness watch and the test evaluation are the same functions.

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
    resume: ResumeStore | None = None,
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
        record["snapshots"] = [{"step": s, "images": _encode_images(im)} for s, im in log["snapshots"]]
        log["curve"], log["snapshots"] = [], []
        history.epochs.append(record)
    return history


def _encode_images(images: Tensor) -> str:
    """uint8 images ``(S, 1, 28, 28)`` as base64 text, for a JSON history."""
    import base64

    return base64.b64encode(images.cpu().numpy().tobytes()).decode("ascii")


def _decode_images(text: str) -> Tensor:
    import base64

    import numpy as np

    flat = np.frombuffer(base64.b64decode(text), dtype=np.uint8).copy()
    return torch.from_numpy(flat).view(-1, 1, 28, 28).float() / 255
