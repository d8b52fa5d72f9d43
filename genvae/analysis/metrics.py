"""Numbers the book reports: reconstruction error, ELBO, IWAE bound, latent-space quality, transitions.

Conventions: reconstruction MSE here is per *pixel* (mean over pixels and
images), the usual way to quote it; likelihood bounds are per *image* in nats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..checks import check_codes, check_count, check_images, check_labels, check_same_length
from ..gaussian import gaussian_log_density
from ..models.losses import decoder_log_prob, gaussian_kl
from ..models.registry import is_conditional
from ..utils import batched, eval_mode, inference_batch, noise_generator

__all__ = [
    "test_split", "test_subset", "disjoint_subsets", "sample_quality", "latent_report", "reconstruction_mse", "elbo", "iwae_bound", "knn_accuracy", "silhouette",
    "active_units", "accuracy", "off_path_rate", "switches_once",
    "Judge", "Judgement", "frechet_distance", "class_entropy", "mean_pairwise_distance",
    "is_collapsed", "collapse_kind", "confident_share", "effective_classes", "samples_collapsed", "generator_failure", "saturation_step", "code_gain", "sharpness", "PUBLISHED_MNIST_FID",
    "PUBLISHED_MNIST_FID_SD", "PUBLISHED_MNIST_FID_SOURCE", "SampleJudge", "latent_row", "class_separation", "ratio", "relative_spread",
    "ClassChanges", "class_changes", "RECIPE_REFERENCE_SIZE", "recipe_reference",
]


def test_split(n: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two disjoint, seeded random choices of ``size`` indices out of ``range(n)``, each sorted.

    MNIST's test set is ordered by writer population (the first 5,000 digits
    differ from the last 5,000), so index *slices* are biased samples and two
    slices differ in more than chance; every subset the book evaluates on, and
    every real-against-real reference, comes from here instead.
    """
    if not 0 < 2 * size <= n:
        raise ValueError(f"two subsets of {size} do not fit in {n}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[:size].sort().values, perm[size:2 * size].sort().values


def test_subset(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """A seeded random choice of ``size`` of ``range(n)`` (sorted): the first part of :func:`test_split`."""
    if not 0 < size <= n:
        raise ValueError(f"size must be in [1, {n}], got {size}")
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:size].sort().values


RECIPE_REFERENCE_SIZE = 2000  # real test images the GAN recipe search scored samples against


def recipe_reference(n: int) -> torch.Tensor:
    """The test indices against which ``benchmarks/gan_recipes.py`` scored the candidate GAN recipes
    (:func:`test_subset` of :data:`RECIPE_REFERENCE_SIZE` with seed 0). A chapter that ranks the chosen
    recipe checks its own reference images against these, so a choice and its report need not share data."""
    return test_subset(n, RECIPE_REFERENCE_SIZE, seed=0)


def disjoint_subsets(n: int, k: int, seed: int = 0) -> list[torch.Tensor]:
    """``k`` disjoint, seeded random subsets of ``range(n)`` of ``n // k`` indices each (each sorted).

    A number measured once on each subset gives a spread over test subsets: a difference between two
    models that changes sign from one subset to another is within the noise of the test set.

        >>> [len(s) for s in disjoint_subsets(10, 3)]
        [3, 3, 3]
    """
    if not 0 < k <= n:
        raise ValueError(f"cannot split {n} indices into {k} non-empty subsets")
    size = n // k
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return [perm[i * size:(i + 1) * size].sort().values for i in range(k)]


@torch.no_grad()
def reconstruction_mse(model: nn.Module, x: torch.Tensor, batch_size: int | None = None,
                       y: torch.Tensor | None = None) -> float:
    """Mean squared error per pixel between images and their deterministic reconstructions
    (a class-conditional model is given the classes ``y``)."""
    conditional = is_conditional(model)
    if conditional and y is None:
        raise ValueError("a conditional model reconstructs with the class of every image: pass y")
    check_images(x, values=True)  # once, here: the batches then move to the model's device unchecked
    if conditional:
        check_labels(y, model.config.n_classes, batch=len(x), values=True)

    def squared_error(xb: torch.Tensor, *yb: torch.Tensor) -> torch.Tensor:  # one batch's sum, as (1,)
        return (model.reconstruct(xb, *yb) - xb).pow(2).sum().reshape(1)

    per_batch = batched(model, squared_error, *((x, y) if conditional else (x,)), batch_size=batch_size)
    total = 0.0
    for s in per_batch.tolist():  # in float64, batch after batch (Python 3.12's sum() would compensate)
        total += s
    return total / x.numel()


@torch.no_grad()
def elbo(model: nn.Module, x: torch.Tensor, recon: str = "mse", batch_size: int | None = None, seed: int = 0) -> dict[str, float]:
    """The ELBO of a VAE, per image in nats, split into its parts (one z sample per image).

    Returns ``{"recon_nll": E_q[-log p(x|z)], "kl": KL(q||p), "elbo": -(recon_nll + kl)}``.
    The z samples come from a generator on the model's device seeded with ``seed``.
    """
    _check_vae(model, "elbo")
    check_images(x, values=True)
    with eval_mode(model) as dev:
        g = noise_generator(seed, dev)
        nll = torch.zeros((), dtype=torch.float64, device=dev)
        kl = torch.zeros((), dtype=torch.float64, device=dev)
        for xb in x.split(batch_size or inference_batch(dev)):
            xb = xb.to(dev)
            out = model(xb, generator=g)
            nll -= decoder_log_prob(out.x_logits, xb, recon).sum()
            kl += gaussian_kl(out.mu, out.logvar) * len(xb)
    nll, kl, n = float(nll), float(kl), len(x)
    return {"recon_nll": nll / n, "kl": kl / n, "elbo": -(nll + kl) / n}


@torch.no_grad()
def iwae_bound(
    model: nn.Module, x: torch.Tensor, k: int = 1000, recon: str = "mse",
    batch_size: int = 500, max_codes: int = 16_384, seed: int = 0,
) -> float:
    """Importance-weighted lower bound on log p(x) (Burda et al., 2016), mean per image in nats.

    log p(x) >= E[log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x)], z_i ~ q(z|x).
    k = 1 gives the ELBO; the bound tightens as k grows. Runs where the model
    is: ``batch_size`` images at a time, decoding at most ``max_codes`` codes in
    one call (which bounds the memory), and summing on the device. The importance samples come from a
    generator on the model's device seeded with ``seed``.
    """
    _check_vae(model, "iwae_bound")
    check_images(x, values=True)
    k, batch_size, max_codes = check_count(k, "k"), check_count(batch_size, "batch_size"), check_count(max_codes, "max_codes")
    with eval_mode(model) as dev:
        g = noise_generator(seed, dev)
        total = torch.zeros((), dtype=torch.float64, device=dev)
        for xb in x.split(batch_size):
            xb = xb.to(dev)
            mu, logvar = model.encode(xb)  # (B, D)
            std = torch.exp(0.5 * logvar)
            chunk = max(1, min(k, max_codes // len(xb)))  # importance samples per decoder call
            log_w = []
            for start in range(0, k, chunk):
                eps = torch.randn(min(chunk, k - start), *mu.shape, generator=g, device=dev)  # (S, B, D)
                z = mu + std * eps
                x_logits = model.decode(z.flatten(0, 1)).unflatten(0, z.shape[:2])  # (S, B, 1, 28, 28)
                log_px = decoder_log_prob(x_logits, xb, recon)  # (S, B), x broadcast, not copied
                log_pz = gaussian_log_density(z)  # the prior N(0, I)
                log_qz = gaussian_log_density(eps, logvar=logvar, standardised=True)  # q(z|x) at z = mu + std * eps
                log_w.append(log_px + log_pz - log_qz)
            total += (torch.logsumexp(torch.cat(log_w), 0) - math.log(k)).sum()
    return float(total) / len(x)


def _check_vae(model: nn.Module, what: str) -> None:
    """A likelihood bound needs q(z|x): a model with ``encode`` giving (mu, logvar) and no labels."""
    if not hasattr(model, "encode") or is_conditional(model):
        raise ValueError(f"{what} needs a VAE (a model with encode(x) -> mu, logvar), got {type(model).__name__}")


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


def accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    """Share of correct predictions; ``pred`` holds class indices ``(N,)`` or scores ``(N, K)``."""
    if pred.dim() not in (1, 2) or y.dim() != 1 or len(pred) != len(y):
        raise ValueError(f"expected predictions (N,) or scores (N, K) and labels (N,), got {tuple(pred.shape)} "
                         f"and {tuple(y.shape)}")
    if pred.dim() == 2:
        pred = pred.argmax(1)
    return float((pred == y).double().mean())


def off_path_rate(
    pred: torch.Tensor,
    a: int,
    b: int,
    confidence: torch.Tensor | None = None,
    min_confidence: float | None = None,
    interior: bool = False,
) -> float:
    """Share of a path's frames judged as a third class, neither ``a`` nor ``b``.

    ``pred``: ``(F,)`` predicted classes along one path (or ``(P, F)`` for several paths of the same pair).
    With ``interior`` the first and last frame are left out: on a path between class centroids they decode
    c(a) and c(b) themselves, whose verdicts are the endpoint accuracy, not a detour. With
    ``min_confidence`` a frame counts only if the judge's top probability ``confidence`` (same shape as
    ``pred``) is above it, so a frame the judge merely leans towards a third class is not counted.
    """
    off = (pred != a) & (pred != b)  # (..., F)
    if min_confidence is not None:
        if confidence is None:
            raise ValueError("min_confidence needs the judge's confidence of every frame")
        if confidence.shape != pred.shape:
            raise ValueError(f"confidence must have the shape of pred, {tuple(pred.shape)}, got {tuple(confidence.shape)}")
        off = off & (confidence > min_confidence)
    if interior:
        if off.shape[-1] < 3:
            raise ValueError(f"a path needs at least 3 frames to have an interior, got {off.shape[-1]}")
        off = off[..., 1:-1]
    return float(off.double().mean())


@dataclass(frozen=True)
class ClassChanges:
    """How often a model's output is judged another class than its input (see :func:`class_changes`)."""

    read_right: int  # inputs the judge assigns to their own label: the ones that count
    changed: int  # of those, outputs the judge assigns to another class
    top_pair: tuple[int, int] | None  # the commonest change (input class, output class); None without changes
    top_pair_count: int

    @property
    def rate(self) -> float:
        """``changed / read_right``: the share of correctly judged inputs that come back as another class."""
        return self.changed / self.read_right if self.read_right else float("nan")


def class_changes(classifier: nn.Module | Judge, inputs: torch.Tensor, outputs: torch.Tensor, labels: torch.Tensor,
                  batch_size: int | None = None) -> ClassChanges:
    """Count the outputs (e.g. reconstructions) that the judge assigns to another class than their inputs.

    Only inputs that the judge itself reads as their label count: a misjudged input would otherwise be
    charged to the model. ``inputs`` and ``outputs`` are images ``(N, 1, 28, 28)`` in the same order,
    ``labels`` ``(N,)``.
    """
    check_same_length(inputs=inputs, outputs=outputs, labels=labels)
    if inputs.shape != outputs.shape:
        raise ValueError(f"inputs and outputs must have one shape, got {tuple(inputs.shape)} and {tuple(outputs.shape)}")
    judge = Judge(classifier, batch_size)
    before, after = judge.predict(inputs), judge.predict(outputs)  # (N,) each
    right = before == labels.cpu()
    changed = right & (after != before)
    pairs = torch.stack([labels.cpu()[changed], after[changed]], 1).tolist()  # (changed, 2)
    top, count = None, 0
    if pairs:
        counts: dict[tuple[int, int], int] = {}
        for a, b in pairs:
            counts[(a, b)] = counts.get((a, b), 0) + 1
        top, count = max(sorted(counts.items()), key=lambda kv: kv[1])  # ties go to the smallest pair
    return ClassChanges(int(right.sum()), int(changed.sum()), top, count)


def switches_once(pred: torch.Tensor, a: int, b: int) -> bool:
    """True if the predicted classes along a path read a, ..., a, b, ..., b (exactly one switch)."""
    p = pred.tolist()
    changes = sum(1 for u, v in zip(p[:-1], p[1:]) if u != v)
    return p[0] == a and p[-1] == b and changes == 1


@dataclass
class Judgement:
    """What the classifier says about a set of images, from one pass over them."""

    probs: torch.Tensor  # (N, K) class probabilities
    features: torch.Tensor  # (N, F) penultimate-layer features

    @property
    def pred(self) -> torch.Tensor:
        return self.probs.argmax(1)

    @property
    def confidence(self) -> float:
        """Mean top-class probability."""
        return float(self.probs.max(1).values.mean())


class Judge:
    """The book's judge of images, a classifier trained on real images only, and the one place that runs it.

    Every pass of the classifier over a set of images goes through these methods, in batches of
    ``batch_size`` (:func:`genvae.utils.batched`: eval mode, no gradients, on the classifier's device,
    results on the CPU), after checking that the images are images ``(N, 1, 28, 28)`` in [0, 1]:

        >>> judge = Judge(experiments.classifier().load().model)  # doctest: +SKIP
        >>> judge.predict(model.sample(100, generator=g))  # doctest: +SKIP
        tensor([7, 1, ...])

    ``classifier``: a module whose output has ``.logits`` ``(B, K)`` and, for :meth:`features` and
    :meth:`judgement`, ``.features`` ``(B, F)`` (:class:`~genvae.models.classifier.Classifier`); a Judge
    works too (its classifier and, unless ``batch_size`` is given, its batch size are used). Functions that
    take "a judge" (:func:`class_changes`, :func:`genvae.book.transitions.class_transitions`, the explorer) accept
    either, through :meth:`of`.
    """

    def __init__(self, classifier: nn.Module | Judge, batch_size: int | None = None):
        if isinstance(classifier, Judge):
            batch_size = classifier.batch_size if batch_size is None else batch_size
            classifier = classifier.classifier
        self.classifier = classifier
        self.batch_size = batch_size  # images per pass; None: utils.inference_batch of the classifier's device

    @staticmethod
    def of(judge: nn.Module | Judge) -> Judge:
        """``judge`` itself if it is a :class:`Judge`, else a Judge of the classifier ``judge``."""
        return judge if isinstance(judge, Judge) else Judge(judge)

    def _pass(self, call, x: torch.Tensor):
        check_images(x, values=True)  # once, here: the batches then move to the classifier's device unchecked
        return batched(self.classifier, call, x, batch_size=self.batch_size)

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(N, K)`` of images ``(N, 1, 28, 28)``: the softmax of the logits."""
        return self._pass(lambda xb: torch.softmax(self.classifier(xb).logits, 1), x)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """The judge's class for each image, ``(N,)`` int64: the argmax of :meth:`predict_proba`."""
        return self.predict_proba(x).argmax(1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer features ``(N, F)`` of images ``(N, 1, 28, 28)``."""
        return self._pass(lambda xb: self.classifier(xb).features, x)

    def judgement(self, x: torch.Tensor) -> Judgement:
        """Class probabilities and features of images ``(N, 1, 28, 28)``, from one pass over them."""
        def read(xb: torch.Tensor) -> Judgement:
            out = self.classifier(xb)
            return Judgement(torch.softmax(out.logits, 1), out.features)

        return self._pass(read, x)


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


@torch.no_grad()
def code_gain(model: nn.Module, x: torch.Tensor, recon: str = "mse") -> dict[str, float]:
    """What a VAE's or VAE-GAN's code buys, per image of ``x``, in the reconstruction term it trains on.

    The term is computed twice: with every image decoded from its posterior mean, and with every image
    decoded from z = 0, the prior's mean, which says nothing about the image. Their difference, ``"gain"``,
    is what the code's information lowers the term by; ``"kl"`` is what the encoder pays for it (nats per
    image, the closed form at its posterior), and ``"gain per nat"`` their ratio. A VAE's term is its
    pixel reconstruction loss (``recon``, summed over pixels); a VAE-GAN's is the feature reconstruction
    loss in its discriminator's features (:func:`genvae.models.losses.feature_reconstruction_loss`). At the same
    beta, a term that drops more per nat of code makes more code units worth their KL.
    """
    from ..models.losses import feature_reconstruction_loss, reconstruction_loss

    check_images(x, values=True)
    with eval_mode(model) as dev:
        with_code, without, kl = [], [], []
        for xb in x.split(inference_batch(dev)):
            xb = xb.to(dev)
            mu, logvar = model.encode(xb)
            kl.append(float(gaussian_kl(mu, logvar)) * len(xb))
            logits_code, logits_none = model.decode(mu), model.decode(torch.zeros_like(mu))
            if getattr(model.config, "kind", "") == "vaegan":
                target = model.discriminate(xb).features
                term = lambda logits: feature_reconstruction_loss(model.discriminate(torch.sigmoid(logits)).features, target)
            else:
                term = lambda logits: reconstruction_loss(logits, xb, recon)
            with_code.append(float(term(logits_code)) * len(xb))
            without.append(float(term(logits_none)) * len(xb))
    n = len(x)
    w, wo, k = sum(with_code) / n, sum(without) / n, sum(kl) / n
    return {"without code": wo, "with code": w, "gain": wo - w, "kl": k, "gain per nat": (wo - w) / k if k > 0 else math.inf}


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



def confident_share(judged: Judgement, threshold: float = 0.5) -> float:
    """Share of images whose top class gets probability above ``threshold``: how many the judge reads as
    one clear digit (with 10 classes, p > 0.5 means one class outweighs all the others together)."""
    return float((judged.probs.max(1).values > threshold).double().mean())



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
        from ..storage.cache import cached_eval  # the cache imports the trainer, which imports this module

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

