"""A latent explorer: move a point over the map of codes, see the decoded image and what the judge reads in it.

Three layers, so that the live notebook and the static book show the same thing:

* :func:`frames`, a pure function: points of the plane ``(N, 2)`` -> what each one shows (its code,
  the decoded image, the classifier's class probabilities);
* :class:`ExplorerFigure`, one matplotlib figure that draws a :class:`Frame`: the map of test codes
  with the point on it, the decoded digit, and the verdict as a bar chart;
* two front ends: :func:`widget` (ipywidgets sliders that redraw the figure, for a live Jupyter)
  and :func:`animation_html` (the figure along a path, as self-contained HTML for the static book:
  no widget state, nothing loaded from a CDN). :func:`show` picks the one that fits where it runs
  (:func:`genvae.frontend.widgets`); :func:`widget` gives the sliders in any notebook.

    >>> path = centroid_loop(z_plane, y_test, frames_per_leg=5)  # doctest: +SKIP
    >>> show(vae, judge, z_plane, y_test, path=path)  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image
from torch import nn

from .. import frontend
from ..analysis.latent import CodePlane, centroids, decode
from ..analysis.judge import Judge

__all__ = ["Frame", "frames", "Loop", "centroid_loop", "ExplorerFigure", "LatentExplorer", "widget",
           "animation_html", "show", "FIGSIZE", "DPI"]

# The figure fits the book's content column: 7.5 x 2.5 inches at 96 dpi is 720 x 240 pixels.
FIGSIZE = (7.5, 2.5)
DPI = 96


@dataclass(frozen=True)
class Frame:
    """What one point of the latent plane shows."""

    point: torch.Tensor  # (2,) the point in the plane (the code itself for a 2-D model)
    z: torch.Tensor  # (D,) the code that is decoded
    image: torch.Tensor  # (1, 28, 28) the decoded image, in [0, 1]
    probs: torch.Tensor  # (K,) the classifier's class probabilities for that image

    @property
    def pred(self) -> int:
        """The class the classifier reads."""
        return int(self.probs.argmax())

    @property
    def confidence(self) -> float:
        """Its probability, the top one."""
        return float(self.probs.max())


@torch.no_grad()
def frames(model: nn.Module, classifier: nn.Module, points: torch.Tensor,
           plane: CodePlane | None = None) -> list[Frame]:
    """Decode the points ``(N, 2)`` of the plane and judge the images, in one batch each.

    Without ``plane`` the points are the codes (a 2-D model); with one (:class:`~genvae.analysis.latent.CodePlane`)
    they are lifted to the model's D-dimensional codes first.
    """
    points = torch.as_tensor(points, dtype=torch.float32).reshape(-1, 2)  # (N, 2)
    z = points if plane is None else plane.lift(points)  # (N, D)
    images = decode(model, z)  # (N, 1, 28, 28)
    probs = Judge.of(classifier).predict_proba(images)  # (N, K)
    return [Frame(p, zi, im, pr) for p, zi, im, pr in zip(points, z, images, probs)]


@dataclass(frozen=True)
class Loop:
    """A closed path through the class centres of the codes, for the animation."""

    points: torch.Tensor  # (F, 2) evenly spaced on each leg; the last leg ends where the first starts
    order: list[int]  # the classes in the order the path visits their centres
    centre_frames: list[int]  # the frame at each centre, in visiting order
    mid_frames: list[int]  # the frame halfway along each leg

    def __len__(self) -> int:
        return len(self.points)


def centroid_loop(z: torch.Tensor, y: torch.Tensor, frames_per_leg: int = 5) -> Loop:
    """A loop through the class centres (means) of the plane points ``z`` ``(N, 2)`` with labels ``y``.

    The centres are visited in the order of their angle around the mean of the centres, so that the
    path goes round the map instead of back and forth across it; each leg is a straight line. A leg
    has ``frames_per_leg`` points counting both ends, and the shared ends appear once, so the loop has
    ``K * (frames_per_leg - 1)`` frames and plays seamlessly in a loop. ``frames_per_leg`` must be
    odd, so that every leg has a middle frame.
    """
    if frames_per_leg < 3 or frames_per_leg % 2 == 0:
        raise ValueError(f"frames_per_leg must be odd and at least 3 (a leg needs a middle frame), "
                         f"got {frames_per_leg}")
    c = centroids(torch.as_tensor(z).float(), torch.as_tensor(y))  # (K, 2)
    rel = c - c.mean(0)
    order = torch.argsort(torch.atan2(rel[:, 1], rel[:, 0])).tolist()
    start, end = c[order], c[order[1:] + order[:1]]  # (K, 2) each: leg k runs from start[k] to end[k]
    step = frames_per_leg - 1
    t = torch.arange(step, dtype=c.dtype) / step  # (step,) each leg without its end, the next leg's start
    points = start[:, None] + t[None, :, None] * (end - start)[:, None]  # (K, step, 2)
    # (a collapsed model's centres may coincide: the legs then have length 0, and the loop stands still)
    return Loop(points=points.reshape(-1, 2), order=order, centre_frames=[k * step for k in range(len(order))],
                mid_frames=[k * step + step // 2 for k in range(len(order))])


class ExplorerFigure:
    """One figure for a :class:`Frame`: the map with the point, the decoded digit, the verdict.

    The map is drawn once (a scatter of at most ``max_points`` plane points ``z`` coloured by class
    ``y``, and the ``path`` if given). :meth:`render` then draws only what a frame changes (the marker,
    the image, the bars and two titles) over a saved copy of the rest (blitting), which makes a frame
    about ten times cheaper than a full redraw: the widget keeps up with a slider, and the animation
    builds in seconds. The figure is not a pyplot figure, so a notebook never shows it by itself.
    """

    def __init__(self, z: torch.Tensor, y: torch.Tensor, classes: Sequence[str] | None = None, *,
                 path: torch.Tensor | None = None, extent: tuple[float, float, float, float] | None = None,
                 axis_labels: tuple[str, str] = ("$z_1$", "$z_2$"), max_points: int = 2000,
                 figsize: tuple[float, float] = FIGSIZE, dpi: int = DPI):
        from .plots import palette

        z, y = np.asarray(torch.as_tensor(z).float()), np.asarray(torch.as_tensor(y))
        k = int(y.max()) + 1
        self.classes = list(classes) if classes is not None else [str(i) for i in range(k)]
        self.colours = palette(k)
        keep = np.random.default_rng(0).permutation(len(z))[:max_points]  # a fixed random subset
        self.fig = Figure(figsize=figsize, dpi=dpi)
        self.canvas = FigureCanvasAgg(self.fig)
        grid = self.fig.add_gridspec(1, 3, width_ratios=(1.0, 0.8, 1.25), left=0.07, right=0.99, bottom=0.2,
                                     top=0.86, wspace=0.35)
        self.ax_map, self.ax_image, self.ax_bars = (self.fig.add_subplot(grid[0, i]) for i in range(3))

        ax = self.ax_map
        # Opaque dots: the frames are stored with a small palette, which keeps the class colours exact.
        ax.scatter(z[keep, 0], z[keep, 1], s=1.5, c=[self.colours[c] for c in y[keep]], linewidths=0, rasterized=True)
        if path is not None:
            p = np.asarray(torch.as_tensor(path).float())
            ax.plot(np.r_[p[:, 0], p[:1, 0]], np.r_[p[:, 1], p[:1, 1]], color="0.25", lw=0.8)
        if extent is not None:
            ax.set_xlim(extent[0], extent[1])
            ax.set_ylim(extent[2], extent[3])
        self.marker = ax.scatter([0], [0], s=60, marker="o", facecolors="none", edgecolors="black", linewidths=1.8,
                                 zorder=3)
        ax.set_xlabel(axis_labels[0], fontsize=8, labelpad=1)
        ax.set_ylabel(axis_labels[1], fontsize=8, labelpad=1)
        ax.tick_params(labelsize=7)
        ax.set_title("the map: test codes", fontsize=9)

        self.image = self.ax_image.imshow(np.zeros((28, 28)), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        self.ax_image.set_axis_off()
        self.image_title = self.ax_image.set_title(" ", fontsize=9)

        self.bars = self.ax_bars.bar(range(k), np.zeros(k), color=self.colours)  # the map's colours: its legend
        self.ax_bars.set_ylim(0, 1)
        self.ax_bars.set_xticks(range(k), [c[:5] for c in self.classes], fontsize=7,
                                rotation=0 if max(len(c) for c in self.classes) <= 1 else 60)
        self.ax_bars.tick_params(axis="y", labelsize=7)
        self.ax_bars.set_ylabel("probability", fontsize=8, labelpad=1)
        self.bars_title = self.ax_bars.set_title(" ", fontsize=9)
        for side in ("top", "right"):
            self.ax_bars.spines[side].set_visible(False)

        self.changing = [self.marker, self.image, self.image_title, self.bars_title, *self.bars]
        for artist in self.changing:
            artist.set_animated(True)  # left out of a full draw: render() draws them over the background
        self._background = None
        self._palette: np.ndarray | None = None  # (P, 3), from the first frame

    def draw(self, frame: Frame) -> list:
        """Set the changing artists to show ``frame``; returns them."""
        point = frame.point.detach().cpu().numpy()
        self.marker.set_offsets(point[None])
        self.image.set_data(frame.image.detach().cpu().float().squeeze(0).numpy())
        self.image_title.set_text(f"decoded at ({point[0]:.2f}, {point[1]:.2f})")
        pred = frame.pred
        for bar, p in zip(self.bars, frame.probs.tolist()):
            bar.set_height(p)
        self.bars_title.set_text(f"judge: {self.classes[pred]} ({frame.confidence:.0%})")
        return self.changing

    def render(self, frame: Frame) -> np.ndarray:
        """The figure showing ``frame``, as RGB pixels ``(H, W, 3)`` uint8."""
        if self._background is None:
            self.canvas.draw()  # everything but the changing artists, once
            self._background = self.canvas.copy_from_bbox(self.fig.bbox)
        self.canvas.restore_region(self._background)
        for artist in self.draw(frame):
            self.fig.draw_artist(artist)
        return np.asarray(self.canvas.buffer_rgba())[..., :3].copy()

    def png(self, frame: Frame, colors: int | None = None) -> bytes:
        """:meth:`render` as PNG bytes. Full colour and quick by default (the widget); with ``colors``, a
        palette of at most that many colours, the same for every frame (taken from the first one drawn):
        less than half the size, and no flicker between frames (the animation)."""
        rgb = self.render(frame)
        buf = io.BytesIO()
        if colors is None:
            Image.fromarray(rgb).save(buf, format="PNG", compress_level=1)
            return buf.getvalue()
        if self._palette is None:
            self._palette = _palette(rgb, colors)
        _indexed(rgb, self._palette).save(buf, format="PNG", optimize=True)
        return buf.getvalue()


def _palette(rgb: np.ndarray, colors: int) -> np.ndarray:
    """A palette ``(P, 3)`` of at most ``colors`` colours for the pixels ``rgb`` ``(H, W, 3)``, by median cut, with
    the entry nearest to white made exactly white (median cut averages the background with the anti-aliased
    pixels next to it, and a page would show that grey)."""
    pal = Image.fromarray(rgb).quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    entries = np.array(pal.getpalette(), dtype=np.int64).reshape(-1, 3)[:colors]
    entries[np.argmin(((255 - entries) ** 2).sum(1))] = 255
    return entries


def _indexed(rgb: np.ndarray, palette: np.ndarray) -> Image.Image:
    """The pixels ``rgb`` ``(H, W, 3)`` as a palette image, each mapped to its nearest entry of ``palette``
    ``(P, 3)`` (exactly: Pillow's own mapping goes through a coarse colour cache and turns white grey)."""
    flat = rgb.reshape(-1, 3).astype(np.int64)
    colours, inverse = np.unique(flat[:, 0] << 16 | flat[:, 1] << 8 | flat[:, 2], return_inverse=True)  # (U,)
    unique = np.stack([colours >> 16, colours >> 8 & 255, colours & 255], 1)  # (U, 3)
    nearest = ((unique[:, None, :] - palette[None]) ** 2).sum(-1).argmin(1)  # (U,)
    out = Image.fromarray(nearest[inverse.reshape(-1)].reshape(rgb.shape[:2]).astype(np.uint8), mode="P")
    out.putpalette(palette.astype(np.uint8).flatten().tolist())
    return out


class LatentExplorer:
    """The live explorer: two sliders, and the figure as an image that follows them.

    ``sliders`` are ipywidgets ``FloatSlider``; moving either calls :meth:`update`, which computes the
    :class:`Frame` at the sliders' point (:func:`frames`), draws it and puts the PNG into ``image``.
    ``frame`` is the frame shown. Displaying the object displays the widgets.
    """

    def __init__(self, model: nn.Module, classifier: nn.Module, figure: ExplorerFigure,
                 plane: CodePlane | None, extent: tuple[float, float, float, float], start=(0.0, 0.0),
                 step: float = 0.05):
        import ipywidgets as w

        self.model, self.classifier, self.figure, self.plane = model, classifier, figure, plane
        self.frame: Frame | None = None
        labels = ("z₁", "z₂") if plane is None or not plane.projected else ("PC 1", "PC 2")
        layout = w.Layout(width="340px")
        self.sliders = [
            w.FloatSlider(value=float(start[i]), min=extent[2 * i], max=extent[2 * i + 1], step=step,
                          description=labels[i], continuous_update=True, readout_format=".2f", layout=layout)
            for i in range(2)
        ]
        self.image = w.Image(format="png", layout=w.Layout(max_width="100%"))
        for s in self.sliders:
            s.observe(self.update, names="value")
        self.view = w.VBox([w.HBox(self.sliders), self.image])
        self.update()

    @property
    def point(self) -> torch.Tensor:
        return torch.tensor([s.value for s in self.sliders])  # (2,)

    def update(self, change=None) -> Frame:
        """Recompute and redraw at the sliders' point (the sliders' callback)."""
        self.frame = frames(self.model, self.classifier, self.point[None], self.plane)[0]
        self.image.value = self.figure.png(self.frame)
        return self.frame

    def _ipython_display_(self):
        from IPython.display import display

        display(self.view)


def _map_extent(z: torch.Tensor, margin: float = 0.05) -> tuple[float, float, float, float]:
    """A box around the points ``(N, 2)``, at least the prior's [-3, 3]^2."""
    lo = torch.minimum(torch.as_tensor(z).float().min(0).values, torch.tensor([-3.0, -3.0]))
    hi = torch.maximum(torch.as_tensor(z).float().max(0).values, torch.tensor([3.0, 3.0]))
    pad = margin * (hi - lo)
    lo, hi = lo - pad, hi + pad
    return (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))


def widget(model: nn.Module, classifier: nn.Module, z: torch.Tensor, y: torch.Tensor,
           classes: Sequence[str] | None = None, *, plane: CodePlane | None = None,
           extent: tuple[float, float, float, float] | None = None, start=(0.0, 0.0)) -> LatentExplorer:
    """Sliders over the plane of the points ``z`` ``(N, 2)`` (the test codes, or their projection by
    ``plane``), labelled ``y``. Needs ipywidgets; call it in a notebook to get the sliders anywhere."""
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        raise ImportError("the latent explorer's sliders need ipywidgets: pip install ipywidgets") from None
    extent = extent or _map_extent(z)
    figure = ExplorerFigure(z, y, classes, extent=extent, axis_labels=_axis_labels(plane))
    return LatentExplorer(model, classifier, figure, plane, extent, start)


def _axis_labels(plane: CodePlane | None) -> tuple[str, str]:
    return plane.axis_labels if plane is not None else ("$z_1$", "$z_2$")


# The static book's player: the frames as PNG data URLs, a slider, a play button and a counter, in plain
# HTML and a few lines of JavaScript. Nothing is loaded from the network, nothing is global (each player
# finds its own elements from its script tag), and without JavaScript the first frame still shows.
_PLAYER = """<div class="genvae-player" style="max-width: {width}px; margin: 0.5em 0;">
<img src="{first}" width="{width}" height="{height}" alt="{alt}" style="display: block; width: 100%; height: auto;">
<div style="display: flex; align-items: center; gap: 0.6em; margin-top: 0.3em;">
<button type="button" aria-label="play" style="min-width: 5.5em;">&#9654; play</button>
<input type="range" min="0" max="{last}" step="1" value="0" aria-label="frame" style="flex: 1; min-width: 0;">
<span style="font-variant-numeric: tabular-nums; white-space: nowrap;">1 / {count}</span>
</div>
<script type="application/json">{frames}</script>
<script>
(function () {{
  var root = document.currentScript.parentNode;
  var frames = JSON.parse(root.querySelector('script[type="application/json"]').textContent);
  var img = root.querySelector("img"), button = root.querySelector("button");
  var slider = root.querySelector("input"), label = root.querySelector("span");
  var timer = null, current = 0;
  function show(i) {{
    current = (i + frames.length) % frames.length;
    img.src = frames[current];
    slider.value = current;
    label.textContent = (current + 1) + " / " + frames.length;
  }}
  function stop() {{
    if (timer !== null) {{ clearInterval(timer); timer = null; }}
    button.innerHTML = "&#9654; play";
    button.setAttribute("aria-label", "play");
  }}
  button.addEventListener("click", function () {{
    if (timer !== null) {{ stop(); return; }}
    timer = setInterval(function () {{ show(current + 1); }}, {interval});
    button.innerHTML = "&#10074;&#10074; pause";
    button.setAttribute("aria-label", "pause");
  }});
  slider.addEventListener("input", function () {{ stop(); show(parseInt(slider.value, 10)); }});
}})();
</script>
</div>"""


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def animation_html(path_frames: Sequence[Frame], z: torch.Tensor, y: torch.Tensor,
                   classes: Sequence[str] | None = None, *, plane: CodePlane | None = None,
                   extent: tuple[float, float, float, float] | None = None, interval_ms: int = 200,
                   dpi: int = DPI, colors: int = 128) -> str:
    """The explorer figure along a path, one frame per :class:`Frame` of ``path_frames``, as one self-contained
    HTML snippet: the frames are embedded PNGs (a palette of ``colors``), played by a slider and a play button
    (``interval_ms`` per frame). It holds no widget state and loads nothing from the network, so it works in
    the static book, offline; its width is the figure's (:data:`FIGSIZE` at ``dpi``), and it shrinks with a
    narrower column."""
    if not path_frames:
        raise ValueError("the animation needs at least one frame")
    path = torch.stack([f.point for f in path_frames])  # (F, 2)
    extent = extent or _map_extent(torch.cat([torch.as_tensor(z).float(), path]))
    figure = ExplorerFigure(z, y, classes, path=path, extent=extent, axis_labels=_axis_labels(plane), dpi=dpi)
    urls = [_data_url(figure.png(f, colors)) for f in path_frames]
    height, width = figure.render(path_frames[0]).shape[:2]
    return _PLAYER.format(width=width, height=height, first=urls[0], last=len(urls) - 1, count=len(urls),
                          frames=json.dumps(urls), interval=int(interval_ms),
                          alt="the latent explorer along a path: the point on the map of codes, "
                              "the image it decodes to, and the classifier's class probabilities")


def show(model: nn.Module, classifier: nn.Module, z: torch.Tensor, y: torch.Tensor,
         classes: Sequence[str] | None = None, *, path: Loop | torch.Tensor, plane: CodePlane | None = None,
         path_frames: Sequence[Frame] | None = None, interactive: bool | None = None):
    """The explorer that fits the front end: sliders in a live notebook (:func:`frontend.widgets`), else the
    animation along ``path`` (e.g. a :func:`centroid_loop`). Returns what it displayed.

    ``path_frames`` are the path's frames if already computed (:func:`frames`); ``interactive`` forces
    one or the other.
    """
    from IPython.display import HTML, display

    interactive = frontend.widgets() if interactive is None else interactive
    points = path.points if isinstance(path, Loop) else torch.as_tensor(path)
    if interactive:
        shown = widget(model, classifier, z, y, classes, plane=plane, extent=_map_extent(torch.cat([z, points])),
                       start=tuple(points[0].tolist()))
        display(shown)
        return shown
    path_frames = path_frames if path_frames is not None else frames(model, classifier, points, plane)
    shown = HTML(animation_html(path_frames, z, y, classes, plane=plane))
    display(shown)
    return shown
