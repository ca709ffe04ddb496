"""The learning-rate choice: for each activation in each setting, the rate of a log grid with the best mean final
validation metric over the tuning seeds (the highest accuracy, the lowest loss: the runs' own metric), by the same
rule for ReLU as for every other activation.

It reads validation metrics only: the test split never enters a choice. A run that diverged or failed counts as the
worst possible score, so a rate that breaks on any tuning seed loses to one that trains on all of them; a run that did
not learn counts as chance (or its own score, where that is worse), so that a rate which learns on one tuning seed and
stays at chance on the other is judged by their mean, not by its lucky seed. Equal scores
go to the smaller rate (the more cautious one). A best rate at the grid's edge is marked: the optimum may lie beyond
it, and :func:`extended` gives the grid one log step past that edge. A pure function of runs (DataFrames in, a
DataFrame out), so a report can show the choice and the sensitivity curve behind it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bench.analysis.frames import matched
from bench.analysis.outcomes import chance_levels, not_learned
from bench.config import RunSpec, Status
from bench.plan import Plan, setting_id
from bench.tasks import Metric

CHOICE_COLUMNS = ("lr", "score", "n_seeds", "n_broken", "edge", "grid")


def _per(setting: Sequence[str]) -> list[str]:
    """What one choice is made for: the setting's columns and the activation, each once (a setting may name it)."""
    return list(dict.fromkeys([*setting, "activation"]))


def scores(runs: pd.DataFrame, setting: Sequence[str], metric: Metric | None = None) -> pd.DataFrame:
    """Per setting, activation and rate: the mean final validation ``metric`` (default the runs' own) over its tuning
    seeds (``score``; the worst possible, -inf where higher is better and +inf where lower is, if any run diverged or
    failed, so that such a rate is never chosen over one that trains; a run that did not learn
    (:func:`bench.analysis.outcomes.not_learned`, within the setting) scores as chance or its own worse value), the
    seed count and broken runs."""
    metric = metric or Metric.of(runs)
    keys = [*_per(setting), "lr"]
    recorded = runs.get(metric.val, pd.Series(np.nan, index=runs.index))  # absent: none finished ok
    value = pd.to_numeric(recorded, errors="coerce").where(runs["status"].eq(Status.OK))
    chance = chance_levels(runs, metric)
    stuck = not_learned(runs, [c for c in setting if c != "activation"], metric)
    value = value.where(~stuck, np.where(metric.sign * value < metric.sign * chance, value, chance))
    frame = runs[keys].assign(_value=value, _broken=~np.isfinite(value))  # not ok, or no finite value
    grouped = frame.groupby(keys, dropna=False)
    out = grouped.agg(n_seeds=("_value", "size"), n_broken=("_broken", "sum"), score=("_value", "mean"))
    out["score"] = out["score"].where(out["n_broken"].eq(0), -metric.sign * math.inf)
    return out.reset_index()


def worst(metric: Metric, scores: pd.Series) -> float:
    """The finite score a broken rate counts as in a mean over the grid of ``scores``: 0 where higher is better (no
    accuracy is lower); where lower is better, the chance level or the worst finite score, whichever is worse (a loss
    has no ceiling, and a rate that trains badly can end above chance)."""
    if metric.higher_is_better:
        return 0.0
    finite = scores[np.isfinite(scores)]
    return float(max(metric.chance, finite.max())) if len(finite) else metric.chance


def floored(table: pd.DataFrame, metric: Metric) -> pd.DataFrame:
    """A :func:`scores` table with a broken rate's infinite score at :func:`worst`, so that it can be averaged."""
    return table.assign(score=table["score"].where(np.isfinite(table["score"]), worst(metric, table["score"])))


def choose(runs: pd.DataFrame, setting: Sequence[str], metric: Metric | None = None) -> pd.DataFrame:
    """One row per setting and activation: the chosen ``lr`` (best by :func:`scores`), its ``score`` and seed count,
    ``n_broken`` (diverged or failed runs over the whole grid), ``edge`` ("low", "high" or "") where the choice is the
    grid's smallest or largest rate, and the ``grid`` it was chosen from."""
    metric = metric or Metric.of(runs)
    table, per = scores(runs, setting, metric).sort_values("lr"), _per(setting)
    rows = []
    for group, rates in table.groupby(per, dropna=False, sort=False):
        best = rates.loc[(metric.sign * rates["score"]).idxmax()]  # the first best in ascending lr: ties to the smaller
        grid = tuple(sorted(rates["lr"]))
        edge = "" if len(grid) < 2 else "low" if best["lr"] == grid[0] else "high" if best["lr"] == grid[-1] else ""
        names = group if isinstance(group, tuple) else (group,)
        rows.append(
            {
                **dict(zip(per, names, strict=True)),
                "lr": best["lr"],
                "score": best["score"],
                "n_seeds": int(best["n_seeds"]),
                "n_broken": int(rates["n_broken"].sum()),
                "edge": edge,
                "grid": grid,
            }
        )
    return pd.DataFrame(rows, columns=[*per, *CHOICE_COLUMNS])


def extended(grid: Sequence[float], edge: str) -> tuple[float, ...]:
    """``grid`` with one more rate past ``edge`` ("low" or "high"), unchanged for "". The new rate repeats the ratio
    the grid took two rates before its edge (one rate before, for a grid of two), so a 1-3-10 grid goes on in 1-3-10
    steps: (3e-4, 1e-3, 3e-3, 1e-2) extends to 3e-2 above and 1e-4 below."""
    rates = sorted(grid)
    if edge not in ("low", "high", "") or len(rates) < 2:
        raise ValueError(f"extend a log grid of at least 2 rates at 'low' or 'high', not {edge!r} of {rates}")
    if not edge:
        return tuple(rates)
    if edge == "high":
        ratio = rates[-2] / rates[-3] if len(rates) > 2 else rates[-1] / rates[-2]
        return (*rates, rates[-1] * ratio)
    ratio = rates[2] / rates[1] if len(rates) > 2 else rates[1] / rates[0]
    return (rates[0] / ratio, *rates)


def _tuning_runs(plan: Plan, runs: pd.DataFrame, extra: dict[str, tuple[float, ...]]) -> pd.DataFrame:
    """The plan's tuning runs among ``runs`` (the latest of each spec), each with its ``setting`` (a setting id) and
    only for settings whose every tuning run is there: a choice is never made from part of a grid."""
    specs = plan.tuning(extra)
    found = matched(specs, runs).drop_duplicates(subset="_spec", keep="last")
    found = found.assign(setting=[setting_id(specs[i]) for i in found["_spec"]])
    wanted = pd.Series([setting_id(s) for s in specs]).value_counts()
    complete = found["setting"].map(found["setting"].value_counts()).eq(found["setting"].map(wanted))
    return found[complete]


def extensions(plan: Plan, runs: pd.DataFrame) -> dict[str, tuple[float, ...]]:
    """Per evaluation spec key: the rate to add past its grid's edge, where the best of its complete base grid is at
    that edge (nothing for the others). A grid extends once; a best still at the new edge is reported, not chased."""
    chosen = choose(_tuning_runs(plan, runs, {}), ["setting"]).set_index("setting")
    out: dict[str, tuple[float, ...]] = {}
    for spec in plan.specs:
        sid = setting_id(spec)
        if sid in chosen.index and chosen.at[sid, "edge"]:
            grid = plan.grids[spec.key]
            out[spec.key] = tuple(sorted(set(extended(grid, chosen.at[sid, "edge"])) - set(grid)))
    return out


def evaluation(
    plan: Plan, runs: pd.DataFrame, extra: dict[str, tuple[float, ...]]
) -> tuple[list[RunSpec], list[RunSpec], pd.DataFrame]:
    """The evaluation runs at their chosen rates, those whose rate is not chosen yet (a tuning run missing), and the
    choices (one row per setting: ``tuning.choose``'s columns with the setting id) from the base and extra rates."""
    chosen = choose(_tuning_runs(plan, runs, extra), ["setting"])
    rate = dict(zip(chosen["setting"], chosen["lr"], strict=True))
    ready = [dataclasses.replace(s, lr=rate[setting_id(s)]) for s in plan.specs if setting_id(s) in rate]
    waiting = [s for s in plan.specs if setting_id(s) not in rate]
    return ready, waiting, chosen


@dataclasses.dataclass
class Tuned:
    """Where a tuned suite stands in a store: the rates added past a grid's edge (``extra``, by evaluation spec key),
    every tuning run with them, the evaluation runs at their chosen rates (``ready``) and those whose setting's tuning
    runs are not all in the store (``waiting``, at the suite's own rate), and the choices (:func:`evaluation`)."""

    extra: dict[str, tuple[float, ...]]
    tuning: list[RunSpec]
    ready: list[RunSpec]
    waiting: list[RunSpec]
    chosen: pd.DataFrame


def state(plan: Plan, runs: pd.DataFrame | None) -> Tuned:
    """A tuned ``plan`` against the stored ``runs`` (None: no store yet, nothing chosen): the one place that says what
    a tuned suite has trained, what it trains next and at which rates."""
    if runs is None:
        return Tuned({}, plan.tuning(), [], list(plan.specs), pd.DataFrame(columns=["setting", *CHOICE_COLUMNS]))
    extra = extensions(plan, runs)
    return Tuned(extra, plan.tuning(extra), *evaluation(plan, runs, extra))


def candidates(plan: Plan) -> list[RunSpec]:
    """Every run a plan may train: its tuning runs with a rate past either edge of each grid, and its evaluation runs
    at any of those rates (which one is known only once its tuning runs have trained); its runs if it is untuned."""
    if not plan.tuned:
        return plan.specs
    past = {k: tuple(sorted({*extended(g, "low"), *extended(g, "high")} - set(g))) for k, g in plan.grids.items()}
    rates = {key: (*plan.grids[key], *past[key]) for key in plan.grids}
    return [*plan.tuning(past), *(dataclasses.replace(s, lr=r) for s in plan.specs for r in rates[s.key])]
