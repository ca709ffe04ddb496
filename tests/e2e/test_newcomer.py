"""A newcomer's first commands, in real processes: --help and --version everywhere, usage errors in one line,
a dry run on a fresh clone, misbehaving activations caught before any store exists, exit statuses, valid JSON."""

import json
import os
import subprocess
import sys

import pytest

from bench.config import load_suite

ENTRY_POINTS = [
    "bench.run",
    "bench.report",
    "bench.export",
    "bench.perf",
    "bench.compare",
    "bench.bundle",
    "activations",
]
ACTS = """import torch
import torch.nn as nn


class NeedsArgs(nn.Module):
    def __init__(self, k):
        super().__init__()


class Doubles(nn.Module):
    def forward(self, x):
        return torch.cat([x, x], dim=-1)


class Nan(nn.Module):
    def forward(self, x):
        return x.log()


class FailsWhileTraining(nn.Module):
    def forward(self, x):
        if x.shape[0] > 100:  # a training batch (128); the pre-flight check's batch has 16 rows
            raise RuntimeError("breaks in training")
        return x.relu()


class Float64(nn.Module):
    def forward(self, x):
        return x.double().relu()


class InPlace(nn.Module):
    def forward(self, x):
        return x.relu_()


class Detached(nn.Module):
    def forward(self, x):
        return x.relu().detach()
"""


def python(*args, cwd=None, env=None):
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=env, check=False, timeout=600
    )


@pytest.fixture
def acts(tmp_path, data_dir):
    (tmp_path / "my_acts.py").write_text(ACTS)
    return {**os.environ, "PYTHONPATH": str(tmp_path), "ACTBENCH_DATA": str(data_dir)}


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_every_entry_point_has_version_and_help_and_one_line_usage_errors(module):
    version = python("-m", module, "--version")
    assert version.returncode == 0 and version.stdout.strip().startswith("python -m ")
    helped = python("-m", module, "--help")
    assert helped.returncode == 0 and "--debug" in helped.stdout and "%%" not in helped.stdout
    assert "``" not in helped.stdout
    bad = python("-m", module, "--jsn")
    lines = bad.stderr.strip().splitlines()
    assert bad.returncode == 2 and len(lines) == 1, bad.stderr
    assert lines[0].startswith("error: ") and lines[0].endswith("(see --help)")


@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_help_does_not_import_torch(module):
    code = (
        f"import sys, runpy; sys.argv = ['x', '--help']\ntry:\n    runpy.run_module({module!r}, run_name='__main__')\n"
    )
    code += "except SystemExit:\n    pass\nprint('torch' in sys.modules)"
    out = python("-c", code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_a_dry_run_needs_neither_store_nor_data(tmp_path):
    env = {**os.environ, "ACTBENCH_DATA": str(tmp_path / "no-data-here")}
    out = python("-m", "bench.run", "--suite", "quick", "--dry-run", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 6 and all("  todo  " in line for line in lines)
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--lr", "-1e-3"], "lr must be > 0, got -0.001"),
        (["--activation", "my_acts:NeedsArgs"], "my_acts:NeedsArgs"),
        (["--activation", "my_acts:Doubles"], "expected 16x840"),
        (["--activation", "my_acts:Nan"], "returns NaN or infinity"),
        (["--activation", "my_acts:Float64"], "returns torch.float64 for a torch.float32 batch"),
        (["--activation", "my_acts:InPlace"], "fails in a backward pass: RuntimeError: a leaf Variable"),
        (["--activation", "my_acts:Detached"], "does not require grad"),
        (["--executor", "slurm"], "unknown executor 'slurm'"),
    ],
)
def test_bad_input_is_caught_before_any_store_exists(tmp_path, acts, args, message):
    store = tmp_path / "s.sqlite"
    out = python("-m", "bench.run", *args, "--store", str(store), env=acts)
    assert out.returncode == 2, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and message in out.stderr, out.stderr
    assert not store.exists()


def test_a_command_line_seed_replaces_the_suites_seeds(tmp_path):
    out = python("-m", "bench.run", "--suite", "default", "--seed", "0", "--dry-run", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert all("seed=0" in line for line in lines if "  eval  " in line)
    tuning = {line.split("seed=")[1].split()[0] for line in lines if "  tune  " in line}
    assert tuning == {"100", "101"}  # the tuning seeds are the suite's own
    assert sum("  eval  " in line for line in lines) == len(load_suite("default")) // 5


def test_a_failed_run_exits_1_and_the_summary_names_it(tmp_path, acts):
    store = tmp_path / "s.sqlite"
    args = ["--activation", "relu,my_acts:FailsWhileTraining", "--hidden", "16", "--epochs", "1", "--quiet"]
    out = python("-m", "bench.run", *args, "--store", str(store), env=acts)
    assert out.returncode == 1, out.stderr
    assert "1 ok, 0 diverged, 1 failed" in out.stderr
    assert "failed: my_acts:FailsWhileTraining mlp/mnist seed=0 (RuntimeError: breaks in training)" in out.stderr


def test_every_json_output_is_valid_json():
    out = python("-m", "activations", "--json", "--no-timing")
    assert out.returncode == 0, out.stderr
    rows = [
        json.loads(line, parse_constant=lambda c: pytest.fail(f"not JSON: {c}")) for line in out.stdout.splitlines()
    ]
    assert any(row["cost_vs_relu"] is None for row in rows)  # NaN becomes null


def test_selu_with_plain_dropout_gets_a_warning_not_an_error(tmp_path, data_dir):
    env = {**os.environ, "ACTBENCH_DATA": str(data_dir)}
    args = ["--activation", "selu", "--dropout", "0.2", "--hidden", "16", "--epochs", "1", "--quiet"]
    out = python("-m", "bench.run", *args, "--store", str(tmp_path / "s.sqlite"), env=env)
    assert out.returncode == 0, out.stderr
    assert "warning: 1 run(s) use selu with plain dropout" in out.stderr and "--dropout-kind alpha" in out.stderr
    alpha = python("-m", "bench.run", *args, "--dropout-kind", "alpha", "--store", str(tmp_path / "s.sqlite"), env=env)
    assert alpha.returncode == 0 and "warning" not in alpha.stderr and "1 trained (1 ok" in alpha.stderr, alpha.stderr


def test_a_reader_that_stops_early_gets_no_error(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.run", "--suite", "default", "--dry-run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    assert proc.stdout.readline()  # as `| head -1` does: one line, then the pipe closes
    proc.stdout.close()
    assert proc.wait(timeout=120) in (0, 1)
    assert proc.stderr.read() == b""
