"""Datasets decoded once into uint8 tensors on the run's device, and batched augmentation on that device.

The files are read by torchvision's own dataset classes (its usual on-disk layout, ``download=False`` unless
asked), except the CIFAR-10 JPEG copy (``cifar10_jpeg``), one archive of JPEG files read by
:mod:`bench.harness.cifar_jpeg`; :mod:`bench.harness.files` says where data lives. This module adds a fixed
validation split, the training part's channel statistics, a checksum of the decoded data, one-line errors for
missing or damaged files, and augmentation of a whole batch at once drawn from one ``torch.Generator``: the same
generator state gives the same draws for every activation, which keeps runs paired. As in airbench, the whole set
lives on the device as one tensor: no DataLoader, no per-sample Python.
"""

import contextlib
import dataclasses
import functools
import hashlib
import math
import pickle
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision import datasets

from activations.errors import choose
from bench.harness.cifar_jpeg import JpegArchive
from bench.harness.files import ENV_VAR, DataError, reason, resolve_data_dir
from bench.tasks import IMAGE_CLASSES

VAL_SIZE = 5000  # validation images carved from the training set (10 % instead when the set has <= VAL_SIZE images)
SPLIT_SEED = 20240611  # seeds the validation split only: the same images for every run, seed and activation
SUBSET_SEED = SPLIT_SEED + 1  # seeds the training subset of a run with train_size: the same images in every run


class _FilesExist:
    """Check that CIFAR files exist instead of their md5, so a small fixture in the real format loads too."""

    def _check_integrity(self) -> bool:
        folder = Path(self.root, self.base_folder)
        return all((folder / name).is_file() for name, _ in self.train_list + self.test_list)


class _CIFAR10(_FilesExist, datasets.CIFAR10):
    meta = {**datasets.CIFAR10.meta, "md5": None}  # no md5: torchvision then checks only that the file exists


class _CIFAR100(_FilesExist, datasets.CIFAR100):
    meta = {**datasets.CIFAR100.meta, "md5": None}


@dataclass(frozen=True)
class _Source:
    reader: type | JpegArchive  # the torchvision dataset class that decodes the files, or a reader of our own
    folder: str  # where its files are, relative to the data directory
    files: tuple[str, ...]


_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_CIFAR10_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")
DATASETS = {  # name -> where its files are and which torchvision class reads them; classes: tasks.IMAGE_CLASSES
    "mnist": _Source(datasets.MNIST, "MNIST/raw", _IDX_FILES),
    "fashion_mnist": _Source(datasets.FashionMNIST, "FashionMNIST/raw", _IDX_FILES),
    "cifar10": _Source(_CIFAR10, "cifar-10-batches-py", _CIFAR10_FILES),
    "cifar100": _Source(_CIFAR100, "cifar-100-python", ("train", "test", "meta")),
    "cifar10_jpeg": _Source(JpegArchive(), "CIFAR-10-images", (JpegArchive.archive,)),
}
_IDX_MAGIC = {1: 2049, 3: 2051}  # unsigned-byte IDX files with 1 (labels) or 3 (images) dimensions


@dataclass(frozen=True, eq=False)  # eq=False: comparing tensors field by field has no single truth value
class Splits:
    """One dataset on one device: uint8 images (N, C, H, W), int64 labels, and the training part's statistics."""

    name: str
    train_x: torch.Tensor  # training part only: the validation images are removed
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    mean: torch.Tensor  # float32 (C,), of train_x in [0, 1] scale
    std: torch.Tensor
    num_classes: int
    checksum: str  # of the decoded images and labels (16 hex digits of a SHA-256): equal where two decoders agree

    @property
    def in_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        c, h, w = self.train_x.shape[1:]
        return c, h, w


def _canonical(name: str) -> str:
    return choose("dataset", str(name).strip().lower().replace("-", "_"), DATASETS, DataError)


def split_indices(n_train: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, validation) indices into a training set of ``n_train`` images, each sorted; fixed by SPLIT_SEED.

    The validation part is VAL_SIZE images, or 10 % (at least one) of a set with at most VAL_SIZE images."""
    n_val = VAL_SIZE if n_train > VAL_SIZE else max(1, n_train // 10)
    perm = torch.randperm(n_train, generator=torch.Generator().manual_seed(SPLIT_SEED))
    return perm[n_val:].sort().values, perm[:n_val].sort().values


def subset(splits: Splits, n: int) -> Splits:
    """``splits`` training on ``n`` of its training images: a fixed random subset (SUBSET_SEED), the same for every
    run, seed and activation, in the training part's order; validation, test and the normalisation statistics (of the
    whole training part) unchanged. An error where the training part has fewer than ``n`` images."""
    total = len(splits.train_x)
    if n > total:
        raise DataError(f"{splits.name}: train_size {n} is more than its {total} training images")
    pick = torch.randperm(total, generator=torch.Generator().manual_seed(SUBSET_SEED))[:n].sort().values
    pick = pick.to(splits.train_x.device)
    return dataclasses.replace(splits, train_x=splits.train_x[pick], train_y=splits.train_y[pick])


def _idx_shape(path: Path, ndim: int) -> list[int]:
    """The shape in an IDX file's header, after checking its magic number and that the file size matches it."""
    refetch = f"delete it and run with --download, or fetch it again into {path.parent}"
    header_size = 4 + 4 * ndim
    with path.open("rb") as f:
        header = f.read(header_size)
    size = path.stat().st_size
    if len(header) < header_size:
        raise DataError(f"{path} is truncated ({size} bytes, shorter than its {header_size}-byte header): {refetch}")
    magic, *shape = struct.unpack(f">{ndim + 1}I", header)
    if magic != _IDX_MAGIC[ndim]:
        kind = "image" if ndim == 3 else "label"
        raise DataError(
            f"{path} is not an IDX {kind} file (magic number {magic}, expected {_IDX_MAGIC[ndim]}): {refetch}"
        )
    expected = header_size + math.prod(shape)
    if size != expected:
        raise DataError(
            f"{path} is truncated or corrupt: {size} bytes, but its header ({' x '.join(map(str, shape))}) "
            f"needs {expected}: {refetch}"
        )
    return shape


def _check_idx_files(folder: Path) -> None:
    for split in ("train", "t10k"):
        images = _idx_shape(folder / f"{split}-images-idx3-ubyte", 3)
        labels = _idx_shape(folder / f"{split}-labels-idx1-ubyte", 1)
        if images[0] != labels[0]:
            raise DataError(
                f"{folder / f'{split}-labels-idx1-ubyte'} holds {labels[0]} labels but "
                f"{split}-images-idx3-ubyte holds {images[0]} images: fetch both files again into {folder}"
            )


def _bad_cifar_file(folder: Path, files: tuple[str, ...]) -> str | None:
    """The first file that is not a well-formed CIFAR pickle; only called once torchvision failed to load them."""
    for name in files:
        try:
            with (folder / name).open("rb") as f:
                entry = pickle.load(f, encoding="latin1")
            if "data" not in entry:  # the metadata file
                continue
            labels = entry["labels"] if "labels" in entry else entry["fine_labels"]
            data = entry["data"]
        except Exception:
            return name
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.shape != (len(labels), 3072):
            return name
    return None


def _read(key: str, root: Path) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Training and test images (N, C, H, W) uint8 and labels int64, decoded by torchvision."""
    source = DATASETS[key]
    folder = root / source.folder
    if isinstance(source.reader, JpegArchive):
        return source.reader.read(folder)
    if source.reader in (datasets.MNIST, datasets.FashionMNIST):
        _check_idx_files(folder)
        parts = [source.reader(root, train=train) for train in (True, False)]
        return [p.data.unsqueeze(1) for p in parts], [p.targets for p in parts]
    try:
        parts = [source.reader(root, train=train) for train in (True, False)]
        xs = [torch.from_numpy(p.data).permute(0, 3, 1, 2).contiguous() for p in parts]  # NHWC -> NCHW
        ys = [torch.tensor(p.targets, dtype=torch.int64) for p in parts]
        if any(len(x) != len(y) for x, y in zip(xs, ys, strict=True)):
            raise ValueError("the numbers of images and labels differ")
    except Exception as exc:
        bad = _bad_cifar_file(folder, source.files)
        raise DataError(
            f"{folder / bad if bad else folder} is truncated or corrupt ({reason(exc)}): "
            f"delete {folder} and run with --download, or fetch the files again"
        ) from exc
    return xs, ys


def _channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std in [0, 1] scale, exact from a 256-bin histogram (no float copy of the whole set)."""
    counts = torch.stack([torch.bincount(x[:, c].flatten(), minlength=256) for c in range(x.shape[1])]).double()
    p = counts / counts.sum(1, keepdim=True)
    levels = torch.arange(256, dtype=torch.float64) / 255
    mean = p @ levels
    std = (p * (levels - mean[:, None]) ** 2).sum(1).sqrt()
    return mean.float(), std.float()


@functools.cache
def _decode(key: str, root: str) -> tuple[dict[str, torch.Tensor], str]:
    """The split CPU tensors of one dataset, decoded once per process, and the checksum of the decoded images and
    labels; callers must not change the tensors in place."""
    (train_x, test_x), (train_y, test_y) = _read(key, Path(root))
    num_classes = IMAGE_CLASSES[key]
    for split, y in (("training", train_y), ("test", test_y)):
        if len(y) and not 0 <= int(y.min()) <= int(y.max()) < num_classes:
            raise DataError(
                f"{Path(root) / DATASETS[key].folder}: {split} labels outside 0..{num_classes - 1}, "
                "the files are corrupt: fetch them again"
            )
    train_idx, val_idx = split_indices(len(train_x))
    tensors = {
        "train_x": train_x[train_idx],
        "train_y": train_y[train_idx],
        "val_x": train_x[val_idx],
        "val_y": train_y[val_idx],
        "test_x": test_x,
        "test_y": test_y,
    }
    tensors["mean"], tensors["std"] = _channel_stats(tensors["train_x"])
    digest = hashlib.sha256()
    for tensor in (train_x, train_y, test_x, test_y):
        digest.update(tensor.contiguous().numpy().tobytes())
    return tensors, digest.hexdigest()[:16]


def _download(key: str, root: Path, folder: Path) -> None:
    source = DATASETS[key]
    if isinstance(source.reader, JpegArchive):
        return source.reader.download(folder)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # torchvision prints progress; stdout carries --json records
            source.reader(root, train=False, download=True)
    except Exception as exc:
        raise DataError(
            f"downloading {key} into {folder} failed ({reason(exc)}): check the internet connection, "
            f"or fetch {', '.join(source.files)} into {folder} yourself, or set ${ENV_VAR} to a folder that has them"
        ) from exc


def load(
    name: str, data_dir: str | Path | None = None, device: str | torch.device = "cpu", download: bool = False
) -> Splits:
    """Load dataset ``name`` (one of DATASETS) from the data folder onto ``device``, downloading only if asked."""
    key = _canonical(name)
    source = DATASETS[key]
    root = resolve_data_dir(data_dir, create=download)
    folder = root / source.folder

    def missing() -> list[str]:
        return [f for f in source.files if not (folder / f).is_file()]

    if download and missing():
        _download(key, root, folder)
    if absent := missing():
        fix = "the download did not write them" if download else "run with --download (needs internet)"
        if isinstance(source.reader, JpegArchive):
            fix += f", or fetch {source.reader.url} as {folder / source.reader.archive}"
        raise DataError(
            f"{key}: {', '.join(absent)} not found in {folder}: {fix}, or fetch the files into {folder}, "
            f"or pass --data-dir / set ${ENV_VAR} to a folder that has them"
        )
    tensors, checksum = _decode(key, str(root))
    on_device = {k: v.to(device) for k, v in tensors.items()}
    return Splits(name=key, num_classes=IMAGE_CLASSES[key], checksum=checksum, **on_device)


def _normalise(x01: torch.Tensor, splits: Splits) -> torch.Tensor:
    return x01.sub_(splits.mean[:, None, None]).div_(splits.std[:, None, None])


def to_float(x: torch.Tensor, splits: Splits) -> torch.Tensor:
    """A uint8 batch as float32 normalised with the training part's channel mean and std, on its device."""
    return _normalise(x.float() / 255, splits)  # not in place: x may already be float


def _warp(x: torch.Tensor, theta: torch.Tensor, mode: str) -> torch.Tensor:
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)


def _shift_rotate(
    x: torch.Tensor, generator: torch.Generator, max_px: float = 2.0, max_deg: float = 10.0
) -> torch.Tensor:
    """Per-sample shift up to ``max_px`` pixels in x and y and rotation up to ``max_deg`` degrees (bilinear)."""
    n, _, h, w = x.shape
    u = torch.rand(n, 3, generator=generator, device=x.device) * 2 - 1
    angle = torch.deg2rad(u[:, 0] * max_deg)
    theta = torch.zeros(n, 2, 3, device=x.device)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 1, 0], theta[:, 1, 1] = angle.cos(), -angle.sin(), angle.sin(), angle.cos()
    theta[:, 0, 2] = u[:, 1] * (2 * max_px / w)  # grid units: the image spans 2, so one pixel is 2 / width
    theta[:, 1, 2] = u[:, 2] * (2 * max_px / h)
    return _warp(x, theta, "bilinear")


def _crop_flip(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop after zero padding by ``pad`` and a horizontal flip with p=0.5, per sample.

    Integer shifts sampled with mode="nearest" and align_corners=False hit pixel centres exactly, so this equals
    padding followed by slicing (checked in the tests)."""
    n, _, h, w = x.shape
    shift = torch.randint(-pad, pad + 1, (n, 2), generator=generator, device=x.device)
    flip = torch.rand(n, generator=generator, device=x.device) < 0.5
    theta = torch.zeros(n, 2, 3, device=x.device)
    theta[:, 0, 0] = 1 - 2 * flip.float()  # -1 mirrors left-right
    theta[:, 1, 1] = 1
    theta[:, 0, 2] = shift[:, 0] * (2 / w)
    theta[:, 1, 2] = shift[:, 1] * (2 / h)
    return _warp(x, theta, "nearest")


def augment(x: torch.Tensor, name: str, generator: torch.Generator) -> torch.Tensor:
    """Augment a float batch in [0, 1] scale (before normalising), drawing only from ``generator`` (on x's device).

    Digit sets: shift up to 2 px and rotate up to 10 degrees. CIFAR: crop with padding 4 and horizontal flip."""
    if _canonical(name) in ("mnist", "fashion_mnist"):
        return _shift_rotate(x, generator)
    return _crop_flip(x, generator)


def batch(
    splits: Splits, idx: torch.Tensor, augment_on: bool, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training images ``idx`` as a normalised float32 batch (augmented if ``augment_on``) and their labels."""
    x = splits.train_x[idx].float().div_(255)
    if augment_on:
        if generator is None:
            raise ValueError("augmentation needs a torch.Generator: every random draw comes from it")
        x = augment(x, splits.name, generator)
    return _normalise(x, splits), splits.train_y[idx]
