"""The Ray executor: each group of runs (one run, or seeds batched by ``bench.ensemble``) is one Ray task.

A task returns its runs' results to the driver, which alone writes the store, so SQLite stays the single
source of truth. A task asks for ``cpus_per_run`` CPUs, and sets torch's thread count to match, and for
``gpus_per_run`` of a GPU when its runs use CUDA. A task whose worker dies is retried by Ray (``MAX_RETRIES``);
one that still fails becomes ``failed`` records with Ray's error, and the suite goes on. Workers need
actbench installed and the datasets at the same path (or ``$ACTBENCH_DATA``) as the driver.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from activations.errors import InputError
from bench import train
from bench.config import RunSpec

MAX_RETRIES = 3  # Ray retries a task this many times when its worker process dies
CONNECT_TIMEOUT = 10  # seconds to wait for the Ray head to accept a connection


def check(cpus_per_run: float, gpus_per_run: float, address: str | None = None):
    """Ray, imported, after checking the task resources and that the head at ``address`` answers; InputError
    otherwise (without Ray, it says how to install it). Ray itself would retry an unreachable head for minutes."""
    if not (cpus_per_run > 0 and 0 < gpus_per_run <= 1):
        raise InputError(
            f"--cpus-per-run must be > 0 and --gpus-per-run in (0, 1], got {cpus_per_run:g} and {gpus_per_run:g}"
        )
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


def _task(specs: list[RunSpec], data_dir: str | None, download: bool, threads: int) -> list[train.RunResult]:
    import torch

    from bench.executors import train_group

    torch.set_num_threads(threads)
    return train_group(specs, data_dir, download, progress=False)


def run(
    groups: list[list[RunSpec]],
    claim,
    data_dir: str | Path | None,
    download: bool,
    address: str | None,
    cpus_per_run: float,
    gpus_per_run: float,
) -> Iterator[tuple[list[RunSpec], list[train.RunResult]]]:
    """Yield (claimed specs, results) per group as Ray tasks finish; closing the generator cancels the rest.

    Joins the cluster at ``address``, or starts a local Ray instance with this machine's cores (unless Ray
    is already initialised in this process). Groups are claimed as they are submitted, a few more than the
    cluster can run at once, so processes sharing a store still split the work.
    """
    import ray  # checked by executors.check: installed, resources valid, head reachable

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
    threads = max(1, math.floor(cpus_per_run))
    window = max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_run)) + 2
    data = str(data_dir) if data_dir is not None else None
    queue = iter(groups)
    pending: dict = {}
    try:
        while True:
            while len(pending) < window:
                group = next(queue, None)
                if group is None:
                    break
                mine = claim(group)
                if not mine:
                    continue
                options = {"num_cpus": cpus_per_run, "max_retries": MAX_RETRIES}
                if any(s.device.startswith("cuda") for s in mine):
                    options["num_gpus"] = gpus_per_run
                pending[remote.options(**options).remote(mine, data, download, threads)] = mine
            if not pending:
                return
            [ref], _ = ray.wait(list(pending), num_returns=1)
            mine = pending.pop(ref)
            try:
                results = ray.get(ref)
            except InputError as exc:  # bad input inside a task (Ray's error subclasses it): stop as locally
                raise InputError(str(getattr(exc, "cause", exc))) from None
            except Exception as exc:  # the worker died MAX_RETRIES + 1 times, or Ray itself failed
                results = [train.failed(s, exc) for s in mine]
            yield mine, results
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)
        if started:
            ray.shutdown()
