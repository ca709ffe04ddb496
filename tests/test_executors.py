"""The local executor: a pool of one-thread worker processes, records equal at equal thread counts, a worker that
dies (retried alone once, then failed), host-wide CPU slots, and claims released on Ctrl-C."""

import os
from pathlib import Path

import pytest

from bench import run
from bench.config import RunSpec, Status
from bench.runs import executors
from bench.runs.executors import Slots, execute
from bench.runs.store import Store

SMALL = dict(dataset="mnist", model="mlp", hidden=(64,), epochs=1)  # on the test device: each test passes device=device
SAME = ("test_acc", "test_loss", "val_acc", "train_loss", "best_val_acc", "best_epoch", "status", "threads")


def _records(path: Path) -> dict[str, dict]:
    with Store(path, readonly=True) as store:
        return {r["key"]: r for r in store.runs().to_dict("records")}


def test_pool_records_do_not_depend_on_the_number_of_workers(device, data_dir, tmp_path):
    specs = [RunSpec(activation=a, seed=s, **SMALL, device=device) for a in ("relu", "tanh") for s in (0, 1)]
    with Store(tmp_path / "one.sqlite") as store:
        execute(specs, store, data_dir=data_dir, progress=False, workers=1)
    with Store(tmp_path / "two.sqlite") as store:
        summary = execute(specs, store, data_dir=data_dir, progress=False, workers=2)
    assert summary.count(Status.OK) == 4
    one, two = _records(tmp_path / "one.sqlite"), _records(tmp_path / "two.sqlite")
    assert set(one) == set(two) == {s.key for s in specs}
    for key in one:
        assert {f: one[key][f] for f in SAME} == {f: two[key][f] for f in SAME}
        assert one[key]["threads"] == 1


def test_threads_per_run_reach_the_workers(device, data_dir, tmp_path):
    spec = RunSpec(activation="relu", **SMALL, device=device)
    with Store(tmp_path / "s.sqlite") as store:
        summary = execute([spec], store, data_dir=data_dir, progress=False, workers=1, threads=2)
    assert summary.records[0]["threads"] == 2


def test_a_worker_that_dies_once_is_retried_and_its_run_finishes_and_it_is_said(device, data_dir, tmp_path, capsys):
    marker = tmp_path / "died"
    doomed = RunSpec(activation=f"crashing:DieInWorker(spare={os.getpid()}, marker='{marker}')", **SMALL, device=device)
    fine = RunSpec(activation="relu", **SMALL, device=device)
    with Store(tmp_path / "s.sqlite") as store:
        summary = execute([doomed, fine], store, data_dir=data_dir, progress=True, workers=2)
    assert marker.exists()  # the first attempt died
    assert {r["key"]: r["status"] for r in summary.records} == {doomed.key: Status.OK, fine.key: Status.OK}
    said = [line for line in capsys.readouterr().err.splitlines() if "worker process died" in line]
    assert len(said) == 1 and "(exit code 1) while training" in said[0] and doomed.label() in said[0]
    assert said[0].endswith(": trained again, alone")


def test_a_run_that_always_kills_its_worker_is_failed_and_the_rest_run(device, data_dir, tmp_path):
    doomed = RunSpec(activation=f"crashing:DieInWorker(spare={os.getpid()})", **SMALL, device=device)
    others = [RunSpec(activation=a, **SMALL, device=device) for a in ("relu", "tanh", "elu")]
    with Store(tmp_path / "s.sqlite") as store:
        summary = execute([doomed, *others], store, data_dir=data_dir, progress=False, workers=2)
        saved = store.runs().set_index("key")
    assert saved.loc[doomed.key, "status"] == Status.FAILED
    assert "worker process died twice" in saved.loc[doomed.key, "error"]
    assert all(saved.loc[s.key, "status"] == Status.OK for s in others)
    assert summary.count(Status.FAILED) == 1 and summary.count(Status.OK) == 3


def test_slots_are_shared_between_drivers_and_freed_when_given_back(tmp_path):
    a = Slots(2, tmp_path)
    assert a.take("x", 1) and a.take("y", 1)  # alone, a driver may take every slot
    b = Slots(2, tmp_path)
    assert not b.take("z", 1)  # both slots held: the second driver waits
    a.give("y")
    assert not a.take("y2", 1)  # two drivers: a's fair share is one slot, and it holds one
    assert b.take("z", 1)
    assert not b.take("w", 1)
    b.give("z")
    assert not b.take("w", 2)  # asking for more than is free takes nothing
    b.close()
    assert a.drivers() == 1 and a.take("y3", 1)  # b is gone: a's share is both slots again
    a.close()


def test_usable_cpus_follow_the_affinity_mask():
    assert 1 <= executors.usable_cpus() <= len(os.sched_getaffinity(0))
    assert executors.default_workers([RunSpec(**SMALL, device="cpu")], threads=1) == executors.usable_cpus()
    assert executors.default_workers([RunSpec(**SMALL, device="cpu")], threads=64) == 1


def test_interrupted_suite_releases_its_claims_and_saves_nothing(device, data_dir, tmp_path, monkeypatch):
    def interrupted(specs, claim, *args):
        for spec in specs:
            assert claim(spec)
        raise KeyboardInterrupt
        yield

    monkeypatch.setattr(executors, "_pool", interrupted)
    specs = [RunSpec(activation="relu", seed=s, **SMALL, device=device) for s in (0, 1)]
    with Store(tmp_path / "s.sqlite") as store:
        with pytest.raises(KeyboardInterrupt):
            execute(specs, store, data_dir=data_dir, progress=False)
        assert store.claimed_keys() == set()
        assert store.finished_keys() == set()


@pytest.mark.parametrize("option", [["--workers", "0"], ["--threads-per-run", "0"]])
def test_bad_pool_sizes_are_one_line_errors(option, tmp_path, capsys, data_dir):
    store = tmp_path / "s.sqlite"
    assert run.main([*option, "--data-dir", str(data_dir), "--store", str(store)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --workers and --threads-per-run must be at least 1")
    assert not store.exists()


def test_unknown_executor_is_one_line_exit_2(tmp_path, capsys, data_dir):
    store = tmp_path / "s.sqlite"
    assert run.main(["--executor", "slurm", "--data-dir", str(data_dir), "--store", str(store)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: unknown executor 'slurm'")
    assert not store.exists()
