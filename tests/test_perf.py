"""``python -m bench.perf`` end to end on real MNIST, small: every path measured, ratios consistent, JSON written."""

import json

import pytest
import torch

from bench import perf

pytestmark = pytest.mark.slow


def test_perf_table_and_json(data_dir, tmp_path, capsys):
    out = tmp_path / "perf.json"
    code = perf.main(
        [
            "--data-dir",
            str(data_dir),
            "--models",
            "mlp",
            "--workers",
            "2",
            "--steps",
            "5",
            "--rounds",
            "2",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    paths = [r["path"] for r in report["rows"]]
    single = f"harness 1 process x {torch.get_num_threads()} threads"
    assert paths == ["textbook DataLoader", single, "harness pool 2 x 1 thread", "matmuls only"]
    assert report["matmul_gflops"] > 0 and len(report["matmul_gflops_rounds"]) == 2
    rate = {r["path"]: r["samples_per_second"] for r in report["rows"]}
    for row in report["rows"]:
        assert row["samples_per_second"] > 0 and row["utilisation"] > 0
        assert len(row["rounds"]) == 2 and row["samples_per_second"] == pytest.approx(sum(row["rounds"]) / 2)
        assert row["vs_single"] == pytest.approx(row["samples_per_second"] / rate[single])
        assert row["vs_textbook"] == pytest.approx(row["samples_per_second"] / rate["textbook DataLoader"])
    assert "harness pool 2 x 1 thread" in capsys.readouterr().out


@pytest.mark.parametrize(
    "bad",
    [
        ["--models", "resnet"],
        ["--workers", "0"],
        ["--workers", "four"],
        ["--rounds", "0"],
        ["--steps", "0"],
    ],
)
def test_bad_input_is_one_line(data_dir, tmp_path, capsys, bad):
    out = tmp_path / "p.json"
    assert perf.main(["--data-dir", str(data_dir), *bad, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and not out.exists()


def test_bad_data_dir_is_one_line(tmp_path, capsys):
    assert perf.main(["--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "p.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
