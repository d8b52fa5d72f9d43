"""The scoreboard: every generator of the book measured the same way, one row each.

A generator enters the board as an :class:`Entrant`: its name, a ``sample(n, generator)`` function, and
what it cost (parameters, network evaluations per sample, training seconds and FLOPs). Its row is built
from

* :func:`score`: the sample columns of one set of images, from one pass of the judge over them (Frechet
  distance, precision, recall, density, coverage, class entropy, effective classes) and the pixel-space
  data-copying test; :func:`real_floor` scores held-out real images the same way, the floor no generator
  can be expected to beat;
* :func:`~genvae.training.flops.training_flops` and :func:`sampling_milliseconds`: what training cost and what one image costs;
* :func:`combine_seeds`: the rows of several training seeds as a mean and a standard deviation per column;
* :func:`board_row`: an entrant's costs and likelihoods joined to its sample columns.

:func:`reading` then says, column by column, who wins and whether the lead is larger than the spread
between seeds. It returns data; the chapter words it. Likelihoods are only comparable under one protocol
(bits per dimension of dequantised 8-bit images are not nats of binarised images), so each protocol is a
column of its own (:func:`likelihood_column`), and a generator without a value under a protocol is left
out of that column, never compared through another.

Columns and which way is better (:data:`COLUMNS`): lower for the Frechet distance and the costs; higher for
precision, recall, density, coverage, class entropy and effective classes; closest to 1 for the copying
ratio. A density above 1 can also mean samples crowding where real data is dense (see
:func:`~genvae.analysis.samples.density_coverage`); the board still ranks it higher-is-better, like the
other support measures. The judge's confidence, the pairwise feature distance and the copying share are
shown but not ranked; the copying share flags copying (:func:`reading`).
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

import torch
from torch import Tensor

from ..checks import check_count, check_images
from ..training.flops import training_flops
from .samples import SampleJudge, copying_report, density_coverage, nearest_distances, precision_recall, sample_quality
from .splits import test_subset

__all__ = [
    "COLUMNS", "EXACT_COLUMNS", "LIKELIHOOD_PREFIX", "COPY_QUANTILE", "COPY_SIZE", "Entrant", "SeedSpread",
    "likelihood_column", "draw",
    "sampling_milliseconds", "score", "real_floor", "combine_seeds", "board_row", "reading",
]

# Which way each column is better: "lower", "higher", "near 1", or None (shown, not ranked).
COLUMNS: dict[str, str | None] = {
    # costs (board_row)
    "parameters": "lower",
    "evaluations per sample": "lower",
    "ms per image": "lower",
    "training seconds": "lower",
    "training FLOPs": "lower",
    "seeds": None,
    # samples (score)
    "Frechet distance": "lower",
    "precision": "higher",
    "recall": "higher",
    "density": "higher",
    "coverage": "higher",
    "class entropy (nats)": "higher",
    "effective classes": "higher",
    "confidence": None,
    "pairwise feature distance": None,
    "copying ratio": "near 1",
    "copying share": None,
}

# Columns fixed by the architecture and recipe, not by the seed: a lead there is exact, whatever the seeds.
EXACT_COLUMNS = ("parameters", "evaluations per sample", "training FLOPs")

# A likelihood column is this prefix and the protocol's name: a negative log-likelihood, lower is better.
LIKELIHOOD_PREFIX = "NLL: "

COPY_QUANTILE = 0.05  # the copying test's quantile of the test images' distances to the training set
COPY_SIZE = 500  # samples, and test images, of the copying test (about 6 s against 60,000 images on one core)

def likelihood_column(protocol: str) -> str:
    """The column of a likelihood protocol: ``likelihood_column("bits/dim, dequantised 8-bit")`` is
    ``"NLL: bits/dim, dequantised 8-bit"``."""
    if not isinstance(protocol, str) or not protocol.strip():
        raise ValueError(f"a likelihood protocol is a non-empty name, got {protocol!r}")
    return LIKELIHOOD_PREFIX + protocol


def _direction(column: str) -> str | None:
    if column.startswith(LIKELIHOOD_PREFIX):
        return "lower"
    if column not in COLUMNS:
        raise ValueError(f"unknown column {column!r}: expected one of {list(COLUMNS)} or a likelihood column "
                         f"{LIKELIHOOD_PREFIX!r} + protocol")
    return COLUMNS[column]


def _finite_or_none(value, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0 or None, got {value!r}")
    return float(value)


# --- The entrants ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Entrant:
    """One generator on the board.

    Attributes:
        name: as the table shows it.
        sample: ``sample(n, generator)`` -> images ``(n, 1, 28, 28)`` in [0, 1], all noise drawn from the
            :class:`torch.Generator` it is given (a model's ``sample`` method is one).
        parameters: its parameter count.
        evaluations: network evaluations per sample (1 for a decoder; T for ancestral diffusion sampling).
        train_seconds: its training time (:attr:`genvae.storage.cache.TrainedModel.train_seconds`), or ``None``.
        train_flops: its training FLOPs (:func:`~genvae.training.flops.training_flops`), or ``None``.
        seeds: how many training seeds its row averages.
        likelihoods: negative log-likelihoods by protocol name, e.g. ``{"bits/dim, dequantised 8-bit": 1.23}``
            or ``{"nats, binarised MNIST (IWAE)": 86.0}``; each becomes a column (:func:`likelihood_column`).
    """

    name: str
    sample: Callable[[int, torch.Generator], Tensor]
    parameters: int
    evaluations: int
    train_seconds: float | None = None
    train_flops: float | None = None
    seeds: int = 1
    likelihoods: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"an entrant needs a non-empty name, got {self.name!r}")
        if not callable(self.sample):
            raise TypeError(f"{self.name}: sample must be a function sample(n, generator), got {type(self.sample).__name__}")
        check_count(self.parameters, "parameters")
        check_count(self.evaluations, "evaluations")
        check_count(self.seeds, "seeds")
        object.__setattr__(self, "train_seconds", _finite_or_none(self.train_seconds, "train_seconds"))
        object.__setattr__(self, "train_flops", _finite_or_none(self.train_flops, "train_flops"))
        likelihoods = {}
        for protocol, value in dict(self.likelihoods).items():
            likelihood_column(protocol)  # checks the name
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{self.name}: the likelihood under {protocol!r} must be a finite number, got {value!r}")
            likelihoods[protocol] = float(value)
        object.__setattr__(self, "likelihoods", likelihoods)

    @classmethod
    def from_trained(cls, trained, *, name: str | None = None, evaluations: int = 1, flops_images: Tensor | None = None,
                     **overrides) -> "Entrant":
        """An entrant from a :class:`~genvae.storage.cache.TrainedModel`: its model's ``sample``, all the
        parameters its training fitted (a GAN's discriminator too: pass ``parameters=`` to count only what
        samples), its recorded training seconds, and, given a batch of real training images
        ``flops_images``, :func:`~genvae.training.flops.training_flops` of its training config. ``overrides``: any other field."""
        model = trained.model
        fields = dict(name=name or trained.name, sample=model.sample, parameters=sum(p.numel() for p in model.parameters()),
                      evaluations=evaluations, train_seconds=trained.train_seconds)
        if flops_images is not None:
            fields["train_flops"] = training_flops(model, flops_images, trained.train_config)
        return cls(**{**fields, **overrides})

    def columns(self) -> dict[str, float]:
        """The cost and likelihood columns of its row (a cost it does not know is left out)."""
        out = {"parameters": float(self.parameters), "evaluations per sample": float(self.evaluations),
               "seeds": float(self.seeds)}
        if self.train_seconds is not None:
            out["training seconds"] = self.train_seconds
        if self.train_flops is not None:
            out["training FLOPs"] = self.train_flops
        out.update({likelihood_column(p): v for p, v in self.likelihoods.items()})
        return out


def draw(entrant: Entrant, n: int, seed: int = 0) -> Tensor:
    """``n`` images of ``entrant`` from a CPU generator seeded with ``seed``, without gradients, checked to be
    images ``(n, 1, 28, 28)`` in [0, 1]."""
    n = check_count(n)
    with torch.no_grad():
        images = entrant.sample(n, torch.Generator().manual_seed(seed))
    check_images(images, values=True)
    if len(images) != n:
        raise ValueError(f"{entrant.name}: sample({n}, generator) returned {len(images)} images")
    return images


# --- What training cost ----------------------------------------------------------------------------------------

# --- What sampling costs ---------------------------------------------------------------------------------------

def sampling_milliseconds(sample: Callable[[int, torch.Generator], Tensor], n: int = 100, repeats: int = 5,
                          seed: int = 0) -> float:
    """Wall time per image, in milliseconds, of ``sample(n, generator)``: the median over ``repeats`` timed
    calls, after one untimed warm-up call, each call with its own CPU :class:`torch.Generator` (seeded
    ``seed``, ``seed + 1``...), without gradients. The images must come back on the CPU: the board times
    every generator on the CPU, with whatever threads torch has (``torch.set_num_threads``)."""
    n, repeats = check_count(n), check_count(repeats, "repeats")
    times = []
    with torch.no_grad():
        for i in range(repeats + 1):
            generator = torch.Generator().manual_seed(seed + i)
            t0 = time.perf_counter()
            images = sample(n, generator)
            elapsed = time.perf_counter() - t0
            if not isinstance(images, Tensor) or images.shape != (n, 1, 28, 28):
                raise ValueError(f"sample({n}, generator) must return images ({n}, 1, 28, 28), got "
                                 f"{tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__}")
            if images.device.type != "cpu":
                raise ValueError(f"sample returned images on {images.device}: time it with the model on the CPU")
            if i:  # the first call warms up (allocations, lazy initialisation) and is not timed
                times.append(elapsed)
    return 1000 * statistics.median(times) / n


# --- The sample columns ----------------------------------------------------------------------------------------

def _sample_columns(judged, images: Tensor, judge: SampleJudge, train_images: Tensor, test_images: Tensor,
                    k: int, copy_size: int, quantile: float, seed: int) -> dict[str, float]:
    quality = sample_quality(judged, judge.reference)  # Frechet distance, class entropy, confidence, pairwise
    feats = judged.features
    copy_n = min(copy_size, len(images))
    test_idx = test_subset(len(test_images), min(copy_size, len(test_images)), seed)
    copying = copying_report(images[:copy_n], train_images, test_images[test_idx], quantile)
    return {
        "Frechet distance": quality["Frechet distance"],
        **precision_recall(judge.reference, feats, k),
        **density_coverage(judge.reference, feats, k),
        "class entropy (nats)": quality["class entropy (nats)"],
        "effective classes": math.exp(quality["class entropy (nats)"]),
        "confidence": quality["confidence"],
        "pairwise feature distance": quality["pairwise feature distance"],
        "copying ratio": copying["median ratio"],
        "copying share": copying["share below threshold"],
    }


def score(images: Tensor, judge: SampleJudge, train_images: Tensor, test_images: Tensor, *, k: int = 5,
          copy_size: int = COPY_SIZE, quantile: float = COPY_QUANTILE, seed: int = 0) -> dict[str, float]:
    """The sample columns of one set of generated images ``(N, 1, 28, 28)``: one row of the board.

    In the judge's features, against its real reference (:class:`~genvae.analysis.samples.SampleJudge`,
    one pass over the images): ``"Frechet distance"``; ``"precision"`` and ``"recall"``
    (:func:`~genvae.analysis.samples.precision_recall`), ``"density"`` and ``"coverage"``
    (:func:`~genvae.analysis.samples.density_coverage`), all on ``k``-nearest-neighbour balls (one ``k``
    for the four, 5 as Naeem et al. advise); ``"class entropy (nats)"``, ``"effective classes"`` (its
    exponential), ``"confidence"`` and ``"pairwise feature distance"``. Pass as many images as the reference
    holds: the Frechet distance's bias and the ball measures depend on the set sizes, so every row should
    use the same sizes.

    Read precision and density beside recall and coverage: with the book's judge (the cached
    :func:`genvae.experiments.classifier`) and 300 reference images, 300 images of uniform noise got precision
    1.00 and density 1.19 (real test images: 0.98 and 1.03), and with 1,000 reference images 1.00 and 0.82.
    Noise's features sit in one tight cluster inside the large balls of a few ambiguous real digits; its
    recall and coverage (0.00 and 0.03) and its Frechet distance (555 against 18) do expose it, and with
    3,000 reference images its precision fell to 0.31.

    In pixels, the data-copying test (:func:`~genvae.analysis.samples.copying_report`): ``"copying
    ratio"``, the median distance of samples to their nearest training image over that of real test images
    (about 1 for a generator that does not copy, towards 0 for one that does), and ``"copying share"``, the
    share of samples nearer to the training set than the ``quantile`` of the test images' distances (about
    ``quantile`` if it does not copy, towards 1 if it does). To bound its cost it uses the first
    ``copy_size`` images (samples are independent draws) and a seeded random subset of ``copy_size`` of
    ``test_images`` (:func:`~genvae.analysis.splits.test_subset`), against *all* of ``train_images``, since a
    copy is only found next to the image it copies: 500 and 500 against MNIST's 60,000 take about 6 s on
    one core. ``test_images`` are real images the generator never trained on, and not the judge's reference.
    """
    judged = judge.judgement(images)  # checks the images
    return _sample_columns(judged, images, judge, train_images, test_images, check_count(k, "k"),
                           check_count(copy_size, "copy_size"), quantile, seed)


def real_floor(real_images: Tensor, judge: SampleJudge, train_images: Tensor, test_images: Tensor, *, k: int = 5,
               copy_size: int = COPY_SIZE, quantile: float = COPY_QUANTILE, seed: int = 0) -> dict[str, float]:
    """:func:`score` of real held-out images: the row of a perfect generator, up to the noise of a finite
    set (its Frechet distance is not 0, its precision and recall not 1). ``real_images`` must not be the
    judge's reference images (``ValueError`` if any of them has a reference image's features), nor the
    copying test's ``test_images``; the keywords are :func:`score`'s."""
    judged = judge.judgement(real_images)
    ref = judge.reference.double()
    nearest = nearest_distances(judged.features.double(), ref)
    tol = 1e-6 * (1 + float(ref.norm(dim=1).median()))
    if bool((nearest <= tol).any()):
        raise ValueError(f"{int((nearest <= tol).sum())} of the real images are (features of) reference images: "
                         "the floor compares real images that are not the reference with it")
    return _sample_columns(judged, real_images, judge, train_images, test_images, check_count(k, "k"),
                           check_count(copy_size, "copy_size"), quantile, seed)


# --- Seeds and rows --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SeedSpread:
    """Rows of several seeds of one generator: per column, the ``mean`` and the standard deviation ``sd``
    over the ``n`` seeds (ddof = 1; NaN for one seed, or for a column measured once)."""

    mean: dict[str, float]
    sd: dict[str, float]
    n: int


def combine_seeds(rows: list[Mapping[str, float]]) -> SeedSpread:
    """The mean and standard deviation (ddof = 1) of every column over the rows of several seeds, which
    must all have the same columns. One row gives its values and NaN spreads."""
    rows = list(rows)
    if not rows:
        raise ValueError("no rows to combine: pass one row per seed")
    columns = list(rows[0])
    for i, row in enumerate(rows[1:], 1):
        if set(row) != set(columns):
            raise ValueError(f"row {i} has other columns than row 0: missing {sorted(set(columns) - set(row))}, "
                             f"extra {sorted(set(row) - set(columns))}")
    for col in columns:
        _direction(col)  # an unknown column fails here, not in the table
    mean, sd = {}, {}
    for col in columns:
        values = [float(r[col]) for r in rows]
        mean[col] = statistics.fmean(values)
        sd[col] = statistics.stdev(values) if len(values) > 1 else math.nan
    return SeedSpread(mean, sd, len(rows))


def board_row(entrant: Entrant, scores: Mapping[str, float] | SeedSpread, ms_per_image: float | None = None
              ) -> SeedSpread:
    """An entrant's full row: its cost and likelihood columns (:meth:`Entrant.columns`, spreads unknown),
    ``"ms per image"`` if given (:func:`sampling_milliseconds`), and its sample columns, one :func:`score`
    row or a :class:`SeedSpread` of several (:func:`combine_seeds`), whose number of seeds must be the
    entrant's."""
    spread = scores if isinstance(scores, SeedSpread) else combine_seeds([scores])
    if spread.n != entrant.seeds:
        raise ValueError(f"{entrant.name}: the entrant says its row averages {entrant.seeds} seed(s), its sample "
                         f"columns average {spread.n}")
    costs = entrant.columns()
    if ms_per_image is not None:
        costs["ms per image"] = _finite_or_none(ms_per_image, "ms_per_image")
    clash = set(costs) & set(spread.mean)
    if clash:
        raise ValueError(f"{entrant.name}: columns given twice: {sorted(clash)}")
    return SeedSpread({**costs, **spread.mean}, {**{c: math.nan for c in costs}, **spread.sd}, spread.n)


# --- Reading the table -----------------------------------------------------------------------------------------

def _as_spread(name: str, row) -> SeedSpread:
    if isinstance(row, SeedSpread):
        return row
    if isinstance(row, Mapping):
        return SeedSpread({c: v for c, v in row.items()}, {c: math.nan for c in row}, 1)
    raise TypeError(f"the row of {name!r} must be a dict of columns or a SeedSpread, got {type(row).__name__}")


def _value(v) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def reading(table: Mapping[str, Mapping[str, float] | SeedSpread], columns: list[str] | None = None, *,
            copy_quantile: float = COPY_QUANTILE, flag_factor: float = 2.0) -> list[dict]:
    """Who wins each column of a finished table, and by how much. ``table``: generator name -> its row, a
    dict of columns (one measurement, spreads unknown) or a :class:`SeedSpread` (:func:`board_row`).
    ``columns``: those to read, default every ranked column (:data:`COLUMNS`, likelihood columns) that
    some row has, in the order of :data:`COLUMNS` and then the likelihood columns by name (whatever the order of
    the rows' keys: a row read back from JSON has them sorted).

    One dict per column:

    * ``"column"``; ``"better"``: ``"lower"``, ``"higher"`` or ``"closer to 1"``; ``"protocol"``: the
      likelihood protocol, or ``None``;
    * ``"compared"``: the generators with a finite value in this column, in table order; ``"skipped"``: the
      others (a likelihood measured under another protocol is never used);
    * ``"winner"``, ``"value"``; ``"runner_up"``, ``"runner_up_value"`` (``None`` if alone); ``"lead"``:
      how much better the winner is, in the column's units (for the copying ratio, in distance to 1);
      ``"spread"``: the winner's and the runner-up's standard deviations added, ``None`` unless both are known;
    * ``"verdict"``: ``"clear lead"`` (lead > spread), ``"within the spread"`` (lead <= spread), ``"spread
      unknown"``, ``"tie"`` (lead 0, spreads unknown or an exact column), ``"exact"`` (a column of
      :data:`EXACT_COLUMNS`, which no seed changes) or ``"unopposed"`` (one generator);
    * for the copying ratio, ``"flagged"``: the generators whose ``"copying share"`` exceeds ``flag_factor``
      times ``copy_quantile`` (2 x 5% = 10%: with 500 samples, five binomial standard deviations above
      what a generator that does not copy gets), in table order.

    Ties go to the first generator in table order. Columns nobody has a value in are left out.
    """
    if not table:
        raise ValueError("the table is empty: pass {generator name: row}")
    rows = {name: _as_spread(name, row) for name, row in table.items()}
    present: list[str] = []
    for name, row in rows.items():
        for col in row.mean:
            _direction(col)  # unknown columns fail, naming the known ones
            if col not in present:
                present.append(col)
    if columns is None:  # in the order of COLUMNS, then the likelihood columns by name: the same for any row order
        order = {c: i for i, c in enumerate(COLUMNS)}
        columns = sorted((c for c in present if _direction(c) is not None), key=lambda c: (order.get(c, len(order)), c))
    else:
        for col in columns:
            if _direction(col) is None:
                raise ValueError(f"column {col!r} is shown on the board but not ranked")
            if col not in present:
                raise ValueError(f"no row has the column {col!r}")
    out = []
    for col in columns:
        better = _direction(col)
        values = {n: _value(r.mean.get(col)) for n, r in rows.items()}
        compared = [n for n, v in values.items() if v is not None]
        if not compared:
            continue
        key = {"lower": lambda v: v, "higher": lambda v: -v, "near 1": lambda v: abs(v - 1)}[better]
        ranked = sorted(compared, key=lambda n: key(values[n]))  # stable: ties keep table order
        winner = ranked[0]
        item = {"column": col, "better": "closer to 1" if better == "near 1" else better,
                "protocol": col[len(LIKELIHOOD_PREFIX):] if col.startswith(LIKELIHOOD_PREFIX) else None,
                "compared": compared, "skipped": [n for n in rows if n not in compared],
                "winner": winner, "value": values[winner], "runner_up": None, "runner_up_value": None,
                "lead": None, "spread": None, "verdict": "unopposed"}
        if len(ranked) > 1:
            second = ranked[1]
            lead = key(values[second]) - key(values[winner])
            sds = [_value(rows[n].sd.get(col)) for n in (winner, second)]
            spread = None if None in sds else sds[0] + sds[1]
            if lead == 0 and (spread is None or col in EXACT_COLUMNS):
                verdict = "tie"
            elif col in EXACT_COLUMNS:
                verdict = "exact"
            elif spread is not None:
                verdict = "clear lead" if lead > spread else "within the spread"
            else:
                verdict = "spread unknown"
            item.update(runner_up=second, runner_up_value=values[second], lead=lead, spread=spread, verdict=verdict)
        if col == "copying ratio":
            limit = flag_factor * copy_quantile
            item["flagged"] = [n for n, r in rows.items() if (_value(r.mean.get("copying share")) or 0.0) > limit]
        out.append(item)
    return out
