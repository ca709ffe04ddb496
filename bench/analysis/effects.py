"""Effects beside the activation's own: how a factor's gain (a regularizer's over none) differs between activations,
and whether the activations' ranking at one budget holds at another. Pure functions of run frames.

The paired comparison of a factor's levels with a reference level (each initializer against ``auto``, each
regularizer against none) is :func:`bench.analysis.stats.paired_tests` with ``item`` set to that factor.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from bench.analysis.stats import holm, metric_values
from bench.tasks import Metric

INTERACTION_COLUMNS = ("F", "df_between", "df_within", "p_value", "p_holm", "n_items", "spread", "gains")
AGREEMENT_COLUMNS = ("n_items", "rho", "ci_low", "ci_high", "n_short_seeds", "n_long_seeds")


def gains(
    runs: pd.DataFrame, factor: str, reference: str, metric: str, setting: Sequence[str], item: str = "activation"
) -> pd.DataFrame:
    """Per run at a level of ``factor`` other than ``reference``: its ``metric`` minus that of the run with the same
    setting, item and seed at ``reference`` (``gain``), both ok; columns ``[*setting, factor, item, seed, gain]``."""
    keys = [*setting, item, "seed"]
    frame = runs[[*keys, factor]].assign(_value=metric_values(runs, metric))
    base = frame[frame[factor].eq(reference)].drop(columns=factor).rename(columns={"_value": "_base"})
    out = frame[frame[factor].ne(reference)].merge(base, on=keys, how="inner")
    out["gain"] = out["_value"] - out["_base"]
    return out.dropna(subset=["gain"])[[*setting, factor, item, "seed", "gain"]]


def interaction(
    runs: pd.DataFrame,
    factor: str,
    reference: str,
    metric: str,
    setting: Sequence[str],
    item: str = "activation",
    higher_is_better: bool = True,
) -> pd.DataFrame:
    """Whether the items (activations) gain differently from each level of ``factor`` over ``reference``: per setting
    and level, the test of the item x factor interaction for that level, an analysis of variance of the per-seed
    gains (:func:`gains`) across items blocked by seed (:func:`blocked_anova`: a seed's runs share their data order,
    so its gains are paired across items); ``p_holm`` within each setting (the family: its levels). ``spread`` is the
    largest minus the smallest mean gain, ``gains`` each item's mean gain (the best first), both over the seeds every
    item has a gain for. Items with fewer than 2 gains are left out; a level with fewer than 2 items or seeds left
    has NaN statistics, one whose items' mean gains are all equal F = 0, p = 1."""
    setting = list(setting)
    rows = []
    for keys, level in gains(runs, factor, reference, metric, setting, item).groupby([*setting, factor], sort=False):
        table = level.pivot_table(index="seed", columns=item, values="gain", aggfunc="mean", sort=False)
        table = table.loc[:, table.count().ge(2)].dropna()  # items with 2 gains, then the seeds every one has
        f_value, p_value, df_between, df_within = blocked_anova(table.to_numpy())
        means = table.mean()
        rows.append(
            {
                **dict(zip([*setting, factor], keys if isinstance(keys, tuple) else (keys,), strict=True)),
                "F": f_value,
                "df_between": df_between,
                "df_within": df_within,
                "p_value": p_value,
                "n_items": table.shape[1],
                "spread": means.max() - means.min() if len(means) else np.nan,
                "gains": means.sort_values(ascending=not higher_is_better).to_dict(),
            }
        )
    columns = [*setting, factor, *INTERACTION_COLUMNS]
    if not rows:
        return pd.DataFrame(columns=columns)
    out = pd.DataFrame(rows)
    out["p_holm"] = out.groupby(setting, dropna=False)["p_value"].transform(holm) if setting else holm(out["p_value"])
    return out[columns]


def blocked_anova(values: np.ndarray) -> tuple[float, float, int, int]:
    """F, p, and the degrees of freedom of the columns' (items') effect in a seeds x items table with one value per
    cell, seeds as blocks (a randomized complete block design: the residual is the item x seed interaction). NaN
    statistics with fewer than 2 seeds or items; F = 0, p = 1 where the column means are all equal."""
    n, k = values.shape
    if n < 2 or k < 2:
        return np.nan, np.nan, max(k - 1, 0), max((k - 1) * (n - 1), 0)
    grand = values.mean()
    ss_items = n * ((values.mean(axis=0) - grand) ** 2).sum()
    ss_seeds = k * ((values.mean(axis=1) - grand) ** 2).sum()
    ss_residual = max(((values - grand) ** 2).sum() - ss_items - ss_seeds, 0.0)
    df_items, df_residual = k - 1, (k - 1) * (n - 1)
    if np.isclose(ss_items, 0.0, atol=1e-15):
        return 0.0, 1.0, df_items, df_residual
    if ss_residual == 0:
        return np.inf, 0.0, df_items, df_residual
    f_value = (ss_items / df_items) / (ss_residual / df_residual)
    return float(f_value), float(sps.f.sf(f_value, df_items, df_residual)), df_items, df_residual


def _seed_matrix(runs: pd.DataFrame, metric: str, items: list[str], item: str) -> pd.DataFrame:
    """Seeds (the index) x items of ``metric`` (NaN where a run did not end ok or is missing)."""
    frame = runs.assign(_value=metric_values(runs, metric)).pivot_table(
        index="seed", columns=item, values="_value", aggfunc="mean", dropna=False
    )
    return frame.reindex(columns=items).astype(float)


def _draw(rng: np.random.Generator, short: pd.DataFrame, long: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """One bootstrap resample of both seed matrices: the seeds they share drawn once for both (the same seed is the
    same initial weights and data order at either budget), each one's other seeds drawn for it alone."""
    shared = short.index.intersection(long.index)
    joint = rng.choice(shared, len(shared)) if len(shared) else np.array([], dtype=short.index.dtype)
    out = []
    for frame in (short, long):
        own = frame.index.difference(shared)
        own = rng.choice(own, len(own)) if len(own) else np.array([], dtype=frame.index.dtype)
        out.append(frame.loc[np.concatenate([joint, own])].to_numpy())
    return out[0], out[1]


def _rho(short: np.ndarray, long: np.ndarray) -> float:
    """Spearman's rho between two vectors of means, larger the better; an item without an ok run ranks last (as in
    ``stats.ranks``)."""
    a, b = np.nan_to_num(short, nan=-np.inf), np.nan_to_num(long, nan=-np.inf)
    if np.ptp(sps.rankdata(a)) == 0 or np.ptp(sps.rankdata(b)) == 0:
        return np.nan
    return float(sps.spearmanr(a, b).statistic)


def rank_agreement(
    short: pd.DataFrame,
    long: pd.DataFrame,
    setting: Sequence[str],
    metric: str | None = None,
    item: str = "activation",
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Per setting: Spearman's rank correlation between the items' mean ``metric`` in ``short`` and in ``long`` (two
    sets of runs of the same settings, e.g. two training budgets), over the items in both, with a percentile bootstrap
    interval over seeds: the seeds are resampled with replacement, jointly for all items (a seed is one draw of
    initial weights and data order, shared by the items) and, for a seed both sets ran, jointly for both sets (the
    same draw at either budget: :func:`_draw`). ``metric``: the runs' own test metric where not given;
    items rank in the direction of the runs' metric."""
    own = Metric.of(long)
    metric, sign = metric or own.test, own.sign
    rng = np.random.default_rng(seed)
    rows = []
    for keys, mine in long.groupby(list(setting), sort=False):
        keys = keys if isinstance(keys, tuple) else (keys,)
        theirs = short[(short[list(setting)] == pd.Series(keys, index=list(setting))).all(axis=1)]
        items = [a for a in dict.fromkeys(mine[item]) if a in set(theirs[item])]
        a, b = (sign * _seed_matrix(runs, metric, items, item) for runs in (theirs, mine))  # larger is better
        with warnings.catch_warnings():  # an item without an ok run in a resample has a NaN mean, by design
            warnings.simplefilter("ignore", RuntimeWarning)
            rho = _rho(np.nanmean(a, axis=0), np.nanmean(b, axis=0)) if len(items) >= 3 else np.nan
            draws = [
                _rho(*(np.nanmean(m, axis=0) for m in _draw(rng, a, b)))
                for _ in range(resamples if len(items) >= 3 else 0)
            ]
        draws = np.array([d for d in draws if np.isfinite(d)])
        tail = 100 * (1 - confidence) / 2
        low, high = np.percentile(draws, [tail, 100 - tail]) if len(draws) else (np.nan, np.nan)
        rows.append(
            {
                **dict(zip(setting, keys, strict=True)),
                "n_items": len(items),
                "rho": rho,
                "ci_low": float(low),
                "ci_high": float(high),
                "n_short_seeds": len(a),
                "n_long_seeds": len(b),
            }
        )
    return pd.DataFrame(rows, columns=[*setting, *AGREEMENT_COLUMNS])
