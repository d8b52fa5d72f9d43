"""How long must chapter 9's failure demo train? Training seconds against what the chapter concludes.

Chapter 9 trains the DCGAN with the minimax and with the non-saturating generator loss, for three seeds
each, and diagnoses every run from 5,000 samples scored by the book's classifier (effective classes,
confidence, ``metrics.generator_failure``) and, for the minimax runs, from the step at which the
discriminator's loss settles below 0.01 (``metrics.saturation_step``). This trains those six models on
budgets of one epoch over all 60,000 images and over seeded subsets (``train_size``), with ``genvae
reproduce``'s own function (its default processes), and prints each run's diagnosis and training seconds,
so that the budget can be the shortest on which the chapter's conclusions still hold.

Results are appended to ``benchmarks/failure_demo.json`` with the device and date.

Run:  python benchmarks/failure_demo.py [--sizes 60000 20000 10000] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

import genvae
from genvae import experiments, metrics

HERE = Path(__file__).resolve().parent
OUT = HERE / "failure_demo.json"
LOSSES = ("minimax", "nonsaturating")
N_SAMPLES, MIN_CLASSES, SATURATED = 5000, 5.0, 0.01  # as chapter 9 uses them in full mode


def runs(size: int | None) -> list[experiments.Experiment]:
    """Chapter 9's six runs on ``size`` training images (None: all of them)."""
    return [experiments.gan(adversarial=loss, epochs=experiments.FAILURE_EPOCHS, seed=s, train_size=size)
            for loss in LOSSES for s in experiments.FAILURE_SEEDS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[60000, 20000, 10000],
                        help="training images per run (60000: all of them, the budget before)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    data = genvae.data.load("mnist")
    judge = metrics.Judge(experiments.classifier().load(device=device, progress=False).model)
    idx_real, idx_ref = metrics.test_split(len(data.x_test), N_SAMPLES)  # chapter 9's split
    score = metrics.SampleJudge(judge, data.x_test[idx_ref])
    real = score(data.x_test[idx_real])
    rows = []
    for size in args.sizes:
        todo = runs(None if size >= len(data.x_train) else size)
        seconds = {}
        t0 = time.perf_counter()
        experiments.reproduce(todo, device=device,
                              on_unit=lambda r, p: seconds.update({r.experiments[0].name: r.seconds}))
        wall = time.perf_counter() - t0
        for e in todo:
            t = e.load(device=device, progress=False)
            q = score(t.model.sample(N_SAMPLES, generator=torch.Generator().manual_seed(0)))
            d_curve = t.history.curve("d")
            rows.append({"images": size, "steps": len(d_curve), "loss": e.train.adversarial, "seed": e.train.seed,
                         "train seconds": round(seconds.get(e.name, float("nan")), 1),
                         "Frechet distance": round(q["Frechet distance"], 1),
                         "effective classes": round(math.exp(q["class entropy (nats)"]), 2),
                         "confidence": round(q["confidence"], 3),
                         "diagnosis": metrics.generator_failure(q, real, MIN_CLASSES),
                         "saturated from step": metrics.saturation_step(d_curve, SATURATED)})
            print(rows[-1], flush=True)
        print(f"{size} images: {len(todo)} runs trained in {wall:.1f} s (wall)", flush=True)
    record = {"date": time.strftime("%Y-%m-%d %H:%M"), "device": str(device), "torch": torch.__version__,
              "cpus": genvae.settings.available_cpus(), "real confidence": round(real["confidence"], 3), "rows": rows}
    history = json.loads(OUT.read_text()) if OUT.exists() else []
    OUT.write_text(json.dumps(history + [record], indent=1))
    print(f"appended to {OUT}")


if __name__ == "__main__":
    main()
