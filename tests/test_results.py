"""Reading a suite's runs from a real SQLite store: matched on the spec, in suite order, latest of duplicates."""

import pytest
from test_report import synthetic_store, write_suite

from activations.errors import InputError
from bench.analysis import frames
from bench.config import Status, load_suite
from bench.runs import results
from bench.runs.store import Store

SUITE = """
dataset = "mnist"
model = "mlp"
hidden = [16]
epochs = 2
activation = ["relu", "tanh", "elu"]
seeds = 2
"""


@pytest.fixture
def store(tmp_path):
    """The suite without elu seed 1, one run of another suite, and a relu seed-0 rerun on another device."""
    suite = write_suite(tmp_path / "suite.toml", SUITE)
    specs = load_suite(suite)
    path = synthetic_store(
        tmp_path / "s.sqlite",
        suite,
        lambda spec, split: 0.9 + 0.01 * spec.seed,
        skip=lambda spec: (spec.activation, spec.seed) == ("elu", 1),
    )
    other = write_suite(tmp_path / "other.toml", SUITE.replace('["relu", "tanh", "elu"]', '["gelu"]'))
    synthetic_store(path, other, lambda spec, split: 0.5, skip=lambda spec: spec.seed == 1)
    relu = specs[0]
    with Store(path) as db:
        rerun = {**db.record(relu.key), "key": relu.key + "-cuda", "device": "cuda", "test_acc": 0.99}
        db.save(rerun, [{"epoch": 0, "split": "val", "metric": "acc", "value": 0.5}], [])
    return {"suite": suite, "specs": specs, "path": path, "relu": relu}


def test_the_suites_runs_in_suite_order_with_what_is_missing_and_extra(store):
    found = results.suite_runs(store["specs"], store["path"])
    assert list(zip(found.runs["activation"], found.runs["seed"], strict=True)) == [
        ("relu", 0),
        ("relu", 1),
        ("tanh", 0),
        ("tanh", 1),
        ("elu", 0),
    ]
    assert [(s.activation, s.seed) for s in found.missing] == [("elu", 1)]
    assert (found.other_runs, found.duplicates) == (1, 1)  # the gelu run; the older relu seed-0 run
    assert set(found.runs["status"]) == {Status.OK}


def test_the_latest_of_several_runs_of_a_spec_is_used_with_its_rows(store):
    found = results.suite_runs(store["specs"], store["path"])
    relu0 = found.runs.iloc[0]
    assert (relu0["key"], relu0["device"], relu0["test_acc"]) == (store["relu"].key + "-cuda", "cuda", 0.99)
    assert set(found.epochs["key"]) == set(found.layers["key"]) | {relu0["key"]} == set(found.runs["key"])
    assert found.epochs[found.epochs["key"].eq(relu0["key"])]["value"].tolist() == [0.5]


def test_a_store_without_the_suite_or_without_a_file(tmp_path, store):
    other = load_suite(write_suite(tmp_path / "none.toml", SUITE.replace('["relu", "tanh", "elu"]', '["selu"]')))
    found = results.suite_runs(other, store["path"])
    assert found.runs.empty and found.epochs.empty and len(found.missing) == 2 and found.other_runs == 7
    with pytest.raises(InputError, match="no store at"):
        results.suite_runs(other, tmp_path / "missing.sqlite")


def test_spec_frame_numbers_the_specs_in_suite_order(store):
    frame = frames.spec_frame(store["specs"])
    assert frame["_spec"].tolist() == list(range(6)) and frame["key"].tolist() == [s.key for s in store["specs"]]
    assert set(frames.MATCH_COLUMNS) <= set(frame.columns) and "device" not in frames.MATCH_COLUMNS


def test_records_from_before_the_source_hash_match_built_in_specs(tmp_path, store):
    with Store(store["path"]) as db:  # a record written before activation_sha existed: the field is absent
        tanh = store["specs"][2]
        old = {k: v for k, v in db.record(tanh.key).items() if k != "activation_sha"}
        db.save({**old, "test_acc": 0.123}, [], [])
    found = results.suite_runs(store["specs"], store["path"])
    assert found.runs.set_index(["activation", "seed"]).loc[("tanh", 0), "test_acc"] == 0.123
