"""Shared fixtures: the real offline datasets, and small CIFAR-10/100 folders written in torchvision's format."""

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import settings

# No wall-clock limit on a property test: the first example pays for imports, and the machine is shared.
settings.register_profile("actbench", deadline=None)
settings.load_profile("actbench")

CUDA = torch.cuda.is_available()
CIFAR_PER_BATCH = 40  # images per fixture batch file
CIFAR10_LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` are skipped, with the reason, on a machine without an NVIDIA GPU."""
    if not CUDA:
        skip = pytest.mark.skip(reason="needs CUDA: no NVIDIA GPU on this machine")
        for item in items:
            if "cuda" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def device() -> str:
    """Where the tests that train run: CUDA on a machine with an NVIDIA GPU, else the CPU."""
    return "cuda" if CUDA else "cpu"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The folder with real MNIST and Fashion-MNIST: $ACTBENCH_DATA, else ../shared/data beside the repository."""
    env = os.environ.get("ACTBENCH_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _pickle(path: Path, obj: dict) -> None:
    # str keys: the real files were pickled by Python 2, and torchvision's pickle.load(encoding="latin1") gives str keys
    with path.open("wb") as f:
        pickle.dump(obj, f, protocol=2)


def _batch(rng: np.random.Generator, n: int, label: str, labels: dict[str, int]) -> dict:
    """One batch dict as in the real files: row-major (N, 3072) uint8 = 1024 red, 1024 green, 1024 blue values."""
    batch = {
        "batch_label": label,
        "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
        "filenames": [f"fixture_{label.replace(' ', '_')}_{i}.png" for i in range(n)],
    }
    batch.update({key: rng.integers(0, k, n).tolist() for key, k in labels.items()})
    return batch


@pytest.fixture(scope="session")
def cifar_dir(tmp_path_factory) -> Path:
    """A data folder holding a small CIFAR-10 in the exact ``cifar-10-batches-py`` layout (5 x 40 train, 40 test)."""
    root = tmp_path_factory.mktemp("cifar10")
    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(10)
    for i in range(1, 6):
        _pickle(folder / f"data_batch_{i}", _batch(rng, CIFAR_PER_BATCH, f"training batch {i} of 5", {"labels": 10}))
    _pickle(folder / "test_batch", _batch(rng, CIFAR_PER_BATCH, "testing batch 1 of 1", {"labels": 10}))
    _pickle(
        folder / "batches.meta",
        {"label_names": CIFAR10_LABELS, "num_cases_per_batch": CIFAR_PER_BATCH, "num_vis": 3072},
    )
    return root


@pytest.fixture(scope="session")
def cifar100_dir(tmp_path_factory) -> Path:
    """A data folder holding a small CIFAR-100 in the exact ``cifar-100-python`` layout (200 train, 40 test)."""
    root = tmp_path_factory.mktemp("cifar100")
    folder = root / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(100)
    labels = {"fine_labels": 100, "coarse_labels": 20}
    _pickle(folder / "train", _batch(rng, 5 * CIFAR_PER_BATCH, "training batch 1 of 1", labels))
    _pickle(folder / "test", _batch(rng, CIFAR_PER_BATCH, "testing batch 1 of 1", labels))
    _pickle(
        folder / "meta",
        {
            "fine_label_names": [f"fine_{i}" for i in range(100)],
            "coarse_label_names": [f"coarse_{i}" for i in range(20)],
        },
    )
    return root


@pytest.fixture(scope="session", autouse=True)
def own_cpu_slots(tmp_path_factory):
    """The test session's suites share CPU slots among themselves, not with suites run elsewhere on the machine."""
    os.environ["ACTBENCH_SLOTS"] = str(tmp_path_factory.mktemp("slots"))
