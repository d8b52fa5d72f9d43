"""Which recipe do the diffusion and flow-matching models need? Training seconds against sample quality.

Each candidate (U-Net widths, noise schedule, epochs, learning rate) is trained with genvae's loop
(``genvae.training.train_model``) on the chosen device. Its samples are then judged at several costs
(network evaluations: DDIM steps for the diffusion model, Euler and Heun steps for flow matching) by the
book's classifier (the cached ``classifier`` experiment) against real test digits: classifier-feature
Frechet distance and class entropy (log 10 = 2.303 is every class equally often). Results are appended to
``benchmarks/diffusion_recipes.json`` with the device and date, and printed one JSON row per line.

Run:  python benchmarks/diffusion_recipes.py [--device cuda] [--only SUBSTRING] [--epochs 1 3] [--sizes 16/32 32/64]
      [--samples 1000] [--precision bf16] [--lrs 2e-3 5e-3] [--steps 10 25]

Candidates are judged against ``metrics.recipe_reference`` (real test images the chapters do not rank with).
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
from genvae.models import ModelConfig, count_parameters
from genvae.models.flow import network_evaluations
from genvae.training import TrainConfig, train_model

HERE = Path(__file__).resolve().parent
OUT = HERE / "diffusion_recipes.json"

SIZES = {"16/32": dict(channels=(16, 32), hidden=(64,)), "32/64": dict(channels=(32, 64), hidden=(128,))}
BASE = TrainConfig(batch_size=128, lr=2e-3, schedule="onecycle", epochs=1)


def candidates(epochs: list[int], sizes: list[str], precision: str = "fp32",
               lrs: tuple[float, ...] = (2e-3,)) -> list[tuple[str, ModelConfig, TrainConfig]]:
    out = []
    for e in epochs:
        for size in sizes:
            for lr in lrs:
                widths = SIZES[size]
                tc = replace(BASE, epochs=e, precision=precision, lr=lr)
                tail = f"{e} ep" + ("" if precision == "fp32" else f" {precision}") + ("" if lr == 2e-3 else f" lr {lr:g}")
                out.append((f"ddpm {size} linear {tail}", ModelConfig("ddpm", "conv", **widths), tc))
                out.append((f"ddpm {size} cosine {tail}", ModelConfig("ddpm", "conv", **widths, noise_schedule="cosine"),
                            tc))
                out.append((f"flow {size} {tail}", ModelConfig("flow", "conv", **widths), tc))
    return out


def samplers(kind: str, steps=(10, 25, 50)) -> list[tuple[str, int, dict]]:
    """(name, network evaluations, keyword arguments of ``model.sample``) at a few costs (Heun at half the steps,
    so that it costs the same network evaluations as Euler)."""
    if kind == "ddpm":
        return [(f"ddim {s}", s, dict(steps=s)) for s in steps]
    return ([(f"euler {s}", network_evaluations(s, "euler"), dict(steps=s, solver="euler")) for s in steps]
            + [(f"heun {s // 2}", network_evaluations(s // 2, "heun"), dict(steps=s // 2, solver="heun"))
               for s in steps if s >= 2])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", default="")
    ap.add_argument("--epochs", type=int, nargs="+", default=[1])
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--lrs", type=float, nargs="+", default=[2e-3], help="peak learning rates of the one-cycle schedule")
    ap.add_argument("--steps", type=int, nargs="+", default=[10, 25, 50], help="sampler steps to judge")
    ap.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=["16/32"], help="U-Net widths c1/c2")
    args = ap.parse_args()
    dev = torch.device(args.device)
    mnist = gdata.load("mnist")
    clf = experiments.classifier().load(device=dev, progress=False).model
    # Recipes are scored against metrics.recipe_reference, not the chapters' reference half of test_split,
    # so that the chapters' ranking does not rest on the data the recipe was chosen on.
    judge = metrics.SampleJudge(clf, mnist.x_test[metrics.recipe_reference(len(mnist.x_test))[:args.samples]])
    rows = []
    for label, mc, tc in candidates(args.epochs, args.sizes, args.precision, tuple(args.lrs)):
        if args.only not in label:
            continue
        t0 = time.perf_counter()
        model, history = train_model(mc, tc, device=dev, progress=False)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        for name, nfe, kwargs in samplers(mc.kind, args.steps):
            t1 = time.perf_counter()
            samples = model.sample(args.samples, generator=torch.Generator().manual_seed(1), **kwargs)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            row = {"label": label, "sampler": name, "network evaluations": nfe, "train seconds": round(seconds, 1), "precision": tc.precision, "lr": tc.lr,
                   "sample seconds": round(time.perf_counter() - t1, 2), "parameters": count_parameters(model),
                   **judge(samples.cpu()), "test loss": history.epochs[-1]["test"]["total"]}
            rows.append(row)
            print(json.dumps(row), flush=True)
    record = {"device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu", "threads": torch.get_num_threads(),
              "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__, "rows": rows}
    old = json.loads(OUT.read_text()) if OUT.exists() else []
    OUT.write_text(json.dumps(old + [record], indent=1))


if __name__ == "__main__":
    main()
