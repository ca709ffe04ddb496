"""Known-bad combinations: named with their run counts; an initializer grid is a study, not a mistake."""

from test_report import GRID, synthetic_store, write_suite

from bench.checks import known_bad
from bench.config import RunSpec
from bench.report import command, page


def test_selu_with_plain_dropout_is_named_and_alpha_dropout_is_not():
    specs = [RunSpec(activation="selu", dropout=0.2, seed=s) for s in range(3)]
    assert known_bad(specs) == [
        "3 run(s) use selu with plain dropout, which breaks its self-normalisation (SELU is meant for alpha dropout, "
        "--dropout-kind alpha, and LeCun-normal init)"
    ]
    assert known_bad([RunSpec(activation="selu", dropout=0.2, dropout_kind="alpha")]) == []
    assert known_bad([RunSpec(activation="relu", dropout=0.2)]) == []


def test_an_initializer_far_from_the_card_gain_is_named_unless_the_runs_vary_it():
    (line,) = known_bad([RunSpec(activation="tanh", init="normal", hidden=(256,))])
    assert line.startswith("1 run(s) initialise tanh with normal (gain 16.00 per layer)") and "gain 1.59" in line
    assert known_bad([RunSpec(activation="relu", init="he"), RunSpec(activation="tanh", init="lecun")]) == []
    assert known_bad([RunSpec(activation="tanh", init=i) for i in ("normal", "lecun")]) == []  # an init study
    assert known_bad([RunSpec(activation="tanhshrink", init="lecun")])  # gain 2.34 for tanhshrink: over 2x
    assert known_bad([RunSpec(activation="relu", init="auto")]) == []


def test_the_report_notes_them(tmp_path):
    suite = write_suite(tmp_path / "selu.toml", GRID + 'activation = ["relu", "selu"]\ndropout = 0.2\nseeds = 2\n')
    store = synthetic_store(tmp_path / "s.sqlite", suite, lambda s, split: 0.9)
    text = command.build(suite, store, tmp_path / "out", timing=False, sections=[page.section_warnings]).read_text()
    assert text.startswith("## Known-bad combinations\n\n- 2 run(s) use selu with plain dropout")
