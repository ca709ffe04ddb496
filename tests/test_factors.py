"""The sections of suites that vary something besides the activation, on synthetic stores with known answers: the
rank agreement between two budgets, the activation x regularizer interaction, the initializer and rate findings."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from test_report import GRID, synthetic_store, write_suite

from bench import provenance
from bench.analysis import effects
from bench.config import Status
from bench.report import budget, command, comparisons, context, factors
from bench.runs import bundle, results
from bench.tasks import ACCURACY

# ---------------------------------------------------------------------------------------------------------------
# Rank agreement between budgets.


def _runs(means: dict[str, float], seeds: int, wobble: dict[str, float] | None = None) -> pd.DataFrame:
    wobble = wobble or {}
    rows = [
        {"dataset": "d", "activation": a, "seed": s, "status": "ok", "test_acc": m + wobble.get(a, 0) * (s - 1)}
        for a, m in means.items()
        for s in range(seeds)
    ]
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    "long, rho",
    [
        ([0.90, 0.91, 0.92, 0.93, 0.94], 1.0),  # the same order
        ([0.94, 0.93, 0.92, 0.91, 0.90], -1.0),  # reversed
        ([0.91, 0.90, 0.92, 0.93, 0.94], 0.9),  # two neighbours swapped: 1 - 6 * 2 / (5 * 24)
    ],
)
def test_rank_agreement_is_spearmans_rho_of_the_means(long, rho):
    names = list("abcde")
    short = _runs(dict(zip(names, [0.90, 0.91, 0.92, 0.93, 0.94], strict=True)), seeds=5)
    table = effects.rank_agreement(short, _runs(dict(zip(names, long, strict=True)), seeds=3), ["dataset"])
    row = table.iloc[0]
    assert row["rho"] == pytest.approx(rho) and row["n_items"] == 5
    assert (row["n_short_seeds"], row["n_long_seeds"]) == (5, 3)
    assert row["ci_low"] == pytest.approx(rho) and row["ci_high"] == pytest.approx(rho)  # no seed noise


def test_the_rank_agreement_interval_widens_with_seed_noise_and_holds_the_estimate():
    names = list("abcde")
    means = dict(zip(names, [0.900, 0.901, 0.902, 0.903, 0.904], strict=True))
    noisy = dict.fromkeys(names, 0.004)  # seed-to-seed spread above the gaps between the means
    noisy["c"] = -0.004
    table = effects.rank_agreement(_runs(means, 5, noisy), _runs(means, 3, noisy), ["dataset"])
    row = table.iloc[0]
    assert row["ci_low"] <= row["rho"] <= row["ci_high"] and row["ci_high"] - row["ci_low"] > 0.5


def test_an_item_without_an_ok_run_ranks_last():
    short = _runs({"a": 0.9, "b": 0.8, "c": 0.7}, 3)
    long = _runs({"a": 0.9, "b": 0.8, "c": 0.7}, 3)
    long.loc[long["activation"].eq("a"), "status"] = Status.DIVERGED
    assert effects.rank_agreement(short, long, ["dataset"]).iloc[0]["rho"] == pytest.approx(-0.5)


# Per activation: the mean test accuracy at the short and at the long budget, each with a seed-to-seed wobble (seed
# s adds wobble * (s - 1): mean 0 over seeds 0-2). Short order gelu elu relu sigmoid tanh, long elu tanh gelu relu
# sigmoid: the ranks differ by 1, 1, 3, 2, 1, so rho = 1 - 6 * 16 / (5 * 24) = 0.2.
BUDGETS = {
    "relu": ((0.900, 0.0), (0.900, 0.0)),
    "elu": ((0.920, 0.001), (0.910, 0.001)),  # better at both: persists
    "tanh": ((0.880, 0.001), (0.905, 0.001)),  # worse, then better: flips
    "gelu": ((0.930, 0.001), (0.9005, 0.01)),  # better, then +0.05 pt with a wide spread: shrinks
    "sigmoid": ((0.899, 0.01), (0.870, 0.001)),  # no evidence (a wide spread), then worse: appears
}


def _two_budgets(tmp_path, activations: str, seeds: int, short_value, long_value):
    """A suite at 2 epochs published as a bundle and the same at 8 with ``[budget] short`` naming it: the long
    suite's report context."""
    body = GRID + f"activation = {activations}\nseeds = {seeds}\n"
    short_suite = write_suite(tmp_path / "short.toml", body)
    long_suite = write_suite(
        tmp_path / "long.toml",
        body.replace("epochs = 2", "epochs = 8") + f'\n[budget]\nshort = "{tmp_path / "published"}"\n',
    )
    short_store = synthetic_store(tmp_path / "short.sqlite", short_suite, short_value)
    keys = results.suite_runs(command.load_plan(short_suite).specs, short_store).runs["key"]
    bundle.write(short_store, keys, tmp_path / "published" / "runs.jsonl.gz", short_suite, provenance.git_sha())
    long_store = synthetic_store(tmp_path / "long.sqlite", long_suite, long_value)
    return command.load(long_suite, long_store, tmp_path / "out", None, timing=False)


def test_the_budget_section_gives_rho_and_what_became_of_each_verdict(tmp_path):
    def value(budget: int):
        def at(spec, split):
            mean, wobble = BUDGETS[spec.activation][budget]
            return mean + wobble * (spec.seed - 1)

        return at

    ctx = _two_budgets(tmp_path, '["relu", "elu", "tanh", "gelu", "sigmoid"]', 3, value(0), value(1))
    assert ctx.short_runs is not None and len(ctx.short_runs) == 15

    text = budget.section_budget(ctx)
    assert text.startswith("## Do the rankings hold with 4x the epochs?")
    row = next(line for line in text.splitlines() if line.startswith("| mnist/mlp | 2 -> 8 | 5 | 3 / 3 | 0.20 ["))
    low, high = (float(x) for x in row.split("[")[1].split("]")[0].split(", "))
    assert low <= 0.2 <= high and row.endswith("| 1 | 1 | 1 | 1 | 0 |")  # persists, shrinks, flips, appears, not tested
    fates = budget.verdicts(ctx).set_index("activation")["fate"].to_dict()
    assert fates == {"elu": "persists", "tanh": "flips", "gelu": "shrinks", "sigmoid": "appears"}
    assert "of the 3 differences from relu at the short budget, 1 persist, 1 shrink" in text.lower()


def test_a_budget_section_whose_bundle_is_missing_says_so(tmp_path):
    suite = write_suite(
        tmp_path / "long.toml", GRID + 'activation = ["relu", "elu"]\nseeds = 2\n[budget]\nshort = "nowhere"\n'
    )
    store = synthetic_store(tmp_path / "long.sqlite", suite, lambda spec, split: 0.9)
    ctx = command.load(suite, store, tmp_path / "out", None, timing=False)
    text = budget.section_budget(ctx)
    assert "No runs of the same settings at a shorter budget" in text and "`nowhere`, which cannot be read" in text


# ---------------------------------------------------------------------------------------------------------------
# The activation x regularizer interaction.

REGULARIZERS = GRID + 'activation = ["relu", "tanh", "elu"]\nseeds = 4\n\n[[grid]]\n\n[[grid]]\ndropout = 0.3\n'


def _regularized(tmp_path, gain: dict[str, float]):
    suite = write_suite(tmp_path / "regs.toml", REGULARIZERS)
    noise = {0: 0.001, 1: -0.002, 2: 0.0015, 3: -0.0005}  # per seed and activation: the gains are not all equal

    def value(spec, split):
        jitter = noise[spec.seed] * (1 + ["relu", "tanh", "elu"].index(spec.activation)) * (spec.dropout > 0)
        return 0.85 + (gain[spec.activation] if spec.dropout else 0.0) + jitter + (0.05 if split == "train" else 0)

    store = synthetic_store(tmp_path / "regs.sqlite", suite, value)
    return command.load(suite, store, tmp_path / "out", None, timing=False)


def test_the_interaction_is_stated_where_the_activations_gain_differently(tmp_path):
    ctx = _regularized(tmp_path, {"relu": 0.02, "tanh": 0.0, "elu": 0.01})
    table = effects.interaction(ctx.runs, "regularizer", "none", "test_acc", ["dataset", "model"])
    assert table.iloc[0]["p_holm"] < 0.001 and list(table.iloc[0]["gains"]) == ["relu", "elu", "tanh"]
    text = factors.section_findings(ctx)
    assert "**dropout**: the activations gain differently (F(2, 6) = " in text
    assert "mean gains relu +2.0" in text and "tanh +0.0" in text and ": 2.00 pt apart" in text


def test_no_interaction_is_claimed_where_they_gain_alike(tmp_path):
    ctx = _regularized(tmp_path, {"relu": 0.01, "tanh": 0.01, "elu": 0.01})
    table = effects.interaction(ctx.runs, "regularizer", "none", "test_acc", ["dataset", "model"])
    assert table.iloc[0]["p_holm"] > 0.05
    text = factors.section_findings(ctx)
    assert "dropout: no evidence that the activations gain differently (F(2, 6) = " in text
    assert "- **relu** (mnist/mlp; none: test 0.8500" in text and "dropout: test +1.0" in text


def test_the_interaction_is_blocked_by_seed():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(6, 2))
    f_value, p_value, df_between, df_within = effects.blocked_anova(values)
    paired = scipy_stats.ttest_rel(values[:, 0], values[:, 1])  # two items: F is the paired t squared
    assert (df_between, df_within) == (1, 5)
    assert f_value == pytest.approx(paired.statistic**2) and p_value == pytest.approx(paired.pvalue)
    seeds = np.array([[-3.0], [0.0], [3.0], [-1.0], [2.0]])  # a seed's gain moves every item alike
    shifted = seeds + np.array([0.0, 0.1, 0.2]) + rng.normal(0, 0.01, size=(5, 3))
    assert effects.blocked_anova(shifted)[1] < 1e-6  # blocked: the 0.1 steps are plain
    assert scipy_stats.f_oneway(*shifted.T).pvalue > 0.5  # unblocked, the seeds' spread hides them
    assert effects.blocked_anova(np.ones((4, 3)))[:2] == (0.0, 1.0)
    assert np.isnan(effects.blocked_anova(np.ones((1, 3)))[0])


def test_gains_pair_each_run_with_its_seeds_run_without_the_regularizer():
    runs = pd.DataFrame(
        {
            "dataset": "d",
            "activation": ["relu"] * 4,
            "regularizer": ["none", "none", "L2", "L2"],
            "seed": [0, 1, 0, 1],
            "status": [Status.OK, Status.OK, Status.OK, Status.DIVERGED],
            "test_acc": [0.80, 0.90, 0.85, np.nan],
        }
    )
    out = effects.gains(runs, "regularizer", "none", "test_acc", ["dataset"])
    assert out["gain"].tolist() == pytest.approx([0.05]) and out["seed"].tolist() == [0]  # the diverged one: no gain


# ---------------------------------------------------------------------------------------------------------------
# Initializers and learning rates.


def test_init_findings_name_the_failing_initializer_and_the_paired_differences(tmp_path):
    suite = write_suite(
        tmp_path / "inits.toml",
        GRID + 'activation = ["relu", "tanh"]\ninit = ["auto", "normal", "lecun"]\nseeds = 3\n',
    )

    def value(spec, split):
        if spec.init == "normal":
            return 0.1 if spec.activation == "tanh" else 0.80 + 0.001 * spec.seed
        return 0.85 + 0.001 * spec.seed * (spec.init == "lecun")

    store = synthetic_store(tmp_path / "inits.sqlite", suite, value)
    ctx = command.load(suite, store, tmp_path / "out", None, timing=False)
    assert factors.factor(ctx) == "init"
    text = factors.section_findings(ctx)
    tanh = next(line for line in text.splitlines() if line.startswith("- **tanh**"))
    assert "trains with auto, lecun; fails with N(0, 1) (test 0.1000" in tanh
    relu = next(line for line in text.splitlines() if line.startswith("- **relu**"))
    assert "trains with auto, N(0, 1), lecun" in relu and "against auto: N(0, 1) -4.90 pt" in relu
    assert "N(0, 1) (`normal`) fails for 1 of 2 activations (tanh)" in text
    assert "## What this benchmark found" not in comparisons.section_findings(ctx)  # one opening only


def test_lr_findings_choose_on_validation_and_count_a_broken_rate_as_zero(tmp_path):
    suite = write_suite(
        tmp_path / "rates.toml", GRID + 'activation = ["relu", "tanh"]\nlr = [0.001, 0.01, 0.1]\nseeds = 2\n'
    )
    val = {0.001: 0.80, 0.01: 0.90, 0.1: 0.895}

    def value(spec, split):
        return val[spec.lr] - (0.2 if split == "test" and spec.lr == 0.1 else 0.0)  # the test split never chooses

    def status(spec):
        return Status.DIVERGED if spec.activation == "tanh" and spec.lr == 0.1 and spec.seed == 1 else Status.OK

    store = synthetic_store(tmp_path / "rates.sqlite", suite, value, status=status)
    ctx = command.load(suite, store, tmp_path / "out", None, timing=False)
    text = factors.section_findings(ctx)
    relu = next(line for line in text.splitlines() if line.startswith("- **relu**"))
    assert "best 0.01, validation 0.9000, test 0.9000; within a point of its best at 0.01, 0.1" in relu
    assert "mean over the grid 0.8650; no run broke" in relu
    tanh = next(line for line in text.splitlines() if line.startswith("- **tanh**"))
    assert "within a point of its best at 0.01;" in tanh and "mean over the grid 0.5667" in tanh
    assert "diverged or failed at 0.1" in tanh
    assert "the most forgiving, by the mean over the grid, is relu" in text


def test_a_verdict_flips_only_to_the_opposite_verdict_and_a_sign_change_in_a_tie_is_named():
    assert budget._fate("better", "worse") == "flips" and budget._fate("better", "tied") == "shrinks"
    assert budget._fate("worse", "worse") == "persists" and budget._fate("tied", "better") == "appears"
    both = pd.DataFrame(
        {
            "activation": ["silu", "elu"],
            "setting": ["cnn", "cnn"],
            "verdict_short": ["better", "better"],
            "verdict_long": ["tied", "tied"],
            "mean_diff_short": [0.0061, 0.0084],
            "mean_diff_long": [-0.0021, 0.0004],
            "fate": ["shrinks", "shrinks"],
        }
    )
    agreement = pd.DataFrame({"rho": [0.76]})
    text = budget.summary(agreement, both, ACCURACY)
    assert "2 shrink to no evidence (the mean difference changes sign for silu in cnn: better +0.61" in text
    assert "and 0 flip to the opposite verdict;" in text
    assert "elu in cnn" not in text


def test_without_relu_at_both_budgets_the_section_says_so(tmp_path):
    ctx = _two_budgets(tmp_path, '["elu", "tanh", "gelu"]', 2, lambda spec, split: 0.9, lambda spec, split: 0.9)
    assert "No relu runs at both budgets" in budget.section_budget(ctx)


@pytest.mark.parametrize(
    "rates, own",
    [
        ({("d1", "relu"): [0.1], ("d1", "elu"): [0.01]}, True),  # one rate each, differing: each at its own
        ({("d1", "relu"): [0.1], ("d1", "elu"): [0.1], ("d2", "relu"): [0.01], ("d2", "elu"): [0.01]}, False),
        ({("d1", "relu"): [0.1, 0.01], ("d1", "elu"): [0.1, 0.01]}, False),  # a grid of rates: lr is a setting
    ],
)
def test_each_activation_at_its_own_rate_is_told_from_shared_rates_and_from_a_grid(rates, own):
    rows = [
        {**dict.fromkeys(context.stats.SPEC_COLUMNS, "x"), "dataset": d, "activation": a, "lr": lr, "seed": s}
        for (d, a), grid in rates.items()
        for lr in grid
        for s in (0, 1)
    ]
    assert context._one_rate_each(pd.DataFrame(rows)) is own


def test_a_regularizer_suite_in_two_regimes_opens_with_its_regularizers_and_says_where_the_network_overfits(tmp_path):
    regimes = "".join(f"\n[[grid]]\nepochs = {e}\n\n[[grid]]\nepochs = {e}\ndropout = 0.3\n" for e in (2, 3))
    suite = write_suite(tmp_path / "regs.toml", GRID + 'activation = ["relu", "tanh"]\nseeds = 3\n' + regimes)
    noise = {0: 0.001, 1: -0.002, 2: 0.0015}

    def value(spec, split):  # train 6 pt above test: a gap of more than 5 pt in both regimes
        return 0.85 + noise[spec.seed] * (spec.dropout > 0) + (0.06 if split == "train" else 0)

    store = synthetic_store(tmp_path / "regs.sqlite", suite, value)
    ctx = command.load(suite, store, tmp_path / "out", None, timing=False)
    assert factors.factor(ctx) == "regularizer" and set(ctx.label_cols) == {"epochs", "regularizer"}
    longer = ctx.runs.loc[ctx.runs["epochs"].eq(3), "key"]
    last = ctx.epochs["key"].isin(longer) & ctx.epochs["epoch"].eq(2) & ctx.epochs["metric"].eq("loss")
    ctx.epochs.loc[last & ctx.epochs["split"].eq("val"), "value"] = 5.0  # validation loss rises at the end
    text = factors.section_findings(ctx)
    assert text.startswith("## What this benchmark found\n\nEach regularizer against none")
    lines = [line for line in text.splitlines() if "validation loss lowest" in line]
    assert len(lines) == 2 and "epochs=2" in lines[0] and "epochs=3" in lines[1]
    assert "+6.00 pt" in lines[0] and "it does not overfit by this measure" in lines[0]
    assert "lowest at epoch 1" in lines[1] and "5.000 at the end (epoch 2): **it overfits**" in lines[1]
