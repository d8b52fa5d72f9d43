"""The training package, in plain sight: ``fit`` calls ``train_epoch``, which calls ``train_step``.

No framework. Batches are index slices of in-memory tensors that live on the
training device, the optimiser is Adam (fused where the device supports it) and
the loss is :func:`genvae.models.losses.objective`. The loop is written for a GPU as
much as for a laptop:

* **no host sync per step**: loss parts accumulate in device tensors, and the
  host looks at them every ``check_every`` steps (finiteness check, progress
  bar) and at the end of each epoch;
* **the shuffle order is drawn on the CPU** from the seeded generator and then
  indexes the data on the device, so a CPU and a GPU see the same batches;
* **on CUDA the whole step can be replayed as one CUDA graph** (see
  :class:`~genvae.training.graphs.GraphedStep`), which removes the launch overhead of small models.

**Randomness** goes through explicit :class:`torch.Generator` objects, never through torch's global
RNG (which training and evaluation leave as they found it): the initial weights come from the
seed (:func:`genvae.utils.init_seed`), the shuffle order from CPU generators seeded with the seed, the
training noise (reparameterisation, binarisation, dropout, a GAN's z) from one generator on the
training device seeded with the seed, and evaluation noise from a fresh generator seeded with the
evaluation seed on the model's device. See "Reproducibility" in the README for what is and is not
bit-identical across runs and devices.

**Interruptions**: given a :class:`genvae.storage.resume.ResumeStore`, the loop writes a resume state at the
end of every epoch and, when it starts, goes on from a valid one (see :mod:`genvae.storage.resume`).

The same loop (:func:`training_epochs`) trains a *stack* of models (a grid over beta, gamma or the seed,
see :mod:`genvae.training.stack`): the loss parts then have one entry per member.

**Layout**, one job per module:

* :mod:`~genvae.training.config`: :class:`TrainConfig` and :class:`History`;
* :mod:`~genvae.training.step`: one optimiser's step, an epoch of steps, the finiteness watch, the evaluation;
* :mod:`~genvae.training.graphs`: the CUDA-graph step;
* :mod:`~genvae.training.epochs`: the epochs of any training (shuffling, resume states), shared by all loops;
* :mod:`~genvae.training.adversarial`: the two-player loop, which runs each family's own ``train_step``;
* :mod:`~genvae.training.loop`: :func:`fit`, which asks the family how it trains, and :func:`train_model`.
"""

from .adversarial import (
    GAN_BETAS, SNAPSHOTS, adversarial_step, fit_adversarial, player_optimizers, players, snapshot_steps,
)
from .config import PRECISIONS, QUICK_EPOCHS, QUICK_TRAIN_SIZE, SCHEDULES, History, TrainConfig
from .epochs import StepMaker, training_epochs
from .graphs import GraphedStep
from .loop import fit, train_model
from .step import (
    LossFn, TrainingDiverged, Watch, batch_losses, epoch_order, evaluate, evaluate_fn, forward, loss_fn, make_optimizer,
    make_scheduler, train_epoch, train_step,
)

__all__ = [
    "GAN_BETAS", "SNAPSHOTS", "adversarial_step", "fit_adversarial", "player_optimizers", "players", "snapshot_steps",
    "PRECISIONS", "QUICK_EPOCHS", "QUICK_TRAIN_SIZE", "SCHEDULES", "History", "TrainConfig", "StepMaker",
    "training_epochs", "GraphedStep", "fit", "train_model", "LossFn", "TrainingDiverged", "Watch", "batch_losses",
    "epoch_order", "evaluate", "evaluate_fn", "forward", "loss_fn", "make_optimizer", "make_scheduler", "train_epoch",
    "train_step",
]
