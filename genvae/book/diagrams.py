"""Intuition figures for the VAE chapter, drawn with matplotlib alone.

* :func:`graphical_model`: the VAE as a directed graphical model (z -> x with θ, the encoder's dashed
  inference arrow with φ, a plate over the N images);
* :func:`reparameterisation`: where the randomness enters a VAE's forward pass, and which path the
  gradient takes, without and with the trick z = μ + σ·ε;
* :func:`elbo_gap`: the exact posterior of a 2-D VAE beside the encoder's Gaussian, and
  log p(x) = ELBO + KL(q(z|x) || p(z|x)) (the numbers come from :mod:`genvae.book.posterior`).

The drawn parts carry names, so tests (and readers of the code) can check what a figure shows:
every node patch has the gid ``"node:<name>:<kind>"``, every forward arrow ``"arrow:<a>-><b>"`` and every
gradient arrow ``"grad:<a>-><b>"``; :func:`parts` collects them.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Polygon, Rectangle

from .posterior import GridPosterior

__all__ = ["graphical_model", "reparameterisation", "elbo_gap", "parts", "NODE_KINDS"]

# How each kind of node is drawn: random variables are circles (shaded when observed), deterministic
# values are diamonds, parameters are small filled dots, networks and the loss rounded boxes.
NODE_KINDS = ("observed", "latent", "random", "deterministic", "parameter", "network", "loss")
_FACE = {"observed": "0.78", "latent": "white", "random": "#fde8c8", "deterministic": "#d6e6f5",
         "parameter": "black", "network": "#eef3e2", "loss": "#e8e8e8"}
_GRAD = "#c0392b"


def _ax(ax: Axes | None, figsize) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    ax.set_aspect("equal")
    ax.set_axis_off()
    return ax


def _node(ax: Axes, xy: tuple[float, float], label: str, name: str, kind: str, r: float = 0.42, fontsize: int = 13):
    """One node: a circle (random), a diamond (deterministic), a dot (parameter) or a box (loss)."""
    x, y = xy
    if kind in ("observed", "latent", "random"):
        patch = Circle(xy, r, facecolor=_FACE[kind], edgecolor="black", lw=1.4)
    elif kind == "deterministic":
        patch = Polygon([(x - r * 1.25, y), (x, y + r * 1.1), (x + r * 1.25, y), (x, y - r * 1.1)],
                        closed=True, facecolor=_FACE[kind], edgecolor="black", lw=1.4)
    elif kind == "parameter":
        patch = Circle(xy, 0.08, facecolor="black", edgecolor="black")
    elif kind in ("loss", "network"):
        w = r if kind == "loss" else 1.5 * r
        patch = FancyBboxPatch((x - w, y - r * 0.8), 2 * w, 1.6 * r, boxstyle="round,pad=0.05",
                               facecolor=_FACE[kind], edgecolor="black", lw=1.4)
    else:
        raise ValueError(f"kind must be one of {NODE_KINDS}, got {kind!r}")
    patch.set_gid(f"node:{name}:{kind}")
    ax.add_patch(patch)
    if kind == "parameter":
        ax.text(x, y + 0.22, label, ha="center", va="bottom", fontsize=fontsize)
    else:
        ax.text(x, y, label, ha="center", va="center", fontsize=fontsize)
    return patch


def _arrow(ax: Axes, a: tuple[float, float], b: tuple[float, float], gid: str, dashed: bool = False,
           color: str = "black", rad: float = 0.0, shrink: float = 22, lw: float = 1.5) -> FancyArrowPatch:
    arrow = FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=14, color=color, lw=lw,
                            linestyle="--" if dashed else "-", connectionstyle=f"arc3,rad={rad}",
                            shrinkA=shrink, shrinkB=shrink)
    arrow.set_gid(gid)
    ax.add_patch(arrow)
    return arrow


def parts(ax: Axes) -> dict[str, dict]:
    """What a diagram drew: ``{"nodes": {name: kind}, "arrows": {(a, b): patch}, "grads": {(a, b): patch},
    "texts": [str, ...]}``."""
    out: dict[str, dict] = {"nodes": {}, "arrows": {}, "grads": {}}
    for p in ax.patches:
        gid = p.get_gid() or ""
        if gid.startswith("node:"):
            _, name, kind = gid.split(":")
            out["nodes"][name] = kind
        elif gid.startswith(("arrow:", "grad:")):
            head, edge = gid.split(":", 1)
            out["arrows" if head == "arrow" else "grads"][tuple(edge.split("->"))] = p
    out["texts"] = [t.get_text() for t in ax.texts]
    return out


def graphical_model(ax: Axes | None = None) -> Axes:
    """The VAE as a graphical model: p(z) p_θ(x|z) generates each image, q_φ(z|x) (dashed) infers its code.

    Solid arrows are the generative model, the dashed ones the encoder's approximate inference. The plate
    says that the N images share θ and φ but each has its own code.
    """
    ax = _ax(ax, figsize=(5.2, 4.4))
    z, x, theta, phi = (0.0, 1.5), (0.0, -0.2), (1.6, -0.2), (-1.6, 1.5)
    plate = Rectangle((-0.85, -1.05), 1.7, 3.4, fill=False, lw=1.2, edgecolor="0.3")
    plate.set_gid("plate:N")
    ax.add_patch(plate)
    ax.text(0.72, -0.95, "$N$", ha="right", va="bottom", fontsize=13)
    _node(ax, z, "$z$", "z", "latent")
    _node(ax, x, "$x$", "x", "observed")
    _node(ax, theta, r"$\theta$", "theta", "parameter")
    _node(ax, phi, r"$\phi$", "phi", "parameter")
    _arrow(ax, z, x, "arrow:z->x", rad=-0.35)
    _arrow(ax, theta, x, "arrow:theta->x", shrink=10)
    _arrow(ax, x, z, "arrow:x->z", dashed=True, rad=-0.35)
    _arrow(ax, phi, z, "arrow:phi->z", dashed=True, shrink=10)
    ax.text(0.5, 0.65, r"$p_\theta(x \mid z)$", ha="left", va="center", fontsize=11)
    ax.text(-0.5, 0.65, r"$q_\phi(z \mid x)$", ha="right", va="center", fontsize=11)
    ax.text(0.0, 2.05, r"$p(z) = \mathcal{N}(0, I)$", ha="center", va="bottom", fontsize=10)
    ax.set_xlim(-2.6, 2.4)
    ax.set_ylim(-1.3, 2.6)
    ax.set_title("solid: the generative model; dashed: the encoder", fontsize=10)
    return ax


def _grad(ax: Axes, a: tuple[float, float], b: tuple[float, float], gid: str, offset: float = 0.22,
          shrink: float = 20) -> FancyArrowPatch:
    """A gradient arrow from ``a`` back to ``b``, drawn parallel to the forward arrow, ``offset`` to its side."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = (b - a) / np.linalg.norm(b - a)
    shift = offset * np.array([-d[1], d[0]])
    return _arrow(ax, tuple(a + shift), tuple(b + shift), gid, color=_GRAD, lw=2, shrink=shrink)


def reparameterisation(axes: Sequence[Axes] | None = None) -> Sequence[Axes]:
    """The forward pass of a VAE without and with the reparameterisation trick, and its gradient.

    Left: z is *drawn* from N(μ, σ²), a random node; the loss's gradient reaches z but cannot pass
    through the sampling to μ and σ (marked ✗). Right: the randomness enters through ε ~ N(0, I), an
    input that depends on nothing; z = μ + σ·ε is a deterministic function of μ and σ, so the gradient
    (red) flows through z into μ, σ and the encoder's weights φ, and never into ε.
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(13, 4.2))
    for ax in axes:
        _ax(ax, None)
    pos = {"x": (0.0, 0.0), "encoder": (1.55, 0.0), "mu": (3.2, 0.95), "sigma": (3.2, -0.95), "z": (4.9, 0.0),
           "loss": (6.5, 0.0), "eps": (4.9, -2.0)}

    for ax, trick in zip(axes, (False, True)):
        _node(ax, pos["x"], "$x$", "x", "observed")
        _node(ax, pos["encoder"], "encoder\n" + r"$\phi$", "encoder", "network", fontsize=10)
        _node(ax, pos["mu"], r"$\mu$", "mu", "deterministic")
        _node(ax, pos["sigma"], r"$\sigma$", "sigma", "deterministic")
        _node(ax, pos["loss"], r"$\mathcal{L}$", "loss", "loss")
        if trick:
            _node(ax, pos["z"], "$z$", "z", "deterministic")
            _node(ax, pos["eps"], r"$\varepsilon$", "eps", "random")
            ax.text(pos["eps"][0] + 0.55, pos["eps"][1], r"$\varepsilon \sim \mathcal{N}(0, I)$" + "\nthe only randomness",
                    ha="left", va="center", fontsize=10)
            ax.text(pos["z"][0], pos["z"][1] + 0.62, r"$z = \mu + \sigma \odot \varepsilon$", ha="center",
                    va="bottom", fontsize=11)
            _arrow(ax, pos["eps"], pos["z"], "arrow:eps->z")
        else:
            _node(ax, pos["z"], "$z$", "z", "random")
            ax.text(pos["z"][0], pos["z"][1] + 0.62, r"$z \sim \mathcal{N}(\mu, \sigma^2)$", ha="center",
                    va="bottom", fontsize=11)
        for a, b in (("x", "encoder"), ("encoder", "mu"), ("encoder", "sigma"), ("mu", "z"), ("sigma", "z"),
                     ("z", "loss")):
            _arrow(ax, pos[a], pos[b], f"arrow:{a}->{b}")
        # the gradient of the loss, drawn backwards beside the forward arrows
        _grad(ax, pos["loss"], pos["z"], "grad:loss->z")
        if trick:
            for a, b in (("z", "mu"), ("z", "sigma"), ("mu", "encoder"), ("sigma", "encoder")):
                _grad(ax, pos[a], pos[b], f"grad:{a}->{b}")
            ax.set_title("with the trick: the gradient flows through $\\mu$ and $\\sigma$", fontsize=11)
        else:
            ax.text(4.05, 0.0, "\u2717", color=_GRAD, fontsize=24, ha="center", va="center", fontweight="bold")
            ax.text(4.9, -0.75, "no gradient\nthrough a random draw", color=_GRAD, fontsize=9, ha="center", va="top")
            ax.set_title("without: the gradient stops at the random draw", fontsize=11)
        ax.set_xlim(-0.6, 7.2)
        ax.set_ylim(-2.6, 1.9)
    handles = [Circle((0, 0), 0.1, facecolor=_FACE["random"], edgecolor="black", label="random"),
               Polygon([(0, 0)], facecolor=_FACE["deterministic"], edgecolor="black", label="deterministic"),
               FancyArrowPatch((0, 0), (1, 0), color=_GRAD, label="gradient")]
    axes[1].legend(handles=handles, loc="lower left", fontsize=9, framealpha=0.9)
    return axes


def _limits(r: GridPosterior, drop: float = 12.0, margin: float = 0.15) -> tuple[float, float, float, float]:
    """A view box around where the posterior or q has log-density within ``drop`` of its peak."""
    lp, lq = r.log_posterior, r.log_q
    keep = (lp >= lp.max() - drop) | (lq >= lq.max() - drop)
    rows, cols = keep.any(1).nonzero().squeeze(1), keep.any(0).nonzero().squeeze(1)
    a0, a1 = float(r.z1[cols.min()]), float(r.z1[cols.max()])
    b0, b1 = float(r.z2[rows.min()]), float(r.z2[rows.max()])
    w = max(a1 - a0, b1 - b0) * (0.5 + margin)
    cx, cy = (a0 + a1) / 2, (b0 + b1) / 2
    return cx - w, cx + w, cy - w, cy + w


def elbo_gap(results: Sequence[GridPosterior], images: torch.Tensor, iwae: Sequence[float] | None = None) -> Figure:
    """One row per image: the image, its exact posterior p(z|x), the encoder's q(z|x) (with the posterior's
    contours dashed on top), and the split log p(x) = ELBO + gap, the gap being KL(q || p(z|x)).

    Contours are drawn at 1, 2 and 3 "standard deviations" (density e^{-c²/2} of the peak), the same
    levels for both, so equal shapes mean equal distributions. ``iwae`` (optional, one per image) adds
    the importance-weighted bound, which lies between the two.
    """
    n = len(results)
    fig, axes = plt.subplots(n, 4, figsize=(14, 3.1 * n), gridspec_kw=dict(width_ratios=[0.7, 1, 1, 1.25]),
                             squeeze=False)
    levels = [float(np.exp(-0.5 * c**2)) for c in (3, 2, 1)] + [1.01]
    for i, r in enumerate(results):
        z1, z2 = r.z1.numpy(), r.z2.numpy()
        post = (r.log_posterior - r.log_posterior.max()).exp().numpy()
        q = (r.log_q - r.log_q.max()).exp().numpy()
        ax_img, ax_p, ax_q, ax_b = axes[i]
        ax_img.imshow(images[i].squeeze(0).numpy(), cmap="gray_r", vmin=0, vmax=1)
        ax_img.set_axis_off()
        ax_img.set_title(f"test image {i + 1}", fontsize=10)
        lim = _limits(r)
        pm = r.posterior_mean.numpy()
        ax_p.contourf(z1, z2, post, levels=levels, cmap="Blues")
        ax_p.plot(*pm, "x", color="navy", ms=8)
        ax_p.set_title("exact posterior $p(z \\mid x)$" if i == 0 else None, fontsize=10)
        ax_q.contourf(z1, z2, q, levels=levels, cmap="Oranges")
        ax_q.contour(z1, z2, post, levels=levels[:-1], colors="navy", linestyles="--", linewidths=0.9)
        ax_q.plot(*r.mu.numpy(), "+", color="darkred", ms=10)
        ax_q.set_title("encoder $q(z \\mid x)$, posterior dashed" if i == 0 else None, fontsize=10)
        for ax in (ax_p, ax_q):
            ax.set(xlim=lim[:2], ylim=lim[2:], xlabel="$z_1$", ylabel="$z_2$")
            ax.set_aspect("equal")
        # log p(x) = ELBO + gap as a floating bar from the ELBO up to log p(x)
        ax_b.bar([0], [r.gap], bottom=[r.elbo], width=0.4, color="#e59866", edgecolor="black",
                 label="gap = KL(q ‖ p(z|x))")
        ax_b.axhline(r.elbo, color="darkred", lw=1.5, label=f"ELBO {r.elbo:.1f}")
        ax_b.axhline(r.log_px, color="navy", lw=1.5, label=f"log p(x) {r.log_px:.1f}")
        if iwae is not None:
            ax_b.axhline(iwae[i], color="0.4", lw=1.2, ls=":", label=f"IWAE bound {iwae[i]:.1f}")
        pad = max(r.gap, 0.5) * 0.6
        ax_b.set(xlim=(-0.3, 2.4), ylim=(r.elbo - pad, r.log_px + pad), xticks=[], ylabel="nats")
        ax_b.text(0, r.elbo + r.gap / 2, f"gap\n{r.gap:.2f}", ha="center", va="center", fontsize=9)
        ax_b.legend(loc="center right", fontsize=7.5, framealpha=0.9)
        ax_b.set_title("$\\log p(x) = \\mathrm{ELBO} + \\mathrm{gap}$" if i == 0 else None, fontsize=10)
    fig.tight_layout()
    return fig
