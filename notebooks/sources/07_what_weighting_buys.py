# %% [markdown]
# # 07 · What weighting buys: ranking, calibration and thresholds, compared fairly
#
# Questions answered: Q17, Q18, Q19, Q20
#
# **Goal.** Lessons 01 and 04 showed that `pos_weight` moves a model's optimum and its operating point.
# Here every common remedy for a rare class is trained the same way and scored the same way, so you can
# see what each one changes and what it leaves alone:
#
# 1. the data: the same 2 % of positives, once with separated classes and once with overlapping ones;
# 2. one experiment: 7 training methods × 2 regimes × 3 seeds, scored with scikit-learn's metrics (Q18);
# 3. calibration: the reliability diagram, the Brier score, and lesson 01's optimum shift checked on a
#    trained model, then undone (Q17);
# 4. a threshold chosen on validation data for a precision target, reported on test data (Q19);
# 5. an explorer: pick a method and a threshold, watch the PR point, the reliability diagram and the counts;
# 6. a "recall is 0" checklist to run on your own model (Q20).
#
# The findings follow the literature on imbalance corrections (van den Goorbergh et al., JAMIA 2022; Lin
# et al. 2017 on focal loss). Section 7 says what a two-feature experiment can and cannot show.

# %%
# %matplotlib widget

# %%
import copy
import math

import numpy as np
import torch
from matplotlib.figure import Figure
from sklearn.metrics import brier_score_loss

import bceweights as bw
from bceweights.lessons.calibration import operating_point, probability_metrics, reliability_curve, threshold_for_precision
from bceweights.lessons.diagnose import recall_zero_checklist
from bceweights.lessons.exercises import (
    LESSON07_1_QUESTION,
    LESSON07_2_QUESTION,
    LESSON07_3_QUESTION,
    check_lesson07_1,
    check_lesson07_2,
    check_lesson07_3,
    lesson07_checklist_case,
    lesson07_threshold_data,
)
from bceweights.lessons.explore import png_image
from bceweights.lessons.explore.calibration import CalibrationExplorer
from bceweights.lessons.rare_class import (
    METHODS,
    REGIMES,
    TinyMLP,
    TrainingSetup,
    fit,
    logits_of,
    make_splits,
    run_experiment,
    true_logit,
)
from bceweights.lessons.scoreboard import MIN_PRECISION, ROWS, format_tables, row_logits, score_experiment

# Small problems run faster on one thread, and then give the same numbers on every machine.
torch.set_num_threads(1)
_ = torch.manual_seed(0)

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
# The t = 0.5 columns have no such ceiling: with overlap, the posterior itself finds nothing at 0.5.
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
# separated classes, the same 2 % share is no problem at all. Overlap, not the share, decides whether
# 0.5 finds anything; the share decides how rare the positives are among the samples that look positive.

# %% [markdown]
# ## 2 · One experiment: every method, both regimes, three seeds (Q18)
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
# empty-model optimum of plain BCE only: a constant model's focal loss is lowest near logit −1.8 for
# α = 0.25 and −1.0 for α = 0.75, and soft Dice with `smooth = 1` has no finite one). `pos_weight` and
# oversampling start at 0, the empty-model optimum of their balanced loss, shifted by `log(neg/pos)`.
#
# Each seed draws new training, validation and test samples and new initial weights. The cell below
# trains all 42 models at once; everything after it only reads their logits. Change the experiment here
# (a method, `TrainingSetup(epochs=...)`, the seeds) and run the lesson again.

# %% tags=["nbval-ignore-output"]
experiment = run_experiment(methods=tuple(METHODS), regimes=tuple(REGIMES), seeds=(0, 1, 2), setup=setup)
print(f"{len(experiment.runs)} models trained in {experiment.seconds:.1f} s")

# %% [markdown]
# Two rows reuse a trained model: **plain BCE with a tuned threshold**, and **`pos_weight` with the logit
# shifted back by `−log p`** (lesson 01: `pos_weight = p` moves the optimal logit by `log p`, so
# subtracting it should undo the shift). The threshold is tuned on the validation split for a precision
# target (0.9 with separated classes, 0.15 with overlapping ones: targets every trained model reaches on
# validation); section 4 explains how.
#
# **Predict.** Which columns will the methods change: the ranking (AUROC, AUPRC), the calibration (Brier
# score, slope, intercept, ECE), or the operating point at 0.5?

# %%
table = score_experiment(experiment)
print(format_tables(table, "separated"))

# %%
print(format_tables(table, "overlapping"))

# %% [markdown]
# **Reveal.** Read the tables column by column.
#
# * **Ranking barely moves.** The AUROC is 0.999 for every method with separated classes, and between
#   0.912 and 0.918 with overlapping ones; the AUPRCs overlap within their spread over seeds. No remedy
#   teaches the model to tell positives from negatives better; they all learn about the same ordering,
#   close to the true posterior's (section 1, seed 0: AUROC 0.921, AUPRC 0.157 with overlap).
# * **Calibration suffers.** Plain BCE is calibrated (slope 0.99, intercept −0.13, Brier 0.0179 and ECE
#   0.005 with overlap). `pos_weight` and oversampling push every probability up: the intercept falls to
#   −3.90 and −3.88, about `−log(neg/pos)`, and the Brier score grows about eight times, to 0.1423 and
#   0.1419. Focal loss gives slopes far above 1 (2.60 to 3.03: its probabilities are squeezed toward the
#   middle, too timid); Dice and BCE + Dice slopes far below 1 (0.12 to 0.48: too extreme).
# * **Shifting back repairs `pos_weight`.** Subtracting `log p` from the weighted model's logits brings its
#   Brier score back to 0.0184 (plain BCE: 0.0179) and its ECE to 0.007: lesson 01's prediction holds on
#   a trained model (section 3).
# * **The threshold reaches the same operating points.** At 0.5 the methods differ wildly: with overlap,
#   recall runs from 0.000 to 0.918. At the threshold tuned on validation for precision 0.15, every
#   method lands at test precision 0.148 to 0.152 (close to the target, which each threshold meets on
#   validation by construction) and mean recall 0.481 to 0.538. Those differences are small against
#   the spread over seeds (±0.15 to ±0.25), so three seeds cannot rank the methods there, as expected when their rankings
#   agree. A method that "raises recall" at 0.5 has mostly moved along its curve, which a threshold
#   does for free, keeping the probabilities calibrated. (A threshold that predicts nothing has
#   precision 0 in the table, scikit-learn's `zero_division=0`; the explorer shows 1, the PR curve's end.
#   A precision from a handful of predicted positives means little: the shifted model at 0.5 has recall
#   0.002 and precision 0.106 ± 0.129, a mean over seeds of a few predictions each.)
#
# And imbalance against overlap: with separated classes plain BCE at 0.5 finds most positives, with
# overlapping classes none. The share is the same; overlap is what makes a rare class hard.

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

# %%
REGIME, SEED = "overlapping", 0
splits = experiment.splits[(REGIME, SEED)]
test = splits["test"]
weighted = experiment.run("pos_weight = neg/pos", REGIME, SEED)
plain = experiment.run("plain BCE", REGIME, SEED)
p = weighted.pos_weight
predicted = torch.sigmoid(weighted.test_logits)
lesson01 = bw.optimal_probability(test.posterior, p)
print(f"pos_weight p = neg/pos = {p:.4g}, log p = {math.log(p):.4g}")
print(f"mean weighted logit - mean plain logit on test: {float((weighted.test_logits - plain.test_logits).mean()):.4g}")
print(f"mean |weighted p̂ - true posterior q|           : {float((predicted - test.posterior).abs().mean()):.4f}")
print(f"mean |weighted p̂ - optimal_probability(q, p)| : {float((predicted - lesson01).abs().mean()):.4f}")
shifted = torch.sigmoid(weighted.test_logits - math.log(p))
print(f"mean |sigmoid(logit - log p) - q|              : {float((shifted - test.posterior).abs().mean()):.4f}")
print(f"Brier: plain {brier_score_loss(test.y, torch.sigmoid(plain.test_logits)):.4f}, weighted {brier_score_loss(test.y, predicted):.4f}, "
      f"shifted back {brier_score_loss(test.y, shifted):.4f}, true posterior {brier_score_loss(test.y, test.posterior):.4f}")

# %%
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
    right.set_title("the weighted model lies on lesson 01's curve", fontsize=10)
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
    left.set_title(f"reliability diagram, {REGIME}, seed {SEED}", fontsize=10)
    left.legend(fontsize=7, loc="upper left")
    return figure


png_image(plot_calibration())

# %% [markdown]
# **Reveal.** The weighted model's probabilities (red) lie along lesson 01's curve, not along the
# diagonal: their mean distance to `optimal_probability(q, p)` is 0.0559, to the true posterior 0.2318.
# The trained model does what the optimum predicts, to within what 120 Adam steps on about 130 positives
# allow: its logits sit on average 4.17 above the plain model's, a little more than `log p = 3.81`.
# Subtracting `log p` (green) puts the points back near the diagonal (mean distance 0.0143), and the Brier score on this seed back from 0.1685 to 0.0186
# (plain BCE: 0.0178; the table's 0.0184 and 0.0179 are means over three seeds).
#
# So, for Q17: to get calibrated probabilities from a model trained with `pos_weight = p`, use
# `sigmoid(logit − log p)`: the exact inverse of the shift, no refit needed. For focal loss or Dice
# there is no such closed form; refit a calibration map on validation data (Platt scaling: the same
# fit as the table's slope and intercept, but on validation data, then `sigmoid(a + b · logit)`), or better, train with BCE and move the threshold.
# On the reliability diagram, focal loss bends toward the middle and Dice reaches the extremes; the
# weighted model runs far below the diagonal (it predicts too high everywhere).

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
# **Predict.** On the overlapping regime, with X = 0.15: will the test precision reach 0.15 for each model?

# %%
target = MIN_PRECISION[REGIME]
for name in ("plain BCE", "pos_weight = neg/pos", "focal γ=2 α=0.25"):
    run = experiment.run(name, REGIME, SEED)
    choice = threshold_for_precision(torch.sigmoid(run.val_logits), splits["val"].y, target)
    on_test = operating_point(torch.sigmoid(run.test_logits), test.y, choice.threshold)
    print(
        f"{name:<22} threshold {choice.threshold:.4f} (target reached: {choice.reached}): validation precision "
        f"{choice.precision:.3f}, recall {choice.recall:.3f}  -> test precision {on_test.precision:.3f}, recall {on_test.recall:.3f}"
    )

# %% [markdown]
# **Reveal.** The three thresholds differ (0.1712, 0.9331, 0.2579: each model has its own probability
# scale). The test precisions are alike (near the 0.15 target, which each threshold meets on validation
# by construction); the recalls less so, as
# the table above prints: near this precision the PR curve is almost flat, so a small difference in
# validation precision moves the threshold, and the recall, a long way. On this seed the test precision lands a little
# above the validation's 0.150 (0.168 to 0.172); on another it lands below. The table's tuned columns show
# the spread over seeds (precision ±0.02 to ±0.03, recall ±0.15 to ±0.25): a threshold is chosen from the few
# validation positives near it, so it is noisy. Report the test numbers, with their spread, and size the
# validation split for the precision you need. Choosing the threshold on the test split and reporting
# the same split is the leak to avoid (exercise 2).

# %% [markdown]
# ## 5 · Explorer: one method at a time
#
# The explorer holds the test logits of every row on the overlapping regime, seed 0. Pick a method and
# move the threshold: the red point slides along the method's precision-recall curve, the red line on the
# reliability diagram marks which bins are predicted positive, and the counts change. **Try:** set
# `pos_weight` and threshold 0.88, then `plain BCE` and threshold 0.13; compare the counts.

# %% tags=["nbval-ignore-output"]
explorer_logits = {}
for row in ROWS:
    if row.tuned:
        continue
    explorer_logits[row.label.replace(", t = 0.5", "")] = row_logits(experiment.run(row.method, REGIME, SEED), row)[1]
calibration_explorer = CalibrationExplorer(explorer_logits, test.y)
calibration_explorer

# %%
for method, threshold in (("plain BCE", 0.5), ("plain BCE", 0.13), ("pos_weight = neg/pos", 0.88), ("pos_weight = neg/pos", 0.5)):
    calibration_explorer.set(method=method, threshold=threshold)
    r = calibration_explorer.readouts
    print(
        f"{method:<22} t={threshold:<5} precision {r['precision']:.3f}  recall {r['recall']:.3f}  "
        f"TP {r['tp']}  FP {r['fp']}  FN {r['fn']}  TN {r['tn']}   Brier {r['brier']:.4f}"
    )
calibration_explorer.set(method="plain BCE", threshold=0.13)
calibration_explorer.print_readouts("auroc", "auprc", "slope", "intercept", "ece")

# %%
# A still of the explorer at plain BCE, threshold 0.13 (the live figure above follows the controls).
calibration_explorer.snapshot()

# %% [markdown]
# **Reveal.** The plain model at threshold 0.13 (233 true and 1433 false positives) and the weighted
# model at 0.88 (244 and 1573) give nearly the same counts: two near-identical rankings
# (AUROC 0.917 and 0.916 in the table, means over seeds), two probability scales. Their
# Brier scores do not agree (0.0178 against 0.1685). The plain model's calibration slope is near 1
# (1.024); its intercept, −0.3624 on this seed, is somewhat negative (the table's mean over seeds is
# −0.13 ± 0.20).

# %% [markdown]
# ## 6 · "Recall is 0": what to check, in which order (Q20)
#
# `recall_zero_checklist(logits, targets, model=...)` runs four checks on your own model's validation
# logits and prints a verdict for each:
#
# 1. **bias init**: the output bias of the model *as built* against `log(pos/neg)` of the training data
#    (`train_share=`; lesson 04, section 5);
# 2. **posterior below 0.5**: does anything reach the threshold, and is the ranking informative (AP
#    against the positive share, the AP of a ranking that knows nothing)?
# 3. **learning rate and warmup**: collapsed or non-finite logits, a loss that rose or never beat
#    always answering the positive share of the training data (`train_share=` again: the losses were
#    measured there);
# 4. **evaluation threshold**: probabilities passed as logits, and what a lower threshold would give.
#
# A failing model first: PyTorch's default output bias (near 0) and a learning rate far too large
# (3 with Adam, against 0.02 above), no warmup.

# %%
fail_splits = make_splits(REGIMES[REGIME], SEED, setup)
failing = TinyMLP(seed=SEED)
failing_as_built = copy.deepcopy(failing)
plain_bce = METHODS["plain BCE"].loss(p)  # plain BCE takes the data set's pos_weight and ignores it
failing_losses = fit(failing, fail_splits["train"], plain_bce, setup, lr=3.0)
q_fail = float(fail_splits["train"].y.mean())  # the training split's positive share
print("training loss by epoch:", [round(v, 4) for v in failing_losses])
report = recall_zero_checklist(
    logits_of(failing, fail_splits["val"]), fail_splits["val"].y, model=failing_as_built,
    losses=failing_losses, train_share=q_fail,
)

# %% [markdown]
# Checks 1 to 3 fail, each for its own reason:
#
# * check 1: the bias started near probability 0.5 (0.47) while 2.17 % of the training samples are
#   positive;
# * check 3: the first steps (a loss of 23 in the first epoch) left every output at the same number,
#   most likely through dead ReLUs, and the loss never went below the base rate of the training data;
# * check 2 fails as a consequence of checks 1 and 3 (its line says so): a collapsed model has nothing
#   to rank with.
#
# Check 4 prints `[ok]` although recall is 0: here it means that moving the threshold would not help,
# since the ranking is at chance (AP = the positive share, check 2).
#
# The checklist gives the order to *look*; it does not say which failure kept recall at 0. **Predict:**
# retrain with one fix at a time, the bias at `log(pos/neg)` with the same learning rate 3, or the
# learning rate 0.02 with the default bias. Which one learns?

# %%
for label, output_bias, lr in [("bias at log(pos/neg), lr 3", math.log(q_fail / (1 - q_fail)), 3.0), ("default bias, lr 0.02", None, 0.02)]:
    one_fix = TinyMLP(output_bias=output_bias, seed=SEED)
    one_fix_as_built = copy.deepcopy(one_fix)
    one_fix_losses = fit(one_fix, fail_splits["train"], plain_bce, setup, lr=lr)
    one_fix_report = recall_zero_checklist(
        logits_of(one_fix, fail_splits["val"]), fail_splits["val"].y, model=one_fix_as_built,
        losses=one_fix_losses, train_share=q_fail, verbose=False,
    )
    print(f"{label:<27}: lowest epoch loss {min(one_fix_losses):.4f}, failing checks {one_fix_report.failures}")
print(f"base-rate loss of the training data H(q) = {one_fix_report.numbers['prior_entropy']:.4f}")

# %% [markdown]
# **Reveal.** Here the learning rate decided it. With the bias fixed and the learning rate still 3,
# training still fails: its lowest epoch loss, 0.1509, stays above the base rate 0.1045 (check 3). With
# the learning rate 0.02 and the default bias it learns (lowest loss 0.0730). Check 1 still flags its
# bias, though this model learned without the fix; its other two FAILs, "posterior below 0.5" and "evaluation threshold",
# are those of a working model on overlapping classes (next cell). So when check 3 fails, fix the
# learning rate first, or warm it up (e.g. `torch.optim.lr_scheduler.LinearLR` over the first epoch,
# 12 of the 120 steps here). Set the bias anyway: it costs nothing, and lesson 04 (section 5) shows what
# it changes in a short run.
#
# Now the plain BCE model of the experiment, trained properly, on the overlapping regime:

# %%
q_train = float(splits["train"].y.mean())
plain_as_built = TinyMLP(output_bias=METHODS["plain BCE"].bias(q_train, p), seed=SEED)
report = recall_zero_checklist(plain.val_logits, splits["val"].y, model=plain_as_built, losses=plain.losses, train_share=q_train)
print("first failure:", report.first_failure)
print(f"largest true posterior on the validation split: {float(splits['val'].posterior.max()):.3f}")

# %% [markdown]
# Here the model is fine, and the two FAILs are a diagnosis, not a defect. Its ranking is several times
# better than chance (AP 6.14 × the positive share), yet no probability reaches 0.5 because the classes
# overlap: on the same validation samples the true posterior never exceeds 0.247. The model's largest
# probability, 0.481, is about twice that: overconfident at its top end, and only just below 0.5, so
# "recall 0 at 0.5" holds by a thin margin (on the test splits of all three seeds plain BCE finds no
# positive at 0.5, as the table shows). Either way, retraining with a weight would only move the operating point, and spoil calibration; the checklist
# points at the threshold instead (check 4: 0.14, or one chosen on validation for a precision target,
# as in section 4).

# %% [markdown]
# ## 7 · What this experiment can and cannot show
#
# **Can:** with two features, a known posterior and 42 small models trained in seconds, it shows the
# *direction* of each effect, repeated over seeds: ranking unchanged, calibration harmed by `pos_weight`,
# oversampling, focal loss and Dice, the `−log p` shift undoing `pos_weight`, tuned thresholds reaching
# operating points that three seeds cannot tell apart, and overlap rather than the share deciding what 0.5 finds.
#
# **Cannot:** it is not an image benchmark. There are no pixels, no spatial structure and no per-image
# Dice (here Dice is taken over each batch of samples); the network is tiny, trained for 120 steps on about
# 130 positives, so it is not at the optimum and the numbers are noisy: with overlap the tuned recalls
# vary by ±0.15 to ±0.25 over seeds, the AUROCs mostly in the third decimal (Dice: ±0.012; read the ±). A
# large network that overfits can be miscalibrated under plain BCE too; remedies can change the ranking
# when capacity or training time is short and the rare class would otherwise not be learned at all
# (lesson 04's faint green disc). Precision targets far in the tail need far larger validation sets than
# these.

# %% [markdown]
# ## Summary
#
# * `pos_weight`, oversampling, focal loss and Dice barely change the **ranking** (AUROC, AUPRC) and
#   they harm **calibration** (Brier score, slope, intercept, reliability diagram).
# * A model trained with `pos_weight = p` outputs `bw.optimal_logit(q, p) = logit(q) + log p`; undo it
#   with `sigmoid(logit − log p)` (Q17).
# * To trade precision for recall, **move the threshold**: choose it on validation data for the precision
#   you need, report precision and recall on a test split (Q19).
# * Recall 0 at 0.5 with overlapping classes can be the right answer of a calibrated model. Run the
#   checklist in order: bias init, posterior below 0.5, learning rate and warmup, evaluation threshold (Q20).
# * Imbalance alone is not the problem; overlap is (Q18).
#
# ## Exercises
#
# Replace `None` with your answer and run the cell: a wrong answer gets a hint. When you have tried,
# `show_solution("07.1")` (or `"07.2"`, `"07.3"`, imported from `bceweights.lessons.exercises`) prints
# a worked solution.

# %%
# **07.1**
print(LESSON07_1_QUESTION)
my_probability = None
_ = check_lesson07_1(my_probability)

# %%
# **07.2**
print(LESSON07_2_QUESTION)
threshold_data = lesson07_threshold_data()
my_threshold = None
_ = check_lesson07_2(my_threshold)

# %%
# **07.3**
print(LESSON07_3_QUESTION)
case_outputs, case_targets, case_model = lesson07_checklist_case()
my_first_failure = None
_ = check_lesson07_3(my_first_failure)
