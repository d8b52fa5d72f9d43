"""Chapter 14's scoreboard: which generators enter, how each is sampled, and how its row is measured.

The measuring is :mod:`genvae.analysis.scoreboard`'s; this module names the book's generators
(:func:`contenders`), turns a trained model into a sampler (:func:`sampler`: the model's own ``sample``,
a Gaussian or a flow fitted to an autoencoder's codes, or a conditional model with uniformly drawn
classes), and measures one trained model's row (:func:`contender_row`), which chapters keep with the
model (:func:`genvae.storage.evals.cached_eval`) so that a warm rebuild does not sample again.

Every generator is judged the same way: ``n`` samples from noise seed 0; the judge's reference is the
reference half of :func:`genvae.analysis.splits.test_split` (as in chapters 8-13), the real-image floor its
other half, and the copying test's test images come from the rest of the test set (:func:`board_splits`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor, nn

from .. import data as gdata
from ..analysis import latent, likelihood, scoreboard
from ..analysis.samples import SampleJudge
from ..analysis.splits import test_split, test_subset
from ..checks import check_count
from ..experiments import registry
from ..models.flow import network_evaluations
from ..models.registry import is_conditional
from ..storage.evals import eval_version
from ..utils import device_of

__all__ = ["HOWS", "BPD", "IWAE", "Contender", "contenders", "board_splits", "sampler", "contender_row",
           "contender_likelihood", "measure", "describe", "solver_check", "SETTLED_BITS"]

HOWS = ("model", "gaussian", "latent flow", "uniform classes")
BPD = "bits/dim, dequantised 8-bit"  # the protocol every continuous density is scored by
IWAE = "nats, binarised (IWAE)"  # chapter 6's protocol for the Bernoulli VAE: its own column


@dataclass(frozen=True)
class Contender:
    """One generator of the board: a name, the experiment of each training seed (``experiment(seed)``), how it
    is sampled (one of :data:`HOWS`) with its ``options``, whether it trains in under a minute on a CPU (then
    it is measured over several seeds), and its network evaluations per sample."""

    name: str
    experiment: Callable[[int], "registry.Experiment"]
    how: str = "model"
    options: dict = field(default_factory=dict)
    several_seeds: bool = False
    evaluations: int = 1

    def __post_init__(self) -> None:
        if self.how not in HOWS:
            raise ValueError(f"how must be one of {HOWS}, got {self.how!r}")


def contenders(dataset: str = "mnist", pixel_evaluations: int = 20, latent_steps: int = 3000) -> list[Contender]:
    """The book's generators, in the order of its chapters. ``pixel_evaluations``: the DDPM's DDIM steps and
    twice the flow's Heun steps; ``latent_steps``: Adam steps of the latent flow."""
    d = dict(dataset=dataset)
    e = check_count(pixel_evaluations, "pixel_evaluations")
    heun = max(1, e // 2)
    return [
        Contender("VAE, d = 2", lambda s: registry.vae(2, seed=s, **d), several_seeds=True),
        Contender("VAE, d = 16", lambda s: registry.vae(16, seed=s, **d), several_seeds=True),
        Contender("multi-stage VAE, d = 2", lambda s: registry.multistage(2, seed=s, **d), several_seeds=True),
        Contender("AE + fitted Gaussian, d = 16", lambda s: registry.mlp_ae(16, seed=s, **d), how="gaussian",
                  several_seeds=True),
        Contender("AE + latent flow, d = 16", lambda s: registry.mlp_ae(16, seed=s, **d), how="latent flow",
                  options={"fit_steps": latent_steps, "steps": 5}, several_seeds=True,
                  evaluations=network_evaluations(5, "heun") + 1),
        Contender("Bernoulli VAE, d = 50", lambda s: registry.bernoulli_vae(**d)),
        Contender("GAN", lambda s: registry.gan(**d)),
        Contender("VAE-GAN", lambda s: registry.vaegan(**d)),
        Contender(f"CVAE, d = {registry.STYLE_DIM} (classes uniform)", lambda s: registry.cvae(registry.STYLE_DIM, seed=s, **d),
                  how="uniform classes", several_seeds=True),
        Contender(f"DDPM, DDIM {e} steps", lambda s: registry.ddpm(**d), options={"steps": e}, evaluations=e),
        Contender(f"flow matching, Heun {heun} steps", lambda s: registry.flow_matching(**d),
                  options={"steps": heun, "solver": "heun"}, evaluations=network_evaluations(heun, "heun")),
    ]


def board_splits(n_test: int, n: int) -> tuple[Tensor, Tensor, Tensor]:
    """Three disjoint sets of test indices: the real images of the floor and the judge's reference (the two
    halves of :func:`test_split`, ``n`` each), and the rest, from which the copying test draws."""
    real, reference = test_split(n_test, n)
    taken = torch.zeros(n_test, dtype=torch.bool)
    taken[real], taken[reference] = True, True
    rest = (~taken).nonzero()[:, 0]
    if len(rest) == 0:
        raise ValueError(f"{n_test} test images leave none for the copying test after two sets of {n}")
    return real, reference, rest


def fit_codes(model: nn.Module, how: str, dataset: str, options: dict | None = None, seed: int = 0
              ) -> tuple[object | None, dict[str, float]]:
    """What ``how`` fits to the model's training codes before it can sample, and what fitting cost: ``(fitted,
    extra)``, with ``fitted`` a :class:`~genvae.latent.FittedGaussian` or :class:`~genvae.latent.LatentFlow` (on
    the CPU) and ``extra`` its ``"fit seconds"`` and ``"fit parameters"``; ``(None, {})`` for a model sampled as
    it is."""
    options = dict(options or {})
    if how in ("model", "uniform classes"):
        return None, {}
    if how not in ("gaussian", "latent flow"):
        raise ValueError(f"how must be one of {HOWS}, got {how!r}")
    codes = latent.encode(model, gdata.load(dataset).x_train)  # (60000, d)
    if how == "gaussian":
        d = codes.shape[1]
        return latent.FittedGaussian(codes), {"fit seconds": 0.0, "fit parameters": float(d + d * (d + 1) // 2)}
    flow = latent.LatentFlow(codes, steps=options.get("fit_steps", 3000), seed=seed)
    return flow, {"fit seconds": flow.seconds, "fit parameters": float(sum(p.numel() for p in flow.velocity.parameters()))}


def draw(model: nn.Module, how: str, fitted, options: dict | None = None) -> Callable[[int, torch.Generator], Tensor]:
    """``sample(n, generator)``: how the board draws images from ``model`` (with what :func:`fit_codes` fitted)."""
    options = dict(options or {})
    if how == "model":
        return lambda n, g: model.sample(n, generator=g, **options)
    if how == "uniform classes":
        k = model.config.n_classes
        return lambda n, g: model.sample(n, y=torch.randint(k, (n,), generator=g), generator=g)
    if how == "gaussian":
        return lambda n, g: latent.decode(model, fitted.sample(n, g))
    if how == "latent flow":
        steps = options.get("steps", 5)
        return lambda n, g: latent.decode(model, fitted.sample(n, g, steps=steps))
    raise ValueError(f"how must be one of {HOWS}, got {how!r}")


def sampler(model: nn.Module, how: str, dataset: str, options: dict | None = None, seed: int = 0
            ) -> tuple[Callable[[int, torch.Generator], Tensor], dict[str, float]]:
    """``(sample(n, generator), extra)``: :func:`draw` after :func:`fit_codes` (``extra``: the fitting cost,
    ``"fit seconds"`` and ``"fit parameters"`` of a Gaussian or flow fitted to an autoencoder's training codes;
    empty for a model sampled as it is)."""
    fitted, extra = fit_codes(model, how, dataset, options, seed)
    return draw(model, how, fitted, options), extra


@eval_version(1)
def contender_row(model: nn.Module, how: str, dataset: str, judge: nn.Module, options: dict, n: int,
                  train_config, timing_images: int = 100) -> dict:
    """One trained model's measurements for the board: ``{"scores": ...}`` (:func:`scoreboard.score` of ``n``
    samples drawn with noise seed 0 against the judge's reference, :func:`board_splits`; the copying test against the
    images the model trained on), ``"ms per image"``
    (:func:`scoreboard.sampling_milliseconds` of ``timing_images`` images, on this machine's CPU (a copy of a model on a GPU), when first computed),
    ``"training FLOPs"`` (:func:`scoreboard.training_flops` of ``train_config`` on a batch of real training
    images), and the fitting costs of :func:`sampler`. Costly; chapters keep it with the model
    (:func:`genvae.storage.evals.cached_eval`)."""
    data = gdata.load(dataset)
    real, reference, rest = board_splits(len(data.x_test), n)
    fitted, extra = fit_codes(model, how, dataset, options)
    sample = draw(model, how, fitted, options)
    judge = SampleJudge(judge, data.x_test[reference])
    with torch.no_grad():
        images = sample(n, torch.Generator().manual_seed(0))
    # The copying test looks for the images the model trained on: a subset in quick mode (train_size).
    trained_on = gdata.load(dataset, train_size=train_config.train_size).x_train
    scores = scoreboard.score(images, judge, trained_on, data.x_test[rest])
    flops = scoreboard.training_flops(model, data.x_train[:train_config.batch_size], train_config,
                                      y=data.y_train[:train_config.batch_size])
    # Sampling is timed on the CPU, also where the model lives on a GPU: a copy there, with the same fit.
    on_cpu = model if device_of(model).type == "cpu" else copy.deepcopy(model).cpu()
    ms = scoreboard.sampling_milliseconds(draw(on_cpu, how, fitted, options), n=timing_images, repeats=3)
    return {"scores": scores, "ms per image": ms, "training FLOPs": flops, **extra}


@eval_version(1)
def contender_likelihood(model: nn.Module, dataset: str, n_images: int, effort: int, train_config) -> dict[str, float]:
    """The model's negative log-likelihood under the protocols it has, on ``n_images`` test images
    (:func:`~genvae.analysis.splits.test_subset`, seed 1): :data:`BPD` for a DDPM (its bound, ``effort``
    sampled steps per image), a flow (its estimate, ``effort`` Heun steps) and a VAE read as a Gaussian-decoder
    density (:func:`~genvae.analysis.likelihood.vae_bits_per_dim`, its scale fitted on 5,000 training images,
    ``effort`` draws per image); :data:`IWAE` instead for a VAE trained on binarised images (``train_config``
    says so): :func:`~genvae.analysis.likelihood.iwae_bound` with k = ``effort`` on binarised test images.
    Empty for a model that defines no density of its own (a GAN, a plain autoencoder, a conditional model).
    Chapters keep it with the model (:func:`genvae.storage.evals.cached_eval`)."""
    data = gdata.load(dataset)
    x = data.x_test[test_subset(len(data.x_test), check_count(n_images, "n_images"), seed=1)]
    effort = check_count(effort, "effort")
    kind = model.config.kind
    if kind == "ddpm":
        return {BPD: likelihood.diffusion_bits_per_dim(model, x, samples=effort)}
    if kind == "flow":
        return {BPD: likelihood.flow_bits_per_dim(model, x, steps=effort)}
    if not hasattr(model, "encode") or is_conditional(model):
        return {}
    if train_config.binarize:
        xb = gdata.binarize(x, torch.Generator().manual_seed(2))
        return {IWAE: -likelihood.iwae_bound(model, xb, k=effort, recon="bce")}
    fit_on = data.x_train[test_subset(len(data.x_train), min(5000, len(data.x_train)), seed=2)]
    sigma = likelihood.gaussian_decoder_scale(model, fit_on)
    return {BPD: likelihood.vae_bits_per_dim(model, x, sigma, samples=effort)}


SETTLED_BITS = 0.1  # bits/dim: how far an estimate may move with half the solver's steps and still count as settled


def solver_check(c: Contender, dataset: str, n_images: int, effort: int) -> tuple[float, float] | None:
    """For a contender whose likelihood is an ODE estimate (a pixel flow): its bits/dim with ``effort`` Heun
    steps and with half as many, on the same images (both kept with the model, the first shared with
    :func:`measure`). ``None`` for the others, whose numbers do not depend on a solver's steps."""
    from ..storage.evals import cached_eval

    t = c.experiment(0).load()
    if t.model.config.kind != "flow":
        return None
    effort = check_count(effort, "effort")
    full = cached_eval(t, contender_likelihood, dataset, n_images, effort, t.train_config)[BPD]
    half = cached_eval(t, contender_likelihood, dataset, n_images, max(1, effort // 2), t.train_config)[BPD]
    return full, half


def measure(c: Contender, dataset: str, judge: nn.Module, seeds: list[int], n: int, n_likelihood: int, effort: int,
            log: Callable[[str], None] | None = None) -> tuple[scoreboard.Entrant, scoreboard.SeedSpread]:
    """``c``'s entrant and full row (:func:`genvae.analysis.scoreboard.board_row`): each seed's model loaded (or
    trained), its :func:`contender_row` (over ``seeds`` if it trains in under a minute, else seed 0 alone) and its
    :func:`contender_likelihood` (seed 0), both kept with the model. Costs are means over the seeds; the
    parameters and training seconds of a fitted Gaussian or flow are added to the autoencoder's."""
    from ..storage.evals import cached_eval

    seeds = [int(s) for s in seeds] if c.several_seeds else [0]
    if not seeds:
        raise ValueError("measure needs at least one seed")
    rows, extras = [], []
    for s in seeds:
        t = c.experiment(s).load()
        r = cached_eval(t, contender_row, c.how, dataset, judge, dict(c.options), n, t.train_config)
        rows.append(r["scores"])
        extras.append((t, r))
        if log:
            log(f"{c.name}, seed {s}: Frechet distance {r['scores']['Frechet distance']:.1f}")
    first, r0 = extras[0]
    lik = cached_eval(first, contender_likelihood, dataset, n_likelihood, effort, first.train_config)
    mean = lambda values: sum(values) / len(values)
    model = first.model
    built: list = []  # the sampler, built on first use (a latent flow is fitted then, not on every call)

    def sample(k: int, g: torch.Generator) -> Tensor:
        if not built:
            built.append(sampler(model, c.how, dataset, c.options)[0])
        return built[0](k, g)

    entrant = scoreboard.Entrant(
        name=c.name,
        sample=sample,
        parameters=int(sum(p.numel() for p in model.parameters()) + r0.get("fit parameters", 0)),
        evaluations=c.evaluations,
        train_seconds=mean([t.train_seconds + r.get("fit seconds", 0.0) for t, r in extras]),
        train_flops=mean([r["training FLOPs"] for _, r in extras]),
        seeds=len(seeds),
        likelihoods=lik,
    )
    ms = mean([r["ms per image"] for _, r in extras])
    return entrant, scoreboard.board_row(entrant, scoreboard.combine_seeds(rows), ms_per_image=ms)


def describe(readings: list[dict], fmt: Callable[[str, float], str] | None = None) -> list[str]:
    """One sentence per column of :func:`genvae.analysis.scoreboard.reading`: who wins, by how much, and whether
    the lead is larger than the seeds' spread."""
    fmt = fmt or (lambda col, v: f"{v:.3g}")
    out = []
    for r in readings:
        col, better = r["column"], r["better"]
        head = f"**{col}** ({better} is better): {r['winner']}, {fmt(col, r['value'])}"
        if r["runner_up"] is None:
            out.append(head + ", the only generator with a value.")
            continue
        verdict = {"clear lead": "a lead larger than the two seeds' spreads added",
                   "within the spread": "a lead within the two seeds' spreads added, so not a clear win",
                   "spread unknown": "one seed for at least one of them, so the spread is unknown",
                   "exact": "a count that no seed changes, so the lead is exact",
                   "tie": "a tie"}[r["verdict"]]
        line = f"{head}, ahead of {r['runner_up']}, {fmt(col, r['runner_up_value'])}: {verdict}."
        if r.get("flagged"):
            line += f" Flagged as copying: {', '.join(r['flagged'])}."
        out.append(line)
    return out
