"""Run a list of RunSpecs and save each finished run to the store; runs already in the store are skipped.

The ``local`` executor trains on a pool of worker processes (spawn), each with ``threads`` torch threads set once;
``ray`` sends each run to a Ray task (``bench.cluster``). Either way only this process claims runs and writes the
store, saving each run as it finishes. A run is claimed only when a worker and host-wide CPU slots (:class:`Slots`)
are free for it, so two suites started at once on one machine share its cores instead of oversubscribing them, and
split the work when they share a store.
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import fcntl
import math
import multiprocessing
import os
import pickle
import signal
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from activations.errors import InputError, choose
from bench import tasks
from bench.config import RunSpec, Status
from bench.harness import loop
from bench.runs import cluster
from bench.runs.progress import Progress, label
from bench.runs.store import Store

EXECUTORS = ("local", "ray")
Claim = Callable[[RunSpec], bool]
SLOTS_ENV = "ACTBENCH_SLOTS"  # the folder of the host-wide CPU slots; every driver that shares it shares the cores
POLL_SECONDS = 0.25
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


@dataclass
class Summary:
    """What a suite did: counts by outcome and the records it produced."""

    total: int = 0
    skipped: int = 0
    elsewhere: int = 0  # claimed by another live process on the same store
    records: list[dict] = field(default_factory=list)

    def add(self, other: Summary) -> None:
        """Another phase of the same suite, counted in this summary."""
        self.total, self.skipped, self.elsewhere = (
            self.total + other.total,
            self.skipped + other.skipped,
            self.elsewhere + other.elsewhere,
        )
        self.records += other.records

    def count(self, status: str) -> int:
        return sum(r["status"] == status for r in self.records)

    def line(self) -> str:
        failed = [f"{label(r)} ({_first_line(r.get('error'))})" for r in self.records if r["status"] == Status.FAILED]
        return (
            f"{self.total} runs: {len(self.records)} trained ({self.count(Status.OK)} ok, "
            f"{self.count(Status.DIVERGED)} diverged, {self.count(Status.FAILED)} failed), "
            f"{self.skipped} already in the store"
            + (" (--force trains them again)" if self.skipped else "")
            + (f", {self.elsewhere} being trained by another process" if self.elsewhere else "")
            + (f"; failed: {'; '.join(failed)} (whole errors: python -m bench.export)" if failed else "")
        )


def _first_line(error: str | None, limit: int = 160) -> str:
    """A failed run's error as the summary names it: its first line, cut at ``limit`` characters."""
    text = (error or "").strip()
    line = text.splitlines()[0] if text else "no error recorded"
    return line if len(line) <= limit else line[: limit - 3] + "..."


def usable_cpus() -> int:
    """The CPUs this process may use: its affinity mask, capped by a cgroup (v2) CPU quota if one is set."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            n = min(n, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return n


GPU_BYTES_PER_WORKER = 2**30  # a CUDA worker's context, dataset and runs fit in far less (the records' peak memory)


def default_workers(specs: list[RunSpec], threads: int) -> int:
    """The usable cores divided by the threads per run, on a CPU and on CUDA alike: these small runs are bound by
    Python and kernel launches, so processes sharing one GPU add up (measured on an H100: 1, 4, 8 and 12 one-thread
    workers trained the MLP at 43k, 149k, 344k and 498k samples/s together). On CUDA at most one worker per GiB of
    the GPU's memory."""
    workers = max(1, usable_cpus() // threads)
    if gpu := next((s.device for s in specs if s.device.startswith("cuda")), None):
        import torch

        memory = torch.cuda.get_device_properties(torch.device(gpu)).total_memory
        workers = max(1, min(workers, memory // GPU_BYTES_PER_WORKER))
    return workers


class Slots:
    """Host-wide CPU slots: one lock file per usable CPU, held (``fcntl.flock``) by a driver while a run of its own
    trains. Each driver also holds a lock on a file of its own while it lives, and takes at most its fair share of
    the slots (all of them over the live drivers), so a suite started second is not starved by the first. The OS
    releases every lock of a driver that dies, so a killed driver never leaves slots taken."""

    def __init__(self, count: int, folder: Path | None = None) -> None:
        default = Path(tempfile.gettempdir()) / f"actbench-cpu-slots-{os.getuid()}"
        self.folder = Path(folder or os.environ.get(SLOTS_ENV) or default)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.paths = [self.folder / f"cpu{i}" for i in range(count)]
        self.held: dict[str, list[IO]] = {}
        self.me = self._lock(self.folder / f"driver-{os.getpid()}-{id(self)}")

    @staticmethod
    def _lock(path: Path) -> IO | None:
        """An open handle holding an exclusive lock on ``path``, or None if another handle holds it."""
        handle = open(path, "a")  # noqa: SIM115 (held open: the lock lives as long as the handle)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except OSError:
            handle.close()
            return None

    def drivers(self) -> int:
        """Live drivers sharing these slots (this one included); the files of dead ones are removed."""
        alive = 0
        for path in self.folder.glob("driver-*"):
            free = self._lock(path)
            if free is None:
                alive += 1
            else:
                path.unlink(missing_ok=True)
                free.close()
        return max(1, alive)

    def take(self, key: str, n: int) -> bool:
        """Lock ``n`` free slots for run ``key``; False (holding none) if fewer are free or this driver would exceed
        its fair share while it already trains something."""
        mine = sum(len(h) for h in self.held.values())
        if mine and mine + n > math.ceil(len(self.paths) / self.drivers()):
            return False
        got: list[IO] = []
        for path in self.paths:
            if len(got) == min(n, len(self.paths)):
                break
            if (handle := self._lock(path)) is not None:
                got.append(handle)
        if len(got) < min(n, len(self.paths)):
            for handle in got:
                handle.close()
            return False
        self.held[key] = got
        return True

    def give(self, key: str) -> None:
        for handle in self.held.pop(key, []):
            handle.close()

    def close(self) -> None:
        for key in list(self.held):
            self.give(key)
        if self.me is not None:
            Path(self.me.name).unlink(missing_ok=True)
            self.me.close()


_events = None  # the worker's queue of epoch events to the driver (set by _start_worker)


def sendable(specs: list[RunSpec]) -> dict[str, tasks.Task]:
    """The tasks of ``specs`` as the workers will receive them (a task registered in this process, by a script or a
    module, trains there too); one error line for one whose code a spawned worker cannot import (checked by the
    command lines before a store is opened, and again by the pool)."""
    used = {name: tasks.TASKS[name] for name in dict.fromkeys(s.task for s in specs)}
    main_file = getattr(sys.modules["__main__"], "__file__", None)
    for name, task in used.items():
        where = getattr(task.implementation, "__module__", None) or type(task.implementation).__module__
        try:
            pickle.dumps(task)
        except Exception as exc:
            raise InputError(
                f"task {name!r} cannot be sent to the worker processes ({exc}): define it in a module"
            ) from None
        if where == "__main__" and main_file is None:
            raise InputError(f"task {name!r} is defined in an interactive session: define it in a module or a script")
    return used


def _start_worker(threads: int, events, registered: dict) -> None:
    """Pool initializer: torch threads once per worker; the tasks registered in the driver (:func:`sendable`);
    Ctrl-C is the driver's to handle, not the workers'; a worker whose driver died (kill -9) ends itself, since nothing
    would collect its results."""
    import torch

    global _events
    tasks.TASKS.update(registered)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_flush_denormal(True)  # before torch starts its threads, which inherit it (see loop.flush_denormals)
    keep_freed_memory()
    torch.set_num_threads(threads)
    _events = events
    threading.Thread(target=_end_with, args=(os.getppid(),), daemon=True).start()


def keep_freed_memory() -> None:
    """This process's freed memory stays with it (glibc on Linux; elsewhere nothing changes): by default a freed block
    of 128 KiB or more goes back to the kernel, and the next step's tensor of that size faults its pages in again
    (about 600 pages a CNN training step; 2-5 % of its time, measured). Allocation only: no result changes."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)  # glibc's largest: blocks up to 32 MiB come from the heap
    libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)  # and the heap keeps up to 1 GiB free


def _end_with(driver: int) -> None:
    while os.getppid() == driver:
        time.sleep(1)
    os._exit(1)


def _work(spec: RunSpec, data_dir: str | None, download: bool) -> loop.RunResult:
    def on_epoch(epoch: int, metrics: dict) -> None:
        _events.put((spec.key, epoch, metrics))

    return loop.attempt(spec, data_dir, download=download, on_epoch=on_epoch)


def _drain(events, progress: Progress) -> None:
    while True:
        try:
            progress.epoch(*events.get_nowait())
        except Exception:  # queue.Empty, from the multiprocessing queue
            return


def _death(processes: Iterable[multiprocessing.process.BaseProcess]) -> str:
    """How a broken pool's worker ended: ``killed by SIGKILL``, ``exit code 1``; the pool ends the others with
    SIGTERM once one has died, so a SIGTERM is the cause only if it is the only end seen."""
    codes = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
    code = next((c for c in codes if c != -signal.SIGTERM), codes[0] if codes else None)
    if code is None:
        return "how is unknown"
    return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"


def _died(future: cf.Future) -> bool:
    """Whether a settled run's worker process died under it (or the run never started in a pool that broke)."""
    return future.cancelled() or isinstance(future.exception(), cf.process.BrokenProcessPool)


def _pool(
    specs: list[RunSpec],
    claim: Claim,
    data_dir: str | None,
    download: bool,
    workers: int,
    threads: int,
    progress: Progress,
) -> Iterator[loop.RunResult]:
    """Yield each run's result as a worker finishes it. A run in flight when a worker process died is trained again
    alone (nothing else in flight), so a second death is its own: then it is recorded ``failed``."""
    registered = sendable(specs)
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    slots = Slots(usable_cpus())
    todo, suspects = deque(specs), deque[RunSpec]()
    flight: dict[cf.Future, RunSpec] = {}
    processes: dict[int, multiprocessing.process.BaseProcess] = {}  # the pool's workers, to read how one ended
    alone = False

    def new_pool() -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(
            workers, context, initializer=_start_worker, initargs=(threads, events, registered)
        )

    def submit(spec: RunSpec) -> None:
        flight[pool.submit(_work, spec, data_dir, download)] = spec
        processes.update(getattr(pool, "_processes", None) or {})
        progress.started(spec)

    pool = new_pool()
    try:
        while todo or suspects or flight:
            while len(flight) < workers and not alone and (todo or suspects):
                if suspects and flight:
                    break  # a suspect trains alone: wait for the runs in flight
                spec = suspects[0] if suspects else todo[0]
                if not slots.take(spec.key, threads):
                    break
                if suspects:
                    suspects.popleft()
                    alone = True
                elif not claim(todo.popleft()):
                    slots.give(spec.key)
                    progress.finished(spec.key)
                    continue
                submit(spec)
            if not flight:  # every CPU slot is taken by other suites on this machine
                time.sleep(POLL_SECONDS)
                continue
            done, _ = cf.wait(flight, timeout=POLL_SECONDS, return_when=cf.FIRST_COMPLETED)
            _drain(events, progress)
            broken = any(_died(f) for f in done)
            if broken:  # a worker died: the pool is unusable, and every run in flight is settled by its shutdown
                pool.shutdown(wait=True, cancel_futures=True)  # joins the workers: their exit codes are known after
                how = _death(processes.values())
                done = set(flight)
            retried = []
            for future in done:
                spec = flight.pop(future)
                slots.give(spec.key)
                if not _died(future):
                    yield future.result()  # a finished run; bad input inside a worker raises here and stops the suite
                elif alone:
                    yield loop.failed(spec, RuntimeError(f"its worker process died twice (the second time: {how})"))
                else:
                    suspects.append(spec)
                    retried.append(spec.label())
            if retried:
                progress.say(f"a worker process died ({how}) while training {', '.join(retried)}: trained again, alone")
            alone = alone and bool(flight)  # a suspect that finished frees the pool for the others
            if broken:
                pool, alone = new_pool(), False
                processes.clear()
    finally:
        for process in list(getattr(pool, "_processes", {}).values()):  # Ctrl-C, or an error that stops the suite
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        slots.close()


def check(executor: str, threads: int = 1, workers: int | None = None, gpus_per_run: float = 0.25, ray_address=None):
    """InputError for an unknown executor, bad worker or thread counts, bad Ray resources or an unreachable head."""
    choose("executor", executor, EXECUTORS)
    if threads < 1 or (workers is not None and workers < 1):
        raise InputError(f"--workers and --threads-per-run must be at least 1, got {workers} and {threads}")
    if executor == "ray":
        cluster.check(threads, gpus_per_run, ray_address)


def execute(
    specs: list[RunSpec],
    store: Store,
    *,
    data_dir: str | Path | None = None,
    download: bool = False,
    force: bool = False,
    progress: bool = True,
    on_record: Callable[[dict], None] | None = None,
    executor: str = "local",
    workers: int | None = None,
    threads: int = 1,
    ray_address: str | None = None,
    gpus_per_run: float = 0.25,
    expected: Mapping[str, float] | None = None,
) -> Summary:
    """Train every spec without a result in the store (all of them with ``force``), saving each as it finishes.

    A run that ``failed`` before is trained again; an ``ok`` or ``diverged`` one is a result and is skipped.
    ``expected`` (seconds per spec key, from a plan) makes the progress lines' time left the plan's, not an average
    of the runs finished so far.

    Each run is claimed in the store just before it starts, so processes sharing a store split the work
    between them; a claim is released if the run does not finish (Ctrl-C, an error that stops the suite).
    """
    check(executor, threads, workers, gpus_per_run, ray_address)
    done = set() if force else store.finished_keys()
    todo = [s for s in specs if s.key not in done]
    summary = Summary(total=len(specs), skipped=len(specs) - len(todo))
    data = str(data_dir) if data_dir is not None else None
    unsaved: set[str] = set()
    n = workers or default_workers(todo, threads)
    shown = Progress(todo, progress, expected, n)

    def claim(spec: RunSpec) -> bool:
        if store.claim(spec.key, force=force):
            unsaved.add(spec.key)
            return True
        if store.has(spec.key) and not force:
            summary.skipped += 1  # finished by another process meanwhile
        else:
            summary.elsewhere += 1
        return False

    if executor == "ray":
        finished = cluster.run(todo, claim, data, download, ray_address, threads, gpus_per_run)
    else:
        finished = _pool(todo, claim, data, download, n, threads, shown)
    try:
        for result in finished:
            result.record.update(executor=executor, workers=None if executor == "ray" else n)
            store.save(result.record, result.epochs, result.layers)
            unsaved.discard(result.record["key"])
            summary.records.append(result.record)
            shown.finished(result.record["key"], result.record)
            if on_record is not None:
                on_record(result.record)
    finally:
        finished.close()  # stops the executor's work in flight (a generator's cleanup)
        shown.close()
        for key in unsaved:
            store.release(key)
    return summary
