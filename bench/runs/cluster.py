"""The Ray executor: each run is one Ray task.

A task returns its run's result to the driver, which alone writes the store, so SQLite stays the single
source of truth. A task asks for ``threads`` CPUs, and sets torch's thread count to match (as a local pool worker
does, so records are equal), and for ``gpus_per_run`` of a GPU when its run uses CUDA. A task whose worker dies is
retried by Ray (``MAX_RETRIES``); one that still fails becomes a ``failed`` record with Ray's error, and the
suite goes on. Workers need actbench installed and the datasets at the same path (or ``$ACTBENCH_DATA``) as the driver.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterator

from activations.errors import InputError
from bench import tasks
from bench.config import RunSpec
from bench.harness import loop

MAX_RETRIES = 3  # Ray retries a task this many times when its worker process dies
CONNECT_TIMEOUT = 10  # seconds to wait for the Ray head to accept a connection


def check(threads: int, gpus_per_run: float, address: str | None = None):
    """Ray, imported, after checking the task resources and that the head at ``address`` answers; InputError
    otherwise (without Ray, it says how to install it). Ray itself would retry an unreachable head for minutes."""
    if not 0 < gpus_per_run <= 1:
        raise InputError(f"--gpus-per-run must be in (0, 1], got {gpus_per_run:g}")
    try:
        import ray
    except ImportError:
        raise InputError("--executor ray needs Ray: pip install 'actbench[ray]'") from None
    if address and address != "auto":
        host, _, port = address.removeprefix("ray://").rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot reach the Ray head at {address!r} (expected HOST:PORT): {exc}") from None
    return ray


def _task(spec: RunSpec, data_dir: str | None, download: bool, threads: int, task: tasks.Task) -> loop.RunResult:
    """One run in a Ray worker, its task as the driver registered it (a task registered in a notebook trains too)."""
    import torch

    tasks.TASKS[task.name] = task
    torch.set_flush_denormal(True)  # before torch starts its threads where it has not yet (see loop.flush_denormals)
    torch.set_num_threads(threads)
    return loop.attempt(spec, data_dir, download=download)


def run(
    specs: list[RunSpec],
    claim: Callable[[RunSpec], bool],
    data_dir: str | None,
    download: bool,
    address: str | None,
    threads: int,
    gpus_per_run: float,
) -> Iterator[loop.RunResult]:
    """Yield each run's result as its Ray task finishes; closing the generator cancels the rest.

    Joins the cluster at ``address``, or starts a local Ray instance with this machine's cores (unless Ray
    is already initialised in this process). Runs are claimed as they are submitted, a few more than the
    cluster can run at once, so processes sharing a store still split the work.
    """
    import ray  # checked by check: installed, resources valid, head reachable

    started = not ray.is_initialized()
    if started:
        try:
            if address:
                ray.init(address=address, logging_level=logging.WARNING)
            else:
                ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level=logging.WARNING)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise InputError(f"cannot start or join Ray at {address or 'a local instance'}: {exc}") from None
    remote = ray.remote(_task)
    window = max(1, int(ray.cluster_resources().get("CPU", 1) // threads)) + 2
    queue = iter(specs)
    pending: dict = {}
    try:
        while True:
            while len(pending) < window:
                spec = next(queue, None)
                if spec is None:
                    break
                if not claim(spec):
                    continue
                options = {"num_cpus": threads, "max_retries": MAX_RETRIES}
                if spec.device.startswith("cuda"):
                    options["num_gpus"] = gpus_per_run
                task = tasks.TASKS[spec.task]
                pending[remote.options(**options).remote(spec, data_dir, download, threads, task)] = spec
            if not pending:
                return
            [ref], _ = ray.wait(list(pending), num_returns=1)
            spec = pending.pop(ref)
            try:
                yield ray.get(ref)
            except InputError as exc:  # bad input inside a task (Ray's error subclasses it): stop as locally
                raise InputError(str(getattr(exc, "cause", exc))) from None
            except Exception as exc:  # the worker died MAX_RETRIES + 1 times, or Ray itself failed
                yield loop.failed(spec, exc)
    finally:
        if started:  # a local instance of our own: its tasks end with it (cancelling a task as it completes
            ray.shutdown()  # crashed Ray's driver with "Tried to complete task that was not pending")
        elif pending:
            _, running = ray.wait(list(pending), num_returns=len(pending), timeout=0)
            for ref in running:
                ray.cancel(ref, force=True)
