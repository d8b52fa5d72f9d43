"""Old import paths of modules that moved when the package took its layered layout.

``import genvae.train`` and ``from genvae.metrics import Judge`` keep working: each old name in
:data:`MOVED` is the *same module object* as its new home (so a monkeypatch through either name
patches both). The alias is made by a finder on :data:`sys.meta_path`, installed when ``genvae`` is
imported, so the old names need no files of their own.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

MOVED: dict[str, str] = {  # old module name -> new module name
    "genvae.train": "genvae.training",
    "genvae.losses": "genvae.models.losses",
    "genvae.outputs": "genvae.models.outputs",
    "genvae.evals": "genvae.storage.evals",
    "genvae.stack": "genvae.training.stack",
    "genvae.checkpoint": "genvae.storage.checkpoint",
    "genvae.resume": "genvae.storage.resume",
    "genvae.cache": "genvae.storage.cache",
    "genvae.cachedir": "genvae.storage.cachedir",
    "genvae.reproducibility": "genvae.storage.reproducibility",
    "genvae.metrics": "genvae.analysis.metrics",
    "genvae.latent": "genvae.analysis.latent",
    "genvae.report": "genvae.book.report",
    "genvae.plots": "genvae.book.plots",
    "genvae.diagrams": "genvae.book.diagrams",
    "genvae.explorer": "genvae.book.explorer",
    "genvae.chapters": "genvae.book.chapters",
    "genvae.density": "genvae.book.density",
    "genvae.divergence": "genvae.book.divergence",
    "genvae.posterior": "genvae.book.posterior",
    "genvae.transitions": "genvae.book.transitions",
    "genvae.morpho": "genvae.book.morpho",
    "genvae.arithmetic": "genvae.book.arithmetic",
}


class _AliasLoader(importlib.abc.Loader):
    """Loads an old name as the module that now holds its code."""

    def __init__(self, module):
        self.module, self.spec = module, module.__spec__

    def create_module(self, spec):
        return self.module

    def exec_module(self, module) -> None:
        module.__spec__ = self.spec  # the import system set it to the alias's spec; the module keeps its own


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        new = MOVED.get(fullname)
        if new is None:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(importlib.import_module(new)))


def install() -> None:
    """Put the alias finder on :data:`sys.meta_path` (once)."""
    if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _AliasFinder())


def attribute(name: str):
    """``genvae.<name>`` for an old top-level module name (``from genvae import train``), or ``None``."""
    old = f"genvae.{name}"
    return importlib.import_module(old) if old in MOVED else None
