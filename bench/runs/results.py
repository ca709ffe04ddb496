"""The one reader of results: a suite's runs, epochs and layers from a store, as pandas DataFrames (which runs
belong to a suite: :mod:`bench.analysis.frames`), and every run or curve of a store for a notebook."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.analysis.frames import SuiteRuns, match
from bench.config import DEFAULT_STORE, RunSpec
from bench.runs.store import Store
from bench.tasks import fill_metric

__all__ = ["DEFAULT_STORE", "FIRST", "curves", "runs", "suite_runs"]


def suite_runs(specs: list[RunSpec], store: str | Path = DEFAULT_STORE) -> SuiteRuns:
    """Exactly the runs of ``specs`` in the read-only ``store`` (an InputError names a missing or foreign file)."""
    with Store(store, readonly=True) as db:
        stored = db.runs()
        found, missing, n_matched = match(specs, stored)
        keys = found["key"].tolist()
        epochs, layers = db.epochs(keys), db.layers(keys)
    return SuiteRuns(
        specs=specs,
        runs=found,
        epochs=epochs,
        layers=layers,
        missing=missing,
        other_runs=len(stored) - n_matched,
        duplicates=n_matched - len(found),
    )


FIRST = ("activation", "dataset", "model", "init", "optimizer", "lr", "seed")  # what a reader names a run by


def runs(store: str | Path = DEFAULT_STORE) -> pd.DataFrame:
    """Every run in ``store``, one row each, its readable settings first, then status, the test and best validation
    values of each metric the runs are scored by, and the rest."""
    with Store(store, readonly=True) as s:
        frame = s.runs()
    names = fill_metric(frame).get("metric", pd.Series(dtype=object)).dropna().unique()
    scores = [column for name in names for column in (f"test_{name}", f"best_val_{name}")]
    first = [c for c in (*FIRST, "status", *scores, "epochs_run") if c in frame.columns]
    return frame[first + [c for c in frame.columns if c not in first]]


def curves(store: str | Path = DEFAULT_STORE, layers: bool = False) -> pd.DataFrame:
    """Per-epoch rows (per-layer probe rows with ``layers``) in long format, each with its run's readable settings."""
    with Store(store, readonly=True) as s:
        rows = s.layers() if layers else s.epochs()
        named = s.runs()
    readable = [c for c in FIRST if c in named.columns]
    return named[["key", *readable]].merge(rows, on="key", how="right")[[*readable, *rows.columns]]
