"""Faults for real: a suite killed with SIGKILL, interrupted with Ctrl-C, two processes on one store, runs that
diverge, raise or run out of memory, and a full disk. Nothing finished is lost, nothing is half-written."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.runs.store import Store, StoreError

pytestmark = pytest.mark.slow

SUITE = """
dataset = "mnist"
model = "mlp"
hidden = [32]
epochs = 4
activation = ["relu", "tanh", "elu", "sigmoid", "gelu", "softsign"]
"""


def start(store, suite, data_dir, *extra):
    env = {**os.environ, "ACTBENCH_DATA": str(data_dir)}
    cmd = [sys.executable, "-m", "bench.run", "--suite", str(suite), "--store", str(store), "--quiet", "--json", *extra]
    return subprocess.Popen(
        cmd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as at a terminal: a shell starts background jobs with SIGINT ignored, and Python would inherit that
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def children(pid: int) -> list[int]:
    """Process ids whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def finished_runs(store) -> int:
    if not store.exists():
        return 0
    try:
        with sqlite3.connect(store, timeout=30) as db:
            return db.execute("select count(*) from runs").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def wait_for_runs(proc, n) -> list[str]:
    """The first ``n`` records the suite prints (``--json``), each after its run is saved. Reading them as they come
    (not polling the store) leaves the suite most of its runs still to do when the test signals it."""
    lines = [proc.stdout.readline() for _ in range(n)]
    assert all(lines), proc.communicate()  # the process ended first
    return lines


def check_consistent(store, expected_runs):
    """Every run has all its epoch and layer rows; no rows belong to an unfinished run."""
    with sqlite3.connect(store) as db:
        runs = {k for (k,) in db.execute("select key from runs")}
        assert len(runs) == expected_runs
        assert {k for (k,) in db.execute("select distinct key from epochs")} == runs
        assert {k for (k,) in db.execute("select distinct key from layers")} == runs
        per_run = db.execute("select key, count(*) from epochs group by key").fetchall()
        assert len({n for _, n in per_run}) == 1  # same number of epoch rows for every run: none half-written
        return runs


@pytest.fixture
def suite(tmp_path):
    path = tmp_path / "suite.toml"
    path.write_text(SUITE)
    return path


def test_sigkill_mid_suite_then_rerun_completes_with_exactly_one_record_each(tmp_path, suite, data_dir):
    store = tmp_path / "s.sqlite"
    proc = start(store, suite, data_dir)
    wait_for_runs(proc, 2)
    workers = children(proc.pid)
    assert workers  # the pool's worker processes
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers), "workers outlived their killed driver"
    before = finished_runs(store)
    assert 2 <= before < 6
    check_consistent(store, before)
    rerun = start(store, suite, data_dir)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    assert len(out.splitlines()) == 6 - before  # only the missing runs were trained
    check_consistent(store, 6)


def interrupt(store, suite, data_dir, *extra) -> int:
    """SIGINT a suite after its first saved run; checks exit 130, the resume hint, consistent rows and no claims
    left, and returns how many runs were saved."""
    proc = start(store, suite, data_dir, *extra)
    first = wait_for_runs(proc, 1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    out = first[0] + out
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err
    saved = finished_runs(store)
    assert saved >= 1 and len(out.splitlines()) == saved
    check_consistent(store, saved)
    with Store(store) as s:
        assert s.claimed_keys() == set()  # the interrupted runs' claims were released
    return saved


def test_ctrl_c_saves_finished_runs_and_says_how_to_resume(tmp_path, suite, data_dir):
    interrupt(tmp_path / "s.sqlite", suite, data_dir)


def test_ctrl_c_with_the_ray_executor_keeps_finished_runs_and_the_rerun_completes(tmp_path, suite, data_dir):
    store = tmp_path / "s.sqlite"
    saved = interrupt(store, suite, data_dir, "--executor", "ray")
    assert saved < 6
    rerun = start(store, suite, data_dir, "--executor", "ray")
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    assert len(out.splitlines()) == 6 - saved  # only the missing runs were trained
    check_consistent(store, 6)


def test_two_processes_share_one_store_and_train_each_run_once(tmp_path, suite, data_dir):
    store = tmp_path / "s.sqlite"
    procs = [start(store, suite, data_dir) for _ in range(2)]
    outputs = [p.communicate(timeout=900) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
        assert "locked" not in err
    keys = [json.loads(line)["key"] for out, _ in outputs for line in out.splitlines()]
    assert len(keys) == len(set(keys)) == 6  # every run trained once, by one of the two
    assert all(out for out, _ in outputs), "both processes should have trained some runs"
    check_consistent(store, 6)


def test_diverging_raising_and_out_of_memory_runs_are_recorded_and_the_suite_goes_on(tmp_path, data_dir, monkeypatch):
    (tmp_path / "broken_acts.py").write_text(
        "import torch\nimport torch.nn as nn\n\n"
        "class Broken(nn.Module):\n"
        "    def forward(self, x):\n"
        "        if x.shape[0] > 100:  # passes the check before training (16 rows), breaks on a training batch\n"
        "            raise RuntimeError('this activation is broken')\n"
        "        return x\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    suite = tmp_path / "bad_runs.toml"
    suite.write_text(
        'dataset = "mnist"\nmodel = "mlp"\nepochs = 1\nhidden = [32]\n'
        '[[grid]]\nactivation = "relu"\noptimizer = "sgd"\nlr = 1e4\n'  # diverges
        '[[grid]]\nactivation = "broken_acts:Broken"\n'  # raises
        '[[grid]]\nactivation = "identity"\nhidden = [4000000000]\n'  # 12.5 TB of weights
        '[[grid]]\nactivation = "relu"\n'
    )
    store = tmp_path / "s.sqlite"
    proc = start(store, suite, data_dir)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 1, err  # runs failed: the suite went on, and says so in its exit status
    records = {(r["activation"], r["hidden"], r["optimizer"]): r for r in map(json.loads, out.splitlines())}
    statuses = {k: r["status"] for k, r in records.items()}
    assert statuses == {
        ("relu", "32", "sgd"): "diverged",
        ("broken_acts:Broken", "32", "adam"): "failed",
        ("identity", "4000000000", "adam"): "failed",
        ("relu", "32", "adam"): "ok",
    }
    assert "this activation is broken" in records["broken_acts:Broken", "32", "adam"]["error"]
    assert "alloc" in records["identity", "4000000000", "adam"]["error"].lower()
    assert "1 ok, 1 diverged, 2 failed" in err
    with Store(store) as s:
        runs = s.runs()
        assert sorted(runs["status"]) == ["diverged", "failed", "failed", "ok"]


def test_full_disk_is_refused_before_training(tmp_path, data_dir):
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True, check=False
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {made.stderr.decode().strip()}")
    try:
        proc = start(mount / "s.sqlite", "quick", data_dir)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 2
        assert "free on the disk" in err and len(err.strip().splitlines()) == 1
        assert out == ""
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_read_only_or_foreign_store_is_refused_before_training(tmp_path, data_dir):
    garbage = tmp_path / "notes.sqlite"
    garbage.write_text("not a database")
    proc = start(garbage, "quick", data_dir)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "is not an SQLite database" in err
    assert garbage.read_text() == "not a database"
    with pytest.raises(StoreError):
        Store(tmp_path / "missing" / "s.sqlite", readonly=True)
