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

__all__ = ["ROOT", "chapter_paths", "available_cpus", "plan_jobs", "ChapterRun", "execute", "execute_all",
           "fill_build_cache", "build_cache_path"]

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


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one, else the core count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


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
                cwd: Path | None = None, log=print) -> list[ChapterRun]:
    """Execute ``sources`` with ``jobs`` kernels side by side (largest notebooks first, so the longest start
    early), each kernel on ``OMP_NUM_THREADS`` threads (set from :func:`plan_jobs` unless already set); log a
    line per finished chapter."""
    jobs, threads = plan_jobs(len(sources), jobs=jobs)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))  # kernels inherit it; torch reads it on import
    order = sorted(sources, key=lambda p: -Path(p).stat().st_size)
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
    rank = {p: i for i, p in enumerate(sources)}
    return sorted(runs, key=lambda r: rank[r.source])


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
