"""Storage: what is kept on disk, and how it is checked.

* :mod:`~genvae.storage.checkpoint`: a model as safetensors weights plus a JSON sidecar (never a pickle);
* :mod:`~genvae.storage.resume`: the state of an interrupted training, to go on from;
* :mod:`~genvae.storage.cache`: trained models, keyed by a hash of their configs (:func:`~genvae.storage.cache.load_or_train`);
* :mod:`~genvae.storage.evals`: evaluations kept beside a cached model (:func:`~genvae.storage.evals.cached_eval`);
* :mod:`~genvae.storage.cachedir`: ``genvae cache list | verify | prune``;
* :mod:`~genvae.storage.packs`: ``genvae cache export | import``, trained entries in one verified file;
* :mod:`~genvae.storage.reproducibility`: ``genvae reproduce --check``, retraining and comparing.

This layer sits above models and training and below the experiments: nothing here imports them.
"""
