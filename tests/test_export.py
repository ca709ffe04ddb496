"""``python -m bench.export``: three tables whose rows match the store, and one-line errors with exit status 2."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from bench.export import main
from bench.runs.store import Store

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def store_path(tmp_path):
    """A store with two runs (one diverged, with NaN/inf metrics) and their epochs and layers rows."""
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        for key, status, acc in [("a", "ok", 0.97), ("b", "diverged", float("nan"))]:
            record = {"key": key, "status": status, "activation": "elu", "seed": 0, "test_acc": acc}
            if status == "diverged":
                record["error"] = "loss became inf"
            epochs = [
                {"epoch": e, "split": s, "metric": "loss", "value": float("inf") if status == "diverged" else 0.3}
                for e in range(3)
                for s in ("train", "val")
            ]
            layers = [
                {"epoch": e, "layer": i, "name": f"act{i}", "metric": "dead_frac", "value": 0.1}
                for e in range(3)
                for i in range(2)
            ]
            store.save(record, epochs, layers)
    return path


def test_export_writes_three_csvs_matching_the_store(store_path, tmp_path, capsys):
    out = tmp_path / "export"
    assert main(["--store", str(store_path), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["epochs.csv", "layers.csv", "runs.csv"]
    runs = pd.read_csv(out / "runs.csv")
    epochs = pd.read_csv(out / "epochs.csv")
    layers = pd.read_csv(out / "layers.csv")
    assert len(runs) == 2 and len(epochs) == 2 * 3 * 2 and len(layers) == 2 * 3 * 2
    with Store(store_path, readonly=True) as store:
        assert set(runs.columns) == set(store.runs().columns)
        pd.testing.assert_frame_equal(epochs[list(store.epochs().columns)], store.epochs())
        pd.testing.assert_frame_equal(layers[list(store.layers().columns)], store.layers())
    for table in (runs, epochs, layers):  # readable settings first, not only hash keys
        assert list(table.columns[:2]) == ["activation", "seed"]
    assert list(epochs.loc[epochs["key"].eq("b"), "activation"].unique()) == ["elu"]
    assert list(runs["key"]) == ["a", "b"] and list(runs["status"]) == ["ok", "diverged"]
    assert runs.loc[1, "error"] == "loss became inf" and pd.isna(runs.loc[1, "test_acc"])

    err = capsys.readouterr().err
    for name, rows in [("runs", 2), ("epochs", 12), ("layers", 12)]:
        assert f"{out / name}.csv: {rows} rows" in err


def test_missing_store_is_one_error_line_and_not_created(tmp_path, capsys):
    missing = tmp_path / "typo.sqlite"
    assert main(["--store", str(missing), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and str(missing) in err
    assert not missing.exists() and not (tmp_path / "out").exists()


def test_the_command_line_exits_2_without_a_traceback(tmp_path):
    missing = tmp_path / "typo.sqlite"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.export", "--store", str(missing), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: no store at") and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not missing.exists()


def test_a_file_that_is_not_a_store_is_one_error_line(tmp_path, capsys):
    garbage = tmp_path / "notes.txt"
    garbage.write_text("not a database\n" * 10)
    assert main(["--store", str(garbage), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {garbage} is not an SQLite database; pass another --store path or move the file away\n"


def test_parquet_without_pyarrow_says_how_to_install_it(store_path, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow` fail even where it is installed
    out = tmp_path / "out"
    assert main(["--store", str(store_path), "--out", str(out), "--format", "parquet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "pip install -e '.[parquet]'" in err and err.count("\n") == 1
    assert not out.exists()


def test_unwritable_out_is_one_error_line(store_path, tmp_path, capsys):
    blocker = tmp_path / "out"
    blocker.write_text("a file where the directory should be")
    assert main(["--store", str(store_path), "--out", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write to --out {blocker / 'sub'}") and err.count("\n") == 1


def test_help_describes_the_tables_and_options(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for word in ("--store", "--out", "--format", "parquet", "epochs", "layers"):
        assert word in out


def test_tensorboard_scalars_read_back_with_tensorboards_own_reader(store_path, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    board = tmp_path / "tb"
    assert main(["--store", str(store_path), "--out", str(tmp_path / "out"), "--tensorboard", str(board)]) == 0
    folders = sorted(p.name for p in board.iterdir())
    assert folders == ["activation=elu,seed=0 a", "activation=elu,seed=0 b"]
    events = EventAccumulator(str(board / folders[0])).Reload()
    assert set(events.Tags()["scalars"]) == {"train/loss", "val/loss"}
    assert [(e.step, e.value) for e in events.Scalars("val/loss")] == [(e, pytest.approx(0.3)) for e in range(3)]
