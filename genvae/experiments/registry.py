"""The named models the book trains, each a (ModelConfig, TrainConfig) pair with a name.

``genvae list`` prints :data:`REGISTRY` and ``genvae train NAME`` trains one entry. Chapters get their
models from the factory functions below (``mlp_ae(8).load()``), so a papermill parameter such as
another latent size still goes through the same recipe and the same cache.
"""


from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Iterable

from ..storage.cache import Request, TrainedModel, load_or_train_many, resolve
from ..models import ModelConfig
from ..settings import quick_mode, training_precision
from ..training import PRECISIONS, TrainConfig

# The recipes, chosen by measurement (benchmarks/recipes.py, table in benchmarks/RESULTS.md):
# the cheapest that keeps each family's headline number within tolerance of the
# original recipe's 15 (MLP) or 8 (conv) epochs at a constant learning rate.
# A one-cycle schedule reaches in 5 epochs what the constant rate needed 15 for.
PRECISION = training_precision()  # bf16 on CPUs that do it natively, else fp32


def recipe(epochs: int, precision: str = PRECISION, **changes) -> TrainConfig:
    """One-cycle learning rate peaking at 3e-3, batch 128, ``epochs`` passes."""
    return TrainConfig(epochs=epochs, schedule="onecycle", lr=3e-3, batch_size=128, precision=precision, **changes)


MLP_EPOCHS = 5
CONV_EPOCHS = 4  # convolutions gain nothing from bf16 on a CPU (measured), so conv autoencoders train in fp32


@dataclass(frozen=True)
class Experiment:
    name: str
    chapter: str
    description: str
    model: ModelConfig
    train: TrainConfig

    def load(self, **kwargs) -> TrainedModel:
        """Load from the cache or train (keyword arguments go to :func:`~genvae.storage.cache.load_or_train_many`)."""
        return load_all([self], **kwargs)[0]

    @property
    def request(self) -> Request:
        return Request(self.name, self.model, self.train)

    def is_cached(self, quick: bool | None = None) -> bool:
        """Whether its cache entry in that mode (``quick``; default ``GENVAE_QUICK``) holds a finished save
        (:attr:`genvae.storage.cache.Slot.is_complete`)."""
        return resolve(self.request, quick_mode() if quick is None else quick).is_complete

    def variant(self, suffix: str, **train_changes) -> "Experiment":
        """A copy with other training settings (a new name, hence a new cache entry)."""
        return replace(self, name=f"{self.name}_{suffix}", train=replace(self.train, **train_changes))

    def with_seed(self, seed: int) -> "Experiment":
        return self if seed == self.train.seed else self.variant(f"s{seed}", seed=seed)


# Data sets other than MNIST add a suffix to every name (``vae_d2_fashion``) and train on that data
# set; MNIST experiments keep their names and configs, so their cache keys never change.
SUFFIXES = {"mnist": "", "fashion-mnist": "_fashion"}


def on_dataset(e: Experiment, dataset: str = "mnist") -> Experiment:
    """``e`` trained on ``dataset`` instead of MNIST: the name gets the data set's suffix."""
    if dataset not in SUFFIXES:
        raise ValueError(f"unknown data set {dataset!r}; choose one of {sorted(SUFFIXES)}")
    if dataset == e.train.dataset:
        return e
    return replace(e, name=e.name + SUFFIXES[dataset], train=replace(e.train, dataset=dataset),
                   description=e.description.replace("MNIST", dataset))


def classifier(dataset: str = "mnist") -> Experiment:
    """The CNN that judges generated images (>= 99% test accuracy on MNIST in full mode)."""
    return on_dataset(Experiment("classifier", "3, 6, 8", "CNN classifier, the independent judge of generated images",
                                 ModelConfig("classifier", channels=(16, 32), hidden=(128,)), recipe(3)), dataset)


def mlp_ae(latent_dim: int = 2, seed: int = 0, dataset: str = "mnist") -> Experiment:
    return on_dataset(Experiment(f"ae_d{latent_dim}", "2-3", f"MLP autoencoder, {latent_dim}-D latent",
                                 ModelConfig("ae", latent_dim=latent_dim), recipe(MLP_EPOCHS)).with_seed(seed), dataset)


def conv_ae(latent_dim: int = 2, small: bool = False, seed: int = 0, dataset: str = "mnist") -> Experiment:
    """Convolutional AE; ``small`` halves the channels and narrows the dense layer (~8x fewer parameters)."""
    widths = dict(channels=(8, 16), hidden=(32,)) if small else dict(channels=(16, 32), hidden=(128,))
    prefix = "small_conv_ae" if small else "conv_ae"
    return on_dataset(Experiment(f"{prefix}_d{latent_dim}", "4",
                                 f"{'small ' if small else ''}convolutional autoencoder, {latent_dim}-D latent",
                                 ModelConfig("ae", arch="conv", latent_dim=latent_dim, **widths),
                                 recipe(CONV_EPOCHS, precision="fp32")).with_seed(seed), dataset)


def overcomplete_ae(feature_maps: int = 16, dataset: str = "mnist") -> Experiment:
    """No bottleneck: 3x3 convolutions in and out, the code 16 times larger than the image (chapter 4)."""
    return on_dataset(Experiment("overcomplete_ae", "4",
                                 f"fully convolutional autoencoder, code = {feature_maps} x 28 x 28, no bottleneck",
                                 ModelConfig("ae", arch="fullconv", latent_dim=784 * feature_maps), recipe(1)), dataset)


def vae(latent_dim: int = 2, beta: float = 1.0, seed: int = 0, dataset: str = "mnist") -> Experiment:
    name = f"vae_d{latent_dim}" + ("" if beta == 1.0 else f"_b{beta:g}")
    return on_dataset(Experiment(name, "6-8", f"MLP VAE, {latent_dim}-D latent, Gaussian decoder (MSE), beta={beta:g}",
                                 ModelConfig("vae", latent_dim=latent_dim),
                                 recipe(MLP_EPOCHS, beta=beta)).with_seed(seed), dataset)


def multistage(latent_dim: int = 2, beta: float = 1.0, gamma: float = 10.0, seed: int = 0,
               dataset: str = "mnist") -> Experiment:
    """VAE + classifier head on z, trained with recon + beta * KL + gamma * CE."""
    name = f"ms_d{latent_dim}_b{beta:g}_g{gamma:g}"
    return on_dataset(Experiment(name, "7-8", f"multi-stage VAE, {latent_dim}-D latent, beta={beta:g}, gamma={gamma:g}",
                                 ModelConfig("multistage", latent_dim=latent_dim),
                                 recipe(MLP_EPOCHS, beta=beta, gamma=gamma)).with_seed(seed), dataset)


def bernoulli_vae(latent_dim: int = 50, epochs: int = 15, dataset: str = "mnist") -> Experiment:
    """VAE with a Bernoulli decoder (BCE) on stochastically binarised MNIST, for likelihood bounds."""
    return on_dataset(Experiment(f"vae_bernoulli_d{latent_dim}", "6",
                                 f"MLP VAE, {latent_dim}-D latent, Bernoulli decoder, binarised MNIST",
                                 ModelConfig("vae", latent_dim=latent_dim),
                                 recipe(epochs, recon="bce", binarize=True)), dataset)


# The adversarial models, recipes chosen by measurement (benchmarks/gan_recipes.py, on an H100; the
# table is in benchmarks/RESULTS.md). Adam with beta1 = 0.5 at a constant learning rate, batches of 64,
# fp32. At 2 epochs the DCGAN's classifier-feature Frechet distance fell from 153-158 at DCGAN's usual
# 2e-4 to 54-60 at 5e-3; the VAE-GAN was no better above 1e-3, and costs 2.8x a GAN's step.
GAN_EPOCHS = 2


def gan_recipe(epochs: int = GAN_EPOCHS, lr: float = 5e-3, **changes) -> TrainConfig:
    """The two-player recipe: constant ``lr``, Adam(0.5, 0.999), batch 64, fp32."""
    return TrainConfig(epochs=epochs, lr=lr, batch_size=64, schedule="constant", precision="fp32", **changes)


def gan(latent_dim: int = 32, adversarial: str = "nonsaturating", epochs: int = GAN_EPOCHS, seed: int = 0,
        dataset: str = "mnist", train_size: int | None = None) -> Experiment:
    """DCGAN: generator 32-D noise -> 7x7x64 -> 14x14x32 -> 28x28, discriminator the mirror image; ``train_size``
    training images (default: all)."""
    name = f"gan_d{latent_dim}" + ("" if adversarial == "nonsaturating" else f"_{adversarial}") \
        + ("" if epochs == GAN_EPOCHS else f"_e{epochs}") + ("" if train_size is None else f"_n{train_size}")
    plural = "s" if epochs != 1 else ""
    images = "" if train_size is None else f" on {train_size:,} images"
    return on_dataset(Experiment(name, "9", f"DCGAN, {latent_dim}-D noise, {adversarial} generator loss, {epochs} epoch{plural}{images}",
                                 ModelConfig("gan", "conv", latent_dim=latent_dim, channels=(32, 64)),
                                 gan_recipe(epochs, adversarial=adversarial, train_size=train_size)).with_seed(seed), dataset)


def vaegan(latent_dim: int = 32, adv_weight: float = 1.0, beta: float = 1.0, dataset: str = "mnist",
           epochs: int = GAN_EPOCHS, train_size: int | None = None) -> Experiment:
    """VAE-GAN: the DCGAN's generator as decoder, a convolutional encoder, the DCGAN's discriminator."""
    name = f"vaegan_d{latent_dim}" + ("" if adv_weight == 1.0 else f"_w{adv_weight:g}") + ("" if beta == 1.0 else f"_b{beta:g}") \
        + ("" if epochs == GAN_EPOCHS else f"_e{epochs}") + ("" if train_size is None else f"_n{train_size}")
    return on_dataset(Experiment(name, "10", f"VAE-GAN, {latent_dim}-D latent, adversarial weight {adv_weight:g}, beta={beta:g}",
                                 ModelConfig("vaegan", "conv", latent_dim=latent_dim, channels=(32, 64), hidden=(256,)),
                                 gan_recipe(epochs, lr=2e-3, adv_weight=adv_weight, beta=beta, train_size=train_size)),
                      dataset)


# Larsen et al.'s content-against-style weight gamma = 1/adv_weight, swept on a shorter budget than the main
# VAE-GAN (one epoch on 20,000 images, 313 steps) so that the three extra models cost about one main model.
GAMMA_SWEEP_WEIGHTS = (100.0, 1.0, 0.01)  # adv_weight w; gamma = 1/w = 0.01, 1, 100
GAMMA_SWEEP_EPOCHS, GAMMA_SWEEP_SIZE = 1, 20_000


def vaegan_gamma_sweep(latent_dim: int = 32, weights: Iterable[float] = GAMMA_SWEEP_WEIGHTS,
                       dataset: str = "mnist") -> list[Experiment]:
    """Chapter 10's sweep of gamma: the same VAE-GAN at each adversarial weight in ``weights`` (gamma = 1/w),
    on the short budget."""
    weights = [float(w) for w in weights]
    if not weights or any(not 0 < w < math.inf for w in weights):
        raise ValueError(f"the sweep needs one or more adversarial weights > 0, got {weights}")
    return [vaegan(latent_dim, adv_weight=w, dataset=dataset, epochs=GAMMA_SWEEP_EPOCHS, train_size=GAMMA_SWEEP_SIZE)
            for w in weights]


def cvae(latent_dim: int = 8, beta: float = 1.0, seed: int = 0, dataset: str = "mnist") -> Experiment:
    """Conditional VAE: the class goes to the encoder and the decoder, so z is free to hold the style."""
    name = f"cvae_d{latent_dim}" + ("" if beta == 1.0 else f"_b{beta:g}")
    return on_dataset(Experiment(name, "11", f"conditional MLP VAE, {latent_dim}-D latent, beta={beta:g}",
                                 ModelConfig("cvae", latent_dim=latent_dim),
                                 recipe(MLP_EPOCHS, beta=beta)).with_seed(seed), dataset)


# The diffusion and flow-matching models (chapters 12-13) share one U-Net, so that comparing them compares
# the objectives. Recipe chosen by measurement (benchmarks/diffusion_recipes.py, table in benchmarks/RESULTS.md;
# judged against the first 1,000 of metrics.recipe_reference, which the chapters do not rank with): the 16/32
# U-Net trains at about 0.2 s a step in bf16 on 2 CPU threads, so 2 epochs stay within about 4 minutes. At
# 2 epochs a peak rate of 5e-3 beat 2e-3 for both objectives (Frechet distance at 25 evaluations: DDPM 140
# against 168, flow matching 43 against 59); 1 epoch in fp32 at 2e-3 gave 262 and 110.
UNET_WIDTHS = dict(channels=(16, 32), hidden=(64,))
DIFFUSION_EPOCHS = 2


DIFFUSION_TEST_SIZE = 2000  # test images of the per-epoch test loss: a U-Net pass over all 10,000 cost a third of a quick run


def diffusion_recipe(epochs: int = DIFFUSION_EPOCHS, lr: float = 5e-3) -> TrainConfig:
    """One-cycle learning rate peaking at ``lr``, batch 128, the machine's precision (bf16 where native), the test
    loss on :data:`DIFFUSION_TEST_SIZE` test images."""
    return TrainConfig(epochs=epochs, schedule="onecycle", lr=lr, batch_size=128, precision=PRECISION,
                       test_size=DIFFUSION_TEST_SIZE)


def ddpm(schedule: str = "cosine", seed: int = 0, dataset: str = "mnist") -> Experiment:
    """DDPM: T = 1,000 noise steps, a 16/32 U-Net that predicts the noise, Ho et al.'s simple loss."""
    name = "ddpm" + ("" if schedule == "cosine" else f"_{schedule}")
    return on_dataset(Experiment(name, "12", f"DDPM, 16/32 U-Net, {schedule} schedule, T = 1000",
                                 ModelConfig("ddpm", "conv", noise_schedule=schedule, **UNET_WIDTHS),
                                 diffusion_recipe()).with_seed(seed), dataset)


def flow_matching(seed: int = 0, dataset: str = "mnist") -> Experiment:
    """Flow matching on straight paths from noise to images, the same 16/32 U-Net as the DDPM."""
    return on_dataset(Experiment("flow", "13", "flow matching, 16/32 U-Net, straight paths",
                                 ModelConfig("flow", "conv", **UNET_WIDTHS), diffusion_recipe()).with_seed(seed),
                      dataset)


# Chapter 9 shows the minimax loss failing where the non-saturating one does not: both, 3 seeds, one epoch on
# 20,000 images (313 steps). Chosen by measurement (benchmarks/failure_demo.py, table in benchmarks/RESULTS.md):
# on 60,000, 20,000 and 10,000 images alike, all 3 minimax runs collapsed and all 3 non-saturating runs were
# healthy; 20,000 cost 86 s of training instead of 228 s (2-core CPU), and its non-saturating samples (Frechet
# distance 126-145) still look like digits, which those of 10,000 (199-216) do less.
FAILURE_SEEDS = (0, 1, 2)
FAILURE_EPOCHS = 1
FAILURE_SIZE = 20_000
STYLE_DIM = 8  # chapter 11's code size, for the VAE, the multi-stage VAE and the CVAE alike


# Chapter 3 measures seed-dependent claims over several seeds; chapters 7 and 8
# sweep the KL weight beta (and, at beta = 1, the classification weight gamma).
SEEDS = (0, 1, 2)  # 3 seeds: the spec's minimum; each one costs a full training (see the note on issue 7)
BETAS = (0.1, 1.0, 4.0, 10.0)
GAMMAS = (0.1, 1.0, 10.0, 100.0)

def scoreboard_seeds(dataset: str = "mnist") -> list[Experiment]:
    """Chapter 14's extra training seeds (1 and 2) of the generators that train in under a minute on a CPU, so that
    the scoreboard can give their spread. Full mode only: a quick run of the chapter measures one seed."""
    d = dict(dataset=dataset)
    return [e for s in SEEDS[1:] for e in (vae(2, seed=s, **d), vae(16, seed=s, **d), multistage(2, seed=s, **d),
                                            mlp_ae(16, seed=s, **d), cvae(STYLE_DIM, seed=s, **d))]


def book_experiments(dataset: str = "mnist", quick: bool = False) -> list[Experiment]:
    """Every model the book trains when its chapters run on ``dataset`` (what ``genvae reproduce`` trains); with
    ``quick``, those a quick run of the chapters uses (the scoreboard's extra seeds left out)."""
    d = dict(dataset=dataset)
    return [
        classifier(**d),
        *(mlp_ae(dim, **d) for dim in (2, 16, 32)),
        *(mlp_ae(2, seed=s, **d) for s in SEEDS[1:]),
        *(conv_ae(dim, small=small, **d) for dim in (2, 16) for small in (False, True)),
        overcomplete_ae(**d),
        vae(16, **d),
        bernoulli_vae(**d),
        *(vae(2, beta=b, **d) for b in BETAS),
        *(multistage(2, beta=b, **d) for b in BETAS),
        *(multistage(2, beta=1.0, gamma=g, **d) for g in GAMMAS if g != multistage().train.gamma),
        gan(**d),
        *(gan(adversarial=loss, epochs=FAILURE_EPOCHS, seed=s, train_size=FAILURE_SIZE, **d)
          for loss in ("nonsaturating", "minimax") for s in FAILURE_SEEDS),
        vaegan(**d), *vaegan_gamma_sweep(**d),
        vae(STYLE_DIM, **d), multistage(STYLE_DIM, **d), cvae(STYLE_DIM, **d),
        ddpm(**d), flow_matching(**d),
        *([] if quick else scoreboard_seeds(dataset)),
    ]


_BOOK = book_experiments("mnist")
REGISTRY: dict[str, Experiment] = {e.name: e for dataset in SUFFIXES for e in book_experiments(dataset)}


def load_all(experiments: Iterable[Experiment], **kwargs) -> list[TrainedModel]:
    """Load several experiments, training what is missing; on CUDA, models that differ only in
    beta, gamma or seed train together as one stack (keyword arguments as for :meth:`Experiment.load`)."""
    return load_or_train_many([e.request for e in experiments], **kwargs)


def get(name: str) -> Experiment:
    """The experiment called ``name``; otherwise ``KeyError`` naming the closest known names."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        import difflib

        close = difflib.get_close_matches(str(name), REGISTRY, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise KeyError(f"unknown experiment {name!r}; {hint}`genvae list` (or genvae.experiments.REGISTRY) "
                       f"has all {len(REGISTRY)} known names") from None


def registry_keys() -> dict[str, tuple[str, bool, str]]:
    """``{key: (experiment name, quick, data set)}`` for every registry experiment, both modes, both precisions:
    the models in use, which ``genvae cache list | prune`` (:func:`genvae.storage.cachedir.scan`) does not call orphans.

    Both precisions, because the default one depends on the machine (``GENVAE_PRECISION``, a CPU with bf16):
    a model trained with the other is not an orphan.
    """
    keys: dict[str, tuple[str, bool, str]] = {}
    for e in REGISTRY.values():
        for precision in (e.train.precision, *PRECISIONS):
            request = Request(e.name, e.model, replace(e.train, precision=precision))
            for quick in (False, True):
                keys.setdefault(resolve(request, quick).key, (e.name, quick, e.train.dataset))
    return keys
