"""Where output goes: a live notebook gets widgets, a terminal a text bar, a batch run (book build, papermill,
a log) nothing. Every case runs here with a fake environment, shell and stream."""

import io

import pytest
import torch
from tqdm.std import tqdm as std_tqdm

from genvae import frontend
from genvae.data import ImageData
from genvae.models import ModelConfig, build_model
from genvae.train import TrainConfig, fit


class ZMQInteractiveShell:  # the kernel's shell, by name, as ipykernel has it
    def __init__(self, user_ns=None):
        self.user_ns = user_ns or {}


class ColabShell(ZMQInteractiveShell):  # Colab's shell subclasses the kernel's
    pass


class TerminalInteractiveShell:
    user_ns: dict = {}


class Terminal(io.StringIO):
    def isatty(self):
        return True


LAB = {"JPY_SESSION_NAME": "/home/me/book/06_variational_autoencoders.ipynb"}
KERNEL, TERMINAL = ZMQInteractiveShell(), TerminalInteractiveShell()
NO_COLAB: dict = {}


def test_only_a_kernel_started_by_a_front_end_counts_as_live():
    assert frontend.live_notebook(LAB, KERNEL, NO_COLAB)  # JupyterLab, Notebook 7
    assert not frontend.live_notebook({}, KERNEL, NO_COLAB)  # nbclient, papermill, nbval: no session name
    assert not frontend.live_notebook(LAB, TERMINAL, NO_COLAB)  # IPython in a terminal is no notebook
    assert frontend.live_notebook({}, ZMQInteractiveShell({"__vsc_ipynb_file__": "x.ipynb"}), NO_COLAB)  # VS Code
    assert frontend.live_notebook({}, ColabShell(), {"google.colab": object()})
    assert frontend.in_kernel(ColabShell()) and not frontend.in_kernel(TERMINAL)


def test_widgets_follow_the_front_end_unless_the_setting_says_otherwise():
    assert frontend.widgets(LAB, KERNEL, NO_COLAB, have_ipywidgets=True)
    assert not frontend.widgets(LAB, KERNEL, NO_COLAB, have_ipywidgets=False)
    assert not frontend.widgets({}, KERNEL, NO_COLAB, have_ipywidgets=True)  # the book build
    assert not frontend.widgets({**LAB, "GENVAE_WIDGETS": "0"}, KERNEL, NO_COLAB, have_ipywidgets=True)
    assert frontend.widgets({"GENVAE_WIDGETS": "1"}, KERNEL, NO_COLAB, have_ipywidgets=True)
    assert not frontend.widgets({"GENVAE_WIDGETS": "1"}, KERNEL, NO_COLAB, have_ipywidgets=False)
    assert frontend.widgets({**LAB, "GENVAE_WIDGETS": "auto"}, KERNEL, NO_COLAB, have_ipywidgets=True)
    with pytest.raises(ValueError, match="GENVAE_WIDGETS='maybe'"):
        frontend.widgets({"GENVAE_WIDGETS": "maybe"}, KERNEL, NO_COLAB, have_ipywidgets=True)


@pytest.mark.parametrize("env, shell, stream, have, expected", [
    (LAB, KERNEL, io.StringIO(), True, "notebook"),  # a live notebook: one widget bar
    (LAB, KERNEL, io.StringIO(), False, "text"),  # ... without ipywidgets: a \r line, which Jupyter redraws
    ({}, KERNEL, Terminal(), True, "off"),  # the book build, papermill, nbval: nothing on the page
    ({"GENVAE_WIDGETS": "0"}, KERNEL, io.StringIO(), True, "off"),
    ({}, None, Terminal(), True, "text"),  # `genvae reproduce` in a terminal
    ({}, TERMINAL, Terminal(), True, "text"),  # IPython in a terminal
    (LAB, None, io.StringIO(), True, "off"),  # output piped to a log, e.g. CI
])
def test_bar_kind(env, shell, stream, have, expected):
    shell = shell if shell is not None else object()  # no IPython at all
    assert frontend.bar_kind(env, shell, NO_COLAB, stream, have_ipywidgets=have) == expected


def test_progress_bars_of_each_kind(capsys):
    with frontend.progress_bar(10, desc="quiet", kind="off") as bar:
        bar.update(10)
    assert capsys.readouterr().err == ""
    with frontend.progress_bar(10, desc="vae_d2", kind="text", mininterval=0) as bar:
        assert isinstance(bar, std_tqdm) and not bar.disable
        bar.update(4)
        bar.update(6)
    err = capsys.readouterr().err
    assert "vae_d2" in err and "10/10" in err and "\n" not in err.rstrip("\n")  # one line, redrawn with \r
    with frontend.progress_bar(10, desc="x", kind="text", enabled=False) as bar:
        assert bar.disable
    pytest.importorskip("ipywidgets")
    from tqdm.notebook import tqdm_notebook

    with frontend.progress_bar(10, desc="live", kind="notebook") as bar:
        assert isinstance(bar, tqdm_notebook)
        bar.update(10)
    with pytest.raises(ValueError, match="kind must be one of"):
        frontend.progress_bar(10, kind="fancy")


def test_training_writes_no_progress_into_a_log(capsys):
    """Under pytest stderr is captured, not a terminal: a run with progress on prints no bar."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(64, 1, 28, 28, generator=g), torch.randint(0, 10, (64,), generator=g)
    data = ImageData(name="mnist", classes=[str(i) for i in range(10)], x_train=x, y_train=y, x_test=x[:16],
                     y_test=y[:16], x_val=x[:16], y_val=y[:16])
    fit(build_model(ModelConfig("ae", hidden=(8,))), data, TrainConfig(epochs=1, batch_size=16), device="cpu",
        progress=True, check_every=1)
    assert capsys.readouterr().err == ""
