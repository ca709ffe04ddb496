"""Statistics over finished runs: means with t confidence intervals, ranks, paired tests, curves, probes.

Input is the store's DataFrames (``runs``, ``epochs``, ``layers``); output is tidy DataFrames a report renders.
A *configuration* is every RunSpec field except ``seed`` (and ``device``/``compile``, which should not change
the result), so runs of one configuration differ only by seed; a *pair* is two runs of the same configuration
and seed that differ only in activation. Only ``ok`` runs enter a mean or a test; diverged and failed runs are
counted in their own columns so that they are shown, never silently dropped. Non-finite values are missing.
Where no metric is named, a function reads the runs' own (:meth:`bench.tasks.Metric.of`): its test column and
whether higher is better.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from bench.analysis.outcomes import SPEC_COLUMNS as SPEC_COLUMNS  # the configuration columns, read from here too
from bench.analysis.outcomes import config_columns, metric_values, not_learned, verdict
from bench.config import Status
from bench.tasks import BASELINE, Metric

DESCRIBE_COLUMNS = ("n", "mean", "std", "sem", "ci_low", "ci_high", "min", "max")
SUMMARY_COLUMNS = ("n", "n_missing", "n_diverged", "n_failed", *DESCRIBE_COLUMNS[1:])
TESTS = ("wilcoxon", "ttest")
PAIR_COLUMNS = (
    *("n_pairs", "mean_diff", "sd_diff", "ci_low", "ci_high", "d_z", "statistic", "p_value"),
    *("n_not_learned", "n_base_not_learned"),
)

Columns = str | Sequence[str] | None


def _columns(runs: pd.DataFrame, by: Columns) -> list[str]:
    """``by`` as a list (None = the configuration columns), checked to be columns of ``runs``."""
    keys = config_columns(runs) if by is None else [by] if isinstance(by, str) else list(by)
    missing = [c for c in keys if c not in runs.columns]
    if missing:
        raise KeyError(f"no column {', '.join(map(repr, missing))} in the runs (columns: {', '.join(runs.columns)})")
    if not keys:
        raise ValueError(
            "nothing to group by: the runs have no configuration columns (no runs at all?) and no `by` was given"
        )
    return keys


def _scored(runs: pd.DataFrame, metric: str | None, higher_is_better: bool | None) -> tuple[str, bool]:
    """``metric`` and whether higher is better, each the runs' own test metric's where not given."""
    if metric is not None and higher_is_better is not None:
        return metric, higher_is_better
    own = Metric.of(runs)
    return metric or own.test, own.higher_is_better if higher_is_better is None else higher_is_better


def _describe(frame: pd.DataFrame, keys: list[str], column: str, confidence: float) -> pd.DataFrame:
    """n, mean, std, sem, Student t interval, min, max of ``column`` per ``keys`` group; NaN values are skipped."""
    values = pd.to_numeric(frame[column]).astype(float)
    values = values.where(np.isfinite(values))
    out = values.groupby([frame[k] for k in keys], dropna=False).agg(["count", "mean", "std", "min", "max"])
    out = out.rename(columns={"count": "n"})
    out["sem"] = out["std"] / np.sqrt(out["n"])
    dof = out["n"].sub(1).where(out["n"] >= 2)  # n < 2: no interval (NaN), not a zero-width one
    half = out["sem"] * stats.t.ppf((1 + confidence) / 2, dof)
    out["ci_low"], out["ci_high"] = out["mean"] - half, out["mean"] + half
    return out[list(DESCRIBE_COLUMNS)]


def summarize(
    runs: pd.DataFrame, metric: str | None = None, by: Columns = None, confidence: float = 0.95
) -> pd.DataFrame:
    """One row per configuration (or ``by`` group): mean, std, sem and t interval of ``metric`` over ok runs.

    Diverged and failed runs are excluded from the mean but counted (n_diverged, n_failed); n counts the ok runs
    with a finite value and n_missing the ok runs without one. With n == 1 std, sem and the interval are NaN.
    """
    keys = _columns(runs, by)
    values = metric_values(runs, metric or Metric.of(runs).test)
    frame = runs.assign(
        _value=values,
        _missing=runs["status"].eq(Status.OK) & values.isna(),
        _diverged=runs["status"].eq(Status.DIVERGED),
        _failed=runs["status"].eq(Status.FAILED),
    )
    counts = frame.groupby(keys, dropna=False)[["_missing", "_diverged", "_failed"]].sum()
    counts.columns = ["n_missing", "n_diverged", "n_failed"]
    out = _describe(frame, keys, "_value", confidence).join(counts)
    return out[list(SUMMARY_COLUMNS)].reset_index()


def gap_values(runs: pd.DataFrame) -> pd.Series:
    """Per run, the train-test gap of the runs' metric (:meth:`bench.tasks.Metric.gap`: positive = the model fits
    its training data better than test), NaN where the run is not ok."""
    metric = Metric.of(runs)
    return metric.gap(metric_values(runs, metric.train), metric_values(runs, metric.test))


def generalisation_gap(runs: pd.DataFrame, by: Columns = None, confidence: float = 0.95) -> pd.DataFrame:
    """The train-test gap (:func:`gap_values`) summarised like :func:`summarize`."""
    return summarize(runs.assign(gap=gap_values(runs)), "gap", by, confidence)


def ranks(
    runs: pd.DataFrame,
    metric: str | None = None,
    group: Columns = ("dataset", "model"),
    item: str = "activation",
    higher_is_better: bool | None = None,
) -> pd.DataFrame:
    """Rank (1 = best, ties averaged) of each item's mean within each group, one column per group ("mnist/mlp").

    ``overall`` is the mean rank over the groups the item was run in (``n_groups``); rows are sorted by it.
    An item with no ok run in a group ranks last there: diverging everywhere is a result.
    """
    keys = _columns(runs, group)
    metric, higher_is_better = _scored(runs, metric, higher_is_better)
    means = summarize(runs, metric, by=[*keys, item])
    means["rank"] = means.groupby(keys, dropna=False)["mean"].rank(
        ascending=not higher_is_better, method="average", na_option="bottom"
    )
    means["group"] = means[keys].astype(str).agg("/".join, axis=1)
    table = means.pivot(index=item, columns="group", values="rank")
    table.columns.name = None
    table["overall"] = table.mean(axis=1)
    table["n_groups"] = table.drop(columns="overall").notna().sum(axis=1)
    return table.reset_index().sort_values(["overall", item], kind="stable", ignore_index=True)


def bootstrap_rank(
    runs: pd.DataFrame,
    target: str,
    metric: str | None = None,
    group: Columns = ("dataset", "model"),
    item: str = "activation",
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    higher_is_better: bool | None = None,
) -> pd.DataFrame:
    """Per group, ``target``'s rank (1 = best) by mean ``metric`` among the items with an ok run there, and its
    interval from a bootstrap over seeds: each resample draws the seeds with replacement and ranks every item's
    mean over the same drawn seeds (the runs are paired by seed). Columns: the group keys, ``rank``, ``rank_low``,
    ``rank_high``, ``n_items``, ``mean`` (the target's), ``best`` (the item with the top mean) and ``excluded``
    (items without an ok run there, comma-joined)."""
    keys = _columns(runs, group)
    metric, higher_is_better = _scored(runs, metric, higher_is_better)
    sign = 1 if higher_is_better else -1
    frame = runs[[*keys, item, "seed"]].assign(_value=sign * metric_values(runs, metric))  # larger is better
    rng = np.random.default_rng(seed)
    rows = []
    for name, part in frame.groupby(keys, dropna=False, sort=False):
        table = part.pivot_table(index="seed", columns=item, values="_value", aggfunc="mean")
        excluded = sorted(str(c) for c in table.columns[table.isna().all()])
        table = table.dropna(axis=1, how="all")
        if target not in table.columns:
            continue
        values = table.to_numpy()
        means = np.nanmean(values, axis=0)
        at = list(table.columns).index(target)
        rank = 1 + int((means > means[at]).sum())
        draws = rng.integers(0, len(values), size=(n_boot, len(values)))
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a draw without an item's ok seed: NaN, ranks last
            boot = np.nanmean(values[draws], axis=1)
        boot = np.where(np.isnan(boot), -np.inf, boot)
        ranks = 1 + (boot > boot[:, [at]]).sum(axis=1)
        tail = (1 - confidence) / 2
        low, high = np.quantile(ranks, [tail, 1 - tail], method="inverted_cdf")
        rows.append(
            {
                **dict(zip(keys, name if isinstance(name, tuple) else (name,), strict=True)),
                "rank": rank,
                "rank_low": int(low),
                "rank_high": int(high),
                "n_items": table.shape[1],
                "mean": sign * float(means[at]),
                "best": str(table.columns[int(np.nanargmax(means))]),
                "excluded": ", ".join(excluded),
            }
        )
    return pd.DataFrame(rows, columns=[*keys, "rank", "rank_low", "rank_high", "n_items", "mean", "best", "excluded"])


def holm(p_values: Iterable[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values, in input order; NaN stays NaN and is not counted as a comparison."""
    p = np.asarray(list(p_values), dtype=float)
    out = np.full_like(p, np.nan)
    present = np.flatnonzero(~np.isnan(p))
    order = present[np.argsort(p[present], kind="stable")]
    m = len(order)
    out[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return out


def _paired_test(pairs: pd.DataFrame, test: str, confidence: float) -> pd.Series:
    """n_pairs, mean_diff, sd_diff, its t interval, d_z, statistic and p-value of one item against the baseline, and
    how many of the pairs' runs did not learn on each side; no test (NaN) where any did not."""
    pairs = pairs.dropna(subset=["_value", "_base"])
    diff = pairs["_value"] - pairs["_base"]
    statistic = p_value = low = high = np.nan
    n, mean, sd = len(pairs), diff.mean(), diff.std()
    stuck, base_stuck = int(pairs["_stuck"].sum()), int(pairs["_base_stuck"].sum())
    if n >= 2:
        half = stats.t.ppf(0.5 + confidence / 2, n - 1) * sd / np.sqrt(n)
        low, high = mean - half, mean + half
    if n >= 2 and not stuck and not base_stuck:
        run = stats.wilcoxon if test == "wilcoxon" else stats.ttest_rel
        statistic, p_value = run(pairs["_value"], pairs["_base"])
    with np.errstate(divide="ignore", invalid="ignore"):  # sd == 0: d_z is ±inf (or NaN for no difference at all)
        d_z = np.float64(mean) / sd
    values = (n, mean, sd, low, high, d_z, statistic, p_value, stuck, base_stuck)
    return pd.Series(dict(zip(PAIR_COLUMNS, values, strict=True)))


def paired_tests(
    runs: pd.DataFrame,
    metric: str | None = None,
    baseline: str = BASELINE,
    item: str = "activation",
    test: str = "wilcoxon",
    higher_is_better: bool | None = None,
    alpha: float = 0.05,
    confidence: float = 0.95,
    by: Columns = None,
) -> pd.DataFrame:
    """Each item against ``baseline`` within every configuration, paired on seed (both runs must be ok).

    ``by``: the columns that make a configuration (default every configuration column); a tuned suite leaves out
    ``lr``, so that each activation at its own chosen rate is paired with ReLU at ReLU's.

    Two-sided Wilcoxon signed-rank (exact for small n) or paired t-test (``test="ttest"``, scipy's ttest_rel);
    ci_low/ci_high is the Student t interval of the mean difference; d_z = mean diff / sd of diffs (±inf if every
    pair differs by the same amount); p_holm is Holm-Bonferroni within each configuration (the family is the items
    compared with the baseline there, not the whole table). Fewer than 2 pairs give NaN p-values. Wilcoxon can't
    reach p < 0.05 with fewer than 6 pairs (3 pairs: p >= 0.25, 5 pairs: p >= 0.0625), so with few seeds use the t-test.

    A test runs only where every paired run of both sides learned (:func:`bench.analysis.outcomes.not_learned`,
    within the configuration's setting): a comparison with a seed that did not learn has no p-value (it is not in the
    Holm family) and its ``better`` is :func:`bench.analysis.outcomes.verdict`'s, "unstable (k of n seeds did not
    learn)" or "did not learn (n of n seeds)"; its mean difference and interval are still given.
    """
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; valid tests: {', '.join(TESTS)}")
    if baseline not in set(runs[item]):
        raise ValueError(
            f"baseline {baseline!r} has no runs; {item} values: {', '.join(map(str, runs[item].unique()))}"
        )
    keys = [c for c in (config_columns(runs) if by is None else _columns(runs, by)) if c != item]
    metric, higher_is_better = _scored(runs, metric, higher_is_better)
    frame = runs[[*keys, "seed", item]].assign(_value=metric_values(runs, metric), _stuck=not_learned(runs, keys))
    if frame.duplicated([*keys, "seed", item]).any():
        raise ValueError(
            "several runs share a configuration, seed and item (differing only in device or compile?); "
            "select one set of runs first"
        )
    base = (
        frame[frame[item] == baseline].drop(columns=item).rename(columns={"_value": "_base", "_stuck": "_base_stuck"})
    )
    pairs = frame[frame[item] != baseline].merge(base, on=[*keys, "seed"], how="left")
    columns = [*keys, item, "baseline", "test", *PAIR_COLUMNS, "p_holm", "significant", "better"]
    if pairs.empty:  # only the baseline was run
        return pd.DataFrame(columns=columns)
    per_item = pairs.groupby([*keys, item], dropna=False)[["_value", "_base", "_stuck", "_base_stuck"]]
    out = per_item.apply(_paired_test, test=test, confidence=confidence).reset_index()
    counts = ["n_pairs", "n_not_learned", "n_base_not_learned"]
    out = out.assign(baseline=baseline, test=test, **{c: out[c].astype(int) for c in counts})
    out["p_holm"] = out.groupby(keys, dropna=False)["p_value"].transform(holm) if keys else holm(out["p_value"])
    out["significant"] = out["p_holm"] < alpha
    direction = np.sign(out["mean_diff"]) * (1 if higher_is_better else -1)
    out["better"] = np.select(
        [out["significant"] & (direction > 0), out["significant"] & (direction < 0)], ["better", "worse"], "no evidence"
    )
    stuck = out["n_not_learned"].gt(0) | out["n_base_not_learned"].gt(0)
    out.loc[stuck, "better"] = [
        verdict(r.n_pairs, r.n_not_learned, r.n_base_not_learned, baseline) for r in out[stuck].itertuples()
    ]
    return out[columns]


def best_marks(
    summary: pd.DataFrame,
    metric_col: str = "mean",
    group: Columns = None,
    item: str = "activation",
    higher_is_better: bool = True,
) -> pd.Series:
    """Per row of a :func:`summarize` table: "best", "tied" or "" within its group (default: configuration minus item).

    The top item is "best" only if its interval doesn't overlap the runner-up's; otherwise it and every item whose
    interval reaches its interval (or has none, n < 2) are "tied". Items without a mean are not compared, and a
    group with fewer than two items that have one gets no mark.
    """
    if group is None:
        keys = [c for c in config_columns(summary) if c != item]
    else:
        keys = _columns(summary, group) if len(group) else []  # () = the whole table is one group
    sign = 1 if higher_is_better else -1
    # The interval bound facing the competition: lower for "higher is better", upper otherwise.
    near, far = ("ci_low", "ci_high") if higher_is_better else ("ci_high", "ci_low")

    def mark(rows: pd.DataFrame) -> pd.Series:
        ranked = rows[rows[metric_col].notna()].sort_values(metric_col, ascending=not higher_is_better)
        marks = pd.Series("", index=rows.index, dtype=object)
        if len(ranked) < 2:
            return marks
        top, runner_up = ranked.iloc[0], ranked.iloc[1]
        if sign * (top[near] - runner_up[far]) > 0:
            marks[top.name] = "best"
            return marks
        clearly_worse = sign * (top[near] - ranked[far]) > 0  # NaN (no interval) is never clearly worse
        marks[ranked.index[~clearly_worse]] = "tied"
        return marks

    marks = pd.Series("", index=summary.index, name="mark", dtype=object)
    for _, rows in summary.groupby(keys, dropna=False) if keys else [((), summary)]:
        marks.update(mark(rows))
    return marks


def _join(long: pd.DataFrame, runs: pd.DataFrame, keys: list[str], statuses: Iterable[str]) -> pd.DataFrame:
    """Long-format rows of the runs whose status is in ``statuses``, with the runs' ``keys`` columns attached."""
    chosen = runs.loc[runs["status"].isin(list(statuses)), ["key", *[k for k in keys if k != "key"]]]
    return long.merge(chosen, on="key", how="inner")


def curves(
    epochs: pd.DataFrame,
    runs: pd.DataFrame,
    split: str = "val",
    metric: str | None = None,
    by: Columns = None,
    confidence: float = 0.95,
    statuses: Iterable[str] = (Status.OK,),
) -> pd.DataFrame:
    """Per configuration and epoch: n, mean, t interval of ``split``/``metric`` over seeds (ok runs by default).

    n may fall at later epochs when runs stopped early; it is a column so that the report can show it.
    """
    keys = _columns(runs, by)
    metric = metric or Metric.of(runs).name
    rows = _join(epochs[epochs["split"].eq(split) & epochs["metric"].eq(metric)], runs, keys, statuses)
    return _describe(rows, [*keys, "epoch"], "value", confidence).reset_index()


def time_to_target(
    epochs: pd.DataFrame,
    runs: pd.DataFrame,
    target: float,
    split: str = "val",
    metric: str | None = None,
    higher_is_better: bool | None = None,
) -> pd.DataFrame:
    """Per run (any status): first epoch whose ``split``/``metric`` reaches ``target`` and the training seconds
    until then (sum of train/seconds of epochs 1..that epoch; 0 if reached at epoch 0). NaN when never reached."""
    metric, higher_is_better = metric or Metric.of(runs).name, _scored(runs, None, higher_is_better)[1]
    rows = epochs[epochs["split"].eq(split) & epochs["metric"].eq(metric)]
    reached = rows["value"] >= target if higher_is_better else rows["value"] <= target
    first = rows[reached].groupby("key")["epoch"].min().astype(float)
    train = epochs[epochs["split"].eq("train") & epochs["metric"].eq("seconds")]
    spent = train[train["epoch"] <= train["key"].map(first)]  # never reached: NaN, so no rows
    seconds = spent.groupby("key")["value"].sum(skipna=False).astype(float)
    columns = ["key", "status", *config_columns(runs), *(["seed"] if "seed" in runs.columns else [])]
    out = runs[columns].assign(epoch_to_target=runs["key"].map(first), seconds_to_target=runs["key"].map(seconds))
    out.loc[out["epoch_to_target"].eq(0), "seconds_to_target"] = 0.0  # reached before any training
    return out.reset_index(drop=True)


def time_to_target_summary(per_run: pd.DataFrame, by: Columns = None, confidence: float = 0.95) -> pd.DataFrame:
    """Per configuration of a :func:`time_to_target` table: n_runs (any status), n_reached; the median epochs and
    seconds over all its runs with a run that never reached the target counted as never (infinite: a median of inf
    means most runs never reached it), which is what ranks by speed; and the mean and t interval over the runs that
    reached it (conditional on reaching it)."""
    keys = _columns(per_run, by)
    grouped = per_run.groupby(keys, dropna=False)
    out = grouped.agg(n_runs=("key", "size"), n_reached=("epoch_to_target", "count"))
    for column, prefix in (("epoch_to_target", "epoch"), ("seconds_to_target", "seconds")):
        never = per_run.assign(_never=per_run[column].fillna(np.inf))  # a run that never reached it: never
        out[f"{prefix}_median"] = never.groupby(keys, dropna=False)["_never"].median()
        described = _describe(per_run, keys, column, confidence)
        out = out.join(described[["mean", "ci_low", "ci_high"]].add_prefix(f"{prefix}_"))
    return out.reset_index()


def layer_profile(
    layers: pd.DataFrame,
    runs: pd.DataFrame,
    metric: str = "grad_norm",
    epoch: int | None = 0,
    by: Columns = None,
    confidence: float = 0.95,
    statuses: Iterable[str] = (Status.OK,),
) -> pd.DataFrame:
    """Per configuration and layer: n, mean, t interval of a probe ``metric`` over seeds at ``epoch``.

    ``epoch=None`` keeps every epoch (an ``epoch`` column is added to the groups). Ok runs only by default.
    """
    keys = _columns(runs, by)
    rows = layers[layers["metric"].eq(metric)]
    rows = rows if epoch is None else rows[rows["epoch"].eq(epoch)]
    groups = [*keys, *(["epoch"] if epoch is None else []), "layer", "name"]
    return _describe(_join(rows, runs, keys, statuses), groups, "value", confidence).reset_index()
