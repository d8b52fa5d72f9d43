"""Shared fixtures. Tests read MNIST from GENVAE_DATA (CI: ../shared/data) and never download."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

import genvae
from genvae.data import ImageData
from genvae.settings import DEVICE_TYPES, available_devices

_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if "GENVAE_DATA" not in os.environ and (_SHARED / "MNIST").is_dir():
    os.environ["GENVAE_DATA"] = str(_SHARED)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path_factory):
    """Every test gets its own empty model cache and full mode, whatever the shell says."""
    monkeypatch.setenv("GENVAE_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("GENVAE_QUICK", raising=False)
    monkeypatch.delenv("GENVAE_DATASET", raising=False)  # the book's data set: MNIST unless a test says otherwise
    monkeypatch.setenv("GENVAE_DEVICE", "cpu")  # the same numbers on every machine
    monkeypatch.setenv("GENVAE_RESUME_SHARE", "0")  # a resume state after every epoch, however short the epochs


@pytest.fixture(scope="session")
def chapters_cache(tmp_path_factory):
    """One quick-mode model cache for the chapter runs of tests/test_parameters.py (and the quick trainings of
    test_experiments.py that stand for the same models): chapters that share a model (the judge, the 2-D VAE...)
    train it once, as the book does; still apart from the user's own cache. Under
    pytest-xdist every worker of the run uses the same folder (beside the workers' own temporary folders), so a
    model one worker trained is loaded by the other; two workers that train one model at once both save the
    same weights, each save atomic."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        path = tmp_path_factory.getbasetemp().parent / "chapters-cache"
        path.mkdir(exist_ok=True)
        return path
    return tmp_path_factory.mktemp("chapters-cache")


@pytest.fixture(scope="session")
def mnist() -> ImageData:
    return genvae.data.load("mnist")


@pytest.fixture(scope="session")
def small_mnist(mnist) -> ImageData:
    """1,000 training and 500 test images: enough to see learning in a second."""
    return ImageData(
        name="mnist", classes=mnist.classes,
        x_train=mnist.x_train[:1000], y_train=mnist.y_train[:1000],
        x_test=mnist.x_test[:500], y_test=mnist.y_test[:500],
        x_val=mnist.x_val, y_val=mnist.y_val,
    )


def images(n: int = 4, seed: int = 0) -> torch.Tensor:
    """Random images in [0, 1], ``(n, 1, 28, 28)``."""
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def device_params() -> list:
    """One pytest parameter per device type: the CPU always runs; CUDA and MPS run where this machine has
    them and are skipped, with the reason, where it does not."""
    have = set(available_devices())
    return [pytest.param(t, id=t, marks=() if t in have else
                         pytest.mark.skip(reason=f"needs a {t.upper()} device; this machine has {', '.join(sorted(have))}"))
            for t in DEVICE_TYPES]


def default_sigint() -> None:
    """``preexec_fn`` for a child process that a test stops with SIGINT: it gets SIGINT's default action back.

    A process started in the background (``cmd &`` in a non-interactive shell, ``nohup``) ignores SIGINT, and
    every child inherits that. Python then installs no KeyboardInterrupt handler, so a test runner started
    that way would see its children shrug off the Ctrl-C that the test sends. Resetting it in the child makes
    such a test hold wherever the runner was started."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def pytest_generate_tests(metafunc):
    """Every test of a model family's class (``tests/model_suite.py``) runs once per config the class names,
    and once per device type when it takes ``device``."""
    cls = metafunc.cls
    if cls is None or not isinstance(getattr(cls, "configs", None), dict) or not hasattr(cls, "loss_parts"):
        return
    if "cfg" in metafunc.fixturenames:
        metafunc.parametrize("cfg", list(cls.configs), ids=list(cls.configs), indirect=True)
    if "device" in metafunc.fixturenames:
        metafunc.parametrize("device", device_params())


@pytest.fixture
def cfg(request):
    """The ModelConfig a family's test class names (built here, when the test runs)."""
    from genvae.models import ModelConfig

    return ModelConfig(**request.cls.configs[request.param])


def pytest_collection_modifyitems(config, items):
    """The long tests first, the chapters' parameter runs first of all, later chapters (which train more) before
    earlier ones: with two workers the run then ends on short tests instead of one worker finishing a
    two-minute chapter while the other waits (measured on 2 cores: about 420 s against a CPU total of 740 s / 2
    before this order). Within each group the collection order is kept."""
    def rank(item) -> tuple:
        if item.get_closest_marker("slow") is None:
            return (2, 0)
        if item.originalname == "test_chapter_runs_with_other_parameters":
            return (0, -int(item.callspec.id[:2]))  # 11, 10, 09, ... (06b sorts with 06)
        return (1, 0)
    items.sort(key=rank)  # stable
