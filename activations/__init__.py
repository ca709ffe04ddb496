"""actbench's activation registry: ``create``, ``names``, ``info``, ``register``, ``card``.

The registry (and torch) load on first use of one of these names, so ``activations.errors`` and the command
lines' ``--help`` import without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from activations.errors import InputError

FAMILIES = (
    "sigmoid-like",
    "rectifier",
    "exponential",
    "smooth-gated",
    "gated-linear",
    "periodic",
    "bounded-piecewise",
    "other",
)
SOURCES = ("builtin", "custom", "plugin")  # where an activation comes from (its registration)

_FROM = {
    **dict.fromkeys(["Card", "card", "f_and_df", "relative_cost"], "activations.properties"),
    **dict.fromkeys(
        [
            "ENTRY_POINT_GROUP",
            "ActivationInfo",
            "canonical",
            "check",
            "create",
            "format_spec",
            "info",
            "learnable_parameters",
            "names",
            "parse_spec",
            "register",
            "source_sha",
            "width_factor",
        ],
        "activations.registry",
    ),
}

__all__ = ["FAMILIES", "InputError", "SOURCES", *_FROM]


def __getattr__(name: str) -> Any:
    if name not in _FROM:
        raise AttributeError(f"module 'activations' has no attribute {name!r}")
    importlib.import_module("activations.builtin")  # registers the built-in and custom activations
    importlib.import_module("activations.custom")
    value = getattr(importlib.import_module(_FROM[name]), name)
    globals()[name] = value
    return value
