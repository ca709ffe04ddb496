"""The SQLite store: round trips, replacement by key, atomic saves, refusing foreign/newer/read-only files, WAL."""

import json
import math
import multiprocessing
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import pytest

from activations.errors import InputError
from bench.runs.store import SCHEMA_VERSION, Store, StoreError

NOBODY = 65534


def make_run(key: str, n_epochs: int = 3, n_layers: int = 2, status: str = "ok", **fields):
    """A record with every scalar type, plus epochs and layers rows, as the training loop would hand them over."""
    record = {"key": key, "status": status, "dataset": "mnist", "lr": 0.001, "seed": 1, "ensemble": False, **fields}
    epochs = [
        {"epoch": e, "split": split, "metric": metric, "value": 0.5 + e / 10}
        for e in range(n_epochs)
        for split in ("train", "val")
        for metric in ("loss", "acc")
    ]
    layers = [
        {"epoch": e, "layer": i, "name": f"act{i}", "metric": metric, "value": 0.1 * i}
        for e in range(n_epochs)
        for i in range(n_layers)
        for metric in ("grad_norm", "dead_frac")
    ]
    return record, epochs, layers


def count(path: Path, table: str, key: str) -> int:
    """Rows of ``table`` for ``key``, read with a plain sqlite3 connection (not through the Store)."""
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT COUNT(*) FROM {table} WHERE key = ?", (key,)).fetchone()[0]


def test_round_trip_keeps_types_nan_and_inf(tmp_path):
    path = tmp_path / "sub" / "dir" / "s.sqlite"  # parent directories are created
    record = {
        "key": "k1",
        "status": "diverged",
        "error": "loss is nan at epoch 2",
        "activation": "leaky_relu(negative_slope=0.02)",
        "epochs": 10,
        "lr": 0.1,
        "deterministic": True,
        "git_sha": None,
        "test_acc": float("nan"),
        "final_loss": float("inf"),
        "min_grad": float("-inf"),
    }
    epochs = [
        {"epoch": 0, "split": "train", "metric": "loss", "value": 2.5},
        {"epoch": 1, "split": "train", "metric": "loss", "value": float("inf")},
        {"epoch": 2, "split": "train", "metric": "loss", "value": float("nan")},
        {"epoch": 2, "split": "val", "metric": "acc", "value": 1},  # an int value is stored as a float
    ]
    layers = [{"epoch": 2, "layer": 0, "name": "fc1.act", "metric": "act_std", "value": float("nan")}]
    with Store(path) as store:
        store.save(record, epochs, layers)
    with Store(path) as store:  # reopened: nothing lives only in memory
        back = store.record("k1")
        assert store.record("missing") is None
        ep = store.epochs()
        ly = store.layers()
        runs = store.runs()

    assert list(back) == list(record)
    for name, value in record.items():
        assert type(back[name]) is type(value), name
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(back[name])
        else:
            assert back[name] == value, name

    assert list(ep.columns) == ["key", "epoch", "split", "metric", "value"]
    assert ep["epoch"].dtype == "int64" and ep["value"].dtype == "float64"
    values = {(r.epoch, r.split, r.metric): r.value for r in ep.itertuples()}
    assert values[(0, "train", "loss")] == 2.5
    assert values[(1, "train", "loss")] == math.inf
    assert math.isnan(values[(2, "train", "loss")])
    assert values[(2, "val", "acc")] == 1.0
    assert list(ly.columns) == ["key", "epoch", "layer", "name", "metric", "value"]
    assert ly.loc[0, "name"] == "fc1.act" and math.isnan(ly.loc[0, "value"])

    assert list(runs.columns[:2]) == ["key", "status"]
    assert set(runs.columns) == set(record)
    row = runs.iloc[0]
    assert row["status"] == "diverged" and row["epochs"] == 10
    assert runs["deterministic"].dtype == bool and runs["git_sha"].isna().all()
    assert math.isnan(row["test_acc"]) and row["final_loss"] == math.inf

    with sqlite3.connect(path) as conn:
        status, error, finished_at = conn.execute("SELECT status, error, finished_at FROM runs").fetchone()
    assert (status, error) == ("diverged", "loss is nan at epoch 2")
    assert finished_at.endswith("+00:00")  # UTC ISO time


def test_runs_frame_is_the_union_of_fields_with_key_and_status_first(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        assert list(store.runs().columns) == ["key", "status"] and store.runs().empty
        assert store.epochs().empty and list(store.layers().columns)[:3] == ["key", "epoch", "layer"]
        store.save({"test_acc": 0.9, "status": "ok", "key": "a"}, [], [])
        store.save({"key": "b", "status": "failed", "error": "CUDA out of memory"}, [], [])
        runs = store.runs()
    assert list(runs.columns) == ["key", "status", "test_acc", "error"]
    assert list(runs["key"]) == ["a", "b"]
    assert runs.loc[0, "test_acc"] == 0.9 and math.isnan(runs.loc[1, "test_acc"])


def test_save_again_replaces_every_row_of_the_key(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        store.save(*make_run("k", n_epochs=5, n_layers=3, test_acc=0.5))
        store.save(*make_run("other", n_epochs=2))
        assert count(path, "epochs", "k") == 5 * 4 and count(path, "layers", "k") == 5 * 3 * 2
        store.save(*make_run("k", n_epochs=1, n_layers=1, status="diverged", test_acc=0.1))

        assert store.record("k")["test_acc"] == 0.1
        runs = store.runs()
        assert sorted(runs["key"]) == ["k", "other"]  # still one runs row per key
        assert runs.set_index("key").loc["k", "status"] == "diverged"
        assert len(store.epochs(["k"])) == 4 and set(store.epochs("k")["epoch"]) == {0}
        assert len(store.layers(["k"])) == 2
        assert len(store.epochs(["other"])) == 2 * 4  # the other key is untouched
    assert count(path, "runs", "k") == 1 and count(path, "epochs", "k") == 4 and count(path, "layers", "k") == 2


def test_finished_keys_has_and_key_filters(tmp_path):
    with Store(tmp_path / "s.sqlite") as store:
        assert store.finished_keys() == set()
        for key, status in [("a", "ok"), ("b", "diverged"), ("c", "failed")]:
            store.save(*make_run(key, status=status))
        assert store.finished_keys() == {"a", "b"}  # a failed run is no result: the next suite trains it again
        assert store.has("b") and not store.has("c") and not store.has("d")
        assert store.record("c")["status"] == "failed"  # but it is kept, with its error, until then
        assert store.claim("c") and not store.claim("a")
        assert set(store.epochs(["a", "c", "nope"])["key"]) == {"a", "c"}
        assert set(store.layers(iter(["b"]))["key"]) == {"b"}
        assert store.epochs([]).empty
        keys = [f"x{i}" for i in range(1200)] + ["a"]  # more keys than one query binds
        assert set(store.epochs(keys)["key"]) == {"a"}


def test_a_save_failing_midway_leaves_nothing_behind(tmp_path):
    path = tmp_path / "s.sqlite"
    record, epochs, layers = make_run("k", n_epochs=2)
    with Store(path) as store:
        store.save(*make_run("old", n_epochs=2))
        # The runs row and the epochs rows are inserted before the duplicate layers row fails.
        with pytest.raises(InputError, match="run k not saved"):
            store.save(record, epochs, layers + [layers[0]])
        assert not store.has("k")
        # A failed re-save of an existing key keeps its previous rows: the DELETE is rolled back too.
        old = make_run("old", n_epochs=1)
        with pytest.raises(InputError, match="run old not saved"):
            store.save(old[0], old[1] + [old[1][0]], old[2])
        assert store.has("old") and len(store.epochs(["old"])) == 2 * 4
        store.save(record, epochs, layers)  # the connection is usable afterwards
    assert count(path, "runs", "k") == 1
    assert count(path, "epochs", "k") == len(epochs) and count(path, "layers", "k") == len(layers)
    assert count(path, "epochs", "old") == 2 * 4


def test_bad_rows_and_records_are_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "s.sqlite"
    record, epochs, layers = make_run("k")
    with Store(path) as store:
        with pytest.raises(InputError, match="epochs row 1 has no 'value' field"):
            store.save(record, [epochs[0], {"epoch": 0, "split": "val", "metric": "acc"}], layers)
        with pytest.raises(InputError, match="layers row 0 field 'layer' must be int"):
            store.save(record, epochs, [{**layers[0], "layer": "0"}])
        with pytest.raises(InputError, match="status must be one of ok, diverged, failed"):
            store.save({**record, "status": "done"}, epochs, layers)
        with pytest.raises(InputError, match="'hidden' must be a str/int/float/bool/None"):
            store.save({**record, "hidden": [256, 256]}, epochs, layers)
        with pytest.raises(InputError, match="non-empty string 'key'"):
            store.save({"status": "ok"}, [], [])
        assert store.finished_keys() == set()
    assert count(path, "runs", "k") == 0 and count(path, "epochs", "k") == 0


def test_schema_version_is_recorded_and_a_newer_store_is_refused_untouched(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        store.save(*make_run("k"))
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 1
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    before = path.read_bytes()
    for readonly in (False, True):
        with pytest.raises(StoreError, match=rf"{path}.*schema version 2, newer than this actbench's 1.*upgrade"):
            Store(path, readonly=readonly)
    assert path.read_bytes() == before


def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path):
    path = tmp_path / "notes.sqlite"
    path.write_text("these are my notes, not a database\n" * 20)
    before = path.read_bytes()
    for readonly in (False, True):
        with pytest.raises(StoreError, match=rf"{path} is not an SQLite database") as info:
            Store(path, readonly=readonly)
        assert "\n" not in str(info.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.sqlite"]  # no -wal, -shm or -journal either


def test_an_sqlite_file_of_another_program_is_refused_untouched(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE contacts (name TEXT)")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not an actbench store .tables: contacts"):
        Store(path)
    assert path.read_bytes() == before


def test_readonly_store_reads_but_never_creates_or_writes(tmp_path):
    missing = tmp_path / "nope" / "s.sqlite"
    with pytest.raises(StoreError, match=rf"no store at {missing}"):
        Store(missing, readonly=True)
    assert not missing.parent.exists()

    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        store.save(*make_run("k"))
    with Store(path, readonly=True) as store:
        assert store.finished_keys() == {"k"} and len(store.epochs()) == 3 * 4
        with pytest.raises(StoreError, match="opened read-only"):
            store.save(*make_run("k2"))
    with Store(path) as store:
        assert store.finished_keys() == {"k"}


def test_a_path_whose_directory_cannot_be_created_fails_at_open(tmp_path):
    blocker = tmp_path / "results"
    blocker.write_text("a file where the directory should be")
    with pytest.raises(StoreError, match=rf"cannot open the store {blocker}/s.sqlite.*writable"):
        Store(blocker / "s.sqlite")


@pytest.fixture
def reachable_dir(tmp_path):
    """A directory an unprivileged user can reach: as root, tmp_path's parents are private to root."""
    if os.geteuid() != 0:
        yield tmp_path
        return
    path = Path(tempfile.mkdtemp(prefix="actbench-store-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def _open_in_child(path, drop_root, pipe):
    """Open a Store as an unprivileged user would (root ignores file modes) and report the error text."""
    try:
        if drop_root:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
    except OSError as exc:
        pipe.send(("cannot drop root", str(exc)))
        return
    try:
        Store(path).close()
        pipe.send(("opened", ""))
    except StoreError as exc:
        pipe.send(("StoreError", str(exc)))


def open_as_user(path: Path) -> tuple[str, str]:
    """Try ``Store(path)`` in a forked child that, when we are root, first drops to user nobody."""
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_open_in_child, args=(path, os.geteuid() == 0, send))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    outcome = receive.recv()
    if outcome[0] == "cannot drop root":
        pytest.skip(f"running as root and cannot switch to an unprivileged user to test file modes: {outcome[1]}")
    return outcome


def test_read_only_directory_or_file_fails_at_open(reachable_dir):
    """Checked when the store is opened, not when the first run finishes; as root this runs as user nobody."""
    new_in_ro_dir = reachable_dir / "ro_dir" / "new.sqlite"
    new_in_ro_dir.parent.mkdir()
    new_in_ro_dir.parent.chmod(0o555)

    ro_file = reachable_dir / "rw_dir" / "s.sqlite"  # writable directory (the WAL file could be made), read-only file
    ro_file.parent.mkdir()
    Store(ro_file).close()
    ro_file.chmod(0o444)
    ro_file.parent.chmod(0o777)
    before = ro_file.read_bytes()

    store_in_ro_dir = reachable_dir / "ro_dir2" / "s.sqlite"  # writable file, directory read-only
    store_in_ro_dir.parent.mkdir()
    Store(store_in_ro_dir).close()
    store_in_ro_dir.chmod(0o666)
    store_in_ro_dir.parent.chmod(0o555)

    for path in (new_in_ro_dir, ro_file, store_in_ro_dir):
        kind, message = open_as_user(path)
        assert kind == "StoreError", path
        assert str(path) in message and "writable or pass another --store path" in message
    assert not new_in_ro_dir.exists()
    assert ro_file.read_bytes() == before


def test_wal_mode_and_a_long_busy_timeout(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as store:
        assert store._conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 30_000
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # WAL is a property of the file
    conn.close()


def test_a_save_waits_for_another_writer_instead_of_failing(tmp_path):
    path = tmp_path / "s.sqlite"
    Store(path).close()
    opened, go, errors = threading.Event(), threading.Event(), []

    def save_when_told():
        try:
            with Store(path) as store:
                opened.set()
                go.wait(10)
                store.save(*make_run("mine"))
        except Exception as exc:  # reported to the test's thread
            errors.append(exc)
        opened.set()

    saver = threading.Thread(target=save_when_told)
    saver.start()
    assert opened.wait(10) and not errors
    other = sqlite3.connect(path, isolation_level=None)  # as another process would, it takes the write lock
    other.execute("BEGIN IMMEDIATE")
    other.execute(
        "INSERT INTO runs VALUES ('theirs', 'ok', NULL, '2024-01-01T00:00:00+00:00', ?)",
        (json.dumps({"key": "theirs", "status": "ok"}),),
    )
    go.set()
    time.sleep(0.5)
    assert saver.is_alive() and not errors  # waiting, not "database is locked"
    other.execute("COMMIT")
    other.close()
    saver.join(10)
    assert not saver.is_alive() and errors == []
    with Store(path) as store:
        assert store.finished_keys() == {"theirs", "mine"}


def _save_many(path, prefix, start, pipe):
    """One worker process: its own Store on the shared file, saving runs as fast as it can."""
    try:
        with Store(path) as store:
            start.wait(10)
            for i in range(25):
                store.save(*make_run(f"{prefix}{i}", n_epochs=4, n_layers=3))
        pipe.send("")
    except Exception as exc:
        pipe.send(f"{type(exc).__name__}: {exc}")


def test_two_processes_save_to_one_file(tmp_path):
    path = tmp_path / "s.sqlite"
    Store(path).close()
    ctx = multiprocessing.get_context("fork")  # fast here; the children only use sqlite3
    start = ctx.Event()
    pipes, workers = [], []
    for prefix in ("p", "q"):
        receive, send = ctx.Pipe(duplex=False)
        worker = ctx.Process(target=_save_many, args=(path, prefix, start, send))
        worker.start()
        pipes.append(receive)
        workers.append(worker)
    start.set()
    for worker in workers:
        worker.join(60)
    assert [p.recv() for p in pipes] == ["", ""]
    assert [w.exitcode for w in workers] == [0, 0]
    with Store(path, readonly=True) as store:
        assert store.finished_keys() == {f"{p}{i}" for p in "pq" for i in range(25)}
        assert len(store.epochs()) == 50 * 4 * 4 and len(store.layers()) == 50 * 4 * 3 * 2


def _open_and_close(path, start, pipe):
    start.wait(10)
    try:
        Store(path).close()
        pipe.send("")
    except Exception as exc:
        pipe.send(f"{type(exc).__name__}: {exc}")


def test_processes_creating_one_new_store_at_the_same_moment_all_succeed(tmp_path):
    ctx = multiprocessing.get_context("fork")  # the children only use sqlite3
    for trial in range(30):  # the race (a WAL switch, a half-seen schema) lost about half of such trials
        path = tmp_path / f"s{trial}.sqlite"
        start = ctx.Event()
        pipes = [ctx.Pipe(duplex=False) for _ in range(3)]
        workers = [ctx.Process(target=_open_and_close, args=(path, start, send)) for _, send in pipes]
        for worker in workers:
            worker.start()
        start.set()
        assert [receive.recv() for receive, _ in pipes] == ["", "", ""], trial
        for worker in workers:
            worker.join(60)
    with Store(path, readonly=True) as store:
        assert store.finished_keys() == set()
