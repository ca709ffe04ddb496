"""Batched training of K seeds against K separate ``train.run`` calls, on real MNIST for hundreds of steps."""

import dataclasses
import math

import pytest
import torch

from bench import ensemble, train
from bench.config import RunSpec

SMALL = RunSpec(dataset="mnist", model="mlp", hidden=(64,), epochs=1, batch_size=128, seed=0)  # 430 steps
TOL = 1e-5
TIMING = {"train_seconds", "wall_seconds", "samples_per_second", "started_at", "ensemble_size"}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: on this shared 2-core machine two OpenMP threads stall whenever another process runs
    (20x slower). Both sides of every comparison run under the same setting."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _close(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= TOL
    return a == b


def _assert_same_run(got: train.RunResult, want: train.RunResult) -> None:
    """Same epoch rows (but seconds), probe rows and record fields (but timing) as the single run, within TOL."""
    assert len(got.epochs) == len(want.epochs) and len(got.layers) == len(want.layers)
    for g, w in zip(got.epochs, want.epochs, strict=True):
        assert (g["epoch"], g["split"], g["metric"]) == (w["epoch"], w["split"], w["metric"])
        if g["metric"] != "seconds":
            assert _close(g["value"], w["value"]), (g, w)
    for g, w in zip(got.layers, want.layers, strict=True):
        assert {k: v for k, v in g.items() if k != "value"} == {k: v for k, v in w.items() if k != "value"}
        assert _close(g["value"], w["value"]), (g, w)
    assert set(got.record) - {"ensemble_size"} == set(want.record)
    for field in set(want.record) - TIMING:
        assert _close(got.record[field], want.record[field]), (field, got.record[field], want.record[field])


@pytest.fixture(scope="module")
def three_seeds(data_dir):
    specs = [dataclasses.replace(SMALL, seed=s) for s in (0, 1, 2)]
    calls = []
    results = ensemble.run(specs, data_dir, on_epoch=lambda spec, epoch, m: calls.append((spec.seed, epoch, m)))
    return specs, results, calls


def test_three_seeds_equal_three_separate_runs(three_seeds, data_dir):
    specs, results, _ = three_seeds
    assert [r.record["ensemble_size"] for r in results] == [3, 3, 3]  # really batched, not run one by one
    for spec, got in zip(specs, results, strict=True):
        _assert_same_run(got, train.run(spec, data_dir))
    assert min(r.record["test_acc"] for r in results) > 0.9
    assert len({r.record["test_loss"] for r in results}) == 3  # three different models, not one copied


def test_timing_is_shared_and_callbacks_name_the_member(three_seeds):
    specs, results, calls = three_seeds
    assert [(seed, epoch) for seed, epoch, _ in calls] == [(0, 1), (1, 1), (2, 1)]
    for (_, _, metrics), r in zip(calls, results, strict=True):
        assert metrics["val_acc"] == r.record["val_acc"] and metrics["train_loss"] == r.record["train_loss"]
    for r in results:
        rec = r.record
        (seconds,) = [row["value"] for row in r.epochs if row["metric"] == "seconds"]
        assert rec["train_seconds"] == pytest.approx(seconds) and 0 < rec["train_seconds"] <= rec["wall_seconds"]
        assert rec["samples_per_second"] == pytest.approx(55000 / rec["train_seconds"])
    assert len({r.record["train_seconds"] for r in results}) == 1  # each member gets the same share


def test_mixed_initializers_and_parameter_groups_in_one_group(data_dir):
    # seed 0 twice with different initializers: initial weights must follow (seed, init) per member;
    # prelu has a learnable slope that AdamW must not decay, as regularize.param_groups says
    base = dataclasses.replace(SMALL, batch_size=256, activation="prelu", optimizer="adamw", weight_decay=0.05)
    specs = [
        dataclasses.replace(base, seed=0, init="lecun"),
        dataclasses.replace(base, seed=1, init="orthogonal"),
        dataclasses.replace(base, seed=0, init="xavier_uniform"),
    ]
    assert len(ensemble.group(specs)) == 1
    results = ensemble.run(specs, data_dir)
    for spec, got in zip(specs, results, strict=True):
        _assert_same_run(got, train.run(spec, data_dir))
    assert results[0].record["test_loss"] != results[2].record["test_loss"]  # same seed, other initializer


def test_one_member_diverges_without_touching_the_others(data_dir):
    # N(0, 1) weights under squared ReLU blow up at this lr; the variance-keeping init trains
    base = RunSpec(
        dataset="mnist",
        model="mlp",
        hidden=(64, 64),
        activation="squared_relu",
        optimizer="sgd",
        lr=0.01,
        schedule="constant",
        epochs=2,
        batch_size=1000,
    )
    specs = [dataclasses.replace(base, seed=0), dataclasses.replace(base, seed=1, init="normal")]
    results = ensemble.run(specs, data_dir)
    assert results[0].record["ensemble_size"] == 2
    ok, diverged = (r.record for r in results)
    assert ok["status"] == "ok" and ok["epochs_run"] == 2 and ok["test_acc"] > 0.8
    assert diverged["status"] == "diverged" and diverged["diverged_epoch"] == 1 and diverged["epochs_run"] == 1
    assert "training loss became" in diverged["error"]
    for spec, got in zip(specs, results, strict=True):
        _assert_same_run(got, train.run(spec, data_dir))


def test_members_stop_early_at_their_own_epochs(data_dir):
    # at this lr validation accuracy wobbles: seed 2 stops after epoch 3, seed 1 after epoch 2; so chaotic a run
    # also shows that members round as single runs do (a stacked fused Adam did not: its seeds stopped elsewhere)
    base = dataclasses.replace(SMALL, lr=0.3, schedule="constant", epochs=4, batch_size=1000, patience=1)
    specs = [dataclasses.replace(base, seed=2), dataclasses.replace(base, seed=1)]
    results = ensemble.run(specs, data_dir)
    assert [r.record["epochs_run"] for r in results] == [3, 2]
    assert all(r.record["stopped_early"] and r.record["ensemble_size"] == 2 for r in results)
    for spec, got in zip(specs, results, strict=True):
        _assert_same_run(got, train.run(spec, data_dir))


def test_compatible_truth_table():
    a = dataclasses.replace(SMALL, seed=0)
    same_but = lambda **kw: (dataclasses.replace(a, **kw), dataclasses.replace(a, seed=1, **kw))
    assert ensemble.compatible(a, dataclasses.replace(a, seed=5))
    assert ensemble.compatible(a, dataclasses.replace(a, seed=5, init="orthogonal"))
    assert ensemble.compatible(a, a)
    for field, value in (("lr", 0.01), ("activation", "tanh"), ("epochs", 2), ("hidden", (32,)), ("augment", True)):
        assert not ensemble.compatible(a, dataclasses.replace(a, seed=1, **{field: value})), field
    for kw in (
        {"patience": 2},
        {"dtype": "float64"},
        {"model": "deep_mlp", "hidden": ()},
        {"augment": True},
        {"activation": "maxout"},
        {"schedule": "step"},
    ):
        assert ensemble.compatible(*same_but(**kw)), kw
    for kw in (
        {"dropout": 0.1},
        {"activation": "rrelu"},
        {"batch_norm": True},
        {"model": "cnn", "hidden": (32,), "channels": (8, 16)},
        {"schedule": "plateau"},
        {"compile": True},
    ):
        assert not ensemble.compatible(*same_but(**kw)), kw
    assert ensemble.batchable_activation("relu") and ensemble.batchable_activation("swish_beta")
    assert not ensemble.batchable_activation("rrelu")  # draws its slopes from the global RNG


def test_group_keeps_order_splits_at_max_size_and_isolates_unbatchable():
    a = [dataclasses.replace(SMALL, seed=s) for s in range(10)]
    b = [dataclasses.replace(SMALL, seed=s, lr=0.01) for s in range(2)]
    drop = [dataclasses.replace(SMALL, seed=s, dropout=0.2) for s in range(2)]
    specs = [a[0], b[0], drop[0], *a[1:], drop[1], b[1]]
    assert ensemble.group(specs) == [[a[0], *a[1:8]], [b[0], b[1]], [drop[0]], a[8:], [drop[1]]]
    assert [len(g) for g in ensemble.group(a, max_size=3)] == [3, 3, 3, 1]
    assert ensemble.group([]) == []


def test_run_returns_results_in_input_order_and_trains_unbatchable_specs_alone(monkeypatch):
    singles, groups = [], []

    def fake_run(spec, data_dir=None, *, download=False, on_epoch=None):
        singles.append(spec)
        return train.RunResult({"key": spec.key})

    def fake_group(specs, data_dir, *, download, on_epoch):
        groups.append(specs)
        return [train.RunResult({"key": s.key}) for s in specs]

    monkeypatch.setattr(train, "run", fake_run)
    monkeypatch.setattr(ensemble, "_run_group", fake_group)
    cnn = [RunSpec(model="cnn", hidden=(32,), channels=(8, 16), seed=s) for s in range(2)]
    mlp = [dataclasses.replace(SMALL, seed=s) for s in range(3)]
    specs = [mlp[0], cnn[0], mlp[1], cnn[1], mlp[2]]
    results = ensemble.run(specs)
    assert [r.record["key"] for r in results] == [s.key for s in specs]
    assert singles == cnn and groups == [mlp]
    assert [r.record.get("ensemble_size") for r in results] == [None, 1, None, 1, None]  # fakes set no size
