"""The comparison page from synthetic runs with known answers: ranks, pairs, the control, and an activation that
never finished a run in a setting."""

import pandas as pd
from test_report import GRID, synthetic_store, write_suite

from bench import compare
from bench.config import Status, load_suite
from bench.report import compare_page
from bench.runs import results

VALUES = {"relu": 0.90, "tanh": 0.88, "elu": 0.93}


def value(spec, split):
    return VALUES[spec.activation] + 0.001 * spec.seed


def found(tmp_path, mine_status=lambda spec: Status.OK):
    """The published suite (relu, tanh), elu trained here, and a control equal to the published relu runs."""
    published_suite = write_suite(tmp_path / "pub.toml", GRID + 'activation = ["relu", "tanh"]\nseeds = 3\n')
    mine = write_suite(tmp_path / "mine.toml", GRID + 'activation = ["elu"]\nseeds = 3\n')
    control = write_suite(tmp_path / "control.toml", GRID + 'activation = ["relu"]\nseeds = 3\n')
    published_store = synthetic_store(tmp_path / "published.sqlite", published_suite, value)
    here_store = synthetic_store(tmp_path / "here.sqlite", mine, value, status=mine_status)
    synthetic_store(here_store, control, value)
    published = results.suite_runs(load_suite(published_suite), published_store)
    here = results.suite_runs(load_suite(mine), here_store)
    ctl = results.suite_runs(load_suite(control), here_store)
    return published, here, ctl


def build(tmp_path, published, here, control):
    drift = compare.drift(published, control)
    out = tmp_path / "out"
    args = (["elu"], "pub", {"git_sha": "feedc0de"}, published, here, control, drift, out, "cmd")
    return compare_page.build(*args, timing=False).read_text(), out


def test_the_page_ranks_and_pairs_against_the_field(tmp_path):
    text, out = build(tmp_path, *found(tmp_path))
    assert "**The control matched.** All 3 relu runs" in text
    assert "- mnist/mlp: rank **1** of 3 [1, 1], test accuracy 0.9310; vs relu +3.00 pt" in text
    assert "better than 2 and worse than 0 of the 2 others" in text
    pairs = pd.read_csv(out / "comparison.csv").set_index("versus")
    assert abs(pairs.loc["tanh", "mean_diff"] - 0.05) < 1e-12 and abs(pairs.loc["relu", "mean_diff"] - 0.03) < 1e-12
    assert set(pairs["better"]) == {"better"}


def test_a_setting_without_an_ok_run_is_said_not_skipped(tmp_path):
    text, _ = build(tmp_path, *found(tmp_path, mine_status=lambda spec: Status.DIVERGED))
    assert "- mnist/mlp: not ranked, no run ended ok (3 diverged;" in text
    assert "## Diverged and failed runs" in text


def test_a_new_activation_that_does_not_learn_in_some_seeds_is_unstable_against_the_field(tmp_path, monkeypatch):
    stuck = {0: 0.1, 1: 0.1}  # elu stays at chance in seeds 0 and 1, learns in seed 2
    original = value

    def flaky(spec, split):
        return stuck.get(spec.seed, original(spec, split)) if spec.activation == "elu" else original(spec, split)

    monkeypatch.setattr(__import__(__name__), "value", flaky)
    text, out = build(tmp_path, *found(tmp_path))
    assert "vs relu -" in text and "(unstable (2 of 3 seeds did not learn))" in text
    assert (
        "not tested against 2 (a run did not learn)" in text
        and "better than 0 and worse than 0 of the 0 others" in text
    )
    pairs = pd.read_csv(out / "comparison.csv").set_index("versus")
    assert set(pairs["better"]) == {"unstable (2 of 3 seeds did not learn)"} and pairs["p_value"].isna().all()
