"""The command line end to end, in real processes, into temporary stores."""

import json
import os
import sqlite3
import subprocess
import sys

import pytest
import torch


def cli(*args, data_dir, cwd=None):
    env = {**os.environ, "ACTBENCH_DATA": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "bench.run", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=False,
        timeout=600,
    )


def test_run_two_activations_into_a_store_then_resume(tmp_path, data_dir):
    store = tmp_path / "results" / "runs.sqlite"
    args = [
        "--activation",
        "relu,leaky_relu(negative_slope=0.1)",
        "--hidden",
        "32",
        "--epochs",
        "1",
        "--quiet",
        "--store",
        str(store),
        "--json",
    ]
    first = cli(*args, data_dir=data_dir)
    assert first.returncode == 0, first.stderr
    records = [json.loads(line) for line in first.stdout.splitlines()]
    # one line per run as it finishes: two workers may finish them in either order
    assert sorted(r["activation"] for r in records) == ["leaky_relu(negative_slope=0.1)", "relu"]
    for r in records:
        assert r["status"] == "ok" and r["test_acc"] > 0.85
        assert {"best_val_acc", "train_seconds", "samples_per_second"} <= set(r)
    with sqlite3.connect(store) as db:
        assert db.execute("select count(*) from runs where status = 'ok'").fetchone() == (2,)
        assert db.execute("select count(distinct key) from epochs").fetchone() == (2,)
    again = cli(*args, data_dir=data_dir)
    assert again.returncode == 0 and again.stdout == ""
    assert "0 trained" in again.stderr and "2 already in the store" in again.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--activation", "reluu"], "did you mean relu"),
        (["--activation", "elu(beta=1)"], "valid arguments: alpha"),
        (["--activation", "__import__('os').system('echo hi')"], "activation"),
        (["--dataset", "mnits"], "did you mean mnist"),
        (["--model", "resnet"], "unknown model"),
        (["--init", "xavier"], "did you mean xavier_normal, xavier_uniform"),
        (["--optimizer", "adamm"], "did you mean adam"),
        (["--epochs", "0"], "epochs must be a positive integer"),
        (["--batch-size", "-5"], "batch_size"),
        (["--lr", "0"], "lr must be > 0"),
        (["--lr", "fast"], "lr must be a number"),
        pytest.param(
            ["--device", "cuda"],
            "CUDA is not available",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here"),
        ),
        (["--suite", "nope"], "unknown suite"),
        (["--data-dir", "/does/not/exist"], "/does/not/exist"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, data_dir, args, message):
    store = tmp_path / "s.sqlite"
    result = cli(*args, "--store", str(store), data_dir=data_dir)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert "Traceback" not in result.stderr
    assert not store.exists()


def test_help_explains_itself(data_dir):
    result = cli("--help", data_dir=data_dir)
    assert result.returncode == 0
    for word in ("--activation", "--suite", "--seeds", "--store", "examples:", "resume"):
        assert word in result.stdout


def test_bad_files_are_one_line_exit_2_and_left_untouched(tmp_path, data_dir):
    broken = tmp_path / "broken.toml"
    broken.write_text('activation = ["relu"\nepochs = 2\n')
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('activation = ["relu"]\nlearning_rate = 0.1\n')
    corrupt = tmp_path / "data"
    (corrupt / "MNIST" / "raw").mkdir(parents=True)
    for f in (data_dir / "MNIST" / "raw").iterdir():
        (corrupt / "MNIST" / "raw" / f.name).write_bytes(f.read_bytes())
    images = corrupt / "MNIST" / "raw" / "train-images-idx3-ubyte"
    images.write_bytes(images.read_bytes()[:100_000])
    newer = tmp_path / "newer.sqlite"
    with sqlite3.connect(newer) as db:
        db.execute("PRAGMA user_version = 99")
    newer_bytes = newer.read_bytes()
    cases = [
        (["--suite", str(broken)], "line 2"),
        (["--suite", str(unknown)], "unknown RunSpec field 'learning_rate'"),
        (["--data-dir", str(corrupt)], "train-images-idx3-ubyte"),
        (["--store", str(newer)], "newer than this actbench"),
    ]
    for args, message in cases:
        store = tmp_path / "s.sqlite"
        result = cli(*args, *([] if "--store" in args else ["--store", str(store)]), data_dir=data_dir)
        assert result.returncode == 2, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr, result.stderr
        assert not store.exists()
    assert newer.read_bytes() == newer_bytes
