"""Which code made a result: the git SHA of this checkout (stdlib only, so reports and records share it)."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path


@functools.cache
def git_sha() -> str:
    """HEAD of the checkout this code runs from, ``-dirty`` if tracked files changed; "unknown" outside git.

    The published reports are left out of the check: they are what ``make bench`` writes, not code, and a second
    suite trained after the first one's report must not be marked dirty by it.
    """
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)reports"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if sha.returncode != 0:
        return "unknown"
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
