"""Where data lives and how it arrives: the data folder, the cache folder for decoded data, downloads, and the one
error for data that cannot be used."""

import os
import urllib.request
from pathlib import Path

from activations.errors import InputError

ENV_VAR = "ACTBENCH_DATA"
CACHE_ENV_VAR = "ACTBENCH_CACHE"


class DataError(InputError):
    """A dataset that cannot be used: unknown name, missing folder or files, or a damaged file (named)."""


def _folder(env_var: str, name: str) -> Path:
    """$``env_var`` if set, else the user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``)/actbench/``name``."""
    if os.environ.get(env_var):
        return Path(os.environ[env_var]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "actbench" / name


def default_data_dir() -> Path:
    """$ACTBENCH_DATA if set, else the user's cache folder/actbench/data."""
    return _folder(ENV_VAR, "data")


def cache_dir() -> Path:
    """Where decoded datasets are cached: $ACTBENCH_CACHE if set, else the user's cache folder/actbench/decoded."""
    return _folder(CACHE_ENV_VAR, "decoded")


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
            f"downloading {url} failed ({reason(exc)}): fetch it into {path} yourself, or set ${ENV_VAR} to a "
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


def reason(exc: BaseException) -> str:
    """The exception's type and the last line of its message (the innermost cause), shortened to one line."""
    lines = str(exc).strip().splitlines() or [""]
    text = " ".join(f"{type(exc).__name__}: {lines[-1]}".split())
    return text if len(text) <= 160 else text[:157] + "..."
