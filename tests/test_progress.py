"""Progress lines of a suite: the time left from a plan's expected times when there is one."""

from bench.config import RunSpec
from bench.runs.progress import Progress


def _record(spec: RunSpec, seconds: float) -> dict:
    return {"key": spec.key, "status": "ok", "test_acc": 0.9, "wall_seconds": seconds, **spec.flat()}


def test_the_time_left_is_the_plans_when_there_is_one(capsys):
    specs = [RunSpec(activation=a) for a in ("relu", "tanh", "elu")]
    expected = {specs[0].key: 60.0, specs[1].key: 600.0, specs[2].key: 1200.0}
    shown = Progress(specs, enabled=True, expected=expected, workers=2)
    shown.finished(specs[0].key, _record(specs[0], 3.0))  # a fast first run does not make the rest look fast
    assert "~15 min left" in capsys.readouterr().err  # (600 + 1200) s over 2 workers
    shown.finished(specs[1].key)  # taken by another process
    shown.finished(specs[2].key, _record(specs[2], 1100.0))
    assert "min left" not in capsys.readouterr().err  # the last one


def test_without_a_plan_the_time_left_is_the_mean_so_far(capsys):
    specs = [RunSpec(activation=a) for a in ("relu", "tanh")]
    shown = Progress(specs, enabled=True)
    shown.tic -= 120  # the first run took two minutes
    shown.finished(specs[0].key, _record(specs[0], 120.0))
    assert "~2 min left" in capsys.readouterr().err
