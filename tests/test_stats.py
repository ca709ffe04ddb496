"""Analysis on synthetic runs with known answers: means, t intervals, ranks, paired tests, Holm, marks, curves."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from bench.analysis import stats
from bench.config import RunSpec, Status
from bench.runs.store import Store

T975_DF2 = 4.302652729911275  # Student t 0.975 quantile, 2 degrees of freedom (tables: 4.303)
T995_DF2 = 9.924843200918239  # Student t 0.995 quantile, 2 degrees of freedom (tables: 9.925)


def record(status: str = Status.OK, *, key: str | None = None, **fields) -> dict:
    """A run record as loop.py writes it: every RunSpec field (flattened), key, status, then metrics."""
    spec_fields = {k: fields.pop(k) for k in list(fields) if k in stats.SPEC_COLUMNS or k in ("seed", "device")}
    spec = RunSpec(**spec_fields)
    return {"key": key or f"{spec.key}-{status}", "status": status, "error": None, **spec.flat(), **fields}


def frame(*records: dict) -> pd.DataFrame:
    return pd.DataFrame.from_records(records)


def accs(activation: str, values, **fields) -> list[dict]:
    """One ok run per value, seeds 0, 1, 2, ..."""
    return [record(activation=activation, seed=s, test_acc=v, **fields) for s, v in enumerate(values)]


def row(table: pd.DataFrame, **where) -> pd.Series:
    """The single row of ``table`` matching ``where``."""
    match = table.loc[np.logical_and.reduce([table[k] == v for k, v in where.items()])]
    assert len(match) == 1, match
    return match.iloc[0]


def test_spec_columns_are_runspec_fields_without_seed_device_compile():
    assert {"seed", "device", "compile"}.isdisjoint(stats.SPEC_COLUMNS)
    assert {"dataset", "model", "hidden", "activation", "init", "lr", "epochs", "dropout", "loss"} <= set(
        stats.SPEC_COLUMNS
    )
    runs = frame(*accs("relu", [0.9]))
    cols = stats.config_columns(runs.drop(columns=["lr"]))
    assert cols[:2] == ["dataset", "model"] and "lr" not in cols and "seed" not in cols and "activation" in cols


def test_summarize_known_mean_std_and_t_interval():
    out = stats.summarize(frame(*accs("relu", [0.90, 0.92, 0.94])))
    assert len(out) == 1
    r = out.iloc[0]
    half = T975_DF2 * 0.02 / math.sqrt(3)
    assert (r["n"], r["n_diverged"], r["n_failed"], r["n_missing"]) == (3, 0, 0, 0)
    assert r["mean"] == pytest.approx(0.92) and r["std"] == pytest.approx(0.02)
    assert r["sem"] == pytest.approx(0.02 / math.sqrt(3))
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(0.92 - half), pytest.approx(0.92 + half))
    assert (r["min"], r["max"]) == (pytest.approx(0.90), pytest.approx(0.94))
    wide = stats.summarize(frame(*accs("relu", [0.90, 0.92, 0.94])), confidence=0.99).iloc[0]
    assert wide["ci_high"] == pytest.approx(0.92 + T995_DF2 * 0.02 / math.sqrt(3))


def test_diverged_and_failed_runs_are_counted_but_not_averaged():
    runs = frame(
        *accs("relu", [0.90, 0.92, 0.94]),
        record(Status.DIVERGED, activation="relu", seed=3, test_acc=0.10),
        record(Status.FAILED, activation="relu", seed=4),  # a failed record has no metrics at all
        record(Status.DIVERGED, activation="tanh", seed=0, test_acc=0.10),
        record(activation="gelu", seed=0, test_acc=float("nan")),  # ok but without a value
    )
    out = stats.summarize(runs)
    relu, tanh, gelu = (row(out, activation=a) for a in ("relu", "tanh", "gelu"))
    assert (relu["n"], relu["n_missing"], relu["n_diverged"], relu["n_failed"]) == (3, 0, 1, 1)
    assert relu["mean"] == pytest.approx(0.92) and relu["min"] == pytest.approx(0.90)
    assert (tanh["n"], tanh["n_diverged"]) == (0, 1) and math.isnan(tanh["mean"])  # shown, not dropped
    assert (gelu["n"], gelu["n_missing"]) == (0, 1) and math.isnan(gelu["mean"])


def test_a_single_run_has_no_interval_rather_than_a_zero_width_one():
    r = stats.summarize(frame(*accs("relu", [0.9]))).iloc[0]
    assert r["n"] == 1 and r["mean"] == pytest.approx(0.9)
    assert all(math.isnan(r[c]) for c in ("std", "sem", "ci_low", "ci_high"))


def test_summarize_groups_by_configuration_not_by_seed():
    runs = frame(*accs("relu", [0.9, 0.8]), *accs("relu", [0.7, 0.6], lr=0.01), *accs("gelu", [0.5, 0.4]))
    out = stats.summarize(runs)
    assert len(out) == 3 and "seed" not in out.columns
    assert row(out, activation="relu", lr=0.01)["mean"] == pytest.approx(0.65)
    by_act = stats.summarize(runs, by="activation")
    assert list(by_act.columns[:2]) == ["activation", "n"]
    assert row(by_act, activation="relu")[["n", "mean"]].tolist() == [4, pytest.approx(0.75)]
    with pytest.raises(KeyError, match="nope"):
        stats.summarize(runs, metric="nope")


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=2, max_size=8), st.sampled_from([0.8, 0.95, 0.99]))
def test_interval_agrees_with_scipy(values, confidence):
    r = stats.summarize(frame(*accs("relu", values)), confidence=confidence).iloc[0]
    if np.std(values) == 0:
        assert r["ci_low"] == pytest.approx(r["mean"]) == pytest.approx(r["ci_high"])
    else:
        sem = scipy_stats.sem(values)
        low, high = scipy_stats.t.interval(confidence, len(values) - 1, loc=np.mean(values), scale=sem)
        assert (r["ci_low"], r["ci_high"]) == (pytest.approx(low), pytest.approx(high))


def test_generalisation_gap_is_train_minus_test():
    runs = frame(*[record(activation="relu", seed=s, train_acc=t, test_acc=0.9) for s, t in enumerate([0.95, 0.97])])
    r = stats.generalisation_gap(runs).iloc[0]
    assert (r["n"], r["mean"], r["max"]) == (2, pytest.approx(0.06), pytest.approx(0.07))


def test_ranks_within_groups_and_overall():
    runs = frame(
        *accs("relu", [0.90, 0.90]),
        *accs("gelu", [0.94, 0.96]),
        *accs("tanh", [0.80, 0.80]),
        *accs("relu", [0.85], dataset="fashion_mnist"),
        *accs("gelu", [0.85], dataset="fashion_mnist"),
        *accs("tanh", [0.90], dataset="fashion_mnist"),
    )
    out = stats.ranks(runs)
    assert out["activation"].tolist() == ["gelu", "tanh", "relu"]
    assert out["mnist/mlp"].tolist() == [1, 3, 2]
    assert out["fashion_mnist/mlp"].tolist() == [2.5, 1, 2.5]  # relu and gelu tie: ranks averaged
    assert out["overall"].tolist() == [1.75, 2.0, 2.25]
    assert out["n_groups"].tolist() == [2, 2, 2]
    worst_first = stats.ranks(runs, higher_is_better=False)
    assert worst_first["activation"].tolist() == ["relu", "tanh", "gelu"]
    assert worst_first["overall"].tolist() == [1.75, 2.0, 2.25]


def test_an_activation_that_never_finished_ranks_last():
    runs = frame(*accs("relu", [0.5]), *accs("gelu", [0.6]), record(Status.DIVERGED, activation="tanh", seed=0))
    out = stats.ranks(runs)
    assert out["activation"].tolist() == ["gelu", "relu", "tanh"] and out["overall"].tolist() == [1, 2, 3]


def test_holm_on_known_p_values():
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([0.5, np.nan, 0.01]) == pytest.approx([0.5, np.nan, 0.02], nan_ok=True)  # NaN not counted
    assert stats.holm([0.6, 0.7]).tolist() == [1.0, 1.0]  # capped at 1
    assert stats.holm([]).size == 0


def paired_runs() -> pd.DataFrame:
    """relu vs gelu (diffs 0.01, 0.02, 0.03, 0.02) and tanh (diffs -0.10, -0.12, -0.11, -0.09), rows shuffled."""
    relu = [0.90, 0.91, 0.92, 0.93]
    gelu = [0.91, 0.93, 0.95, 0.95]
    tanh = [0.80, 0.79, 0.81, 0.84]
    runs = frame(*accs("relu", relu), *accs("gelu", gelu), *accs("tanh", tanh))
    return runs.sample(frac=1, random_state=3).reset_index(drop=True)  # pairing is by seed, not by position


def test_paired_ttest_matches_scipy_with_hand_computed_effect_size():
    out = stats.paired_tests(paired_runs(), test="ttest")
    assert sorted(out["activation"]) == ["gelu", "tanh"] and (out["baseline"] == "relu").all()
    gelu = row(out, activation="gelu")
    expected = scipy_stats.ttest_rel([0.91, 0.93, 0.95, 0.95], [0.90, 0.91, 0.92, 0.93])
    assert gelu["n_pairs"] == 4 and gelu["mean_diff"] == pytest.approx(0.02)
    assert gelu["sd_diff"] == pytest.approx(math.sqrt(0.0002 / 3))
    assert gelu["d_z"] == pytest.approx(math.sqrt(6))  # 0.02 / sqrt(0.0002 / 3)
    assert (gelu["statistic"], gelu["p_value"]) == (pytest.approx(expected.statistic), pytest.approx(expected.pvalue))
    tanh = row(out, activation="tanh")
    assert tanh["mean_diff"] == pytest.approx(-0.105) and tanh["d_z"] < 0
    # Holm over the two rows: the smaller p (tanh) is doubled, the larger (gelu) keeps max(its p, that)
    assert tanh["p_value"] < gelu["p_value"]
    assert tanh["p_holm"] == pytest.approx(2 * tanh["p_value"]) and gelu["p_holm"] == pytest.approx(gelu["p_value"])
    assert (gelu["significant"], gelu["better"]) == (True, "better")
    assert (tanh["significant"], tanh["better"]) == (True, "worse")
    as_loss = stats.paired_tests(paired_runs(), test="ttest", higher_is_better=False)
    assert row(as_loss, activation="gelu")["better"] == "worse"


def test_significance_is_judged_on_holm_adjusted_p_values():
    relu = [0.90, 0.91, 0.92, 0.93]
    better = [0.925, 0.92, 0.93, 0.955]  # paired t-test p = 0.027 on its own
    runs = frame(*accs("relu", relu), *accs("elu", better), *accs("selu", better))
    out = stats.paired_tests(runs, test="ttest")
    p = scipy_stats.ttest_rel(better, relu).pvalue
    assert p < 0.05 and out["p_value"].tolist() == pytest.approx([p, p])
    assert out["p_holm"].tolist() == pytest.approx([2 * p, 2 * p]) and 2 * p > 0.05
    assert not out["significant"].any() and (out["better"] == "no evidence").all()
    assert stats.paired_tests(runs, test="ttest", alpha=0.06)["better"].tolist() == ["better", "better"]


def test_wilcoxon_with_three_pairs_cannot_be_significant():
    runs = frame(*accs("relu", [0.90, 0.91, 0.92]), *accs("gelu", [0.99, 0.991, 0.992]))
    w = stats.paired_tests(runs).iloc[0]  # wilcoxon is the default
    assert w["test"] == "wilcoxon" and w["n_pairs"] == 3
    assert w["p_value"] == pytest.approx(0.25)  # the smallest two-sided p with 3 pairs
    assert (w["significant"], w["better"]) == (False, "no evidence")
    assert stats.paired_tests(runs, test="ttest").iloc[0]["p_value"] < 0.05


def test_pairs_need_both_runs_ok_and_fewer_than_two_pairs_give_nan():
    runs = frame(
        *accs("relu", [0.90, 0.91, 0.92]),
        record(activation="gelu", seed=0, test_acc=0.95),
        record(Status.DIVERGED, activation="gelu", seed=1, test_acc=0.1),
        record(Status.FAILED, activation="gelu", seed=2),
    )
    r = stats.paired_tests(runs, test="ttest").iloc[0]
    assert r["n_pairs"] == 1 and r["mean_diff"] == pytest.approx(0.05)
    assert math.isnan(r["p_value"]) and math.isnan(r["p_holm"]) and math.isnan(r["d_z"])
    assert (r["significant"], r["better"]) == (False, "no evidence")
    w = stats.paired_tests(runs, test="wilcoxon").iloc[0]
    assert w["n_pairs"] == 1 and math.isnan(w["p_value"])  # scipy alone would say p = 1 for one pair


def test_paired_tests_compare_within_each_configuration():
    runs = frame(
        *accs("relu", [0.90, 0.91]),
        *accs("gelu", [0.92, 0.94]),
        *accs("relu", [0.50, 0.60], dataset="fashion_mnist"),
        *accs("gelu", [0.40, 0.40], dataset="fashion_mnist"),
        *accs("gelu", [0.3, 0.3], lr=0.1),  # no relu runs with this lr: listed with 0 pairs
    )
    out = stats.paired_tests(runs, test="ttest")
    assert len(out) == 3
    assert row(out, dataset="mnist", lr=0.001)["mean_diff"] == pytest.approx(0.025)
    assert row(out, dataset="fashion_mnist")["mean_diff"] == pytest.approx(-0.15)
    lonely = row(out, lr=0.1)
    assert lonely["n_pairs"] == 0 and math.isnan(lonely["p_value"])
    with pytest.raises(ValueError, match="baseline 'mish'"):
        stats.paired_tests(runs, baseline="mish")
    with pytest.raises(ValueError, match="unknown test"):
        stats.paired_tests(runs, test="anova")


def test_paired_tests_refuse_runs_that_differ_only_in_device():
    runs = frame(*accs("relu", [0.9, 0.9]), *accs("gelu", [0.9, 0.9]), record(key="other", seed=0, test_acc=0.8))
    with pytest.raises(ValueError, match="device"):
        stats.paired_tests(runs)


def test_best_is_marked_only_where_intervals_do_not_overlap():
    runs = frame(
        # mnist: gelu clearly above relu (tight intervals); tanh far below
        *accs("gelu", [0.95, 0.951, 0.952]),
        *accs("relu", [0.90, 0.901, 0.902]),
        *accs("tanh", [0.5, 0.7, 0.9]),
        # fashion_mnist: gelu's mean is higher but its interval overlaps relu's; tanh clearly worse
        *accs("gelu", [0.80, 0.90, 0.95], dataset="fashion_mnist"),
        *accs("relu", [0.84, 0.85, 0.86], dataset="fashion_mnist"),
        *accs("tanh", [0.50, 0.501, 0.502], dataset="fashion_mnist"),
    )
    summary = stats.summarize(runs)
    summary["mark"] = stats.best_marks(summary)
    marks = {(r.dataset, r.activation): r.mark for r in summary.itertuples()}
    assert marks[("mnist", "gelu")] == "best"
    assert marks[("mnist", "relu")] == marks[("mnist", "tanh")] == ""
    assert marks[("fashion_mnist", "gelu")] == marks[("fashion_mnist", "relu")] == "tied"
    assert marks[("fashion_mnist", "tanh")] == ""
    summary["as_loss"] = stats.best_marks(summary, higher_is_better=False)  # as if it were a loss: lowest wins
    as_loss = {(r.dataset, r.activation): r.as_loss for r in summary.itertuples()}
    assert [as_loss[("mnist", a)] for a in ("tanh", "relu", "gelu")] == ["tied"] * 3  # tanh's wide interval
    assert [as_loss[("fashion_mnist", a)] for a in ("tanh", "relu", "gelu")] == ["best", "", ""]


def test_a_best_without_an_interval_is_only_tied():
    summary = stats.summarize(frame(*accs("gelu", [0.99]), *accs("relu", [0.50, 0.501, 0.502])))
    marks = stats.best_marks(summary)
    assert marks.tolist() == ["tied", "tied"]  # n = 1: no interval, so no claim, however far apart the means
    alone = stats.summarize(frame(*accs("gelu", [0.9, 0.91])))
    assert stats.best_marks(alone).tolist() == [""]
    survivor = stats.summarize(frame(*accs("gelu", [0.9, 0.91]), record(Status.DIVERGED, activation="relu", seed=0)))
    assert stats.best_marks(survivor).tolist() == ["", ""]  # nothing to compare the only mean with


def epoch_rows(key: str, values: list[float], seconds: list[float], split: str = "val") -> list[dict]:
    """``split``/acc rows for epochs 0..n-1 and train/seconds rows for epochs 1..n-1."""
    rows = [{"key": key, "epoch": e, "split": split, "metric": "acc", "value": v} for e, v in enumerate(values)]
    rows += [
        {"key": key, "epoch": e, "split": "train", "metric": "seconds", "value": s}
        for e, s in enumerate(seconds, start=1)
    ]
    return rows


def test_curves_have_known_per_epoch_means_over_seeds():
    runs = frame(
        *[record(activation="relu", seed=s, key=f"r{s}") for s in range(3)],
        record(Status.DIVERGED, activation="relu", seed=3, key="bad"),
        record(activation="gelu", seed=0, key="g0"),
    )
    epochs = pd.DataFrame(
        epoch_rows("r0", [0.1, 0.5, 0.8], [1, 1])
        + epoch_rows("r1", [0.1, 0.6, 0.9], [1, 1])
        + epoch_rows("r2", [0.1, 0.7], [1])
        + epoch_rows("bad", [0.1, 0.0, 0.0], [1, 1])
        + epoch_rows("g0", [0.2, 0.3], [1])
        + epoch_rows("r0", [0.0, 0.0, 0.0], [], split="test")
    )
    out = stats.curves(epochs, runs)
    relu = out[out["activation"] == "relu"].set_index("epoch")
    assert relu["n"].tolist() == [3, 3, 2]  # r2 stopped after epoch 1; the diverged run is left out
    assert relu["mean"].tolist() == pytest.approx([0.1, 0.6, 0.85])
    assert relu.loc[1, "ci_high"] == pytest.approx(0.6 + T975_DF2 * 0.1 / math.sqrt(3))
    assert relu.loc[0, "ci_low"] == pytest.approx(0.1)  # three equal values: zero width, not NaN
    assert row(out, activation="gelu", epoch=1)["mean"] == pytest.approx(0.3)
    with_diverged = stats.curves(epochs, runs, statuses=(Status.OK, Status.DIVERGED), by="activation")
    assert row(with_diverged, activation="relu", epoch=1)[["n", "mean"]].tolist() == [4, pytest.approx(0.45)]


def test_time_to_target_first_epoch_seconds_and_never():
    runs = frame(
        *[record(activation="relu", seed=s, key=f"r{s}") for s in range(3)],
        record(Status.FAILED, activation="relu", seed=3, key="crashed"),
    )
    epochs = pd.DataFrame(
        epoch_rows("r0", [0.1, 0.85, 0.91, 0.95], [1.5, 2.5, 4.0])  # reaches 0.9 at epoch 2 after 1.5 + 2.5 s
        + epoch_rows("r1", [0.1, 0.5, 0.6, 0.89], [1.0, 1.0, 1.0])  # never
        + epoch_rows("r2", [0.1, 0.92, 0.80, 0.93], [2.0, 2.0, 2.0])  # first reached at epoch 1
    )
    per_run = stats.time_to_target(epochs, runs, target=0.9).set_index("key")
    assert per_run.loc["r0", ["epoch_to_target", "seconds_to_target"]].tolist() == [2, pytest.approx(4.0)]
    assert per_run.loc["r2", ["epoch_to_target", "seconds_to_target"]].tolist() == [1, pytest.approx(2.0)]
    assert per_run.loc[["r1", "crashed"], ["epoch_to_target", "seconds_to_target"]].isna().all().all()
    assert per_run.loc["crashed", "status"] == Status.FAILED and "activation" in per_run.columns
    at_start = stats.time_to_target(epochs, runs, target=0.1).set_index("key")
    assert at_start.loc["r0", ["epoch_to_target", "seconds_to_target"]].tolist() == [0, 0.0]
    loss_like = stats.time_to_target(epochs, runs, target=0.55, higher_is_better=False).set_index("key")
    assert loss_like.loc["r1", "epoch_to_target"] == 0

    summary = stats.time_to_target_summary(per_run.reset_index()).iloc[0]
    assert (summary["n_runs"], summary["n_reached"]) == (4, 2)
    assert summary["epoch_mean"] == pytest.approx(1.5) and summary["seconds_mean"] == pytest.approx(3.0)
    # seconds 4.0 and 2.0: sd sqrt(2), sem 1, t 0.975 quantile with 1 degree of freedom 12.7062
    assert summary["seconds_ci_high"] == pytest.approx(3.0 + 12.706204736)
    # ranked by speed, a run that never reached the target counts as never: epochs 2, 1, never, never
    assert summary["epoch_median"] == np.inf and summary["seconds_median"] == np.inf
    three = stats.time_to_target_summary(per_run.drop(index="crashed").reset_index()).iloc[0]
    assert three["epoch_median"] == 2 and three["seconds_median"] == pytest.approx(4.0)  # 1, 2, never


def test_layer_profile_means_over_seeds_per_layer():
    runs = frame(
        *[record(activation="relu", seed=s, key=f"r{s}") for s in range(2)], record(key="g", seed=0, activation="gelu")
    )
    layers = pd.DataFrame(
        [
            {"key": k, "epoch": e, "layer": i, "name": f"act{i}", "metric": m, "value": v}
            for k, base in (("r0", 1.0), ("r1", 3.0), ("g", 10.0))
            for e in (0, 1)
            for i in (0, 1)
            for m, v in (("grad_norm", base * (i + 1) + e), ("dead_frac", 0.5))
        ]
    )
    out = stats.layer_profile(layers, runs)
    relu = out[out["activation"] == "relu"]
    assert relu["layer"].tolist() == [0, 1] and relu["name"].tolist() == ["act0", "act1"]
    assert relu["mean"].tolist() == pytest.approx([2.0, 4.0]) and relu["n"].tolist() == [2, 2]
    assert row(out, activation="gelu", layer=1)["mean"] == pytest.approx(20.0)
    later = stats.layer_profile(layers, runs, epoch=1, by="activation")
    assert row(later, activation="relu", layer=0)["mean"] == pytest.approx(3.0)
    every = stats.layer_profile(layers, runs, metric="dead_frac", epoch=None)
    assert len(every) == 2 * 2 * 2 and (every["mean"] == 0.5).all()


def test_through_a_real_store(tmp_path):
    """Records saved as loop.py hands them over and read back give the same known answers."""
    with Store(tmp_path / "s.sqlite") as store:
        for activation, values in (("relu", [0.90, 0.92, 0.94]), ("gelu", [0.99, 0.991, 0.992])):
            for seed, acc in enumerate(values):
                rec = record(activation=activation, seed=seed, test_acc=acc, train_acc=acc + 0.01)
                store.save(rec, epoch_rows(rec["key"], [0.1, acc], [2.0]), [])
        store.save(record(Status.FAILED, activation="relu", seed=5, error="RuntimeError: boom"), [], [])
        runs, epochs = store.runs(), store.epochs()
    summary = stats.summarize(runs)
    relu = row(summary, activation="relu")
    assert (relu["n"], relu["n_failed"]) == (3, 1)
    assert relu["ci_low"] == pytest.approx(0.92 - T975_DF2 * 0.02 / math.sqrt(3))
    assert stats.best_marks(summary).tolist() == ["best" if a == "gelu" else "" for a in summary["activation"]]
    tests = stats.paired_tests(runs, test="ttest")
    assert row(tests, activation="gelu")[["n_pairs", "mean_diff"]].tolist() == [3, pytest.approx(0.071)]
    curve = stats.curves(epochs, runs)
    assert row(curve, activation="gelu", epoch=1)["mean"] == pytest.approx(0.991)
    reach = stats.time_to_target(epochs, runs, target=0.93)
    assert reach.groupby("activation")["epoch_to_target"].count().to_dict() == {"gelu": 3, "relu": 1}
    assert row(reach, activation="relu", seed=2)["seconds_to_target"] == pytest.approx(2.0)
