"""The ``genvae`` command: list, train and reproduce the book's models; check the data.

    genvae list
    genvae train NAME [--epochs N] [--quick] [--retrain] [--device DEV]
    genvae reproduce [--quick] [--only SUBSTRING] [--dataset NAME] [--check [--rtol R]]
    genvae data check [--root DIR]
    genvae cache list | verify | prune [--dry-run] [--cache DIR]
    genvae cache export PACK [--quick | --full] [--dataset NAME] [--only SUBSTRING] [--cache DIR]
    genvae cache import PACK [--cache DIR]
    genvae chapters [NAME ...] [--out DIR] [--build-output DIR] [--jobs N] [--rerun]

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
    t.add_argument("--retrain", action="store_true",
                   help="ignore a cached model (and any resume state) and train again from the start")
    t.add_argument("--device", type=_device, help="cpu, cuda, cuda:N or mps (default: CUDA, then MPS, then CPU)")

    r = sub.add_parser("reproduce", help="train every model the book needs")
    r.add_argument("--quick", action="store_true", help="quick mode: few epochs on a subset")
    r.add_argument("--only", default="", metavar="SUBSTRING", help="only experiments whose name contains this")
    r.add_argument("--dataset", default=None, metavar="NAME", choices=sorted(DATASETS),
                   help="train the book's models for this data set: mnist or fashion-mnist "
                        "(default: GENVAE_DATASET, else mnist)")
    r.add_argument("--device", type=_device, help="cpu, cuda, cuda:N or mps (default: CUDA, then MPS, then CPU)")
    r.add_argument("--jobs", type=_positive_int, default=None,
                   help="training processes side by side (default on a CPU: one per core, as many as the memory "
                        "holds; on a GPU: 1)")
    r.add_argument("--stack", action=argparse.BooleanOptionalAction, default=None,
                   help="train each grid (beta, gamma, seeds) as one stacked model (default: on CUDA only)")
    r.add_argument("--check", action="store_true",
                   help="retrain the selected cached models into a temporary cache (one at a time, alone) and "
                        "compare their test metrics with the cached ones; exit 1 on a mismatch or when none is "
                        "cached. Tolerance: exact (bit for bit) when the entry was trained on the CPU with the "
                        "same torch version and instruction set (AVX2, AVX-512...), not in a stack, and records its "
                        "thread count (the retraining uses it), and the check runs on the CPU; otherwise every "
                        "metric within the relative tolerance --rtol")
    r.add_argument("--rtol", type=float, default=None, metavar="R",
                   help="relative tolerance of --check where bits cannot match (another device, torch version "
                        "or instruction set, a stack, an entry without its thread count; default 0.05)")

    d = sub.add_parser("data", help="data-set utilities")
    dsub = d.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    c = dsub.add_parser("check", help="say which data files are found and whether their checksums match")
    c.add_argument("--root", help="data root (default: GENVAE_DATA or ~/.cache/genvae/data)")
    _add_cache_parser(sub)

    h = sub.add_parser("chapters", help="execute the book's chapters as Jupyter does, several at once, and hand "
                                        "their outputs to the book build")
    h.add_argument("names", nargs="*", metavar="NAME", help="only chapters whose file name contains NAME")
    h.add_argument("--out", default="_build/executed", metavar="DIR",
                   help="where the executed notebooks go (default: _build/executed)")
    h.add_argument("--build-output", default=None, metavar="DIR",
                   help="the --path-output of the jupyter-book build that should render these outputs: its "
                        "jupyter-cache gets them (emptied first when every chapter runs; default: none is filled)")
    h.add_argument("--jobs", type=_positive_int, default=None,
                   help="kernels side by side (default: one per CPU, one thread each)")
    h.add_argument("--timeout", type=_positive_int, default=3600, metavar="S", help="seconds per cell (default 3600)")
    h.add_argument("--rerun", action="store_true",
                   help="run every chapter, even one unchanged since its last run into --out (same notebook, genvae "
                        "code, mode, data set and trained weights), which is otherwise reused as it is")
    return p


def _add_cache_parser(sub) -> None:
    cache_help = "the model cache folder (default: GENVAE_CACHE or ~/.cache/genvae/models)"
    k = sub.add_parser("cache", help="list, verify, prune, export and import the trained-model cache")
    k.add_argument("--cache", metavar="DIR", dest="cache_dir", help=cache_help)
    ksub = k.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    for name, text in (
        ("list", "every entry: name, key, quick/full, data set, size, date, status (ok, partial, corrupt, orphan); "
                 "reads the sidecars only"),
        ("verify", "read every entry in full (checksums, sidecars, loading the weights); one line per bad entry, "
                   "exit 1 if any"),
        ("prune", "remove orphan, corrupt and partial entries, stale temporary files and stale resume folders "
                  "(orphan: the key of no experiment in `genvae list`, e.g. an older cache format, a chapter run "
                  "with other parameters)"),
    ):
        a = ksub.add_parser(name, help=text, description=text)
        a.add_argument("--cache", metavar="DIR", dest="cache_dir", default=argparse.SUPPRESS, help=cache_help)
        if name == "prune":
            a.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")
    _add_pack_parsers(ksub, cache_help)


def _add_pack_parsers(ksub, cache_help: str) -> None:
    """``genvae cache export | import``: see :mod:`genvae.storage.packs`."""
    from .data import DATASETS

    text = ("write cache entries into one pack file (a tar archive with a JSON manifest of every file's SHA-256) "
            "to import elsewhere. By default every complete entry of a registry model (`genvae list`): both modes, "
            "both data sets; each is read in full first and a bad one is left out")
    e = ksub.add_parser("export", help=text, description=text)
    e.add_argument("pack", metavar="PACK", help="the pack file to write (replaced if it exists), e.g. models.tar")
    e.add_argument("--cache", metavar="DIR", dest="cache_dir", default=argparse.SUPPRESS, help=cache_help)
    mode = e.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="quick", action="store_const", const=True, default=None,
                      help="only quick-mode entries")
    mode.add_argument("--full", dest="quick", action="store_const", const=False, help="only full-mode entries")
    e.add_argument("--dataset", default=None, metavar="NAME", choices=sorted(DATASETS),
                   help="only entries of this data set: mnist or fashion-mnist")
    e.add_argument("--only", default="", metavar="SUBSTRING", help="only entries whose name contains this")
    text = ("add the entries of a pack to the cache, after verifying all of it (every file's SHA-256, only plain "
            "files with an entry's file names, every key a registry model's and the one its configurations give, "
            "the cache format); a bad pack is refused with exit 1 and the cache left as it was. An entry already "
            "present is skipped if identical, kept if it differs (remove it to take the pack's), replaced if "
            "partial or corrupt")
    i = ksub.add_parser("import", help=text, description=text)
    i.add_argument("pack", metavar="PACK", help="the pack file to read")
    i.add_argument("--cache", metavar="DIR", dest="cache_dir", default=argparse.SUPPRESS, help=cache_help)


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
    kept = f"-> {trained.path}" if trained.saved else "not kept in the cache (see the warning above)"
    print(f"{exp.name}: {how}; test {_format_metrics(trained.metrics)}\n  {kept}")


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
    quick = args.quick or _env_quick()
    todo = [e for e in book_experiments(dataset, quick=quick) if args.only in e.name]
    if not todo:
        raise KeyError(f"no {dataset} experiment name contains {args.only!r}")
    device = resolve_device(args.device)
    if args.check:
        return _check_reproduction(todo, dataset, quick, device, args.rtol)
    if args.rtol is not None:
        raise ValueError("--rtol only applies to --check")
    stack = device.type == "cuda" if args.stack is None else args.stack
    cached = sum(e.is_cached(quick) for e in todo)
    jobs = args.jobs or default_jobs(device, units=len(todo) - cached)
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
            kept = "" if t.saved else " (not kept in the cache: see the warning above)"
            print(f"  {t.name}: test {_format_metrics(t.metrics)}{kept}", flush=True)
        if progress.units_done < progress.units_total:
            print(f"  {len(todo) - done[0]} left, about {_duration(progress.seconds_left)} to go", flush=True)

    reproduce(todo, quick=quick, device=device, stack=stack, jobs=jobs, on_unit=report)
    print(f"done: {len(todo)} models ({len(todo) - cached} trained) in {time.perf_counter() - t0:.1f} s "
          f"({'quick' if quick else 'full'} mode)", flush=True)
    return 0


def _check_reproduction(todo, dataset: str, quick: bool, device, rtol: float | None) -> int:
    """``reproduce --check``: retrain what is cached, compare, print a table; 0 only if every comparison agrees."""
    from .storage.reproducibility import DEFAULT_RTOL, check, table

    rtol = DEFAULT_RTOL if rtol is None else rtol
    if not (rtol >= 0):
        raise ValueError(f"--rtol must be >= 0, got {rtol}")
    cached = [e for e in todo if e.is_cached(quick)]
    mode = "quick" if quick else "full"
    print(f"{dataset}: checking {len(cached)} of {len(todo)} models ({len(todo) - len(cached)} not cached) by retraining "
          f"them on {device} into a temporary cache ({mode} mode)", flush=True)
    print(f"tolerance: exact where bits can match (entry trained on the CPU with this torch version and instruction "
          f"set, not stacked, its thread count recorded and reused; check on the CPU), else relative {rtol:g} "
          f"per metric", flush=True)
    if not cached:
        print(f"genvae: error: nothing to compare against: no selected {mode}-mode model is cached", file=sys.stderr)
        return 1

    def report(r):
        print(f"  {r.name}: {r.status}" + (f" ({r.tolerance}, worst {r.worst}: rel. diff {r.rel_diff:.2e})"
                                         if r.status != "not cached" else ""), flush=True)

    results = check(todo, quick=quick, device=device, rtol=rtol, on_result=report)
    print(table(results))
    bad = [r.name for r in results if r.status == "MISMATCH"]
    print(f"{len(cached) - len(bad)} of {len(cached)} cached models reproduced"
          + (f"; mismatch: {', '.join(bad)}" if bad else ""), flush=True)
    return 1 if bad else 0


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


def _cmd_cache(args) -> int:
    """``genvae cache list | verify | prune``: see :mod:`genvae.storage.cachedir`."""
    from .storage import cachedir
    from .experiments import registry_keys

    if args.cache_command in ("export", "import"):
        return _cmd_pack(args, registry_keys())
    scanned = cachedir.scan(args.cache_dir, known=registry_keys())
    if args.cache_command == "list":
        print("\n".join(cachedir.table(scanned)))
        return 0
    if args.cache_command == "verify":
        problems = cachedir.verify(scanned)
        print(f"cache: {scanned.root}")
        for entry in scanned.entries:
            if entry.path in problems:
                print(f"{entry.status:<8} {entry.path.name}: {problems[entry.path]}")
        orphans = sum(e.orphan for e in scanned.entries)
        print(f"{cachedir.plural(len(scanned.entries), 'entry', 'entries')} verified: "
              f"{len(scanned.entries) - len(problems)} sound, {len(problems)} bad; "
              f"{cachedir.plural(orphans, 'orphan')} (`genvae cache prune` removes bad and orphan entries)")
        return 1 if problems else 0
    report = cachedir.prune(scanned, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    print(f"cache: {scanned.root}")
    for r in report.removed:
        print(f"{verb} {r.path} ({cachedir.human_size(r.size)}; {r.reason})")
    for path, why in report.kept:
        print(f"kept {path}: {why}")
    freed = cachedir.human_size(sum(r.size for r in report.removed))
    print(f"{'would free' if args.dry_run else 'freed'} {freed} ({len(report.removed)} removed, "
          f"{len(report.kept)} kept)")
    return 0


def _cmd_pack(args, known) -> int:
    """``genvae cache export | import``: see :mod:`genvae.storage.packs`."""
    from .storage import packs

    def say(line: str) -> None:
        print(line, flush=True)

    if args.cache_command == "export":
        packs.export_pack(args.pack, args.cache_dir, known=known, quick=args.quick, dataset=args.dataset,
                          only=args.only, say=say)
        return 0
    result = packs.import_pack(args.pack, args.cache_dir, known=known, say=say)
    _precision_note(result)
    return 0


def _precision_note(result) -> None:
    """Say when entries of a pack are for the other precision than this machine's recipes: the book will not
    load them (the precision is part of the cache key) unless GENVAE_PRECISION says so."""
    from .experiments import REGISTRY
    from .settings import training_precision
    from .storage.cache import resolve

    in_use = {resolve(e.request, quick).key for e in REGISTRY.values() for quick in (False, True)}
    other = [e for e, action, _ in result.actions if action != "kept" and e.key not in in_use]
    if other:
        mine = training_precision()
        print(f"note: {len(other)} of these entries were trained in another precision than this machine's recipes "
              f"({mine}), so the book will train its own; set GENVAE_PRECISION="
              f"{'fp32' if mine == 'bf16' else 'bf16'} to use them", flush=True)


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
        if args.command == "cache":
            return _cmd_cache(args)
        if args.command == "chapters":
            return _cmd_chapters(args)
        return _cmd_data_check(args)
    except KeyError as e:  # an unknown experiment, or --only matching none: a usage problem, like a bad choice
        _error(e.args[0] if e.args else e)
        return 2
    except (ValueError, RuntimeError, OSError) as e:  # bad values, missing data, divergence
        _error(e)
        return 1


def _cmd_chapters(args) -> int:
    from pathlib import Path

    from .book import chapters

    try:
        sources = chapters.chapter_paths(chapters.ROOT, args.names or None)
    except ValueError as e:
        _error(e)
        return 2
    except FileNotFoundError as e:
        _error(e)
        return 1
    t0 = time.perf_counter()
    runs = chapters.execute_all(sources, Path(args.out).resolve(), jobs=args.jobs, timeout=args.timeout,
                                cwd=chapters.ROOT / "book", reuse=not args.rerun)
    failed = [r for r in runs if not r.ok]
    if args.build_output:
        cache = chapters.build_cache_path(Path(args.build_output))
        stored = chapters.fill_build_cache(runs, cache, replace_all=not args.names)
        print(f"chapters: {stored} executed notebook(s) stored for the build in {cache}")
    reused = sum(r.reused for r in runs)
    ran = (f"{len(runs) - len(failed) - reused} of {len(runs) - reused} ran in {time.perf_counter() - t0:.0f} s"
           if reused < len(runs) else "none needed to run")
    print(f"chapters: {ran}{f', {reused} reused' if reused else ''}; executed notebooks in {Path(args.out).resolve()}")
    for r in failed:
        print(f"genvae: error: {r.source.name} failed ({r.error}); its outputs so far are in {r.executed}",
              file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit code (see the module doc).

    Warnings print as one line each, ``genvae: warning: ...``. A KeyboardInterrupt anywhere in it (Ctrl-C, or
    SIGINT from another process) ends it with
    ``genvae: interrupted`` and 130 (128 + SIGINT, the shells' convention); models finished before it
    stay cached. Usage errors leave through argparse's ``SystemExit(2)``.
    """
    import warnings

    def one_line(message, category, filename, lineno, line=None) -> str:
        return f"genvae: warning: {message}\n"

    try:
        with warnings.catch_warnings():
            warnings.formatwarning = one_line  # "genvae: warning: ...", not a source path and a line of code
            return _run(_parser().parse_args(argv))
    except KeyboardInterrupt:
        print("genvae: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
