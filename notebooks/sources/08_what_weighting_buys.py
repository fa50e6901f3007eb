# %% [markdown]
# # 08 · What weighting buys: ranking, calibration and thresholds, compared fairly
#
# Questions answered: Q17, Q18, Q19, Q20
#
# **Goal.** Lessons 01 and 05 showed that `pos_weight` moves a model's optimum and its operating point.
# Here every common remedy for a rare class is trained the same way and scored the same way, so you can
# see what each one changes and what it leaves alone:
#
# 1. the data: the same 2 % of positives, once with separated classes and once with overlapping ones;
# 2. one experiment: 7 training methods × 2 regimes × 5 seeds, scored with scikit-learn's metrics (Q18),
#    and every comparison stated as a check with a margin that holds on at least 4 of 5 seeds (fewer for a
#    few checks, as each names): tiny models trained briefly have an outlier seed now and then;
# 3. calibration: the reliability diagram, the Brier score, and lesson 01's optimum shift checked on a
#    trained model, then undone (Q17);
# 4. a threshold chosen on validation data for a precision target, reported on test data (Q19);
# 5. an explorer: pick a method and a threshold, watch the PR point, the reliability diagram and the counts;
# 6. a "recall is 0" checklist to run on your own model, each check reported on its own (Q20).
#
# The findings follow the literature on imbalance corrections (van den Goorbergh et al., JAMIA 2022; Lin
# et al. 2017 on focal loss). Section 7 says what a two-feature experiment can and cannot show.

# %%
# %matplotlib widget

# %%
import copy
import dataclasses
import math

import torch
from matplotlib.figure import Figure
from sklearn.metrics import brier_score_loss

import bceweights as bw
from bceweights.lessons.calibration import (
    calibration_intercept,
    crossings,
    logistic_calibration,
    operating_point,
    probability_metrics,
    reliability_curve,
    threshold_for_precision,
    top_calibration,
)
from bceweights.lessons.diagnose import CHECK_NAMES, recall_zero_checklist
from bceweights.lessons.exercises import (
    LESSON08_1_QUESTION,
    LESSON08_2_QUESTION,
    LESSON08_3_QUESTION,
    LESSON08_4_QUESTION,
    check_lesson08_1,
    check_lesson08_2,
    check_lesson08_3,
    check_lesson08_4,
    lesson08_checklist_case,
    lesson08_threshold_data,
    print_questionnaire,
    show_solution,
)
from bceweights.lessons.explore import png_image
from bceweights.lessons.explore.calibration import CalibrationExplorer
from bceweights.lessons.metrics import precision_recall_curve
from bceweights.lessons.rare_class import (
    METHODS,
    REGIMES,
    TinyMLP,
    TrainingSetup,
    fit_together,
    largest_likelihood_ratio,
    logits_of,
    make_splits,
    run_experiment,
    share_where_half_is_reached,
    true_logit,
)
from bceweights.lessons.scoreboard import (
    CONFIDENCE,
    MIN_PRECISION,
    ROWS,
    format_tables,
    regime_rows,
    row_logits,
    score_experiment,
)
from bceweights.lessons.seeds import Spread, check_every_seed, check_pairs, over_seeds, wilson_interval

# Small problems run faster on one thread.
torch.set_num_threads(1)
_ = torch.manual_seed(0)
# Every comparison below is trained from five seeds: one trained model is one trajectory, and a
# perturbation of its initial weights by one float32 rounding step moves its figures in the 2nd digit.
SEEDS = tuple(range(5))

# %% [markdown]
# ## 1 · Two regimes with the same imbalance
#
# Each sample has two features. Negatives come from a standard normal cloud; positives, 2 % of the
# samples, from a tighter cloud (spread 0.6) whose centre lies at distance 3.5 (**separated**) or 1.5
# (**overlapping**). The share of positives is the same in both; only the overlap differs.
#
# Because the data come from known distributions, the true probability `P(y = 1 | x)` of every sample
# is known. A model cannot rank or calibrate better than that posterior: its AUROC and AUPRC (printed
# below, on seed 0's test split) are the best values those columns of section 2's tables can expect,
# and its Brier score the lowest.
# The t = 0.5 columns have no such ceiling: with this overlap at this share, the posterior itself finds
# nothing at 0.5.
#
# **Predict.** A plain BCE model is trained on each regime and thresholded at 0.5. In which regime will
# it find positives? Is "2 % positives" the problem?

# %%
setup = TrainingSetup()
print(setup)
for name, regime in REGIMES.items():
    test = make_splits(regime, 0, setup)["test"]
    best = probability_metrics(torch.logit(test.posterior), test.y)
    print(
        f"{name:<12} positive share {float(test.y.mean()):.4f}   true posterior: largest {float(test.posterior.max()):.3f}, "
        f"AUROC {best['auroc']:.3f}, AUPRC {best['auprc']:.3f}, Brier {best['brier']:.4f}"
    )

# %%
def plot_regimes():
    figure = Figure(figsize=(9.6, 3.4), layout="constrained")
    for axes, (name, regime) in zip(figure.subplots(1, 2), REGIMES.items()):
        sample = make_splits(regime, 0, setup)["train"]
        x, y = sample.x.numpy(), sample.y.numpy() > 0.5
        axes.scatter(x[~y, 0], x[~y, 1], s=2, color="tab:orange", alpha=0.3, label="negative (98 %)")
        axes.scatter(x[y, 0], x[y, 1], s=6, color="tab:blue", label="positive (2 %)")
        grid = torch.stack(torch.meshgrid(torch.linspace(-4, 6, 200), torch.linspace(-4, 4, 160), indexing="xy"), -1)
        posterior = torch.sigmoid(true_logit(grid.reshape(-1, 2).double(), regime)).reshape(grid.shape[:2])
        contours = axes.contour(grid[..., 0], grid[..., 1], posterior, levels=[0.1, 0.5], colors=["0.5", "k"], linewidths=1)
        axes.clabel(contours, fmt={0.1: "P(y=1|x) = 0.1", 0.5: "0.5"}, fontsize=7)
        axes.set_title(f"{name}: centre distance {regime.separation:g}")
        axes.set_xlim(-4, 6)
        axes.set_ylim(-4, 4)
        axes.set_aspect("equal")
    figure.axes[0].legend(loc="lower left", fontsize=7, markerscale=3)
    return figure


png_image(plot_regimes())

# %% [markdown]
# **Reveal.** In the overlapping regime the true posterior never reaches 0.5 (its largest value on the
# test samples is 0.247, and there is no 0.5 contour on the right): even where positives are densest,
# most samples there are negatives. A *perfect* model says
# "negative" everywhere at threshold 0.5, so recall 0 is the right answer to the wrong question. With
# separated classes, the same 2 % share is no problem at all.
#
# Is it then the overlap alone that decides? No: Bayes' rule splits the posterior odds into two factors,
#
# `P(y=1|x) / P(y=0|x) = LR(x) · π / (1 − π)`, with the likelihood ratio `LR(x) = p(x | y=1) / p(x | y=0)`,
#
# so the posterior reaches 0.5 exactly where `LR(x) ≥ (1 − π) / π`. The overlap sets how large `LR` can
# get; the share `π` sets the bar it must clear (49 at 2 %). The cell below computes both for the
# overlapping clouds (`largest_likelihood_ratio`, from the data's formula; no training), then keeps the
# same clouds and raises the share to 10 %.

# %%
overlap = REGIMES["overlapping"]
largest_lr = largest_likelihood_ratio(overlap)
print(f"separated clouds:   largest LR(x) = {largest_likelihood_ratio(REGIMES['separated']):.4g}")
print(f"overlapping clouds: largest LR(x) = {largest_lr:.4g}; 0.5 is reached from a share of "
      f"{share_where_half_is_reached(overlap):.4f} (= 1 / (1 + LR))")
for share in (0.02, 0.10):
    odds = largest_lr * share / (1 - share)
    regime = dataclasses.replace(overlap, positive_share=share)
    sample = make_splits(regime, 0, setup)["test"]
    found = sample.posterior >= 0.5
    print(
        f"share {share:.2f}: bar (1 - π)/π = {(1 - share) / share:.4g}, largest posterior {odds / (1 + odds):.4f} "
        f"(test samples of seed 0: {float(sample.posterior.max()):.4f}); true posterior >= 0.5 on {int(found.sum())} "
        f"of {len(sample)} samples, recall {float(sample.y[found].sum() / sample.y.sum()):.4f}"
    )

# %% [markdown]
# With the same overlap, the largest `LR` is 16.11, so the true posterior reaches 0.5 from a share of
# 5.84 % on; at 2 % it peaks at 0.2474, at 10 % at 0.6416, and a perfect model thresholded at 0.5 then
# finds positives (recall 0.3032 on seed 0's test samples). The share and the overlap decide *together*
# whether 0.5 finds anything: what matters is the likelihood ratio against the prior odds. The separated
# clouds clear the 2 % bar easily (their largest `LR` is about 4 × 10⁴, printed above); the overlapping
# ones do not.

# %% [markdown]
# ## 2 · One experiment: every method, both regimes, five seeds (Q18)
#
# `METHODS` holds the seven training methods. Every one trains the same small network (2 → 16 → 16 → 1,
# float64) for the same 120 Adam steps from the same initial weights (per seed), and only the loss or the
# sampling changes:
#
# * **plain BCE**; **`pos_weight = neg/pos`** (`bw.bce_with_logits(..., pos_weight=...)`);
# * **oversampling**: batches drawn with `torch.utils.data.WeightedRandomSampler` so that each class is
#   drawn equally often;
# * **focal loss**, γ = 2, with α = 0.25 (Lin et al.'s choice) and α = 0.75 (`bw.focal_bce_with_logits`);
# * **Dice** (`bceweights.lessons.dice.soft_dice_with_logits`, over each batch) and **BCE + Dice**.
#
# The output bias starts at the prior logit `log(pos/neg)` for plain BCE, focal loss and Dice (the
# empty-model optimum of plain BCE only: a constant model's focal loss is lowest near logit −1.85 for
# α = 0.25 and −1.04 for α = 0.75, and soft Dice with `smooth = 1` has no finite one). `pos_weight` and
# oversampling start at 0, the empty-model optimum of their balanced loss, shifted by `log(neg/pos)`.
#
# Each seed draws new training, validation and test samples and new initial weights. Why five seeds? A
# network this small, trained for 120 steps, is chaotic: perturb its initial weights by one part in
# ten million and its test figures move in the second digit. A figure that one seed shows is an
# accident of its trajectory; what a method does is what the seeds show together, and each check below
# says on how many of them it must hold. The cell below trains
# all 70 models (the five seeds of a method train side by side, `fit_together`); everything after it
# only reads their logits. Change the experiment here (a method, `TrainingSetup(epochs=...)`, the
# seeds) and run the lesson again.

# %% tags=["nbval-ignore-output"]
experiment = run_experiment(methods=tuple(METHODS), regimes=tuple(REGIMES), seeds=SEEDS, setup=setup)
print(f"{len(experiment.runs)} models trained in {experiment.seconds:.1f} s")

# %% [markdown]
# Two rows reuse a trained model: **plain BCE with a tuned threshold**, and **`pos_weight` with the logit
# shifted back by `−log p`** (lesson 01: `pos_weight = p` moves the optimal logit by `log p`, so
# subtracting it should undo the shift). The threshold is tuned on the validation split for a precision
# target (0.9 with separated classes, 0.15 with overlapping ones); section 4 explains how.
#
# Each cell of the tables reads `mean ± sd (lowest–highest)` over the five seeds, printed to the digits
# the spread supports: `0.15 ± 0.01` means the second digit is all the seeds agree on. (These two cells
# are not compared by the lesson's regression test: their digits move with the trajectory. The cell
# after them prints what does not.)
#
# **Predict.** Which columns will the methods change: the ranking (AUROC, AUPRC), the calibration (Brier
# score, slope, intercept, ECE), or the operating point at 0.5?

# %% tags=["nbval-ignore-output"]
table = score_experiment(experiment)
print(format_tables(table, "separated"))

# %% tags=["nbval-ignore-output"]
print(format_tables(table, "overlapping"))

# %% [markdown]
# The findings, each stated as a check with a margin (the words of the claim, not the measured
# extremes) and tested seed by seed. Every check about trained models asks for at least 4 of 5 seeds
# (`[ok] ...: on at least 4 of 5 seeds`; a few ask for 3 or 2 and say so), not for every seed: the margins
# were tried on seeds 0 to 44, five at a time, and tiny models trained for 120 steps have an outlier
# trajectory now and then (seed 36 missed six checks at once that seeds 0 to 24 had all met). Only the
# check on the true posterior, which involves no training, asks for every seed.

# %%
separated, overlapping = regime_rows(table, "separated"), regime_rows(table, "overlapping")
PLAIN, SHIFTED = "plain BCE, t = 0.5", "pos_weight, logit - log p"
TRAINED = [label for label in overlapping if label != "plain BCE, tuned t"]


def worst(rows, labels, column, *, minus=None, key=abs):
    """Per seed, the value (or the gap to row ``minus``) of the row that lies farthest out by ``key``."""
    per_row = [rows[label][column].minus(rows[minus][column]) if minus else rows[label][column] for label in labels]
    return Spread(tuple(max((s.values[i] for s in per_row), key=key) for i in range(len(SEEDS))), per_row[0].seeds)


def posterior_auroc(seed):
    test_split = experiment.splits[("overlapping", seed)]["test"]
    return {"auroc": probability_metrics(torch.logit(test_split.posterior), test_split.y)["auroc"]}


ceiling = over_seeds(posterior_auroc, SEEDS)["auroc"]


def recall_gain_where_met(rows):
    """Per seed, the largest tuned-recall gain over plain BCE among the methods that, like plain BCE, met the
    precision target on validation (0 where plain BCE missed it: a fallback threshold lands anywhere)."""
    gains = []
    for i in range(len(SEEDS)):
        if rows[PLAIN]["tuned_reached"].values[i] < 0.5:
            gains.append(0.0)
            continue
        plain_recall = rows[PLAIN]["tuned_recall"].values[i]
        met = [rows[label]["tuned_recall"].values[i] - plain_recall for label in TRAINED if rows[label]["tuned_reached"].values[i] >= 0.5]
        gains.append(max(met, default=0.0))
    return Spread(tuple(gains), rows[PLAIN]["tuned_recall"].seeds)
not_dice = [label for label in TRAINED if label != "Dice"]
findings = [
    check_every_seed("separated: every method's AUROC above 0.995", worst(separated, TRAINED, "auroc", key=lambda v: -v), above=0.995, at_least=4),
    check_every_seed("overlapping: every method but Dice within 0.02 of plain BCE's AUROC",
                     worst(overlapping, not_dice, "auroc", minus=PLAIN), above=-0.02, below=0.02, at_least=4),
    check_every_seed("overlapping: Dice's AUROC at most 0.08 below plain BCE's",
                     overlapping["Dice"]["auroc"].minus(overlapping[PLAIN]["auroc"]), above=-0.08, below=0.02, at_least=4),
    check_every_seed("overlapping: every method's AUPRC within 0.02 of plain BCE's",
                     worst(overlapping, TRAINED, "auprc", minus=PLAIN), above=-0.02, below=0.02, at_least=4),
    check_every_seed("overlapping: plain BCE's AUROC within 0.03 of the true posterior's",
                     overlapping[PLAIN]["auroc"].minus(ceiling), above=-0.03, below=0.01, at_least=4),
    check_every_seed("overlapping: plain BCE calibrated, slope in 0.7-1.3", overlapping[PLAIN]["slope"], above=0.7, below=1.3, at_least=4),
    check_every_seed("overlapping: plain BCE calibrated, intercept (slope 1) within ±0.6", overlapping[PLAIN]["intercept_slope1"],
                     above=-0.6, below=0.6, at_least=4),
    check_every_seed("overlapping: plain BCE's ECE below 0.02", overlapping[PLAIN]["ece"], below=0.02, at_least=4),
]
for label in ("pos_weight = neg/pos", "oversampling (balanced)"):
    ratio = Spread(tuple(a / b for a, b in zip(overlapping[label]["brier"].values, overlapping[PLAIN]["brier"].values)), overlapping[PLAIN]["brier"].seeds)
    findings += [
        check_every_seed(f"overlapping: {label} Brier more than 4 x plain BCE's", ratio, above=4, at_least=4),
        check_every_seed(f"overlapping: {label} intercept below -3 (about -log(neg/pos))", overlapping[label]["intercept"], below=-3, at_least=4),
    ]
findings += [
    check_every_seed("overlapping: focal loss slopes above 1.8 (too timid)",
                     worst(overlapping, ["focal γ=2, α=0.25", "focal γ=2, α=0.75"], "slope", key=lambda v: -v), above=1.8, at_least=4),
    check_every_seed("overlapping: Dice and BCE + Dice slopes below 0.7 (too extreme)",
                     worst(overlapping, ["Dice", "BCE + Dice"], "slope"), below=0.7, at_least=4),
    check_every_seed("overlapping: logit - log p brings pos_weight's Brier within 15 % of plain BCE's",
                     Spread(tuple(a / b for a, b in zip(overlapping[SHIFTED]["brier"].values, overlapping[PLAIN]["brier"].values)), overlapping[PLAIN]["brier"].seeds),
                     above=0.85, below=1.15, at_least=4),
    check_every_seed("overlapping: logit - log p brings pos_weight's ECE below 0.02", overlapping[SHIFTED]["ece"], below=0.02, at_least=4),
]
for finding in findings:
    print(finding)

# %% [markdown]
# The shift's repair, per seed, in both regimes: pos_weight's Brier score after `logit − log p`, divided
# by plain BCE's.

# %% tags=["nbval-ignore-output"]
for regime_name, rows in (("separated", separated), ("overlapping", overlapping)):
    ratios = [a / b for a, b in zip(rows[SHIFTED]["brier"].values, rows[PLAIN]["brier"].values)]
    print(f"{regime_name:<12} shifted Brier / plain Brier per seed: {', '.join(f'{v:.2f}' for v in ratios)}")

# %% [markdown]
# And the operating points. A precision from a handful of predicted positives means little: the
# shifted model at 0.5 predicts from none to a few dozen of the 20 000 test samples positive (fewer than 200 on
# at least 4 of 5 seeds; about 400 on one seed of other ranges), and its
# precision is then best given as a Wilson interval (`wilson_interval(tp, predicted)`), printed per seed
# below: "1 of 4" is a precision anywhere between about 0.05 and 0.7.

# %% tags=["nbval-ignore-output"]
for label in (PLAIN, SHIFTED, "focal γ=2, α=0.25"):
    row = overlapping[label]
    intervals = []
    for seed, tp, predicted in zip(SEEDS, row["tp"].values, row["predicted"].values):
        low, high = wilson_interval(int(tp), int(predicted))
        intervals.append(f"seed {seed}: {int(tp)} of {int(predicted)} ({low:.2f}–{high:.2f})")
    print(f"{label:<26} precision at 0.5, true of predicted positives (95 % Wilson interval): " + "; ".join(intervals))

# %%
tuned_precision = worst(overlapping, TRAINED, "tuned_precision", minus=None, key=lambda v: abs(v - MIN_PRECISION["overlapping"]))
operating = [
    check_every_seed("separated: plain BCE at 0.5 finds most positives (recall above 0.5)", separated[PLAIN]["recall"], above=0.5, at_least=4),
    check_every_seed("overlapping: plain BCE at 0.5 finds almost none (recall below 0.05)", overlapping[PLAIN]["recall"], below=0.05, at_least=4),
    check_every_seed("overlapping: pos_weight at 0.5 recall above 0.8",
                     overlapping["pos_weight = neg/pos"]["recall"], above=0.8, at_least=4),
    check_every_seed("overlapping: oversampling at 0.5 recall above 0.8",
                     overlapping["oversampling (balanced)"]["recall"], above=0.8, at_least=4),
    check_every_seed("overlapping: the shifted model at 0.5 predicts fewer than 200 of 20000 positive",
                     overlapping[SHIFTED]["predicted"], below=200, at_least=4),
    check_every_seed("separated: at the tuned threshold every method's test precision above 0.85",
                     worst(separated, TRAINED, "tuned_precision", key=lambda v: -v), above=0.85, at_least=4),
    check_every_seed("overlapping: at the tuned threshold every method's test precision in 0.12-0.23",
                     tuned_precision, above=0.12, below=0.23, at_least=4),
    check_every_seed("overlapping: where both met the target on validation, no method's tuned recall beats plain BCE's by 0.15",
                     recall_gain_where_met(overlapping), below=0.15, at_least=4),
]
for finding in operating:
    print(finding)

# %% [markdown]
# **Reveal.** Read the tables column by column, and the checks beside them.
#
# * **Ranking barely moves.** The AUROC is about 0.999 for every method with separated classes (above
#   0.995 on at least 4 of 5 seeds), and about 0.90–0.92 with overlapping ones: every method but Dice stays within
#   0.02 of plain BCE's on at least 4 of 5 seeds, and every AUPRC within 0.02 of plain BCE's on at least 4 of 5 seeds.
#   No remedy teaches the model to tell positives from negatives
#   better; they all learn about the same ordering, close to the true
#   posterior's (section 1). Dice alone sometimes loses ranking: its AUROC is 0.88–0.92 in the stored run,
#   within 0.08 of plain BCE's on at least 4 of 5 seeds, and on another seed range it fell to 0.82.
# * **Calibration suffers.** Plain BCE is calibrated *on the whole* (with overlap: slope 0.86–1.06,
#   intercept (slope fixed at 1) −0.4 to 0.4, ECE below 0.01 over these seeds). The checks ask for a slope
#   in 0.7–1.3 and an intercept within ±0.6 on at least 4 of 5 seeds, since other seeds gave one run with a
#   slope just under 0.7 (0.6996) and another with an intercept of 0.64, and for an ECE below 0.02 on
#   at least 4 of 5 seeds;
#   the next cells show where it often is not: at the top, where thresholds are chosen. `pos_weight` and
#   oversampling push every probability up: the joint-fit intercept falls to about −3.5 to −4.2 here (below −3 on
#   at least 4 of 5 seeds), near `−log(neg/pos) ≈ −3.8`, and the Brier score grows about six to ten times (more
#   than 4 times on at least 4 of 5 seeds). Focal loss gives slopes far above 1 (2.2 to 2.8 over these seeds, above
#   1.8 on at least 4 of 5; one run of other seeds gave 1.6): its probabilities are squeezed toward the
#   middle, too timid; Dice and BCE + Dice slopes far below 1
#   (0.11 to 0.50 here, below 0.7 on at least 4 of 5 seeds; one Dice run of other seeds reached 1.0): too
#   extreme.
# * **With overlapping classes, shifting back repairs `pos_weight`.** Subtracting `log p` from the
#   weighted model's logits brings its Brier score back to within 15 % of plain BCE's (in fact within
#   5 % on most seeds; 1.27 on one seed of other ranges), and its ECE below 0.02, on at least 4 of 5 seeds: lesson 01's prediction holds on a trained model
#   (section 3). (With separated classes the optimum lies at extreme logits that 120 steps do not
#   reach: there the shifted Brier is 0.8–1.5 times plain BCE's in the stored run, and from 0.7 up to
#   about 2.3 on other seeds, printed per seed below the checks.)
# * **The threshold reaches the same operating points.** At 0.5 the methods differ wildly: with overlap,
#   plain BCE finds almost nothing (recall below 0.05 on at least 4 of 5 seeds), `pos_weight` and oversampling
#   about 90 % of the positives (recall above 0.8 on at least 4 of 5 seeds for both). At the threshold tuned on validation for precision 0.15, every method
#   lands at test precision 0.12–0.23 (in fact about 0.15–0.19 here), and, where both met the target on
#   validation, no method's recall beats plain BCE's by 0.15 (the recalls are about 0.3–0.53 here, and vary more
#   from seed to seed than from method to method; one seed of other ranges gave Dice +0.10), both on at
#   least 4 of 5 seeds. Not on every seed: a method whose validation precision
#   never reaches the target with confidence gets a fallback threshold (the point of highest precision,
#   often a handful of predictions) and lands anywhere, e.g. test precision 0.5 with recall near 0. The
#   tuned table's last column, `target met on validation`, names such seeds; read their precision
#   and recall as a miss, not as a threshold that met the target. A method that "raises recall" at 0.5 has mostly moved along its curve, which a
#   threshold does for free, keeping the probabilities calibrated. (A threshold that predicts nothing
#   has precision 0 in the table, scikit-learn's `zero_division=0`; the explorer shows 1, the PR
#   curve's end. The shifted model's precision at 0.5 in the table is a mean over seeds of a few
#   predictions each; its Wilson intervals above are far too wide to read a precision from.)
#
# **Where a small ECE hides miscalibration.** With 2 % positives most probabilities are tiny: the
# equal-width ECE is a mean over samples, and most samples fall in its first bin [0, 0.1], so that bin
# decides it. Equally filled (quantile) bins do not help much here, since most of them lie below 0.1
# too (the table's "ECE, quantile bins" column). The table also gives the intercept with the slope
# fixed at 1 (calibration-in-the-large, as van den Goorbergh et al. report it) beside the joint fit's:
# the two differ whenever the slope is not 1. What a threshold needs is calibration among the highest
# scores. The test samples' true posterior `q` is known, so the cell below compares, among the top 1 %
# of plain BCE's test probabilities, their mean with the mean `q` of the same samples (no label noise).

# %% tags=["nbval-ignore-output"]
def plain_top_calibration(seed):
    test_split = experiment.splits[("overlapping", seed)]["test"]
    p_test = torch.sigmoid(experiment.run("plain BCE", "overlapping", seed).test_logits)
    predicted_top, observed_top, count = top_calibration(p_test, test_split.y, share=0.01)
    in_top = p_test >= torch.quantile(p_test, 0.99)
    scores = probability_metrics(torch.logit(p_test), test_split.y)
    return {
        "share of p̂ below 0.1": float((p_test < 0.1).double().mean()),
        "ECE (equal-width)": scores["ece"],
        "ECE (quantile bins)": scores["ece_quantile"],
        "top 1 %: mean p̂": predicted_top,
        "top 1 %: mean true q": float(test_split.posterior[in_top].mean()),
        "top 1 %: observed share": observed_top,
        "top 1 %: |mean p̂ - mean q| / ECE": abs(predicted_top - float(test_split.posterior[in_top].mean())) / scores["ece"],
        "intercept, slope 1": scores["intercept_slope1"],
        "intercept, joint fit": scores["intercept"],
    }


plain_top_cal = over_seeds(plain_top_calibration, SEEDS)
for name, spread in plain_top_cal.items():
    print(f"{name:<34} {spread.format()}   per seed: {', '.join(f'{v:.4f}' for v in spread.values)}")

# %%
print(check_every_seed("plain BCE: more than 85 % of test probabilities below 0.1", plain_top_cal["share of p̂ below 0.1"], above=0.85, at_least=4))
print(check_every_seed("plain BCE: top 1 %'s |mean p̂ - mean q| more than 2 x the ECE",
                       plain_top_cal["top 1 %: |mean p̂ - mean q| / ECE"], above=2, at_least=2))
print(check_every_seed("plain BCE: calibration-in-the-large (slope 1) within ±0.6",
                       plain_top_cal["intercept, slope 1"], above=-0.6, below=0.6, at_least=4))
print(check_every_seed("pos_weight: calibration-in-the-large (slope 1) below -3",
                       overlapping["pos_weight = neg/pos"]["intercept_slope1"], below=-3, at_least=4))

# %% [markdown]
# Plain BCE's ECE is below 0.01 here because more than 85 % of its test probabilities are below 0.1, where
# it is well calibrated. Among its top 1 % the mean probability misses the mean true posterior by more
# than twice the ECE on most seeds (5 to 34 times it on these five; the check asks for at least 2 of 5,
# because on some seeds of other ranges the top 1 % was as well calibrated as the whole, 0.5 times the
# ECE on one), too high on four seeds and too low on one (seed 4) in this
# run (about 0.16–0.40 against 0.18–0.20 over these seeds). So "calibrated" is true on the whole and
# often fails at the top: a threshold read as a probability
# there ("predict positive above 0.25") can be off, which is one more reason to choose the threshold on
# validation data for a precision target (section 4) rather than from the probability scale. With
# the slope fixed at 1, plain BCE's intercept stays within ±0.6 on at least 4 of 5 seeds (−0.4 to 0.4
# here; one run of other seeds reached 0.64), and `pos_weight`'s falls below −3 on at least 4 of 5 seeds.

# And imbalance against overlap: with separated classes plain BCE at 0.5 finds most positives, with
# overlapping classes almost none. The share is the same, so here the overlap made the difference; but
# the same overlapping clouds at a 10 % share would let 0.5 find positives (section 1). What makes a
# rare class hard at 0.5 is a likelihood ratio that never clears the prior odds `(1 − π) / π`.

# %% [markdown]
# ## 3 · Calibration, and lesson 01's optimum checked on a trained model (Q17)
#
# A model is **calibrated** when, among the samples it gives probability 0.2, about 20 % are positive.
# The **reliability diagram** plots that: bin the predictions, and draw the observed frequency of
# positives in each bin (`sklearn.calibration.calibration_curve`) against the mean prediction. The
# **Brier score** `mean((p̂ − y)²)` (`sklearn.metrics.brier_score_loss`) combines, in one number,
# the calibration error (added), the resolution (how far the predictions separate positives from
# negatives, subtracted) and the base rate's own uncertainty. The **calibration slope and intercept**
# come from refitting `y ~ sigmoid(a + b · logit p̂)`:
# `b = 1`, `a = 0` for a calibrated model.
#
# **Predict.** Lesson 01 says a model trained with `pos_weight = p` outputs, near its optimum,
# `bw.optimal_probability(q, p) = p q / (p q + 1 − q)` where the true frequency is `q`, i.e. the logit
# `logit(q) + log p`. Here the true `q` of every test sample is known. Where will the weighted model's
# probabilities lie against it: on the diagonal, or on lesson 01's curve?

# %% tags=["nbval-ignore-output"]
REGIME, SEED = "overlapping", SEEDS[0]


def against_lesson01(seed):
    """Distances of the weighted model's test probabilities from q and from lesson 01's curve, for one seed."""
    test_split = experiment.splits[(REGIME, seed)]["test"]
    weighted_run, plain_run = experiment.run("pos_weight = neg/pos", REGIME, seed), experiment.run("plain BCE", REGIME, seed)
    p_seed = weighted_run.pos_weight
    weighted_p = torch.sigmoid(weighted_run.test_logits)
    back = torch.sigmoid(weighted_run.test_logits - math.log(p_seed))
    return {
        "logit gap - log p": float((weighted_run.test_logits - plain_run.test_logits).mean()) - math.log(p_seed),
        "|p̂ - q|": float((weighted_p - test_split.posterior).abs().mean()),
        "|p̂ - optimal_probability(q, p)|": float((weighted_p - bw.optimal_probability(test_split.posterior, p_seed)).abs().mean()),
        "|shifted back - q|": float((back - test_split.posterior).abs().mean()),
        "Brier plain": brier_score_loss(test_split.y, torch.sigmoid(plain_run.test_logits)),
        "Brier weighted": brier_score_loss(test_split.y, weighted_p),
        "Brier shifted back": brier_score_loss(test_split.y, back),
    }


shift_check = over_seeds(against_lesson01, SEEDS)
for name, spread in shift_check.items():
    print(f"{name:<34} {spread.format()}   per seed: {', '.join(f'{v:.4f}' for v in spread.values)}")

# %%
splits = experiment.splits[(REGIME, SEED)]
test = splits["test"]
weighted = experiment.run("pos_weight = neg/pos", REGIME, SEED)
plain = experiment.run("plain BCE", REGIME, SEED)
p = weighted.pos_weight  # neg/pos of this seed's training split: data, not training
print(f"seed {SEED}: pos_weight p = neg/pos = {p:.4g}, log p = {math.log(p):.4g}")
print(check_every_seed("weighted p̂ lies at most half as far from lesson 01's curve as from q",
                       shift_check["|p̂ - optimal_probability(q, p)|"].minus(Spread(tuple(0.5 * v for v in shift_check["|p̂ - q|"].values), tuple(SEEDS))), below=0, at_least=4))
print(check_every_seed("the weighted model's logits sit log p ± 1.5 above the plain model's", shift_check["logit gap - log p"],
                       above=-1.5, below=1.5, at_least=4))
print(check_every_seed("logit - log p lies within 0.03 of q on average", shift_check["|shifted back - q|"], below=0.03, at_least=4))
print(check_pairs("logit - log p lowers the weighted Brier score more than 4 times",
                  shift_check["Brier weighted"], Spread(tuple(4 * v for v in shift_check["Brier shifted back"].values), tuple(SEEDS)), at_least=4))

# %%
predicted = torch.sigmoid(weighted.test_logits)
shifted = torch.sigmoid(weighted.test_logits - math.log(p))


def plot_calibration():
    figure = Figure(figsize=(9.6, 3.8), layout="constrained")
    left, right = figure.subplots(1, 2)
    order = torch.argsort(test.posterior)
    every = order[:: max(1, len(order) // 1500)]
    right.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="calibrated: p̂ = q")
    right.scatter(test.posterior[every], predicted[every], s=4, color="tab:red", label="pos_weight model")
    right.scatter(test.posterior[every], shifted[every], s=4, color="tab:green", label="same, logit − log p")
    q_grid = torch.linspace(0, 0.3, 100, dtype=torch.float64)
    right.plot(q_grid, bw.optimal_probability(q_grid, p), color="k", linewidth=1.5, label="lesson 01: optimal_probability(q, p)")
    right.set_xlim(0, 0.3)
    right.set_ylim(0, 1)
    right.set_xlabel("true posterior q of the test sample")
    right.set_ylabel("model's probability p̂")
    right.set_title(f"seed {SEED}, one run: the weighted model on lesson 01's curve", fontsize=10)
    right.legend(fontsize=7, loc="lower right", markerscale=3)

    left.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="calibrated")
    for label in ("plain BCE, t = 0.5", "pos_weight = neg/pos", "pos_weight, logit - log p", "focal γ=2, α=0.25", "Dice"):
        row = next(r for r in ROWS if r.label == label)
        _, logits = row_logits(experiment.run(row.method, REGIME, SEED), row)
        mean_predicted, observed, _ = reliability_curve(torch.sigmoid(logits), test.y, bins=10)
        left.plot(mean_predicted, observed, marker="o", markersize=3, linewidth=1.2, label=label.replace(", t = 0.5", ""))
    left.set_xlim(0, 1)
    left.set_ylim(0, 1)
    left.set_xlabel("mean predicted probability (10 equal bins)")
    left.set_ylabel("observed frequency of positives")
    left.set_title(f"reliability diagram, {REGIME}, seed {SEED} (one run)", fontsize=10)
    left.legend(fontsize=7, loc="upper left")
    return figure


png_image(plot_calibration())

# %% [markdown]
# **Reveal.** The figure shows one run (network seed 0), for its picture; the numbers are those of all
# five seeds. The weighted model's probabilities (red) lie along lesson 01's curve, not along the
# diagonal: their mean distance to `optimal_probability(q, p)` is less than half their distance to the
# true posterior on at least 4 of 5 seeds (about 0.03–0.06 against 0.18–0.24 here). The trained model does what the
# optimum predicts, to within what 120 Adam steps on about 120 positives allow: its logits sit on
# average about `log p ≈ 3.8` above the plain model's (within ±1.5 of it on at least 4 of 5 seeds; −0.3
# to +0.4 over these seeds, but a trajectory can land up to about 1.6 below it on other seeds). Subtracting `log p` (green) puts the points back near the diagonal (mean distance
# below 0.03 on at least 4 of 5 seeds), and the Brier score down more than four times, to plain BCE's level
# (section 2's checks). That holds for these overlapping classes, whose optimum lies at moderate logits;
# with separated classes it is not reached in 120 steps and the shift repairs less (section 2).
#
# So, for Q17: to get calibrated probabilities from a model trained with `pos_weight = p`, use
# `sigmoid(logit − log p)`. That inverts the shift *at the optimum*; a trained model is not at it
# (120 steps, about 120 positives), so the shift is approximately right, not exactly. Check it on
# validation data, and refit if needed: the cheapest refit keeps the slope at 1 and fits one intercept
# `a` on validation (`calibration_intercept`, the calibration-in-the-large), then predicts
# `sigmoid(logit − log p + a)`; the next step fits both, `sigmoid(a + b · (logit − log p))`
# (`logistic_calibration`, Platt scaling). The cell below fits both on each seed's validation split and
# scores them on its test split.
#
# On the reliability diagram, focal loss bends toward the middle and Dice reaches the extremes; the
# weighted model runs far below the diagonal (it predicts too high everywhere), as the table's slopes and
# intercepts say for most seeds. Focal loss and Dice have no closed-form inverse at all: for them the
# refit is the only repair (or better, train with BCE and move the threshold).

# %% tags=["nbval-ignore-output"]
def refit_shifted(seed):
    """The weighted model's logit - log p, as it is and refit on validation (intercept; intercept and slope), scored on test."""
    splits_seed = experiment.splits[(REGIME, seed)]
    run = experiment.run("pos_weight = neg/pos", REGIME, seed)
    val_z, test_z = run.val_logits - math.log(run.pos_weight), run.test_logits - math.log(run.pos_weight)
    a_only = calibration_intercept(val_z, splits_seed["val"].y)
    a_joint, b_joint = logistic_calibration(val_z, splits_seed["val"].y)
    scored = {
        "shifted": probability_metrics(test_z, splits_seed["test"].y),
        "refit a": probability_metrics(test_z + a_only, splits_seed["test"].y),
        "refit a, b": probability_metrics(a_joint + b_joint * test_z, splits_seed["test"].y),
    }
    plain_brier = probability_metrics(experiment.run("plain BCE", REGIME, seed).test_logits, splits_seed["test"].y)["brier"]
    row = {"validation a (slope 1)": a_only, "validation b (joint)": b_joint}
    for name, m in scored.items():
        row[f"{name}: test intercept, slope 1"] = m["intercept_slope1"]
        row[f"{name}: test slope"] = m["slope"]
        row[f"{name}: test Brier / plain BCE's"] = m["brier"] / plain_brier
    return row


refits = over_seeds(refit_shifted, SEEDS)
for name, spread in refits.items():
    print(f"{name:<40} {spread.format()}   per seed: {', '.join(f'{v:.3f}' for v in spread.values)}")

# %%
print(check_every_seed("logit - log p alone: test intercept (slope 1) within ±1 (the shift is about right)",
                       refits["shifted: test intercept, slope 1"], above=-1, below=1, at_least=4))
print(check_every_seed("refit a on validation: test intercept (slope 1) within ±0.2",
                       refits["refit a: test intercept, slope 1"], above=-0.2, below=0.2, at_least=4))
print(check_every_seed("refit a, b on validation: test slope in 0.75-1.25",
                       refits["refit a, b: test slope"], above=0.75, below=1.25, at_least=4))
print(check_every_seed("refit a, b: test Brier no more than 5 % above plain BCE's",
                       refits["refit a, b: test Brier / plain BCE's"], below=1.05, at_least=4))

# %% [markdown]
# The shift alone leaves the test intercept (slope fixed at 1) off by about −0.6 to +0.2 on these seeds
# (within ±1 on at least 4 of 5; −1.14 on one seed of other ranges): close, not exact. Refitting that one intercept on validation brings it within ±0.2 of 0 on the test
# split on at least 4 of 5 seeds (−0.10 to +0.06 on these); refitting the slope too brings the slope close to 1
# (0.99–1.04 in the stored run; 0.86–1.21 over seeds 0 to 44, so the check asks for 0.75–1.25), and
# the Brier score to no more than 5 % above plain BCE's, on at least 4 of 5 seeds. Validation data decide; the formula gives
# the starting point.

# %% [markdown]
# ## 4 · A precision target: choose on validation, report on test (Q19)
#
# "I need precision of at least X" is a question about the threshold, answered on data the model was
# not trained on, in two steps:
#
# 1. on the **validation** split, take the lowest threshold whose precision is at least X (the most
#    recall at that precision): `threshold_for_precision(val_scores, val_y, X)`, built on
#    `sklearn.metrics.precision_recall_curve`;
# 2. on the **test** split, which played no part in the choice, report precision and recall at that
#    threshold. The validation precision is at least X by construction; the test precision is the honest
#    number, and it may be lower.
#
# Step 1 has a trap. Near the target, the validation precision of a noisy curve goes up and down across
# X many times as the threshold falls, and "the lowest threshold at or above X" is then the last of
# those crossings: a matter of a few samples, which another seed (or a perturbation of one rounding
# step) moves a long way. The steadier rule, which the tables of section 2 use, asks the **Wilson lower
# bound** of that precision (95 % confidence, TP successes out of TP + FP predictions) to reach X:
# `threshold_for_precision(val_scores, val_y, X, confidence=0.95)`. It takes a threshold only where the
# predictions are numerous enough to show the target, and it is why the validation split here is
# large (40 000 samples, about 800 positives: it costs one forward pass).
#
# **Predict.** On the overlapping regime, with X = 0.15: how often does the validation precision cross
# 0.15? Will the test precision reach 0.15 for each model?

# %% tags=["nbval-ignore-output"]
target = MIN_PRECISION[REGIME]
THRESHOLD_METHODS = ("plain BCE", "pos_weight = neg/pos", "focal γ=2 α=0.25")


def choose_thresholds(seed):
    val_split, test_split = experiment.splits[(REGIME, seed)]["val"], experiment.splits[(REGIME, seed)]["test"]
    figures = {}
    for name in THRESHOLD_METHODS:
        run = experiment.run(name, REGIME, seed)
        val_p, test_p = torch.sigmoid(run.val_logits), torch.sigmoid(run.test_logits)
        touching = threshold_for_precision(val_p, val_split.y, target)
        steady = threshold_for_precision(val_p, val_split.y, target, confidence=CONFIDENCE)
        on_test = operating_point(test_p, test_split.y, steady.threshold)
        figures |= {
            f"{name}: crossings": crossings(precision_recall_curve(val_p, val_split.y).precision, target),
            f"{name}: threshold, precision >= X": touching.threshold,
            f"{name}: threshold, Wilson bound >= X": steady.threshold,
            f"{name}: reached": float(steady.reached),
            f"{name}: test precision": on_test.precision,
            f"{name}: test recall": on_test.recall,
        }
    return figures


thresholds = over_seeds(choose_thresholds, SEEDS)
for name, spread in thresholds.items():
    print(f"{name:<52} {spread.format()}   per seed: {', '.join(f'{v:.4g}' for v in spread.values)}")

# %%
print(check_every_seed("validation precision crosses 0.15 more than twice, for each of the three models",
                       Spread(tuple(min(thresholds[f"{n}: crossings"].values[i] for n in THRESHOLD_METHODS) for i in range(len(SEEDS))), tuple(SEEDS)),
                       above=2, at_least=3))
print(check_every_seed("the Wilson rule reaches the target on validation, for each of the three models",
                       Spread(tuple(min(thresholds[f"{n}: reached"].values[i] for n in THRESHOLD_METHODS) for i in range(len(SEEDS))), tuple(SEEDS)), above=0.5, at_least=3))
print(check_every_seed("test precision at the Wilson rule's threshold above 0.12, for each of the three models",
                       Spread(tuple(min(thresholds[f"{n}: test precision"].values[i] for n in THRESHOLD_METHODS) for i in range(len(SEEDS))), tuple(SEEDS)), above=0.12, at_least=4))
print(check_every_seed("plain BCE's threshold below 0.3", thresholds["plain BCE: threshold, Wilson bound >= X"], below=0.3, at_least=4))
print(check_every_seed("pos_weight's threshold above 0.7", thresholds["pos_weight = neg/pos: threshold, Wilson bound >= X"], above=0.7, at_least=4))

# %% [markdown]
# **Reveal.** The validation precision crosses 0.15 several times (the counts, 4 to 24 on these seeds,
# are in the cell above the checks; more than twice for all three models on at least 3 of 5 seeds, a
# lower bound than the other checks' because a count of crossings hangs on the order of a few samples near
# the target, and the trap needs only to be common, not universal): the
# lowest threshold that touches 0.15 is one of several near-equals, and a perturbation of one rounding
# step can change which. The Wilson rule picks a threshold where the precision clears 0.15 with room
# to spare, so the test precision lands at or a little above the target (above 0.12 on at least 4 of 5 seeds;
# about 0.15–0.18 on these). It reached the target on validation for all three models on most seeds (at
# least 3 of 5): on some seed a model's validation precision never clears 0.15 with confidence, and
# `threshold_for_precision` then returns `reached=False` with its highest-precision point, a fallback to
# report as a miss (section 2's tuned table flags it). The thresholds
# themselves differ by model (plain BCE below 0.3, `pos_weight` above 0.7, where the target was reached: each model has its own
# probability scale), while the precisions agree. A threshold is still chosen from the validation
# positives near it, so its recall varies from seed to seed (section 2's tables): report the test
# numbers with their spread, and size the validation split for the precision you need. Choosing the
# threshold on the test split and reporting the same split is the leak to avoid (exercise 2).

# %% [markdown]
# ## 5 · Explorer: one method at a time
#
# The explorer holds the test logits of every row on the overlapping regime for one run, seed 0. Pick a
# method and move the threshold: the red point slides along the method's precision-recall curve, the red
# line on the reliability diagram marks which bins are predicted positive, and the counts change.
# **Try:** set `pos_weight` and threshold 0.88, then `plain BCE` and threshold 0.13; compare the counts.

# %% tags=["nbval-ignore-output"]
explorer_logits = {}
for row in ROWS:
    if row.tuned:
        continue
    explorer_logits[row.label.replace(", t = 0.5", "")] = row_logits(experiment.run(row.method, REGIME, SEED), row)[1]
calibration_explorer = CalibrationExplorer(explorer_logits, test.y)
calibration_explorer

# %% tags=["nbval-ignore-output"]
# Seed 0, one run: its counts, for the picture.
for method, threshold in (("plain BCE", 0.5), ("plain BCE", 0.13), ("pos_weight = neg/pos", 0.88), ("pos_weight = neg/pos", 0.5)):
    calibration_explorer.set(method=method, threshold=threshold)
    r = calibration_explorer.readouts
    print(
        f"{method:<22} t={threshold:<5} precision {r['precision']:.3f}  recall {r['recall']:.3f}  "
        f"TP {r['tp']}  FP {r['fp']}  FN {r['fn']}  TN {r['tn']}   Brier {r['brier']:.4f}"
    )
calibration_explorer.set(method="plain BCE", threshold=0.13)
calibration_explorer.print_readouts("auroc", "auprc", "slope", "intercept", "ece")


def matched_rankings(seed):
    """Plain BCE at 0.13 against pos_weight with as many predicted positives, on one seed's test split."""
    test_split = experiment.splits[(REGIME, seed)]["test"]
    plain_p = torch.sigmoid(experiment.run("plain BCE", REGIME, seed).test_logits)
    weighted_logits = experiment.run("pos_weight = neg/pos", REGIME, seed).test_logits
    at_plain = operating_point(plain_p, test_split.y, 0.13)
    count = at_plain.tp + at_plain.fp
    top = torch.topk(weighted_logits, count).indices  # the weighted model's `count` highest scores
    return {"true positives, pos_weight / plain": float(test_split.y[top].sum()) / at_plain.tp}


matched = over_seeds(matched_rankings, SEEDS)
print("all seeds:", ", ".join(f"{name} {spread.format()}" for name, spread in matched.items()))

# %%
print(check_every_seed("as many predicted positives as plain BCE at 0.13: pos_weight finds as many true ones, within 15 %",
                       matched["true positives, pos_weight / plain"], above=0.85, below=1.15, at_least=4))
print(check_every_seed("pos_weight's Brier more than 4 x plain BCE's (section 2)",
                       Spread(tuple(a / b for a, b in zip(overlapping["pos_weight = neg/pos"]["brier"].values, overlapping[PLAIN]["brier"].values)), tuple(SEEDS)), above=4, at_least=4))

# %%
# A still of the explorer at plain BCE, threshold 0.13 (the live figure above follows the controls).
calibration_explorer.snapshot()

# %% [markdown]
# **Reveal.** On seed 0 (one run), the plain model at threshold 0.13 (233 true and 1433 false
# positives) and the weighted model at 0.88 (244 and 1573) give nearly the same counts. On at least 4 of
# 5 seeds, the weighted model's top scores, as many as plain BCE predicts at 0.13, hold as many true
# positives within 15 % (0.94 to 1.04 times as many on these seeds; down to 0.56 on one seed of other ranges, where plain BCE at 0.13
# predicted only 46 positives: a ratio of a few dozen counts is noisy): two near-identical rankings (section 2:
# AUROCs within 0.02), two probability scales, 0.13 on one matching about 0.88 on the other
# (`sigmoid(logit(0.13) + log p)` ≈ 0.87). Their Brier scores do not agree (more than four times apart
# on at least 4 of 5 seeds). The plain model's calibration slope lies in 0.7–1.3 and its intercept (slope fixed at
# 1) within ±0.6 on at least 4 of 5 seeds (section 2).

# %% [markdown]
# ## 6 · "Recall is 0": what to check (Q20)
#
# `recall_zero_checklist(logits, targets, model=...)` runs four checks on your own model's validation
# logits and prints a finding for each (`[ok]`, `[FAIL]`, `[warn]` or `[skip]`). The numbers name the
# checks; they do not rank the causes, and the checklist gives no "first failure" verdict: one failure
# can cause another, and a default bias matters only if the model did not learn (below). Read every line:
#
# 1. **bias init**: the output bias of the model *as built* against `log(pos/neg)` of the training data
#    (`train_share=`; lesson 05, section 3);
# 2. **posterior below 0.5**: does any *positive* reach the threshold, and is the ranking informative
#    (AP against the positive share, the AP of a ranking that knows nothing)?
# 3. **learning rate and warmup**: collapsed or non-finite logits, a loss that rose or never beat
#    always answering the positive share of the training data (`train_share=` again: the losses were
#    measured there);
# 4. **evaluation threshold**: probabilities passed as logits, and what a lower threshold would give.
#    The probabilities test runs first: when every value lies in [0, 1], checks 2 and 3 print `[skip]`
#    (their numbers would be read on the wrong scale) and say why.
#
# Three findings are warnings, not failures: a bias far from `log(pos/neg)` on a model that learned anyway
# (its lowest training loss at least 2 % below the base rate `H(q)` and its AP at least twice the positive share);
# a few outputs that reach the threshold with no positive among them (check 2: recall is still 0 there,
# so that is no pass); and recall 0 at the threshold when no threshold would do better (the cause is then
# in checks 2 and 3).
#
# A failing model first: PyTorch's default output bias (near 0) and a learning rate far too large
# (3 with Adam, against 0.02 above), no warmup. It is trained from the five seeds; the checklist below
# is printed for one run (seed 0), and the cell after it says what the five seeds show.

# %% tags=["nbval-ignore-output"]
fail_splits = {seed: make_splits(REGIMES[REGIME], seed, setup) for seed in SEEDS}
plain_bce = METHODS["plain BCE"].loss(1.0)  # plain BCE ignores the pos_weight it is built with
train_shares = {seed: float(fail_splits[seed]["train"].y.mean()) for seed in SEEDS}  # each training split's positive share


def train_failing(output_bias, lr):
    """One configuration from every seed: the models as built, trained, and their epoch losses."""
    models = [TinyMLP(output_bias=None if output_bias is None else output_bias(train_shares[seed]), seed=seed) for seed in SEEDS]
    as_built = [copy.deepcopy(model) for model in models]
    losses = fit_together(models, [fail_splits[seed]["train"] for seed in SEEDS], [plain_bce] * len(SEEDS), setup, seeds=SEEDS, lr=lr)
    return models, as_built, losses


def checklists(models, as_built, losses, verbose_seed=None):
    return [
        recall_zero_checklist(
            logits_of(model, fail_splits[seed]["val"]), fail_splits[seed]["val"].y, model=built, losses=loss,
            train_share=train_shares[seed], verbose=seed == verbose_seed,
        )
        for seed, model, built, loss in zip(SEEDS, models, as_built, losses)
    ]


failing, failing_as_built, failing_losses = train_failing(None, 3.0)
print(f"seed {SEED}, one run: training loss by epoch:", [round(v, 4) for v in failing_losses[0]])
print("first epoch's loss per seed:", [round(loss[0], 3) for loss in failing_losses])
failing_reports = checklists(failing, failing_as_built, failing_losses, verbose_seed=SEED)
print("failing checks per seed:", {seed: r.failures for seed, r in zip(SEEDS, failing_reports)})

# %%
def holds(flags):
    """A 0/1 Spread over the seeds, for a yes/no finding."""
    return Spread(tuple(float(bool(f)) for f in flags), tuple(SEEDS))


FIRST_THREE = list(CHECK_NAMES[:3])
print(check_every_seed("default bias, lr 3: checks 1, 2 and 3 fail, check 4 warns (a threshold would not help)",
                       holds(r.failures == FIRST_THREE and r.warnings == [CHECK_NAMES[3]] for r in failing_reports), above=0.5, at_least=3))
print(check_every_seed("default bias, lr 3: the first epoch's loss above 1",
                       Spread(tuple(loss[0] for loss in failing_losses), tuple(SEEDS)), above=1, at_least=4))

# %% [markdown]
# Checks 1 to 3 fail on at least 3 of the 5 seeds (on all five here; on other seeds a default-bias
# model at learning rate 3 sometimes escapes the collapse), each for its own reason (the lines above,
# for seed 0):
#
# * check 1: the bias started near probability 0.5 (0.47 on seed 0) while about 2 % of the training
#   samples are positive;
# * check 3: the first steps (a loss above 1 in the first epoch, on at least 4 of 5 seeds) left every output at
#   the same number, most likely through dead ReLUs, and the loss never went 2 % below the base rate of
#   the training data;
# * check 2 fails as a consequence of checks 1 and 3 (its line says so): a collapsed model has nothing
#   to rank with.
#
# Check 4 warns: recall is 0, and moving the threshold would not help, since the ranking is at chance
# (AP = the positive share, check 2).
#
# Three FAILs, and the checklist does not say which of them kept recall at 0. **Predict:**
# retrain with one fix at a time, the bias at `log(pos/neg)` with the same learning rate 3, or the
# learning rate 0.02 with the default bias. Which one learns?

# %% tags=["nbval-ignore-output"]
prior_logit = lambda q: math.log(q / (1 - q))  # noqa: E731
one_fix = {
    "bias at log(pos/neg), lr 3": train_failing(prior_logit, 3.0),
    "default bias, lr 0.02": train_failing(None, 0.02),
}
one_fix_reports = {label: checklists(*trained) for label, trained in one_fix.items()}
base_rate = {seed: r.numbers["prior_entropy"] for seed, r in zip(SEEDS, failing_reports)}
lowest_over_base = {}
for label, (_, _, losses) in one_fix.items():
    lowest_over_base[label] = Spread(tuple(min(loss) - base_rate[seed] for seed, loss in zip(SEEDS, losses)), tuple(SEEDS))
    print(f"{label:<27}: lowest epoch loss minus H(q) {lowest_over_base[label].format()}; failing checks per seed:")
    for seed, r in zip(SEEDS, one_fix_reports[label]):
        print(f"    seed {seed}: {r.failures}")
print(f"base-rate loss of the training data H(q) per seed: {', '.join(f'{base_rate[seed]:.4f}' for seed in SEEDS)}")

# %%
lowest = {label: Spread(tuple(min(loss) for loss in losses), tuple(SEEDS)) for label, (_, _, losses) in one_fix.items()}
print(check_every_seed("bias at log(pos/neg), lr 3: the first epoch's loss still above 1",
                       Spread(tuple(loss[0] for loss in one_fix["bias at log(pos/neg), lr 3"][2]), tuple(SEEDS)), above=1, at_least=4))
print(check_every_seed("lr 0.02 (default bias) reaches a training loss at least 0.005 lower than lr 3 with the bias fixed",
                       lowest["bias at log(pos/neg), lr 3"].minus(lowest["default bias, lr 0.02"]), above=0.005, at_least=4))
print(check_every_seed("default bias, lr 0.02: lowest epoch loss at least 0.01 below H(q)",
                       lowest_over_base["default bias, lr 0.02"], below=-0.01, at_least=4))
print(check_every_seed("default bias, lr 0.02: check 3 passes, check 1 only warns (the model learned)",
                       holds(CHECK_NAMES[2] not in r.failures and r.checks[0].status == "warn" for r in one_fix_reports["default bias, lr 0.02"]), above=0.5, at_least=4))

# %% [markdown]
# **Reveal.** At learning rate 3, fixing the bias is not enough. With the bias fixed, the first epoch still
# blows up (a loss above 1 on at least 4 of 5 seeds), and check 3 fails on every one of these five seeds
# (the lines above). On seeds 5 to 9 and 35 to 39 it failed on every seed too, although there the lowest
# training loss went slightly below `H(q)`: the logits had blown up into the thousands, and a loss a little
# under the base rate does not make such a model one that ranks (an earlier version of check 3, which read
# only the loss, passed some of them). The default-bias model at learning rate 3 fails checks 1, 2 and 3 on
# at least 3 of 5 seeds.
#
# What held most reliably (on all 25 seeds 0 to 24) is the lower learning rate: with 0.02 and the default bias the
# model learns (its lowest loss at least 0.01 below the base rate `H(q)`), and check 1 only warns about
# its bias: the default bias did not keep recall at 0 there; its FAILs are those of a working model on
# overlapping classes (next cells). It also ends at a training loss more than 0.005 lower than the
# bias-fixed model at learning rate 3 on at least 4 of 5 seeds (on all 25 tried, but by only 0.008 on one).
#
# So fix both, and read each FAIL on its own: when check 1 fails, set the bias (it costs nothing, and
# lesson 05, section 3, shows what it changes in a short run); when check 3 fails, lower the learning
# rate or warm it up (e.g. `torch.optim.lr_scheduler.LinearLR` over the first epoch, 12 of the 120 steps
# here; warm-up is the usual way to make a large learning rate safer, not something this lesson tests).
# The checklist does not order these fixes, and this experiment gives no ground to order them either.
#
# Now the plain BCE model of the experiment, trained properly, on the overlapping regime (the
# checklist printed for seed 0, one run; the checks after it over all five seeds):

# %% tags=["nbval-ignore-output"]
def plain_checklist(seed, verbose=False):
    val_split, train_split = experiment.splits[(REGIME, seed)]["val"], experiment.splits[(REGIME, seed)]["train"]
    run = experiment.run("plain BCE", REGIME, seed)
    q_train = float(train_split.y.mean())
    as_built = TinyMLP(output_bias=METHODS["plain BCE"].bias(q_train, run.pos_weight), seed=seed)
    return recall_zero_checklist(run.val_logits, val_split.y, model=as_built, losses=run.losses, train_share=q_train, verbose=verbose)


report = plain_checklist(SEED, verbose=True)
print("failures:", report.failures, " warnings:", report.warnings)


def plain_top(seed):
    val_split = experiment.splits[(REGIME, seed)]["val"]
    r = plain_checklist(seed)
    val_p = torch.sigmoid(experiment.run("plain BCE", REGIME, seed).val_logits)
    return {
        "largest probability": r.numbers["max_probability"],
        "share reaching 0.5": float((val_p >= 0.5).double().mean()),
        "largest true posterior": float(val_split.posterior.max()),
        "AP / positive share": r.numbers["average_precision"] / r.numbers["positive_share"],
        "checks 1 and 3 pass": float(CHECK_NAMES[0] not in r.failures and CHECK_NAMES[2] not in r.failures),
    }


plain_tops = over_seeds(plain_top, SEEDS)
for name, spread in plain_tops.items():
    print(f"{name:<24} {spread.format()}   per seed: {', '.join(f'{v:.3f}' for v in spread.values)}")

# %%
print(check_every_seed("plain BCE: checks 1 and 3 pass (bias and training are fine)", plain_tops["checks 1 and 3 pass"], above=0.5, at_least=4))
print(check_every_seed("plain BCE: ranking informative, AP above 4 x the positive share", plain_tops["AP / positive share"], above=4, at_least=4))
print(check_every_seed("true posterior on validation never reaches 0.3", plain_tops["largest true posterior"], below=0.3))
print(check_every_seed("plain BCE: fewer than 1 % of validation outputs reach 0.5", plain_tops["share reaching 0.5"], below=0.01, at_least=4))

# %% [markdown]
# Here the model is fine (checks 1 and 3 pass on at least 4 of 5 seeds), and its FAILs, where it has any, are a
# diagnosis, not a defect. Its ranking is several times better than chance (AP above 4 times the positive share on at least
# 4 of 5 seeds), yet almost no probability reaches 0.5 (fewer than 1 % of the validation outputs on at least 4 of 5 seeds)
# because the classes overlap: on the validation samples the true posterior never exceeds 0.3. The
# model's *largest* probability is the extreme of a handful of samples and varies widely from seed to
# seed (0.29 to 0.86 here), so on some seeds no output reaches 0.5 and check 2 fails (with check 4),
# and on others a few outputs do, none of them positive, and check 2 warns instead of passing (seed 0
# above: one output of 40 000, a negative): recall is 0 all the same. Where a few positives do reach it
# (seed 3 here: 56 outputs of 40 000 reach 0.5), checks 2 and 4 pass with a recall near
# 0, the borderline of a checklist written for recall 0 (on other seed ranges this was the common case). Either way, recall at 0.5 stays near 0 (below
# 0.05 on at least 4 of 5 seeds, section 2), retraining with a weight would only move the operating point and
# spoil calibration, and the fix is the threshold (check 4's, or one chosen on validation for a
# precision target, as in section 4).

# %% [markdown]
# ## 7 · What this experiment can and cannot show
#
# **Can:** with two features, a known posterior and 70 small models trained in seconds, it shows the
# *direction* of each effect, checked seed by seed with a margin, on at least 4 of 5 seeds (fewer for a few
# checks, as each names): ranking unchanged, calibration harmed
# by `pos_weight`, oversampling, focal loss and Dice, the `−log p` shift undoing `pos_weight` (with
# overlapping classes), tuned
# thresholds reaching operating points where no method clearly beats plain BCE, and the likelihood ratio against
# the prior odds (overlap and share together) deciding what 0.5 finds.
#
# **Cannot:** it is not an image benchmark. There are no pixels, no spatial structure and no per-image
# Dice (here Dice is taken over each batch of samples); the network is tiny, trained for 120 steps on about
# 120 positives, so it is not at the optimum and the numbers are noisy: a perturbation of the initial
# weights by one part in ten million moves them in the second digit, and with overlap the tuned recalls
# vary by about ±0.04 to ±0.1 over seeds. That is why the lesson prints its tables as spreads and
# states its findings as checks with a margin: the tables show the size of each effect, the checks
# what the seeds agree on, and on how many of them. An outlier seed now and then is what tiny models
# trained briefly do, so no finding about trained models asks for every seed. Five seeds show a
# direction, not a precise size, and cannot rank methods whose differences are smaller than their spread. A large network that overfits can be miscalibrated
# under plain BCE too; remedies can change the ranking when capacity or training time is short and the
# rare class would otherwise not be learned at all (lesson 05's faint green disc, against plain BCE from
# PyTorch's default start). Precision targets far
# in the tail need far larger validation sets than these. For large networks that are overconfident
# under BCE, focal loss can improve calibration (Mukhoti et al., NeurIPS 2020); its underconfidence here
# (slopes about 2 to 3 with overlapping classes, above 1.8 on at least 4 of 5 seeds) is what a fixed γ does to a model that is not overconfident.

# %% [markdown]
# ## Summary
#
# * `pos_weight`, oversampling, focal loss and Dice barely change the **ranking** (AUROC, AUPRC; Dice can lose
#   some) and
#   here they harm **calibration** (Brier score, slope, intercept, reliability diagram) of a small model
#   that plain BCE already calibrates; focal loss can help a large, overconfident network.
# * A model trained with `pos_weight = p` outputs, near its optimum, `bw.optimal_logit(q, p) = logit(q) + log p`;
#   with overlapping classes, undo it approximately with `sigmoid(logit − log p)` (with separated classes
#   a short training run is far from that optimum), check on validation data, and refit the
#   intercept (and slope) there if needed (Q17).
# * To trade precision for recall, **move the threshold**: choose it on validation data for the precision
#   you need (where its Wilson lower bound meets the target, on a validation split large enough to
#   show it), report precision and recall on a test split (Q19).
# * Judge a method over several seeds: a tiny model's figures move in the second digit with its
#   trajectory; state on how many seeds a finding holds, with a margin, and try other seeds before
#   calling it "every seed".
# * A threshold tuned for a precision target can miss it (`reached=False`): then it is a fallback, to be
#   reported as a miss, not as an operating point that met the target.
# * Recall 0 at 0.5 with overlapping classes can be the right answer of a calibrated model. Run the
#   checklist and read every finding (bias init, posterior below 0.5, learning rate and warmup,
#   evaluation threshold): they are not ranked, one failure can cause another, and a default bias on a
#   model that learned is only a warning. Fix what fails: set the bias (it costs nothing) and keep the
#   learning rate low enough, or warm it up; at a learning rate far too large neither fix alone is
#   reliable (Q20).
# * Neither imbalance nor overlap alone decides whether 0.5 finds positives: the posterior reaches 0.5
#   where the likelihood ratio `LR(x)` clears the prior odds `(1 − π) / π` (Q18).
#
# ## Exercises
#
# Replace `None` with your answer and run the cell: a wrong answer gets a hint. When you have tried,
# `show_solution("08.1")` (or `"08.2"`, `"08.3"`, `"08.4"`, imported from `bceweights.lessons.exercises`) prints
# a worked solution.

# %%
# **08.1**
print(LESSON08_1_QUESTION)
my_probability = None
_ = check_lesson08_1(my_probability)

# %%
# **08.2**
print(LESSON08_2_QUESTION)
threshold_data = lesson08_threshold_data()
my_threshold = None
_ = check_lesson08_2(my_threshold)

# %%
# **08.3**
print(LESSON08_3_QUESTION)
case_outputs, case_targets, case_model = lesson08_checklist_case()
my_failing_check = None
_ = check_lesson08_3(my_failing_check)

# %% [markdown]
# **08.4** A concept: does 0.5 find positives when the same overlapping clouds hold 10 % positives? Predict
# first, then run the function the question names.

# %%
print(LESSON08_4_QUESTION)
my_choice = None  # "a", "b" or "c"
_ = check_lesson08_4(my_choice)

# %% [markdown]
# ## Questionnaire
#
# Short questions on the whole lesson. Answer each in a sentence or two, in your head or in a cell, before you
# compare with the answers: `show_solution("08.Q")` prints them.

# %%
print_questionnaire("08")
