"""The notebook API: ``bench.RunSpec``, ``bench.train``, ``bench.run_suite``, ``bench.results``, ``bench.curves``."""

import bench
from bench.config import Status

SMALL = dict(dataset="mnist", model="mlp", hidden=(16,), epochs=1)  # on the test device: each test passes device=device


def test_train_returns_the_record_of_one_run(device, data_dir):
    record = bench.train(bench.RunSpec(activation="elu", **SMALL, device=device), data_dir)
    assert record["status"] == Status.OK and record["activation"] == "elu" and record["test_acc"] > 0.8


def test_run_suite_results_and_curves_read_back_with_readable_columns(device, data_dir, tmp_path):
    store = tmp_path / "nb.sqlite"
    specs = [bench.RunSpec(activation=a, seed=s, **SMALL, device=device) for a in ("relu", "tanh") for s in (0, 1)]
    records = bench.run_suite(specs, store, data_dir=data_dir, progress=False)
    assert sorted((r["activation"], r["seed"]) for r in records) == [("relu", 0), ("relu", 1), ("tanh", 0), ("tanh", 1)]
    assert bench.run_suite(specs, store, data_dir=data_dir, progress=False) == []  # all in the store already

    runs = bench.results(store)
    assert list(runs.columns[:7]) == ["activation", "dataset", "model", "init", "optimizer", "lr", "seed"]
    assert len(runs) == 4 and set(runs["status"]) == {Status.OK}

    curves = bench.curves(store)
    assert {"activation", "seed", "epoch", "split", "metric", "value"} <= set(curves.columns)
    test_acc = curves.query("split == 'test' and metric == 'acc' and epoch == 1").set_index(["activation", "seed"])
    for r in records:
        assert test_acc.loc[(r["activation"], r["seed"]), "value"] == r["test_acc"]
    layers = bench.curves(store, layers=True)
    assert {"activation", "seed", "layer", "metric"} <= set(layers.columns)
