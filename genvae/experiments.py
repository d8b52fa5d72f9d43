"""The named models the book trains, each a (ModelConfig, TrainConfig) pair with a name.

``genvae list`` prints this registry, ``genvae train NAME`` trains one entry and
``genvae reproduce`` trains them all. Chapters load them with
``experiments.get(NAME).load()``, which goes through the trained-model cache.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .cache import TrainedModel, entry_path, cache_key, load_or_train
from .models import ModelConfig
from .settings import quick_mode
from .train import TrainConfig


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


# Full-mode budgets, measured on a 2-core CPU: an MLP epoch over 60k images takes
# about 6 s, a convolutional one about 25 s.
_MLP = TrainConfig(epochs=15)
_CONV = TrainConfig(epochs=8)

_BASE = [
    Experiment("classifier", "all", "CNN classifier, the independent judge of generated digits",
               ModelConfig("classifier", channels=(32, 64), hidden=(128,)), TrainConfig(epochs=5)),
    Experiment("ae_d2", "2-3", "MLP autoencoder, 2-D latent",
               ModelConfig("ae", latent_dim=2), _MLP),
    Experiment("ae_d8", "2", "MLP autoencoder, 8-D latent",
               ModelConfig("ae", latent_dim=8), _MLP),
    Experiment("ae_d32", "2", "MLP autoencoder, 32-D latent",
               ModelConfig("ae", latent_dim=32), _MLP),
    Experiment("conv_ae_d2", "4", "convolutional autoencoder, 2-D latent",
               ModelConfig("ae", arch="conv", latent_dim=2), _CONV),
    Experiment("overcomplete_ae", "4", "linear autoencoder 784 -> 1024 -> 784, no bottleneck",
               ModelConfig("ae", latent_dim=1024, hidden=()), TrainConfig(epochs=10)),
    Experiment("vae_d2", "6-8", "MLP VAE, 2-D latent, Gaussian decoder (MSE)",
               ModelConfig("vae", latent_dim=2), _MLP),
    Experiment("vae_d16", "6", "MLP VAE, 16-D latent, Gaussian decoder (MSE)",
               ModelConfig("vae", latent_dim=16), _MLP),
]

# Chapter 3 measures seed-dependent claims over several seeds.
SEEDS = (0, 1, 2, 3, 4)

REGISTRY: dict[str, Experiment] = {e.name: e for e in _BASE}
REGISTRY.update({e.name: e for e in (REGISTRY["ae_d2"].with_seed(s) for s in SEEDS[1:])})


def get(name: str) -> Experiment:
    """The experiment called ``name``; ``KeyError`` listing the known names otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown experiment {name!r}; known: {', '.join(REGISTRY)}") from None
