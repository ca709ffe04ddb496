"""What every claim shares: the :class:`Verdict`, the per-run table the claims read (:func:`per_run`) and the
helpers that pick runs, pair them by seed and format their cells."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from bench.analysis.stats import gap_values
from bench.config import Status

CONFIRMED, NOT_CONFIRMED, DEPENDS = "confirmed", "not confirmed", "depends"
DEAD_MEANINGFUL = 0.05  # a dead fraction below 5 % of hidden units is "hardly any"
ES_TOLERANCE = 0.005  # early stopping picks a good epoch: within 0.5 points of the best test accuracy in hindsight


@dataclass
class Verdict:
    number: int
    claim: str
    experiment: str
    table: pd.DataFrame
    verdict: str  # CONFIRMED, NOT_CONFIRMED or DEPENDS
    reason: str


def per_run(runs: pd.DataFrame, epochs: pd.DataFrame, layers: pd.DataFrame) -> pd.DataFrame:
    """One row per run: its configuration and record, plus the probe and curve numbers the claims use.

    val_acc_1: validation accuracy after one epoch; dead: mean over hidden layers of the dead-unit fraction at
    the last epoch; sat0/sat: layer 1's saturated fraction before / after training; grad_ratio: layer 1's
    gradient norm over the output layer's before training (the gradient backpropagated through every hidden
    activation); best_test: the best test accuracy over epochs (hindsight, for early stopping).
    """
    out = runs.set_index("key")
    for column in ("test_acc", "train_acc", "test_acc_at_best", "epochs_run"):
        if column not in out.columns:  # records of an older schema, or runs that all failed
            out[column] = math.nan
    if "gap" not in out.columns:
        out["gap"] = gap_values(out)

    def curve(split: str, metric: str) -> pd.DataFrame:
        return epochs[epochs["split"].eq(split) & epochs["metric"].eq(metric)]

    val = curve("val", "acc")
    out["val_acc_1"] = val[val["epoch"].eq(1)].set_index("key")["value"]
    out["best_test"] = curve("test", "acc").groupby("key")["value"].max()
    hidden = layers[layers["name"].ne("out")]
    last = hidden["epoch"].eq(hidden.groupby("key")["epoch"].transform("max"))
    dead = hidden[last & hidden["metric"].eq("dead_frac")]
    out["dead"] = dead.groupby("key")["value"].mean()
    sat = hidden[hidden["metric"].eq("saturated_frac") & hidden["layer"].eq(1)]
    out["sat0"] = sat[sat["epoch"].eq(0)].set_index("key")["value"]
    out["sat"] = sat[last.loc[sat.index]].set_index("key")["value"]
    grad = layers[layers["metric"].eq("grad_norm") & layers["epoch"].eq(0)]
    first = grad[grad["layer"].eq(1)].set_index("key")["value"]
    final = grad[grad["name"].eq("out")].set_index("key")["value"]
    out["grad_ratio"] = first / final
    return out.reset_index()


def pick(table: pd.DataFrame, **where: object) -> pd.DataFrame:
    """Rows whose columns equal the given values (a list means any of them)."""
    mask = pd.Series(True, index=table.index)
    for column, value in where.items():
        allowed = value if isinstance(value, list) else [value]
        mask &= table[column].isin(allowed)
    return table[mask]


def cell(values: pd.Series, spec: str = ".4f") -> str:
    """``mean [min, max] (n)`` over seeds; diverged/failed runs are named, not averaged."""
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return "n/a"
    if len(values) == 1:
        return format(values.iloc[0], spec)
    return f"{values.mean():{spec}} [{values.min():{spec}}, {values.max():{spec}}]"


def summary(
    rows: pd.DataFrame, by: str, columns: dict[str, tuple[str, str]], order: list | None = None
) -> pd.DataFrame:
    """A table with one row per value of ``by``: runs (ok/total) and each ``column: (label, format)`` cell."""
    values = order if order is not None else sorted(rows[by].unique())
    table = []
    for value in values:
        group = rows[rows[by].eq(value)]
        ok = group[group["status"].eq(Status.OK)]
        row = {by: value, "runs ok": f"{len(ok)}/{len(group)}"}
        row |= {label: cell(ok[column], spec) for column, (label, spec) in columns.items()}
        table.append(row)
    return pd.DataFrame(table)


def paired(rows: pd.DataFrame, by: str, a: object, b: object, column: str) -> pd.Series:
    """Per seed, ``column`` of configuration ``a`` minus that of ``b`` (ok runs of both only)."""
    ok = rows[rows["status"].eq(Status.OK)]
    left = ok[ok[by].eq(a)].set_index("seed")[column]
    right = ok[ok[by].eq(b)].set_index("seed")[column]
    return (left - right).dropna()


def every(diff: pd.Series, positive: bool = True) -> bool:
    """True if there is at least one pair and the difference has the sign in every one."""
    return len(diff) > 0 and bool((diff > 0).all() if positive else (diff < 0).all())


def diff_text(diff: pd.Series, spec: str = "+.4f") -> str:
    return f"{diff.mean():{spec}} (per seed: {', '.join(format(v, spec) for v in diff)})" if len(diff) else "n/a"


MNIST_MLP = {"dataset": "mnist", "model": "mlp"}
SGD = {"optimizer": "sgd", "schedule": "constant"}
