"""Known-bad combinations in a list of runs: a warning line each when they are trained, a note in their report.

Not errors: a suite may study them on purpose. An initializer far from the activation's variance-keeping gain is
named only where every run has the same initializer (a suite that varies it studies it).
"""

from __future__ import annotations

import functools
import math

import activations
from bench.config import RunSpec

FAR = 2.0  # an initializer's gain this many times above or below the activation's variance-keeping gain


@functools.cache
def _card_gain(activation: str) -> float:
    return activations.card(activation).gain


def _init_gain(spec: RunSpec) -> float | None:
    """The gain ``spec.init`` gives the classifier layer (fan-in: the last hidden width), or None if it adapts (or the
    model has no hidden widths to tell)."""
    from bench.harness.init import FIXED_GAINS  # the initializers' own table, loaded with them

    if spec.init == "normal":
        return math.sqrt(spec.hidden[-1]) if spec.hidden else None
    return FIXED_GAINS.get(spec.init)


def known_bad(specs: list[RunSpec]) -> list[str]:
    """One sentence per known-bad combination found in ``specs``, with how many runs have it."""
    lines = []
    selu = [s for s in specs if s.dropout > 0 and s.dropout_kind == "plain" and s.activation == "selu"]
    if selu:
        lines.append(
            f"{len(selu)} run(s) use selu with plain dropout, which breaks its self-normalisation (SELU is meant for "
            "alpha dropout, --dropout-kind alpha, and LeCun-normal init)"
        )
    if len({s.init for s in specs}) > 1:
        return lines
    far: dict[tuple[str, str], list] = {}
    for spec in specs:
        gain = _init_gain(spec)
        if gain is not None and not 1 / FAR <= gain / _card_gain(spec.activation) <= FAR:
            far.setdefault((spec.activation, spec.init), [gain, 0])[1] += 1
    for (activation, init), (gain, n) in far.items():
        lines.append(
            f"{n} run(s) initialise {activation} with {init} (gain {gain:.2f} per layer), more than {FAR:g}x from its "
            f"variance-keeping gain {_card_gain(activation):.2f} (--init auto uses that)"
        )
    return lines
