"""What one run came to: its configuration, its metric values, and whether it learned at all.

A run ends ok, diverged or failed (its status). Among the ok runs, one that **did not learn** is an outcome of its own:
its final validation metric went less than a quarter of the way (:data:`LEARNED`) from the metric's chance level
(ten classes: accuracy 0.1; a language model: the uniform distribution's loss) to the best mean of its setting, the
mean over seeds of the best configuration among the runs compared with each other there (every activation of a
setting, each at its own rate). A network stuck at chance with a working rate, or one whose units all died, ends
there. A quarter separates what the published reports show: runs stuck near chance end at 0 to 24 % of the way
(sigmoid in the ten-layer MLP under LeCun's init at 0.19 validation accuracy, tanh under N(0, 1) at 0.14 to 0.18,
hardsigmoid in the CNN at 0.10 and 0.29 against a best near 0.9), while the weakest runs that learned there reach
60 % and more (sigmoid under LeCun's init on its one good seed: 0.64). Where
even that best mean is no better than chance, no ok run of the setting learned. A run whose chance level is unknown
is counted as learned (nothing to measure it against). Only validation is read: the test split never decides.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from bench.config import FIELDS, Status
from bench.tasks import Metric

SPEC_COLUMNS: tuple[str, ...] = tuple(f for f in FIELDS if f not in ("seed", "device", "compile"))
LEARNED = 0.25  # the fraction of the way from chance to the setting's best mean that a run must go to have learned


def config_columns(runs: pd.DataFrame) -> list[str]:
    """The SPEC_COLUMNS present in ``runs``, in RunSpec order: what identifies a configuration."""
    return [c for c in SPEC_COLUMNS if c in runs.columns]


def metric_values(runs: pd.DataFrame, metric: str) -> pd.Series:
    """``metric`` as floats, NaN for non-ok runs and non-finite values; absent only if no run finished ok."""
    if metric not in runs.columns:
        if runs["status"].eq(Status.OK).any():
            raise KeyError(f"no metric column {metric!r} in the runs (columns: {', '.join(runs.columns)})")
        return pd.Series(np.nan, index=runs.index)
    values = pd.to_numeric(runs[metric]).astype(float)
    return values.where(runs["status"].eq(Status.OK) & np.isfinite(values))


def chance_levels(runs: pd.DataFrame, metric: Metric) -> pd.Series | float:
    """Each run's chance level (its ``chance`` column, where datasets differ), else the metric's."""
    return pd.to_numeric(runs["chance"]).astype(float) if "chance" in runs.columns else metric.chance


def progress(runs: pd.DataFrame, setting: Sequence[str], metric: Metric | None = None) -> pd.Series:
    """Per run: how far its final validation metric went from chance (0) toward its setting's best mean (1); NaN for
    a run that is not ok or has no chance level, -inf where the setting's best mean is no better than chance."""
    metric = metric or Metric.of(runs)
    if metric.val not in runs.columns:  # no validation metric recorded: nothing to measure a run by
        return pd.Series(np.nan, index=runs.index)
    value, chance = metric_values(runs, metric.val), chance_levels(runs, metric)
    key = lambda columns: [runs[c] for c in columns] if columns else np.zeros(len(runs))
    mean = (metric.sign * value).groupby(key(config_columns(runs)), dropna=False).transform("mean")
    best = mean.groupby(key(list(setting)), dropna=False).transform("max")  # larger is better: sign applied
    span = best - metric.sign * chance
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (metric.sign * (value - chance)) / span
    return out.where(span > 0, -np.inf).where(value.notna() & np.isfinite(chance) & best.notna())


def not_learned(runs: pd.DataFrame, setting: Sequence[str], metric: Metric | None = None) -> pd.Series:
    """Per run: True for an ok run that did not learn (:func:`progress` below :data:`LEARNED`), False for every
    other run (diverged and failed runs are counted as such, not here). ``setting``: the columns whose runs are
    compared with each other (every configuration column but the activation and the rate, for a tuned suite)."""
    return progress(runs, setting, metric).lt(LEARNED)


def verdict(n_pairs: int, stuck: int, base_stuck: int, baseline: str) -> str:
    """A comparison's verdict where one of its runs did not learn (``stuck`` of the item's ``n_pairs`` paired seeds,
    ``base_stuck`` of the baseline's): "did not learn (n of n seeds)" where none of the item's seeds learned and every
    one of the baseline's did, else "unstable (k of n seeds did not learn)", naming the baseline's where it has any."""
    if stuck == n_pairs and not base_stuck:
        return f"did not learn ({stuck} of {n_pairs} seeds)"
    said = [f"{stuck} of {n_pairs} seeds did not learn"] if stuck else []
    said += [f"{baseline}'s did not learn in {base_stuck} of {n_pairs}"] if base_stuck else []
    return f"unstable ({'; '.join(said)})"


def tested(verdicts: pd.Series) -> pd.Series:
    """Per verdict of :func:`bench.analysis.stats.paired_tests`: whether a test made it (better, worse or no evidence),
    not a run that did not learn (:func:`verdict`)."""
    return verdicts.isin(TESTED)


TESTED = ("better", "worse", "no evidence")
