"""Textbook claims about activations, each tested on the runs of the ``seed-claims`` suite.

:func:`evaluate` returns one :class:`Verdict` per claim whose runs are present: the experiment, a table of the
measured numbers (mean over seeds, with the range) and a verdict. The rules behind a verdict are stated in its
text and are deliberately simple: "every seed" comparisons are paired by seed (same data order and first-layer
weights), and a difference counts only if it holds in every seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

import activations
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
        out["gap"] = out["train_acc"] - out["test_acc"]

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


def _pick(table: pd.DataFrame, **where: object) -> pd.DataFrame:
    """Rows whose columns equal the given values (a list means any of them)."""
    mask = pd.Series(True, index=table.index)
    for column, value in where.items():
        allowed = value if isinstance(value, list) else [value]
        mask &= table[column].isin(allowed)
    return table[mask]


def _cell(values: pd.Series, spec: str = ".4f") -> str:
    """``mean [min, max] (n)`` over seeds; diverged/failed runs are named, not averaged."""
    values = pd.to_numeric(values, errors="coerce").dropna()
    if values.empty:
        return "n/a"
    if len(values) == 1:
        return format(values.iloc[0], spec)
    return f"{values.mean():{spec}} [{values.min():{spec}}, {values.max():{spec}}]"


def _summary(
    rows: pd.DataFrame, by: str, columns: dict[str, tuple[str, str]], order: list | None = None
) -> pd.DataFrame:
    """A table with one row per value of ``by``: runs (ok/total) and each ``column: (label, format)`` cell."""
    values = order if order is not None else sorted(rows[by].unique())
    table = []
    for value in values:
        group = rows[rows[by].eq(value)]
        ok = group[group["status"].eq(Status.OK)]
        row = {by: value, "runs ok": f"{len(ok)}/{len(group)}"}
        row |= {label: _cell(ok[column], spec) for column, (label, spec) in columns.items()}
        table.append(row)
    return pd.DataFrame(table)


def _paired(rows: pd.DataFrame, by: str, a: object, b: object, column: str) -> pd.Series:
    """Per seed, ``column`` of configuration ``a`` minus that of ``b`` (ok runs of both only)."""
    ok = rows[rows["status"].eq(Status.OK)]
    left = ok[ok[by].eq(a)].set_index("seed")[column]
    right = ok[ok[by].eq(b)].set_index("seed")[column]
    return (left - right).dropna()


def _every(diff: pd.Series, positive: bool = True) -> bool:
    """True if there is at least one pair and the difference has the sign in every one."""
    return len(diff) > 0 and bool((diff > 0).all() if positive else (diff < 0).all())


def _diff(diff: pd.Series, spec: str = "+.4f") -> str:
    return f"{diff.mean():{spec}} (per seed: {', '.join(format(v, spec) for v in diff)})" if len(diff) else "n/a"


def saturation_thought_experiment(n_inputs: int = 1000, ones: int = 500, units: int = 20000, seed: int = 0) -> dict:
    """The textbook neuron: ``n_inputs`` inputs, ``ones`` of them 1 and the rest 0, bias N(0, 1); weights N(0, 1)
    or N(0, 1/n_inputs). Pre-activation std and the fraction of sigmoid units with sigma'(z) < 1 % of 1/4,
    measured over ``units`` random units."""
    import torch  # only this experiment needs it: the report (and its --help) loads no torch

    gen = torch.Generator().manual_seed(seed)
    x = torch.zeros(n_inputs, dtype=torch.float64)
    x[:ones] = 1.0
    out = {}
    for name, std in (("N(0, 1)", 1.0), ("N(0, 1/n)", 1 / math.sqrt(n_inputs))):
        w = torch.randn(units, n_inputs, generator=gen, dtype=torch.float64) * std
        z = w @ x + torch.randn(units, generator=gen, dtype=torch.float64)
        s = torch.sigmoid(z)
        out[name] = {"z_std": float(z.std()), "saturated": float((s * (1 - s) < 0.01 * 0.25).double().mean())}
    return out


# ----------------------------------------------------------------------------------------------------------------
# One function per claim: the rows it needs from per_run(), or None when the suite did not run them.

MNIST_MLP = {"dataset": "mnist", "model": "mlp"}
SGD = {"optimizer": "sgd", "schedule": "constant"}


def claim_vanishing(t: pd.DataFrame) -> Verdict | None:
    rows = _pick(t, model="deep_mlp", activation=["sigmoid", "tanh", "relu"])
    if rows["activation"].nunique() < 3:
        return None
    bound = {a: activations.card(a, timing=False).max_abs_df for a in ("sigmoid", "tanh", "relu")}
    table = _summary(
        rows,
        "activation",
        {"grad_ratio": ("layer-1 / output gradient norm at init", ".2e"), "test_acc": ("final test acc", ".4f")},
        order=["sigmoid", "tanh", "relu"],
    )
    table.insert(1, "max |f'|", [f"{bound[a]:.4g}" for a in table["activation"]])
    ratio = {a: _pick(rows, activation=a, status=Status.OK)["grad_ratio"] for a in ("sigmoid", "tanh", "relu")}
    geo = {a: float(np.exp(np.log(r).mean())) if len(r) else math.nan for a, r in ratio.items()}
    smallest = all(
        _every(_paired(rows, "activation", "sigmoid", other, "grad_ratio"), positive=False)
        for other in ("tanh", "relu")
    )
    textbook = 0.25**10
    near = abs(math.log10(geo["sigmoid"] / textbook)) <= 1 if math.isfinite(geo["sigmoid"]) else False
    reason = (
        f"sigmoid's largest derivative is {bound['sigmoid']:.4g} (at 0). Before training, the gradient reaching "
        f"layer 1 is {geo['sigmoid']:.2e} times the output layer's with sigmoid (geometric mean over seeds), "
        f"{geo['tanh']:.2e} with tanh and {geo['relu']:.2e} with relu; sigmoid's is the smallest in "
        f"{'every seed' if smallest else 'not every seed'}. 0.25^10 = {textbook:.1e}: the measured shrink is "
        f"{'within a factor 10 of it' if near else 'not within a factor 10 of it'}"
        + ("" if near else " (the bound is reached only at z = 0, and the weights' scale enters each layer too)")
        + "."
    )
    if bound["sigmoid"] <= 0.25 + 1e-12 and smallest:
        verdict = CONFIRMED if near else DEPENDS
        if not near:
            reason += " The vanishing is confirmed; its size depends on the weights, not only on f' <= 1/4."
    else:
        verdict = NOT_CONFIRMED
    return Verdict(
        1,
        "sigmoid's derivative never exceeds 1/4, so through 10 sigmoid layers the gradient shrinks roughly like "
        "0.25^10 ≈ 1e-6.",
        "10-layer MLP (64 units per layer, Glorot normal init), MNIST, SGD 0.1; per-layer weight-gradient norms on "
        "a fixed batch of 512 validation images before training.",
        table,
        verdict,
        reason,
    )


def _faster(t: pd.DataFrame, by: str, fast: object, slow: object, **where: object) -> tuple[pd.DataFrame, str, str]:
    """Verdict rows for "``fast`` trains faster than ``slow``": paired by seed on validation accuracy after one
    epoch and on final test accuracy."""
    rows = _pick(t, **where)
    table = _summary(
        rows,
        by,
        {"val_acc_1": ("val acc after epoch 1", ".4f"), "test_acc": ("final test acc", ".4f")},
        order=[slow, fast],
    )
    early = _paired(rows, by, fast, slow, "val_acc_1")
    final = _paired(rows, by, fast, slow, "test_acc")
    reason = f"{fast} minus {slow}, after one epoch: {_diff(early)}; final test accuracy: {_diff(final)}."
    if _every(early) and _every(final):
        verdict = CONFIRMED
    elif _every(early, positive=False) and _every(final, positive=False):
        verdict = NOT_CONFIRMED
    else:
        verdict = DEPENDS
        reason += " The sign is not the same in every seed and at both points."
    return table, verdict, reason


def claim_tanh(t: pd.DataFrame) -> Verdict | None:
    where = MNIST_MLP | SGD | {"lr": 0.1, "init": "xavier_normal", "loss": "cross_entropy"}
    if _pick(t, activation=["sigmoid", "tanh"], **where)["activation"].nunique() < 2:
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


DEAD = {"dead": ("dead fraction, last epoch", ".3f"), "test_acc": ("final test acc", ".4f")}


def _dead(rows: pd.DataFrame, **where: object) -> float:
    """Mean dead fraction of the ok runs among ``rows`` matching ``where`` (NaN if none)."""
    return _pick(rows, status=Status.OK, **where)["dead"].mean()


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
    diverged = [f"{lr:g}" for lr in lrs if _pick(lr_rows, lr=lr, status=Status.DIVERGED).shape[0]]
    reason = (
        f"Mean dead fraction at SGD {', '.join(f'{lr:g}' for lr in lrs)}: "
        f"{', '.join('diverged' if pd.isna(m) else f'{m:.3f}' for m in means)}"
        + (f" (runs diverged at {', '.join(diverged)})" if diverged else "")
        + f". Rule: it must rise by at least {DEAD_MEANINGFUL} from the lowest rate to the highest that trained, "
        "never falling by more than 0.01 from one rate to the next."
    )
    table = _summary(lr_rows, "lr", DEAD, order=lrs)
    table = table.assign(lr=[f"SGD {lr:g}, auto (He) init" for lr in lrs]).rename(columns={"lr": "setting"})
    return table, rising, reason


def _dead_remedies(t: pd.DataFrame, inits: pd.DataFrame, lr_rows: pd.DataFrame) -> tuple[pd.DataFrame, bool, str]:
    """Claim 3's remedies at the highest rate where other ``inits`` were tried: table rows, whether N(0, 1) init
    kills more units than Glorot and He and Adagrad fewer than SGD, and what was measured."""
    rate = float(inits["lr"].max())
    inits = _pick(inits, lr=rate)
    ada = _pick(t, activation="relu", init="auto", optimizer="adagrad", **MNIST_MLP)
    base = _dead(lr_rows, lr=rate)
    by_init = {init: _dead(inits, init=init) for init in dict.fromkeys(inits["init"])}
    by_rate = {lr: _dead(ada, lr=lr) for lr in dict.fromkeys(ada["lr"])}
    labelled = pd.concat(
        [
            inits.assign(setting=[f"SGD {rate:g}, {init} init" for init in inits["init"]]),
            ada.assign(setting=[f"Adagrad {lr:g}, auto (He) init" for lr in ada["lr"]]),
        ]
    )
    table = _summary(labelled, "setting", DEAD, order=list(dict.fromkeys(labelled["setting"])))
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
    relu = _pick(t, activation="relu", **MNIST_MLP, **SGD)
    lr_rows = _pick(relu, init="auto")
    if lr_rows["lr"].nunique() < 2:
        return None
    table, rising, reason = _dead_against_rate(lr_rows)
    inits, fixes_hold = _pick(relu, init=["normal", "xavier_normal", "he"]), None
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


def claim_saturation(t: pd.DataFrame) -> Verdict | None:
    where = MNIST_MLP | SGD | {"activation": "sigmoid", "lr": 0.1}
    rows = _pick(t, init=["normal", "lecun"], **where)
    if rows["init"].nunique() < 2:
        return None
    table = _summary(
        rows,
        "init",
        {
            "sat0": ("layer-1 saturated at init", ".3f"),
            "sat": ("layer-1 saturated, last epoch", ".3f"),
            "val_acc_1": ("val acc after epoch 1", ".4f"),
            "test_acc": ("final test acc", ".4f"),
        },
        order=["normal", "lecun"],
    )
    sim = saturation_thought_experiment()
    sat = _paired(rows, "init", "normal", "lecun", "sat0")
    early = _paired(rows, "init", "lecun", "normal", "val_acc_1")
    reason = (
        f"The textbook neuron (1000 inputs, 500 of them 1, bias N(0, 1), 20,000 random units): with N(0, 1) weights "
        f"the pre-activation std is {sim['N(0, 1)']['z_std']:.2f} and {sim['N(0, 1)']['saturated']:.1%} of units are "
        f"saturated (sigma' < 1 % of 1/4); with N(0, 1/n) weights it is {sim['N(0, 1/n)']['z_std']:.2f} and "
        f"{sim['N(0, 1/n)']['saturated']:.1%}. On MNIST, layer-1 saturation N(0, 1) minus LeCun: {_diff(sat, '+.3f')}; "
        f"LeCun minus N(0, 1) validation accuracy after one epoch: {_diff(early)}."
    )
    if _every(sat) and _every(early):
        verdict = CONFIRMED
    elif _every(sat):
        verdict = DEPENDS
        reason += " N(0, 1) saturates the units, but LeCun init did not learn faster in every seed."
    else:
        verdict = NOT_CONFIRMED
    return Verdict(
        4,
        "with N(0, 1) weights (1000 inputs, 500 of them 1) the pre-activation std is about 22.4 and sigmoid units "
        "saturate; with N(0, 1/n) it is about 1.22 and learning is faster.",
        "The textbook neuron simulated; then a sigmoid MLP 784-256-256-10 on MNIST, SGD 0.1, initialised N(0, 1) "
        "(`normal`) or N(0, 1/fan_in) (`lecun`), 5 epochs.",
        table,
        verdict,
        reason,
    )


def claim_cross_entropy(t: pd.DataFrame) -> Verdict | None:
    where = MNIST_MLP | SGD | {"activation": "sigmoid", "lr": 0.1, "init": "xavier_normal"}
    if _pick(t, loss=["cross_entropy", "mse_sigmoid"], **where)["loss"].nunique() < 2:
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
    rows = _pick(t, activation=["relu", "softplus"], **where)
    rows = rows[rows["lr"].eq(0.001)]
    if rows["activation"].nunique() < 2:
        return None
    table = _summary(rows, "activation", {"test_acc": ("final test acc", ".4f")}, order=["relu", "softplus"])
    diff = _paired(rows, "activation", "softplus", "relu", "test_acc")
    reason = f"softplus minus relu, final test accuracy: {_diff(diff)}."
    verdict = NOT_CONFIRMED if _every(diff) else CONFIRMED
    reason += " softplus was better in every seed." if _every(diff) else " softplus was not better in every seed."
    return Verdict(
        6,
        "softplus, though smooth, does not beat ReLU.",
        "MLP 784-256-256-10, MNIST, Adam 1e-3 with a cosine schedule, 5 epochs.",
        table,
        verdict,
        reason,
    )


def claim_leaky(t: pd.DataFrame) -> Verdict | None:
    variants = ["leaky_relu", "prelu", "elu"]
    tried = _pick(t, activation=variants, init="auto", **MNIST_MLP, **SGD)
    if tried.empty:
        return None
    rate = float(tried["lr"].max())
    rows = _pick(t, activation=["relu", *variants], lr=rate, init="auto", **MNIST_MLP, **SGD)
    if rows["activation"].nunique() < 2:
        return None
    table = _summary(
        rows,
        "activation",
        {"dead": ("dead fraction, last epoch", ".3f"), "test_acc": ("final test acc", ".4f")},
        order=["relu", *[v for v in variants if v in set(rows["activation"])]],
    )
    fixed, learned = [], []
    for v in variants:
        if v in set(rows["activation"]):
            fewer = _every(_paired(rows, "activation", v, "relu", "dead"), positive=False)
            better = _every(_paired(rows, "activation", v, "relu", "test_acc"))
            (fixed if fewer else []).append(v)
            (learned if better else []).append(v)
    relu_dead = _pick(rows, activation="relu", status=Status.OK)["dead"].mean()
    untrained = [
        v for v in variants if v in set(rows["activation"]) and _pick(rows, activation=v, status=Status.OK).empty
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
    rows = _pick(t, dataset="fashion_mnist", model="mlp", activation="relu", optimizer="adam")
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
    table = _summary(
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
    diffs = {setting: _paired(rows, "setting", setting, "none", "gap") for setting in order[1:]}
    narrower = [setting for setting, diff in diffs.items() if _every(diff, positive=False)]
    stopping = rows[rows["only_stopping"] & rows["status"].eq(Status.OK)]
    misses = int((stopping["hindsight_loss"] > ES_TOLERANCE).sum())
    regularizers = sorted(set(rows.loc[rows["regularized"], "setting"]))
    reason = (
        "Gap change against no regularizer (negative = narrower): "
        + "; ".join(f"{setting}: {_diff(diff)}" for setting, diff in diffs.items())
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


CLAIMS: tuple[Callable[[pd.DataFrame], Verdict | None], ...] = (
    claim_vanishing,
    claim_tanh,
    claim_dead_relu,
    claim_saturation,
    claim_cross_entropy,
    claim_softplus,
    claim_leaky,
    claim_regularizers,
)


def evaluate(runs: pd.DataFrame, epochs: pd.DataFrame, layers: pd.DataFrame) -> list[Verdict]:
    """The verdict of every claim whose runs are in ``runs`` (in claim order)."""
    if runs.empty:
        return []
    table = per_run(runs, epochs, layers)
    return [v for v in (claim(table) for claim in CLAIMS) if v is not None]
