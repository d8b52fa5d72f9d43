"""Bad input gets a clear error that names the problem: the table of inputs and their exact messages.

Each row is one bad input and the exact message it gets; the tests check every row, so the table is
true. ``python tests/test_bad_input.py`` prints it as Markdown (the issue note quotes it). The command
line's rows give the exit code too (1: an error, one line ``genvae: error: ...``; 2: a usage error,
with argparse's usage; 130: interrupted); its exit codes are also checked in real subprocesses below.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Callable

import pytest
import torch
from conftest import default_sigint

from genvae import data as gdata
from genvae import experiments, latent, losses, metrics, plots, settings
from genvae.cli import main
from genvae.data import ImageData
from genvae.models import ModelConfig, build_model
from genvae.train import TrainConfig, fit

ROOT = Path(__file__).resolve().parents[1]
HAS_CUDA = torch.cuda.is_available()
HERE = ", ".join(settings.available_devices())  # "cpu" on the CI machine


@cache
def _model(kind: str, **kw):
    cfg = {"gan": dict(arch="conv", channels=(4, 8)), "classifier": dict(channels=(4, 8))}.get(kind, {})
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return build_model(ModelConfig(kind, latent_dim=3, hidden=(16,), **{**cfg, **kw})).eval()


def _x(n: int = 2) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def _data(x: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> ImageData:
    x, y = _x(8) if x is None else x, torch.arange(8) % 10 if labels is None else labels
    return ImageData("mnist", tuple("0123456789"), x, y, x, y, x[:0], y[:0])


def _with(value: float) -> torch.Tensor:
    """Grey images (0.5) with one pixel set to ``value``."""
    x = torch.full((2, 1, 28, 28), 0.5)
    x[0, 0, 3, 3] = value
    return x


def _x255(n: int = 2) -> torch.Tensor:
    """Images as bytes-valued floats, 0 to 255: what forgetting ``/ 255`` gives."""
    x = (_x(n) * 255).round()
    x[0, 0, 0, 0] = 255.0
    return x


@dataclass(frozen=True)
class Row:
    what: str  # the bad input, in words
    call: Callable[[], object]  # does it
    error: type[BaseException]
    message: str  # the exact message (str of the error; for a KeyError, its argument)
    env: dict | None = None  # environment variables set for the call
    skip: str | None = None  # a reason this machine cannot show the row


ROWS = [
    # --- the models: images -------------------------------------------------------------------------
    Row("images in [0, 255] to a model (VAE forward)", lambda: _model("vae")(_x255()), ValueError,
        "expected values in [0, 1], got max 255.0; divide by 255"),
    Row("images in [0, 255] to encode / embed / reconstruct", lambda: _model("vae").encode(_x255()), ValueError,
        "expected values in [0, 1], got max 255.0; divide by 255"),
    Row("images in [0, 255] to the classifier", lambda: _model("classifier")(_x255()), ValueError,
        "expected values in [0, 1], got max 255.0; divide by 255"),
    Row("images slightly above 1 (noise added, not clamped)", lambda: _model("ae")(_with(1.2)), ValueError,
        "expected values in [0, 1], got max 1.2; clamp with x.clamp(0, 1)"),
    Row("images in [-1, 1]", lambda: _model("ae")(_with(-1.0)), ValueError,
        "expected values in [0, 1], got min -1.0; map [-1, 1] images back with (x + 1) / 2"),
    Row("images with a NaN", lambda: _model("ae")(_with(math.nan)), ValueError,
        "expected values in [0, 1], the images contain NaN"),
    Row("uint8 images", lambda: _model("vae")(torch.zeros(2, 1, 28, 28, dtype=torch.uint8)), TypeError,
        "expected floating-point images with values in [0, 1], got torch.uint8; convert with x.float() / 255"),
    Row("flat images (B, 784)", lambda: _model("ae")(torch.rand(2, 784)), ValueError,
        "expected images of shape (B, 1, 28, 28), got (2, 784); reshape flat images with x.view(-1, 1, 28, 28)"),
    Row("images without the channel (B, 28, 28)", lambda: _model("ae")(torch.rand(2, 28, 28)), ValueError,
        "expected images of shape (B, 1, 28, 28), got (2, 28, 28); add the channel dimension with x.unsqueeze(1)"),
    Row("colour images (B, 3, 28, 28)", lambda: _model("gan").discriminate(torch.rand(2, 3, 28, 28)), ValueError,
        "expected images of shape (B, 1, 28, 28), got (2, 3, 28, 28); the models take grey images (1 channel), not 3"),
    Row("images of another size (B, 1, 32, 32)", lambda: _model("classifier")(torch.rand(2, 1, 32, 32)), ValueError,
        "expected images of shape (B, 1, 28, 28), got (2, 1, 32, 32)"),
    Row("a list instead of a tensor", lambda: _model("ae")([[0.5]]), TypeError,
        "expected images as a torch.Tensor of shape (B, 1, 28, 28), got list"),
    # --- the models: codes, counts, labels ---------------------------------------------------------
    Row("codes of the wrong size to decode (D = 3)", lambda: _model("vae").decode(torch.zeros(4, 5)), ValueError,
        "expected codes of shape (B, 3), got (4, 5)"),
    Row("one code without its batch dimension", lambda: _model("ae").generate(torch.zeros(3)), ValueError,
        "expected codes of shape (B, 3), got (3,); one code: z.unsqueeze(0)"),
    Row("integer codes", lambda: _model("ae").decode(torch.zeros(2, 3, dtype=torch.long)), TypeError,
        "expected floating-point codes, got torch.int64; convert with z.float()"),
    Row("GAN noise of the wrong size", lambda: _model("gan").generate(torch.zeros(2, 4)), ValueError,
        "expected noise of shape (B, 3), got (2, 4)"),
    Row("sample(0)", lambda: _model("vae").sample(0), ValueError, "n must be a whole number >= 1, got 0"),
    Row("sample(2.5)", lambda: _model("gan").sample(2.5), ValueError, "n must be a whole number >= 1, got 2.5"),
    Row("a class label out of range (CVAE)", lambda: _model("cvae")(_x(), torch.tensor([0, 10])), ValueError,
        "expected class labels in [0, 10), got 0..10"),
    Row("float class labels (CVAE)", lambda: _model("cvae")(_x(), torch.tensor([0.0, 1.0])), TypeError,
        "expected integer class labels of shape (B,), got torch.float32; convert with y.long()"),
    Row("one label for two images (CVAE)", lambda: _model("cvae")(_x(), torch.tensor([3])), ValueError,
        "expected class labels of shape (2,), one per image, got (1,)"),
    Row("a sample of class 12 (CVAE)", lambda: _model("cvae").sample(2, y=12), ValueError,
        "expected class labels in [0, 10), got 12..12"),
    # --- configurations and names ------------------------------------------------------------------
    Row("an unknown model kind", lambda: ModelConfig("transformer"), ValueError,
        "kind must be one of ('ae', 'vae', 'multistage', 'classifier', 'gan', 'vaegan', 'cvae', 'ddpm', 'flow'), got 'transformer'"),
    Row("a latent size of 0", lambda: ModelConfig("vae", latent_dim=0), ValueError,
        "latent_dim must be >= 1 (the size of the code z), got 0"),
    Row("a latent size of 2.5", lambda: ModelConfig("vae", latent_dim=2.5), ValueError,
        "latent_dim must be a whole number, got 2.5"),
    Row("a VAE recipe with a latent size of 0", lambda: experiments.vae(0), ValueError,
        "latent_dim must be >= 1 (the size of the code z), got 0"),
    Row("beta < 0 in a training config", lambda: TrainConfig(beta=-1.0), ValueError,
        "beta must be a number >= 0, got -1.0"),
    Row("beta = NaN", lambda: TrainConfig(beta=math.nan), ValueError, "beta must be a number >= 0, got nan"),
    Row("beta < 0 in a recipe", lambda: experiments.vae(2, beta=-4.0), ValueError,
        "beta must be a number >= 0, got -4.0"),
    Row("beta < 0 in the loss", lambda: losses.vae_loss(_model("vae")(_x()), _x(), beta=-1), ValueError,
        "beta must be >= 0, got -1"),
    Row("0 epochs", lambda: TrainConfig(epochs=0), ValueError, "epochs must be a whole number >= 1, got 0"),
    Row("an unknown experiment name", lambda: experiments.get("vae_2d"), KeyError,
        "unknown experiment 'vae_2d'; did you mean vae_d8, vae_d2, vae_d16? `genvae list` (or "
        "genvae.experiments.REGISTRY) has all 100 known names"),
    # --- losses and the helpers ----------------------------------------------------------------------
    Row("logits and images of other shapes", lambda: losses.reconstruction_loss(torch.zeros(2, 1, 28, 28), _x(1)),
        ValueError, "x_logits (2, 1, 28, 28) and images x (1, 1, 28, 28) do not match: expected x (B, 1, 28, 28) "
                    "and x_logits of the same shape"),
    Row("mu and logvar of other shapes", lambda: losses.gaussian_kl(torch.zeros(2, 3), torch.zeros(2, 4)), ValueError,
        "mu and logvar must have the same shape (B, D), got (2, 3) and (2, 4)"),
    Row("images in [0, 255] to latent.encode", lambda: latent.encode(_model("ae"), _x255()), ValueError,
        "expected values in [0, 1], got max 255.0; divide by 255"),
    Row("codes of the wrong size to latent.decode", lambda: latent.decode(_model("ae"), torch.zeros(2, 2)), ValueError,
        "expected codes of shape (B, 3), got (2, 2)"),
    Row("a path of 1 frame", lambda: latent.line_path(torch.zeros(2), torch.ones(2), 1), ValueError,
        "n_frames must be a whole number >= 2, got 1"),
    Row("centroids of codes and labels of other lengths", lambda: latent.centroids(torch.zeros(5, 2), torch.arange(4)),
        ValueError, "expected labels y of shape (5,), one per image, got (4,)"),
    Row("the ELBO of an autoencoder", lambda: metrics.elbo(_model("ae"), _x()), ValueError,
        "elbo needs a VAE (a model with encode(x) -> mu, logvar), got AutoEncoder"),
    Row("an IWAE bound with k = 0", lambda: metrics.iwae_bound(_model("vae"), _x(), k=0), ValueError,
        "k must be a whole number >= 1, got 0"),
    Row("images in [0, 255] to the judge", lambda: metrics.Judge(_model("classifier")).predict_proba(_x255()), ValueError,
        "expected values in [0, 1], got max 255.0; divide by 255"),
    Row("accuracy of (N, 1) predictions", lambda: metrics.accuracy(torch.zeros(4, 1, 1), torch.zeros(4)), ValueError,
        "expected predictions (N,) or scores (N, K) and labels (N,), got (4, 1, 1) and (4,)"),
    Row("Frechet distance of features of other widths",
        lambda: metrics.frechet_distance(torch.rand(5, 3), torch.rand(5, 4)), ValueError,
        "expected two feature sets (N, F) of one width F, at least 2 rows each, got (5, 3) and (5, 4)"),
    Row("kNN with more neighbours than codes",
        lambda: metrics.knn_accuracy(torch.zeros(3, 2), torch.arange(3), torch.zeros(2, 2), torch.arange(2), k=5),
        ValueError, "k = 5 neighbours, but only 3 training codes"),
    Row("a figure of images in [0, 255]", lambda: plots.image_grid(_x255()), ValueError,
        "expected values in [0, 1], got max 255.0; divide by 255"),
    Row("a GIF of frames in [0, 255]", lambda: plots.save_gif(_x255(), "/nonexistent/never.gif"), ValueError,
        "expected values in [0, 1], got max 255.0; divide by 255"),
    # --- training: the data are checked once, as they enter fit ------------------------------------
    Row("training data in [0, 255]", lambda: fit(_model("ae"), _data(_x255(8)), TrainConfig(epochs=1), progress=False),
        ValueError, "train images: expected values in [0, 1], got max 255.0; divide by 255"),
    Row("a training label out of range (classifier)",
        lambda: fit(_model("classifier"), _data(labels=torch.arange(8) + 3), TrainConfig(epochs=1), progress=False),
        ValueError, "expected train labels in [0, 10), got 3..10"),
    # --- settings and devices --------------------------------------------------------------------------
    Row("GENVAE_QUICK=maybe", settings.quick_mode, ValueError, "GENVAE_QUICK='maybe' is not understood; use 1 or 0",
        env={"GENVAE_QUICK": "maybe"}),
    Row("GENVAE_DEVICE=nosuch", settings.default_device, ValueError,
        f"GENVAE_DEVICE='nosuch' is not a device: choose cpu, cuda or mps (available here: {HERE})",
        env={"GENVAE_DEVICE": "nosuch"}),
    Row("device='nosuch' (fit, train_model, load...)", lambda: settings.resolve_device("nosuch"), ValueError,
        f"device 'nosuch' is not a device: choose cpu, cuda or mps (available here: {HERE})"),
    Row("device='cuda' on a machine without CUDA", lambda: settings.resolve_device("cuda"), ValueError,
        f"device 'cuda' is not available: this machine has no CUDA GPU (available here: {HERE})",
        skip="this machine has CUDA" if HAS_CUDA else None),
    Row("GENVAE_DATA pointing to an empty folder", lambda: gdata.load("mnist", root=_empty(), download=False),
        gdata.DataNotFoundError,
        "MNIST was not found in {empty}/MNIST/raw.\nExpected the four files train-images-idx3-ubyte, "
        "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte; missing: train-images-idx3-ubyte, "
        "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte.\nSet GENVAE_DATA to a folder "
        "holding MNIST/raw/, or run once with internet access so torchvision can download it."),
]


@cache
def _empty() -> Path:
    return Path(tempfile.mkdtemp(prefix="genvae-empty-")).resolve()


@pytest.mark.parametrize("row", ROWS, ids=[r.what for r in ROWS])
def test_each_bad_input_gets_its_message(row, monkeypatch):
    if row.skip:
        pytest.skip(row.skip)
    for k, v in (row.env or {}).items():
        monkeypatch.setenv(k, v)
    with pytest.raises(row.error) as e:
        row.call()
    got = e.value.args[0] if isinstance(e.value, KeyError) else str(e.value)
    assert got == row.message.replace("{empty}", str(_empty()))


# --- where values are read: once per fit, never per step; never on another device ---------------------


def test_the_training_loop_reads_the_values_once_per_fit_not_per_step(monkeypatch):
    """Pixel and label values are read when the data enter fit (train and test set: one read each), not at
    each of the steps and evaluations that follow (on a GPU each read would be a host sync)."""
    from genvae import checks

    reads = {"pixels": 0, "labels": 0}
    real_pixels, real_labels = checks.check_pixel_values, checks.check_label_values

    def count(kind, real):
        def counted(*a, **k):
            reads[kind] += 1
            return real(*a, **k)
        return counted

    monkeypatch.setattr(checks, "check_pixel_values", count("pixels", real_pixels))
    monkeypatch.setattr(checks, "check_label_values", count("labels", real_labels))
    x, y = _x(40), torch.arange(40) % 10
    data = ImageData("mnist", tuple("0123456789"), x, y, x[:16], y[:16], x[:0], y[:0])
    history = fit(build_model(ModelConfig("cvae", latent_dim=2, hidden=(8,))), data,
                  TrainConfig(epochs=2, batch_size=8), progress=False)  # a CVAE: its forward takes the labels too
    assert len(history.epochs) == 2  # 10 steps and 2 test evaluations, each calling the model
    assert reads == {"pixels": 2, "labels": 2}
    _model("ae")(x)  # ...while outside a fit, a call on CPU tensors reads them again
    assert reads["pixels"] == 3


def test_values_on_another_device_are_not_read_per_call():
    """A tensor off the CPU (here on the 'meta' device, which has no values at all) gets its shape and
    dtype checked, and no read: on a GPU that read would wait for the device."""
    from genvae.checks import check_images

    check_images(torch.empty(2, 1, 28, 28, device="meta"))  # no values to read, and none read
    with pytest.raises(ValueError, match=r"\(B, 1, 28, 28\), got \(2, 784\)"):
        check_images(torch.empty(2, 784, device="meta"))


# --- the command line: exit code and the last line of stderr ------------------------------------------


@dataclass(frozen=True)
class CliRow:
    what: str
    argv: list[str]
    code: int
    last_line: str  # stderr's last line, exactly
    env: dict | None = None
    usage: bool = False  # argparse's usage comes first
    skip: str | None = None


CLI_ROWS = [
    CliRow("an unknown command", ["bogus"], 2,
           "genvae: error: argument COMMAND: invalid choice: 'bogus' (choose from 'list', 'train', 'reproduce', 'data', 'cache', 'chapters')",
           usage=True),
    CliRow("an unknown option", ["train", "ae_d2", "--bogus"], 2, "genvae: error: unrecognized arguments: --bogus",
           usage=True),
    CliRow("a bad option value", ["train", "ae_d2", "--epochs", "0"], 2,
           "genvae train: error: argument --epochs: must be >= 1, got 0", usage=True),
    CliRow("--device nosuch", ["train", "ae_d2", "--device", "nosuch"], 2,
           f"genvae train: error: argument --device: 'nosuch' is not a device: choose cpu, cuda or mps "
           f"(available here: {HERE})", usage=True),
    CliRow("--device cuda without CUDA", ["train", "ae_d2", "--device", "cuda"], 2,
           f"genvae train: error: argument --device: 'cuda' is not available: this machine has no CUDA GPU "
           f"(available here: {HERE})", usage=True, skip="this machine has CUDA" if HAS_CUDA else None),
    CliRow("an unknown experiment", ["train", "ae_2"], 2,
           "genvae: error: unknown experiment 'ae_2'; did you mean ae_d2, vae_d2, ae_d32? `genvae list` (or "
           "genvae.experiments.REGISTRY) has all 100 known names"),
    CliRow("--only matching nothing", ["reproduce", "--only", "zzz"], 2,
           "genvae: error: no mnist experiment name contains 'zzz'"),
    CliRow("an unknown data set", ["reproduce", "--dataset", "cifar"], 2,
           "genvae reproduce: error: argument --dataset: invalid choice: 'cifar' (choose from 'fashion-mnist', 'mnist')",
           usage=True),
    CliRow("GENVAE_DATASET naming an unknown data set", ["reproduce"], 1,
           "genvae: error: GENVAE_DATASET='cifar' is not a data set: choose fashion-mnist or mnist",
           env={"GENVAE_DATASET": "cifar"}),
    CliRow("GENVAE_QUICK=maybe", ["list"], 1, "genvae: error: GENVAE_QUICK='maybe' is not understood; use 1 or 0",
           env={"GENVAE_QUICK": "maybe"}),
    CliRow("GENVAE_DEVICE=nosuch", ["train", "ae_d2", "--quick"], 1,
           f"genvae: error: GENVAE_DEVICE='nosuch' is not a device: choose cpu, cuda or mps (available here: {HERE})",
           env={"GENVAE_DEVICE": "nosuch"}),
    CliRow("GENVAE_DATA pointing to an empty folder (no download)", ["train", "ae_d2", "--quick"], 1,
           "genvae: error: MNIST was not found in {empty}/MNIST/raw. Expected the four files train-images-idx3-ubyte, "
           "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte; missing: train-images-idx3-ubyte, "
           "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte. Set GENVAE_DATA to a folder "
           "holding MNIST/raw/, or run once with internet access so torchvision can download it.",
           env={"GENVAE_DATA": "{empty}"}),
]


def _offline(monkeypatch) -> None:
    """Missing data are reported without trying a download (no network in CI; the message is the same)."""
    real = gdata._ensure_files
    monkeypatch.setattr(gdata, "_ensure_files", lambda spec, root, download: real(spec, root, False))


@pytest.mark.parametrize("row", CLI_ROWS, ids=[r.what for r in CLI_ROWS])
def test_each_bad_command_line_gets_its_exit_code_and_line(row, monkeypatch, capsys):
    if row.skip:
        pytest.skip(row.skip)
    for k, v in (row.env or {}).items():
        monkeypatch.setenv(k, v.replace("{empty}", str(_empty())))
    _offline(monkeypatch)
    try:
        code = main(row.argv)
    except SystemExit as e:  # argparse's usage errors
        code = e.code
    err = capsys.readouterr().err
    assert code == row.code
    assert err.splitlines()[-1] == row.last_line.replace("{empty}", str(_empty()))
    assert err.startswith("usage: ") == row.usage and "Traceback" not in err
    if not row.usage:
        assert len(err.splitlines()) == 1  # one line


# --- real processes: the exit codes 1 and 130 (2: tests/test_cli.py::test_console_entry_point_runs) ---


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENVAE_QUICK")}
    return {**env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **extra}


def test_an_error_exits_1_with_one_line_even_at_import_time(tmp_path):
    # GENVAE_DEVICE is read while the experiments' registry is built: a bad value must not be an import traceback.
    r = subprocess.run([sys.executable, "-m", "genvae", "list"], capture_output=True, text=True, timeout=120,
                       env=_env(GENVAE_DEVICE="nosuch", GENVAE_CACHE=str(tmp_path)))
    assert r.returncode == 1
    assert r.stderr == (f"genvae: error: GENVAE_DEVICE='nosuch' is not a device: choose cpu, cuda or mps "
                        f"(available here: {HERE})\n")


def _genvae_processes(marker: str) -> list[int]:
    """The processes whose environment holds ``marker`` (the test's own cache folder): the CLI and its workers."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker.encode() in (proc / "environ").read_bytes():
                pids.append(int(proc.name))
        except OSError:  # gone, or not ours to read
            continue
    return pids


@pytest.mark.skipif(not Path("/proc/self/environ").exists() or os.name != "posix", reason="needs Linux's /proc")
def test_ctrl_c_exits_130_and_stops_the_worker_processes(tmp_path):
    """Ctrl-C in a terminal sends SIGINT to the whole process group: the CLI and its training worker. The CLI
    says it was interrupted and exits 130; the worker (which ignores SIGINT, even while it imports torch) is
    stopped by the CLI, so nothing is left running and no traceback is printed."""
    cache_dir = tmp_path / "cache"
    p = subprocess.Popen([sys.executable, "-m", "genvae", "reproduce", "--quick", "--only", "ae_d2_s", "--jobs", "2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                         preexec_fn=default_sigint, env=_env(GENVAE_CACHE=str(cache_dir)))
    try:
        first = p.stdout.readline()  # printed once the work is planned, as the worker starts
        assert "training 2 on cpu" in first, first
        time.sleep(1.0)
        os.killpg(p.pid, signal.SIGINT)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 130
    assert err.rstrip().splitlines()[-1] == "genvae: interrupted" and "Traceback" not in err
    deadline = time.time() + 10
    while _genvae_processes(str(cache_dir)) and time.time() < deadline:  # the worker's exit is asynchronous
        time.sleep(0.2)
    assert _genvae_processes(str(cache_dir)) == []


def _code(text: str) -> str:
    """Inline Markdown code, also for text holding backticks."""
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def markdown_table() -> str:
    """The rows above as the Markdown tables the issue note quotes."""
    lines = ["| input | error | message |", "|---|---|---|"]
    for r in ROWS:
        msg = r.message.replace("{empty}", "<the folder>").replace("\n", " ⏎ ").replace("|", "\\|")
        lines.append(f"| {r.what} | {r.error.__name__} | {_code(msg)} |")
    lines += ["", "| command line | exit | stderr (last line) |", "|---|---|---|"]
    for r in CLI_ROWS:
        env = " ".join(f"{k}={v}" for k, v in (r.env or {}).items()).replace("{empty}", "<empty folder>")
        cmd = f"{env + ' ' if env else ''}genvae {' '.join(r.argv)}"
        msg = r.last_line.replace("{empty}", "<empty folder>").replace("|", "\\|")
        lines.append(f"| `{cmd}` | {r.code} | {'usage, then ' if r.usage else ''}{_code(msg)} |")
    lines.append("| Ctrl-C (SIGINT) during `genvae reproduce` / `train` | 130 | `genvae: interrupted` |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
