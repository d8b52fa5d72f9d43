"""Glue for the chapters' tables: a latent-effects row per model, ratios and spreads between rows."""

from __future__ import annotations

import math

import numpy as np

from ..analysis.codes import is_collapsed, latent_report
from ..storage.evals import cached_eval


def latent_row(trained, kind: str, beta: float, knn_k: int = 5, dataset: str = "mnist",
               report: dict | None = None) -> dict[str, object]:
    """One row of the latent-effects tables (chapter 7): what a trained model's code does, by name.

    ``report`` defaults to :func:`latent_report` of ``trained.model``, kept with the model by
    :func:`genvae.storage.evals.cached_eval` (it costs a pass over the training set). ``KL`` is the model's
    KL term per image on the test set as training recorded it (``trained.metrics["kl"]``; NaN for an
    autoencoder): an upper bound on the information the code carries about x, in nats. ``collapsed``
    flags a VAE with 0 active units (:func:`is_collapsed`); for an autoencoder it is False.
    """
    if report is None:
        report = cached_eval(trained, latent_report, dataset, knn_k=knn_k)
    active = report.get("active units", math.nan)
    return {
        "model": kind,
        "beta": beta,
        "recon MSE": report["recon MSE"],
        "KL": trained.metrics.get("kl", math.nan),
        "active units": active,
        "collapsed": not math.isnan(active) and is_collapsed(int(active)),
        "kNN accuracy": report["kNN accuracy"],
        "silhouette": report["silhouette"],
        "head accuracy": report.get("head accuracy", math.nan),
    }


def ratio(table, numerator, denominator, column: str) -> float:
    """How many times one row's value is another's: ``table.loc[numerator, column] / table.loc[denominator, column]``.

    ``table`` is a pandas DataFrame; rows are named by their index labels (tuples such as ``(16, "MLP")``
    for a MultiIndex). Chapter 4 compares architectures with it ("the MLP's error is 1.3 times the
    convolutional model's").
    """
    den = float(table.loc[denominator, column])
    if den == 0:
        raise ZeroDivisionError(f"{column!r} of {denominator!r} is 0: the ratio is undefined")
    return float(table.loc[numerator, column]) / den


def relative_spread(values) -> float:
    """How far apart positive values are: ``max / min - 1`` (0.05 = the largest is 5% above the smallest).

    Chapter 4 uses it to say how similar the errors of several architectures are, as one number.
    """
    v = np.asarray(list(values), dtype=float)  # (n,)
    if v.size == 0 or not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise ValueError(f"relative_spread needs finite positive values, got {v.tolist()}")
    return float(v.max() / v.min() - 1.0)
