"""The Ray executor against a real local Ray instance (ray.init(num_cpus=2)): same records as the local executor,
retries of dead workers, failures recorded, and a clear error without Ray."""

import logging
import os
import sys
from pathlib import Path

import pytest

from bench import run
from bench.config import RunSpec, Status
from bench.runs import cluster
from bench.runs.executors import execute
from bench.runs.store import Store

ray = pytest.importorskip("ray", reason="Ray is the optional extra actbench[ray] (make install installs it)")

TESTS = Path(__file__).resolve().parent
SMALL = dict(dataset="mnist", model="mlp", hidden=(64,), epochs=1, device="cpu")
TIMING = {"train_seconds", "wall_seconds", "samples_per_second", "started_at"}
DRIVER = {"executor", "workers"}  # which executor trained a run, not what the run gave


@pytest.fixture(scope="module")
def local_ray(data_dir):
    """A local Ray instance with 2 CPUs whose workers can import tests/crashing.py and find the datasets."""
    path = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level=logging.WARNING,
        runtime_env={"env_vars": {"PYTHONPATH": path, "ACTBENCH_DATA": str(data_dir)}},
    )
    yield
    ray.shutdown()


def _stored(path: Path) -> tuple[dict, dict, dict]:
    """Records, epoch rows and probe rows per key, timing left out."""
    with Store(path, readonly=True) as store:
        runs = store.runs()
        keys = runs["key"].tolist()
        epochs = store.epochs(keys)
        layers = store.layers(keys)
    records = {r["key"]: {k: v for k, v in r.items() if k not in TIMING | DRIVER} for r in runs.to_dict("records")}
    epochs = epochs[epochs["metric"].ne("seconds")]
    by_key = {k: g.drop(columns="key").reset_index(drop=True) for k, g in epochs.groupby("key")}
    probes = {k: g.drop(columns="key").reset_index(drop=True) for k, g in layers.groupby("key")}
    return records, by_key, probes


def test_ray_records_equal_local_records(local_ray, data_dir, tmp_path):
    """With the defaults (one thread per run on both executors) every record, epoch row and probe row is equal."""
    specs = [RunSpec(activation=a, seed=s, **SMALL) for a in ("relu", "tanh") for s in (0, 1)]
    with Store(tmp_path / "local.sqlite") as store:
        local = execute(specs, store, data_dir=data_dir, progress=False)
    with Store(tmp_path / "ray.sqlite") as store:
        remote = execute(specs, store, data_dir=data_dir, progress=False, executor="ray")
    assert local.count(Status.OK) == remote.count(Status.OK) == 4
    want, got = _stored(tmp_path / "local.sqlite"), _stored(tmp_path / "ray.sqlite")
    assert set(got[0]) == set(want[0]) == {s.key for s in specs}
    for key in want[0]:
        assert got[0][key] == want[0][key]
        assert got[0][key]["threads"] == 1
        assert got[1][key].equals(want[1][key])
        assert got[2][key].equals(want[2][key])


def test_a_worker_that_dies_is_retried_and_its_run_finishes(local_ray, data_dir, tmp_path):
    spec = RunSpec(activation=f"crashing:DieInWorker(spare={os.getpid()}, marker='{tmp_path / 'died'}')", **SMALL)
    with Store(tmp_path / "s.sqlite") as store:
        summary = execute([spec], store, data_dir=data_dir, progress=False, executor="ray")
    assert (tmp_path / "died").exists()  # the first attempt died
    assert [r["status"] for r in summary.records] == ["ok"]
    assert summary.records[0]["test_acc"] > 0.5


def test_a_run_that_always_kills_its_worker_is_failed_and_the_rest_run(local_ray, data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(cluster, "MAX_RETRIES", 1)
    doomed = RunSpec(activation=f"crashing:DieInWorker(spare={os.getpid()})", **SMALL)
    fine = RunSpec(activation="relu", **SMALL)
    with Store(tmp_path / "s.sqlite") as store:
        summary = execute([doomed, fine], store, data_dir=data_dir, progress=False, executor="ray")
        saved = store.runs().set_index("key")
    assert saved.loc[doomed.key, "status"] == "failed"
    assert "died" in saved.loc[doomed.key, "error"].lower() or "crash" in saved.loc[doomed.key, "error"].lower()
    assert saved.loc[fine.key, "status"] == "ok"
    assert summary.count("failed") == 1 and summary.count("ok") == 1


def test_executor_ray_without_ray_says_how_to_install(monkeypatch, tmp_path, capsys, data_dir):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    code = run.main(
        ["--executor", "ray", "--epochs", "1", "--data-dir", str(data_dir), "--store", str(tmp_path / "s.sqlite")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == ["error: --executor ray needs Ray: pip install 'actbench[ray]'"]
    assert not (tmp_path / "s.sqlite").exists()


@pytest.mark.parametrize("address", ["127.0.0.1:1", "ray://127.0.0.1:1", "no-port"])
def test_an_unreachable_ray_head_is_a_one_line_error(address, tmp_path, capsys, data_dir):
    store = tmp_path / "s.sqlite"
    code = run.main(["--executor", "ray", "--ray-address", address, "--data-dir", str(data_dir), "--store", str(store)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"error: cannot reach the Ray head at '{address}'")
    assert not store.exists()


@pytest.mark.parametrize(
    "option, message",
    [
        (["--cpus-per-run", "0"], "error: --workers and --threads-per-run must be at least 1"),
        (["--gpus-per-run", "1.5"], "error: --gpus-per-run must be in (0, 1]"),
    ],
)
def test_bad_ray_options_are_one_line_errors_before_any_store_exists(option, message, tmp_path, capsys, data_dir):
    store = tmp_path / "s.sqlite"
    code = run.main(["--executor", "ray", *option, "--data-dir", str(data_dir), "--store", str(store)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith(message)
    assert not store.exists()
