"""``python -m bench.perf`` end to end on real MNIST, small: every path measured, ratios consistent, JSON written."""

import json

import pytest

from bench import perf

pytestmark = pytest.mark.slow


def test_perf_table_and_json(data_dir, tmp_path, capsys):
    out = tmp_path / "perf.json"
    code = perf.main(
        ["--data-dir", str(data_dir), "--models", "mlp", "--ensembles", "2", "--steps", "5", "--out", str(out)]
    )
    assert code == 0
    report = json.loads(out.read_text())
    paths = [r["path"] for r in report["rows"]]
    assert paths == [
        "textbook DataLoader",
        "harness single",
        "harness ensemble K=2",
        "matmuls only K=1",
        "matmuls only K=2",
    ]
    assert report["matmul_gflops"] > 0
    rate = {r["path"]: r["samples_per_second"] for r in report["rows"]}
    for row in report["rows"]:
        assert row["samples_per_second"] > 0 and row["utilisation"] > 0
        assert row["vs_single"] == pytest.approx(row["samples_per_second"] / rate["harness single"])
        assert row["vs_textbook"] == pytest.approx(row["samples_per_second"] / rate["textbook DataLoader"])
    assert "matmuls only K=2" in capsys.readouterr().out


def test_bad_data_dir_is_one_line(tmp_path, capsys):
    assert perf.main(["--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "p.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
