# %% [markdown]
# # Start here: weighted binary cross-entropy without the guesswork
#
# This page is the map of the collection. It checks your environment, shows the one function the
# lessons are built around, and gives the cheat sheet *"which argument do I need?"*.
#
# Every lesson is a runnable notebook: read the question, **predict** what will happen, then run the
# cell and drag the sliders to see whether you were right. The numbers printed under the plots are
# stored in the notebooks, and the test suite re-runs every lesson and compares them (strict nbval)
# three times: natively, with the CPU's vector paths capped (another CPU emulated on this one), and with
# the initial weights of every lesson's network (the tiny U-Net and MLP) moved by about one float32 rounding
# step. A figure from training a network is reported over five network seeds (lesson 01's small logistic
# fits, which are convex, are shown as one run each), and a claim about a method is a check that holds on every seed
# (or on "at least k of 5", where the lesson says "most"): what one run prints is a trajectory, not a finding.
#
# **Before you start.** You need Python and a little PyTorch: making tensors, reading their shapes,
# calling a loss and `.backward()`. You should know that a *logit* $x$ is turned into a probability by
# the sigmoid $\sigma(x) = 1/(1 + e^{-x})$, and what a derivative is (the lessons read gradients off
# plots; no calculus beyond that). Broadcasting is taught in lesson 02. A laptop CPU is enough: no
# lesson needs a GPU, and the largest training run takes under a minute.
#
# | lesson | what it answers | questions | time |
# |---|---|---|---|
# | [01 · weight vs pos_weight](01_weight_vs_pos_weight.ipynb) | the formula term by term; what each argument scales in the loss and the gradient; `pos_weight=10` errors; why per-sample weights passed as `pos_weight` do not raise recall; the optimum that `pos_weight` shifts | Q4, Q13, Q14 | 45 min |
# | [02 · masks and broadcasting](02_masks_and_broadcasting.ipynb) | a `(N, H, W)` mask on `(N, C, H, W)` predictions; `expand` vs `repeat`; `target * mask` is not weighting; per-channel weights and masks; why `pos_weight.repeat(B, 1)` crashes | Q1, Q2, Q3, Q8 | 45 min |
# | [03 · flattening and reduction](03_flattening_and_reduction.ipynb) | batch, channel and pixel are all the same to the loss; what `mean` divides by; weights per call; why logits beat `sigmoid` + `BCELoss` | Q5, Q10, Q12, Q16 | 40 min |
# | [04 · class weights from data](04_class_weights_from_data.ipynb) | class weights from counts and datasets (balanced, median frequency); a per-channel `pos_weight` shaped `(C, 1, 1)` in the mask's order; about 1/95 foreground in a volume: weight map vs `pos_weight` | Q6, Q8, Q9 | 25 min |
# | [05 · training with a rare class](05_training_a_rare_class.ipynb) | a rare, faint channel over five seeds; thresholds vs `pos_weight`; why recall is 0; a loop to fix in plain PyTorch | Q8, Q15 (Q20's first checks) | 45 min |
# | [06 · multi-label vs multi-class](06_multilabel_vs_multiclass.ipynb) | sigmoid + BCE or softmax + cross-entropy; one logit or two | Q7, Q11 | 40 min |
# | [07 · beyond the basics](07_beyond_the_basics.ipynb) | ignore regions, focal loss, boundary weight maps, label smoothing | beyond the threads | 60 min |
# | [08 · what weighting buys](08_what_weighting_buys.ipynb) | ranking vs calibration under `pos_weight`, oversampling, focal loss, Dice and BCE + Dice; undoing `pos_weight` with −log p; a threshold for a precision target, chosen on validation and reported on test; the recall-is-0 checklist | Q17, Q18, Q19, Q20 | 70 min |
# | [09 · audit your training code](09_audit_your_training_code.ipynb) | `bw.audit()` around unmodified PyTorch code: misaligned and per-sample `pos_weight`, sigmoid applied twice, void labels as targets, diluted means; the fixes, and the report clean | Q23 | 45 min |
# | [10 · plain PyTorch recipes](10_plain_pytorch_recipes.ipynb) | every `bceweights` call as plain PyTorch: per-channel `pos_weight`, mask weights and the N == C / N = 1 trap, ignore regions, weighted mean, a weight per call, class weights checked against scikit-learn, per-batch vs data-set ratios, resampling | Q24 | 30 min |
# | [11 · beyond one process](11_beyond_one_process.ipynb) | a masked mean over DDP ranks and `process_group=`; every rank calls the loss; gradient accumulation; `DistributedSampler` padding; class weights over every shard; the loss under `torch.autocast` (float16's range) and `torch.compile` | Q21, Q22 | 40 min |
#
# The times are for reading, predicting and running every cell once, with the exercises and the
# questionnaires; this page takes about 10 minutes.
#
# **The formula, once.** For one element with logit $x$, target $y \in [0, 1]$, `weight` $w$ and
# `pos_weight` $p$, every lesson is about this line:
#
# $$
# \ell(x, y) = -\,w\,\big[\, p\,y\,\log\sigma(x) + (1 - y)\,\log\big(1 - \sigma(x)\big) \big]
# $$
#
# `weight` scales the whole element; `pos_weight` scales only the positive term. `reduction="mean"` then
# averages $\ell$ over all elements (lesson 03 says what that divides by).
#
# **Which lesson answers which question.** The collection grew out of 24 questions practitioners keep
# asking on forums (Q1–Q24, the same numbers as in the README); each is answered with a runnable
# demonstration:
#
# | question | where |
# |---|---|
# | Q1 a `(N, H, W)` mask for `(N, C, H, W)`; `expand` vs `repeat` | 02 |
# | Q2 `target * mask` is not weighting | 02 |
# | Q3 a weight and a mask per channel | 02 |
# | Q4 `weight` vs `pos_weight`: formula, curve, gradient, shapes | 01 |
# | Q5 batch, channel, pixel; flattening | 03 |
# | Q6 class weights from a dataset | 04 |
# | Q7 multi-label or multi-class | 06 |
# | Q8 a channel never learned; `.repeat(B, 1)` crashes | 02, 04, 05 |
# | Q9 a per-voxel weight for about 1/95 foreground | 04 |
# | Q10 a weight per call | 03 |
# | Q11 one logit with BCE or two with cross-entropy | 06 |
# | Q12 logits vs `sigmoid` + `BCELoss` | 03 (and 09 §5) |
# | Q13 `pos_weight=10` raises an error | 01 |
# | Q14 per-sample values as `pos_weight` | 01 |
# | Q15 precision vs recall; recall 0 after the first epoch | 05 |
# | Q16 what `mean` divides by; the effective learning rate | 03 |
# | Q17 calibrated probabilities after `pos_weight`; seeing calibration | 08 (and 01 §7, the shift) |
# | Q18 `pos_weight`, threshold, oversampling, focal, Dice; imbalance or overlap | 08 (and 05, 06) |
# | Q19 choosing a threshold for a precision target, reporting on a test set | 08 (and 05 §2, §4) |
# | Q20 recall 0: what to check, in which order | 08 (and 05 §3, §4) |
# | Q21 class weights and weighted means across processes (DDP) | 11 |
# | Q22 mixed precision and `torch.compile` | 11 (and 03 §4, float16) |
# | Q23 auditing existing plain-PyTorch code | 09 |
# | Q24 every recipe in plain PyTorch | 10 |

# %% [markdown]
# ## 1 · Check your environment
#
# The first cell prints what you are running on (it differs from machine to machine, so the tests do
# not compare it). The second checks what the lessons need and says *OK* or what to fix.

# %% tags=["nbval-ignore-output"]
import platform

import matplotlib
import numpy as np
import torch

import bceweights as bw

print(f"python      {platform.python_version()}")
print(f"torch       {torch.__version__}")
print(f"numpy       {np.__version__}")
print(f"matplotlib  {matplotlib.__version__}")
print(f"bceweights  {bw.__version__}")
print(f"device      {'cuda: ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu'}")

# %%
import importlib.util


def environment_problems() -> list[str]:
    """What the lessons need that this kernel lacks (an empty list means all is well)."""
    problems = []
    major, minor = (int(part) for part in torch.__version__.split(".")[:2])
    if (major, minor) < (2, 4):
        problems.append(f"torch {torch.__version__} is older than 2.4: run `make lab` to build the project's environment")
    for module in ("ipympl", "ipywidgets", "scipy", "tqdm"):
        if importlib.util.find_spec(module) is None:
            problems.append(f"{module} is missing: run `make lab` (it installs everything into .venv)")
    return problems


print("environment OK" if not environment_problems() else "\n".join(environment_problems()))

# %% [markdown]
# ## 2 · The one function
#
# `bw.bce_with_logits` is `torch.nn.functional.binary_cross_entropy_with_logits` with guard rails. With
# PyTorch's arguments it gives the same numbers:

# %%
import torch.nn.functional as F

generator = torch.Generator().manual_seed(0)
logits = torch.randn(4, 3, 8, 8, generator=generator)
target = (torch.rand(4, 3, 8, 8, generator=generator) < 0.2).float()
pos_weight = torch.tensor([6.0, 30.0, 1.0]).view(3, 1, 1)

ours = bw.bce_with_logits(logits, target, pos_weight=pos_weight)
pytorch = F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight)
print(f"bceweights {ours.item():.4g}   pytorch {pytorch.item():.4g}   equal: {torch.allclose(ours, pytorch)}")

# %% [markdown]
# **Predict:** PyTorch's documentation says `pos_weight` is "a weight of positive examples to be
# broadcasted with target", with one entry per class. So what happens if you pass the three class
# weights as a plain vector `torch.tensor([6., 30., 1.])` to predictions shaped `(N, C, H, W)`?
#
# Broadcasting lines up *trailing* dimensions, so a vector of length 3 pairs with the width `W`, not with
# the channels. PyTorch raises a size mismatch here (W = 8, the first line below), and when the width
# happens to be 3 it runs and weights columns instead of channels (lesson 02 shows it). `bceweights`
# refuses both and tells you the line to write:

# %%
try:
    F.binary_cross_entropy_with_logits(logits, target, pos_weight=torch.tensor([6.0, 30.0, 1.0]))
except RuntimeError as error:
    print("PyTorch:", str(error).splitlines()[0])
try:
    bw.bce_with_logits(logits, target, pos_weight=torch.tensor([6.0, 30.0, 1.0]))
except bw.WeightShapeError as error:
    print("bceweights:", error)

# %% [markdown]
# `bw.explain` shows how every operand lines up with the input, before you train on it: which axes it
# varies along (`N C H W` columns), which it is broadcast over (`·`), and what it would cost in memory if
# you materialised it with `repeat` instead of letting broadcasting do the work.

# %%
mask = (torch.rand(4, 8, 8, generator=generator) > 0.1).float()  # one mask per image, shared by channels
print(bw.explain(logits, target, weight=mask.unsqueeze(1), pos_weight=[6.0, 30.0, 1.0], channel_dim=1))

# %% [markdown]
# ## 3 · Cheat sheet: which argument do I need?
#
# For predictions `x` of shape `(N, C, H, W)` (for a classifier's `(N, C)` drop `H, W` and the trailing 1s: `pos_weight` `(C,)`, a per-sample `weight` `(N, 1)`):
#
# | you want to… | write | shape of the extra tensor |
# |---|---|---|
# | count rare **positives** more (class imbalance) | `pos_weight=torch.tensor([p])`; per channel `pos_weight=pw.view(C, 1, 1)`. `bceweights` also takes `pos_weight=p` or `pos_weight=[..], channel_dim=1` | a `(1,)` or `(C, 1, 1)` tensor; a bare number or a list only in `bceweights` (PyTorch raises a `TypeError`, lesson 01) |
# | scale **whole elements** (both terms): masks, per-channel, per-sample | `weight=w` | `(N, 1, H, W)` mask, `(C, 1, 1)`, `(N, 1, 1, 1)` |
# | leave pixels **out entirely** (void, unlabelled) | `ignore=void` | bool, `(N, 1, H, W)` |
# | a **weighted average** that does not change with the weights' scale | `reduction="weighted_mean"` | — |
# | a new weight **on every batch** with a module | `bw.BCEWithLogits()(x, y, weight=w)` | as `weight` |
# | a per-voxel map for about 1 foreground voxel in 95 (the thread's ratio neg/pos $r \approx$ 94–95; count yours from `y`) | `weight=bw.rebalance_map(y)`; `bw.rebalance_map(y, ratio)` with the data set's ratio when batches vary | same as `y` |
# | focus on **hard** pixels | `bw.focal_bce_with_logits(x, y, gamma=2)` | — |
# | a masked or weighted mean over all **DDP ranks** (and class counts over every shard) | `process_group=dist.group.WORLD` | — (lesson 11) |
# | check **existing PyTorch code** for silent weighting mistakes, unchanged | `with bw.audit() as report:` around your training step | — (lesson 09) |
#
# Three mistakes that *run without error* in PyTorch. A 1-D `pos_weight` with one value per channel is
# refused here when the width happens to equal the channel count, because PyTorch would silently pair
# it with the columns (lesson 02). A `(N, H, W)` mask passed as `weight=mask` raises in PyTorch, except when
# the batch size equals the channel count, where it runs and pairs images with channels, and when it is 1, where
# it runs and is right by luck (lesson 02, section 2); `bceweights` refuses it, and `weight=mask.unsqueeze(1)` is the fix. `target * mask` cannot be refused: a masked target is a valid
# target, so no library can tell it from a real one. It changes the labels, not the weights, and lesson
# 02 shows what that does to the gradient; write `weight=mask.unsqueeze(1)` instead.

# %% [markdown]
# Each row in action, on the same batch, except the per-voxel map (lesson 04 builds it), `process_group=`
# (it needs several processes: lesson 11 starts two) and `bw.audit()` (lesson 09 runs it on training
# code); every call prints one loss value:

# %%
void = torch.zeros(4, 1, 8, 8, dtype=torch.bool)
void[:, :, :, :2] = True  # the two leftmost columns are unlabelled
criterion = bw.BCEWithLogits(pos_weight=[6.0, 30.0, 1.0], channel_dim=1)
examples = {
    "pos_weight per channel": bw.bce_with_logits(logits, target, pos_weight=[6.0, 30.0, 1.0], channel_dim=1),
    "weight: mask shared by channels": bw.bce_with_logits(logits, target, weight=mask.unsqueeze(1)),
    "ignore: void columns": bw.bce_with_logits(logits, target, ignore=void),
    "weighted_mean": bw.bce_with_logits(logits, target, weight=mask.unsqueeze(1), reduction="weighted_mean"),
    "module, weight per call": criterion(logits, target, weight=mask.unsqueeze(1)),
    "focal, gamma=2": bw.focal_bce_with_logits(logits, target, gamma=2.0),
}
for name, value in examples.items():
    print(f"{name:34s} {value.item():.4g}")

# %% [markdown]
# ## Where next
#
# Start with [lesson 01](01_weight_vs_pos_weight.ipynb): it builds the picture every later lesson uses,
# the loss and its gradient side by side, live.
