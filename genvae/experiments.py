"""The named models the book trains, each a (ModelConfig, TrainConfig) pair with a name.

``genvae list`` prints :data:`REGISTRY`, ``genvae train NAME`` trains one entry
and ``genvae reproduce`` trains them all. Chapters get their models from the
factory functions below (``mlp_ae(8).load()``), so a papermill parameter such as
another latent size still goes through the same recipe and the same cache.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .cache import TrainedModel, cache_key, entry_path, load_or_train
from .models import ModelConfig
from .settings import quick_mode
from .train import TrainConfig

# Full-mode budgets, measured on a 2-core CPU: an MLP epoch over 60k images takes
# about 6 s, a convolutional one about 25 s.
MLP_EPOCHS = 15
CONV_EPOCHS = 8


@dataclass(frozen=True)
class Experiment:
    name: str
    chapter: str
    description: str
    model: ModelConfig
    train: TrainConfig

    def load(self, **kwargs) -> TrainedModel:
        """Load from the cache or train (keyword arguments go to :func:`~genvae.cache.load_or_train`)."""
        return load_or_train(self.model, self.train, name=self.name, **kwargs)

    def is_cached(self, quick: bool | None = None) -> bool:
        quick = quick_mode() if quick is None else quick
        train = self.train.quick() if quick else self.train
        return (entry_path(self.name, cache_key(self.model, train, quick)) / "meta.json").is_file()

    def variant(self, suffix: str, **train_changes) -> "Experiment":
        """A copy with other training settings (a new name, hence a new cache entry)."""
        return replace(self, name=f"{self.name}_{suffix}", train=replace(self.train, **train_changes))

    def with_seed(self, seed: int) -> "Experiment":
        return self if seed == self.train.seed else self.variant(f"s{seed}", seed=seed)


def classifier() -> Experiment:
    """The CNN that judges generated digits (>= 99% test accuracy in full mode)."""
    return Experiment("classifier", "3, 8", "CNN classifier, the independent judge of generated digits",
                      ModelConfig("classifier", channels=(32, 64), hidden=(128,)), TrainConfig(epochs=8))


def mlp_ae(latent_dim: int = 2, seed: int = 0) -> Experiment:
    return Experiment(f"ae_d{latent_dim}", "2-3", f"MLP autoencoder, {latent_dim}-D latent",
                      ModelConfig("ae", latent_dim=latent_dim), TrainConfig(epochs=MLP_EPOCHS)).with_seed(seed)


def conv_ae(latent_dim: int = 2, small: bool = False, seed: int = 0) -> Experiment:
    """Convolutional AE; ``small`` halves the channels and narrows the dense layer (~5x fewer parameters)."""
    widths = dict(channels=(16, 32), hidden=(64,)) if small else dict(channels=(32, 64), hidden=(256,))
    prefix = "small_conv_ae" if small else "conv_ae"
    return Experiment(f"{prefix}_d{latent_dim}", "4",
                      f"{'small ' if small else ''}convolutional autoencoder, {latent_dim}-D latent",
                      ModelConfig("ae", arch="conv", latent_dim=latent_dim, **widths),
                      TrainConfig(epochs=CONV_EPOCHS)).with_seed(seed)


def overcomplete_ae(feature_maps: int = 16) -> Experiment:
    """No bottleneck: 3x3 convolutions in and out, the code 16 times larger than the image (chapter 4)."""
    return Experiment("overcomplete_ae", "4",
                      f"fully convolutional autoencoder, code = {feature_maps} x 28 x 28, no bottleneck",
                      ModelConfig("ae", arch="fullconv", latent_dim=784 * feature_maps), TrainConfig(epochs=3))


def vae(latent_dim: int = 2, beta: float = 1.0, seed: int = 0) -> Experiment:
    name = f"vae_d{latent_dim}" + ("" if beta == 1.0 else f"_b{beta:g}")
    return Experiment(name, "6-8", f"MLP VAE, {latent_dim}-D latent, Gaussian decoder (MSE), beta={beta:g}",
                      ModelConfig("vae", latent_dim=latent_dim), TrainConfig(epochs=MLP_EPOCHS, beta=beta)).with_seed(seed)


def multistage(latent_dim: int = 2, beta: float = 1.0, gamma: float = 10.0, seed: int = 0) -> Experiment:
    """VAE + classifier head on z, trained with recon + beta * KL + gamma * CE."""
    name = f"ms_d{latent_dim}_b{beta:g}_g{gamma:g}"
    return Experiment(name, "7-8", f"multi-stage VAE, {latent_dim}-D latent, beta={beta:g}, gamma={gamma:g}",
                      ModelConfig("multistage", latent_dim=latent_dim),
                      TrainConfig(epochs=MLP_EPOCHS, beta=beta, gamma=gamma)).with_seed(seed)


def bernoulli_vae(latent_dim: int = 50, epochs: int = 30) -> Experiment:
    """VAE with a Bernoulli decoder (BCE) on stochastically binarised MNIST, for likelihood bounds."""
    return Experiment(f"vae_bernoulli_d{latent_dim}", "6",
                      f"MLP VAE, {latent_dim}-D latent, Bernoulli decoder, binarised MNIST",
                      ModelConfig("vae", latent_dim=latent_dim),
                      TrainConfig(epochs=epochs, recon="bce", binarize=True))


# Chapter 3 measures seed-dependent claims over several seeds; chapters 7 and 8
# sweep the KL weight beta (and, at beta = 1, the classification weight gamma).
SEEDS = (0, 1, 2, 3, 4)
BETAS = (0.1, 1.0, 4.0, 10.0)
GAMMAS = (0.1, 1.0, 10.0, 100.0)

_BOOK = [
    classifier(),
    *(mlp_ae(d) for d in (2, 8, 16, 32)),
    *(mlp_ae(2, seed=s) for s in SEEDS[1:]),
    *(conv_ae(d, small=small) for d in (2, 16) for small in (False, True)),
    overcomplete_ae(),
    vae(16),
    bernoulli_vae(),
    *(vae(2, beta=b) for b in BETAS),
    *(multistage(2, beta=b) for b in BETAS),
    *(multistage(2, beta=1.0, gamma=g) for g in GAMMAS if g != multistage().train.gamma),
]
REGISTRY: dict[str, Experiment] = {e.name: e for e in _BOOK}


def get(name: str) -> Experiment:
    """The experiment called ``name``; ``KeyError`` listing the known names otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown experiment {name!r}; known: {', '.join(REGISTRY)}") from None
