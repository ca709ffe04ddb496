"""A suite's published runs (reports/<suite>/runs.jsonl.gz): written with the report, imported into a fresh store,
and the report rebuilt from them equals the original; damaged, missing and newer bundles are one-line errors."""

import gzip
import json
import math
from pathlib import Path

import pytest
from test_report import GRID, synthetic_store, write_suite

from bench.config import Status, load_suite
from bench.report import command
from bench.runs import bundle
from bench.runs.store import Store


@pytest.fixture
def published(tmp_path):
    """A tiny suite's store (a diverged run with NaN fields, a failed run, an infinite probe value) and its report."""
    suite = write_suite(tmp_path / "tiny.toml", GRID + 'activation = ["relu", "tanh", "elu"]\nseeds = 3\n')
    specs = load_suite(suite)
    status = {specs[4].key: Status.DIVERGED, specs[8].key: Status.FAILED}
    store = synthetic_store(
        tmp_path / "original.sqlite",
        suite,
        lambda s, split: 0.9 + 0.01 * s.seed - 0.02 * (s.activation == "tanh"),
        lambda s: status.get(s.key, Status.OK),
        extra=lambda s: {"train_loss": math.inf} if s.key in status else {},
    )
    with Store(store) as db:  # one infinite probe value, as an exploding gradient norm writes it
        record = db.record(specs[4].key)
        layers = db.layers([specs[4].key]).drop(columns="key").to_dict("records")
        layers[0]["value"] = math.inf
        db.save(record, db.epochs([specs[4].key]).drop(columns="key").to_dict("records"), layers)
    readme = command.build(suite, store, tmp_path / "original", timing=False)
    return {"suite": suite, "specs": specs, "store": store, "folder": readme.parent}


def rows(store, table):
    with Store(store, readonly=True) as db:
        return getattr(db, table)().sort_values(["key", "epoch"]).reset_index(drop=True)


def test_the_report_rebuilt_from_an_imported_bundle_equals_the_original(tmp_path, published):
    folder = published["folder"]
    assert (folder / "runs.jsonl.gz").is_file() and "runs.jsonl.gz" in (folder / "README.md").read_text()
    fresh = tmp_path / "fresh.sqlite"
    assert bundle.main(["import", str(folder), "--store", str(fresh)]) == 0
    with Store(published["store"], readonly=True) as a, Store(fresh, readonly=True) as b:
        for spec in published["specs"]:  # every record exactly as it was, NaN and infinity included
            assert json.dumps(a.record(spec.key)) == json.dumps(b.record(spec.key))
            assert a.finished_at(spec.key) == b.finished_at(spec.key)
        assert math.isinf(b.record(published["specs"][4].key)["train_loss"])
    for table in ("epochs", "layers"):
        assert rows(published["store"], table).equals(rows(fresh, table))
    assert rows(fresh, "layers")["value"].map(math.isinf).sum() == 1
    rebuilt = command.build(published["suite"], fresh, tmp_path / "rebuilt", timing=False).parent
    for name in ("results.csv", "summary.csv", "runs.jsonl.gz"):
        assert (rebuilt / name).read_bytes() == (folder / name).read_bytes(), name
    same = lambda text: [line for line in text.splitlines() if "written" not in line]  # noqa: E731
    assert same((rebuilt / "README.md").read_text()) == same((folder / "README.md").read_text())
    assert {p.name for p in (rebuilt / "figures").glob("*.png")} == {p.name for p in (folder / "figures").glob("*.png")}


def test_the_bundle_is_strict_json_and_importing_twice_adds_nothing(tmp_path, published, capsys):
    lines = gzip.decompress((published["folder"] / "runs.jsonl.gz").read_bytes()).decode().splitlines()
    parse = lambda text: json.loads(text, parse_constant=lambda c: 1 / 0)  # noqa: E731 (NaN or Infinity: fails)
    header, *runs = [parse(line) for line in lines]
    assert header == {"format": "actbench-runs", "version": 1, "suite": "tiny", "runs": 9, "git_sha": header["git_sha"]}
    assert len(runs) == 9 and {r["record"]["status"] for r in runs} == {"ok", "diverged", "failed"}
    diverged = next(r for r in runs if r["record"]["status"] == "diverged")
    assert diverged["nonfinite"] == {"test_acc": "NaN", "train_loss": "Infinity"}
    fresh = tmp_path / "fresh.sqlite"
    assert bundle.load(published["folder"], fresh)[1:] == (9, 0)
    assert bundle.load(published["folder"], fresh)[1:] == (1, 8)  # the failed run is no result: loaded again
    assert bundle.main(["import", str(published["folder"]), "--store", str(fresh)]) == 0
    assert "imported 1 runs of suite 'tiny'" in capsys.readouterr().err


def one_line(capsys, argv):
    assert bundle.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


def test_missing_damaged_and_newer_bundles_are_one_line_errors(tmp_path, published, capsys):
    store = str(tmp_path / "s.sqlite")
    assert "make bench SUITE=" in one_line(capsys, ["import", str(tmp_path / "nowhere"), "--store", store])
    good = (published["folder"] / "runs.jsonl.gz").read_bytes()
    path = tmp_path / "runs.jsonl.gz"
    path.write_bytes(good[: len(good) // 2])
    assert "not a readable actbench runs bundle" in one_line(capsys, ["import", str(path), "--store", store])
    header, *rest = gzip.decompress(good).decode().splitlines()
    newer = json.dumps({**json.loads(header), "version": 2})
    path.write_bytes(gzip.compress("\n".join([newer, *rest]).encode()))
    err = one_line(capsys, ["import", str(path), "--store", store])
    assert "bundle version 2, newer than this actbench's 1" in err and "make bench SUITE=tiny" in err
    path.write_bytes(gzip.compress("\n".join([header, *rest[:-1]]).encode()))
    assert "announces 9 runs, it has 8" in one_line(capsys, ["import", str(path), "--store", store])
    path.write_bytes(gzip.compress("\n".join([header, *rest[:-1], '{"record": 1}']).encode()))
    assert "line 10 is damaged" in one_line(capsys, ["import", str(path), "--store", store])
    assert not (tmp_path / "s.sqlite").exists()  # no bad bundle created the store


@pytest.mark.slow
def test_a_published_cnn_run_made_on_this_processor_trains_again_to_the_same_bits(data_dir, tmp_path):
    """The default's published CNN runs reproduce digit for digit where they were made: a ReLU run of the bundle made
    on this processor model, torch and vector kernels, with one thread, trains again in a one-thread worker to the
    same result, curves and probes (``bench.compare``'s own check). Skipped where none was made on such a machine."""
    import torch

    from bench.compare import drift
    from bench.config import FIELDS, make_spec
    from bench.harness import loop
    from bench.runs import results
    from bench.runs.executors import execute

    here = (loop.cpu_name(), torch.__version__, torch.backends.cpu.get_cpu_capability(), 1)
    made = lambda r: (r["device_name"], r["torch_version"], r["cpu_capability"], r["threads"])  # noqa: E731
    _, runs = bundle.read(Path(__file__).resolve().parents[1] / "reports" / "default")
    mine = [
        run
        for run in runs
        if run[0]["model"] == "cnn" and run[0]["activation"] == "relu" and run[0]["status"] == Status.OK
        if made(run[0]) == here
    ]
    if not mine:
        pytest.skip(f"no published CNN run of the default was made on {here}")
    record, epochs, layers, finished = min(mine, key=lambda run: run[0]["lr"])
    spec = make_spec({f: record[f] for f in FIELDS if record.get(f) is not None})
    assert spec.key == record["key"]
    with Store(tmp_path / "published.sqlite") as db:
        db.save(record, epochs, layers, finished)
    with Store(tmp_path / "again.sqlite") as db:
        execute([spec], db, data_dir=data_dir, workers=1, threads=1, progress=False)
    pairs = drift(
        results.suite_runs([spec], tmp_path / "published.sqlite"), results.suite_runs([spec], tmp_path / "again.sqlite")
    )
    assert len(pairs) == 1 and pairs["identical"].all(), pairs.to_dict("records")
