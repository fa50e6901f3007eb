# %% [markdown]
# # Lesson 08 · Audit your training code
#
# Questions answered: Q23
#
# **Goal.** Your training code is plain PyTorch and already written. After this lesson you can run it
# under `bw.audit()` without changing a line, read what the report says about each BCE call (what was
# given, why it is wrong, what to write instead, and the line of *your* code that made the call),
# apply the fix and see the report come back clean. You will also run a whole script under audit from
# the shell, and make the audit stop at the first finding.
#
# **How to read it.** Each section shows a short piece of training code with the mistakes the forum
# threads made, rewritten here. Before running it, *predict*: does PyTorch complain? What is wrong?
# Then the report reveals it. Nothing in these snippets raises an error: that is the point.

# %%
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import bceweights as bw
from bceweights.lessons import data
from bceweights.lessons.exercises import LESSON08_QUESTION, check_lesson08
from bceweights.lessons.model import TinyUNet

# Small problems run faster on one thread, and then give the same numbers on every machine.
torch.set_num_threads(1)
torch.manual_seed(0)


def sig4(value: float) -> str:
    """A number with 4 significant digits, as every printed number in these lessons."""
    return f"{value:.4g}"


# %% [markdown]
# ## 1 · How the audit works
#
# `with bw.audit() as report:` watches every call of `F.binary_cross_entropy_with_logits`,
# `F.binary_cross_entropy` and `torch.binary_cross_entropy_with_logits`, and so of
# `nn.BCEWithLogitsLoss` and `nn.BCELoss`, which call them. It reads each call's operands (shapes,
# the autograd graph, and on a sample of the calls the values), and then lets the call run with
# exactly the arguments it got: **what your code computes does not change**. Each problem becomes a
# *finding* with a rule id, a message and the location of your own line; a problem is reported once
# per line and rule however many steps repeat it. In a notebook the location reads `cell, line L`:
# the line inside the cell that made the call (in a script, `train.py:42`).
#
# ## 2 · A segmentation step (threads 000 and 002)
#
# A batch of 3 images, a model with 3 output channels (multi-label masks, the plates of lesson 05), and a
# weight mask `(N, H, W)` that says which pixels were annotated (an 8 × 8 square, in a different place
# in each image); the annotators also marked unsure pixels with the void label 255 in the masks. The
# step below is how the threads wrote it.
#
# **Predict.** Does it run? How many things are wrong with the loss line?

# %%
plates = data.make_plates(3, 16, seed=0)
images, masks = plates.images.double(), plates.masks.double()
corners = torch.randint(0, 9, (3, 2), generator=torch.Generator().manual_seed(0))  # each square's top left
annotated = torch.zeros(3, 16, 16, dtype=torch.float64)
masks_with_void = masks.clone()
for n, (row, col) in enumerate(corners.tolist()):
    annotated[n, row : row + 8, col : col + 8] = 1.0  # image n's annotated square: 64 of 256 pixels
    masks_with_void[n, :, row : row + 8, col] = 255.0  # void: one unsure column inside that square
print("annotated squares, top-left corners:", corners.tolist())
model = TinyUNet(1, 3, seed=0)
print("logits", tuple(model(images).shape), " masks", tuple(masks_with_void.shape), " weight", tuple(annotated.shape))

# %%
with bw.audit() as report:
    logits = model(images)
    loss = F.binary_cross_entropy_with_logits(logits, masks_with_void, weight=annotated)
    loss.backward()
print("loss", sig4(loss.item()))
print(report)

# %% [markdown]
# **Reveal.** It runs, and the report has three findings for one line:
#
# * `misaligned-operand`: with `N == C == 3`, the mask `(N, H, W)` broadcasts against
#   `(N, C, H, W)` without an error, but PyTorch lines up the trailing dimensions, so *image n's mask
#   weights channel n of every image* (lesson 02). The fix is `weight.unsqueeze(1)`, shape `(N, 1, H, W)`.
# * `target-out-of-range`: 255 is not a target. Its loss has no minimum (it keeps falling as the
#   logit grows), and its gradient never vanishes. Void pixels must leave the loss.
# * `diluted-mean`: the weight is 0 on three quarters of the elements, and `reduction="mean"`
#   still divides by all of them (lesson 03, Q16).
#
# The first finding by itself already changes the loss, and nothing warns. The same call with the mask given its
# channel axis, and a count of the elements whose weight changes:

# %%
with torch.no_grad():
    given = F.binary_cross_entropy_with_logits(logits, masks_with_void, weight=annotated)  # as written
    meant = F.binary_cross_entropy_with_logits(logits, masks_with_void, weight=annotated.unsqueeze(1))
wrong = annotated.expand(3, 3, 16, 16) != annotated.unsqueeze(1).expand(3, 3, 16, 16)
print("loss with weight=annotated", sig4(given.item()), " with annotated.unsqueeze(1)", sig4(meant.item()))
print("elements whose weight is wrong:", int(wrong.sum()), "of", wrong.numel())

# %% [markdown]
# Each image's square is somewhere else, so channel n of every image is weighted by image n's square:
# 600 of the 2304 weights are wrong, and the loss is 0.4431 instead of 0.4597. (Had every image the
# same square, the mistake would change nothing, which is how it hides in tests with one fixed mask.)
#
# Now the same step with the three fixes the report suggests, in plain PyTorch:

# %%
with bw.audit() as report:
    logits = model(images)
    keep = (masks_with_void != 255) & (annotated.unsqueeze(1) > 0)  # (N, C, H, W): annotated and not void
    losses = F.binary_cross_entropy_with_logits(logits, masks_with_void.masked_fill(~keep, 0), reduction="none")
    loss = (losses * keep).sum() / keep.sum()  # the mean over the kept elements
    loss.backward()
print("loss", sig4(loss.item()), " kept elements", int(keep.sum()), "of", keep.numel())
print(report)

# %% [markdown]
# Clean. `bw.bce_with_logits(logits, masks_with_void, ignore=~keep)` computes the same mean in one call,
# and it refuses the `(N, H, W)` mask outright, with the same advice:

# %%
print("bw.bce_with_logits(..., ignore=~keep):", sig4(bw.bce_with_logits(logits, masks_with_void, ignore=~keep)))
try:
    bw.bce_with_logits(logits, masks, weight=annotated)
except bw.WeightShapeError as error:
    print("WeightShapeError:", error)

# %% [markdown]
# ## 3 · A binary classifier (thread 004)
#
# One logit per sample, `(N, 1)`, labels drawn with 10 % probability. Thread 004 took class weights `[0.1, 0.9]`,
# indexed them by each sample's label and passed the result as `pos_weight`; the model also ends in
# `nn.Sigmoid()`, "to get probabilities".
#
# **Predict.** Which of the two is a bug, and what does each do to the loss?

# %%
generator = torch.Generator().manual_seed(0)
features = torch.randn(64, 8, generator=generator)
labels = (torch.rand(64, 1, generator=generator) < 0.1).float()
class_weights = torch.tensor([0.1, 0.9])
torch.manual_seed(0)
classifier = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 1), nn.Sigmoid())

with bw.audit() as report:
    per_sample = class_weights[labels.view(-1).long()].view_as(labels)
    criterion = nn.BCEWithLogitsLoss(pos_weight=per_sample)
    loss = criterion(classifier(features), labels)
print(report)

# %% [markdown]
# **Reveal.** Both. `per-sample-pos-weight`: `pos_weight` multiplies only the positive term, so the
# value the negatives carry is never used; the whole construction is one `pos_weight` of 0.9, which
# *down*-weights the rare positives (lesson 01, Q14). `double-sigmoid`, read from the autograd graph
# (`SigmoidBackward0`): the with-logits loss applies its own sigmoid, so the probability it scores
# can never fall below 0.5. The cell below shows it on this model's outputs:

# %%
with torch.no_grad():
    scored = torch.sigmoid(classifier(features))  # what BCEWithLogitsLoss turns the outputs into
print("probabilities the loss scores: min", sig4(scored.min().item()), " max", sig4(scored.max().item()))

# %% [markdown]
# The fix: drop the final `nn.Sigmoid()` (apply `torch.sigmoid` only to read probabilities) and give
# one ratio, negatives over positives, as `pos_weight`, counted on the labels (lesson 04).

# %%
logit_model = classifier[:-1]  # the same network without its final sigmoid
ratio = (labels == 0).sum() / (labels == 1).sum()
with bw.audit() as report:
    criterion = nn.BCEWithLogitsLoss(pos_weight=ratio.reshape(1))  # tensor([p]) for one output
    loss = criterion(logit_model(features), labels)
print("negatives", int((labels == 0).sum()), " positives", int(labels.sum()), " pos_weight", sig4(ratio.item()))
print(report)

# %% [markdown]
# Why 15 and not the report's 9? The report's `torch.tensor([9.0])` is 0.9 / 0.1, read from the
# thread's class weights, which match the 10 % the labels were drawn with. Only 4 of the 64 labels
# came out positive: 60 / 4 = 15. A ratio belongs to the labels you train on, so count them.

# %% [markdown]
# ## 4 · Sigmoid, then `BCELoss` (Q12)
#
# The thread's other habit: a sigmoid, then `nn.BCELoss`. It computes the same loss as the logits
# form where the numbers are moderate, so **predict**: is this a bug or only a style?

# %%
confident = torch.tensor([20.0, -3.0, 0.5], requires_grad=True)  # the first element: confidently wrong
truth = torch.tensor([0.0, 0.0, 1.0])
with bw.audit() as report:
    loss = nn.BCELoss(reduction="sum")(torch.sigmoid(confident), truth)
loss.backward()
print("gradient through sigmoid + BCELoss:", [sig4(g) for g in confident.grad.tolist()])
print(report)

# %% [markdown]
# **Reveal.** `sigmoid-then-bce`: in float32, `sigmoid(20)` rounds to exactly 1, BCE clamps
# `log(1 - 1)` at −100, and the confidently wrong element gets gradient 0: it is never corrected
# (lesson 03's stability explorer shows where that starts). The logits form keeps the gradient:

# %%
confident.grad = None
with bw.audit() as report:
    loss = nn.BCEWithLogitsLoss(reduction="sum")(confident, truth)
loss.backward()
print("gradient of BCEWithLogitsLoss:   ", [sig4(g) for g in confident.grad.tolist()])
print(report)

# %% [markdown]
# ## 5 · The trap PyTorch cannot see: W == C (pytorch#27936)
#
# A 4-channel model, trained on crops 4 pixels wide, with one `pos_weight` per channel as the
# documentation long described it, "a vector with length equal to the number of classes". **Predict**:
# which axis does PyTorch give it to?

# %%
crops = torch.randn(2, 4, 8, 4)
crop_masks = (torch.rand(2, 4, 8, 4) < 0.2).float()
per_channel = torch.tensor([1.0, 5.0, 10.0, 20.0])
with bw.audit() as report:
    wrong = F.binary_cross_entropy_with_logits(crops, crop_masks, pos_weight=per_channel)
    right = F.binary_cross_entropy_with_logits(crops, crop_masks, pos_weight=per_channel.view(4, 1, 1))
print("loss with (C,):", sig4(wrong.item()), "  with (C, 1, 1):", sig4(right.item()))
print(report)

# %% [markdown]
# **Reveal.** The width. Trailing alignment pairs a 1-D operand with the last axis, so `(4,)` weights
# the 4 columns, and nothing fails because W happens to equal C. On a crop of any other width the same
# line raises, which is why this bug survives only in exactly the runs where it does damage. The
# report flags the first call and not the second: `(C, 1, 1)` is the correct idiom.
#
# ## 6 · A whole script, from the shell
#
# To audit a training script without touching it, run it through the audit's command line:
# `python -m bceweights.audit train.py [its arguments]`. The script runs as `__main__` with its
# arguments in `sys.argv`, the report is printed when it ends, and the exit status is 1 when there
# are findings (so a CI job can fail on them). The cell below writes a small `train.py` into a
# temporary folder and runs it there.

# %%
script = textwrap.dedent('''
    import sys
    import torch
    from torch import nn

    epochs = int(sys.argv[sys.argv.index("--epochs") + 1])
    model = nn.Conv2d(1, 3, 3, padding=1)
    criterion = nn.BCEWithLogitsLoss(pos_weight=torch.tensor([1.0, 30.0, 6.0]))
    images, masks = torch.randn(3, 1, 6, 3), (torch.rand(3, 3, 6, 3) < 0.2).float()
    for epoch in range(epochs):
        loss = criterion(model(images), masks)
        loss.backward()
    print("trained", epochs, "epochs")
''')
with tempfile.TemporaryDirectory() as folder:
    Path(folder, "train.py").write_text(script, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "bceweights.audit", "train.py", "--epochs", "2"],
        cwd=folder, capture_output=True, text=True,
    )
print(done.stdout)
print("exit status", done.returncode)

# %% [markdown]
# The location is the script's own line 11, the `criterion(...)` call, not a line inside
# `torch/nn/modules/loss.py`.
#
# ## 7 · Stop at the first finding
#
# `bw.audit(strict=True)` raises `AuditError` (a `ValueError`) at the first finding, *before* the
# loss is computed, so a debugger stops on the offending line:

# %%
try:
    with bw.audit(strict=True):
        F.binary_cross_entropy_with_logits(crops, crop_masks, pos_weight=per_channel)
except bw.AuditError as error:
    print(type(error).__name__, "-", str(error).splitlines()[0])

# %% [markdown]
# ## 8 · What stays quiet, and a ratio counted on one batch
#
# The audit reports only what is wrong. **Predict**: which of these two calls does it flag? A
# `(N, 1, H, W)` mask with the weighted mean, and a `(C,)` `pos_weight` on the `(N, C)` logits of a
# multi-label classifier (6 samples, 3 labels, the third one rare).

# %%
generator = torch.Generator().manual_seed(1)
label_logits = torch.randn(6, 3, generator=generator)  # (N, C)
label_targets = (torch.rand(6, 3, generator=generator) < torch.tensor([0.5, 0.3, 0.05])).float()  # label 2 is rare
with bw.audit() as report:
    logits = model(images)
    weight = annotated.unsqueeze(1)  # (N, 1, H, W): each image's own square, on every channel
    summed = F.binary_cross_entropy_with_logits(logits, masks, weight=weight, reduction="sum")
    masked = summed / weight.expand_as(logits).sum()  # the weighted mean
    per_label = torch.tensor([1.0, 4.0, 9.0])  # (C,): one pos_weight per label
    labelled = F.binary_cross_entropy_with_logits(label_logits, label_targets, pos_weight=per_label)
print(report)

# %% [markdown]
# **Reveal.** Neither: on `(N, C)`, trailing alignment pairs `(C,)` with the channels, as intended.
# The last rule, `invalid-weight-values`, reads values. A `pos_weight` of `neg / pos` counted on one
# batch is infinite for a label that batch never shows (lesson 09, section 7):

# %%
positives = label_targets.sum(dim=0)
batch_ratio = (label_targets.shape[0] - positives) / positives  # neg / pos per label, on this batch only
with bw.audit() as report:
    loss = F.binary_cross_entropy_with_logits(label_logits, label_targets, pos_weight=batch_ratio)
print("positives per label", positives.long().tolist(), " pos_weight", [sig4(v) for v in batch_ratio.tolist()],
      " loss", sig4(loss.item()))
print(report)

# %% [markdown]
# PyTorch computes the loss without a word, and it is `nan` (the infinite weight times a zero target).
# Count positives once, over the whole data set, before training (lesson 09, section 7).
#
# ## 9 · Summary
#
# * `with bw.audit() as report:` around unmodified code reads every PyTorch BCE call, changes
#   nothing it computes, and lists one finding per line of your code and rule; `print(report)`
#   reads like the errors of the other lessons: given, why, write instead.
# * The rules: `misaligned-operand` (lesson 02's trailing-alignment traps, W == C among them),
#   `per-sample-pos-weight` (Q14), `double-sigmoid` (read from the autograd graph),
#   `sigmoid-then-bce` (Q12), `target-out-of-range` (void labels), `diluted-mean` (Q16) and
#   `invalid-weight-values` (a negative, NaN or infinite weight, such as a per-batch `neg / pos`).
# * `python -m bceweights.audit train.py args…` audits a script and exits 1 on findings;
#   `bw.audit(strict=True)` stops at the first one.
# * The correct idioms stay quiet: `(C, 1, 1)` per channel, `(N, 1, H, W)` masks, `tensor([p])` for
#   one output, `(C,)` on `(N, C)` (sections 3, 5 and 8).
#
# ## 10 · Exercise
#
# Write `my_loss` so that the checker, which runs it under `bw.audit()` on two batches (one 3 pixels
# wide, one 5), finds nothing and gets the intended value. Stuck? `print(lesson08_solution())` (import
# it from `bceweights.lessons.exercises`) shows one answer.

# %%
print(LESSON08_QUESTION)
my_loss = None  # replace with your function: def my_loss(logits, masks): ...
_ = check_lesson08(my_loss)
