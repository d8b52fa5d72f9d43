"""Which training recipe does each model family need? Seconds against the headline metric.

For every model family of the book this script trains a list of candidate
recipes (epochs, learning-rate schedule, batch size, widths, precision) with
genvae's own loop and measures, in the same run, the wall-clock training time
and the number the book reports for that family:

=============  ===============================================  ==================
family         headline metric                                  tolerance
=============  ===============================================  ==================
ae             test MSE per pixel of the 2-D MLP autoencoder    <= 0.0381
classifier     test accuracy of the CNN judge                   >= 0.99
multistage     latent 5-NN accuracy, beta = 1, gamma = 10       >= 0.95
bernoulli      IWAE bound on -log p(x), nats                    <= 92
conv           test MSE per pixel of the 2-D conv autoencoder   (no target; compared with the old recipe)
=============  ===============================================  ==================

Results are merged into ``benchmarks/recipes.json`` (one record per family and
recipe, with the machine and date), which ``benchmarks/run.py`` turns into the
recipe table of ``benchmarks/RESULTS.md``.

Run:  python benchmarks/recipes.py [--family ae classifier ...] [--only LABEL]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

import genvae
from genvae import latent, metrics
from genvae.models import ModelConfig
from genvae.train import TrainConfig, train_model

HERE = Path(__file__).resolve().parent
OUT = HERE / "recipes.json"

MLP = ModelConfig("ae", latent_dim=2)
MLP_NARROW = replace(MLP, hidden=(256, 128))
MS = ModelConfig("multistage", latent_dim=2)
BERN = ModelConfig("vae", latent_dim=50)
CLF = ModelConfig("classifier", channels=(32, 64), hidden=(128,))
CONV = ModelConfig("ae", arch="conv", latent_dim=2, channels=(32, 64), hidden=(256,))

OLD = TrainConfig(epochs=15)  # the recipe of the first edition: constant 1e-3, batch 128
ONE = TrainConfig(schedule="onecycle", lr=3e-3)


def _candidates() -> dict[str, list[tuple[str, ModelConfig, TrainConfig]]]:
    return {
        "ae": [
            ("15 ep, constant 1e-3, bs 128 (old)", MLP, OLD),
            ("5 ep, onecycle 3e-3, bs 128", MLP, replace(ONE, epochs=5)),
            ("5 ep, onecycle 3e-3, bs 256", MLP, replace(ONE, epochs=5, batch_size=256)),
            ("8 ep, onecycle 3e-3, bs 256", MLP, replace(ONE, epochs=8, batch_size=256)),
            ("8 ep, onecycle 3e-3, bs 256, bf16", MLP, replace(ONE, epochs=8, batch_size=256, precision="bf16")),
            ("6 ep, onecycle 3e-3, bs 128, bf16", MLP, replace(ONE, epochs=6, precision="bf16")),
            ("10 ep, onecycle 3e-3, bs 256, widths 256-128", MLP_NARROW, replace(ONE, epochs=10, batch_size=256)),
            ("5 ep, onecycle 3e-3, bs 128, bf16", MLP, replace(ONE, epochs=5, precision="bf16")),
            ("4 ep, onecycle 5e-3, bs 128, bf16", MLP, replace(ONE, epochs=4, lr=5e-3, precision="bf16")),
            ("8 ep, onecycle 3e-3, bs 128, widths 256-128, bf16", MLP_NARROW, replace(ONE, epochs=8, precision="bf16")),
        ],
        "multistage": [
            ("15 ep, constant 1e-3, bs 128 (old)", MS, replace(OLD, gamma=10.0)),
            ("5 ep, onecycle 3e-3, bs 128", MS, replace(ONE, epochs=5, gamma=10.0)),
            ("6 ep, onecycle 3e-3, bs 128, bf16", MS, replace(ONE, epochs=6, gamma=10.0, precision="bf16")),
            ("5 ep, onecycle 3e-3, bs 128, bf16", MS, replace(ONE, epochs=5, gamma=10.0, precision="bf16")),
            ("4 ep, onecycle 3e-3, bs 128, bf16", MS, replace(ONE, epochs=4, gamma=10.0, precision="bf16")),
            ("4 ep, onecycle 5e-3, bs 128, bf16", MS, replace(ONE, epochs=4, lr=5e-3, gamma=10.0, precision="bf16")),
        ],
        "classifier": [
            ("8 ep, constant 1e-3, bs 128, 32/64/128 (old)", CLF, TrainConfig(epochs=8)),
            ("3 ep, onecycle 3e-3, bs 128, 16/32/128", replace(CLF, channels=(16, 32)), replace(ONE, epochs=3)),
            ("3 ep, onecycle 3e-3, bs 128, 16/32/128, bf16", replace(CLF, channels=(16, 32)),
             replace(ONE, epochs=3, precision="bf16")),
            ("3 ep, onecycle 3e-3, bs 128, 8/16/64", replace(CLF, channels=(8, 16), hidden=(64,)), replace(ONE, epochs=3)),
            ("2 ep, onecycle 3e-3, bs 128, 16/32/128", replace(CLF, channels=(16, 32)), replace(ONE, epochs=2)),
        ],
        "bernoulli": [
            ("30 ep, constant 1e-3, bs 128 (old)", BERN, TrainConfig(epochs=30, recon="bce", binarize=True)),
            ("10 ep, onecycle 3e-3, bs 128", BERN, replace(ONE, epochs=10, recon="bce", binarize=True)),
            ("15 ep, onecycle 3e-3, bs 128", BERN, replace(ONE, epochs=15, recon="bce", binarize=True)),
            ("12 ep, onecycle 3e-3, bs 128, bf16", BERN, replace(ONE, epochs=12, recon="bce", binarize=True,
                                                                 precision="bf16")),
            ("15 ep, onecycle 3e-3, bs 128, bf16", BERN, replace(ONE, epochs=15, recon="bce", binarize=True,
                                                                 precision="bf16")),
            ("12 ep, onecycle 5e-3, bs 128, bf16", BERN, replace(ONE, epochs=12, lr=5e-3, recon="bce", binarize=True,
                                                                 precision="bf16")),
            ("20 ep, onecycle 5e-3, bs 256, bf16", BERN, replace(ONE, epochs=20, lr=5e-3, batch_size=256, recon="bce",
                                                                 binarize=True, precision="bf16")),
        ],
        "conv": [
            ("8 ep, constant 1e-3, bs 128, 32/64/256 (old)", CONV, TrainConfig(epochs=8)),
            ("3 ep, onecycle 3e-3, bs 128, 32/64/256", CONV, replace(ONE, epochs=3)),
            ("4 ep, onecycle 3e-3, bs 128, 16/32/128", replace(CONV, channels=(16, 32), hidden=(128,)), replace(ONE, epochs=4)),
            ("4 ep, onecycle 3e-3, bs 128, 16/32/128, bf16", replace(CONV, channels=(16, 32), hidden=(128,)),
             replace(ONE, epochs=4, precision="bf16")),
            ("3 ep, onecycle 3e-3, bs 128, 16/32/128", replace(CONV, channels=(16, 32), hidden=(128,)), replace(ONE, epochs=3)),
            ("4 ep, onecycle 3e-3, bs 128, 16/32/64 (old small)", replace(CONV, channels=(16, 32), hidden=(64,)),
             replace(ONE, epochs=4)),
        ],
    }


METRIC = {
    "ae": "test MSE per pixel", "multistage": "latent 5-NN accuracy", "classifier": "test accuracy",
    "bernoulli": "IWAE bound on -log p(x) (k=1000, 2,000 test images)", "conv": "test MSE per pixel",
}


def _measure(family: str, model, data) -> dict:
    if family in ("ae", "conv"):
        return {"metric": metrics.reconstruction_mse(model, data.x_test)}
    if family == "classifier":
        return {"metric": metrics.accuracy(metrics.Judge(model).predict(data.x_test), data.y_test)}
    if family == "multistage":
        z_tr, z_te = latent.encode(model, data.x_train), latent.encode(model, data.x_test)
        return {"metric": metrics.knn_accuracy(z_tr, data.y_train, z_te, data.y_test)}
    x_bin = genvae.data.fixed_binarization(data.x_test)[metrics.test_subset(len(data.x_test), 2000)]
    e = metrics.elbo(model, x_bin, recon="bce")
    return {"metric": -metrics.iwae_bound(model, x_bin, k=1000, recon="bce"), "neg_elbo": -e["elbo"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--family", nargs="+", default=list(METRIC), choices=list(METRIC))
    parser.add_argument("--only", default="", help="only recipes whose label contains this")
    args = parser.parse_args()

    data = genvae.data.load("mnist")
    records = json.loads(OUT.read_text()) if OUT.exists() else []
    machine = f"{torch.get_num_threads()} threads, torch {torch.__version__}, device cpu"
    for family in args.family:
        for label, mc, tc in _candidates()[family]:
            if args.only not in label:
                continue
            t0 = time.perf_counter()
            model, history = train_model(mc, tc, device="cpu", progress=False, desc=label)
            seconds = time.perf_counter() - t0
            rec = {"family": family, "recipe": label, "seconds": round(seconds, 1), "metric_name": METRIC[family],
                   **{k: round(v, 5) for k, v in _measure(family, model, data).items()},
                   "machine": machine, "date": time.strftime("%Y-%m-%d"),
                   "model_config": mc.to_dict(), "train_config": tc.to_dict()}
            print(f"{family:<11} {label:<52} {seconds:7.1f} s  {rec['metric']:.4f}", flush=True)
            records = [r for r in records if (r["family"], r["recipe"]) != (family, label)] + [rec]
            OUT.write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
