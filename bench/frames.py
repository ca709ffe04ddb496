"""The one reader of results: a suite's runs, epochs and layers from a store, as pandas DataFrames.

Runs are matched to the suite's specs on every RunSpec field except device and compile (which do not change a
result), a plugin activation's source hash included; of several runs of one spec the latest is used. Reports and
analyses take these frames, never the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.config import ADDED_FIELDS, FIELDS, RunSpec
from bench.store import DEFAULT_PATH, Store

__all__ = ["DEFAULT_PATH", "MATCH_COLUMNS", "SuiteRuns", "spec_frame", "suite_runs"]

MATCH_COLUMNS = tuple(dict.fromkeys([*(f for f in FIELDS if f not in ("device", "compile")), *ADDED_FIELDS]))


@dataclass
class SuiteRuns:
    """A suite's runs found in a store, with their per-epoch and per-layer rows and what is missing or extra."""

    specs: list[RunSpec]
    runs: pd.DataFrame  # one row per spec found (the latest run of it), any status, in suite order
    epochs: pd.DataFrame
    layers: pd.DataFrame
    missing: list[RunSpec]  # specs of the suite without a run in the store
    other_runs: int  # runs in the store that are not part of the suite
    duplicates: int  # older runs of the same spec (another device or compile setting), not used


def spec_frame(specs: list[RunSpec]) -> pd.DataFrame:
    """One row per spec: key, the flat spec fields, and ``_spec``, its index in the suite."""
    return pd.DataFrame([{"key": s.key, **s.flat()} for s in specs]).assign(_spec=range(len(specs)))


def suite_runs(specs: list[RunSpec], store: str | Path = DEFAULT_PATH) -> SuiteRuns:
    """Exactly the runs of ``specs`` in the read-only ``store`` (an InputError names a missing or foreign file)."""
    with Store(store, readonly=True) as db:
        stored = db.runs()
        for name, default in ADDED_FIELDS.items():  # a record from before the field existed had its default
            stored[name] = stored[name].fillna(default) if name in stored.columns else default
        if stored.empty or not set(MATCH_COLUMNS) <= set(stored.columns):
            matched = stored.iloc[0:0].assign(_spec=pd.Series(dtype=int))
        else:
            # Compare as the store holds them: JSON scalars, widths joined by commas.
            wanted = spec_frame(specs)[[*MATCH_COLUMNS, "_spec"]]
            matched = stored.merge(wanted, on=list(MATCH_COLUMNS), how="inner")
        n_matched = len(matched)
        matched = matched.drop_duplicates(subset="_spec", keep="last")  # runs() is oldest first: keep the latest
        keys = matched["key"].tolist()
        epochs, layers = db.epochs(keys), db.layers(keys)
    found = set(matched["_spec"])
    return SuiteRuns(
        specs=specs,
        runs=matched.sort_values("_spec").drop(columns="_spec").reset_index(drop=True),
        epochs=epochs,
        layers=layers,
        missing=[s for i, s in enumerate(specs) if i not in found],
        other_runs=len(stored) - n_matched,
        duplicates=n_matched - len(matched),
    )


FIRST = ("activation", "dataset", "model", "init", "optimizer", "lr", "seed")  # what a reader names a run by


def runs(store: str | Path = DEFAULT_PATH) -> pd.DataFrame:
    """Every run in ``store``, one row each, its readable settings first, then status, metrics and the rest."""
    with Store(store, readonly=True) as s:
        frame = s.runs()
    first = [c for c in (*FIRST, "status", "test_acc", "best_val_acc", "epochs_run") if c in frame.columns]
    return frame[first + [c for c in frame.columns if c not in first]]


def curves(store: str | Path = DEFAULT_PATH, layers: bool = False) -> pd.DataFrame:
    """Per-epoch rows (per-layer probe rows with ``layers``) in long format, each with its run's readable settings."""
    with Store(store, readonly=True) as s:
        rows = s.layers() if layers else s.epochs()
        named = s.runs()
    readable = [c for c in FIRST if c in named.columns]
    return named[["key", *readable]].merge(rows, on="key", how="right")[[*readable, *rows.columns]]
