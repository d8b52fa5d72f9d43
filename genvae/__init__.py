"""genvae: the companion package of the genvae book.

Autoencoders, VAEs and the multi-stage VAE in readable PyTorch, with the data
loading, training loop, trained-model cache, metrics and figures the chapters use.

    >>> import genvae
    >>> ae = genvae.experiments.get("ae_d2").load()   # cached, or trained now
    >>> ae.metrics
"""

__version__ = "0.1.0"

from . import arithmetic, cache, checkpoint, data, latent, losses, metrics, models, morpho, plots, report, settings, train  # noqa: E402
# ``experiments`` is imported on first use (``genvae.experiments``, ``from genvae import experiments``): building
# its registry reads GENVAE_DEVICE and GENVAE_PRECISION, and a bad value must reach the caller as a clear
# error (the CLI's "genvae: error: ..."), not break ``import genvae`` with a traceback.
from .cache import TrainedModel, load_or_train  # noqa: E402
from .models import ModelConfig, build_model  # noqa: E402
from .train import TrainConfig, fit  # noqa: E402

__all__ = [
    "cache", "checkpoint", "data", "experiments", "latent", "losses", "metrics", "models", "morpho", "plots", "report",
    "settings", "train", "TrainedModel", "load_or_train", "ModelConfig", "build_model", "TrainConfig", "fit",
]


def __getattr__(name: str):
    if name == "experiments":
        import importlib

        return importlib.import_module(".experiments", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
