"""Numbers the book reports, in one namespace (``from genvae import metrics``), gathered from the modules of
:mod:`genvae.analysis` that each hold one concern:

* :mod:`~genvae.analysis.splits`: the seeded subsets metrics are computed on;
* :mod:`~genvae.analysis.likelihood`: reconstruction error, the ELBO and the IWAE bound;
* :mod:`~genvae.analysis.codes`: the quality of a model's codes (kNN accuracy, silhouette, active units, collapse);
* :mod:`~genvae.analysis.judge`: the classifier that reads images (:class:`~genvae.analysis.judge.Judge`);
* :mod:`~genvae.analysis.samples`: generated images against real ones (Frechet distance, class entropy, sharpness,
  precision and recall, density and coverage, data copying);
* :mod:`~genvae.analysis.paths`: rules about paths in latent space;
* :mod:`~genvae.analysis.traces`: the trace of a network's Jacobian, exact and by Hutchinson's estimator.

Conventions: reconstruction MSE is per *pixel* (mean over pixels and images), the usual way to quote it;
likelihood bounds are per *image* in nats. The chapters' table glue (``latent_row``, ``ratio``,
``relative_spread``) is :mod:`genvae.book.tables`.
"""

from .splits import (
    test_split, test_subset, RECIPE_REFERENCE_SIZE, recipe_reference, disjoint_subsets,
)
from .likelihood import (
    reconstruction_mse, elbo, iwae_bound, code_gain, dequantize, diffusion_bits_per_dim, flow_bits_per_dim,
    flow_log_likelihood, gaussian_decoder_scale, vae_bits_per_dim,
)
from .codes import (
    latent_report, knn_accuracy, silhouette, active_units, is_collapsed, collapse_kind, class_separation,
)
from .judge import (
    accuracy, Judgement, Judge, confident_share,
)
from .samples import (
    frechet_distance, class_entropy, PUBLISHED_MNIST_FID, PUBLISHED_MNIST_FID_SD, PUBLISHED_MNIST_FID_SOURCE,
    effective_classes, samples_collapsed, generator_failure, saturation_step, sharpness, mean_pairwise_distance,
    sample_quality, SampleJudge, quality_by_cost, precision_recall, density_coverage, nearest_distances, copying_report,
)
from .paths import (
    off_path_rate, ClassChanges, class_changes, switches_once,
)
from .traces import (
    exact_jacobian_trace, hutchinson_trace,
)

__all__ = [
    "test_split", "test_subset", "RECIPE_REFERENCE_SIZE", "recipe_reference", "disjoint_subsets",
    "reconstruction_mse", "elbo", "iwae_bound", "code_gain", "dequantize", "diffusion_bits_per_dim", "flow_bits_per_dim", "flow_log_likelihood", "gaussian_decoder_scale", "vae_bits_per_dim", "latent_report", "knn_accuracy", "silhouette",
    "active_units", "is_collapsed", "collapse_kind", "class_separation", "accuracy", "Judgement", "Judge",
    "confident_share", "frechet_distance", "class_entropy", "PUBLISHED_MNIST_FID", "PUBLISHED_MNIST_FID_SD",
    "PUBLISHED_MNIST_FID_SOURCE", "effective_classes", "samples_collapsed", "generator_failure", "saturation_step",
    "sharpness", "mean_pairwise_distance", "sample_quality", "SampleJudge", "quality_by_cost", "off_path_rate", "ClassChanges",
    "class_changes", "switches_once", "precision_recall", "density_coverage", "nearest_distances", "copying_report",
    "exact_jacobian_trace", "hutchinson_trace",
]
