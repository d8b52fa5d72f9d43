"""The book's experiments: the named models it trains (:mod:`~genvae.experiments.registry`) and
``genvae reproduce``, which trains them all (:mod:`~genvae.experiments.schedule`).

Chapters use one namespace, ``genvae.experiments`` (``experiments.vae(2).load()``), which holds both.
"""

from .registry import (
    bernoulli_vae, BETAS, book_experiments, classifier, conv_ae, CONV_EPOCHS, cvae, ddpm, DIFFUSION_EPOCHS,
    diffusion_recipe, Experiment, flow_matching, UNET_WIDTHS,
    FAILURE_EPOCHS, FAILURE_SEEDS, FAILURE_SIZE, GAMMA_SWEEP_WEIGHTS, GAMMAS, gan, GAN_EPOCHS, gan_recipe, get, load_all, mlp_ae,
    MLP_EPOCHS, multistage, on_dataset, overcomplete_ae, PRECISION, recipe, REGISTRY, registry_keys, scoreboard_seeds, SEEDS,
    STYLE_DIM, SUFFIXES, vae, vaegan, vaegan_gamma_sweep,
)
from .schedule import default_jobs, GPU_JOBS, plan, Progress, reproduce, threads_per_job, training_flops, UnitResult, WORKER_MEMORY

__all__ = [
    "bernoulli_vae", "BETAS", "book_experiments", "classifier", "conv_ae", "CONV_EPOCHS", "cvae", "ddpm",
    "default_jobs", "DIFFUSION_EPOCHS", "GPU_JOBS", "diffusion_recipe", "flow_matching", "UNET_WIDTHS",
    "Experiment", "FAILURE_EPOCHS", "FAILURE_SEEDS", "FAILURE_SIZE", "GAMMA_SWEEP_WEIGHTS", "GAMMAS", "gan", "GAN_EPOCHS",
    "gan_recipe", "get", "load_all", "mlp_ae", "MLP_EPOCHS", "multistage", "on_dataset", "overcomplete_ae", "plan",
    "PRECISION", "Progress", "recipe", "REGISTRY", "registry_keys", "reproduce", "scoreboard_seeds", "SEEDS", "STYLE_DIM", "SUFFIXES",
    "threads_per_job", "training_flops", "UnitResult", "WORKER_MEMORY", "vae", "vaegan", "vaegan_gamma_sweep",
]
