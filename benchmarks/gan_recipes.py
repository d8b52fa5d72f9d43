"""Which recipe do the adversarial models (GAN, VAE-GAN) need? Training seconds against sample quality.

Each candidate is trained with genvae's two-player loop (``genvae.train.fit_adversarial``) on the
chosen device; 2,000 samples are judged by the book's classifier (trained here with the book's
recipe) against 2,000 real test digits: classifier-feature Frechet distance, class entropy (log 10 =
2.303 is every class equally often), mean confidence, and for the VAE-GAN the reconstruction MSE per
pixel. Results are appended to ``benchmarks/gan_recipes.json`` with the device and date.

Run:  python benchmarks/gan_recipes.py [--device cuda] [--only SUBSTRING] [--epochs 1 3 5]
      [--set recipes | failures | final | vaegan-cost]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from genvae import data as gdata
from genvae import experiments, metrics
from genvae.models import ModelConfig, build_model
from genvae.train import TrainConfig, fit_adversarial, train_model

HERE = Path(__file__).resolve().parent
OUT = HERE / "gan_recipes.json"

GAN_S = ModelConfig("gan", "conv", latent_dim=32, channels=(16, 32))
GAN_M = ModelConfig("gan", "conv", latent_dim=32, channels=(32, 64))
VAEGAN = ModelConfig("vaegan", "conv", latent_dim=32, channels=(32, 64), hidden=(256,))
BASE = TrainConfig(lr=2e-4, batch_size=64, epochs=5)


def failures(epochs: list[int]) -> list[tuple[str, ModelConfig, TrainConfig]]:
    """Learning rates above DCGAN's 2e-4, with either generator loss: where does training break?"""
    return [(f"gan 32/64, {loss}, lr {lr:g}, {e} ep", GAN_M, replace(BASE, epochs=e, lr=lr, adversarial=loss))
            for e in epochs for lr in (2e-4, 1e-3, 2e-3, 5e-3) for loss in ("nonsaturating", "minimax")]


def final(epochs: list[int]) -> list[tuple[str, ModelConfig, TrainConfig]]:
    """The last round: a smaller failure demo, cheaper batches, the VAE-GAN at higher learning rates."""
    out = []
    for e in epochs:
        out += [(f"gan 16/32, {loss}, lr 5e-3, {e} ep", GAN_S, replace(BASE, epochs=e, lr=5e-3, adversarial=loss))
                for loss in ("nonsaturating", "minimax")]
        out += [(f"gan 32/64, minimax, lr 5e-3, {e} ep", GAN_M, replace(BASE, epochs=e, lr=5e-3, adversarial="minimax"))]
    out += [
        ("gan 32/64, NS, lr 2e-3, bs 128, 2 ep", GAN_M, replace(BASE, epochs=2, lr=2e-3, batch_size=128)),
        ("vaegan 32/64, adv 1, lr 1e-3, 2 ep", VAEGAN, replace(BASE, epochs=2, lr=1e-3)),
        ("vaegan 32/64, adv 1, lr 2e-3, 2 ep", VAEGAN, replace(BASE, epochs=2, lr=2e-3)),
        ("vaegan 32/64, adv 0.1, lr 2e-3, 2 ep", VAEGAN, replace(BASE, epochs=2, lr=2e-3, adv_weight=0.1)),
    ]
    return out


VAEGAN_HALF = ModelConfig("vaegan", "conv", latent_dim=32, channels=(16, 32), hidden=(128,))


def vaegan_cost(epochs: list[int]) -> list[tuple[str, ModelConfig, TrainConfig]]:
    """The book's VAE-GAN recipe (lr 2e-3, 2 epochs) against cheaper ones: fewer epochs, half the width."""
    book = replace(BASE, lr=2e-3)
    return [(f"vaegan 32/64, adv 1, lr 2e-3, {e} ep", VAEGAN, replace(book, epochs=e)) for e in epochs] + \
           [(f"vaegan 16/32, adv 1, lr 2e-3, {e} ep", VAEGAN_HALF, replace(book, epochs=e)) for e in epochs]


def candidates(epochs: list[int]) -> list[tuple[str, ModelConfig, TrainConfig]]:
    out = []
    for e in epochs:
        out += [
            (f"gan 16/32, NS, bs 64, {e} ep", GAN_S, replace(BASE, epochs=e)),
            (f"gan 32/64, NS, bs 64, {e} ep", GAN_M, replace(BASE, epochs=e)),
            (f"gan 32/64, NS, bs 128, {e} ep", GAN_M, replace(BASE, epochs=e, batch_size=128)),
            (f"gan 32/64, minimax, bs 64, {e} ep", GAN_M, replace(BASE, epochs=e, adversarial="minimax")),
            (f"vaegan 32/64, adv 1, beta 1, {e} ep", VAEGAN, replace(BASE, epochs=e)),
            (f"vaegan 32/64, adv 0.1, beta 1, {e} ep", VAEGAN, replace(BASE, epochs=e, adv_weight=0.1)),
        ]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", default="")
    ap.add_argument("--epochs", type=int, nargs="+", default=[1, 3, 5])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--set", choices=("recipes", "failures", "final", "vaegan-cost"), default="recipes")
    args = ap.parse_args()
    dev = torch.device(args.device)
    mnist = gdata.load("mnist")
    clf_exp = experiments.classifier()
    clf, _ = train_model(clf_exp.model, clf_exp.train, device=dev, progress=False)
    judge = metrics.SampleJudge(clf, mnist.x_test[metrics.recipe_reference(len(mnist.x_test))])
    rows = []
    sets = {"recipes": candidates, "failures": failures, "final": final, "vaegan-cost": vaegan_cost}
    for label, mc, tc in sets[args.set](args.epochs):
        if args.only not in label:
            continue
        for seed in args.seeds:
            tc = replace(tc, seed=seed)
            torch.manual_seed(seed)
            model = build_model(mc)
            t0 = time.perf_counter()
            history = fit_adversarial(model, mnist, tc, device=dev, progress=False)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - t0
            model.eval()
            samples = model.sample(2000, generator=torch.Generator().manual_seed(1))
            row = {"label": label, "seed": seed, "seconds": round(seconds, 2), **judge(samples)}
            row["confident share"] = metrics.confident_share(judge.judgement(samples))
            if mc.kind == "vaegan":
                held_out = metrics.test_split(len(mnist.x_test), 2000, seed=1)[1]  # other digits than the reference
                row["recon MSE"] = metrics.reconstruction_mse(model, mnist.x_test[held_out])
            row["test"] = history.epochs[-1]["test"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    record = {"device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
              "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__, "rows": rows}
    old = json.loads(OUT.read_text()) if OUT.exists() else []
    OUT.write_text(json.dumps(old + [record], indent=1))


if __name__ == "__main__":
    main()
