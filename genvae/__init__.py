"""genvae: the companion package of the genvae book.

Autoencoders, VAEs and the multi-stage VAE in readable PyTorch, with the data
loading, training loop, trained-model cache, metrics and figures the chapters use.

    >>> import genvae
    >>> ae = genvae.experiments.get("ae_d2").load()   # cached, or trained now
    >>> ae.metrics
"""

from importlib.metadata import PackageNotFoundError as _NotInstalled, version as _version

try:  # one place for the version: pyproject.toml, read from the installed package's metadata
    __version__ = _version("genvae")
except _NotInstalled:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

from . import _moved  # noqa: E402

_moved.install()  # old module paths (genvae.train, genvae.metrics, ...) stay importable: see genvae._moved

# The layers, lowest first (see "Package layout" in the README). The old flat names stay attributes of genvae.
from . import data, settings  # noqa: E402
from . import models, training  # noqa: E402
from .models import losses  # noqa: E402
from .storage import cache, checkpoint  # noqa: E402
from .analysis import latent, metrics  # noqa: E402
from .book import arithmetic, morpho, report  # noqa: E402
# Imported on first use (``genvae.book.plots``, ``from genvae import plots``):
# * ``plots`` (matplotlib, some 0.5 s): the command line and training never draw;
# * ``experiments``: building its registry reads GENVAE_DEVICE and GENVAE_PRECISION, and a bad value must reach
#   the caller as a clear error (the CLI's "genvae: error: ..."), not break ``import genvae`` with a traceback.
from .storage.cache import TrainedModel, load_or_train  # noqa: E402
from .models import ModelConfig, build_model  # noqa: E402
from .training import TrainConfig, fit  # noqa: E402

__all__ = [
    "cache", "checkpoint", "data", "experiments", "latent", "losses", "metrics", "models", "morpho", "plots", "report",
    "settings", "training", "TrainedModel", "load_or_train", "ModelConfig", "build_model", "TrainConfig", "fit",
]

_LAZY = ("experiments", "plots")


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return importlib.import_module(f".{name}", __name__)
    moved = _moved.attribute(name)
    if moved is not None:
        return moved
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
