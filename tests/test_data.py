"""bench.harness.data on real MNIST / Fashion-MNIST and on small CIFAR fixtures in the real on-disk format."""

import math
import pickle
import shutil
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
import torch.nn.functional as F
import torchvision

from bench.harness import data, files
from bench.harness.data import DataError

MNIST_FIRST_LABELS = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
IDX_FILES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


@pytest.fixture(scope="module")
def mnist(data_dir):
    return data.load("mnist", data_dir)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and "Traceback" not in message
    return message


# --- real data -------------------------------------------------------------------------------------------------


def test_mnist_shapes_dtypes_and_statistics(mnist):
    assert mnist.name == "mnist" and mnist.num_classes == 10 and mnist.in_shape == (1, 28, 28)
    assert mnist.train_x.shape == (55_000, 1, 28, 28) and mnist.val_x.shape == (5_000, 1, 28, 28)
    assert mnist.test_x.shape == (10_000, 1, 28, 28)
    for x, y in ((mnist.train_x, mnist.train_y), (mnist.val_x, mnist.val_y), (mnist.test_x, mnist.test_y)):
        assert x.dtype == torch.uint8 and y.dtype == torch.int64 and len(x) == len(y) and x.device.type == "cpu"
    assert mnist.mean.dtype == mnist.std.dtype == torch.float32 and mnist.mean.shape == mnist.std.shape == (1,)
    assert mnist.mean.item() == pytest.approx(0.1307, abs=0.002)
    assert mnist.std.item() == pytest.approx(0.3081, abs=0.002)
    # computed from the training part only, exactly: compare with a direct float64 computation over train_x
    pixels = mnist.train_x.flatten().split(5_000_000)
    n = mnist.train_x.numel()
    mean = sum(c.double().sum() for c in pixels) / n / 255
    std = (sum((c.double() / 255 - mean).pow(2).sum() for c in pixels) / n).sqrt()
    assert mnist.mean.item() == pytest.approx(mean.item(), abs=1e-6)
    assert mnist.std.item() == pytest.approx(std.item(), abs=1e-6)


def test_mnist_known_labels_and_class_counts(mnist):
    train_idx, val_idx = data.split_indices(60_000)
    labels = torch.empty(60_000, dtype=torch.int64)
    labels[train_idx], labels[val_idx] = mnist.train_y, mnist.val_y  # back to the order of the file
    assert labels[:10].tolist() == MNIST_FIRST_LABELS
    assert torch.bincount(labels, minlength=10).tolist() == MNIST_TRAIN_COUNTS
    assert torch.bincount(mnist.test_y, minlength=10).tolist() == MNIST_TEST_COUNTS


def test_validation_split_is_fixed_disjoint_and_taken_from_the_training_file(mnist, data_dir):
    train_idx, val_idx = data.split_indices(60_000)
    assert len(val_idx) == data.VAL_SIZE == 5000 and len(train_idx) == 55_000
    assert torch.equal(torch.cat([train_idx, val_idx]).sort().values, torch.arange(60_000))  # disjoint, complete
    original = torchvision.datasets.MNIST(data_dir, train=True)
    assert torch.equal(mnist.train_x[:, 0], original.data[train_idx])
    assert torch.equal(mnist.val_x[:, 0], original.data[val_idx])
    assert torch.equal(mnist.val_y, original.targets[val_idx])

    data._decode.cache_clear()  # decode again from the files, with a different global RNG state
    torch.manual_seed(12345)
    again = data.load("mnist", data_dir)
    assert again.val_x.data_ptr() != mnist.val_x.data_ptr()
    assert torch.equal(again.val_x, mnist.val_x) and torch.equal(again.val_y, mnist.val_y)
    assert torch.equal(again.train_y, mnist.train_y)


def test_a_training_subset_is_fixed_the_same_in_every_run_and_leaves_the_rest_alone(mnist):
    small = data.subset(mnist, 1000)
    assert small.train_x.shape == (1000, 1, 28, 28) and len(small.train_y) == 1000
    again = data.subset(mnist, 1000)
    assert torch.equal(small.train_x, again.train_x) and torch.equal(small.train_y, again.train_y)
    rows = {bytes(x.numpy()) for x in mnist.train_x}  # every image of the subset is a training image ...
    assert all(bytes(x.numpy()) in rows for x in small.train_x[:50])
    assert len(set(small.train_y.tolist())) == 10  # ... drawn at random, not the first 1,000 in file order
    assert not torch.equal(small.train_x, mnist.train_x[:1000])
    for name in ("val_x", "val_y", "test_x", "test_y", "mean", "std"):
        assert getattr(small, name) is getattr(mnist, name)
    with pytest.raises(data.DataError, match="train_size 60000 is more than its 55000 training images"):
        data.subset(mnist, 60000)


def test_decoded_once_per_process(data_dir):
    first = data.load("mnist", data_dir)
    hits = data._decode.cache_info().hits
    second = data.load("MNIST", str(data_dir) + "/")  # same dataset and folder, spelled differently
    assert data._decode.cache_info().hits == hits + 1
    assert second.train_x.data_ptr() == first.train_x.data_ptr()


def test_fashion_mnist_class_counts(data_dir):
    fashion = data.load("fashion_mnist", data_dir)
    assert fashion.train_x.shape == (55_000, 1, 28, 28) and fashion.test_x.shape == (10_000, 1, 28, 28)
    assert torch.bincount(torch.cat([fashion.train_y, fashion.val_y])).tolist() == [6000] * 10
    assert torch.bincount(fashion.test_y).tolist() == [1000] * 10
    assert 0.2 < fashion.mean.item() < 0.4 and abs(fashion.mean.item() - 0.1307) > 0.05  # not MNIST's statistics


def test_to_float_normalises_with_the_training_statistics(mnist):
    x = data.to_float(mnist.train_x[:10_000], mnist)
    assert x.dtype == torch.float32 and x.shape == (10_000, 1, 28, 28)
    assert abs(x.mean().item()) < 0.02 and x.std().item() == pytest.approx(1.0, abs=0.02)
    assert x.min().item() == pytest.approx(-mnist.mean.item() / mnist.std.item(), rel=1e-5)  # a black pixel


def test_batch_without_augmentation_is_to_float_of_the_indexed_images(mnist):
    idx = torch.tensor([5, 0, 54_999, 17])
    x, y = data.batch(mnist, idx, False, None)
    assert torch.equal(x, data.to_float(mnist.train_x[idx], mnist)) and torch.equal(y, mnist.train_y[idx])


def test_batch_with_augmentation_is_augment_then_normalise(mnist):
    idx = torch.arange(64)
    x, y = data.batch(mnist, idx, True, _gen(3))
    x01 = data.augment(mnist.train_x[idx].float() / 255, "mnist", _gen(3))
    expected = (x01 - mnist.mean[:, None, None]) / mnist.std[:, None, None]
    torch.testing.assert_close(x, expected, rtol=0, atol=1e-6)
    assert torch.equal(y, mnist.train_y[idx])
    with pytest.raises(ValueError, match="Generator"):
        data.batch(mnist, idx, True, None)


# --- augmentation ------------------------------------------------------------------------------------------------


def _centre_of_mass(x: torch.Tensor) -> torch.Tensor:
    w = x[:, 0]
    rows = torch.arange(w.shape[1], dtype=w.dtype)
    mass = w.sum((1, 2))
    return torch.stack([(w.sum(2) * rows).sum(1) / mass, (w.sum(1) * rows).sum(1) / mass], 1)


def _orientation_degrees(x: torch.Tensor) -> torch.Tensor:
    """Angle of each image's principal axis, from its second central moments."""
    w = x[:, 0]
    r = torch.arange(w.shape[1], dtype=w.dtype)
    rr, cc = torch.meshgrid(r, r, indexing="ij")
    com = _centre_of_mass(x)
    dr, dc = rr - com[:, 0, None, None], cc - com[:, 1, None, None]
    mu20, mu02, mu11 = (w * dc * dc).sum((1, 2)), (w * dr * dr).sum((1, 2)), (w * dr * dc).sum((1, 2))
    return torch.rad2deg(0.5 * torch.atan2(2 * mu11, mu20 - mu02))


def test_digit_augmentation_is_deterministic_per_generator_and_never_uses_the_global_rng(mnist):
    x = mnist.train_x[:128].float() / 255
    torch.manual_seed(0)
    state = torch.get_rng_state()
    a = data.augment(x, "mnist", _gen(1))
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(99)
    assert torch.equal(data.augment(x, "mnist", _gen(1)), a)
    assert not torch.equal(data.augment(x, "mnist", _gen(2)), a)
    gen = _gen(1)
    data.augment(x, "mnist", gen)
    assert not torch.equal(data.augment(x, "mnist", gen), a)  # the generator advances: the next batch differs


def test_digit_augmentation_shifts_up_to_two_pixels_and_rotates_up_to_ten_degrees(mnist):
    x = mnist.train_x[:512].float() / 255
    out = data.augment(x, "fashion_mnist", _gen(5))
    assert out.shape == x.shape and out.dtype == torch.float32
    assert out.min().item() >= 0 and out.max().item() <= 1 + 1e-6
    moved = (out - x).abs().flatten(1).amax(1) > 0.1
    assert moved.float().mean().item() > 0.95  # not the identity
    mass_ratio = out.sum((1, 2, 3)) / x.sum((1, 2, 3))
    assert mass_ratio.min().item() > 0.9 and mass_ratio.max().item() < 1.1  # digits stay in the frame, intact
    shift = (_centre_of_mass(out) - _centre_of_mass(x)).norm(dim=1)
    assert shift.max().item() < 2 * math.sqrt(2) + 0.7 and shift.mean().item() > 0.7

    ones = mnist.train_x[mnist.train_y == 1][:300].float() / 255  # elongated: the principal axis is well defined
    turn = _orientation_degrees(data.augment(ones, "mnist", _gen(6))) - _orientation_degrees(ones)
    turn = (turn + 90) % 180 - 90
    assert turn.abs().max().item() < 12 and 4 < turn.std().item() < 7  # uniform in [-10, 10] has std 5.8


def test_cifar_crop_and_flip_equals_padding_then_slicing():
    x = torch.rand(1200, 3, 32, 32, generator=_gen(0))
    out = data.augment(x, "cifar10", _gen(7))
    assert torch.equal(data.augment(x, "cifar10", _gen(7)), out)
    assert not torch.equal(data.augment(x, "cifar10", _gen(8)), out)
    padded = F.pad(x, (4, 4, 4, 4))
    matches = []
    for dy in range(-4, 5):
        for dx in range(-4, 5):
            crop = padded[:, :, 4 + dy : 36 + dy, 4 + dx : 36 + dx]
            for flip in (False, True):
                reference = crop.flip(-1) if flip else crop
                matches.append((out == reference).flatten(1).all(1))
    matches = torch.stack(matches)  # (81 shifts x 2 flips, samples)
    assert (matches.sum(0) == 1).all()  # every sample is exactly one padded crop, optionally mirrored
    assert matches.any(1).all()  # and every one of the 162 crops and flips occurs
    flipped = matches[1::2].any(0).float().mean().item()
    assert 0.45 < flipped < 0.55


def test_augment_rejects_an_unknown_dataset():
    with pytest.raises(DataError, match="cifar10"):
        data.augment(torch.zeros(1, 3, 32, 32), "cifar", _gen(0))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_everything_stays_on_the_device(data_dir):
    splits = data.load("mnist", data_dir, device="cuda")
    assert splits.train_x.is_cuda and splits.mean.is_cuda
    idx = torch.arange(256, device="cuda")
    a, y = data.batch(splits, idx, True, torch.Generator(device="cuda").manual_seed(0))
    b, _ = data.batch(splits, idx, True, torch.Generator(device="cuda").manual_seed(0))
    assert a.is_cuda and y.is_cuda and torch.equal(a, b)


# --- CIFAR fixtures ----------------------------------------------------------------------------------------------


def test_cifar10_fixture_loads_through_torchvision_in_nchw(cifar_dir):
    splits = data.load("cifar10", cifar_dir)
    assert splits.num_classes == 10 and splits.in_shape == (3, 32, 32)
    assert splits.train_x.shape == (180, 3, 32, 32) and splits.val_x.shape == (20, 3, 32, 32)  # 10 % of 200
    assert splits.test_x.shape == (40, 3, 32, 32) and splits.train_x.is_contiguous()
    with (cifar_dir / "cifar-10-batches-py" / "test_batch").open("rb") as f:
        raw = pickle.load(f, encoding="latin1")
    assert torch.equal(splits.test_x, torch.from_numpy(raw["data"]).reshape(40, 3, 32, 32))  # red plane first
    assert splits.test_y.tolist() == raw["labels"]
    train01 = splits.train_x.double() / 255
    torch.testing.assert_close(splits.mean.double(), train01.mean((0, 2, 3)), rtol=0, atol=1e-6)
    torch.testing.assert_close(splits.std.double(), train01.std((0, 2, 3), correction=0), rtol=0, atol=1e-6)
    with_val = torch.cat([splits.train_x, splits.val_x]).double().mean((0, 2, 3)) / 255
    assert (with_val - splits.mean.double()).abs().max() > 1e-4  # the validation images are not in the statistics


def test_cifar100_fixture_loads_fine_labels(cifar100_dir):
    splits = data.load("cifar100", cifar100_dir)
    assert splits.num_classes == 100 and splits.train_x.shape == (180, 3, 32, 32) and splits.test_x.shape[0] == 40
    with (cifar100_dir / "cifar-100-python" / "test").open("rb") as f:
        assert splits.test_y.tolist() == pickle.load(f, encoding="latin1")["fine_labels"]


def _damage_garbage(path: Path) -> None:
    path.write_bytes(b"\x00 not a pickle" * 100)


def _damage_truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _damage_shape(path: Path) -> None:
    with path.open("rb") as f:
        entry = pickle.load(f, encoding="latin1")
    entry["data"] = entry["data"][:, :3000]
    with path.open("wb") as f:
        pickle.dump(entry, f, protocol=2)


@pytest.mark.parametrize("damage", [_damage_truncate, _damage_garbage, _damage_shape])
def test_a_damaged_cifar_batch_is_named(cifar_dir, tmp_path, damage):
    shutil.copytree(cifar_dir / "cifar-10-batches-py", tmp_path / "cifar-10-batches-py")
    damage(tmp_path / "cifar-10-batches-py" / "data_batch_3")
    with pytest.raises(DataError) as excinfo:
        data.load("cifar10", tmp_path)
    assert str(tmp_path / "cifar-10-batches-py" / "data_batch_3") in _one_line_error(excinfo)


# --- errors ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "suggestion"), [("minst", "mnist"), ("cifar", "cifar10"), ("fashion", "fashion_mnist")]
)
def test_unknown_dataset_name_suggests_the_closest(name, suggestion, data_dir):
    with pytest.raises(DataError) as excinfo:
        data.load(name, data_dir)
    message = _one_line_error(excinfo)
    assert f"did you mean {suggestion}" in message and "cifar100" in message  # and lists the valid names


def test_a_missing_data_folder_is_named(tmp_path):
    with pytest.raises(DataError) as excinfo:
        data.load("mnist", tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in _one_line_error(excinfo)


@pytest.mark.parametrize(
    ("name", "folder", "file"),
    [
        ("mnist", "MNIST/raw", "train-images-idx3-ubyte"),
        ("fashion_mnist", "FashionMNIST/raw", "t10k-labels-idx1-ubyte"),
        ("cifar10", "cifar-10-batches-py", "data_batch_1"),
    ],
)
def test_missing_files_name_the_folder_the_files_and_the_fix(tmp_path, name, folder, file):
    with pytest.raises(DataError) as excinfo:
        data.load(name, tmp_path)
    message = _one_line_error(excinfo)
    assert str(tmp_path / folder) in message and file in message and "--download" in message


def test_a_failed_download_is_one_line_naming_folder_and_files(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise URLError("no network in tests")

    monkeypatch.setattr(torchvision.datasets.mnist, "download_and_extract_archive", offline)
    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", offline)
    for name, folder, file in (
        ("mnist", "MNIST/raw", "train-images-idx3-ubyte"),
        ("cifar10", "cifar-10-batches-py", "test_batch"),
    ):
        with pytest.raises(DataError) as excinfo:
            data.load(name, tmp_path / "new", download=True)
        message = _one_line_error(excinfo)
        assert "download" in message and "failed" in message and str(tmp_path / "new" / folder) in message
        assert file in message
    assert (tmp_path / "new").is_dir()  # downloading creates the folder it was given


def _mnist_copy(data_dir: Path, tmp_path: Path) -> Path:
    """tmp_path/MNIST/raw with links to the real files, to replace one of them."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in IDX_FILES:
        (raw / name).symlink_to(data_dir / "MNIST" / "raw" / name)
    return raw


@pytest.mark.parametrize(("file", "keep"), [(f, 0.5) for f in IDX_FILES] + [("train-images-idx3-ubyte", 10)])
def test_a_truncated_idx_file_is_named(data_dir, tmp_path, file, keep):
    raw = _mnist_copy(data_dir, tmp_path)
    content = (raw / file).read_bytes()
    (raw / file).unlink()
    (raw / file).write_bytes(content[: int(len(content) * keep) if keep < 1 else keep])
    with pytest.raises(DataError) as excinfo:
        data.load("mnist", tmp_path)
    message = _one_line_error(excinfo)
    assert str(raw / file) in message and "truncated" in message


@pytest.mark.parametrize(
    ("file", "replacement", "words"),
    [
        ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "not an IDX image file"),
        ("t10k-labels-idx1-ubyte", "train-labels-idx1-ubyte", "60000 labels but"),
    ],
)
def test_a_wrong_idx_file_is_named(data_dir, tmp_path, file, replacement, words):
    raw = _mnist_copy(data_dir, tmp_path)
    (raw / file).unlink()
    (raw / file).symlink_to(data_dir / "MNIST" / "raw" / replacement)
    with pytest.raises(DataError) as excinfo:
        data.load("mnist", tmp_path)
    message = _one_line_error(excinfo)
    assert str(raw / file) in message and words in message


def test_data_folder_comes_from_argument_then_environment_then_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("ACTBENCH_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert files.default_data_dir() == tmp_path / "cache" / "actbench" / "data"
    assert files.resolve_data_dir(None) == (tmp_path / "cache" / "actbench" / "data").resolve()
    assert (tmp_path / "cache" / "actbench" / "data").is_dir()  # the default cache folder is created

    monkeypatch.setenv("ACTBENCH_DATA", str(tmp_path / "env"))
    assert files.default_data_dir() == tmp_path / "env"
    with pytest.raises(DataError) as excinfo:  # a folder that was asked for is not created behind the user's back
        files.resolve_data_dir(None)
    assert str(tmp_path / "env") in _one_line_error(excinfo) and "ACTBENCH_DATA" in str(excinfo.value)
    (tmp_path / "env").mkdir()
    assert files.resolve_data_dir(None) == (tmp_path / "env").resolve()
    assert data.resolve_data_dir(tmp_path / "cache") == (tmp_path / "cache").resolve()  # the argument wins
    assert data.resolve_data_dir(tmp_path / "made", create=True) == (tmp_path / "made").resolve()
