"""Where a run's time goes: a real CNN run traced, every phase found, each backward node given to its layer's kind."""

import dataclasses

import pytest
import torch

from bench import perf
from bench.config import RunSpec
from bench.harness import phases

SPEC = RunSpec(dataset="fashion_mnist", model="cnn", channels=(8, 16), hidden=(32,), epochs=1, train_size=1000)


@pytest.fixture(scope="module")
def traced(data_dir):
    """A short isrlu CNN run traced as phases.profile traces it: the events and their attribution."""
    spec = dataclasses.replace(SPEC, activation="isrlu")
    marks = phases._LayerMarks(spec)
    try:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as trace:
            phases.loop.run(spec, data_dir)
    finally:
        marks.remove()
    events = list(trace.events())
    return events, phases.attribute(events)


def _own(events, name: str, phase: str) -> float:
    """Seconds of the operations called ``name`` under a phase mark."""
    return sum(e.self_cpu_time_total for e in events if e.name == name and phases._marks(e)[0] == phase) / 1e6


def test_every_phase_of_a_cnn_run_is_found(traced):
    _, seconds = traced
    assert set(seconds) == set(phases.PHASES)
    for phase in phases.PHASES:
        if phase != "set-up and record":  # the difference to the wall time: phases.profile sets it
            assert seconds[phase] > 0, phase


def test_each_backward_operation_goes_to_the_layer_whose_forward_made_it(traced):
    events, seconds = traced
    conv = _own(events, "aten::convolution_backward", "backward")
    assert conv <= seconds["conv backward"] <= 1.2 * conv  # all of it there, and little else
    pooling = _own(events, "aten::max_pool2d_with_indices_backward", "backward")
    assert 0 < pooling <= seconds["pooling backward"]
    # isrlu's backward: the multiplies of its chain rule, nothing of them elsewhere
    assert _own(events, "aten::mul", "backward") <= seconds["activation backward"]
    assert seconds["conv backward"] > seconds["dense backward"]  # the convolutions are the step's heavy layers


def test_a_run_traced_and_untraced_with_its_phases_adding_up(data_dir):
    result = phases.profile(SPEC, data_dir)
    assert result["wall_seconds"] > 0
    assert sum(result["seconds"].values()) == pytest.approx(result["traced_wall_seconds"])


def test_profile_runs_the_default_suites_cnn_setting_and_names_bad_activations(capsys):
    specs = perf._profile_specs("relu,maxout")
    assert [s.activation for s in specs] == ["relu", "maxout"]
    assert {(s.model, s.dataset, s.channels, s.epochs, s.seed, s.device) for s in specs} == {
        ("cnn", "fashion_mnist", (8, 16), 3, 0, "cpu")
    }
    assert perf.main(["--profile", "relu,relux"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "relu" in err[0]


def test_the_profile_table_has_a_row_per_phase_and_the_run_times():
    seconds = {p: 1.0 for p in phases.PHASES}
    text = perf.profile_text({"relu": {"seconds": seconds, "traced_wall_seconds": 20.0, "wall_seconds": 18.0}})
    lines = text.splitlines()
    assert len(lines) == 1 + len(phases.PHASES) + 2
    assert lines[1].split() == ["conv", "forward", "1.00", "5.0%"]
    assert lines[-1].split()[-1] == "18.00"
