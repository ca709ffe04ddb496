"""The local executor: seeds grouped into batched models with --ensemble (off by default), a failing group's
fallback, claims released on Ctrl-C."""

import pytest
import torch

from bench import ensemble, executors, run
from bench.config import RunSpec
from bench.executors import execute
from bench.store import Store

SMALL = dict(dataset="mnist", model="mlp", hidden=(64,), epochs=1, device="cpu")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One thread for both sides of each comparison (two OpenMP threads stall when another process runs)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _specs() -> list[RunSpec]:
    return [RunSpec(activation=a, seed=s, **SMALL) for a in ("relu", "tanh") for s in (0, 1, 2)] + [
        RunSpec(activation="relu", dropout=0.2, **SMALL)  # dropout: never batched
    ]


def test_seeds_are_batched_with_ensemble_and_not_by_default(data_dir, tmp_path):
    specs = _specs()
    with Store(tmp_path / "a.sqlite") as store:
        batched = execute(specs, store, data_dir=data_dir, progress=False, ensemble_runs=True)
    with Store(tmp_path / "b.sqlite") as store:
        single = execute(specs, store, data_dir=data_dir, progress=False)
    sizes = {r["key"]: r["ensemble_size"] for r in batched.records}
    assert [sizes[s.key] for s in specs] == [3, 3, 3, 3, 3, 3, 1]
    assert {r["ensemble_size"] for r in single.records} == {1}
    want = {r["key"]: r for r in single.records}
    for got in batched.records:
        for field in ("test_acc", "test_loss", "val_acc", "train_loss", "best_epoch", "status"):
            assert got[field] == pytest.approx(want[got["key"]][field], abs=1e-5), field


def test_a_group_that_raises_is_trained_again_one_run_at_a_time(data_dir, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("batched training broke")

    monkeypatch.setattr(ensemble, "run", broken)
    specs = [RunSpec(activation="relu", seed=s, **SMALL) for s in (0, 1)]
    with Store(tmp_path / "s.sqlite") as store:
        summary = execute(specs, store, data_dir=data_dir, progress=False, ensemble_runs=True)
    assert [r["status"] for r in summary.records] == ["ok", "ok"]
    assert [r["ensemble_size"] for r in summary.records] == [1, 1]


def test_interrupted_group_releases_its_claims_and_saves_nothing(data_dir, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(executors, "train_group", interrupted)
    specs = [RunSpec(activation="relu", seed=s, **SMALL) for s in (0, 1)]
    with Store(tmp_path / "s.sqlite") as store:
        with pytest.raises(KeyboardInterrupt):
            execute(specs, store, data_dir=data_dir, progress=False, ensemble_runs=True)
        assert store.claimed_keys() == set()
        assert store.finished_keys() == set()


def test_ensemble_flag_reaches_the_executor():
    assert run.parse_args([]).ensemble is False
    assert run.parse_args(["--ensemble"]).ensemble is True
    assert run.parse_args(["--ensemble", "--no-ensemble"]).ensemble is False


def test_unknown_executor_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        run.parse_args(["--executor", "slurm"])
    assert exc.value.code == 2
    assert "invalid choice: 'slurm'" in capsys.readouterr().err
