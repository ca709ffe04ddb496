"""Claims 3 and 7: ReLU units die with a bad init or too high a learning rate; the leaky variants keep them alive."""

from __future__ import annotations

import pandas as pd

from bench.analysis.claims.common import (
    CONFIRMED,
    DEAD_MEANINGFUL,
    DEPENDS,
    MNIST_MLP,
    NOT_CONFIRMED,
    SGD,
    Verdict,
    every,
    paired,
    pick,
    summary,
)
from bench.config import Status

DEAD = {"dead": ("dead fraction, last epoch", ".3f"), "test_acc": ("final test acc", ".4f")}


def _dead(rows: pd.DataFrame, **where: object) -> float:
    """Mean dead fraction of the ok runs among ``rows`` matching ``where`` (NaN if none)."""
    return pick(rows, status=Status.OK, **where)["dead"].mean()


def _dead_against_rate(lr_rows: pd.DataFrame) -> tuple[pd.DataFrame, bool, str]:
    """Claim 3 at each SGD rate: table rows, whether deaths rise with the rate, and what was measured."""
    lrs = sorted(lr_rows["lr"].unique())
    means = pd.Series([_dead(lr_rows, lr=lr) for lr in lrs], index=lrs)
    trained = means.dropna()
    rising = (
        len(trained) >= 2
        and trained.iloc[-1] - trained.iloc[0] >= DEAD_MEANINGFUL
        and bool((trained.diff().dropna() >= -0.01).all())
    )
    diverged = [f"{lr:g}" for lr in lrs if pick(lr_rows, lr=lr, status=Status.DIVERGED).shape[0]]
    reason = (
        f"Mean dead fraction at SGD {', '.join(f'{lr:g}' for lr in lrs)}: "
        f"{', '.join('diverged' if pd.isna(m) else f'{m:.3f}' for m in means)}"
        + (f" (runs diverged at {', '.join(diverged)})" if diverged else "")
        + f". Rule: it must rise by at least {DEAD_MEANINGFUL} from the lowest rate to the highest that trained, "
        "never falling by more than 0.01 from one rate to the next."
    )
    table = summary(lr_rows, "lr", DEAD, order=lrs)
    table = table.assign(lr=[f"SGD {lr:g}, auto (He) init" for lr in lrs]).rename(columns={"lr": "setting"})
    return table, rising, reason


def _dead_remedies(t: pd.DataFrame, inits: pd.DataFrame, lr_rows: pd.DataFrame) -> tuple[pd.DataFrame, bool, str]:
    """Claim 3's remedies at the highest rate where other ``inits`` were tried: table rows, whether N(0, 1) init
    kills more units than Glorot and He and Adagrad fewer than SGD, and what was measured."""
    rate = float(inits["lr"].max())
    inits = pick(inits, lr=rate)
    ada = pick(t, activation="relu", init="auto", optimizer="adagrad", **MNIST_MLP)
    base = _dead(lr_rows, lr=rate)
    by_init = {init: _dead(inits, init=init) for init in dict.fromkeys(inits["init"])}
    by_rate = {lr: _dead(ada, lr=lr) for lr in dict.fromkeys(ada["lr"])}
    labelled = pd.concat(
        [
            inits.assign(setting=[f"SGD {rate:g}, {init} init" for init in inits["init"]]),
            ada.assign(setting=[f"Adagrad {lr:g}, auto (He) init" for lr in ada["lr"]]),
        ]
    )
    table = summary(labelled, "setting", DEAD, order=list(dict.fromkeys(labelled["setting"])))
    others = [m for init, m in by_init.items() if init != "normal" and pd.notna(m)]
    normal_bad = "normal" in by_init and (pd.isna(by_init["normal"]) or all(by_init["normal"] > m for m in others))
    adagrad_fewer = bool(by_rate) and all(pd.notna(m) and m < base for m in by_rate.values())
    reason = (
        f" At SGD {rate:g}: "
        + ", ".join(f"{init} init {'diverged' if pd.isna(m) else f'{m:.3f}'}" for init, m in by_init.items())
        + f" (auto init {base:.3f}); Adagrad: "
        + ", ".join(f"{lr:g} {m:.3f}" for lr, m in by_rate.items())
        + f". N(0, 1) init {'is' if normal_bad else 'is not'} worse than Glorot and He; Adagrad "
        f"{'kills fewer units' if adagrad_fewer else 'does not kill fewer units'} than SGD {rate:g} at every "
        "rate tried."
    )
    return table, normal_bad and adagrad_fewer, reason


def claim_dead_relu(t: pd.DataFrame) -> Verdict | None:
    relu = pick(t, activation="relu", **MNIST_MLP, **SGD)
    lr_rows = pick(relu, init="auto")
    if lr_rows["lr"].nunique() < 2:
        return None
    table, rising, reason = _dead_against_rate(lr_rows)
    inits, fixes_hold = pick(relu, init=["normal", "xavier_normal", "he"]), None
    if len(inits):
        remedies, fixes_hold, more = _dead_remedies(t, inits, lr_rows)
        table, reason = pd.concat([table, remedies]), reason + more
    if not rising:
        verdict = NOT_CONFIRMED
    elif fixes_hold is False:
        verdict = DEPENDS
        reason += " Units die at high rates, but not every remedy reduced the deaths."
    else:
        verdict = CONFIRMED
    return Verdict(
        3,
        "ReLU units die with too high a learning rate, and fewer die with Xavier/He init or with Adagrad.",
        "ReLU MLP 784-256-256-10, MNIST, plain SGD at constant rates, 5 epochs; a unit is dead when its derivative "
        "is 0 on all 512 probe images, and the table gives the mean over hidden layers. Then, at a high rate, "
        "N(0, 1), Glorot (Xavier) and He init; and Adagrad.",
        table.reset_index(drop=True),
        verdict,
        reason,
    )


def claim_leaky(t: pd.DataFrame) -> Verdict | None:
    variants = ["leaky_relu", "prelu", "elu"]
    tried = pick(t, activation=variants, init="auto", **MNIST_MLP, **SGD)
    if tried.empty:
        return None
    rate = float(tried["lr"].max())
    rows = pick(t, activation=["relu", *variants], lr=rate, init="auto", **MNIST_MLP, **SGD)
    if rows["activation"].nunique() < 2:
        return None
    table = summary(
        rows,
        "activation",
        {"dead": ("dead fraction, last epoch", ".3f"), "test_acc": ("final test acc", ".4f")},
        order=["relu", *[v for v in variants if v in set(rows["activation"])]],
    )
    fixed, learned = [], []
    for v in variants:
        if v in set(rows["activation"]):
            fewer = every(paired(rows, "activation", v, "relu", "dead"), positive=False)
            better = every(paired(rows, "activation", v, "relu", "test_acc"))
            (fixed if fewer else []).append(v)
            (learned if better else []).append(v)
    relu_dead = pick(rows, activation="relu", status=Status.OK)["dead"].mean()
    untrained = [
        v for v in variants if v in set(rows["activation"]) and pick(rows, activation=v, status=Status.OK).empty
    ]
    reason = (
        f"relu's dead fraction at SGD {rate:g} is {relu_dead:.3f}. Fewer dead units than relu in every seed: "
        f"{', '.join(fixed) or 'none'}; higher test accuracy than relu in every seed: {', '.join(learned) or 'none'}."
        + (f" No run finished (diverged in every seed) at this rate: {', '.join(untrained)}." if untrained else "")
    )
    if relu_dead < DEAD_MEANINGFUL:
        verdict = DEPENDS
        reason += f" Few relu units died here (< {DEAD_MEANINGFUL:.0%}), so there was little to fix."
    elif len(fixed) == len(variants) and len(learned) == len(variants):
        verdict = CONFIRMED
    elif fixed:
        verdict = DEPENDS
        reason += " Keeping units alive did not always give a better network, or not every variant trained."
    else:
        verdict = NOT_CONFIRMED
    return Verdict(
        7,
        "leaky ReLU, PReLU and ELU fix dying units.",
        "MLP 784-256-256-10, MNIST, plain SGD at a high constant rate at which ReLU units die, 5 epochs; relu's runs "
        "are claim 3's.",
        table,
        verdict,
        reason,
    )
