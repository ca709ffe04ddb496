"""Runs that did not learn: the rule (a quarter of the way from chance to the setting's best), never a p-value where a
seed did not learn, "unstable (k of n seeds did not learn)" in the tests, the findings, the forest plot and the
tables; the rank bootstrap drawing a seed both budgets share once for both."""

import numpy as np
import pandas as pd
import pytest
from test_report import GRID, check_png, figures_of, synthetic_store, write_suite

from bench.analysis import effects, outcomes, stats
from bench.report import command, comparisons, page
from bench.tasks import Metric

LOSS = Metric("loss", "loss", False, "nats", chance=4.0)


def runs(values: dict[str, list[float]], metric: str = "val_acc", chance: float = 0.1) -> pd.DataFrame:
    rows = [
        {"dataset": "d", "activation": a, "lr": 1e-3, "seed": s, "status": "ok", metric: v, "chance": chance}
        for a, vs in values.items()
        for s, v in enumerate(vs)
    ]
    return pd.DataFrame(rows)


def test_a_run_learned_when_it_went_a_tenth_of_the_way_from_chance_to_the_settings_best():
    frame = runs({"relu": [0.9, 0.9], "x": [0.29, 0.31]})  # best mean 0.9: the line is at 0.1 + 0.2 = 0.3
    assert outcomes.progress(frame, ["dataset"]).tolist() == pytest.approx([1, 1, 0.2375, 0.2625])
    assert outcomes.not_learned(frame, ["dataset"]).tolist() == [False, False, True, False]
    frame.loc[3, "status"] = "diverged"  # counted as diverged, not here
    assert outcomes.not_learned(frame, ["dataset"]).tolist() == [False, False, True, False]
    nothing = runs({"relu": [0.1, 0.09], "x": [0.1, 0.1]})  # no configuration better than chance: none learned
    assert outcomes.not_learned(nothing, ["dataset"]).all()
    unknown = runs({"relu": [0.9, 0.9], "x": [0.1, 0.1]}, chance=np.nan)  # no chance level: nothing to measure by
    assert not outcomes.not_learned(unknown, ["dataset"]).any()


def test_a_loss_did_not_learn_near_the_uniform_loss():
    frame = runs({"relu": [2.0, 2.0], "x": [3.6, 3.4]}, "val_loss", chance=4.0)  # line at 4 - 0.5 = 3.5
    assert outcomes.not_learned(frame, ["dataset"], LOSS).tolist() == [False, False, True, False]


def test_a_comparison_with_a_seed_that_did_not_learn_has_no_p_value():
    val = {"relu": [0.90, 0.91, 0.90, 0.92, 0.91], "flaky": [0.10, 0.10, 0.11, 0.85, 0.88], "dead": [0.1] * 5}
    val["gelu"] = [v + 0.02 + d for v, d in zip(val["relu"], (0.001, -0.001, 0.0, 0.0005, -0.0005), strict=True)]
    frame = runs(val).assign(test_acc=lambda f: f["val_acc"] - 0.01)
    out = stats.paired_tests(frame, test="ttest", by=["dataset", "lr"]).set_index("activation")
    assert out.loc["flaky", "better"] == "unstable (3 of 5 seeds did not learn)"
    assert out.loc["dead", "better"] == "did not learn (5 of 5 seeds)"
    assert out.loc[["flaky", "dead"], ["statistic", "p_value", "p_holm"]].isna().all().all()
    assert out.loc["flaky", "mean_diff"] == pytest.approx(np.mean(val["flaky"]) - np.mean(val["relu"]))
    assert out.loc["gelu", "better"] == "better" and out.loc["gelu", "p_holm"] == out.loc["gelu", "p_value"]  # 1 test
    relu_flaky = frame.assign(
        val_acc=frame["val_acc"].where(~frame["activation"].eq("relu") | frame["seed"].ne(0), 0.1)
    )
    out = stats.paired_tests(relu_flaky, test="ttest", by=["dataset", "lr"]).set_index("activation")
    assert out.loc["gelu", "better"] == "unstable (relu's did not learn in 1 of 5)"
    assert out.loc["gelu", "n_base_not_learned"] == 1 and np.isnan(out.loc["gelu", "p_value"])


def test_a_suite_where_one_activation_learns_in_2_of_5_seeds_reports_it_unstable(tmp_path):
    suite = write_suite(
        tmp_path / "flaky.toml", GRID + 'activation = ["relu", "gelu", "tanh", "hardsigmoid"]\nseeds = 5\n'
    )

    def value(spec, split):
        base = 0.9 + 0.003 * spec.seed
        if spec.activation == "hardsigmoid":
            return 0.1 if spec.seed < 3 else 0.85  # learns in 2 of 5 seeds
        noise = 0.0005 * (spec.seed % 2) * (spec.activation != "relu")
        return base + {"relu": 0.0, "gelu": 0.02, "tanh": -0.03}[spec.activation] + noise

    store = synthetic_store(tmp_path / "s.sqlite", suite, value)
    ctx = command.load(suite, store, tmp_path / "out", None, timing=False)
    pairs = comparisons.pairs(ctx).set_index("activation")
    assert pairs.loc["hardsigmoid", "better"] == "unstable (3 of 5 seeds did not learn)"
    assert pairs.loc["hardsigmoid", ["p_value", "p_holm"]].isna().all()
    assert pairs.loc["gelu", "better"] == "better" and pairs.loc["tanh", "better"] == "worse"
    summary = comparisons.summary_frame(ctx).set_index("activation")
    assert summary["n_not_learned"].to_dict() == {"relu": 0, "gelu": 0, "tanh": 0, "hardsigmoid": 3}
    sections = [comparisons.section_findings, comparisons.section_forest, comparisons.section_accuracy]
    readme = command.build(suite, store, tmp_path / "out", timing=False, sections=[*sections, page.section_not_learned])
    text = readme.read_text()
    found = text.split("## What this benchmark found")[1].split("\n## ")[0]
    assert "1 better, 1 worse, 0 without evidence of a difference, 1 not tested because a run did not learn" in found
    assert "Holm over the 2 tested" in found
    assert "hardsigmoid -" in found and "unstable (3 of 5 seeds did not learn)" in found
    assert "2 of 3 comparisons differ from ReLU: 1 better, 1 worse; 1 is not tested" in found
    stuck = text.split("## Runs that did not learn")[1].split("\n## ")[0]
    assert "3 of 20 ok runs" in stuck and stuck.count("| hardsigmoid |") == 3
    table = text.split("## Final test accuracy")[1].split("\n## ")[0].splitlines()
    header = next(line for line in table if line.startswith("| setting |")).split("|")
    row = next(line for line in table if "| hardsigmoid |" in line).split("|")
    assert row[header.index(" n_not_learned ")].strip() == "3"
    assert figures_of(readme) == {"forest_mnist_mlp"}
    check_png(readme.parent / "figures" / "forest_mnist_mlp.png")


def test_a_seed_both_budgets_ran_is_drawn_once_for_both():
    seeds = [0, 1, 2, 3, 4]
    short = pd.DataFrame(np.arange(15.0).reshape(5, 3), index=seeds)
    long = pd.DataFrame(100 + np.arange(9.0).reshape(3, 3), index=[0, 1, 2])
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = effects._draw(rng, short, long)
        assert a.shape == (5, 3) and b.shape == (3, 3)
        assert ((a[:3] // 3) == (b - 100) // 3).all()  # the 3 shared seeds: the same draw in both
        assert set(a[3:, 0] // 3) <= {3, 4}  # short's own seeds drawn for it alone
