"""The claim verdicts on synthetic runs whose answers are known, and the verdict section of the seed-claims report."""

import math

import pandas as pd
import pytest
from test_report import synthetic_store

from bench.analysis import claims
from bench.config import RunSpec, Status
from bench.report import command

SGD = dict(optimizer="sgd", schedule="constant")


def table(rows: list[dict]) -> pd.DataFrame:
    """A per_run() table: each row a RunSpec's fields plus its status and measured numbers."""
    out = []
    for row in rows:
        fields = {k: v for k, v in row.items() if k in RunSpec.__dataclass_fields__}
        spec = RunSpec(**fields)
        out.append(
            {"key": spec.key, "status": Status.OK, **spec.flat(), **{k: v for k, v in row.items() if k not in fields}}
        )
    return pd.DataFrame(out)


def test_the_textbook_neuron():
    sim = claims.saturation_thought_experiment()
    assert sim["N(0, 1)"]["z_std"] == pytest.approx(math.sqrt(501), rel=0.02)  # 500 weights + the bias: 22.4
    assert sim["N(0, 1/n)"]["z_std"] == pytest.approx(math.sqrt(1.5), rel=0.02)  # 500/1000 + 1: 1.22
    assert sim["N(0, 1)"]["saturated"] > 0.7 and sim["N(0, 1/n)"]["saturated"] < 0.001


def test_per_run_reads_curves_and_probes():
    runs = pd.DataFrame([{"key": "k", "status": Status.OK, "seed": 0}])
    epochs = pd.DataFrame(
        [
            {"key": "k", "epoch": e, "split": s, "metric": "acc", "value": v}
            for e, s, v in [(0, "val", 0.1), (1, "val", 0.8), (2, "val", 0.9), (1, "test", 0.85), (2, "test", 0.84)]
        ]
    )
    layers = pd.DataFrame(
        [
            {"key": "k", "epoch": e, "layer": layer, "name": name, "metric": m, "value": v}
            for e, layer, name, m, v in [
                (0, 1, "fc1", "grad_norm", 0.002),
                (0, 3, "out", "grad_norm", 2.0),
                (0, 1, "fc1", "dead_frac", 0.0),
                (2, 1, "fc1", "dead_frac", 0.2),
                (2, 2, "fc2", "dead_frac", 0.4),
                (0, 1, "fc1", "saturated_frac", 0.5),
                (2, 1, "fc1", "saturated_frac", 0.25),
            ]
        ]
    )
    row = claims.per_run(runs, epochs, layers).iloc[0]
    assert row["val_acc_1"] == 0.8 and row["best_test"] == 0.85
    assert row["dead"] == pytest.approx(0.3)  # mean of the hidden layers at the last epoch
    assert (row["sat0"], row["sat"]) == (0.5, 0.25)
    assert row["grad_ratio"] == pytest.approx(1e-3)


def _tanh_vs_sigmoid(tanh_early: list[float], tanh_final: list[float]) -> claims.Verdict:
    where = dict(init="xavier_normal", lr=0.1, **SGD)
    rows = [dict(activation="sigmoid", seed=s, val_acc_1=0.9, test_acc=0.95, **where) for s in range(3)]
    rows += [
        dict(activation="tanh", seed=s, val_acc_1=e, test_acc=f, **where)
        for s, (e, f) in enumerate(zip(tanh_early, tanh_final, strict=True))
    ]
    return claims.claim_tanh(table(rows))


@pytest.mark.parametrize(
    "early, final, verdict",
    [
        ([0.92, 0.93, 0.91], [0.96, 0.97, 0.96], claims.CONFIRMED),
        ([0.85, 0.88, 0.89], [0.94, 0.93, 0.90], claims.NOT_CONFIRMED),
        ([0.92, 0.88, 0.91], [0.96, 0.97, 0.96], claims.DEPENDS),  # seed 1 learned slower
    ],
)
def test_faster_needs_the_same_sign_in_every_seed(early, final, verdict):
    v = _tanh_vs_sigmoid(early, final)
    assert v.verdict == verdict
    assert list(v.table["activation"]) == ["sigmoid", "tanh"]
    assert v.table["runs ok"].tolist() == ["3/3", "3/3"]


def test_claims_without_their_runs_are_left_out():
    rows = table([dict(activation="relu", seed=s, test_acc=0.9) for s in range(3)])
    assert claims.claim_tanh(rows) is None and claims.claim_vanishing(rows) is None
    assert claims.evaluate(pd.DataFrame(), pd.DataFrame(), pd.DataFrame()) == []


def _dead(by_lr: dict[float, list[float | None]]) -> claims.Verdict:
    rows = []
    for lr, values in by_lr.items():
        for seed, dead in enumerate(values):
            status = Status.DIVERGED if dead is None else Status.OK
            rows.append(dict(activation="relu", lr=lr, seed=seed, status=status, dead=dead, test_acc=0.9, **SGD))
    t = table(rows)
    t["status"] = [r["status"] for r in rows]  # table() sets "ok"; the rows say otherwise
    return claims.claim_dead_relu(t)


def test_dead_units_rising_with_the_rate_confirm_and_diverged_rates_are_shown():
    v = _dead({0.01: [0.0, 0.01, 0.0], 0.1: [0.02, 0.01, 0.02], 0.4: [0.3, 0.4, 0.35], 1.0: [None, None, None]})
    assert v.verdict == claims.CONFIRMED
    assert "diverged" in v.reason and "0.350" in v.reason
    assert v.table["runs ok"].tolist() == ["3/3", "3/3", "3/3", "0/3"]


def test_no_dead_units_at_any_rate_is_not_confirmed():
    v = _dead({0.01: [0.0, 0.01, 0.0], 0.1: [0.01, 0.0, 0.02], 0.4: [0.02, 0.01, 0.0]})
    assert v.verdict == claims.NOT_CONFIRMED


def _regularized(gaps: dict[str, list[float]], hindsight: dict[str, list[float]] | None = None) -> claims.Verdict:
    settings = {
        "none": {},
        "l2": dict(weight_decay=5e-4),
        "dropout": dict(dropout=0.3),
        "augment": dict(augment=True),
        "stop": dict(patience=10),
    }
    hindsight = hindsight or {}
    rows = [
        dict(
            dataset="fashion_mnist",
            epochs=30,
            seed=s,
            gap=g,
            test_acc=0.89,
            epochs_run=30,
            best_test=0.9,
            test_acc_at_best=0.9 - hindsight.get(name, [0.001] * 3)[s],
            **settings[name],
        )
        for name, values in gaps.items()
        for s, g in enumerate(values)
    ]
    return claims.claim_regularizers(table(rows))


def test_regularizers_that_narrow_the_gap_in_every_seed_confirm():
    v = _regularized(
        {
            "none": [0.10, 0.11, 0.09],
            "l2": [0.05, 0.06, 0.04],
            "dropout": [0.07, 0.08, 0.06],
            "augment": [0.01, 0.02, 0.0],
        }
    )
    assert v.verdict == claims.CONFIRMED
    assert v.table["setting"].tolist() == ["none", "L2 0.0005", "augment", "dropout 0.3"]


def test_a_regularizer_that_widens_the_gap_makes_it_depend():
    v = _regularized({"none": [0.10, 0.11, 0.09], "l2": [0.12, 0.13, 0.11], "dropout": [0.07, 0.08, 0.06]})
    assert v.verdict == claims.DEPENDS
    assert "Narrower in every seed: dropout 0.3." in v.reason
    assert "Not narrower in every seed: L2 0.0005." in v.reason


def test_early_stopping_that_misses_the_best_epoch_makes_it_depend():
    v = _regularized(
        {"none": [0.10, 0.11, 0.09], "l2": [0.05, 0.06, 0.04], "stop": [0.10, 0.10, 0.09]},
        hindsight={"stop": [0.001, 0.02, 0.0]},
    )
    assert v.verdict == claims.DEPENDS
    assert "in 2 of 3 runs (largest miss 0.0200)" in v.reason


def test_seed_claims_report_has_a_verdict_per_claim(tmp_path):
    def value(spec: RunSpec, split: str) -> float:
        return {"tanh": 0.95, "sigmoid": 0.9}.get(spec.activation, 0.92) + 0.001 * spec.seed

    store = synthetic_store(tmp_path / "s.sqlite", "seed-claims", value)
    readme = command.build("seed-claims", store, tmp_path / "out", timing=False)
    text = readme.read_text()
    assert "## Verdicts" in text
    for number in range(1, 9):
        assert f"\n### {number}. " in text
    assert text.count("**Verdict: ") == 8


def test_other_suites_have_no_verdicts(tmp_path):
    store = synthetic_store(tmp_path / "s.sqlite", "quick", lambda spec, split: 0.9)
    assert "## Verdicts" not in command.build("quick", store, tmp_path / "out", timing=False).read_text()
