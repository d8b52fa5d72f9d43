"""``genvae reproduce``: train every model the book needs, several processes side by side, with an estimate
of the time left from the arithmetic (FLOPs) each training costs.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import torch

from ..storage.cache import TrainedModel
from ..training.stack import stack_key
from .registry import Experiment, load_all


def plan(experiments: Iterable[Experiment], stack: bool) -> list[list[Experiment]]:
    """Training units, in order: with ``stack``, the experiments that can train as one stacked
    model (same architecture and recipe, other beta, gamma or seed) form one unit."""
    units: dict[tuple, list[Experiment]] = {}
    for i, e in enumerate(experiments):
        units.setdefault(stack_key(e.model, e.train) if stack else (i,), []).append(e)
    return list(units.values())


def training_flops(e: Experiment, quick: bool = False) -> float:
    """Floating-point operations of training ``e`` (every step, forward and backward; both players of a game), counted
    by :func:`genvae.training.flops.training_flops` on a two-image batch of a throwaway model; used for time estimates."""
    from ..models import build_model
    from ..training.flops import training_flops as run_flops
    from ..utils import init_seed

    train = e.train.quick() if quick else e.train
    with init_seed(0):  # a throwaway model and batch: torch's global RNG is left as it was
        model = build_model(e.model)
        x = torch.rand(2, 1, 28, 28)
    return run_flops(model, x, train)


@dataclass
class UnitResult:
    """One training unit of :func:`reproduce`, as reported when it is done."""

    experiments: list[Experiment]
    trained: list[TrainedModel]  # numbers and paths; the weights stay in the cache
    seconds: float
    flops: float
    peak_rss: int  # bytes: the peak resident memory of the process that trained it, up to then


@dataclass
class Progress:
    """Where :func:`reproduce` stands after a unit; the time left is estimated from the FLOPs left."""

    units_done: int
    units_total: int
    flops_done: float
    flops_total: float
    elapsed: float

    @property
    def seconds_left(self) -> float:
        return (self.flops_total - self.flops_done) * self.elapsed / max(self.flops_done, 1.0)


def _train_unit(unit: list[Experiment], quick: bool, device: str, stack: bool,
                progress: bool = False) -> tuple[list[TrainedModel], float, int]:
    t0 = time.perf_counter()
    trained = load_all(unit, quick=quick, device=device, stack=stack, progress=progress)
    for t in trained:  # a worker process hands back the numbers, not the weights
        t.model = None
    return trained, time.perf_counter() - t0, _peak_rss()


def _peak_rss() -> int:
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    except (ImportError, AttributeError):  # not on Windows
        return 0


def _init_worker(threads: int) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the workers
    torch.set_num_threads(threads)


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT in the block (main thread only), so that processes started in it inherit SIG_IGN and a
    Ctrl-C sent to the whole process group cannot interrupt them while they import torch (a traceback)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def _stop_workers(pool, others: set) -> None:
    """End a process pool's workers now, losing the units they train (finished models are already cached,
    and the cache writes each file atomically). The workers are this process's children that are not in
    ``others`` (its children from before the pool started: ``multiprocessing.active_children()``)."""
    import multiprocessing

    workers = [p for p in multiprocessing.active_children() if p not in others]
    pool.shutdown(wait=False, cancel_futures=True)
    for process in workers:
        process.terminate()


# Peak resident memory of one training process, with margin: 1.15-1.22 GiB measured per worker in a cold full
# reproduce on the CPU (benchmarks/RESULTS.md); the processes side by side must fit in the memory available.
WORKER_MEMORY = int(1.5 * 2**30)


# Training processes sharing one GPU. The book's models are small: a step of a GAN is a few dozen kernels of
# microseconds each, so one process leaves the GPU idle while Python launches the next kernel, and other
# processes' kernels fill those gaps. Each process needs a core of its own to launch from. Measured on an H200
# (benchmarks/RESULTS.md, GPU sections "Cold reproduce" and "Processes side by side"), the cold reproduce of
# the 50 MNIST models took 114 s with 1 process, 82 s with 2, 70 s with 4, 53 s with 6 and 68 s with 8 (one run
# each): past 6, the processes slow the GPU-bound units (stacked grids, U-Nets) more than they fill gaps.
GPU_JOBS = 6


def default_jobs(device: torch.device, units: int | None = None, cpus: int | None = None,
                 memory: int | None = None) -> int:
    """Training processes that :func:`reproduce` runs side by side on ``device``: on a CPU, one per core
    this process may use (:func:`~genvae.settings.available_cpus`), as many as the memory available holds
    (:data:`WORKER_MEMORY` each) and no more than there are ``units`` to train; on a CUDA GPU, :data:`GPU_JOBS`
    processes sharing it (no more than the CPUs, the memory and the units allow); on another accelerator, 1.

    One process per core, each of one thread, because a small model's step does not keep two threads busy:
    two processes of one thread train small models faster than one process of two threads trains them one
    after the other (1.10x to 1.63x in two runs), and a third process on two cores loses time (measured on a 2-core CPU:
    ``benchmarks/RESULTS.md``, sections "Cold reproduce" and "Processes side by side"). On a GPU, grids train
    stacked within a process, and processes side by side fill the GPU's idle time between one process's
    small kernels (the same sections, measured on an H200). ``cpus`` and ``memory`` (bytes) default to this machine's.
    """
    from ..settings import available_cpus, available_memory

    if device.type not in ("cpu", "cuda"):
        return 1
    cpus = available_cpus() if cpus is None else cpus
    memory = available_memory() if memory is None else memory
    jobs = max(1, cpus) if device.type == "cpu" else max(1, min(GPU_JOBS, cpus))
    if memory is not None:
        jobs = min(jobs, max(1, memory // WORKER_MEMORY))
    if units is not None:
        jobs = min(jobs, max(1, units))
    return int(jobs)


def threads_per_job(jobs: int, cpus: int | None = None) -> int:
    """Torch threads for each of ``jobs`` processes side by side: the CPUs shared out, at least 1."""
    from ..settings import available_cpus

    return max(1, (available_cpus() if cpus is None else cpus) // max(1, jobs))


def reproduce(
    experiments: Iterable[Experiment],
    *,
    quick: bool = False,
    device: torch.device | str | None = None,
    stack: bool | None = None,
    jobs: int | None = None,
    on_unit: Callable[[UnitResult, Progress], None] | None = None,
) -> list[UnitResult]:
    """Train every experiment not yet cached, in units (a grid is one unit when stacked).

    With ``jobs`` > 1, units train in that many processes at once (this one and
    ``jobs - 1`` workers), the longest first, each with :func:`threads_per_job`
    threads (one process trains on the threads torch already has); ``jobs`` defaults to
    :func:`default_jobs`; every finished model is in the cache at once, so an interruption
    loses only the units in flight.
    ``on_unit(result, progress)`` is called as each unit finishes.
    """
    from ..settings import resolve_device

    device = resolve_device(device)
    stack = device.type == "cuda" if stack is None else stack
    units = plan([e for e in experiments if not e.is_cached(quick)], stack)
    jobs = default_jobs(device, units=len(units)) if jobs is None else jobs
    flops = [sum(training_flops(e, quick) for e in unit) for unit in units]
    results: list[UnitResult] = []
    t0 = time.perf_counter()

    def finished(unit, trained, seconds, rss, f):
        results.append(UnitResult(unit, trained, seconds, f, rss))
        if on_unit is not None:
            on_unit(results[-1], Progress(len(results), len(units), sum(r.flops for r in results), sum(flops),
                                          time.perf_counter() - t0))

    if jobs <= 1 or len(units) <= 1:
        for unit, f in zip(units, flops):
            finished(unit, *_train_unit(unit, quick, str(device), stack, progress=True), f)
        return results
    import multiprocessing
    import queue
    import threading
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor

    # This process trains too, beside jobs - 1 workers: one torch process fewer in memory.
    # All of them take the next unit, longest first, from one queue, so they end together.
    threads = threads_per_job(jobs)
    todo = deque(sorted(range(len(units)), key=lambda i: -flops[i]))
    lock, done = threading.Lock(), queue.Queue()  # units finished by the workers, reported from here

    def take() -> int | None:
        with lock:
            return todo.popleft() if todo else None

    def submit(pool) -> None:
        i = take()
        if i is not None:
            fut = pool.submit(_train_unit, units[i], quick, str(device), stack)
            fut.add_done_callback(lambda f, i=i: (done.put((i, f)), submit(pool)))

    def report_workers(block: bool) -> None:
        while len(results) < len(units):
            try:
                i, fut = done.get(block=block)
            except queue.Empty:
                return
            finished(units[i], *fut.result(), flops[i])

    threads_before = torch.get_num_threads()
    torch.set_num_threads(threads)
    others = set(multiprocessing.active_children())  # children from before the pool: not its workers
    try:
        with ProcessPoolExecutor(jobs - 1, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_init_worker, initargs=(threads,)) as pool:
            try:
                with _sigint_ignored():  # the workers start here and inherit it
                    for _ in range(jobs - 1):
                        submit(pool)
                while (i := take()) is not None:
                    finished(units[i], *_train_unit(units[i], quick, str(device), stack, progress=True), flops[i])
                    report_workers(block=False)
                report_workers(block=True)
            except BaseException:
                with lock:
                    todo.clear()  # nothing new starts; finished models are already in the cache
                _stop_workers(pool, others)  # they ignore Ctrl-C: an interruption stops them from here, at once
                raise
    finally:
        torch.set_num_threads(threads_before)
    return results


