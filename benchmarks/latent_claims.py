"""Seed-dependent claims about the 2-D latent space, measured over several trainings.

The outline says "3 sits next to 8" and "4 sits next to 9" in the latent space of
a 2-D autoencoder. Which clusters end up adjacent depends on the random seed, so
this script trains (or loads from the cache) the book's 2-D MLP autoencoder for
several seeds and prints, per seed, the rank of b among the nine other classes of
a (1 = nearest), with the same ranks for PCA and for raw pixels as references.

Run:  python benchmarks/latent_claims.py [--seeds 0 1 2 3 4] [--quick] [--top 2]
"""

from __future__ import annotations

import argparse

import genvae
from genvae import experiments, latent
from genvae.latent import claim_ranks

CLAIMS = [(3, 8), (4, 9)]


def ranks(z, y) -> list[int]:
    """The ranks of the :data:`CLAIMS` (chapter 3 computes the same with :func:`genvae.latent.claim_ranks`)."""
    return claim_ranks(z, y, CLAIMS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(experiments.SEEDS))
    parser.add_argument("--quick", action="store_true", help="quick-mode trainings (2 epochs on 6,000 images)")
    parser.add_argument("--top", type=int, default=2, help="a claim holds when the rank is at most this")
    args = parser.parse_args()

    mnist = genvae.data.load("mnist")
    header = "  ".join(f"rank of {b} for {a}" for a, b in CLAIMS)
    print(f"{'source':<16} {header}")
    held = [0] * len(CLAIMS)
    for s in args.seeds:
        model = experiments.mlp_ae(2, seed=s).load(quick=args.quick).model
        r = ranks(latent.encode(model, mnist.x_test), mnist.y_test)
        held = [h + (x <= args.top) for h, x in zip(held, r)]
        print(f"{f'AE seed {s}':<16} " + "  ".join(f"{x:>13d}" for x in r))
    pca = latent.PCA(2).fit(mnist.x_train)
    print(f"{'PCA 2-D':<16} " + "  ".join(f"{x:>13d}" for x in ranks(pca.embed(mnist.x_test), mnist.y_test)))
    print(f"{'pixels 784-D':<16} " + "  ".join(f"{x:>13d}" for x in ranks(mnist.x_test.flatten(1), mnist.y_test)))
    for (a, b), h in zip(CLAIMS, held):
        print(f"claim '{b} is among the {args.top} nearest classes of {a}': holds for {h} of {len(args.seeds)} seeds")


if __name__ == "__main__":
    main()
