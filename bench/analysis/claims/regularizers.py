"""Claim 8: L2, dropout and augmentation narrow the train/test gap; early stopping picks a good epoch."""

from __future__ import annotations

import pandas as pd

from bench.analysis.claims.common import (
    CONFIRMED,
    DEPENDS,
    ES_TOLERANCE,
    NOT_CONFIRMED,
    Verdict,
    diff_text,
    every,
    paired,
    pick,
    summary,
)
from bench.config import Status


def _regularizer_name(row: pd.Series) -> str:
    """``L2 0.0005 + dropout 0.3 + augment + early stopping (patience 10)``, or ``none``."""
    parts = [
        *([f"L2 {row.weight_decay:g}"] if row.weight_decay > 0 else []),
        *([f"dropout {row.dropout:g}"] if row.dropout > 0 else []),
        *(["augment"] if bool(row.augment) else []),
        *([f"early stopping (patience {row.patience})"] if row.patience > 0 else []),
    ]
    return " + ".join(parts) or "none"


def _regularized_runs(t: pd.DataFrame) -> pd.DataFrame | None:
    """Claim 8's runs (relu MLP, Fashion-MNIST, Adam, the longest budget, the unregularized runs' schedule) with
    their ``setting`` name, whether a regularizer is on (``regularized``) and whether only early stopping is."""
    rows = pick(t, dataset="fashion_mnist", model="mlp", activation="relu", optimizer="adam")
    if rows.empty:
        return None
    rows = rows[rows["epochs"].eq(rows["epochs"].max())]
    regularized = rows["weight_decay"].gt(0) | rows["dropout"].gt(0) | rows["augment"].astype(bool)
    stopping = rows["patience"].gt(0)
    plain = rows[~regularized & ~stopping]
    if plain.empty:
        return None
    rows = rows.assign(
        setting=rows.apply(_regularizer_name, axis=1), regularized=regularized, only_stopping=~regularized & stopping
    )
    rows = rows[rows["schedule"].eq(plain["schedule"].iloc[0])]  # compare like with like
    if rows["setting"].nunique() < 2:
        return None
    return rows.assign(hindsight_loss=rows["best_test"] - rows["test_acc_at_best"])


def claim_regularizers(t: pd.DataFrame) -> Verdict | None:
    rows = _regularized_runs(t)
    if rows is None:
        return None
    order = ["none", *sorted(s for s in rows["setting"].unique() if s != "none")]
    table = summary(
        rows,
        "setting",
        {
            "gap": ("train - test acc", ".4f"),
            "test_acc": ("final test acc", ".4f"),
            "epochs_run": ("epochs run", ".1f"),
            "hindsight_loss": ("best test acc - test acc at best val epoch", ".4f"),
        },
        order=order,
    )
    diffs = {setting: paired(rows, "setting", setting, "none", "gap") for setting in order[1:]}
    narrower = [setting for setting, diff in diffs.items() if every(diff, positive=False)]
    stopping = rows[rows["only_stopping"] & rows["status"].eq(Status.OK)]
    misses = int((stopping["hindsight_loss"] > ES_TOLERANCE).sum())
    regularizers = sorted(set(rows.loc[rows["regularized"], "setting"]))
    reason = (
        "Gap change against no regularizer (negative = narrower): "
        + "; ".join(f"{setting}: {diff_text(diff)}" for setting, diff in diffs.items())
        + f". Narrower in every seed: {', '.join(narrower) or 'none'}."
    )
    if len(stopping):
        reason += (
            f" Early stopping ran {stopping['epochs_run'].mean():.1f} epochs on average; the epoch it kept (best "
            f"validation accuracy) was within {ES_TOLERANCE:g} of the best test accuracy in hindsight "
            f"in {len(stopping) - misses} of {len(stopping)} runs (largest miss "
            f"{stopping['hindsight_loss'].max():.4f})."
        )
    verdict, more = _regularizer_verdict(regularizers, narrower, misses)
    first = rows.iloc[0]
    return Verdict(
        8,
        "L2, dropout and augmentation narrow the train/test gap; early stopping with patience 10 picks a good epoch.",
        f"ReLU MLP 784-256-256-10 on Fashion-MNIST, {first['optimizer']} {first['lr']:g} with a {first['schedule']} "
        f"schedule, {first['epochs']} epochs: {', '.join(order)}. Early stopping watches validation accuracy.",
        table,
        verdict,
        reason + more,
    )


def _regularizer_verdict(regularizers: list[str], narrower: list[str], misses: int) -> tuple[str, str]:
    """Claim 8's verdict and the sentence that explains a "depends"."""
    if bool(regularizers) and set(regularizers) <= set(narrower):
        if misses == 0:
            return CONFIRMED, ""
        return DEPENDS, (
            " Every regularizer narrowed the gap in every seed; early stopping's choice missed by more in some runs."
        )
    if narrower:
        return DEPENDS, f" Not narrower in every seed: {', '.join(s for s in regularizers if s not in narrower)}."
    return NOT_CONFIRMED, ""
