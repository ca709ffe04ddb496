"""Real training on real MNIST for a few hundred steps: learning, determinism, pairing, divergence,
early stopping and resuming."""

import dataclasses
import platform

import pandas as pd
import pytest
import torch
import torch.nn as nn

from bench.config import RunSpec, Status
from bench.harness import data, loop, optim
from bench.runs.executors import execute
from bench.runs.store import Store

SMALL = RunSpec(dataset="mnist", model="mlp", hidden=(64,), epochs=2, batch_size=128, seed=0)


def _metrics(result, split, metric):
    return [r["value"] for r in result.epochs if r["split"] == split and r["metric"] == metric]


def _without_seconds(rows):
    return [r for r in rows if r["metric"] != "seconds"]


@pytest.fixture(scope="module")
def small(device):
    """SMALL on the test device (CUDA where there is one)."""
    return dataclasses.replace(SMALL, device=device)


@pytest.fixture(scope="module")
def relu_run(small, data_dir):
    return loop.run(small, data_dir)


def test_training_learns_and_records_everything(relu_run):
    rec = relu_run.record
    losses = _metrics(relu_run, "train", "loss")
    assert len(losses) == 2 and losses[1] < losses[0]
    assert _metrics(relu_run, "val", "acc")[0] < 0.3 < 0.9 < _metrics(relu_run, "val", "acc")[-1]  # epoch 0 is chance
    assert rec["status"] == "ok" and rec["epochs_run"] == 2 and rec["test_acc"] > 0.9
    assert rec["best_val_acc"] == max(_metrics(relu_run, "val", "acc")[1:])
    assert rec["samples_per_second"] > 0 and rec["parameters"] == 784 * 64 + 64 + 64 * 10 + 10
    environment = ("git_sha", "torch_version", "device_name", "cpu_capability", "threads", "host", "schema_version")
    for field in (*environment, "key"):
        assert rec[field] not in (None, "")
    probe_metrics = {(r["epoch"], r["layer"], r["metric"]) for r in relu_run.layers}
    for epoch in (0, 1, 2):
        assert {
            (epoch, 1, m) for m in ("grad_norm", "act_mean", "act_std", "dead_frac", "saturated_frac")
        } <= probe_metrics
        assert (epoch, 2, "grad_norm") in probe_metrics  # the classifier


X86 = pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="flushing denormals needs x86 (SSE3)")


@X86
def test_flushing_denormals_is_measured_and_given_back():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # this process's other threads may predate the flush; one thread is all its own
    try:
        assert not loop.denormals_flushed()
        with loop.flush_denormals(torch.device("cpu")) as flushed:
            assert flushed and loop.denormals_flushed()
        assert not loop.denormals_flushed()  # the run gives the setting back
    finally:
        torch.set_num_threads(threads)


@X86
def test_a_suites_runs_flush_denormals_on_every_thread_and_record_it(small, tmp_path, data_dir):
    spec = dataclasses.replace(small, epochs=1)
    with Store(tmp_path / "s.sqlite") as store:
        execute([spec], store, data_dir=data_dir, progress=False, threads=2)
        assert store.runs().iloc[0]["flush_denormal"] == True  # noqa: E712 (a numpy bool)


def test_same_spec_twice_is_bit_identical(relu_run, small, data_dir):
    again = loop.run(small, data_dir)
    assert _without_seconds(again.epochs) == _without_seconds(relu_run.epochs)
    assert again.layers == relu_run.layers
    for field in ("test_acc", "val_loss", "train_loss", "best_val_acc"):
        assert again.record[field] == relu_run.record[field]


def test_paired_design_same_weights_batches_augmentation_and_dropout(small, data_dir, monkeypatch):
    spec = dataclasses.replace(small, epochs=1, augment=True, dropout=0.5)
    splits = data.load("mnist", data_dir)
    first = {
        a: loop.build_model(dataclasses.replace(spec, activation=a, init="lecun"), splits) for a in ("relu", "tanh")
    }
    torch.testing.assert_close(first["relu"][1].weight, first["tanh"][1].weight, rtol=0, atol=0)

    seen: dict[str, list] = {"relu": [], "tanh": []}
    real_batch = data.batch
    current = []

    def spy_batch(splits, idx, augment_on, generator):
        x, y = real_batch(splits, idx, augment_on, generator)
        if len(seen[current[0]]) < 20:
            seen[current[0]].append(("batch", idx.clone(), x.clone()))
        return x, y

    def spy_dropout(module, inputs, output):
        if isinstance(module, nn.Dropout) and module.training and len(seen[current[0]]) < 40:
            seen[current[0]].append(("mask", (output == 0) & (inputs[0] != 0), inputs[0] != 0))

    monkeypatch.setattr(data, "batch", spy_batch)
    handle = nn.modules.module.register_module_forward_hook(spy_dropout)
    try:
        for act in ("relu", "tanh"):
            current[:] = [act]
            loop.run(dataclasses.replace(spec, activation=act), data_dir)
    finally:
        handle.remove()
    assert len(seen["relu"]) == len(seen["tanh"]) == 40
    for a, b in zip(seen["relu"], seen["tanh"], strict=True):
        assert a[0] == b[0]
        if a[0] == "batch":
            assert torch.equal(a[1], b[1]) and torch.equal(a[2], b[2])  # same indices, same augmented images
        else:  # a unit is seen to be dropped only where its input is non-zero in both runs
            both = a[2] & b[2]
            assert both.float().mean() > 0.2 and torch.equal(a[1] & both, b[1] & both)
            assert (a[1] & both).float().sum() > 0.3 * both.float().sum()


def test_divergence_is_recorded_not_raised(small, data_dir):
    spec = dataclasses.replace(small, activation="relu", optimizer="sgd", lr=1e4, epochs=3)
    result = loop.run(spec, data_dir)
    assert result.record["status"] == "diverged"
    assert result.record["diverged_epoch"] == 1 and result.record["epochs_run"] == 1
    assert "training loss became" in result.record["error"]


def test_early_stopping_stops_when_validation_stops_improving(small, data_dir):
    # an lr far below float32 resolution leaves the weights unchanged: validation accuracy cannot improve
    spec = dataclasses.replace(small, optimizer="sgd", lr=1e-30, epochs=6, patience=2)
    rec = loop.run(spec, data_dir).record
    assert rec["epochs_run"] == 3 and rec["best_epoch"] == 1 and rec["stopped_early"] is True
    no_patience = loop.run(dataclasses.replace(spec, patience=0, epochs=2), data_dir).record
    assert no_patience["epochs_run"] == 2 and no_patience["stopped_early"] is False


def test_weight_decay_never_touches_biases(data_dir):
    # with zero gradients only weight decay moves parameters: weights shrink, biases stay where init put them
    spec = dataclasses.replace(SMALL, optimizer="sgd", lr=1e-30, epochs=1, bias_init=0.5, weight_decay=1e28)
    splits = data.load("mnist", data_dir)
    model = loop.build_model(spec, splits)
    groups = loop.param_groups(model, spec.weight_decay)
    opt = optim.OPTIMIZERS[spec.optimizer](groups, spec)
    before = [p.detach().clone() for p in model.parameters()]
    x, y = data.batch(splits, torch.arange(128), False, None)
    opt.zero_grad()
    optim.LOSSES["cross_entropy"](10)(model(x), y).backward()
    opt.step()
    for (name, p), b in zip(model.named_parameters(), before, strict=True):
        if name.endswith("bias"):
            assert torch.equal(p, b), name
        else:
            assert p.abs().sum() < b.abs().sum(), name


def test_a_run_that_raises_is_recorded_as_failed_and_the_suite_goes_on(small, tmp_path, data_dir):
    specs = [dataclasses.replace(small, epochs=1, activation=a) for a in ("relu", "crashing:Boom", "elu")]
    with Store(tmp_path / "s.sqlite") as store:
        summary = execute(specs, store, data_dir=data_dir, progress=False)
        assert {r["activation"]: r["status"] for r in summary.records} == {
            "relu": Status.OK,
            "crashing:Boom": Status.FAILED,
            "elu": Status.OK,
        }
        assert "boom in the model" in store.record(specs[1].key)["error"]
        assert store.finished_keys() == {specs[0].key, specs[2].key}
        again = execute(specs, store, data_dir=data_dir, progress=False)  # the failed run is trained again
        assert [r["activation"] for r in again.records] == ["crashing:Boom"] and again.skipped == 2
        assert "--force trains them again" in again.line()


def test_resume_skips_finished_keys(small, tmp_path, data_dir):
    specs = [dataclasses.replace(small, epochs=1, seed=s) for s in (0, 1)]
    with Store(tmp_path / "s.sqlite") as store:
        first = execute(specs[:1], store, data_dir=data_dir, progress=False)
        second = execute(specs, store, data_dir=data_dir, progress=False)
        assert (len(first.records), first.skipped) == (1, 0)
        assert (len(second.records), second.skipped) == (1, 1)
        assert second.records[0]["seed"] == 1
        forced = execute(specs[:1], store, data_dir=data_dir, progress=False, force=True)
        assert len(forced.records) == 1 and len(store.runs()) == 2


@pytest.mark.cuda
def test_cuda_runs_twice_in_fresh_processes_are_bit_identical(tmp_path, data_dir):
    # a CNN (cuDNN convolutions) with augmentation and dropout, each time in a new worker process
    spec = RunSpec(
        dataset="mnist", model="cnn", channels=(8, 16), hidden=(32,), epochs=2, augment=True, dropout=0.3, device="cuda"
    )
    rows = []
    for name in ("first", "second"):
        with Store(tmp_path / f"{name}.sqlite") as store:
            summary = execute([spec], store, data_dir=data_dir, progress=False, workers=1)
            assert summary.count(Status.OK) == 1
            rows.append((store.runs().iloc[0], store.epochs(), store.layers()))
    (first, epochs1, layers1), (second, epochs2, layers2) = rows
    timing = ["train_seconds", "wall_seconds", "samples_per_second", "started_at"]
    pd.testing.assert_series_equal(first.drop(timing), second.drop(timing))  # every result, key and setting
    assert first["cudnn_deterministic"] and not first["cudnn_benchmark"] and first["deterministic_algorithms"]
    assert first["cublas_workspace_config"] == ":4096:8" and not first["cudnn_tf32"] and not first["matmul_tf32"]
    same = epochs1["metric"] != "seconds"
    pd.testing.assert_frame_equal(epochs1[same], epochs2[same])
    pd.testing.assert_frame_equal(layers1, layers2)


@pytest.mark.parametrize("act", ["relu", "maxout"])
def test_evaluation_in_chunks_gives_the_bits_of_whole_batches(data_dir, monkeypatch, act):
    """The forward pass of an evaluation batch goes in cache-sized chunks: every logit, hence the summed loss and the
    accuracy, the same as one pass over the batch (as the published records were evaluated)."""
    from bench.harness import images

    spec = RunSpec(
        dataset="fashion_mnist", model="cnn", channels=(8, 16), hidden=(64,), activation=act, train_size=2000, seed=3
    )
    splits = loop.load(spec, data_dir)
    state = loop.RunState.start(spec, splits, 0.0, "")
    state.train_epoch()  # 16 steps: logits spread out
    chunked = [
        images.IMAGE_CLASSIFICATION.evaluate(spec, state.model, splits, s, state.loss_fn) for s in ("val", "test")
    ]
    monkeypatch.setattr(images, "EVAL_CHUNK", images.EVAL_BATCH)
    whole = [images.IMAGE_CLASSIFICATION.evaluate(spec, state.model, splits, s, state.loss_fn) for s in ("val", "test")]
    assert chunked == whole
