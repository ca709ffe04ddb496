"""Tasks: the published keys stay as they were, and a new kind of setting is one module.

The toy task below (two overlapping Gaussian blobs in 2-D, two classes, scored by held-out cross-entropy in nats,
lower is better) is defined in this file alone and trained through ``bench.run`` (a tuned suite), the tuning choice,
the report's findings and ``bench.compare``, with nothing outside this file changed for it.
"""

import dataclasses
import json
import math

import pandas as pd
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from activations.errors import InputError
from bench import compare, tasks
from bench.analysis import tuning
from bench.config import ADDED_FIELDS, FIELDS, KEYED_FIELDS, ConfigError, RunSpec
from bench.harness.init import initialize
from bench.harness.tasks import code
from bench.plan import load_plan
from bench.report import command
from bench.run import main as run_main
from bench.runs import bundle, results

PUBLISHED = ("default", "seed-claims", "long", "init", "regularizers", "lr", "transformer", "cifar10")
DEEP = (64,) * 10
# One published run of each published suite: the spec's fields (besides their defaults) and the key in its bundle.
PINNED = {
    "default": (
        "7b071c152e9f8384",
        dict(
            dataset="fashion_mnist", model="cnn", hidden=(64,), channels=(8, 16), activation="abs", lr=0.003, epochs=3
        ),
    ),  # fmt: skip
    "seed-claims": (
        "239ca07903be477f",
        dict(
            model="deep_mlp",
            hidden=DEEP,
            activation="sigmoid",
            init="xavier_normal",
            optimizer="sgd",
            lr=0.1,
            schedule="constant",
            epochs=5,
        ),
    ),  # fmt: skip
    "long": (
        "1e4e100e6d74071f",
        dict(
            dataset="fashion_mnist", model="cnn", hidden=(64,), channels=(8, 16), activation="elu", lr=0.01, epochs=12
        ),
    ),  # fmt: skip
    "init": ("c2cc895520aed8fb", dict(dataset="fashion_mnist", model="deep_mlp", hidden=DEEP, epochs=8)),
    "regularizers": ("51dedd8443dad0c2", dict(dataset="fashion_mnist")),
    "lr": ("b0b9129ff9ce110a", dict(dataset="fashion_mnist", optimizer="momentum", lr=0.0001)),
    "transformer": (
        "f0b8da419e37a828",
        dict(
            task="char_lm",
            activation="gelu",
            optimizer="adamw",
            lr=0.01,
            beta2=0.99,
            weight_decay=0.1,
            clip=1.0,
            warmup=100,
            schedule="warmup_cosine",
            batch_size=12,
            epochs=4,
            seed=100,
        ),
    ),  # fmt: skip
    "cifar10": (
        "bb62763c544035c3",
        dict(
            dataset="cifar10_jpeg",
            model="cnn",
            channels=(8, 16),
            hidden=(64,),
            augment=True,
            epochs=8,
            lr=0.003,
            seed=100,
        ),
    ),  # fmt: skip
}


@pytest.mark.parametrize("suite", PUBLISHED)
def test_a_published_key_is_pinned(suite):
    key, values = PINNED[suite]
    assert RunSpec(**values).key == key
    assert key in {record["key"] for record, *_ in bundle.read(f"reports/{suite}")[1]}


def test_every_published_record_gives_its_own_key_again():
    for suite in PUBLISHED:
        for record, *_ in bundle.read(f"reports/{suite}")[1]:
            values = {k: record[k] for k in FIELDS if k in record}
            values.update({w: tuple(int(v) for v in record[w].split(",") if v) for w in ("hidden", "channels")})
            values["model_args"] = json.loads(record.get("model_args") or "{}")
            assert RunSpec(**values).key == record["key"], (suite, record["key"])


def test_every_field_added_since_the_first_schema_is_left_out_of_a_key_at_its_default():
    assert set(ADDED_FIELDS) == {f.name for f in dataclasses.fields(RunSpec)} - set(KEYED_FIELDS)
    assert {"task", "model_args", "dropout_kind", "activation_sha"} <= set(ADDED_FIELDS)
    assert '"task"' not in RunSpec().canonical_json() and '"model_args"' not in RunSpec().canonical_json()


@pytest.mark.slow
@pytest.mark.parametrize("suite", PUBLISHED)
def test_an_imported_bundle_leaves_nothing_to_train(suite, tmp_path, capsys):
    bundle.load(f"reports/{suite}", tmp_path / "store.sqlite")
    capsys.readouterr()
    assert run_main(["--suite", suite, "--store", str(tmp_path / "store.sqlite"), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.split()[1] == "done" for line in lines), [x for x in lines if "done" not in x][:3]


def test_the_image_task_scores_accuracy_with_chance_per_dataset():
    image = tasks.get("image_classification")
    assert image.datasets["mnist"].chance == 0.1 and image.datasets["cifar100"].chance == 0.01
    acc = image.metric
    assert (acc.val, acc.test, acc.higher_is_better) == ("val_acc", "test_acc", True)
    assert acc.diff(0.0081) == "+0.81 pt" and acc.interval(0.005, 0.0112) == "[+0.50, +1.12]"
    old = pd.DataFrame({"dataset": ["mnist", "cifar100"], "test_acc": [0.9, 0.5]})  # records from before the metric
    filled = tasks.fill_metric(old)
    assert filled["chance"].tolist() == [0.1, 0.01] and filled["metric"].tolist() == ["acc", "acc"]
    assert tasks.Metric.of(filled).test == "test_acc" and math.isnan(tasks.Metric.of(filled).chance)


def test_an_unknown_task_is_one_line_with_the_closest_names():
    with pytest.raises(ConfigError, match="unknown task 'image_classifcation'; did you mean image_classification"):
        RunSpec(task="image_classifcation")
    with pytest.raises(InputError, match="registered already"):
        tasks.register(tasks.get("image_classification"))


def test_list_shows_each_task_with_its_datasets_models_and_metric(capsys):
    assert run_main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "task image_classification:" in out and "cifar100 (chance 0.01)" in out
    assert "models: mlp (hidden=256,256), deep_mlp (hidden=64,64,64,64,64,64,64,64,64,64), cnn" in out
    assert "metric: accuracy (acc, higher is better; differences in pt)" in out
    assert "task char_lm:" in out and "tinyshakespeare (chance 4.174)" in out
    assert "gpt (layers=4, heads=4, width=128, context=64)" in out and "loss (loss, lower is better" in out
    assert "defaults: dataset=tinyshakespeare, model=gpt, optimizer=adamw, lr=0.001, beta2=0.99" in out


# The toy task: everything it needs is here.
NATS = tasks.Metric("loss", "cross-entropy", higher_is_better=False, unit="nats", chance=math.log(2))


class Blobs:
    """Two unit Gaussian blobs 2 apart on the x axis, drawn from a fixed seed (no files): about 16 % overlap."""

    SIZES = {"train": 512, "val": 128, "test": 256}

    def load(self, spec, data_dir, device, download):
        gen = torch.Generator().manual_seed(0)
        out = {}
        for split, n in self.SIZES.items():
            y = torch.randint(0, 2, (n,), generator=gen)
            x = torch.randn(n, 2, generator=gen) + torch.stack([2.0 * y - 1, torch.zeros(n)], 1)
            out[split] = (x.to(device), y.to(device))
        return out

    def build(self, spec, data, act_layer):
        width = dict(spec.model_args)["width"]
        return nn.Sequential(nn.Linear(2, width), act_layer(), nn.Linear(width, 2))

    def activations(self, model):
        return [model[1]]

    def weight_layers(self, model):
        return [model[0], model[2]]

    def initialize(self, spec, model, gain):
        initialize(self.weight_layers(model), [1.0, gain], spec.init, spec.seed, spec.bias_init)

    def steps(self, spec, data):
        return -(-self.SIZES["train"] // spec.batch_size)

    def loss(self, spec, data):
        return F.cross_entropy

    def prepare(self, spec, x):
        return x

    def channels_last(self, spec):
        return False

    def batches(self, spec, data, order, augment):
        x, y = data["train"]
        perm = torch.randperm(len(y), generator=order)
        for i in range(0, len(y), spec.batch_size):
            yield x[perm[i : i + spec.batch_size]], y[perm[i : i + spec.batch_size]]

    def score(self, out, y):
        return None  # the metric is the loss

    @torch.no_grad()
    def evaluate(self, spec, model, data, split, loss_fn):
        x, y = data[split]
        model.eval()
        loss = float(loss_fn(model(x), y))
        model.train()
        return {"loss": loss}

    def probe_batch(self, spec, data):
        return data["val"]


TOY = tasks.Task(
    name="blobs",
    description="two 2-D Gaussian blobs; scored by held-out cross-entropy",
    datasets={"gauss2": NATS},
    models={"tiny_mlp": {"width": 16}},
    losses=("cross_entropy",),
    implementation=Blobs(),
)
TOY_SUITE = """
description = "the toy task, tuned"
task = "blobs"
dataset = "gauss2"
model = "tiny_mlp"
activation = {activations}
epochs = 4
batch_size = 64
seeds = 3
[tune]
lr = [0.003, 0.03]
seeds = [100]
"""


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(tasks.TASKS, TOY.name, TOY)
    return TOY


def test_the_toy_task_checks_its_own_names_and_model_arguments(toy):
    spec = RunSpec(task="blobs", dataset="gauss2", model="tiny_mlp")
    assert spec.model_args == (("width", 16),) and spec.hidden == () and spec.flat()["model_args"] == '{"width": 16}'
    assert '"task":"blobs"' in spec.canonical_json()
    assert RunSpec(task="blobs", dataset="gauss2", model="tiny_mlp", model_args={"width": 8}).key != spec.key
    with pytest.raises(ConfigError, match="unknown dataset 'mnist'.*valid: gauss2"):
        RunSpec(task="blobs", dataset="mnist", model="tiny_mlp")
    assert RunSpec(task="blobs").key == spec.key  # no dataset or model: the task's first
    with pytest.raises(ConfigError, match="unknown argument of model 'tiny_mlp' 'widht'; did you mean width"):
        RunSpec(task="blobs", dataset="gauss2", model="tiny_mlp", model_args={"widht": 8})
    for bad in ("x", True, 8.0):
        with pytest.raises(ConfigError, match=f"model argument width must be of type int, got {bad!r}"):
            RunSpec(task="blobs", dataset="gauss2", model="tiny_mlp", model_args={"width": bad})
    with pytest.raises(ConfigError, match="hidden apply to no model of task 'blobs', not 'tiny_mlp'"):
        RunSpec(task="blobs", dataset="gauss2", model="tiny_mlp", hidden=(4,))
    with pytest.raises(ConfigError, match="model_args must be a table"):
        RunSpec(task="blobs", dataset="gauss2", model="tiny_mlp", model_args=[["width"]])
    with pytest.raises(ConfigError, match="model 'mlp' takes no model arguments, got width"):
        RunSpec(model_args={"width": 8})


def test_a_task_is_checked_when_it_is_defined_and_when_its_code_is_found(toy):
    with pytest.raises(InputError, match="needs its chance level"):
        dataclasses.replace(TOY, datasets={"gauss2": dataclasses.replace(NATS, chance=math.nan)})
    with pytest.raises(InputError, match="scored by its loss: it takes one loss, not 2"):
        dataclasses.replace(TOY, losses=("cross_entropy", "mse"))
    with pytest.raises(InputError, match="must share one metric"):
        dataclasses.replace(TOY, datasets={"a": NATS, "b": tasks.accuracy(2)})
    assert code("blobs") is TOY.implementation
    tasks.TASKS["blobs"] = dataclasses.replace(TOY, implementation=object())
    with pytest.raises(InputError, match="the code of task 'blobs' lacks load, build, .*probe_batch"):
        code("blobs")
    tasks.TASKS["blobs"] = dataclasses.replace(TOY, implementation="no_such_module:CODE")
    with pytest.raises(InputError, match="task code 'no_such_module:CODE' cannot be loaded"):
        code("blobs")


@pytest.mark.slow
def test_a_new_task_defined_in_one_file_trains_tunes_reports_and_compares(toy, tmp_path):
    suite = tmp_path / "toy.toml"
    suite.write_text(TOY_SUITE.format(activations='["relu", "tanh", "sigmoid"]'))
    store = tmp_path / "toy.sqlite"
    assert run_main(["--suite", str(suite), "--store", str(store), "--device", "cpu", "--quiet"]) == 0

    plan = load_plan(str(suite))
    with_tuning = results.suite_runs(tuning.state(plan, results.runs(store)).tuning, store).runs
    assert with_tuning["metric"].eq("loss").all() and with_tuning["val_loss"].notna().all()
    chosen = tuning.choose(with_tuning, ["activation"]).set_index("activation")
    means = with_tuning.groupby(["activation", "lr"])["val_loss"].mean()
    for act in ("relu", "tanh", "sigmoid"):  # the lowest mean validation loss, not the highest
        assert chosen.at[act, "lr"] == means[act].idxmin()
    runs = results.suite_runs(command.evaluation(plan, store)[0], store).runs
    assert len(runs) == 9 and runs["status"].eq("ok").all() and "test_acc" not in runs.columns
    assert (runs["test_loss"] < NATS.chance).all()  # each learned something
    assert runs["best_val_loss"].le(runs["val_loss"]).all()  # the best epoch is the lowest loss

    readme = command.build(str(suite), store, tmp_path / "reports", timing=False)
    text = readme.read_text()
    findings = text.split("## What this benchmark found", 1)[1].split("\n## ", 1)[0]
    assert "test cross-entropy against ReLU's" in findings and "mean difference in nats" in findings
    assert " pt" not in findings and "over 3 seeds" in findings and " nats and " in findings

    out = tmp_path / "compare"
    argv = ["elu", "--suite", str(suite), "--published", str(readme.parent), "--store", str(tmp_path / "mine.sqlite")]
    assert compare.main([*argv, "--out", str(out), "--device", "cpu", "--no-timing", "--quiet"]) == 0
    pairs = pd.read_csv(out / "comparison.csv")
    assert set(pairs["versus"]) == {"relu", "tanh", "sigmoid"} and pairs["mean_diff"].notna().all()
    assert " nats" in (out / "README.md").read_text()


def test_a_task_the_workers_cannot_import_is_one_line_before_anything_trains(toy, tmp_path, monkeypatch, capsys):
    local = type("Local", (Blobs,), {})  # a class no worker can import by name
    monkeypatch.setitem(tasks.TASKS, "blobs", dataclasses.replace(TOY, implementation=local()))
    argv = ["--task", "blobs", "--dataset", "gauss2", "--model", "tiny_mlp", "--epochs", "1", "--device", "cpu"]
    assert run_main([*argv, "--store", str(tmp_path / "s.sqlite"), "--quiet"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: task 'blobs' cannot be sent to the worker processes") and "in a module" in line
    assert not (tmp_path / "s.sqlite").exists()  # no store written
