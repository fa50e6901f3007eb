# %% [markdown]
# # Lesson 09 · Audit your training code
#
# Questions answered: Q23
#
# **Goal.** Your training code is plain PyTorch and already written. After this lesson you can run it
# under `bw.audit()` without changing a line, read what the report says about each BCE call (what was
# given, why it is wrong, what to write instead, and the line of *your* code that made the call),
# apply the fix and see the report come back clean, and tell an *error* (the call computes something
# other than what it was meant to) from a *warning* (a choice that can be meant, whose consequence the
# message states). You will also run a whole script under audit from the shell, and make the audit stop
# at the first finding. Four checked exercises and a short questionnaire close the lesson.
#
# **How to read it.** Each section shows a short piece of training code with the mistakes the forum
# threads made, rewritten here. Before running it, *predict*: does PyTorch complain? What is wrong?
# Then the report reveals it. Nothing in these snippets raises an error: that is the point.

# %%
import math
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
# Each finding has a **severity**. An *error* is a call that computes something other than what it was
# almost surely meant to: a weight on the wrong axis, void labels read as targets, a double sigmoid. A
# *warning* is a choice that can be meant; its message states the consequence, so that you decide. The
# report marks warnings as `[rule, warning]`, and `report.errors` / `report.warnings` split them.
#
# ## 2 · A segmentation step (from two forum threads)
#
# A batch of 3 images, a model with 3 output channels (multi-label masks, the plates of lesson 06), and a
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
# **Reveal.** It runs, and the report has three findings for one line, two errors and a warning:
#
# * `misaligned-operand`: with `N == C == 3`, the mask `(N, H, W)` broadcasts against
#   `(N, C, H, W)` without an error, but PyTorch lines up the trailing dimensions, so *image n's mask
#   weights channel n of every image* (lesson 02). The fix is `weight.unsqueeze(1)`, shape `(N, 1, H, W)`.
# * `target-out-of-range`: 255 is not a target. Its loss has no minimum (it keeps falling as the
#   logit grows), and its gradient never vanishes. The message reads the data before it proposes a
#   fix: the target holds 0, 1 and 255, so 255 cannot be the positives (1 already is), and it proposes
#   leaving the void pixels out. Under a weight, an element whose weight is 0 is left out with them, and
#   since the same call's mean is diluted (next finding) it adds a line that fixes both. (For a target of
#   only 0 and 255 it proposes `target / 255` first: see the cell after the fixes.)
# * `diluted-mean`, a warning: the weight is 0 on three quarters of the elements, and
#   `reduction="mean"` still divides by all of them (lesson 03, Q16). That is a design choice, the
#   same one lesson 07 (section 1) compares with `ignore=`: every labelled element's step is its slope
#   over all 2304 elements whatever the mask, and the loss *value* is the mean over the labelled
#   elements times their share, here 0.25. The message says so, and gives the lines to write if you
#   meant the mean over the labelled elements.
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
# Now the same step with the three findings fixed together, in plain PyTorch. The report's lines are
# meant to be applied in order: after the `unsqueeze(1)`, each `target-out-of-range` line alone gives
# this same loss, since a weight of 0 leaves an element out as a void label does (the weight here is 0 or 1;
# with soft weights the first two lines give the mean of weight × loss over the kept elements, the third the
# weighted mean). Applied before it,
# the plain-PyTorch line multiplies the misplaced mask into a full-shape weight, which runs, hides the
# misalignment from the audit and gives another loss; the bceweights lines refuse the `(N, H, W)` mask.

# %%
with bw.audit() as report:
    logits = model(images)
    keep = (masks_with_void != 255) & (annotated.unsqueeze(1) > 0)  # (N, C, H, W): annotated and not void
    losses = F.binary_cross_entropy_with_logits(logits, masks_with_void.masked_fill(~keep, 0), reduction="none")
    loss = (losses * keep).sum() / keep.sum().clamp_min(1)  # the mean over the kept elements (0 if none is kept)
    loss.backward()
print("loss", sig4(loss.item()), " kept elements", int(keep.sum()), "of", keep.numel())
print(report)

# %% [markdown]
# Clean. The count is clamped to 1, as in the report's plain-PyTorch line: a batch in which no element is
# kept (every pixel void or unannotated) then gives 0 instead of 0 / 0 = NaN, and when some element is
# kept the clamp changes nothing (lesson 10, section 3). The report's weighted means guard their sum of
# weights with `torch.where(w_sum > 0, w_sum, 1)` instead (`w_sum := ...` names the sum inside the one
# line): soft weights can sum to less than 1, where `.clamp_min(1)` would shrink the mean (lesson 10,
# section 4).
# `bw.bce_with_logits(logits, masks_with_void, ignore=~keep)` computes the same mean in one call,
# and it refuses the `(N, H, W)` mask outright, with the same advice:

# %%
print("bw.bce_with_logits(..., ignore=~keep):", sig4(bw.bce_with_logits(logits, masks_with_void, ignore=~keep)))
try:
    bw.bce_with_logits(logits, masks, weight=annotated)
except bw.WeightShapeError as error:
    print("WeightShapeError:", error)

# %% [markdown]
# A value outside [0, 1] is not always a void label. Masks saved as PNG files hold 0 and 255, with 255
# for the object; labels written for an SVM hold −1 and 1. Dropping the 255s would drop every positive,
# dropping the −1s every negative. So when the target holds two or three values, the message names each
# reading and says which one the data suggests. **Predict**: for the PNG masks below, which one?

# %%
png_masks = (masks[:, :1] * 255).to(torch.uint8)  # (N, 1, H, W): 0 and 255, as a PNG file stores a mask
with bw.audit() as report:
    F.binary_cross_entropy_with_logits(logits[:, :1], png_masks.double())
print(report.findings[0].message)

# %% [markdown]
# The data holds no 1, so the message proposes `target / 255` first; `ignore=(target == 255)` comes
# second, and the message says what it would mean here (no positive left). Exercise 09.3 asks you to
# repair such a step.
#
# ## 3 · A mask multiplied in
#
# Another common way to leave pixels out (MONAI's masked losses do it) multiplies *both* the input and the
# target by the mask, then calls the loss with its default mean. No `weight` is passed, so the rule has to
# read the values: most input elements are exactly 0, and the target is 0 at every one of them.
# **Predict**: what does a masked element add to the loss, and what gradient does it send?

# %%
sparse = (torch.rand(3, 1, 16, 16, generator=torch.Generator().manual_seed(3)) < 0.2).double()  # keeps about 20 %
leaf = model(images)[:, :1].detach().requires_grad_(True)
target_1 = masks[:, :1]
with bw.audit() as report:
    multiplied = nn.BCEWithLogitsLoss()(leaf * sparse, target_1 * sparse)
multiplied.backward()
as_weight = F.binary_cross_entropy_with_logits(leaf.detach(), target_1, weight=sparse)
kept_sum = F.binary_cross_entropy_with_logits(leaf.detach(), target_1, weight=sparse, reduction="sum")
kept_mean = kept_sum / sparse.sum().clamp_min(1)
print("kept", int(sparse.sum()), "of", sparse.numel(), "  largest gradient on a masked logit:",
      sig4(leaf.grad[sparse == 0].abs().max().item()))
print("multiplied in", sig4(multiplied.item()), "  weight=mask", sig4(as_weight.item()),
      "  difference", sig4((multiplied - as_weight).item()), "  masked share x log 2",
      sig4((sparse == 0).double().mean().item() * math.log(2)), "  mean over the kept", sig4(kept_mean.item()))
print(report)

# %% [markdown]
# **Reveal.** A masked element sends no gradient (the product multiplies it by 0), and each kept element's
# gradient is its slope divided by all 768 elements: the same steps as `weight=mask` with the default
# mean, the design choice of section 2 and of lesson 07. What differs is the value. A masked logit is
# 0 and its target is 0, and BCE at logit 0 is log 2 = 0.6931, so the 592 masked elements add
# 0.6931 × 592/768 = 0.5343 to the loss: 0.6712 instead of the 0.1369 of `weight=mask`, or the 0.5974
# of the mean over the 176 kept elements. The floor never trains away, and it moves with each batch's
# mask, so a loss curve of this code says more about the masks than about the model. The audit reports
# it under the same rule as section 2, `diluted-mean`, as a warning with this consequence spelled out,
# and proposes passing the mask as `weight` (or `ignore=`) on the logits and targets as they were
# before the product.

# %% [markdown]
# ## 4 · A binary classifier (from a forum thread)
#
# One logit per sample, `(N, 1)`, labels drawn with 10 % probability. The thread took class weights `[0.1, 0.9]`,
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
#
# A relative of the thread's mistake is reported in pytorch#5157: `nn.BCELoss(weight=torch.tensor([0.1,
# 0.9]))`, meant as the weights of the negative and the positive class, on outputs of shape
# `(4, 2, 2)`. It runs, because the last axis happens to have size 2, and weights along that axis. The audit
# offers the per-channel reading, and, for two values, the class-weight readings too:

# %%
generator = torch.Generator().manual_seed(5)
outputs = torch.sigmoid(torch.randn(4, 2, 2, generator=generator))  # probabilities, as BCELoss takes them
truth_422 = (torch.rand(4, 2, 2, generator=generator) < 0.3).float()
with bw.audit() as report:
    nn.BCELoss(weight=torch.tensor([0.1, 0.9]))(outputs, truth_422)
print(report)

# %% [markdown]
# `torch.where(target == 1, 0.9, 0.1)` writes the class weights per element; `0.1 * ...` with
# `pos_weight=torch.tensor([9.0])` computes the same loss from the logits, before the sigmoid (the
# with-logits form, section 5).

# %% [markdown]
# ## 5 · Sigmoid, then `BCELoss` (Q12)
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
# The usual repair, "pass what went into the sigmoid", is wrong when that is itself a sigmoid's output:
# a model that already ends in `nn.Sigmoid()` and a loss line that adds `torch.sigmoid` again. Then the
# value before the last sigmoid is a probability, and the with-logits loss would get a double sigmoid.
# The audit counts the sigmoids in a row and walks back to the logits:

# %%
with bw.audit() as report:
    loss = nn.BCELoss()(torch.sigmoid(classifier(features)), labels)  # classifier ends in nn.Sigmoid()
print(report)

# %% [markdown]
# ## 6 · The trap PyTorch cannot see: W == C
#
# A 4-channel model, trained on crops 4 pixels wide, with one `pos_weight` per channel as the
# documentation long described it, "a vector with length equal to the number of classes". When the width
# differs from the channel count, PyTorch raises the same RuntimeError as pytorch#27936 ("The size
# of tensor a must match the size of tensor b"; there a length-2 pos_weight on (4, 100, 100)). **Predict**: what happens when W equals C,
# and which axis does PyTorch give the vector to?

# %%
crops = torch.randn(2, 4, 8, 4)
crop_masks = (torch.rand(2, 4, 8, 4) < 0.2).float()
per_channel = torch.tensor([1.0, 5.0, 10.0, 20.0])
with bw.audit() as report:
    wrong = F.binary_cross_entropy_with_logits(crops, crop_masks, pos_weight=per_channel)
    right = F.binary_cross_entropy_with_logits(crops, crop_masks, pos_weight=per_channel.view(4, 1, 1))
print("loss with (C,):", sig4(wrong.item()), "  with (C, 1, 1):", sig4(right.item()))
print(report)
try:  # the same line on crops 5 pixels wide: the RuntimeError of pytorch#27936
    F.binary_cross_entropy_with_logits(torch.randn(2, 4, 8, 5), torch.rand(2, 4, 8, 5), pos_weight=per_channel)
except RuntimeError as error:
    print("width 5: RuntimeError:", str(error).splitlines()[0])

# %% [markdown]
# **Reveal.** The width. Trailing alignment pairs a 1-D operand with the last axis, so `(4,)` weights
# the 4 columns, and nothing fails because W happens to equal C: the cell shows the silent case, and
# the same RuntimeError as pytorch#27936 on a crop 5 pixels wide. The bug survives only in exactly the runs
# where it does damage. The report flags the first call and not the second: `(C, 1, 1)` is the correct
# idiom.
#
# ## 7 · What the audit leaves alone, and what it only warns about
#
# PyTorch accepts more than one correct layout, and the audit must not cry wolf. **Predict** for each
# call below: silent, a warning, or an error?
#
# 1. a `pos_weight` of the target's full shape `(B, C)`, a positive weight for every element, which
#    PyTorch documents;
# 2. the per-label ratio repeated along the batch with `.repeat(B, 1)`;
# 3. a `pos_weight` of length W on `(N, C, H, W)` images, with W different from C;
# 4. the raw-logit slice of `torch.cat([torch.sigmoid(aux), logits], dim=1)`, a model with an auxiliary
#    head whose probability is stored beside the logits.

# %%
generator = torch.Generator().manual_seed(2)
label_logits = torch.randn(8, 3, generator=generator)  # (B, C) = (8, 3)
label_targets = (torch.rand(8, 3, generator=generator) < 0.3).float()
image_logits = torch.randn(2, 3, 4, 5, generator=generator)  # (N, C, H, W), W = 5
image_masks = (torch.rand(2, 3, 4, 5, generator=generator) < 0.2).float()
aux = torch.randn(8, 1, generator=generator, requires_grad=True)
head = torch.randn(8, 3, generator=generator, requires_grad=True)
with bw.audit() as report:
    F.binary_cross_entropy_with_logits(label_logits, label_targets, pos_weight=torch.rand(8, 3, generator=generator) + 1)
    F.binary_cross_entropy_with_logits(label_logits, label_targets, pos_weight=torch.tensor([1.0, 4.0, 9.0]).repeat(8, 1))
    F.binary_cross_entropy_with_logits(image_logits, image_masks, pos_weight=torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]))
    stored = torch.cat([torch.sigmoid(aux), head], dim=1)  # (8, 4): a probability, then 3 logits
    F.binary_cross_entropy_with_logits(stored[:, 1:], label_targets)
print(report)

# %% [markdown]
# **Reveal.** Two warnings, and nothing for calls 1 and 4.
#
# * A per-element `pos_weight` is legitimate, so `per-sample-pos-weight` fires only on evidence of a
#   mistake: values that follow the labels (section 4, an error), or one row repeated along the batch
#   (call 2, a warning: the loss is right for this batch, but PyTorch raises on a last batch of
#   another size, and one row says which axis it weights).
# * A `pos_weight` of length W on images (call 3) runs as one ratio per image column. A ratio of
#   negatives to positives belongs to a class, a channel; a ratio per column is almost never meant on a
#   segmentation output, so the audit warns and proposes one ratio per channel, or `weight=` if a
#   weight per column was meant. bceweights' own loss accepts it as PyTorch does (it lines up with the
#   trailing axis without ambiguity), which is why the warning lives in the audit.
# * For call 4 the audit follows the slice the loss reads through the `cat` to the input it came from,
#   the raw logits `head`, and stays quiet. Had the loss read `stored[:, :1]`, it would have reported a
#   double sigmoid. Where it cannot tell which elements are read (a slice after a reshape), it reports
#   only if every input of the `cat` is a sigmoid's output.
#
# ## 8 · A whole script, from the shell
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
# ## 9 · Stop at the first finding
#
# `bw.audit(strict=True)` raises `AuditError` (a `ValueError`) at the first finding, warnings
# included, *before* the loss is computed, so a debugger stops on the offending line:

# %%
try:
    with bw.audit(strict=True):
        F.binary_cross_entropy_with_logits(crops, crop_masks, pos_weight=per_channel)
except bw.AuditError as error:
    print(type(error).__name__, "-", str(error).splitlines()[0])

# %% [markdown]
# ## 10 · What stays quiet, and a ratio counted on one batch
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
    w_sum = weight.expand_as(logits).sum()
    masked = summed / torch.where(w_sum > 0, w_sum, 1)  # the weighted mean (0 if every weight is 0)
    per_label = torch.tensor([1.0, 4.0, 9.0])  # (C,): one pos_weight per label
    labelled = F.binary_cross_entropy_with_logits(label_logits, label_targets, pos_weight=per_label)
print(report)

# %% [markdown]
# **Reveal.** Neither: on `(N, C)`, trailing alignment pairs `(C,)` with the channels, as intended.
# The last rule, `invalid-weight-values`, reads values. A `pos_weight` of `neg / pos` counted on one
# batch is infinite for a label that batch never shows (lesson 10, section 7):

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
# The message does not propose `nan_to_num(posinf=0)`: that would give label 2's positives a weight of
# 0, the opposite of the intent. It proposes fixing the count. Label 2 has no positive in this batch, so
# it has no positive term either, and any finite `pos_weight` gives it the same loss; the ratio should
# still be counted once, over the whole data set, before training (lesson 10, section 7). The first fix,
# applied:

# %%
num_pos = label_targets.sum(dim=0)
num_neg = label_targets.shape[0] - num_pos
with bw.audit() as report:
    loss = F.binary_cross_entropy_with_logits(label_logits, label_targets, pos_weight=num_neg / num_pos.clamp_min(1))
print("pos_weight", [sig4(v) for v in (num_neg / num_pos.clamp_min(1)).tolist()], " loss", sig4(loss.item()))
print(report)

# %% [markdown]
# Clean, and finite: label 2 gets `pos_weight` 6 (6 negatives over a count clamped to 1), which changes
# nothing in this batch, where label 2 has no positive term.

# ## 11 · Summary
#
# * `with bw.audit() as report:` around unmodified code reads every PyTorch BCE call, changes
#   nothing it computes, and lists one finding per line of your code and rule; `print(report)`
#   reads like the errors of the other lessons: given, why, write instead.
# * The rules: `misaligned-operand` (lesson 02's trailing-alignment traps, W == C among them; a
#   warning for a `pos_weight` of length W on images), `per-sample-pos-weight` (Q14: values that
#   follow the labels; a warning for a repeated row), `double-sigmoid` and `sigmoid-then-bce` (Q12,
#   read from the autograd graph through `cat`, `stack` and `split`, with the sigmoids counted),
#   `target-out-of-range` (void labels, and the 0/255 and ±1 label formats with the reading the data
#   suggests), `diluted-mean` (Q16, a warning: a mean over elements a mask zeroed, in `weight` or
#   multiplied in, a design choice whose consequence the message states) and `invalid-weight-values`
#   (a negative, NaN or infinite weight, such as a per-batch `neg / pos`, repaired at the count).
# * `python -m bceweights.audit train.py args…` audits a script and exits 1 on findings;
#   `bw.audit(strict=True)` stops at the first one.
# * The correct idioms stay quiet: `(C, 1, 1)` per channel, `(N, 1, H, W)` masks, `tensor([p])` for
#   one output, `(C,)` on `(N, C)`, a per-element `pos_weight` of the target's shape (sections 4, 6, 7
#   and 10).
#
# ## 12 · Exercises
#
# Each cell prints a question; replace `None` with your answer and run the cell. A wrong answer gets a
# hint that says what it would mean. When you have tried, `show_solution("09.2")` prints the worked
# solution of exercise 09.2 (and likewise for the others).

# %%
from bceweights.lessons.exercises import (
    LESSON09_1_QUESTION,
    LESSON09_2_QUESTION,
    LESSON09_3_QUESTION,
    LESSON09_4_QUESTION,
    check_lesson09_1,
    check_lesson09_2,
    check_lesson09_3,
    check_lesson09_4,
    print_questionnaire,
    show_solution,
)

# %% [markdown]
# **09.1** Repair: write `my_loss` so that the checker, which runs it under `bw.audit()` on two batches
# (one 3 pixels wide, one 5), finds nothing and gets the intended value.

# %%
print(LESSON09_1_QUESTION)
my_loss = None  # replace with your function: def my_loss(logits, masks): ...
_ = check_lesson09_1(my_loss)

# %% [markdown]
# **09.2** Concept: which of three `pos_weight` calls weights by mistake? (Section 7 and section 4.)

# %%
print(LESSON09_2_QUESTION)
my_choice = None
_ = check_lesson09_2(my_choice)

# %% [markdown]
# **09.3** Repair: a training step fed PNG masks. The checker runs your step under `bw.audit()`.

# %%
print(LESSON09_3_QUESTION)
my_step = None  # replace with your function: def my_step(logits, masks): ...
_ = check_lesson09_3(my_step)

# %% [markdown]
# **09.4** Transfer: the constant of a mask multiplied in (section 3), on volumes.

# %%
print(LESSON09_4_QUESTION)
my_constant = None
_ = check_lesson09_4(my_constant)

# %% [markdown]
# ## 13 · Questionnaire
#
# Short questions on the whole lesson. Answer each in a sentence or two, from memory first, then check
# with the cells above. When you have tried, `show_solution("09.Q")` prints the answers.

# %%
print_questionnaire("09")
