"""The project's one input-error type and its command-line convention; imports no torch.

Every entry point (``python -m activations``, ``bench.run``, ``bench.report``, ``bench.export``, ``bench.perf``)
parses with :class:`Parser` and runs its body through :func:`main`: bad input is one line on stderr and exit
status 2, Ctrl-C is 130, any other exception one line and 1; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterable
from importlib.metadata import PackageNotFoundError, version
from typing import Any, NoReturn


class InputError(ValueError):
    """A bad value given by the user (a name, a spec, a number, a path); the message says what is valid."""


def close_names(value: object, valid: Iterable[str], n: int = 3, cutoff: float = 0.5) -> list[str]:
    """The valid names closest to ``value``, closest first (difflib): the one "did you mean" of the project."""
    return difflib.get_close_matches(str(value), list(valid), n=n, cutoff=cutoff)


def choose(kind: str, value: object, valid: Iterable[str], error: type[InputError] = InputError) -> str:
    """``value`` if it is one of ``valid``, else ``error`` naming the closest valid names and all of them."""
    valid = list(valid)
    if value in valid:
        return value  # type: ignore[return-value]
    close = close_names(value, valid, cutoff=0.4)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise error(f"unknown {kind} {value!r}{hint} (valid: {', '.join(valid)})")


def package_version() -> str:
    try:
        return version("actbench")
    except PackageNotFoundError:
        return "unknown (not installed)"


class Parser(argparse.ArgumentParser):
    """argparse with ``--version`` and ``--debug``, and a usage error as one line on stderr with exit status 2."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # "-1e-3" is a value (which the spec then rejects with a reason), not an unknown option
        self._negative_number_matcher = re.compile(r"^-\d*\.?\d+([eE][-+]?\d+)?$")
        self.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
        self.add_argument("--debug", action="store_true", help="show tracebacks")

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see --help)\n")


def main(parser: argparse.ArgumentParser, body: Callable[[argparse.Namespace], int], argv: list[str] | None) -> int:
    """Parse ``argv`` and return ``body(args)``'s exit status, turning exceptions into the project's convention."""
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0), or a usage error the parser has printed (2)
        return exc.code if isinstance(exc.code, int) else 2
    debug = getattr(args, "debug", False)
    try:
        return body(args)
    except InputError as exc:
        if debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of stdout went away (`| head`): stop quietly, as the Python docs advise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the flush at exit must not fail again
        return 1
    except Exception as exc:
        if debug:
            raise
        print(f"error: {type(exc).__name__}: {exc} (--debug for the traceback)", file=sys.stderr)
        return 1


def json_line(row: dict[str, Any]) -> str:
    """One row as a line of valid JSON: NaN and infinities (which JSON has no words for) become null."""
    clean = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}
    return json.dumps(clean, allow_nan=False, default=str)
