"""Textbook claims about activations, each tested on the runs of the ``seed-claims`` suite.

:func:`evaluate` returns one :class:`Verdict` per claim whose runs are present: the experiment, a table of the
measured numbers (mean over seeds, with the range) and a verdict. The rules behind a verdict are stated in its
text and are deliberately simple: "every seed" comparisons are paired by seed (same data order and first-layer
weights), and a difference counts only if it holds in every seed.

One module per claim family (``gradients``, ``speed``, ``dead``, ``regularizers``); what they share is in ``common``.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from bench.analysis.claims.common import CONFIRMED, DEPENDS, NOT_CONFIRMED, Verdict, per_run
from bench.analysis.claims.dead import claim_dead_relu, claim_leaky
from bench.analysis.claims.gradients import claim_saturation, claim_vanishing, saturation_thought_experiment
from bench.analysis.claims.regularizers import claim_regularizers
from bench.analysis.claims.speed import claim_cross_entropy, claim_softplus, claim_tanh

__all__ = [
    "CLAIMS",
    "CONFIRMED",
    "DEPENDS",
    "NOT_CONFIRMED",
    "Verdict",
    "evaluate",
    "per_run",
    "saturation_thought_experiment",
]

CLAIMS: tuple[Callable[[pd.DataFrame], Verdict | None], ...] = (
    claim_vanishing,
    claim_tanh,
    claim_dead_relu,
    claim_saturation,
    claim_cross_entropy,
    claim_softplus,
    claim_leaky,
    claim_regularizers,
)


def evaluate(runs: pd.DataFrame, epochs: pd.DataFrame, layers: pd.DataFrame) -> list[Verdict]:
    """The verdict of every claim whose runs are in ``runs`` (in claim order)."""
    if runs.empty:
        return []
    table = per_run(runs, epochs, layers)
    return [v for v in (claim(table) for claim in CLAIMS) if v is not None]
