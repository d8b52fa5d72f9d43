"""The quality of a model's codes: the latent report (kNN accuracy, silhouette, active units), collapse, class separation."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..checks import check_codes, check_count, check_same_length
from ..utils import eval_mode
from .judge import accuracy
from .likelihood import reconstruction_mse


@torch.no_grad()
def latent_report(model: nn.Module, dataset: str = "mnist", knn_k: int = 5) -> dict[str, float]:
    """What a model's codes do on a data set's test images, in one dict.

    ``recon MSE`` (per pixel), ``kNN accuracy`` (a k-NN classifier fit on the
    training codes, scored on the test codes), ``silhouette`` of the test codes by
    class; for VAEs ``active units``, for the multi-stage VAE ``head accuracy``
    (its classifier head on the test codes). Costs a pass over the training set;
    chapters keep it with the model through :func:`genvae.storage.evals.cached_eval`.
    """
    from .. import data as gdata
    from .latent import encode

    d = gdata.load(dataset)
    z_train, z_test = encode(model, d.x_train), encode(model, d.x_test)
    report = {
        "recon MSE": reconstruction_mse(model, d.x_test),
        "kNN accuracy": knn_accuracy(z_train, d.y_train, z_test, d.y_test, k=knn_k),
        "silhouette": silhouette(z_test, d.y_test),
    }
    if hasattr(model, "encode"):  # a VAE: how many dimensions of the code carry information
        report["active units"] = active_units(z_test)
    if hasattr(model, "classify"):
        with eval_mode(model) as dev:
            report["head accuracy"] = accuracy(model.classify(z_test.to(dev)).cpu(), d.y_test)
    return report


def knn_accuracy(
    z_train: torch.Tensor, y_train: torch.Tensor, z_test: torch.Tensor, y_test: torch.Tensor, k: int = 5
) -> float:
    """Accuracy of a k-nearest-neighbour classifier in latent space (fit on train, score on test)."""
    from sklearn.neighbors import KNeighborsClassifier  # sklearn takes a second to import

    check_same_length(z_train=z_train, y_train=y_train)
    check_same_length(z_test=z_test, y_test=y_test)
    k = check_count(k, "k")
    if k > len(z_train):
        raise ValueError(f"k = {k} neighbours, but only {len(z_train)} training codes")

    knn = KNeighborsClassifier(n_neighbors=k).fit(np.asarray(z_train), np.asarray(y_train))
    return float(knn.score(np.asarray(z_test), np.asarray(y_test)))


def silhouette(z: torch.Tensor, y: torch.Tensor, sample_size: int | None = 5000, seed: int = 0) -> float:
    """Mean silhouette coefficient of the class clusters, in [-1, 1] (higher = better separated)."""
    from sklearn.metrics import silhouette_score

    check_same_length(z=z, y=y)
    n = len(z)
    size = None if sample_size is None or sample_size >= n else sample_size
    return float(silhouette_score(np.asarray(z), np.asarray(y), sample_size=size, random_state=seed))


def active_units(mu: torch.Tensor, threshold: float = 0.01) -> int:
    """Latent dimensions whose posterior mean varies across the data (Cov_x[E_q z] > threshold)."""
    check_codes(mu, name="posterior means mu")
    if len(mu) < 2:
        raise ValueError(f"a variance needs at least 2 codes, got {len(mu)}")
    return int((mu.var(0) > threshold).sum())


def is_collapsed(report_or_active: dict | int) -> bool:
    """True if a VAE's code carries no information: 0 active units (:func:`active_units`).

    Takes the count itself or a :func:`latent_report` dict. A collapsed model's decoder ignores z (every
    q(z|x) sits on the prior), so its samples and reconstructions are one average image, and the book
    keeps it out of "which model wins" comparisons or marks it there.
    """
    active = report_or_active["active units"] if isinstance(report_or_active, dict) else report_or_active
    return int(active) == 0


def collapse_kind(active: int, dim: int) -> str:
    """How far a VAE with ``active`` of ``dim`` active units has collapsed, in words for a sentence or a table.

    No active unit: "complete collapse" (:func:`is_collapsed`). Some but not all: "partial collapse, k of d
    units unused", a VAE that works with a smaller code than it was given. All: "no collapse".

        >>> collapse_kind(8, 16)
        'partial collapse, 8 of 16 units unused'
    """
    active, dim = int(active), int(dim)
    if not 0 <= active <= dim:
        raise ValueError(f"active units must be between 0 and {dim}, got {active}")
    if active == 0:
        return "complete collapse"
    if active < dim:
        return f"partial collapse, {dim - active} of {dim} units unused"
    return "no collapse"


def class_separation(z: torch.Tensor, y: torch.Tensor) -> float:
    """Mean distance between class centroids over mean distance of a code to its own centroid.

    ``z``: codes ``(N, D)``, ``y``: classes ``(N,)`` (0..K-1, each present). A ratio without units, so
    codes of different scales (a VAE's scale changes with beta) compare fairly; larger means classes
    far apart compared with their own spread. Looks at class averages only, unlike the kNN accuracy.
    """
    from .latent import centroids, distance_matrix

    c = centroids(z, y)  # (K, D)
    between = distance_matrix(c)[~torch.eye(len(c), dtype=torch.bool)].mean()  # over ordered pairs a != b
    within = (z - c[y]).norm(dim=1).mean()
    return float(between / within)
