"""Figures draw what they promise (axes, legends, pixels) and the GIF has every frame."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from genvae import plots  # noqa: E402
from genvae.models import ModelConfig, build_model  # noqa: E402
from genvae.train import History  # noqa: E402

from conftest import images  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_tile_places_images():
    x = torch.zeros(3, 1, 2, 2)
    x[1] = 1.0
    canvas = plots.tile(x, nrow=3, pad=1)
    assert canvas.shape == (4, 10)
    assert canvas[1:3, 4:6].min() == 1.0 and canvas[1:3, 1:3].max() == 0.0


def test_latent_scatter_has_a_legend_entry_per_class():
    z = torch.randn(100, 2)
    y = torch.arange(100) % 10
    ax = plots.latent_scatter(z, y, title="t")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [str(i) for i in range(10)]
    assert ax.get_xlabel() == "$z_1$"
    with pytest.raises(ValueError, match="at least 2"):
        plots.latent_scatter(torch.randn(5, 1), y[:5])


def test_grids_and_strips_render():
    x = images(10)
    plots.reconstruction_grid(x, 1 - x, n=10, title="r")
    plots.image_grid(x, nrow=5)
    plots.frame_strip(x[:6], labels=[str(i) for i in range(6)])
    plots.heatmap(torch.rand(3, 3), labels=["a", "b", "c"])
    torch.manual_seed(0)
    ax = plots.latent_grid(build_model(ModelConfig("vae", latent_dim=2, hidden=(8,))), n=4)
    assert ax.images[0].get_array().shape == (4 * 28, 4 * 28)


def test_loss_curves_draw_train_and_test():
    h = History([{"epoch": i, "seconds": 1, "train": {"total": 10 - i}, "test": {"total": 11 - i}} for i in (1, 2, 3)])
    ax = plots.loss_curves(h)
    assert len(ax.get_lines()) == 2


def test_save_gif_writes_every_frame(tmp_path):
    frames = torch.linspace(0, 1, 7).view(7, 1, 1, 1).expand(7, 1, 28, 28)
    path = plots.save_gif(frames, tmp_path / "out" / "t.gif", scale=2)
    with Image.open(path) as im:
        assert im.n_frames == 7 and im.size == (56, 56)
    assert not list(path.parent.glob("*.tmp"))


def test_distinct_frames_counts_what_the_gif_will_show(tmp_path):
    """Frames that differ by less than an 8-bit grey level are one picture: the GIF keeps one of them."""
    ramp = torch.linspace(0, 1, 7).view(7, 1, 1, 1).expand(7, 1, 28, 28)
    assert plots.distinct_frames(ramp) == 7
    still = torch.full((5, 1, 28, 28), 0.5) + torch.arange(5).view(5, 1, 1, 1) * 1e-5  # a collapsed model's tour
    assert plots.distinct_frames(still) == 1
    with Image.open(plots.save_gif(still, tmp_path / "still.gif")) as im:
        assert im.n_frames == 1  # what the browser test would find: no animation


def test_source_is_a_fenced_python_block_dedented():
    from genvae.models.autoencoder import AutoEncoder
    from genvae.train import train_step

    md = plots.source(train_step, AutoEncoder.forward).data
    assert md.startswith("```python\ndef train_step(") and md.endswith("\n```")
    assert "\ndef forward(self, x" in md  # the method, dedented to column 0


def test_larger_codes_are_drawn_in_their_principal_plane():
    from genvae import latent

    model = build_model(ModelConfig(kind="ae", latent_dim=4, hidden=(16,))).eval()
    z = torch.randn(200, 4, generator=torch.Generator().manual_seed(0))
    y = torch.arange(200) % 10
    ax = plots.latent_scatter(z, y)
    assert "PC 1 of the 4-D codes" == ax.get_xlabel()
    with pytest.raises(ValueError, match="plane"):
        plots.latent_grid(model, n=3)
    ax = plots.latent_grid(model, n=3, plane=latent.CodePlane(z))
    assert ax.get_images()[0].get_array().shape == (3 * 28, 3 * 28)
    plt.close("all")


def test_class_names_label_scatters_and_heatmaps():
    names = ("T-shirt/top", "Trouser", "Ankle boot")
    ax = plots.latent_scatter(torch.randn(30, 2), torch.arange(30) % 3, classes=names)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(names)
    ax = plots.heatmap(torch.rand(3, 3), labels=list(names))
    assert [t.get_text() for t in ax.get_xticklabels()] == list(names)
    assert ax.get_xticklabels()[0].get_rotation() == 45  # long names are turned so they do not overlap
    ax = plots.heatmap(torch.rand(3, 3))
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "1", "2"]
    assert ax.get_xticklabels()[0].get_rotation() == 0
    plt.close("all")


def test_kl_landscape_draws_the_kl_map_with_the_prior_marked_and_a_colour_bar():
    fig, ax = plt.subplots()
    out = plots.kl_landscape(ax=ax, title="KL map")
    assert out is ax and ax.get_yscale() == "log" and ax.get_title() == "KL map"
    star = [line for line in ax.get_lines() if line.get_marker() == "*"]
    assert len(star) == 1 and list(star[0].get_xdata()) == [0] and list(star[0].get_ydata()) == [1]
    assert len(fig.axes) == 2  # the map and its colour bar
    assert ax.get_xlim()[0] == pytest.approx(-3) and ax.get_ylim() == pytest.approx((0.05, 4))
    with pytest.raises(ValueError):
        plots.kl_landscape(levels=[1.0, 0.5])


def test_latent_joint_draws_each_class_in_the_scatter_and_both_margins():
    import matplotlib.pyplot as plt

    from genvae import plots

    g = torch.Generator().manual_seed(0)
    y = torch.arange(3).repeat(40)
    z = torch.randn(120, 2, generator=g) + 3 * torch.nn.functional.one_hot(y, 3)[:, :2].float()
    grid = plots.latent_joint(z, y, classes=["a", "b", "c"], title="t", sample=90)
    assert len(grid.ax_joint.collections) == 1 and len(grid.ax_joint.collections[0].get_offsets()) == 90
    assert len(grid.ax_marg_x.collections) == 3 and len(grid.ax_marg_y.collections) == 3  # one density per class
    assert [t.get_text() for t in grid.ax_joint.get_legend().get_texts()] == ["a", "b", "c"]
    plt.close(grid.figure)
    with pytest.raises(ValueError):
        plots.latent_joint(z, y[:10])
