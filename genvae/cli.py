"""The ``genvae`` command: list, train and reproduce the book's models; check the data.

    genvae list
    genvae train NAME [--epochs N] [--quick] [--retrain] [--device DEV]
    genvae reproduce [--quick] [--only SUBSTRING] [--dataset NAME]
    genvae data check [--root DIR]

Exit codes: 0 done; 2 the command line is wrong (an unknown command or option, a bad option value: argparse's
usage and message; an unknown experiment name, or ``--only`` matching none: one line ``genvae: error: ...``);
1 anything else is wrong (a bad value in the environment, missing data, a diverged training...), told in one
line ``genvae: error: ...``; 130 interrupted (Ctrl-C), with ``genvae: interrupted``.
"""

from __future__ import annotations

import argparse
import sys
import time

from . import __version__


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _device(text: str):
    """``--device``: a device this machine has, else a usage error naming cpu, cuda, mps and those available."""
    from .settings import resolve_device

    try:
        return resolve_device(text, source="")  # argparse says "argument --device: 'x' is not a device..."
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _parser() -> argparse.ArgumentParser:
    from .data import DATASETS

    p = argparse.ArgumentParser(prog="genvae", description="Train and inspect the models of the genvae book.")
    p.add_argument("--version", action="version", version=f"genvae {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("list", help="list the named experiments the book uses")

    t = sub.add_parser("train", help="train one named experiment (or load it from the cache)")
    t.add_argument("name", help="experiment name (see `genvae list`)")
    t.add_argument("--epochs", type=_positive_int, help="override the number of epochs (a separate cache entry)")
    t.add_argument("--quick", action="store_true", help="quick mode: few epochs on a subset")
    t.add_argument("--retrain", action="store_true", help="ignore a cached model and train again")
    t.add_argument("--device", type=_device, help="cpu, cuda, cuda:N or mps (default: CUDA, then MPS, then CPU)")

    r = sub.add_parser("reproduce", help="train every model the book needs")
    r.add_argument("--quick", action="store_true", help="quick mode: few epochs on a subset")
    r.add_argument("--only", default="", metavar="SUBSTRING", help="only experiments whose name contains this")
    r.add_argument("--dataset", default=None, metavar="NAME", choices=sorted(DATASETS),
                   help="train the book's models for this data set: mnist or fashion-mnist "
                        "(default: GENVAE_DATASET, else mnist)")
    r.add_argument("--device", type=_device, help="cpu, cuda, cuda:N or mps (default: CUDA, then MPS, then CPU)")
    r.add_argument("--jobs", type=_positive_int, default=None,
                   help="training processes side by side (default: 2 on a CPU with 2 or more cores, else 1)")
    r.add_argument("--stack", action=argparse.BooleanOptionalAction, default=None,
                   help="train each grid (beta, gamma, seeds) as one stacked model (default: on CUDA only)")

    d = sub.add_parser("data", help="data-set utilities")
    dsub = d.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    c = dsub.add_parser("check", help="say which data files are found and whether their checksums match")
    c.add_argument("--root", help="data root (default: GENVAE_DATA or ~/.cache/genvae/data)")
    return p


def _format_metrics(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())


def _cmd_list() -> int:
    from .experiments import REGISTRY

    quick = _env_quick()
    width = max(len(name) for name in REGISTRY)
    print(f"{'name':<{width}} {'ch.':<7} {'data set':<13} {'model':<22} {'epochs':>6}  {'cached':<6}  description")
    for e in REGISTRY.values():
        model = f"{e.model.kind}/{e.model.arch}/d={e.model.latent_dim}"
        cached = "yes" if e.is_cached(quick) else "no"
        print(f"{e.name:<{width}} {e.chapter:<7} {e.train.dataset:<13} {model:<22} {e.train.epochs:>6}  {cached:<6}  "
              f"{e.description}")
    return 0


def _train_one(exp, args, quick: bool) -> None:
    t0 = time.perf_counter()
    trained = exp.load(quick=quick, retrain=getattr(args, "retrain", False), device=args.device)
    how = "loaded from cache" if trained.from_cache else f"trained in {time.perf_counter() - t0:.1f} s"
    print(f"{exp.name}: {how}; test {_format_metrics(trained.metrics)}\n  -> {trained.path}")


def _cmd_train(args) -> int:
    from .experiments import get

    exp = get(args.name)
    if args.epochs is not None:
        exp = exp.variant(f"e{args.epochs}", epochs=args.epochs)
    _train_one(exp, args, quick=args.quick or _env_quick())
    return 0


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def _cmd_reproduce(args) -> int:
    """Train every missing model, saying what is done, what is left and about how long it will take."""
    from .data import DATASETS
    from .experiments import book_experiments, default_jobs, reproduce
    from .settings import book_dataset, resolve_device

    dataset = args.dataset or book_dataset()  # --dataset is one of DATASETS (argparse checked it)
    if dataset not in DATASETS:
        raise ValueError(f"GENVAE_DATASET={dataset!r} is not a data set: choose {' or '.join(sorted(DATASETS))}")
    todo = [e for e in book_experiments(dataset) if args.only in e.name]
    if not todo:
        raise KeyError(f"no {dataset} experiment name contains {args.only!r}")
    quick = args.quick or _env_quick()
    device = resolve_device(args.device)
    stack = device.type == "cuda" if args.stack is None else args.stack
    jobs = args.jobs or default_jobs(device)
    cached = sum(e.is_cached(quick) for e in todo)
    print(f"{dataset}: {len(todo)} models, {cached} already cached; training {len(todo) - cached} on {device} "
          f"({'quick' if quick else 'full'} mode{', grids stacked' if stack else ''}"
          f"{f', {jobs} processes side by side' if jobs > 1 else ''})", flush=True)
    t0 = time.perf_counter()
    done = [cached]

    def report(result, progress):
        done[0] += len(result.trained)
        names = ", ".join(e.name for e in result.experiments)
        stacked = f" (one stack of {len(result.trained)})" if len(result.trained) > 1 else ""
        print(f"[{done[0]}/{len(todo)}] {names}{stacked}: trained in {_duration(result.seconds)}", flush=True)
        for t in result.trained:
            print(f"  {t.name}: test {_format_metrics(t.metrics)}", flush=True)
        if progress.units_done < progress.units_total:
            print(f"  {len(todo) - done[0]} left, about {_duration(progress.seconds_left)} to go", flush=True)

    reproduce(todo, quick=quick, device=device, stack=stack, jobs=jobs, on_unit=report)
    print(f"done: {len(todo)} models ({len(todo) - cached} trained) in {time.perf_counter() - t0:.1f} s "
          f"({'quick' if quick else 'full'} mode)", flush=True)
    return 0


def _cmd_data_check(args) -> int:
    from .data import DATASETS, check
    from .settings import data_root

    root = args.root or str(data_root())
    ok = True
    print(f"data root: {root}")
    for name, spec in DATASETS.items():
        report = check(name, root)
        print(f"{name} ({spec.folder}/raw):")
        for fname, status in report.items():
            print(f"  {fname:<26} {status}")
        ok &= all(s == "ok" for s in report.values())
    print("all files present and verified" if ok else "some files are missing or corrupt")
    return 0 if ok else 1


def _env_quick() -> bool:
    from .settings import quick_mode

    return quick_mode()


def _error(message) -> None:
    """``genvae: error: ...`` on one line (a multi-line message, such as missing data's, joined)."""
    text = " ".join(line.strip() for line in str(message).splitlines() if line.strip())
    print(f"genvae: error: {text}", file=sys.stderr)


def _run(args) -> int:
    try:
        if args.command == "list":
            return _cmd_list()
        if args.command == "train":
            return _cmd_train(args)
        if args.command == "reproduce":
            return _cmd_reproduce(args)
        return _cmd_data_check(args)
    except KeyError as e:  # an unknown experiment, or --only matching none: a usage problem, like a bad choice
        _error(e.args[0] if e.args else e)
        return 2
    except (ValueError, RuntimeError, OSError) as e:  # bad values, missing data, divergence
        _error(e)
        return 1


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit code (see the module doc).

    A KeyboardInterrupt anywhere in it (Ctrl-C, or SIGINT from another process) ends it with
    ``genvae: interrupted`` and 130 (128 + SIGINT, the shells' convention); models finished before it
    stay cached. Usage errors leave through argparse's ``SystemExit(2)``.
    """
    try:
        return _run(_parser().parse_args(argv))
    except KeyboardInterrupt:
        print("genvae: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
