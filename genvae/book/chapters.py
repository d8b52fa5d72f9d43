"""Execute the book's chapters as Jupyter does, several at once, and hand their outputs to the book build.

``genvae chapters`` runs each chapter of ``_toc.yml`` top to bottom in a fresh Jupyter kernel (nbclient,
the library behind ``jupyter nbconvert --execute``), with ``book/`` as its working directory as in
JupyterLab, ``jobs`` kernels side by side. It writes every executed notebook to ``--out`` and fills the
jupyter-cache that the book build reads (``execute_notebooks: cache`` in ``_config.yml``), so the build
renders these very outputs instead of running each chapter a second time, one after the other.

Three checks read the executed notebooks: they must read right outside the book build (no role that only
the build resolves, every measured sentence shown with its numbers), nbval reruns them and compares the
outputs (``make nbval``), and the book page shows nothing the notebook does not.

A run of the whole book empties the cache before it fills it, so the build never shows outputs of an older
run; a run of some chapters replaces only theirs. A chapter missing there (or whose code changed since) is
executed by the build itself.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from ..settings import available_cpus

__all__ = ["ROOT", "chapter_paths", "available_cpus", "plan_jobs", "ChapterRun", "execute", "execute_all",
           "fill_build_cache", "build_cache_path", "read_times", "record_times", "run_order", "fingerprint",
           "FINGERPRINTS"]

ROOT = Path(__file__).resolve().parents[2]  # the checkout: _toc.yml, book/


def chapter_paths(root: Path = ROOT, names: list[str] | None = None) -> list[Path]:
    """The notebooks of ``_toc.yml``, in its order; with ``names``, those whose file name contains one of them.

    Raises ``FileNotFoundError`` without a ``_toc.yml`` (an installed genvae has no book) and ``ValueError``
    when a name matches no chapter.
    """
    toc = Path(root) / "_toc.yml"
    if not toc.is_file():
        raise FileNotFoundError(f"{toc} not found: `genvae chapters` runs the book of a genvae checkout")
    files = re.findall(r"^\s*-?\s*(?:file|root):\s*(\S+)\s*$", toc.read_text(), flags=re.M)
    paths = [Path(root) / f"{f}.ipynb" for f in files if (Path(root) / f"{f}.ipynb").is_file()]
    if names:
        chosen = [p for p in paths if any(n in p.stem for n in names)]
        unmatched = [n for n in names if not any(n in p.stem for p in paths)]
        if unmatched:
            raise ValueError(f"no chapter matches {', '.join(map(repr, unmatched))}; chapters: "
                             + ", ".join(p.stem for p in paths))
        paths = chosen
    return paths


def plan_jobs(n_chapters: int, cpus: int | None = None, jobs: int | None = None) -> tuple[int, int]:
    """``(kernels side by side, threads per kernel)``: by default one kernel per CPU, one thread each.

    A chapter loads cached models and evaluates small networks, which keeps one thread busy, not two, so
    chapters side by side beat threads inside one chapter.
    """
    cpus = available_cpus() if cpus is None else cpus
    jobs = max(1, min(jobs or cpus, max(n_chapters, 1)))
    return jobs, max(1, cpus // jobs)


@dataclass
class ChapterRun:
    """One executed chapter: where it came from and went, how long it took, and the error if a cell failed."""

    source: Path
    executed: Path
    seconds: float
    error: str | None = None
    reused: bool = False  # not executed: its last run here had the same inputs (see :func:`fingerprint`)

    @property
    def ok(self) -> bool:
        return self.error is None


def execute(source: Path, out_dir: Path, cwd: Path | None = None, timeout: int = 3600) -> ChapterRun:
    """Execute one chapter in a fresh kernel (working directory ``cwd``, default the notebook's folder) and
    write it, outputs included, to ``out_dir``. A failing cell stops the run; the notebook is written all the
    same, with its error output, so nothing is lost, and the error is returned, not raised."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    source = Path(source)
    nb = nbformat.read(source, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(cwd or source.parent)}})
    error = None
    t0 = time.perf_counter()
    try:
        # The kernel process's own stderr holds only its start-up chatter (ipykernel warns about TCP without
        # encryption); what a cell writes to stderr reaches the notebook through the kernel's messages.
        client.execute(stderr=subprocess.DEVNULL)
    except CellExecutionError as e:
        error = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
    except Exception as e:  # a kernel that died or timed out: say which chapter
        error = f"{type(e).__name__}: {e}"
    seconds = time.perf_counter() - t0
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / source.name
    nbformat.write(nb, target)
    return ChapterRun(source, target, seconds, error)


def execute_all(sources: list[Path], out_dir: Path, jobs: int | None = None, timeout: int = 3600,
                cwd: Path | None = None, log=print, reuse: bool = False) -> list[ChapterRun]:
    """Execute ``sources`` with ``jobs`` kernels side by side (the longest first, by :func:`run_order`, so that
    they end together), each kernel on ``OMP_NUM_THREADS`` threads (set from :func:`plan_jobs` unless already set); log a
    line per finished chapter.

    With ``reuse``, a chapter whose :func:`fingerprint` (its notebook, genvae's code, the mode and data set,
    the trained weights in the cache) matches that of its last successful run into ``out_dir`` is not run
    again: its executed notebook there is returned as it is (``reused``). Every chapter that does run gets
    its source's modification time set to now, so an incremental book build reads its new outputs.
    """
    out_dir = Path(out_dir)
    rank = {p: i for i, p in enumerate(sources)}
    # What each chapter's outputs will depend on, taken before any runs: code or notebooks edited during the run
    # must not pass for what ran. (A chapter that trains a model it found missing changes the weights: it runs
    # once more next time, which costs time but never shows stale outputs.)
    weights = _weights_listing()
    prints = {p: fingerprint(p, weights) for p in sources}
    todo, reused = _reusable(sources, out_dir, prints, log) if reuse else (list(sources), [])
    if not todo:
        return reused
    jobs, threads = plan_jobs(len(todo), jobs=jobs)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))  # kernels inherit it; torch reads it on import
    order = run_order(todo, read_times())
    log(f"chapters: executing {len(order)} notebook(s), {jobs} at a time, "
        f"{os.environ['OMP_NUM_THREADS']} thread(s) each")
    runs: list[ChapterRun] = []
    lock = threading.Lock()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(execute, p, out_dir, cwd, timeout) for p in order]
        for f in as_completed(futures):
            run = f.result()
            with lock:
                runs.append(run)
                status = "ok" if run.ok else f"FAILED: {run.error}"
                log(f"  {run.source.stem}: {run.seconds:.1f} s, {status} ({len(runs)} of {len(order)} done)")
                os.utime(run.source)  # new outputs: an incremental book build must read this chapter again
    record_times(runs)
    _record_fingerprints(out_dir, {r.source: prints[r.source] for r in runs if r.ok},
                         drop=[r.source for r in runs if not r.ok])
    return sorted(runs + reused, key=lambda r: rank[r.source])


FINGERPRINTS = "fingerprints.json"  # in the --out folder, beside the executed notebooks it describes
_ENV = ("GENVAE_DEVICE", "GENVAE_PRECISION", "GENVAE_CUDA_GRAPH", "GENVAE_DATA", "PYTHONHASHSEED")


def _weights_listing() -> str:
    """Every trained model's weights file in the cache, by name, size and modification time: retraining any
    model (or importing a pack) changes it."""
    from ..settings import cache_root

    root = cache_root()
    rows = []
    for path in sorted(root.glob("*/model.safetensors")) if root.is_dir() else []:
        st = path.stat()
        rows.append(f"{path.parent.name} {st.st_size} {st.st_mtime_ns}")
    return "\n".join(rows)


def fingerprint(source: Path, _weights: str | None = None) -> str:
    """What a chapter's outputs depend on, as 16 hex digits of SHA-256: the notebook's bytes, genvae's source
    (:func:`genvae.storage.cache._package_digest`), quick mode, the data set, the device and precision
    settings, and the trained weights in the model cache. Evaluations kept beside the models are left out:
    a chapter recomputes the same numbers when they are missing."""
    import hashlib

    from ..settings import book_dataset, quick_mode
    from ..storage.cache import _package_digest

    h = hashlib.sha256()
    h.update(Path(source).read_bytes())
    h.update(_package_digest().encode())
    h.update(f"quick={quick_mode()} dataset={book_dataset()}".encode())
    h.update(repr([(k, os.environ.get(k)) for k in _ENV]).encode())
    h.update((_weights_listing() if _weights is None else _weights).encode())
    return h.hexdigest()[:16]


def _read_fingerprints(out_dir: Path) -> dict[str, str]:
    import json

    try:
        data = json.loads((Path(out_dir) / FINGERPRINTS).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _record_fingerprints(out_dir: Path, new: dict[Path, str], drop: list[Path]) -> None:
    import json

    data = _read_fingerprints(out_dir)
    data.update({str(Path(p).resolve()): f for p, f in new.items()})
    for p in drop:
        data.pop(str(Path(p).resolve()), None)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    (Path(out_dir) / FINGERPRINTS).write_text(json.dumps(data, indent=1, sort_keys=True))


def _reusable(sources: list[Path], out_dir: Path, prints: dict[Path, str], log) -> tuple[list[Path], list[ChapterRun]]:
    """Split ``sources`` into those to run and the runs to reuse (their fingerprint in ``prints`` is that of their
    last run into ``out_dir``, and its executed notebook is there)."""
    known = _read_fingerprints(out_dir)
    todo, reused = [], []
    for p in sources:
        target = out_dir / Path(p).name
        if target.is_file() and known.get(str(Path(p).resolve())) == prints[p]:
            reused.append(ChapterRun(Path(p), target, 0.0, reused=True))
        else:
            todo.append(p)
    if reused:
        log(f"chapters: {len(reused)} unchanged since their last run here (same notebook, genvae code, mode, data "
            f"set and trained weights), not run again: {', '.join(r.source.stem for r in reused)}")
    return todo, reused


def _times_path() -> Path:
    from ..settings import cache_root

    return cache_root() / "chapter-seconds.json"


def _times_key(source: Path) -> str:
    """A chapter's entry in the times record: its mode and data set too, since both change what it costs."""
    from ..settings import book_dataset, quick_mode

    return f"{'quick' if quick_mode() else 'full'}/{book_dataset()}/{Path(source).stem}"


def read_times() -> dict[str, float]:
    """Seconds each chapter took in its last successful run here (``chapter-seconds.json`` beside the model
    cache, whose contents decide most of what a chapter costs); ``{}`` when there is none or it is unreadable."""
    import json

    try:
        times = json.loads(_times_path().read_text())
    except (OSError, ValueError):
        return {}
    return {k: float(v) for k, v in times.items() if isinstance(v, (int, float))} if isinstance(times, dict) else {}


def record_times(runs: list[ChapterRun]) -> None:
    """Add the successful ``runs`` to the times record (best effort: a read-only cache only loses the hint)."""
    import json

    times = read_times()
    times.update({_times_key(r.source): round(r.seconds, 1) for r in runs if r.ok})
    path = _times_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(times, indent=1, sort_keys=True))
        tmp.replace(path)
    except OSError:
        pass


# What each chapter cost in a first full-mode build after a cold reproduce, on the 2-core CPU with two kernels
# side by side (benchmarks/RESULTS.md, "Full-mode book builds after reproduce", 2026-12-04). Only the order in
# which chapters never timed on this machine start depends on it: a first build that starts chapter 14 (the
# second smallest notebook, but the longest to run, computing every contender's evaluations) last ends that much
# later. Nothing a chapter computes depends on it.
FIRST_BUILD_SECONDS: dict[str, float] = {
    "14_scoreboard": 373,
    "13_flow_matching": 227,
    "12_diffusion": 87,
    "11_conditional_vae": 80,
    "06_variational_autoencoders": 68,
    "04_convolutional_autoencoders": 39,
    "06b_likelihood_and_explorer": 32,
    "10_vae_gan": 24,
    "09_gans": 22,
    "03_latent_space": 20,
    "07_multistage_vae": 20,
    "02_autoencoders": 17,
    "08_transitions": 14,
    "05_kl_divergence": 10,
    "01_generative_models": 7,
}


def run_order(sources: list[Path], times: dict[str, float]) -> list[Path]:
    """The order to start chapters in, longest first (so the kernels side by side end together). A chapter's
    length is its last time in this mode and data set here, else its first-build time on the reference machine
    (:data:`FIRST_BUILD_SECONDS`); chapters with neither start first, the largest file first."""
    sources = [Path(p) for p in sources]

    def known(p: Path) -> float | None:
        return times.get(_times_key(p), FIRST_BUILD_SECONDS.get(p.stem))

    unknown = sorted((p for p in sources if known(p) is None), key=lambda p: -p.stat().st_size)
    rest = sorted((p for p in sources if known(p) is not None), key=lambda p: -known(p))
    return unknown + rest


def build_cache_path(path_output: Path) -> Path:
    """Where myst-nb keeps its jupyter-cache for ``jupyter-book build --path-output path_output``."""
    return Path(path_output) / "_build" / ".jupyter_cache"


def fill_build_cache(runs: list[ChapterRun], cache_dir: Path, replace_all: bool = True) -> int:
    """Store each successful run in the jupyter-cache at ``cache_dir`` under its source path, which is what
    the book build looks up, and return how many were stored.

    With ``replace_all`` (a run of the whole book) the cache is emptied first, so no older run lingers;
    otherwise only the entries of the chapters in ``runs`` are replaced, and the other chapters keep theirs.
    """
    from jupyter_cache import get_cache

    if replace_all and Path(cache_dir).exists():
        get_cache(str(cache_dir)).clear_cache()
    cache = get_cache(str(cache_dir))
    uris = {str(run.source.resolve()) for run in runs}
    for record in cache.list_cache_records():
        if record.uri in uris:
            cache.remove_cache(record.pk)
    stored = 0
    for run in runs:
        if run.ok:
            cache.cache_notebook_file(str(run.executed), uri=str(run.source.resolve()), check_validity=False,
                                      overwrite=True)
            stored += 1
    return stored
