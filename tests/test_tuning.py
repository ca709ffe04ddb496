"""The learning-rate choice on synthetic runs with a known best rate: validation only, broken runs worst, ties to the
smaller rate, edges marked and extended."""

import math

import numpy as np
import pandas as pd
import pytest

from bench.analysis import tuning

GRID = (3e-4, 1e-3, 3e-3, 1e-2)
BEST = {"relu": 1e-3, "tanh": 3e-3, "sigmoid": 1e-2, "selu": 3e-4}  # each activation's known best rate


def synthetic(seed: int = 0) -> pd.DataFrame:
    """Runs of two settings x four activations x four rates x two tuning seeds: validation accuracy peaks at the
    activation's best rate (falls with the log-distance from it, plus noise far smaller than a grid step's effect);
    test accuracy is independent noise."""
    rng = np.random.default_rng(seed)
    rows = []
    for dataset in ("mnist", "fashion_mnist"):
        for activation, best in BEST.items():
            for lr in GRID:
                for s in (100, 101):
                    distance = abs(math.log10(lr) - math.log10(best))
                    rows.append(
                        {
                            "dataset": dataset,
                            "model": "mlp",
                            "activation": activation,
                            "lr": lr,
                            "seed": s,
                            "status": "ok",
                            "val_acc": 0.95 - 0.05 * distance + rng.normal(0, 0.001),
                            "test_acc": rng.uniform(0.5, 1.0),
                        }
                    )
    return pd.DataFrame(rows)


def chosen(runs: pd.DataFrame) -> dict:
    table = tuning.choose(runs, ["dataset", "model"])
    return {(r.dataset, r.activation): r.lr for r in table.itertuples()}


def test_the_known_best_rate_is_chosen_for_every_activation_and_setting():
    table = tuning.choose(synthetic(), ["dataset", "model"])
    assert len(table) == 8 and set(table["n_seeds"]) == {2}
    assert chosen(synthetic()) == {(d, a): lr for d in ("mnist", "fashion_mnist") for a, lr in BEST.items()}
    edges = dict(zip(table["activation"], table["edge"], strict=False))
    assert edges == {"relu": "", "tanh": "", "sigmoid": "high", "selu": "low"}
    assert all(grid == GRID for grid in table["grid"])


def test_test_accuracy_moves_no_choice():
    runs = synthetic()
    before = chosen(runs)
    for seed in range(5):
        rng = np.random.default_rng(seed)
        changed = runs.assign(test_acc=rng.uniform(0, 1, len(runs)))  # any test accuracies at all
        assert chosen(changed) == before
    # while moving validation accuracy does move it: the choice reads it
    worse = runs.assign(val_acc=runs["val_acc"].where(~(runs["activation"].eq("relu") & runs["lr"].eq(1e-3)), 0.1))
    assert chosen(worse)[("mnist", "relu")] != 1e-3


@pytest.mark.parametrize("status", ["diverged", "failed"])
def test_a_rate_that_breaks_on_one_seed_is_never_chosen(status):
    runs = synthetic()
    broken = runs["activation"].eq("tanh") & runs["lr"].eq(3e-3) & runs["seed"].eq(101)
    runs.loc[broken, "status"] = status
    runs.loc[broken, "val_acc"] = np.nan if status == "failed" else 0.99  # a diverged run's last value is no score
    table = tuning.choose(runs, ["dataset", "model"]).set_index(["dataset", "activation"])
    assert table.loc[("mnist", "tanh"), "lr"] != 3e-3 and table.loc[("mnist", "tanh"), "n_broken"] == 1
    assert table.loc[("mnist", "relu"), "n_broken"] == 0


def test_equal_scores_go_to_the_smaller_rate():
    runs = synthetic().assign(val_acc=0.9)
    assert set(chosen(runs).values()) == {min(GRID)}


def test_an_edge_is_extended_by_one_step_of_the_grid():
    assert tuning.extended(GRID, "high") == pytest.approx((*GRID, 3e-2))
    assert tuning.extended(GRID, "low") == pytest.approx((1e-4, *GRID))
    assert tuning.extended((1e-3, 1e-2, 1e-1), "high") == pytest.approx((1e-3, 1e-2, 1e-1, 1.0))
    assert tuning.extended((1e-3, 1e-2), "low") == pytest.approx((1e-4, 1e-3, 1e-2))
    assert tuning.extended(GRID, "") == GRID
    with pytest.raises(ValueError, match="at 'low' or 'high'"):
        tuning.extended(GRID, "middle")
