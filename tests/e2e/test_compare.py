"""``python -m bench.compare`` end to end on a tiny published suite: a plugin ranked among the published activations,
the control matching (and drifting, against a perturbed bundle), keys that follow the code, and bad input."""

import gzip
import json
import os
import subprocess
import sys

import pandas as pd
import pytest
from test_report import TINY

from bench import compare
from bench.config import BUNDLE_FILE, load_suite
from bench.report import command
from bench.run import main as run_main
from bench.runs import bundle, results
from bench.runs.store import Store

PLUGIN = """import torch
from torch import nn


class MyAct(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid({beta} * x)


class NeedsArgs(nn.Module):
    def __init__(self, beta):
        super().__init__()
        self.beta = beta


class Halves(nn.Module):
    def forward(self, x):
        return x[..., : x.shape[-1] // 2]


class Explodes(nn.Module):
    def forward(self, x):
        return torch.log(x)
"""


@pytest.fixture(scope="module")
def published(tmp_path_factory, data_dir, device):
    """The tiny suite trained here and published (its report folder with runs.jsonl.gz), and a plugin module."""
    root = tmp_path_factory.mktemp("compare")
    suite = root / "tiny.toml"
    suite.write_text(TINY.format(activations='["relu", "tanh", "elu"]'))
    store = root / "published.sqlite"
    argv = ["--suite", str(suite), "--store", str(store), "--data-dir", str(data_dir), "--quiet", "--device", device]
    assert run_main(argv) == 0
    folder = command.build(str(suite), store, root / "reports", timing=False).parent
    plugins = root / "plugins"
    plugins.mkdir()
    return {"root": root, "suite": suite, "folder": folder, "plugins": plugins, "data_dir": data_dir}


def compare_cli(published, *args, store, out, folder=None):
    env = {**os.environ, "ACTBENCH_DATA": str(published["data_dir"]), "PYTHONPATH": str(published["plugins"])}
    argv = ["--suite", str(published["suite"]), "--published", str(folder or published["folder"])]
    return subprocess.run(
        [sys.executable, "-m", "bench.compare", *args, *argv, "--store", str(store), "--out", str(out), "--no-timing"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )


def test_a_plugin_is_ranked_among_the_published_field_and_follows_its_code(tmp_path, published):
    (published["plugins"] / "cmp_act.py").write_text(PLUGIN.format(beta=1.5))
    store, out = tmp_path / "mine.sqlite", tmp_path / "out"
    first = compare_cli(published, "cmp_act:MyAct", store=store, out=out)
    assert first.returncode == 0, first.stderr
    assert "4 runs to train" in first.stderr and "4 trained (4 ok" in first.stderr
    text = (out / "README.md").read_text()
    assert "**The control matched.** All 2 relu runs trained here equal the published ones bit for bit" in text
    assert "mnist/mlp: rank **" in text and " of 4 [" in text
    ranks = pd.read_csv(out / "ranks.csv")
    assert ranks["n_items"].tolist() == [4] and 1 <= ranks["rank_low"][0] <= ranks["rank"][0] <= ranks["rank_high"][0]
    pairs = pd.read_csv(out / "comparison.csv")
    assert sorted(pairs["versus"]) == ["elu", "relu", "tanh"] and set(pairs["activation"]) == {"cmp_act:MyAct"}
    assert {"results.csv", "figures"} <= {p.name for p in out.iterdir()}
    assert any(p.name.startswith("forest_cmp_act") for p in (out / "figures").iterdir())

    specs = load_suite(str(published["suite"]))
    control = results.suite_runs([s for s in specs if s.activation == "relu"], store)
    theirs = results.suite_runs(specs, published["folder"].parents[1] / "published.sqlite")
    theirs.runs["diverged_epoch"] = float("nan")  # as where another run diverged: None there is NaN here
    assert compare.drift(theirs, control)["identical"].tolist() == [True, True]

    again = compare_cli(published, "cmp_act:MyAct", store=store, out=out)
    assert again.returncode == 0 and "0 trained" in again.stderr and "4 already in the store" in again.stderr

    (published["plugins"] / "cmp_act.py").write_text(PLUGIN.format(beta=1.7))  # a new formula: a new run
    edited = compare_cli(published, "cmp_act:MyAct", store=store, out=out)
    assert edited.returncode == 0 and "2 trained (2 ok" in edited.stderr and "2 already in the store" in edited.stderr
    with Store(store, readonly=True) as db:
        runs = db.runs()
    mine = runs[runs["activation"].eq("cmp_act:MyAct")]
    assert len(mine) == 4 and mine["activation_sha"].nunique() == 2
    latest = mine.iloc[-1]["activation_sha"]
    assert f"`cmp_act:MyAct` {latest}" in (out / "README.md").read_text()


def test_a_perturbed_baseline_is_reported_as_drift_and_relu_pairs_use_the_control(tmp_path, published):
    (published["plugins"] / "drift_act.py").write_text(PLUGIN.format(beta=1.2))
    lines = gzip.decompress((published["folder"] / BUNDLE_FILE).read_bytes()).decode().splitlines()
    changed = []
    for i, text in enumerate(lines[1:], start=1):
        run = json.loads(text)
        if run["record"]["activation"] == "relu" and run["record"]["seed"] == 0:
            run["record"]["test_acc"] -= 0.02  # another environment's rounding, exaggerated
            run["record"]["device_name"] = "Another CPU model"
            lines[i] = json.dumps(run)
            changed.append(run["record"]["key"])
    assert len(changed) == 1
    folder = tmp_path / "perturbed" / "tiny"
    folder.mkdir(parents=True)
    (folder / BUNDLE_FILE).write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    store, out = tmp_path / "mine.sqlite", tmp_path / "out"
    proc = compare_cli(published, "drift_act:MyAct", store=store, out=out, folder=folder)
    assert proc.returncode == 0, proc.stderr
    text = (out / "README.md").read_text()
    assert "**The control drifted.** 1 of 2 relu runs trained here differ from the published ones" in text
    assert "The two environments differ in device_name: float rounding differs between processor models" in text
    assert "max 2.00" in text and "Comparisons with relu below use the control" in text
    with Store(store, readonly=True) as db:  # the relu pair is against the control's runs, trained here
        runs = db.runs().set_index(["activation", "seed"])["test_acc"]
    pairs = pd.read_csv(out / "comparison.csv").set_index("versus")
    mine, relu = runs["drift_act:MyAct"], runs["relu"]
    assert pairs.loc["relu", "mean_diff"] == pytest.approx((mine - relu).mean(), abs=1e-12)


def test_published_runs_imported_into_the_store_are_no_control(tmp_path, published):
    (published["plugins"] / "imp_act.py").write_text(PLUGIN.format(beta=1.1))
    store, out = tmp_path / "mine.sqlite", tmp_path / "out"
    assert bundle.load(published["folder"], store)[1:] == (6, 0)
    proc = compare_cli(published, "imp_act:MyAct", store=store, out=out)
    assert proc.returncode == 0, proc.stderr
    assert "4 runs to train" in proc.stderr  # 2 new runs and the 2 relu runs, which are the published ones
    assert "The control matched" in (out / "README.md").read_text()


def one_line(capsys, argv):
    assert compare.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


def test_bad_input_is_one_line_before_anything_is_written(tmp_path, published, capsys, monkeypatch):
    (published["plugins"] / "bad_acts.py").write_text(PLUGIN.format(beta=1.0))
    monkeypatch.syspath_prepend(str(published["plugins"]))
    store = tmp_path / "never.sqlite"
    base = ["--suite", str(published["suite"]), "--store", str(store), "--out", str(tmp_path / "out")]
    base += ["--data-dir", str(published["data_dir"]), "--published", str(published["folder"])]
    assert "cannot import module 'nowhere'" in one_line(capsys, ["nowhere:Act", *base])
    assert "bad_acts:NeedsArgs" in one_line(capsys, ["bad_acts:NeedsArgs", *base])
    assert "into (16, 420), expected 16x840" in one_line(capsys, ["bad_acts:Halves", *base])
    assert "NaN or infinity" in one_line(capsys, ["bad_acts:Explodes", *base])
    assert "one of suite" in one_line(capsys, ["tanh", *base])
    missing = [*base[:-1], str(tmp_path / "nothing")]
    assert "no published runs at" in one_line(capsys, ["bad_acts:MyAct", *missing])
    header, *rest = gzip.decompress((published["folder"] / BUNDLE_FILE).read_bytes()).decode().splitlines()
    newer = tmp_path / "newer"
    newer.mkdir()
    head = json.dumps({**json.loads(header), "version": bundle.VERSION + 1})
    (newer / BUNDLE_FILE).write_bytes(gzip.compress("\n".join([head, *rest]).encode()))
    err = one_line(capsys, ["bad_acts:MyAct", *base[:-1], str(newer)])
    assert "newer than this actbench" in err and "make bench SUITE=tiny" in err
    assert not store.exists() and not (tmp_path / "out").exists()
