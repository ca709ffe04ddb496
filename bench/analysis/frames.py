"""Which stored runs make a suite: a suite's specs matched against a frame of records, without reading any store.

Runs are matched to the suite's specs on every RunSpec field except device and compile (which do not change a
result), a plugin activation's source hash included; of several runs of one spec the latest is used. Reports and
analyses take these frames; :mod:`bench.runs.results` fills them from a store.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bench.config import ADDED_FIELDS, FIELDS, RunSpec, flatten
from bench.tasks import fill_metric

__all__ = ["MATCH_COLUMNS", "SuiteRuns", "match", "matched", "spec_frame"]

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


def matched(specs: list[RunSpec], stored: pd.DataFrame) -> pd.DataFrame:
    """Every record of ``stored`` that is a run of one of ``specs``, with ``_spec``: that spec's position."""
    stored = stored.copy()
    flat = flatten(ADDED_FIELDS)  # as the store holds them
    for name in ADDED_FIELDS:  # a record from before the field existed had its default
        stored[name] = stored[name].fillna(flat[name]) if name in stored.columns else flat[name]
    stored = fill_metric(stored)  # and its task's metric
    if stored.empty or not set(MATCH_COLUMNS) <= set(stored.columns):
        return stored.iloc[0:0].assign(_spec=pd.Series(dtype=int))
    # Compare as the store holds them: JSON scalars, widths joined by commas.
    wanted = spec_frame(specs)[[*MATCH_COLUMNS, "_spec"]]
    return stored.merge(wanted, on=list(MATCH_COLUMNS), how="inner")


def match(specs: list[RunSpec], stored: pd.DataFrame) -> tuple[pd.DataFrame, list[RunSpec], int]:
    """The runs of ``stored`` (one row per record, oldest first) that are runs of ``specs``: the latest run of each
    spec in suite order, the specs without a run, and how many stored runs matched before keeping the latest."""
    found = matched(specs, stored)
    n_matched = len(found)
    found = found.drop_duplicates(subset="_spec", keep="last")  # oldest first: keep the latest
    present = set(found["_spec"])
    runs = found.sort_values("_spec").drop(columns="_spec").reset_index(drop=True)
    return runs, [s for i, s in enumerate(specs) if i not in present], n_matched
