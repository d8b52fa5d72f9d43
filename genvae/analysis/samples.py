"""The quality of generated images against real ones, as the judge sees them: Frechet distance, class entropy,
collapse, sharpness, and the published MNIST FIDs the book compares with; on k-nearest-neighbour balls of
feature vectors, precision and recall, density and coverage; and whether samples copy the training set
(nearest-neighbour distances of samples against those of test images)."""

from __future__ import annotations

import math

import torch
from torch import nn

from ..checks import check_codes, check_count, check_images, check_labels
from .judge import Judge, Judgement


def frechet_distance(feats_a: torch.Tensor, feats_b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets ``(N, F)`` (as in FID).

    ||m_a - m_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^{1/2}). Zero for identical
    statistics; grows as either the mean or the spread of the sets differ. The
    trace of the matrix square root is computed as the sum of the square roots of
    the eigenvalues of the symmetric S_a^{1/2} S_b S_a^{1/2} (the same number, and
    stable where S_a S_b is singular, which ``scipy.linalg.sqrtm`` warns about).
    """
    a, b = torch.as_tensor(feats_a, dtype=torch.float64), torch.as_tensor(feats_b, dtype=torch.float64)
    if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"expected two feature sets (N, F) of one width F, at least 2 rows each, got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    f = a.shape[1]
    cov_a, cov_b = torch.cov(a.T).reshape(f, f), torch.cov(b.T).reshape(f, f)  # (F, F), also for F = 1
    vals, vecs = torch.linalg.eigh(cov_a)
    sqrt_a = (vecs * vals.clamp(min=0).sqrt()) @ vecs.T
    tr_covmean = torch.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a).clamp(min=0).sqrt().sum()
    return float((mu_a - mu_b).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * tr_covmean)


def class_entropy(pred: torch.Tensor, n_classes: int = 10) -> float:
    """Entropy in nats of the histogram of predicted classes (log K = every class equally often)."""
    if pred.dim() == 2:
        pred = pred.argmax(1)
    check_labels(pred, n_classes, values=True, name="predicted classes")
    p = torch.bincount(pred, minlength=n_classes).double() / len(pred)
    p = p[p > 0]
    return max(0.0, float(-(p * p.log()).sum()))  # one class gives -0.0, shown as "-0.000"


# Published FIDs on MNIST (Inception-v3 features), as tabulated by Dai & Wipf (2019), "Diagnosing and enhancing
# VAE models", Table 1 (mean and standard deviation over runs). The NS-GAN row is Lucic et al. (2018)'s best FID
# after a large hyperparameter search per data set; the VAE row is Dai & Wipf's own VAE with a cross-entropy loss
# and default settings, no search, on the same neutral architecture. Cited beside the book's own
# classifier-feature distances, never mixed with them.
PUBLISHED_MNIST_FID = {"NS-GAN": 6.8, "VAE": 16.6}


PUBLISHED_MNIST_FID_SD = {"NS-GAN": 0.5, "VAE": 0.4}


PUBLISHED_MNIST_FID_SOURCE = "Table 1"


def effective_classes(pred: torch.Tensor, n_classes: int = 10) -> float:
    """exp(class entropy): the number of equally frequent classes with the same entropy as the histogram of
    predicted classes. 10 when every class is as common as every other; 1 when one class is all there is."""
    return math.exp(class_entropy(pred, n_classes))


def samples_collapsed(quality: dict[str, float], min_classes: float = 5.0) -> bool:
    """True if a set of samples covers fewer than ``min_classes`` effective classes (:func:`effective_classes`,
    from the ``"class entropy (nats)"`` of :func:`sample_quality`): the generator has lost most modes.

    The threshold sits between what the book measured: healthy GANs of chapter 9 at 8 to 9.7
    effective classes, collapsed ones at 1.0 to 2.4 (a sweep of learning rates and seeds)."""
    return math.exp(quality["class entropy (nats)"]) < min_classes


def generator_failure(quality: dict[str, float], real_quality: dict[str, float], min_classes: float = 5.0,
                      min_confidence_share: float = 0.5) -> str:
    """What a set of generated samples says about its generator: ``"healthy"``, ``"mode collapse"`` or
    ``"never learned"``.

    Few effective classes (:func:`samples_collapsed`) has two causes that need different fixes. A generator
    in *mode collapse* draws images the judge recognises (its confidence is at least
    ``min_confidence_share`` of its confidence on real images) but from few classes. A generator that
    *never learned* draws images the judge cannot place (confidence below that share): the narrow class
    histogram then only says where the judge puts images that look like no class at all.
    ``quality`` and ``real_quality`` are :func:`sample_quality` results (samples, real test images).

        >>> real = {"confidence": 0.9, "class entropy (nats)": 2.3}
        >>> generator_failure({"confidence": 0.85, "class entropy (nats)": 0.2}, real)
        'mode collapse'
        >>> generator_failure({"confidence": 0.3, "class entropy (nats)": 0.2}, real)
        'never learned'
    """
    if not samples_collapsed(quality, min_classes):
        return "healthy"
    if quality["confidence"] >= min_confidence_share * real_quality["confidence"]:
        return "mode collapse"
    return "never learned"


def saturation_step(d_curve, threshold: float = 0.01) -> int | None:
    """The first training step from which the discriminator's loss stays below ``threshold`` to the end of
    ``d_curve`` (one loss per step), or ``None`` when it never settles there. From that step on the
    discriminator rejects every generated image, D(G(z)) is close to 0, and the minimax generator loss,
    whose gradient per image is D(G(z)), no longer moves the generator.

        >>> saturation_step([1.3, 0.5, 0.004, 0.2, 0.003, 0.001])
        4
        >>> saturation_step([1.3, 1.2]) is None
        True
    """
    values = [float(v) for v in d_curve]
    step = None
    for i in range(len(values) - 1, -1, -1):
        if values[i] >= threshold:
            break
        step = i
    return step


def sharpness(images: torch.Tensor) -> float:
    """Mean squared response of the 3x3 Laplacian over images ``(N, 1, 28, 28)``: the energy of their fine
    detail. A blurred image has less of it; pixel noise has more. Compare with real images, not with 0."""
    check_images(images, size=None, values=False)  # any size of at least 3x3; values compared with real images
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
    lap = torch.nn.functional.conv2d(images.detach().cpu().float(), kernel)  # (N, 1, 26, 26): interior pixels
    return float(lap.pow(2).mean())


def mean_pairwise_distance(feats: torch.Tensor, n_pairs: int = 20_000, seed: int = 0) -> float:
    """Mean Euclidean distance between random pairs of distinct rows of ``feats`` (a diversity measure)."""
    g = torch.Generator().manual_seed(seed)
    n = len(feats)
    if n < 2:
        raise ValueError(f"pairs of distinct rows need at least 2 rows, got {n}")
    i = torch.randint(n, (n_pairs,), generator=g)
    j = (i + torch.randint(1, n, (n_pairs,), generator=g)) % n  # never the same row
    return float((feats[i] - feats[j]).norm(dim=1).mean())


def sample_quality(judged: Judgement, reference: torch.Tensor) -> dict[str, float]:
    """The numbers the book reports for a set of images, from one pass of the judge over them.

    ``reference``: the judge's features of real test digits (another random
    subset than any judged real digits, see :func:`test_split`). The Frechet
    distance uses the judge's own features, so it is *not* comparable with
    published FIDs, which use Inception-v3 features of natural images.
    """
    return {
        "confidence": judged.confidence,
        "Frechet distance": frechet_distance(judged.features, reference),
        "class entropy (nats)": class_entropy(judged.probs),
        "pairwise feature distance": mean_pairwise_distance(judged.features),
    }


class SampleJudge(Judge):
    """The judge with a fixed reference set of real digits: calling it on images gives :func:`sample_quality`.

    The book compares many image sets (real digits, samples, reconstructions) with the same real
    reference; this keeps the classifier and the reference's features together, so that every set is
    judged the same way, in one pass of the classifier over it. It is a :class:`Judge`, so its
    :meth:`~Judge.predict`, :meth:`~Judge.judgement`... read images as any judge does.

        >>> score = SampleJudge(classifier, mnist.x_test[idx_ref])  # doctest: +SKIP
        >>> score(model.sample(1000, generator=g))["Frechet distance"]  # doctest: +SKIP
    """

    def __init__(self, classifier: nn.Module | Judge, reference_images: torch.Tensor, batch_size: int | None = None):
        super().__init__(classifier, batch_size)
        self.reference = self.judgement(reference_images).features  # (N_ref, F)

    @property
    def feature_dim(self) -> int:
        """F, the size of the judge's feature vector (the Frechet distance's Gaussians live in R^F)."""
        return self.reference.shape[1]

    def __call__(self, images: torch.Tensor) -> dict[str, float]:
        """:func:`sample_quality` of images ``(N, 1, 28, 28)`` against the reference."""
        return sample_quality(self.judgement(images), self.reference)


def quality_by_cost(model: nn.Module, classifier: nn.Module, reference: torch.Tensor, settings: list[dict],
                    n: int, seed: int = 0) -> list[dict[str, float]]:
    """:func:`sample_quality` of ``n`` samples ``model.sample(n, generator, **kwargs)`` for each ``kwargs`` in
    ``settings`` (``[{"steps": 10}, {"steps": 25, "solver": "heun"}]``...), judged by ``classifier`` against the
    real ``reference`` images. Every setting starts from the same noise (``seed``), so the rows differ by the
    sampler alone. Costly (``n`` samples per setting); chapters keep it with the model through
    :func:`genvae.storage.evals.cached_eval`."""
    if not settings or not all(isinstance(k, dict) for k in settings):
        raise ValueError(f"settings must be a non-empty list of keyword dicts for model.sample, got {settings!r}")
    judge = SampleJudge(classifier, reference)
    return [judge(model.sample(n, generator=torch.Generator().manual_seed(seed), **kwargs)) for kwargs in settings]


# --- Precision, recall, density and coverage on k-nearest-neighbour balls ------------------------------------
# Distances between feature sets of 10,000 rows do not fit in memory at once (10,000 x 10,000 float64 is 800 MB),
# so every pass over pairs goes in blocks of rows of at most _BLOCK_ELEMENTS distances: 2 million, 16 MiB in
# float64, and about 160 MB at the peak with what cdist and kthvalue make of a block (measured at 10,000 x 10,000,
# F = 64; twice the block was no faster on one core).
_BLOCK_ELEMENTS = 1 << 21


def _rows_per_block(n_cols: int) -> int:
    return max(1, _BLOCK_ELEMENTS // max(1, n_cols))


def _feature_sets(real, fake, k: int, *, fake_k: bool) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Both sets as float64 CPU tensors ``(N, F)`` and ``(M, F)`` after checking them, and k as an int."""
    k = check_count(k, "k")
    check_codes(real, name="real features")
    check_codes(fake, real.shape[1], name="fake features")
    for name, t, need_k in (("real", real, True), ("fake", fake, fake_k)):
        if need_k and len(t) <= k:
            raise ValueError(f"k = {k} neighbours (not counting the point itself) need at least {k + 1} {name} "
                             f"feature vectors, got {len(t)}")
        if not len(t):
            raise ValueError(f"no {name} feature vectors (got shape {tuple(t.shape)})")
    real64, fake64 = (t.detach().to("cpu", torch.float64) for t in (real, fake))
    for name, t in (("real", real64), ("fake", fake64)):
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} features contain NaN or infinite values")
    return real64, fake64, k


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances ``(len(a), len(b))``, each from the difference of its two rows: every pair gets one
    value, the same in either order and in any block, and a point is at distance exactly 0 from itself, so
    that whether a point lies on a ball's boundary never depends on how the pass was cut into blocks. (The
    matrix-product form is faster but rounds d(a, b) and d(b, a) differently and puts a point slightly off
    itself, about 1e-6 for 784 pixels in float64.)"""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def _knn_radii(feats: torch.Tensor, k: int) -> torch.Tensor:
    """Distance of each row of ``feats (N, F)`` to its k-th nearest *other* row ``(N,)``: the point itself is
    left out by its index, so a duplicate of it elsewhere in the set counts as a neighbour at distance 0."""
    n = len(feats)
    radii = torch.empty(n, dtype=torch.float64)
    rows = _rows_per_block(n)
    for start in range(0, n, rows):
        d = _distances(feats[start:start + rows], feats)  # (b, N)
        idx = torch.arange(len(d))
        d[idx, start + idx] = math.inf  # not its own neighbour
        radii[start:start + len(d)] = d.kthvalue(k, dim=1).values
    return radii


def _ball_pass(real: torch.Tensor, fake: torch.Tensor, real_radii: torch.Tensor, fake_radii: torch.Tensor | None):
    """One pass over the real-fake distances, in blocks of real rows. Returns ``(balls, covered, recalled)``:
    ``balls (M,)``, the number of real balls each fake lies in; ``covered (N,)``, whether a fake lies in a
    real's own ball; ``recalled (N,)``, whether a real lies in some fake's ball (``None`` without fake radii).
    Balls are closed: a point at exactly the radius is inside."""
    balls = torch.zeros(len(fake), dtype=torch.long)
    covered = torch.zeros(len(real), dtype=torch.bool)
    recalled = None if fake_radii is None else torch.zeros(len(real), dtype=torch.bool)
    rows = _rows_per_block(len(fake))
    for start in range(0, len(real), rows):
        d = _distances(real[start:start + rows], fake)  # (b, M)
        stop = start + len(d)
        inside = d <= real_radii[start:stop, None]  # (b, M): fake j in real i's ball
        balls += inside.sum(0)
        covered[start:stop] = inside.any(1)
        if recalled is not None:
            recalled[start:stop] = (d <= fake_radii[None, :]).any(1)  # real i in some fake's ball
    return balls, covered, recalled


def precision_recall(real_feats: torch.Tensor, fake_feats: torch.Tensor, k: int = 3) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al., 2019) of generated features against real ones.

    Each real feature vector gets a ball reaching to its k-th nearest other real vector; the union of the
    real balls estimates the support of the real distribution, and the union of the fake balls that of the
    generated one. *Precision*: the share of fake vectors inside the real union (are the samples realistic?).
    *Recall*: the share of real vectors inside the fake union (is all of the real data produced?). Balls are
    closed (``<=``, as in the paper's definition), and a point is never its own neighbour.

    ``real_feats (N, F)``, ``fake_feats (M, F)``, with ``k < N`` and ``k < M``. Distances are Euclidean,
    computed on the CPU in float64 and in blocks of 2 million pairs, so 10,000 x 10,000 sets fit in memory
    (about 160 MB beyond the data); the time grows as ``(N + M)^2 F``: 14 s for 10,000 x 10,000 with
    F = 64 on one core. Meant for features (the judge's) more than pixels.

        >>> x = torch.randn(200, 8, generator=torch.Generator().manual_seed(0))
        >>> precision_recall(x, x)
        {'precision': 1.0, 'recall': 1.0}
        >>> precision_recall(x, x + 100)
        {'precision': 0.0, 'recall': 0.0}
    """
    real, fake, k = _feature_sets(real_feats, fake_feats, k, fake_k=True)
    balls, _, recalled = _ball_pass(real, fake, _knn_radii(real, k), _knn_radii(fake, k))
    return {"precision": int((balls > 0).sum()) / len(fake), "recall": int(recalled.sum()) / len(real)}


def density_coverage(real_feats: torch.Tensor, fake_feats: torch.Tensor, k: int = 5) -> dict[str, float]:
    """Density and coverage (Naeem et al., 2020) of generated features against real ones, on the real
    vectors' k-nearest-neighbour balls only (closed, a point not its own neighbour, as in
    :func:`precision_recall`), which makes them less sensitive than precision and recall to outliers.

    *Density*: the number of real balls each fake vector lies in, divided by k and averaged over the fakes.
    Its expectation is 1 when the fakes are drawn from the real distribution; it exceeds 1 where fakes crowd
    where real data is dense, and it is not capped at 1. A set measured against itself gets exactly
    (k + 1) / k (each ball holds its centre and its k neighbours). *Coverage*: the share of real vectors
    whose own ball holds at least one fake vector (1 for identical sets; about 1 - e^-k for fakes drawn like
    the reals, N = M).

    The authors' code (``prdc``) compares with ``<``: on continuous features the two agree; on a set against
    itself open balls give density 1, and on discrete features (many points exactly on a boundary) they can
    miss every point, which is why closed balls are used here.

    ``real_feats (N, F)`` with ``k < N``, ``fake_feats (M, F)``; distances as in :func:`precision_recall`.
    """
    real, fake, k = _feature_sets(real_feats, fake_feats, k, fake_k=False)
    balls, covered, _ = _ball_pass(real, fake, _knn_radii(real, k), None)
    return {"density": int(balls.sum()) / (k * len(fake)), "coverage": int(covered.sum()) / len(real)}


# --- Data copying: are samples closer to the training set than new real images are? ---------------------------

def _flat_sets(**sets) -> dict[str, torch.Tensor]:
    """Each set ``(n, ...)`` as float64 CPU rows ``(n, D)``, after checking that all have one item shape."""
    (first, ref), *_ = sets.items()
    out = {}
    for name, t in sets.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"expected {name} as a torch.Tensor of shape (n, ...), got {type(t).__name__}")
        if not t.dtype.is_floating_point:
            raise TypeError(f"expected floating-point {name}, got {t.dtype}; convert with x.float()")
        if t.dim() < 2:
            raise ValueError(f"expected {name} as a batch (n, ...) of images or feature vectors, got {tuple(t.shape)}")
        if t.shape[1:] != ref.shape[1:]:
            raise ValueError(f"{first} and {name} must hold items of one shape, got {tuple(ref.shape[1:])} and "
                             f"{tuple(t.shape[1:])}")
        if not len(t):
            raise ValueError(f"no {name} (got shape {tuple(t.shape)})")
        flat = t.detach().to("cpu", torch.float64).reshape(len(t), -1)
        if not bool(torch.isfinite(flat).all()):
            raise ValueError(f"{name} contain NaN or infinite values")
        out[name] = flat
    return out


def _nearest(queries: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Distance of each row of ``queries (M, D)`` to its nearest row of ``reference (N, D)``, float64 ``(M,)``.

    The nearest row is found with the matrix-product form |q|^2 + |r|^2 - 2 q.r (fast in high dimension; its
    rounding, about 1e-16 of the squared norms, can only swap two neighbours that tie to that precision), and
    its distance is then computed from the difference, so an exact copy is at distance 0."""
    ref_sq = reference.pow(2).sum(1)  # (N,)
    out = torch.empty(len(queries), dtype=torch.float64)
    rows = _rows_per_block(len(reference))
    for start in range(0, len(queries), rows):
        q = queries[start:start + rows]  # (b, D)
        d2 = ref_sq[None, :] - 2 * (q @ reference.T)  # (b, N): squared distances less |q|^2, the same along a row
        nearest = d2.argmin(1)  # (b,)
        out[start:start + len(q)] = (q - reference[nearest]).pow(2).sum(1).sqrt()
    return out


def nearest_distances(queries: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Euclidean distance from each item of ``queries (M, ...)`` to its nearest item of ``reference (N, ...)``,
    ``(M,)`` in float64: images ``(n, 1, 28, 28)`` are compared as flat pixel vectors, feature vectors
    ``(n, F)`` as they are. Computed on the CPU in blocks, so 10,000 samples against 60,000 training images
    fit in memory. The building block of :func:`copying_report`."""
    sets = _flat_sets(queries=queries, reference=reference)
    return _nearest(sets["queries"], sets["reference"])


def copying_report(samples: torch.Tensor, train: torch.Tensor, test: torch.Tensor,
                   quantile: float = 0.05) -> dict[str, float]:
    """Does a generator copy its training set? Its samples' distances to the nearest training image against
    those of real *test* images, which the model never saw (a simplified form of the data-copying test of
    Meehan et al., 2020).

    For every sample, d_s = its distance to the nearest training item; for every test item, d_t likewise
    (:func:`nearest_distances`; pixels, flattened, for images, or whatever features are passed: all three
    sets must have one item shape). A model that generalises draws samples as far from the training set as
    new real data is: the ratio of the medians is about 1, and about ``quantile`` of the samples are closer
    than the ``quantile``-quantile of d_t. A model that copies training images puts its samples nearer:
    ratio towards 0, share towards 1. A ratio well above 1 says the samples are far from every real
    image (poor samples), not that they are original. Returns

    * ``"sample median distance"``: the median of d_s;
    * ``"test median distance"``: the median of d_t;
    * ``"median ratio"``: their ratio (NaN if the test median is 0: test images that are in the training set);
    * ``"threshold distance"``: the ``quantile``-quantile of d_t (linear interpolation, as ``torch.quantile``);
    * ``"share below threshold"``: the share of samples with d_s strictly below it.

    ``samples (M, ...)``, ``train (N, ...)``, ``test (K, ...)``, none of them empty; ``0 < quantile < 1``.
    """
    if not isinstance(quantile, (int, float)) or isinstance(quantile, bool) or not 0 < quantile < 1:
        raise ValueError(f"quantile must be a number strictly between 0 and 1, got {quantile!r}")
    sets = _flat_sets(samples=samples, train=train, test=test)
    d_s = _nearest(sets["samples"], sets["train"])  # (M,)
    d_t = _nearest(sets["test"], sets["train"])  # (K,)
    med_s, med_t = float(d_s.quantile(0.5)), float(d_t.quantile(0.5))
    threshold = float(d_t.quantile(quantile))
    return {
        "sample median distance": med_s,
        "test median distance": med_t,
        "median ratio": med_s / med_t if med_t > 0 else math.nan,
        "threshold distance": threshold,
        "share below threshold": int((d_s < threshold).sum()) / len(d_s),
    }
