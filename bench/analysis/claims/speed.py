"""Claims 2, 5 and 6: which trains faster: tanh or sigmoid, cross-entropy or squared error with sigmoid outputs,
softplus or ReLU."""

from __future__ import annotations

import pandas as pd

from bench.analysis.claims.common import (
    CONFIRMED,
    DEPENDS,
    MNIST_MLP,
    NOT_CONFIRMED,
    SGD,
    Verdict,
    diff_text,
    every,
    paired,
    pick,
    summary,
)


def _faster(t: pd.DataFrame, by: str, fast: object, slow: object, **where: object) -> tuple[pd.DataFrame, str, str]:
    """Verdict rows for "``fast`` trains faster than ``slow``": paired by seed on validation accuracy after one
    epoch and on final test accuracy."""
    rows = pick(t, **where)
    table = summary(
        rows,
        by,
        {"val_acc_1": ("val acc after epoch 1", ".4f"), "test_acc": ("final test acc", ".4f")},
        order=[slow, fast],
    )
    early = paired(rows, by, fast, slow, "val_acc_1")
    final = paired(rows, by, fast, slow, "test_acc")
    reason = f"{fast} minus {slow}, after one epoch: {diff_text(early)}; final test accuracy: {diff_text(final)}."
    if every(early) and every(final):
        verdict = CONFIRMED
    elif every(early, positive=False) and every(final, positive=False):
        verdict = NOT_CONFIRMED
    else:
        verdict = DEPENDS
        reason += " The sign is not the same in every seed and at both points."
    return table, verdict, reason


def claim_tanh(t: pd.DataFrame) -> Verdict | None:
    where = MNIST_MLP | SGD | {"lr": 0.1, "init": "xavier_normal", "loss": "cross_entropy"}
    if pick(t, activation=["sigmoid", "tanh"], **where)["activation"].nunique() < 2:
        return None
    table, verdict, reason = _faster(t, "activation", "tanh", "sigmoid", activation=["sigmoid", "tanh"], **where)
    return Verdict(
        2,
        "sigmoid is not zero-centred, and tanh trains faster.",
        "MLP 784-256-256-10, MNIST, Glorot normal init, SGD 0.1 (constant), 5 epochs, cross-entropy.",
        table,
        verdict,
        reason,
    )


def claim_cross_entropy(t: pd.DataFrame) -> Verdict | None:
    where = MNIST_MLP | SGD | {"activation": "sigmoid", "lr": 0.1, "init": "xavier_normal"}
    if pick(t, loss=["cross_entropy", "mse_sigmoid"], **where)["loss"].nunique() < 2:
        return None
    table, verdict, reason = _faster(
        t, "loss", "cross_entropy", "mse_sigmoid", loss=["cross_entropy", "mse_sigmoid"], **where
    )
    return Verdict(
        5,
        "cross-entropy learns faster than squared error with sigmoid outputs.",
        "Sigmoid MLP 784-256-256-10 on MNIST, Glorot normal init, SGD 0.1, 5 epochs; the loss is cross-entropy on "
        "the logits or the squared error between sigmoid(logits) and the one-hot target (`mse_sigmoid`).",
        table,
        verdict,
        reason,
    )


def claim_softplus(t: pd.DataFrame) -> Verdict | None:
    where = MNIST_MLP | {"optimizer": "adam", "init": "auto", "loss": "cross_entropy", "dropout": 0.0}
    rows = pick(t, activation=["relu", "softplus"], **where)
    rows = rows[rows["lr"].eq(0.001)]
    if rows["activation"].nunique() < 2:
        return None
    table = summary(rows, "activation", {"test_acc": ("final test acc", ".4f")}, order=["relu", "softplus"])
    diff = paired(rows, "activation", "softplus", "relu", "test_acc")
    reason = f"softplus minus relu, final test accuracy: {diff_text(diff)}."
    verdict = NOT_CONFIRMED if every(diff) else CONFIRMED
    reason += " softplus was better in every seed." if every(diff) else " softplus was not better in every seed."
    return Verdict(
        6,
        "softplus, though smooth, does not beat ReLU.",
        "MLP 784-256-256-10, MNIST, Adam 1e-3 with a cosine schedule, 5 epochs.",
        table,
        verdict,
        reason,
    )
