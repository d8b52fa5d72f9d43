"""How fast does genvae train, and what does in-memory batching buy?

Prints, measured in this run on this machine:
  1. one epoch of the MLP autoencoder with genvae's index batching of in-memory
     tensors, against the same epoch fed by a torchvision DataLoader that applies
     a per-sample ToTensor transform (the usual tutorial set-up), and their ratio;
  2. seconds per epoch for every model family of the book (on a subset), and the
     projected full-mode training time of each named experiment.

Run:  python benchmarks/training_speed.py [--images N]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import DataLoader

import genvae
from genvae import experiments
from genvae.losses import objective
from genvae.models import build_model
from genvae.settings import data_root
from genvae.train import TrainConfig, train_epoch


def _epoch_in_memory(model_cfg, x, y, tc) -> float:
    torch.manual_seed(0)
    model = build_model(model_cfg)
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr)
    t0 = time.perf_counter()
    train_epoch(model, opt, x, y, tc, generator=torch.Generator().manual_seed(0))
    return time.perf_counter() - t0


def _epoch_dataloader(model_cfg, n_images: int, tc) -> float:
    import torchvision
    from torchvision.transforms import ToTensor

    ds = torchvision.datasets.MNIST(str(data_root()), train=True, download=False, transform=ToTensor())
    subset = torch.utils.data.Subset(ds, range(n_images))
    loader = DataLoader(subset, batch_size=tc.batch_size, shuffle=True, num_workers=0)
    torch.manual_seed(0)
    model = build_model(model_cfg)
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr)
    t0 = time.perf_counter()
    for xb, yb in loader:
        loss = objective(model(xb), xb, yb).total
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20_000, help="training images per timed epoch")
    args = parser.parse_args()
    n = args.images
    data = genvae.data.load("mnist")
    x, y = data.x_train[:n], data.y_train[:n]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu, {n} images per epoch\n")

    ae = experiments.mlp_ae(2)
    tc = ae.train
    t_mem = _epoch_in_memory(ae.model, x, y, tc)
    t_dl = _epoch_dataloader(ae.model, n, tc)
    print("1. MLP autoencoder, one epoch")
    print(f"   in-memory index batching : {t_mem:6.2f} s")
    print(f"   DataLoader + ToTensor    : {t_dl:6.2f} s")
    print(f"   ratio                    : {t_dl / t_mem:6.2f}x\n")

    print("2. seconds per epoch on the full 60,000 images (extrapolated) and projected full-mode time")
    print(f"   {'experiment':<18} {'s/epoch':>8} {'epochs':>7} {'projected':>10}")
    seen = set()
    for exp in experiments.REGISTRY.values():
        key = (exp.model, exp.train.batch_size)
        if key in seen:
            continue
        seen.add(key)
        per_epoch = _epoch_in_memory(exp.model, x, y, exp.train) * len(data.x_train) / n
        print(f"   {exp.name:<18} {per_epoch:8.1f} {exp.train.epochs:7d} {per_epoch * exp.train.epochs:9.0f}s")


if __name__ == "__main__":
    main()
