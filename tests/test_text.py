"""The character-level language model task on the real Tiny Shakespeare: its data, its network, its recipe, its bad
input, and small runs end to end (a model of 1 layer and width 32, so that a run takes seconds)."""

import dataclasses
import math
import shutil

import pytest
import torch
import torch.nn as nn

import activations
from bench import tasks
from bench.config import ConfigError, RunSpec, make_spec
from bench.harness import loop, optim, text, throughput
from bench.harness.regularize import param_groups
from bench.run import main as run_main

TINY = {"layers": 1, "heads": 2, "width": 32, "context": 16}


def spec(**values) -> RunSpec:
    """A char_lm run at the task's defaults (make_spec fills them in), on a tiny model unless told otherwise."""
    return make_spec({"task": "char_lm", "model_args": TINY, "batch_size": 4, "epochs": 1, "warmup": 10, **values})


@pytest.fixture(scope="module")
def corpus(data_dir):
    return text.load_text(data_dir, torch.device("cpu"))


def test_the_corpus_is_split_in_order_as_nanogpt_splits_it(corpus, data_dir):
    raw = (data_dir / text.FILE).read_text()
    assert raw.startswith("First Citizen:") and len(raw) == 1_115_394 and len(corpus.vocab) == 65
    assert len(corpus.train) == 1_003_854 and len(corpus.val) + len(corpus.test) == 1_115_394 - 1_003_854
    assert corpus.decode(corpus.train[:14].tolist()) == "First Citizen:"
    assert corpus.decode(corpus.val[:50].tolist()) == raw[1_003_854 : 1_003_854 + 50]
    assert corpus.decode(corpus.test[-20:].tolist()) == raw[-20:]


def test_the_task_defaults_are_nanogpts_baby_gpt():
    s = make_spec({"task": "char_lm"})
    assert (s.dataset, s.model, dict(s.model_args)) == ("tinyshakespeare", "gpt", tasks.CHAR_LM_MODELS["gpt"])
    assert (s.optimizer, s.lr, s.beta2, s.weight_decay, s.clip) == ("adamw", 1e-3, 0.99, 0.1, 1.0)
    assert (s.schedule, s.warmup, s.batch_size, s.epochs * text.STEPS) == ("warmup_cosine", 100, 12, 2000)
    assert make_spec({"task": "char_lm", "lr": 3e-3, "epochs": 4}).lr == 3e-3  # what is given wins
    assert make_spec({}).dataset == "mnist" and make_spec({}).beta2 == 0.999  # the image task is unchanged


def test_the_network_is_gpt_with_the_activation_in_each_mlp(corpus):
    s = spec(activation="gelu", model_args=tasks.CHAR_LM_MODELS["gpt"])
    model = loop.build_model(s, corpus)
    task = text.CHAR_LM
    assert [type(a).__name__ for a in task.activations(model)] == ["GELU"] * 4
    assert sum(isinstance(m, nn.GELU) for m in model.modules()) == 4  # nowhere else
    assert all(getattr(m, "bias", None) is None for m in model.modules() if isinstance(m, nn.Linear | nn.LayerNorm))
    assert task.weight_layers(model)[-1] is model.wte  # the head is the token embedding, tied
    assert sum(p.numel() for p in model.parameters()) == 804_096  # nanoGPT: 0.80M without the 8,192 positions
    logits = model(corpus.train[:64].view(2, 32))
    assert logits.shape == (2, 32, 65)
    # causal: the logits at a position do not depend on later characters
    x = corpus.train[:32].view(1, 32).clone()
    before = model(x)[0, :10]
    x[0, 10:] = 0
    torch.testing.assert_close(model(x)[0, :10], before)


@pytest.mark.parametrize("gated", ["glu_matched", "reglu_matched", "geglu_matched", "swiglu_matched"])
def test_a_matched_gate_narrows_the_mlp_to_gelus_parameter_count(corpus, gated):
    s = spec(activation="gelu", model_args=tasks.CHAR_LM_MODELS["gpt"])
    gelu, gate = loop.build_model(s, corpus), loop.build_model(dataclasses.replace(s, activation=gated), corpus)
    assert gate.blocks[0].mlp.fc.out_features == 682 and gate.blocks[0].mlp.proj.in_features == 341  # 2/3 of 512
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(gate) == 803_584 and abs(count(gate) - count(gelu)) / count(gelu) < 1e-3
    # the gate splits the features, not the positions: a position's output depends on that position alone
    x = torch.randn(2, 16, 32)
    mlp = text.MLP(32, 64, lambda: activations.create(gated), 0.0)
    out = mlp(x)
    x[:, 5:] = 0
    torch.testing.assert_close(mlp(x)[:, :5], out[:, :5])


def test_weight_decay_falls_on_the_matrices_only(corpus):
    model = loop.build_model(spec(), corpus)
    decay, no_decay = param_groups(model, 0.1)
    assert {id(p) for p in decay["params"]} == {id(p) for p in model.parameters() if p.dim() == 2}
    assert {id(p) for p in no_decay["params"]} == {id(p) for p in model.parameters() if p.dim() == 1}


def test_warm_up_then_a_cosine_to_a_tenth():
    f = optim.warmup_cosine(1000, 100)
    assert f(0) == pytest.approx(1 / 101) and f(99) == pytest.approx(100 / 101)
    assert f(100) == pytest.approx(1.0) and f(550) == pytest.approx(0.55) and f(1000) == pytest.approx(0.1)
    assert all(f(t) >= f(t + 1) for t in range(100, 1000))


def test_a_run_steps_the_schedule_every_batch_and_clips(corpus, data_dir):
    result = loop.run(spec(epochs=2, lr=3e-3), data_dir)
    rates = [r["value"] for r in result.epochs if r["metric"] == "lr"]
    f = optim.warmup_cosine(2 * text.STEPS, 10)
    assert rates == pytest.approx([3e-3 * f(0), 3e-3 * f(text.STEPS)])
    record = result.record
    assert record["status"] == "ok" and record["metric"] == "loss" and record["chance"] == pytest.approx(math.log(65))
    p = torch.bincount(corpus.train, minlength=65).double() / len(corpus.train)
    unigram = float(-(p[p > 0] * p[p > 0].log()).sum())  # the loss of the characters' frequencies alone
    assert record["val_loss"] < unigram < math.log(65)  # it learned more than the frequencies
    assert record["samples_per_second"] * record["train_seconds"] == pytest.approx(2 * text.STEPS * 4)


def test_evaluation_reads_the_whole_split_in_non_overlapping_windows(corpus, data_dir):
    s = spec()
    model = loop.build_model(s, corpus)
    got = text.CHAR_LM.evaluate(s, model, corpus, "val", text._lm_loss)["loss"]
    n = (len(corpus.val) - 1) // 16
    x, y = corpus.val[: n * 16].view(n, 16), corpus.val[1 : n * 16 + 1].view(n, 16)
    with torch.no_grad():
        want = torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten(), reduction="sum") / y.numel()
    assert got == pytest.approx(float(want), rel=1e-5)


def test_runs_of_a_seed_see_the_same_windows_and_repeat_exactly(corpus, data_dir):
    s = spec()
    first = lambda: next(text.CHAR_LM.batches(s, corpus, torch.Generator().manual_seed(s.seed), None))
    x, y = first()
    torch.testing.assert_close(first()[0], x)
    torch.testing.assert_close(y[:, :-1], x[:, 1:])  # the targets are the next characters
    a, b = loop.run(s, data_dir), loop.run(s, data_dir)
    assert a.record["val_loss"] == b.record["val_loss"] and a.record["test_loss"] == b.record["test_loss"]


def test_a_gated_unit_trains_and_the_probes_see_the_mlp_activations(data_dir):
    result = loop.run(spec(activation="swiglu_matched"), data_dir)
    assert result.record["status"] == "ok"
    names = {r["name"] for r in result.layers}
    assert names == {"fc1", "out"}
    dead = [r for r in result.layers if r["metric"] == "dead_frac"]
    assert len(dead) == 2 and all(0 <= r["value"] <= 1 for r in dead)  # epochs 0 and 1, one MLP


def _cli(tmp_path, *args) -> int:
    return run_main([*args, "--store", str(tmp_path / "store.sqlite"), "--device", "cpu", "--quiet"])


def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, data_dir, capsys):
    bad = tmp_path / "data"
    (bad / "tinyshakespeare").mkdir(parents=True)
    shutil.copy(data_dir / text.FILE, bad / text.FILE)
    with open(bad / text.FILE, "r+b") as f:
        f.truncate(1_000_000)
    text._read.cache_clear()
    cases = {
        ("--data-dir", str(bad)): "is not Tiny Shakespeare (1,000,000 bytes",
        ("--model-args", "context=60000"): "context 60000 does not fit the val split's 55,770 characters",
        ("--batch-size", "2000000"): "batch_size 2000000 exceeds the train split's 1,003,790 windows",
        ("--model-args", "width=130"): "width 130 is not divisible by heads 4",
        ("--model-args", "depth=3"): "unknown argument of model 'gpt' 'depth'",
    }
    (tmp_path / "empty").mkdir()
    cases[("--data-dir", str(tmp_path / "empty"))] = "tinyshakespeare: " + str(tmp_path / "empty" / text.FILE)
    for args, message in cases.items():
        dirs = () if "--data-dir" in args else ("--data-dir", str(data_dir))
        assert _cli(tmp_path, "--task", "char_lm", *args, *dirs) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "store.sqlite").exists()


def test_the_chance_level_and_the_metric_come_from_the_task():
    task = tasks.get("char_lm")
    metric = task.datasets["tinyshakespeare"]
    assert (metric.name, metric.higher_is_better, metric.unit) == ("loss", False, "nats")
    assert metric.chance == pytest.approx(4.1744, abs=1e-4)
    with pytest.raises(ConfigError, match="heads must be positive"):
        spec(model_args={**TINY, "heads": 0})


@pytest.mark.cuda
def test_the_transformer_trains_on_cuda_as_on_the_cpu(data_dir):
    cpu, cuda = loop.run(spec(), data_dir), loop.run(spec(device="cuda"), data_dir)
    assert cuda.record["status"] == "ok" and cuda.record["peak_memory_bytes"] > 0
    assert cuda.record["val_loss"] == pytest.approx(cpu.record["val_loss"], abs=0.05)


def test_the_perf_paths_measure_the_transformer(data_dir):
    s = spec()
    loaded = loop.load(s, data_dir)
    assert throughput.textbook_lm(s, data_dir, steps=5, warmup=2) > 0
    assert throughput.harness(s, data_dir) > 0
    # forward and backward of a window: 6 FLOPs per matrix weight and character (the head is the token embedding),
    # plus attention's products where torch counts them
    flops = throughput.flops_per_sample(s, loaded)
    weights = sum(p.numel() for p in loop.build_model(s, loaded).parameters() if p.dim() == 2) - 16 * 32  # positions
    assert 6 * weights * 16 <= flops <= 12 * weights * 16
