"""RunSpec validation and keys; suites expand into validated grids."""

import dataclasses
import os
import re
import subprocess
import sys

import pytest
import torch

from activations import InputError
from bench.config import FIELDS, ConfigError, RunSpec, expand, load_suite, make_spec
from bench.plan import load_plan


def test_defaults_are_normalised():
    spec = RunSpec()
    assert spec.hidden == (256, 256) and spec.channels == () and spec.device == "cpu"
    assert RunSpec(model="cnn").channels == (16, 32)
    assert RunSpec(activation="swish") == RunSpec(activation="SiLU")
    assert RunSpec(activation="elu(alpha=1.0)").key == RunSpec(activation="elu").key
    assert RunSpec(hidden="512, 256").hidden == (512, 256)


def test_key_changes_when_any_field_changes():
    base = RunSpec()
    changed = {
        "dataset": "fashion_mnist",
        "model": "deep_mlp",
        "hidden": (128,),
        "activation": "tanh",
        "init": "lecun",
        "bias_init": 0.1,
        "optimizer": "sgd",
        "lr": 0.01,
        "momentum": 0.5,
        "nesterov": True,
        "schedule": "step",
        "batch_size": 64,
        "epochs": 3,
        "seed": 1,
        "weight_decay": 1e-4,
        "decay_act_params": True,
        "dropout": 0.5,
        "batch_norm": True,
        "augment": True,
        "patience": 10,
        "loss": "mse_sigmoid",
        "dtype": "float64",
        "compile": True,
        "beta2": 0.99,
        "clip": 1.0,
        "warmup": 10,
        "train_size": 1000,
    }
    untestable_here = {"channels", "device", "amp"}  # channels need cnn; cuda/amp are not on this machine
    other_task = {"task", "model_args"}  # the image task's models have no model_args: tests/test_tasks.py
    with_dropout = {"dropout_kind"}  # tested below: without dropout it has no kind
    assert set(changed) | untestable_here | with_dropout | other_task == set(FIELDS)
    keys = {base.key}
    for name, value in changed.items():
        spec = dataclasses.replace(base, **{name: value})
        assert spec.key not in keys, name
        keys.add(spec.key)
    assert RunSpec(model="cnn", channels=(8, 16)).key != RunSpec(model="cnn").key


def test_key_is_stable_across_processes_and_hash_seeds():
    code = "from bench.config import RunSpec; print(RunSpec(activation='elu(alpha=0.5)', seed=3).key)"
    keys = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        keys.add(out.stdout.strip())
    assert keys == {RunSpec(activation="elu(alpha=0.5)", seed=3).key}


@pytest.mark.parametrize(
    "values, message",
    [
        ({"dataset": "mnits"}, "unknown dataset 'mnits'; did you mean mnist"),
        ({"model": "cnnn"}, "did you mean cnn"),
        ({"init": "xavier"}, "did you mean xavier_normal, xavier_uniform"),
        ({"optimizer": "adma"}, "did you mean adam"),
        ({"activation": "reluu"}, "did you mean relu, "),
        ({"epochs": 0}, "epochs must be a positive integer"),
        ({"epochs": -3}, "epochs must be a positive integer"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": 0}, "lr must be > 0"),
        ({"lr": -1e-3}, "lr must be > 0"),
        ({"lr": float("nan")}, "finite"),
        ({"dropout": 1.0}, "dropout"),
        ({"hidden": "512,x"}, "hidden"),
        ({"channels": (8, 16)}, "cnn model only"),
        pytest.param(
            {"device": "cuda"},
            "CUDA is not available",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here"),
        ),
        ({"device": "tpu"}, "unknown device"),
        ({"amp": "bf16"}, "needs a CUDA device"),
        ({"learning_rate": 0.1}, "unknown RunSpec field 'learning_rate'"),
        ({"train_size": -1}, "train_size must be a non-negative integer"),
        ({"train_size": 1.5}, "train_size must be a non-negative integer"),
        ({"task": "char_lm", "train_size": 100}, "train_size applies to the image_classification task only"),
    ],
)
def test_bad_values_name_the_problem(values, message):
    with pytest.raises(InputError, match=message):
        make_spec(values)


def test_grid_expansion():
    specs = expand({"activation": ["relu", "tanh", "swish", "silu"], "seeds": 2, "lr": [1e-3, 1e-2]})
    assert len(specs) == 3 * 2 * 2  # swish and silu are one activation
    assert {s.seed for s in specs} == {0, 1}
    assert len(expand({"hidden": [[64], [32, 32]]})) == 2
    assert expand({"hidden": [64, 32]})[0].hidden == (64, 32)


def test_suites_load_and_are_validated(tmp_path):
    quick = load_suite("quick")
    assert quick and all(isinstance(s, RunSpec) for s in quick)
    bad = tmp_path / "bad.toml"
    bad.write_text('activation = ["relu"]\nepochs = 2\nepochz = 3\n')
    with pytest.raises(ConfigError, match="unknown RunSpec field 'epochz'; did you mean 'epochs'"):
        load_suite(str(bad))
    broken = tmp_path / "broken.toml"
    broken.write_text('activation = ["relu"\nepochs = 2\n')
    with pytest.raises(ConfigError, match="line 2"):
        load_suite(str(broken))
    with pytest.raises(ConfigError, match="unknown suite 'quik'; did you mean quick"):
        load_suite("quik")
    grids = tmp_path / "grids.toml"
    grids.write_text(
        'epochs = 1\nseeds = 2\n[[grid]]\ndataset = ["mnist", "fashion_mnist"]\n'
        '[[grid]]\nmodel = "cnn"\nactivation = ["relu", "elu"]\n'
    )
    specs = load_suite(str(grids), overrides={"epochs": 3})
    assert len(specs) == 2 * 2 + 2 * 2 and {s.epochs for s in specs} == {3}


PLUGIN = """import torch


class Act(torch.nn.Module):
    def forward(self, x):
        return {formula}
"""


def test_a_plugin_key_follows_its_module_source(tmp_path, monkeypatch):
    module = tmp_path / "keyed_act.py"
    module.write_text(PLUGIN.format(formula="torch.relu(x)"))
    monkeypatch.syspath_prepend(str(tmp_path))
    first = RunSpec(activation="keyed_act:Act")
    assert len(first.activation_sha) == 16 and '"activation_sha"' in first.canonical_json()
    assert RunSpec(activation="keyed_act:Act").key == first.key  # unchanged source: the same run
    module.write_text(PLUGIN.format(formula="torch.relu(x) - 0.1"))
    edited = RunSpec(activation="keyed_act:Act")
    assert edited.key != first.key and edited.activation_sha != first.activation_sha
    assert dataclasses.replace(edited, seed=1).activation_sha == edited.activation_sha
    assert edited.flat()["activation_sha"] == edited.activation_sha  # the record carries it


def test_builtin_keys_do_not_carry_the_source_hash():
    spec = RunSpec(activation="gelu")
    assert spec.activation_sha == "" and "activation_sha" not in spec.canonical_json()
    with pytest.raises(ConfigError, match="activation_sha"):
        make_spec({"activation": "relu", "activation_sha": "0" * 16})  # derived from the code, never given


def test_dropout_kind_changes_the_key_only_with_dropout():
    plain = RunSpec(activation="selu", dropout=0.1)
    alpha = RunSpec(activation="selu", dropout=0.1, dropout_kind="alpha")
    assert alpha.key != plain.key and '"dropout_kind":"alpha"' in alpha.canonical_json()
    assert "dropout_kind" not in plain.canonical_json()  # at its default: the keys of older runs stay the same
    assert RunSpec(dropout_kind="alpha") == RunSpec() and RunSpec(dropout_kind="alpha").dropout_kind == "plain"
    with pytest.raises(ConfigError, match="unknown dropout kind 'alfa'; did you mean alpha"):
        RunSpec(dropout=0.1, dropout_kind="alfa")


@pytest.mark.parametrize(
    "table, message",
    [
        ("[budget]\nshort = 3\n", "[budget] short must be the path of a runs bundle, got 3"),
        ('[budget]\nlong = "x"\n', "[budget] must be a table with one key, short"),
        ('budget = "reports/default"\n', "[budget] must be a table with one key, short"),
    ],
)
def test_a_bad_budget_table_is_an_error(tmp_path, table, message):
    suite = tmp_path / "long.toml"
    suite.write_text('activation = "relu"\nepochs = 4\n' + table)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_plan(str(suite))


def test_a_budget_table_names_the_shorter_runs_and_is_no_run_field(tmp_path):
    suite = tmp_path / "long.toml"
    suite.write_text('activation = ["relu", "elu"]\nepochs = 4\n[budget]\nshort = "reports/default"\n')
    plan = load_plan(str(suite))
    assert plan.short == "reports/default" and len(plan.specs) == 2 and not plan.tuned
