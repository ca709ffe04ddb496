"""actbench's benchmark harness, also for a notebook::

    import bench
    spec = bench.RunSpec(activation="elu", dataset="mnist", epochs=2)
    record = bench.train(spec)                          # one run in this process: its record (a dict)
    bench.run_suite(specs, store="runs.sqlite")         # on the worker pool; runs already in the store are skipped
    bench.results("runs.sqlite")                        # DataFrame: one row per run, readable columns first
    bench.curves("runs.sqlite")                         # DataFrame: per-epoch rows with activation, dataset, seed...

The harness (and torch) load on first use, so ``import bench`` is light.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bench.config import DEFAULT_STORE, RunSpec

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RunSpec", "curves", "results", "run_suite", "train"]


def train(spec: RunSpec, data_dir: str | Path | None = None, *, download: bool = False) -> dict:
    """Train ``spec`` in this process (torch's threads as they are set) and return its record."""
    from bench.harness import loop

    return loop.run(spec, data_dir, download=download).record


def run_suite(
    specs: list[RunSpec],
    store: str | Path = DEFAULT_STORE,
    *,
    data_dir: str | Path | None = None,
    workers: int | None = None,
    threads: int = 1,
    progress: bool = True,
) -> list[dict]:
    """Train every spec not yet in ``store`` on the worker pool, saving each as it finishes; the records trained."""
    from bench.runs.executors import execute
    from bench.runs.store import Store

    with Store(store) as opened:
        summary = execute(list(specs), opened, data_dir=data_dir, workers=workers, threads=threads, progress=progress)
    return summary.records


def results(store: str | Path = DEFAULT_STORE) -> pd.DataFrame:
    """One row per run in ``store``: activation, dataset, model, init, optimizer, lr, seed, status, metrics, ..."""
    from bench.runs import results

    return results.runs(store)


def curves(store: str | Path = DEFAULT_STORE, layers: bool = False) -> pd.DataFrame:
    """Per-epoch metrics (per-layer probes with ``layers``) of every run in ``store``, long format, readable columns."""
    from bench.runs import results

    return results.curves(store, layers)
