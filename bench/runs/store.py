"""The SQLite store of finished runs: one ``runs`` row per spec key plus its per-epoch and per-layer rows.

The store receives plain data (a flat record dict and two lists of long-format rows) and knows nothing
about models or training. Saving a key again replaces all of its rows, which is how ``--force`` re-runs
work; ``finished_keys`` (the runs with a result: ``ok`` or ``diverged``) is what lets an interrupted suite resume,
and a ``failed`` run is trained again.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from activations.errors import InputError
from bench.config import DEFAULT_STORE

SCHEMA_VERSION = 1
STATUSES = ("ok", "diverged", "failed")
RESULTS = ("ok", "diverged")  # a run that ended so is a result and is kept; a failed one is trained again
_IS_RESULT = f"status IN ({', '.join(repr(s) for s in RESULTS)})"
BUSY_TIMEOUT_S = 30.0  # another process writing the same file is waited for, not reported as "database is locked"

EPOCH_COLUMNS = ("key", "epoch", "split", "metric", "value")
LAYER_COLUMNS = ("key", "epoch", "layer", "name", "metric", "value")
_EPOCH_TYPES = {"epoch": int, "split": str, "metric": str, "value": float}
_LAYER_TYPES = {"epoch": int, "layer": int, "name": str, "metric": str, "value": float}
MIN_FREE_BYTES = 64 * 2**20  # refuse to start a suite on a nearly full disk rather than fail an hour later
CLAIM_TTL = timedelta(hours=24)  # a claim from another host is trusted this long
_KEYS_PER_QUERY = 500  # stays far below SQLite's limit on bound parameters

# ``value`` may be NULL: SQLite stores a NaN double as NULL, and it reads back as NaN in pandas.
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ({", ".join(repr(s) for s in STATUSES)})),
    error TEXT,
    finished_at TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS epochs (
    key TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    split TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (key, epoch, split, metric)
);
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    claimed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS layers (
    key TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    layer INTEGER NOT NULL,
    name TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (key, epoch, layer, metric)
);
"""


class StoreError(InputError):
    """The store file can't be used (not SQLite, newer schema, not writable); the message names the path."""


class Store:
    """A results database; open one per process and use it as a context manager."""

    def __init__(self, path: str | Path = DEFAULT_STORE, *, readonly: bool = False) -> None:
        """Open (or, unless ``readonly``, create) the store at ``path`` and check now that it can be written."""
        self.path = Path(path)
        self.readonly = readonly
        self._conn = self._connect()
        try:
            self._prepare()
        except BaseException:
            self._conn.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        """Connect without touching the file's contents; read-only stores must already exist."""
        try:
            if self.readonly:
                if not self.path.is_file():
                    raise StoreError(f"no store at {self.path}: run a suite first or pass --store PATH")
                uri = self.path.resolve().as_uri() + "?mode=ro"
                return sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the store {self.path}: {_reason(exc)}; {self._advice()}") from exc

    def _prepare(self) -> None:
        """Refuse foreign or newer files before writing anything, then create the schema and check writability."""
        try:
            # One read transaction: another process creating the store meanwhile is seen whole or not at all.
            self._conn.execute("BEGIN")
            try:
                version = self._conn.execute("PRAGMA user_version").fetchone()[0]
                tables = [row[0] for row in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            finally:
                self._conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorname", "") == "SQLITE_NOTADB":
                raise StoreError(
                    f"{self.path} is not an SQLite database; pass another --store path or move the file away"
                ) from exc
            raise StoreError(f"cannot open the store {self.path}: {_reason(exc)}; {self._advice()}") from exc
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has store schema version {version}, newer than this actbench's {SCHEMA_VERSION}; "
                "upgrade actbench or pass another --store path"
            )
        if version == 0:
            if tables or self.readonly:
                found = ", ".join(tables) or "none"
                raise StoreError(
                    f"{self.path} is an SQLite database but not an actbench store (tables: {found}); "
                    "pass another --store path"
                )
        if self.readonly:
            return
        try:
            self._wal()
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _SCHEMA.split(";"):  # CREATE ... IF NOT EXISTS: a no-op on a complete store
                    if statement.strip():
                        self._conn.execute(statement)
                # Writing the header fails now on a read-only file (BEGIN IMMEDIATE alone doesn't in WAL mode),
                # rather than when the first run is saved an hour later.
                self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                self._conn.execute("COMMIT")
            finally:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write the store {self.path}: {_reason(exc)}; {self._advice()}") from exc
        free = shutil.disk_usage(self.path.parent).free
        if free < MIN_FREE_BYTES:
            raise StoreError(
                f"only {free // 1024} KiB free on the disk of {self.path} (a suite needs at least "
                f"{MIN_FREE_BYTES // 2**20} MiB); free some space or pass another --store path"
            )

    def _wal(self) -> None:
        """Switch the file to WAL mode (once per file). SQLite answers a switch that meets another connection's
        lock with "database is locked" at once, without its busy wait, as when two processes create one store at
        the same moment: retry until BUSY_TIMEOUT_S."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _advice(self) -> str:
        """What to do about a store that can't be opened or written."""
        if self.readonly:
            return "check the --store path"
        return "make the file and its directory writable or pass another --store path"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (idempotent); SQLite checkpoints the WAL file when the last one closes."""
        self._conn.close()

    def save(
        self,
        record: dict[str, Any],
        epochs: list[dict[str, Any]],
        layers: list[dict[str, Any]],
        finished_at: str | None = None,
    ) -> None:
        """Save one finished run in one transaction, replacing every earlier row of the same key; ``finished_at``
        (ISO 8601) is now unless given (a run imported from a published bundle keeps its own)."""
        if self.readonly:
            raise StoreError(f"{self.path} was opened read-only; open it with readonly=False to save runs")
        key, status, error, text = _record_row(record)
        epoch_rows = _long_rows(key, epochs, _EPOCH_TYPES, "epochs")
        layer_rows = _long_rows(key, layers, _LAYER_TYPES, "layers")
        finished_at = finished_at or datetime.now(UTC).isoformat(timespec="seconds")
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for table in ("runs", "epochs", "layers", "claims"):
                    conn.execute(f"DELETE FROM {table} WHERE key = ?", (key,))
                conn.execute(
                    "INSERT INTO runs (key, status, error, finished_at, record) VALUES (?, ?, ?, ?, ?)",
                    (key, status, error, finished_at, text),
                )
                conn.executemany(f"INSERT INTO epochs VALUES ({_marks(EPOCH_COLUMNS)})", epoch_rows)
                conn.executemany(f"INSERT INTO layers VALUES ({_marks(LAYER_COLUMNS)})", layer_rows)
                conn.execute("COMMIT")
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
        except sqlite3.IntegrityError as exc:
            raise InputError(f"run {key} not saved: {exc} (each epochs/layers row must appear once)") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"run {key} not saved to {self.path}: {_reason(exc)}; {self._advice()}") from exc

    def claim(self, key: str, *, force: bool = False) -> bool:
        """Reserve ``key`` for this process, so that two processes on one store never train the same run.

        False when the run already has a result (unless ``force``) or is claimed by a process that is still alive.
        A claim by a process of this host that has died (killed, crashed) is taken over. A claim from
        another host is trusted for CLAIM_TTL, since its process cannot be checked from here.
        """
        me = (socket.gethostname(), os.getpid())
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if not force and self.has(key):
                    return False
                row = conn.execute("SELECT host, pid, claimed_at FROM claims WHERE key = ?", (key,)).fetchone()
                if row is not None and (row[0], row[1]) != me and _alive(*row):
                    return False
                conn.execute(
                    "INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?)",
                    (key, *me, datetime.now(UTC).isoformat(timespec="seconds")),
                )
                conn.execute("COMMIT")
                return True
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot claim run {key} in {self.path}: {_reason(exc)}; {self._advice()}") from exc

    def release(self, key: str) -> None:
        """Drop this process's claim on ``key`` (a run that was interrupted before it finished)."""
        self._conn.execute(
            "DELETE FROM claims WHERE key = ? AND host = ? AND pid = ?", (key, socket.gethostname(), os.getpid())
        )

    def claimed_keys(self) -> set[str]:
        """Keys claimed by live processes and not yet saved."""
        rows = self._conn.execute("SELECT key, host, pid, claimed_at FROM claims").fetchall()
        return {key for key, *owner in rows if _alive(*owner)}

    def finished_keys(self) -> set[str]:
        """Keys with a result (``ok`` or ``diverged``): a suite skips these unless forced, and trains a failed one."""
        return {row[0] for row in self._conn.execute(f"SELECT key FROM runs WHERE {_IS_RESULT}")}

    def has(self, key: str) -> bool:
        """Whether ``key`` has a result (``ok`` or ``diverged``) in the store."""
        return self._conn.execute(f"SELECT 1 FROM runs WHERE key = ? AND {_IS_RESULT}", (key,)).fetchone() is not None

    def record(self, key: str) -> dict[str, Any] | None:
        """The record saved under ``key`` exactly as given (NaN and inf included), or None."""
        row = self._conn.execute("SELECT record FROM runs WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def finished_at(self, key: str) -> str | None:
        """When the run under ``key`` was saved (ISO 8601, UTC), or None."""
        row = self._conn.execute("SELECT finished_at FROM runs WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def runs(self) -> pd.DataFrame:
        """One row per run, oldest first; columns are the union of record fields, ``key`` and ``status`` first."""
        rows = self._conn.execute("SELECT record FROM runs ORDER BY finished_at, rowid")
        records = [json.loads(text) for (text,) in rows]
        import pandas as pd  # only the readers need it: the command lines start without it

        frame = pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=["key", "status"])
        rest = [c for c in frame.columns if c not in ("key", "status")]
        return frame[["key", "status", *rest]]

    def epochs(self, keys: Iterable[str] | None = None) -> pd.DataFrame:
        """Per-epoch metrics in long format (key, epoch, split, metric, value), for ``keys`` or all runs."""
        return self._select("epochs", EPOCH_COLUMNS, {"epoch": "int64"}, keys)

    def layers(self, keys: Iterable[str] | None = None) -> pd.DataFrame:
        """Per-layer probes in long format (key, epoch, layer, name, metric, value), for ``keys`` or all runs."""
        return self._select("layers", LAYER_COLUMNS, {"epoch": "int64", "layer": "int64"}, keys)

    def _select(
        self, table: str, columns: tuple[str, ...], dtypes: dict[str, str], keys: Iterable[str] | None
    ) -> pd.DataFrame:
        """Rows of ``table`` sorted by key then the rest of its primary key; keys are queried in chunks."""
        order = ", ".join(c for c in columns if c not in ("name", "value"))
        query = f"SELECT {', '.join(columns)} FROM {table}"
        if keys is None:
            rows = self._conn.execute(f"{query} ORDER BY {order}").fetchall()
        else:
            wanted = sorted({keys} if isinstance(keys, str) else set(keys))
            rows = []
            for start in range(0, len(wanted), _KEYS_PER_QUERY):
                chunk = wanted[start : start + _KEYS_PER_QUERY]
                sql = f"{query} WHERE key IN ({_marks(chunk)}) ORDER BY {order}"
                rows += self._conn.execute(sql, chunk).fetchall()
        import pandas as pd

        return pd.DataFrame(rows, columns=list(columns)).astype({**dtypes, "value": "float64"})


def _alive(host: str, pid: int, claimed_at: str) -> bool:
    """Whether the process that made a claim may still be running."""
    if host != socket.gethostname():
        return datetime.now(UTC) - datetime.fromisoformat(claimed_at) < CLAIM_TTL
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _record_row(record: dict[str, Any]) -> tuple[str, str, str | None, str]:
    """Check a record is a flat dict of scalars with a key and a known status; return the runs row values."""
    if not isinstance(record, dict):
        raise InputError(f"a run record must be a dict, not {type(record).__name__}")
    key = record.get("key")
    if not isinstance(key, str) or not key:
        raise InputError(f"a run record needs a non-empty string 'key', got {key!r}")
    status = record.get("status")
    if status not in STATUSES:
        raise InputError(f"run {key}: status must be one of {', '.join(STATUSES)}, got {status!r}")
    error = record.get("error")
    if error is not None and not isinstance(error, str):
        raise InputError(f"run {key}: 'error' must be a string or None, got {type(error).__name__}")
    for name, value in record.items():
        if not isinstance(name, str) or not (value is None or isinstance(value, str | int | float | bool)):
            raise InputError(
                f"run {key}: record field {name!r} must be a str/int/float/bool/None, got {type(value).__name__}"
            )
    return key, status, error, json.dumps(record, allow_nan=True)


def _long_rows(key: str, rows: list[dict[str, Any]], types: dict[str, type], table: str) -> list[tuple]:
    """Turn long-format dicts into (key, ...) tuples in column order, checking each field's type."""
    out = []
    for i, row in enumerate(rows):
        values: list[Any] = [key]
        for field, kind in types.items():
            if field not in row:
                raise InputError(f"run {key}: {table} row {i} has no {field!r} field (needs {', '.join(types)})")
            value = row[field]
            if kind is float:  # ints are accepted as floats; None is a missing value, read back as NaN
                ok = value is None or (isinstance(value, int | float) and not isinstance(value, bool))
                value = float(value) if ok and value is not None else value
            else:
                ok = isinstance(value, kind) and not isinstance(value, bool)
            if not ok:
                raise InputError(
                    f"run {key}: {table} row {i} field {field!r} must be {kind.__name__}, got {type(value).__name__}"
                )
            values.append(value)
        out.append(tuple(values))
    return out


def _marks(items: Iterable[object]) -> str:
    """``?, ?, ...`` with one placeholder per item."""
    return ", ".join("?" for _ in items)


def _reason(exc: BaseException) -> str:
    """The short human part of an OSError or sqlite3 error."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} ({exc.filename})" if exc.filename else exc.strerror
    return str(exc)
