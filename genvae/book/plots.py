"""Figures used throughout the book. Each takes an optional ``ax`` and returns what it drew on.

All images are ``(N, 1, 28, 28)`` tensors in [0, 1]. Classes always get the same
colours (matplotlib's ``tab10``), so scatters in different chapters can be compared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from PIL import Image

from ..checks import check_count, check_images, check_labels
from ..analysis.latent import CodePlane, decode, grid_codes
from ..models import ModelConfig

__all__ = [
    "source", "palette", "tile", "image_grid", "reconstruction_grid", "latent_scatter", "latent_grid",
    "latent_joint", "frame_strip", "save_gif", "loss_curves", "heatmap", "architecture", "architecture_stages",
    "density_panel", "player_curves", "snapshot_grid", "KL_LEVELS", "kl_landscape",
]


def source(*objects):
    """The source code of functions or classes as a highlighted Python block, for a notebook or the book.

    Returned as Markdown holding a fenced code block, so Jupyter and the built
    book highlight it with their own styles, like any code cell.
    """
    import inspect
    import textwrap

    from IPython.display import Markdown

    code = "\n\n".join(textwrap.dedent(inspect.getsource(o)).rstrip() for o in objects)
    return Markdown(f"```python\n{code}\n```")


def palette(n: int = 10) -> list:
    """The class colours, shared by every figure."""
    return list(plt.get_cmap("tab10" if n <= 10 else "tab20").colors[:n])


def _ax(ax: Axes | None, figsize=(6, 6)) -> Axes:
    return ax if ax is not None else plt.subplots(figsize=figsize)[1]


def tile(images: torch.Tensor, nrow: int, pad: int = 1) -> np.ndarray:
    """Arrange images ``(N, 1, H, W)`` in [0, 1] into one 2-D array, ``nrow`` images per row.

    Every figure of images goes through here, so images in [0, 255] (which the grey colour map, fixed to
    [0, 1], would show all white) are refused here, with the fix."""
    check_images(images, size=None, values=True)
    nrow = check_count(nrow, "nrow")
    imgs = images.detach().cpu().float().squeeze(1).numpy()
    n, h, w = imgs.shape
    ncol_rows = -(-n // nrow)
    canvas = np.ones((ncol_rows * (h + pad) + pad, nrow * (w + pad) + pad))
    for i, img in enumerate(imgs):
        r, c = divmod(i, nrow)
        canvas[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = img
    return canvas


def image_grid(images: torch.Tensor, nrow: int = 10, ax: Axes | None = None, title: str | None = None) -> Axes:
    """Show images as a grid, ``nrow`` per row."""
    ax = _ax(ax, figsize=(nrow * 0.6, max(1, -(-len(images) // nrow)) * 0.6 + 0.4))
    ax.imshow(tile(images, nrow), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def reconstruction_grid(
    x: torch.Tensor, x_hat: torch.Tensor, n: int = 10, ax: Axes | None = None, title: str | None = None
) -> Axes:
    """Originals (top row) above their reconstructions (bottom row), ``n`` of each."""
    return _labelled_rows(torch.cat([x[:n], x_hat[:n]]), n, ["original", "reconstruction"],
                          _ax(ax, figsize=(n * 0.8, 2.2)), title)


def _labelled_rows(images: torch.Tensor, n: int, labels: Sequence[str], ax: Axes, title: str | None,
                   fontsize: float | None = None) -> Axes:
    """Images ``n`` per row, each row labelled on the left, no frame."""
    ax.imshow(tile(images, n), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([1 + 14 + i * 29 for i in range(len(labels))])
    ax.set_yticklabels(labels, fontsize=fontsize)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    if title:
        ax.set_title(title)
    return ax


def latent_scatter(
    z: torch.Tensor,
    y: torch.Tensor,
    ax: Axes | None = None,
    classes: Sequence[str] | None = None,
    title: str | None = None,
    s: float = 2.0,
    legend: bool = True,
) -> Axes:
    """Latent codes ``(N, D)`` coloured by class ``(N,)``, with a legend. Codes with D > 2 are drawn in the
    plane of their top two principal directions (:class:`genvae.analysis.latent.CodePlane`), and the axes say so."""
    check_labels(y, batch=len(z), name="classes y")
    plane = CodePlane(z)
    labels = plane.axis_labels
    ax = _ax(ax)
    z, y = np.asarray(plane.project(z)), np.asarray(y)
    k = int(y.max()) + 1
    classes = classes or [str(i) for i in range(k)]
    colours = palette(k)
    for c in range(k):
        pts = z[y == c]
        ax.scatter(pts[:, 0], pts[:, 1], s=s, color=colours[c], label=classes[c], alpha=0.6, linewidths=0, rasterized=True)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    if title:
        ax.set_title(title)
    if legend:
        ax.legend(markerscale=12 / max(s, 0.5) ** 0.5, fontsize=8, loc="best", framealpha=0.8, title="class")
    return ax


def latent_joint(z: torch.Tensor, y: torch.Tensor, classes: Sequence[str] | None = None, title: str | None = None,
                 sample: int = 5000, seed: int = 0, height: float = 7.5):
    """Codes ``(N, D)`` coloured by class ``(N,)``, with each class's density along both axes in the margins.

    The margins show what a scatter hides under its dots: along which axis two classes overlap, and along
    which they part. Drawn with seaborn's ``jointplot`` (seaborn is imported here, so only a chapter that
    draws this figure pays for the import). ``sample`` codes, drawn with ``seed``, keep the figure light.
    Codes with D > 2 are drawn in the plane of their top two principal directions. Returns the
    ``seaborn.JointGrid``.
    """
    import pandas as pd
    import seaborn as sns

    check_labels(y, batch=len(z), name="classes y")
    plane = CodePlane(z)
    keep = torch.randperm(len(z), generator=torch.Generator().manual_seed(seed))[:sample].sort().values
    pts, labels = np.asarray(plane.project(z[keep])), np.asarray(y[keep])
    k = int(np.asarray(y).max()) + 1
    classes = list(classes or [str(i) for i in range(k)])
    frame = pd.DataFrame({plane.axis_labels[0]: pts[:, 0], plane.axis_labels[1]: pts[:, 1],
                          "class": [classes[c] for c in labels]})
    grid = sns.jointplot(data=frame, x=plane.axis_labels[0], y=plane.axis_labels[1], hue="class",
                         hue_order=classes, palette=palette(k), height=height, s=6, alpha=0.5, linewidth=0,
                         marginal_kws={"common_norm": False, "fill": True, "alpha": 0.12, "linewidth": 1})
    grid.ax_joint.legend(loc="upper left", bbox_to_anchor=(1.25, 1.0), frameon=False, markerscale=2, title="class")
    if title:
        grid.figure.suptitle(title, y=1.01)
    return grid


def latent_grid(
    model: torch.nn.Module,
    n: int = 15,
    extent: tuple[float, float, float, float] = (-3, 3, -3, 3),
    ax: Axes | None = None,
    title: str | None = None,
    plane: CodePlane | None = None,
) -> Axes:
    """Decode an ``n`` x ``n`` grid of latent points spanning ``extent`` = (x0, x1, y0, y1).

    For a 2-D code the grid is the code itself. For a larger code, pass the ``plane`` of some codes
    (:class:`genvae.analysis.latent.CodePlane`, e.g. of the test codes): the grid then lies in that plane."""
    if plane is None:
        dim = model.config.latent_dim
        if dim != 2:
            raise ValueError(f"the model has {dim}-D codes: pass plane=latent.CodePlane(codes) to pick a 2-D slice")
        plane = CodePlane(torch.zeros(1, 2))
    x0, x1, y0, y1 = extent
    images = decode(model, grid_codes(n, extent, plane))  # (n*n, 1, 28, 28), row by row from the top
    ax = _ax(ax, figsize=(7, 7))
    ax.imshow(tile(images, n, pad=0), cmap="gray_r", vmin=0, vmax=1, extent=(x0, x1, y0, y1))
    ax.set_xlabel(plane.axis_labels[0])
    ax.set_ylabel(plane.axis_labels[1])
    if title:
        ax.set_title(title)
    return ax


def frame_strip(
    frames: torch.Tensor, ax: Axes | None = None, labels: Sequence[str] | None = None, title: str | None = None
) -> Axes:
    """Frames ``(F, 1, 28, 28)`` side by side, optionally with a caption under each."""
    f = len(frames)
    ax = _ax(ax, figsize=(f * 0.7, 1.4))
    ax.imshow(tile(frames, f), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks([])
    if labels is not None:
        ax.set_xticks([1 + 14 + i * 29 for i in range(f)])
        ax.set_xticklabels(labels, fontsize=7)
        ax.tick_params(length=0)
    else:
        ax.set_xticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    if title:
        ax.set_title(title)
    return ax


def _gif_pixels(frames: torch.Tensor) -> np.ndarray:
    """Frames ``(F, 1, 28, 28)`` in [0, 1] as the GIF's 8-bit grey levels ``(F, 28, 28)``, dark digits on white."""
    check_images(frames, size=None, values=True)  # clamping [0, 255] frames would silently give white frames
    return (255 * (1 - frames.detach().cpu().clamp(0, 1).squeeze(1).numpy())).astype(np.uint8)


def distinct_frames(frames: torch.Tensor) -> int:
    """How many different pictures a GIF of ``frames`` shows: frames equal after rounding to 8 bits are one
    picture (a GIF keeps one of consecutive equal frames, so 1 means the file does not animate)."""
    return len({a.tobytes() for a in _gif_pixels(frames)})


def save_gif(frames: torch.Tensor, path: str | Path, ms_per_frame: int = 80, scale: int = 4) -> Path:
    """Write frames ``(F, 1, 28, 28)`` in [0, 1] as a looping animated GIF, enlarged ``scale`` times."""
    path = Path(path)
    arr = _gif_pixels(frames)
    path.parent.mkdir(parents=True, exist_ok=True)
    imgs = [Image.fromarray(a).resize((a.shape[1] * scale, a.shape[0] * scale), Image.NEAREST) for a in arr]
    tmp = path.with_name(path.name + ".tmp")
    imgs[0].save(tmp, format="GIF", save_all=True, append_images=imgs[1:], duration=ms_per_frame, loop=0)
    tmp.replace(path)
    return path


def loss_curves(history, parts: Sequence[str] = ("total",), ax: Axes | None = None, title: str | None = None) -> Axes:
    """Train (solid) and test (dashed) loss per epoch for the chosen parts of a :class:`History`."""
    ax = _ax(ax, figsize=(6, 4))
    epochs = [e["epoch"] for e in history.epochs]
    for i, part in enumerate(parts):
        colour = f"C{i}"
        ax.plot(epochs, history.series("train", part), "-o", color=colour, ms=3, label=f"train {part}")
        ax.plot(epochs, history.series("test", part), "--s", color=colour, ms=3, label=f"test {part}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss per image")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def heatmap(
    matrix, labels: Sequence[str] | None = None, ax: Axes | None = None, title: str | None = None,
    fmt: str = ".2f", cmap: str = "viridis", **kwargs,
) -> Axes:
    """A square matrix (distances, rates) as an annotated heatmap."""
    ax = _ax(ax, figsize=(6.5, 5.5))
    m = np.asarray(matrix, dtype=float)
    labels = labels or [str(i) for i in range(len(m))]
    image = ax.imshow(np.ma.masked_invalid(m), cmap=cmap, **kwargs)  # NaN cells stay blank
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    for (i, j), v in np.ndenumerate(m):
        if np.isfinite(v):  # dark text on light cells, light text on dark ones
            light = image.cmap(image.norm(v))[:3]
            ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize=7,
                    color="black" if sum(light) > 1.5 else "white")
    long = max(len(str(label)) for label in labels) > 3  # class names such as "Ankle boot", not digits
    ax.set_xticks(range(len(labels)), labels, rotation=45 if long else 0, ha="right" if long else "center")
    ax.set_yticks(range(len(labels)), labels)
    if title:
        ax.set_title(title)
    return ax


# A stage is a column of boxes (label, size, colour); None leaves a row empty.
Stage = Sequence["tuple[str, int, str] | None"]

_IO, _HID, _LAT, _HEAD = "0.75", "C0", "C3", "C2"


def architecture_stages(cfg: ModelConfig) -> list[Stage]:
    """The columns of boxes that :func:`architecture` draws for a model config."""
    from ..models import family

    layout = family(cfg.kind).diagram  # the family's declaration: which of the layouts below it draws as
    if layout not in ("code", "classes", "posterior", "posterior+head"):
        raise ValueError(f"no architecture figure for a {cfg.kind!r} model (its family declares diagram={layout!r})")
    d = cfg.latent_dim
    x_in, x_out = [("input x\n1x28x28", 784, _IO)], [("output x\u0302\n1x28x28", 784, _IO)]
    if cfg.arch == "fullconv":
        return [x_in, [(f"code z: conv\n{d // 784}x28x28", d, _LAT)], x_out]
    if cfg.arch == "conv":
        c1, c2 = cfg.channels
        enc = [[(f"conv {c1}x14x14", c1 * 196, _HID)], [(f"conv {c2}x7x7", c2 * 49, _HID)], [(f"fc {cfg.hidden[-1]}", cfg.hidden[-1], _HID)]]
        dec = [[(f"fc {cfg.hidden[-1]}", cfg.hidden[-1], _HID)], [(f"{c2}x7x7", c2 * 49, _HID)], [(f"deconv {c1}x14x14", c1 * 196, _HID)]]
    else:
        enc = [[(f"fc {h}", h, _HID)] for h in cfg.hidden]
        dec = [[(f"fc {h}", h, _HID)] for h in reversed(cfg.hidden)]
    if layout == "code":
        return [x_in, *enc, [(f"code z\n{d}", d, _LAT)], *dec, x_out]
    if layout == "classes":
        return [x_in, *enc, [(f"class scores\n{cfg.n_classes}", cfg.n_classes, _HEAD)]]
    posterior = [(f"\u03bc\n{d}", d, _LAT), (f"log \u03c3\u00b2\n{d}", d, _LAT)]
    z = [(f"z = \u03bc + \u03c3\u00b7\u03b5\n{d}", d, _LAT)]
    if layout == "posterior":
        return [x_in, *enc, posterior, z, *dec, x_out]
    # multi-stage: the decoder path on top, the classifier head below it
    head = [(f"head fc {cfg.head_hidden}", cfg.head_hidden, _HEAD)], [(f"class scores\n{cfg.n_classes}", cfg.n_classes, _HEAD)]
    branch = [[dec[0][0], head[0][0]], [dec[1][0], head[1][0]], *[[s[0], None] for s in dec[2:]], [x_out[0], None]]
    return [x_in, *enc, posterior, z, *branch]


def architecture(stages: Sequence[Stage], ax: Axes | None = None, title: str | None = None) -> Axes:
    """Draw a network as columns of boxes whose heights grow with the log of the layer size.

    Consecutive columns of equal length are joined row to row; otherwise every
    box is joined to every box of the next column.
    """
    ax = _ax(ax, figsize=(1.25 * len(stages) + 1, 4.2))
    width, gap = 0.55, 0.9  # the gap leaves room for the labels under stacked boxes
    placed: list[list] = []
    for i, stage in enumerate(stages):
        heights = [0.4 + 0.9 * np.log10(max(b[1], 1)) if b else 0.0 for b in stage]
        total = sum(heights) + gap * (len(stage) - 1)
        y = total / 2
        col = []
        for box, h in zip(stage, heights):
            if box is None:
                col.append(None)
                y -= gap
                continue
            label, _, colour = box
            ax.add_patch(plt.Rectangle((i - width / 2, y - h), width, h, facecolor=colour, alpha=0.55, edgecolor="k"))
            ax.text(i, y - h - 0.08, label, ha="center", va="top", fontsize=7.5)
            col.append((i, y - h / 2))
            y -= h + gap
        placed.append(col)
    for left, right in zip(placed[:-1], placed[1:]):
        pairs = zip(left, right) if len(left) == len(right) else ((a, b) for a in left for b in right)
        for a, b in pairs:
            if a is not None and b is not None:
                ax.annotate("", xy=(b[0] - width / 2, b[1]), xytext=(a[0] + width / 2, a[1]),
                            arrowprops=dict(arrowstyle="->", color="0.3", lw=1))
    ax.set_xlim(-0.7, len(stages) - 0.3)
    ax.set_ylim(-4.6, 3.4)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def density_panel(
    model, points, ax: Axes | None = None, title: str | None = None, mass: float = 0.9,
    extent: float = 7.0, resolution: int = 300, seed: int = 0,
) -> Axes:
    """A 2-D density (chapter 1) as shading, its ``mass`` highest-density region as a red contour, and ``points``.

    ``model`` is a ``torch.distributions`` object or a fitted ``GaussianMixture`` (see
    :mod:`genvae.book.density`); the density is evaluated on a ``resolution`` x ``resolution`` grid over
    ``[-extent, extent]^2``, and the region's level is estimated from the model's own samples (``seed``).
    """
    from .density import log_density, region_level

    ax = _ax(ax, figsize=(5.5, 5.5))
    xs = np.linspace(-extent, extent, resolution)
    grid = np.stack(np.meshgrid(xs, xs), -1).reshape(-1, 2)  # (R*R, 2)
    logp = log_density(model, grid).reshape(resolution, resolution)  # rows follow x2, columns x1
    ax.contourf(xs, xs, np.exp(logp), levels=30, cmap="Blues")
    ax.contour(xs, xs, logp, levels=[region_level(model, mass, seed=seed)], colors="C3", linewidths=1.5)
    points = np.asarray(points)
    ax.scatter(points[:, 0], points[:, 1], s=3, c="k", alpha=0.6)
    ax.set(xlabel="$x_1$", ylabel="$x_2$", aspect="equal")
    if title:
        ax.set_title(title)
    return ax


# The contour levels of the KL map (nats): fine near the prior's minimum, coarse far from it.
KL_LEVELS = (0, 0.1, 0.25, 0.5, 1, 2, 3, 4, 6, 8, 12)


def kl_landscape(
    mu_axis=None, sigma_axis=None, ax: Axes | None = None, title: str | None = None,
    levels: Sequence[float] = KL_LEVELS,
) -> Axes:
    """The map of KL(N(mu, sigma^2) || N(0, 1)) over the mean and the standard deviation (chapter 5).

    Filled contours at ``levels`` (nats, values above the last shaded as "more"), labelled white contour
    lines, a colour bar, and a star at the minimum, the prior itself (mu = 0, sigma = 1). sigma is on a
    logarithmic axis. The defaults cover mu in [-3, 3] and sigma in [0.05, 4]; the map comes from
    :func:`genvae.book.divergence.prior_kl_map`. Paths can be drawn on top of the returned ``ax``.
    """
    from matplotlib.colors import BoundaryNorm

    from .divergence import prior_kl_map

    mu_axis = np.linspace(-3, 3, 241) if mu_axis is None else np.asarray(mu_axis, dtype=np.float64)
    sigma_axis = (np.logspace(np.log10(0.05), np.log10(4), 240) if sigma_axis is None
                  else np.asarray(sigma_axis, dtype=np.float64))
    levels = list(levels)
    if len(levels) < 2 or any(b <= a for a, b in zip(levels, levels[1:])):
        raise ValueError(f"levels must be at least two increasing values, got {levels}")
    ax = _ax(ax, figsize=(7, 5))
    kl = prior_kl_map(mu_axis, sigma_axis)  # (S, M)
    filled = ax.contourf(mu_axis, sigma_axis, kl, levels=levels, cmap="viridis",
                         norm=BoundaryNorm(levels, 256), extend="max")
    lines = ax.contour(mu_axis, sigma_axis, kl, levels=levels[1:], colors="w", linewidths=0.6)
    ax.clabel(lines, fontsize=7, fmt="%g")
    ax.plot(0, 1, "*", color="C3", ms=16, mec="k", zorder=10, label="minimum: $\\mu=0$, $\\sigma=1$ (the prior)")
    ax.set(yscale="log", xlabel="mean $\\mu$", ylabel="standard deviation $\\sigma$")
    if title:
        ax.set_title(title)
    ax.figure.colorbar(filled, ax=ax, label="KL (nats)", ticks=levels, format="%g")
    return ax


def player_curves(history, ax: Axes | None = None, window: int = 25, title: str | None = None) -> Axes:
    """A two-player model's losses at every step (faint) and their running mean over ``window`` steps.

    The dotted line is 2 log 2, the discriminator's loss when it says 1/2 to every image: the
    value at the game's equilibrium, where it can no longer tell real from generated.
    """
    import math

    ax = _ax(ax, figsize=(7, 4))
    for key, label, colour in (("d", "discriminator", "C0"), ("g", "generator", "C1")):
        y = np.asarray(history.curve(key), dtype=float)
        ax.plot(y, color=colour, alpha=0.2, lw=0.6)
        if len(y) >= window:
            smooth = np.convolve(y, np.ones(window) / window, mode="valid")
            ax.plot(np.arange(window - 1, len(y)), smooth, color=colour, lw=1.8, label=f"{label} (mean of {window} steps)")
        else:
            ax.plot(y, color=colour, lw=1.8, label=label)
    ax.axhline(2 * math.log(2), color="k", ls=":", lw=1, label="2 log 2")
    both = np.concatenate([history.curve("d"), history.curve("g")]).astype(float)
    both = both[np.isfinite(both)]
    if len(both):  # a few wild steps must not flatten the rest: show the 1st to 99th percentile
        lo, hi = np.percentile(both, [1, 99])
        pad = 0.1 * (hi - lo) + 0.1
        ax.set_ylim(min(lo, 0.0) - pad, max(hi, 2 * math.log(2)) + pad)
    steps = np.cumsum([len(e.get("curve", {}).get("d", [])) for e in history.epochs])[:-1]
    for s in steps:
        ax.axvline(s, color="0.7", lw=0.8)
    ax.set_xlabel("training step (grey lines: epoch boundaries)")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def snapshot_grid(history, n: int = 8, ax: Axes | None = None, title: str | None = None) -> Axes:
    """One row per snapshot of a two-player model's training (:meth:`History.snapshots`): the first
    ``n`` images generated from the same fixed noise, labelled with the training step."""
    steps, images = history.snapshots()  # (T, S, 1, 28, 28)
    rows = images[:, :n]
    return _labelled_rows(rows.reshape(-1, 1, 28, 28), n, [f"step {s:,}" for s in steps],
                          _ax(ax, figsize=(n * 0.7 + 1, len(steps) * 0.7)), title, fontsize=8)
