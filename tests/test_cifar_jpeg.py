"""The CIFAR-10 JPEG copy (dataset ``cifar10_jpeg``): the real archive in the data folder, its decoded-pixel cache,
and one-line errors for a missing, truncated or wrong archive (small archives written here)."""

import hashlib
import io
import tarfile
import urllib.request
from dataclasses import replace
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from bench.config import RunSpec
from bench.harness import data, files, loop
from bench.harness.data import DataError
from bench.report import tables
from bench.run import main as run_main

READER = data.DATASETS["cifar10_jpeg"].reader
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
# Known facts (../shared/data/README.md): decoded with Pillow 13.0, stacked in the order split, class, file name
TRAIN_MEANS = (125.27, 122.93, 113.86)
TRAIN_SHA256, TEST_SHA256 = "bf3aabd52be912da", "5a6aa8185204d80b"


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A private cache folder: nothing is read from or written to the user's."""
    monkeypatch.setenv(files.CACHE_ENV_VAR, str(tmp_path / "cache"))
    return tmp_path / "cache"


def _folder(root: Path) -> Path:
    return root / data.DATASETS["cifar10_jpeg"].folder


def _archive(root: Path, images: dict[str, np.ndarray]) -> Path:
    """A small archive in the mirror's layout: ``images`` maps ``split/class/file.jpg`` to an HxWx3 uint8 array."""
    _folder(root).mkdir(parents=True)
    path = _folder(root) / READER.archive
    with tarfile.open(path, "w:gz") as tar:
        for name, pixels in images.items():
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="JPEG", quality=75)
            info = tarfile.TarInfo(f"CIFAR-10-images-{READER.commit}/{name}")
            info.size = len(buffer.getvalue())
            tar.addfile(info, io.BytesIO(buffer.getvalue()))
    return path


def _small(per_class: int = 2, size: int = 32, skip: str = "") -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        f"{split}/{name}/{i:04d}.jpg": rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        for split in ("train", "test")
        for name in CLASSES
        if f"{split}/{name}" != skip
        for i in range(per_class)
    }


def _one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and "Traceback" not in message
    return message


# --- the real archive ------------------------------------------------------------------------------------------


def test_the_first_images_of_the_real_archive(data_dir):
    (train_x, test_x), (train_y, test_y) = READER.read(_folder(data_dir), limit=15)
    assert train_x.shape == (150, 3, 32, 32) and test_x.shape == (150, 3, 32, 32)
    assert train_x.dtype == test_x.dtype == torch.uint8 and train_y.dtype == torch.int64
    assert train_y.tolist() == [label for label in range(10) for _ in range(15)]  # class folders in CIFAR's order
    assert test_y.tolist() == train_y.tolist()
    assert train_x[0, :, 0, 0].tolist() == [200, 202, 197]  # train/airplane/0000.jpg's first pixel
    with tarfile.open(_folder(data_dir) / READER.archive) as tar:  # the same pixels as Pillow on the file itself
        name = f"CIFAR-10-images-{READER.commit}/test/truck/0014.jpg"
        pixels = np.array(Image.open(io.BytesIO(tar.extractfile(name).read())))
    assert torch.equal(test_x[-1], torch.from_numpy(pixels).permute(2, 0, 1))


@pytest.mark.slow
def test_the_whole_archive_decodes_to_the_known_pixels_once_and_is_cached_outside_the_data_folder(data_dir, cache):
    data._decode.cache_clear()
    splits = data.load("cifar10_jpeg", data_dir)
    assert splits.num_classes == 10 and splits.in_shape == (3, 32, 32)
    assert len(splits.train_x) == 45_000 and len(splits.val_x) == 5_000 and len(splits.test_x) == 10_000
    counts = torch.bincount(torch.cat([splits.train_y, splits.val_y]), minlength=10).tolist()
    assert counts == [5000] * 10 and torch.bincount(splits.test_y).tolist() == [1000] * 10
    cached = list(cache.glob("cifar10_jpeg-*.pt"))
    assert len(cached) == 1 and "pillow" in cached[0].name  # keyed by the archive's digest and the decoder
    blob = torch.load(cached[0], weights_only=True)
    train = blob["train_x"].permute(0, 2, 3, 1).double()
    assert train.mean((0, 1, 2)).tolist() == pytest.approx(TRAIN_MEANS, abs=0.01)
    if Image.__version__.startswith("13.0"):  # the README's decoder; another libjpeg may differ by a grey level
        digest = lambda x: hashlib.sha256(x.permute(0, 2, 3, 1).contiguous().numpy()).hexdigest()
        assert digest(blob["train_x"]).startswith(TRAIN_SHA256) and digest(blob["test_x"]).startswith(TEST_SHA256)
    # a second process reads the cache: the same tensors, nothing decoded
    data._decode.cache_clear()
    again = READER.read(_folder(data_dir))
    assert torch.equal(again[0][0], blob["train_x"]) and torch.equal(again[1][1], blob["test_y"])
    assert data.load("cifar10_jpeg", data_dir).checksum == splits.checksum


def test_a_cache_that_cannot_be_written_is_said_and_the_images_still_load(tmp_path, monkeypatch, capsys):
    _archive(tmp_path, _small(per_class=2))
    monkeypatch.setattr(READER, "counts", {"train": 2, "test": 2})
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv(files.CACHE_ENV_VAR, str(blocked / "cache"))
    (train_x, _), _ = READER.read(_folder(tmp_path))
    assert train_x.shape == (20, 3, 32, 32)
    assert "cannot cache the decoded images" in capsys.readouterr().err


def test_the_cache_is_written_beside_nothing_in_the_data_folder(tmp_path, cache, monkeypatch):
    _archive(tmp_path, _small(per_class=2))
    monkeypatch.setattr(READER, "counts", {"train": 2, "test": 2})
    before = sorted(tmp_path.joinpath("CIFAR-10-images").iterdir())
    first = READER.read(_folder(tmp_path))
    assert sorted(tmp_path.joinpath("CIFAR-10-images").iterdir()) == before
    assert len(list(cache.glob("*.pt"))) == 1 and not list(cache.glob("*.part"))
    second = READER.read(_folder(tmp_path))
    assert all(torch.equal(a, b) for a, b in zip(first[0] + first[1], second[0] + second[1], strict=True))
    (cached,) = cache.glob("*.pt")
    cached.write_bytes(cached.read_bytes()[:1000])  # a damaged cache file is decoded again and replaced
    third = READER.read(_folder(tmp_path))
    assert all(torch.equal(a, b) for a, b in zip(first[0] + first[1], third[0] + third[1], strict=True))
    assert torch.equal(torch.load(cached, weights_only=True)["train_x"], first[0][0])


# --- a missing, truncated or wrong archive: one line, exit 2 ---------------------------------------------------


def test_a_missing_archive_names_the_file_and_where_to_get_it(tmp_path):
    with pytest.raises(DataError) as excinfo:
        data.load("cifar10_jpeg", tmp_path)
    message = _one_line(excinfo)
    assert str(_folder(tmp_path)) in message and READER.archive in message and READER.url in message


def test_a_failed_download_is_one_line_and_leaves_no_file(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise URLError("no network in tests")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(DataError) as excinfo:
        data.load("cifar10_jpeg", tmp_path / "new", download=True)
    message = _one_line(excinfo)
    assert READER.url in message and "failed" in message and "no network" in message
    assert list(_folder(tmp_path / "new").iterdir()) == []  # neither the archive nor a partial file


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (_small(skip="train/cat"), "no images in train/cat: the archive is incomplete"),
        ({**_small(), "train/dog/0007.jpg": np.zeros((16, 16, 3), np.uint8)}, "0007.jpg is 16x16 RGB, not 32x32 RGB"),
        ({**_small(), "train/lion/0000.jpg": np.zeros((32, 32, 3), np.uint8)}, "unexpected folder train/lion"),
        (_small(), "2 images in train/airplane, expected 5,000"),
    ],
    ids=["missing-class", "wrong-size", "unknown-class", "too-few"],
)
def test_a_wrong_archive_is_one_line(tmp_path, cache, images, message):
    path = _archive(tmp_path, images)
    with pytest.raises(DataError) as excinfo:
        READER.read(_folder(tmp_path))
    assert message in _one_line(excinfo) and str(path) in str(excinfo.value)
    assert not cache.exists()  # nothing cached from a bad archive


def test_a_truncated_or_corrupt_archive_is_one_line(tmp_path, data_dir, cache):
    _folder(tmp_path).mkdir(parents=True)
    path = _folder(tmp_path) / READER.archive
    with open(data_dir / "CIFAR-10-images" / READER.archive, "rb") as f:
        path.write_bytes(f.read(200_000))  # the first 1 % of the real archive
    with pytest.raises(DataError, match="is truncated or corrupt") as excinfo:
        READER.read(_folder(tmp_path))
    _one_line(excinfo)
    path.write_bytes(b"not a gzip file" * 100)
    with pytest.raises(DataError, match="is truncated or corrupt"):
        READER.read(_folder(tmp_path))


def test_bad_archives_through_bench_run_exit_2_with_one_line_and_no_store(tmp_path, cache, capsys):
    _archive(tmp_path, _small(skip="test/ship"))
    (tmp_path / "empty").mkdir()
    store = tmp_path / "store.sqlite"
    for root, expected in ((tmp_path, "no images in test/ship"), (tmp_path / "empty", "not found")):
        data._decode.cache_clear()
        args = ["--dataset", "cifar10_jpeg", "--model", "cnn", "--data-dir", str(root), "--store", str(store)]
        assert run_main([*args, "--device", "cpu", "--quiet"]) == 2
        lines = capsys.readouterr().err.strip().splitlines()  # a progress line may come first: decoding started
        errors = [line for line in lines if line.startswith("error:")]
        assert len(errors) == 1 and errors[0] == lines[-1] and expected in errors[0], lines
        assert not store.exists()


# --- runs ------------------------------------------------------------------------------------------------------


def test_a_run_records_the_checksum_of_its_decoded_data_and_keys_differ_from_cifar10(tmp_path, cache, monkeypatch):
    _archive(tmp_path, _small(per_class=30))
    monkeypatch.setattr(READER, "counts", {"train": 30, "test": 30})
    data._decode.cache_clear()
    spec = RunSpec(dataset="cifar10_jpeg", model="cnn", channels=(2, 4), hidden=(8,), epochs=1, augment=True)
    record = loop.run(spec, tmp_path).record
    assert record["status"] == "ok" and record["dataset"] == "cifar10_jpeg"
    assert record["data_checksum"] == data.load("cifar10_jpeg", tmp_path).checksum
    assert len(record["data_checksum"]) == 16
    data._decode.cache_clear()
    assert spec.key != replace(spec, dataset="cifar10").key


def test_augmentation_is_the_cifar_crop_and_flip():
    x = torch.rand(8, 3, 32, 32)
    crop = data.augment(x, "cifar10_jpeg", torch.Generator().manual_seed(3))
    assert torch.equal(crop, data.augment(x, "cifar10", torch.Generator().manual_seed(3)))


def test_the_report_header_says_where_machines_decoded_differently():
    runs = pd.DataFrame(
        {
            "dataset": ["cifar10_jpeg"] * 3 + ["mnist"],
            "data_checksum": ["aaaa", "aaaa", "bbbb", "cccc"],
            "device_name": ["AMD EPYC", "AMD EPYC", "Intel Xeon", "Intel Xeon"],
        }
    )
    text = tables.data_checksums(runs)
    assert "**cifar10_jpeg was decoded differently on different machines**" in text
    assert "`aaaa` in 2 runs on `AMD EPYC`" in text and "`bbbb` in 1 runs on `Intel Xeon`" in text
    assert "mnist `cccc`" in text
    assert "differently" not in tables.data_checksums(runs[runs["data_checksum"] != "bbbb"])
    assert tables.data_checksums(runs.drop(columns="data_checksum")) == ""


@pytest.mark.cuda
def test_a_cifar10_jpeg_run_trains_on_cuda_as_on_the_cpu(tmp_path, cache, monkeypatch):
    _archive(tmp_path, _small(per_class=30))
    monkeypatch.setattr(READER, "counts", {"train": 30, "test": 30})
    data._decode.cache_clear()
    spec = RunSpec(dataset="cifar10_jpeg", model="cnn", channels=(4, 8), hidden=(16,), epochs=2, augment=True)
    cpu, cuda = loop.run(spec, tmp_path).record, loop.run(replace(spec, device="cuda"), tmp_path).record
    assert cuda["status"] == "ok" and cuda["data_checksum"] == cpu["data_checksum"]
    assert cuda["val_loss"] == pytest.approx(cpu["val_loss"], abs=0.05)
    data._decode.cache_clear()
