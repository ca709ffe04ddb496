"""actbench's activation registry: ``create``, ``names``, ``info``, ``register``, ``card``."""

from activations import builtin, custom  # noqa: F401  (registers the built-in and custom activations)
from activations.errors import InputError
from activations.properties import Card, card
from activations.registry import (
    ENTRY_POINT_GROUP,
    FAMILIES,
    SOURCES,
    ActivationInfo,
    canonical,
    create,
    format_spec,
    info,
    learnable_parameters,
    names,
    parse_spec,
    register,
    width_factor,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "FAMILIES",
    "SOURCES",
    "ActivationInfo",
    "Card",
    "InputError",
    "canonical",
    "card",
    "create",
    "format_spec",
    "info",
    "learnable_parameters",
    "names",
    "parse_spec",
    "register",
    "width_factor",
]
