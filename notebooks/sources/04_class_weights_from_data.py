# %% [markdown]
# # 04 · Class weights from data: counts, shapes, a 1-in-95 volume
#
# Questions answered: Q6, Q8 (the weight's shape), Q9
#
# **Goal.** Before any training: when one class covers 1 % of the pixels, how large should its weight be,
# what shape must the weight tensor have, and what does a per-voxel weight map change against `pos_weight`?
# This lesson computes the weights from data, lines them up with the channels, and compares the two ways
# of balancing a volume. Lesson 05 trains with these weights.
#
# You will:
#
# 1. compute class weights from counts and from a whole dataset, four common ways (Q6);
# 2. repair the thread's `pos_weight.repeat(B, 1)`: its shape and its channel order (Q8);
# 3. compare a voxel weight map with `pos_weight` on a `(1, 1, 60, 40, 40)` volume (Q9).
#
# Nothing here trains a model; the lesson runs in a few seconds. All data are made by
# `bceweights.lessons.data`; section 3 ends with a live explorer.

# %%
# %matplotlib widget

# %%
import math

import torch
from torch.utils.data import DataLoader

import bceweights as bw
from bceweights.lessons import data
from bceweights.lessons.explore.reduction import ReductionExplorer

torch.manual_seed(0)
RGB = ("red", "green", "blue")

# %% [markdown]
# ## 1 · Class weights from counts and from a dataset (Q6)
#
# **Goal of this part.** compute class weights four common ways, from counts and from a whole dataset.
#
# PyTorch's documentation gives the rule for `pos_weight`: with 100 positive and 300 negative
# examples of a class, use `300 / 100 = 3`. Then the positives, each counted 3 times, weigh as much
# in total as the negatives: `100 × 3 = 300` weighted positives against 300 negatives. It is these
# weighted *counts* that balance, not the loss terms: a term's size depends on how wrong the model is
# on that example, so the two sums of loss terms are equal only where every term has the same size
# (at logit 0, for example, as section 2's last cell shows). `bw.pos_weight_from_counts(num_pos, num_neg)` does exactly that and
# returns a tensor of shape `(1,)`, the shape a single-output model needs (a bare `3` is refused by
# `nn.BCEWithLogitsLoss`, see lesson 01).

# %%
print(bw.pos_weight_from_counts(100, 300))
print(bw.pos_weight_from_counts([100, 10], [300, 990]))  # one value per channel

# %% [markdown]
# On a real dataset you count over every target, batch by batch. The data set here is the
# **plates** problem that lesson 05 trains on: a single-channel image, and a mask with three
# channels red, green, blue. A large blue plate, a red code printed on the plate (its pixels are red
# *and* blue: magenta) and a small green disc beside it.
#
# `bw.pos_weight_from_targets` accepts a `DataLoader` and never concatenates the batches, so the
# data set may be larger than memory. It shows a progress bar while it counts.

# %%
# green_contrast: the green disc is faint (0.25 against pixel noise 0.35), like a small, low-contrast object.
plates = data.make_plates(256, 32, fractions=(0.06, 0.01, 0.25), green_contrast=0.25, seed=0)
loader = DataLoader(plates.dataset(), batch_size=32)
print("images", tuple(plates.images.shape), " masks", tuple(plates.masks.shape))

# %% tags=["nbval-ignore-output"]
pos_weight_rgb = bw.pos_weight_from_targets(loader, channel_dim=1, progress=True)

# %%
for name, share, weight in zip(RGB, plates.fractions().tolist(), pos_weight_rgb.tolist()):
    print(f"{name:<6} positive share {share:.4f}   pos_weight = neg/pos = {weight:.4g}")

# %% [markdown]
# **Predict.** Single-label methods weight *classes* of a label map rather than channels. Read the
# plates as four colours (black, green, blue, magenta) and compare scikit-learn's "balanced"
# weights `n / (K · count)` with median-frequency balancing `median(freq) / freq`. Which class gets the
# largest weight from each? Do the two agree on the *ratios* between classes?

# %%
labels = data.rgb_to_labels(plates.masks)  # (N, H, W) class indices
counts = torch.bincount(labels.flatten(), minlength=4)
balanced = bw.balanced_weights(counts)
median_frequency = bw.median_frequency_weights(labels, num_classes=4)
print(f"{'class':<8} {'share':>7} {'balanced':>9} {'median freq':>12}")
for k, name in enumerate(data.PLATE_CLASSES):
    share = float(counts[k] / counts.sum())
    print(f"{name:<8} {share:>7.4f} {float(balanced[k]):>9.4g} {float(median_frequency[k]):>12.4g}")
print("median freq / balanced, per class:", [round(r, 4) for r in (median_frequency / balanced).tolist()])

# %% [markdown]
# **Reveal.** Both put the largest weight on green, the rarest colour, and the ratios between the
# balanced weights are exactly the inverse ratios of the counts. Median-frequency weights differ in
# two ways. First, the scale: a class whose frequency equals the median frequency would get exactly 1.
# With four classes the median is the mean of the two middle frequencies (blue's and magenta's; `np.median`
# averages them, while `torch.median` would return the lower one), a
# frequency no class has, so no weight in the table is 1: the two middle classes get 0.6573 and 2.089,
# one on each side of 1. Second, each frequency counts only the images in which the class appears.
# Every image has all four colours here, so the two methods agree up to one factor (the last line:
# 0.5002 for every class); with a class absent from most images they would not.
#
# A note on the forum thread behind Q6: its script computes `np.mean` of the frequencies and calls it
# the median, and divides by the pixels of all labelled classes rather than by the pixels of the
# images that contain each class. Neither is median-frequency balancing; `bw.median_frequency_weights`
# follows Eigen & Fergus (2015).
#
# For BCE on multi-label masks the equivalent of a class weight is the per-channel `pos_weight`
# above. The next section gives it the shape and the channel order it needs; lesson 05 trains with it.

# %% [markdown]
# ## 2 · A weight per channel: shape and order (Q8)
#
# **Goal of this part.** give the per-channel `pos_weight` of section 1 the shape that lines it up with the
# channels of `(N, C, H, W)` logits, in the mask's channel order.
#
# The thread behind Q8 wrote `pos_weight=torch.Tensor([1, 30, 6]).repeat(BATCH_SIZE, 1)`: a `(B, 3)` tensor,
# with a comment "red, blue, green = 6, 1, 30".
#
# **Predict.** Broadcasting lines up *trailing* dimensions. Which dimension of `(B, 3, H, W)` logits does the
# thread's last dimension of 3 meet, and what does PyTorch do with it? And which channel gets which weight?

# %%
logits_demo = torch.zeros(4, 3, 32, 32)
masks_demo = torch.ones(4, 3, 32, 32)  # every target 1: at logit 0 each term is pos_weight * log 2
repeated = torch.tensor([1.0, 30.0, 6.0]).repeat(4, 1)  # the thread's tensor
try:
    torch.nn.BCEWithLogitsLoss(pos_weight=repeated)(logits_demo, masks_demo)
except RuntimeError as error:
    print("PyTorch:   ", error)
try:
    bw.bce_with_logits(logits_demo, masks_demo, pos_weight=repeated)
except bw.WeightShapeError as error:
    print("bceweights:", error)
rgb_pos_weight = torch.tensor([6.0, 30.0, 1.0])  # red 6, green 30, blue 1: the mask's order R, G, B
per_pixel_loss = torch.nn.BCEWithLogitsLoss(pos_weight=rgb_pos_weight.view(3, 1, 1), reduction="none")
per_pixel = per_pixel_loss(logits_demo, masks_demo)
print("PyTorch, .repeat dropped, .view(3, 1, 1), mean loss per channel R, G, B:",
      [float(f"{v:.4g}") for v in per_pixel.mean(dim=(0, 2, 3)).tolist()])
print("pos_weight * log 2:", [float(f"{w * math.log(2):.4g}") for w in rgb_pos_weight.tolist()])

# %% [markdown]
# `bceweights` suggests, first, one row of the repeated tensor viewed as `(3, 1, 1)`: the values do not
# depend on the sample, so the fix is to drop `.repeat` and view the `(3,)` tensor as `(3, 1, 1)` (last
# lines, with the order put right as below), which works for any batch size. Its second suggestion, `.view(4, 3, 1, 1)`, reads the tensor as
# one value per sample and channel, and runs only while the batch holds exactly 4 images. Or
# give the `(3,)` tensor to `bceweights` with `channel_dim=1`.
#
# Mind the order too. The thread's comment says "red, blue, green = 6, 1, 30", but its tensor
# `[1, 30, 6]` is blue, green, red: right for a mask stored B, G, R, wrong for an R, G, B mask like this
# one, where red and blue would swap weights. The weights must follow the mask's channels, here
# `[6, 30, 1]`. Every target above is 1, so at logit 0 each channel's loss is its `pos_weight` times
# `log 2`: the printed 4.159, 20.79 and 0.6931 are 6, 30 and 1 times 0.6931, the weights of red, green
# and blue in that order. Lesson 02 has more on shapes.

# %%
# Section 1's counted weights, in the masks' order R, G, B, viewed (3, 1, 1): one tensor for any batch size.
channel_pos_weight = pos_weight_rgb.view(3, 1, 1)
per_pixel = torch.nn.BCEWithLogitsLoss(pos_weight=channel_pos_weight, reduction="none")(torch.zeros_like(plates.masks), plates.masks)
positive_part = (per_pixel * plates.masks).sum(dim=(0, 2, 3))
negative_part = (per_pixel * (1 - plates.masks)).sum(dim=(0, 2, 3))
print("all 256 plates, logits 0: positives' loss / negatives' loss, R, G, B:", [round(v, 4) for v in (positive_part / negative_part).tolist()])
last_batch = plates.masks[:7]  # a smaller last batch: the same tensor still lines up
plain = torch.nn.BCEWithLogitsLoss(pos_weight=channel_pos_weight)(torch.zeros_like(last_batch), last_batch)
ours = bw.bce_with_logits(torch.zeros_like(last_batch), last_batch, pos_weight=pos_weight_rgb, channel_dim=1)
print(f"a batch of 7: PyTorch with .view(3, 1, 1) {float(plain):.4g}, bceweights with channel_dim=1 {float(ours):.4g}")

# %% [markdown]
# With the counted weights, at logits 0 the positives and the negatives of each channel carry the same total
# loss (ratio 1 in every channel): each positive weighs `neg/pos`, so the positives' total weight equals the number
# of negatives, section 1's rule. The same `(3, 1, 1)` tensor serves all 256 plates and a batch of 7 alike,
# and `bceweights` with `channel_dim=1` gives the same number from the `(3,)` tensor.
#
# %% [markdown]
# ## 3 · About one foreground voxel in 95 (Q9)
#
# **Goal of this part.** compare a background-down weight map with `pos_weight` on a volume: the same balance, a different gradient scale (a different step under SGD).
#
# The thread behind Q9 has outputs and targets of shape `(1, 1, 60, 40, 40)` with 95 times more
# background than foreground, and asks how to build a per-voxel weight that down-weights the
# background. `data.make_volume` draws blobs that cover *about* 1/95 of the voxels (94 background
# voxels per foreground one, near the thread's 95); the blob sizes vary at random, so read the ratio of
# the volume you have rather than assume it. Every number below uses the drawn ratio, printed as
# `neg/pos`. Two ways give the two halves of the loss the same total weight:
#
# * `pos_weight = neg / pos`: the foreground terms are multiplied up;
# * a weight map `bw.rebalance_map(target)`: background voxels get `pos / neg`, foreground 1: the
#   background terms are multiplied down. It is a tensor of the target's shape, passed as `weight=`.
#
# **Predict.** At initialisation (every logit 0), which one gives the larger gradient? By how much?

# %%
volume = data.make_volume((60, 40, 40), 1 / 95, seed=0)
target = volume.masks
positives = float(target.sum())
ratio = (target.numel() - positives) / positives
weight_map = bw.rebalance_map(target)
print("target", tuple(target.shape), f" foreground share {positives / target.numel():.4g}", f" neg/pos {ratio:.4g}")
print("weight map", tuple(weight_map.shape), " values", [round(v, 4) for v in weight_map.unique().tolist()])

# %%
def gradient_balance(**loss_options):
    """Sum of d loss / d logit over the foreground and over the background, at logits 0."""
    logits = torch.zeros_like(target, requires_grad=True)
    loss = bw.bce_with_logits(logits, target, **loss_options)
    (gradient,) = torch.autograd.grad(loss, logits)
    foreground = float(gradient[target > 0.5].sum())
    background = float(gradient[target < 0.5].sum())
    return foreground, background


rows = {
    "plain, mean": {},
    "pos_weight=neg/pos, mean": {"pos_weight": ratio},
    "rebalance_map, mean": {"weight": weight_map},
    "rebalance_map, weighted_mean": {"weight": weight_map, "reduction": "weighted_mean"},
}
print(f"{'loss':<30} {'foreground':>11} {'background':>11} {'|bg / fg|':>10}")
for name, options in rows.items():
    fg, bg = gradient_balance(**options)
    print(f"{name:<30} {fg:>11.4g} {bg:>11.4g} {abs(bg / fg):>10.4g}")

# %% [markdown]
# **Reveal.** This volume's foreground share is 0.01092, so `neg/pos` is 90.6, and plain BCE pulls the
# background down 90.6 times harder than it pulls the foreground up: at logit 0 every voxel's
# gradient has the same size, so the two sums are in the ratio of the counts. The first thing any
# model learns is "background everywhere". Both weightings balance the two pulls exactly at this
# start (ratio 1), and both move the optimum the same way: only the *ratio* of the foreground weight
# to the background weight matters for where the loss is minimal, and it is `neg/pos` in both
# (`bw.optimal_probability(q, neg/pos)`).
#
# They differ in scale by the factor `neg/pos` = 90.6 (foreground −0.4945 against −0.005458):
# `pos_weight` multiplies the foreground up, the map multiplies the background down. With
# `reduction="mean"` (divide by the number of voxels) that is a 90.6× different gradient; with plain
# SGD, whose step is the learning rate times the gradient, it is a 90.6× different effective learning
# rate. `reduction="weighted_mean"` divides by the sum of the weights instead, which removes the weights'
# common scale: the map and `pos_weight` then give the same step (a new weight *ratio* still changes the
# step, lesson 03). With SGD, pick one, then tune the learning rate for it. With Adam
# (which the lessons' `train` uses) a constant factor on the loss hardly matters: Adam divides each
# gradient by a running estimate of its own size, so the factor cancels (all but the small `eps`),
# and only the ratio of the foreground weight to the background weight, the same in both, is left.
# That holds for a factor that stays the same from step to step: `bw.rebalance_map(target)` counts the
# ratio in each batch it is given, so pass the data set's ratio (`bw.rebalance_map(target, ratio)`, counted
# once as in section 1) if your batches vary.
#
# **Try it.** Lesson 03's reduction explorer, on one image with 1 % foreground and a fixed, mediocre model
# (no longer at logit 0). Set the foreground weight to 100 and the background weight to 1 (what `pos_weight = 100`
# does), then 1 and 0.01 (a background-down map with the same ratio of 100). **Predict:** which reduction's
# learning-rate factor (the push on the logits, against the unweighted mean's) falls by 100, and which stays?

# %% tags=["nbval-ignore-output"]
reduction_explorer = ReductionExplorer(foreground=0.01, weight_fg=100.0, weight_bg=1.0, side=64)
reduction_explorer

# %%
readout_names = ("loss_mean", "loss_weighted_mean", "lr_factor_mean", "lr_factor_weighted_mean")
factors = {}
for label, weights in {"pos_weight-like, 100 and 1": (100.0, 1.0), "map-like, 1 and 0.01": (1.0, 0.01)}.items():
    reduction_explorer.set(weight_fg=weights[0], weight_bg=weights[1])
    factors[label] = {name: reduction_explorer.readouts[name] for name in readout_names}
    print(label)
    reduction_explorer.print_readouts(*readout_names)
ratio_mean = factors["pos_weight-like, 100 and 1"]["lr_factor_mean"] / factors["map-like, 1 and 0.01"]["lr_factor_mean"]
ratio_weighted = factors["pos_weight-like, 100 and 1"]["lr_factor_weighted_mean"] / factors["map-like, 1 and 0.01"]["lr_factor_weighted_mean"]
print(f"pos_weight-like / map-like learning-rate factor: mean {ratio_mean:.4g}, weighted_mean {ratio_weighted:.4g}")

# %%
# A still of the explorer at the map-like weights (the live figure above follows the sliders).
reduction_explorer.snapshot()

# %% [markdown]
# **Reveal.** Under `mean` the two weightings differ by exactly the common factor, 100: the map's push is a
# hundredth of `pos_weight`'s, at any logits, not only at 0. Under `weighted_mean` they give the same loss and the
# same push, because dividing by the sum of the weights cancels any common factor. The ratio of foreground to
# background weight, 100 in both, is what moves the optimum; the common factor is only a step size.
#
# (The thread's script passes probabilities to `binary_cross_entropy`; prefer logits and
# `binary_cross_entropy_with_logits`, lesson 03. It also says a weight cannot change from call to call:
# that holds for the module `nn.BCELoss(weight=...)`, which keeps the weight it was built with unless you
# reassign `loss_fn.weight`, not for the functional form, which takes `weight=` on every call, as
# `bw.bce_with_logits` does.)

# %% [markdown]
# ## Summary
#
# * `pos_weight = neg / pos` per channel (`bw.pos_weight_from_counts`, `bw.pos_weight_from_targets` over
#   a `DataLoader`); the weighted *counts* balance, not the sums of loss terms. For single-label problems,
#   `bw.balanced_weights` or `bw.median_frequency_weights`: they differ in scale and in which images count.
# * Shape a per-channel weight `(C, 1, 1)` for `(N, C, H, W)` logits, or pass `channel_dim=1` to `bceweights`,
#   in the mask's channel order; drop `.repeat(B, 1)`: its `(B, 3)` meets `(H, W)`, not the channels.
# * `pos_weight` and a background-down weight map balance the gradient the same way and move the optimum the
#   same way; they differ in scale by the ratio itself. With SGD that is a different effective learning rate;
#   with Adam a constant scale hardly matters. `reduction="weighted_mean"` removes the common scale, so the
#   map and `pos_weight` give the same step; pass the data set's ratio when batches vary.
# * Lesson 05 trains with these weights: what they change at the 0.5 cut, what the threshold does instead, and
#   why recall can be 0.
#
# ## Exercises
#
# Each cell prints a question. Predict or compute your answer first (with the formula or a few lines of
# PyTorch), then replace `None` with it and run the cell: a wrong answer gets a hint that says what it would
# mean. When you have tried, `show_solution("04.2")` prints the worked solution of exercise 04.2 (and likewise
# for the others).

# %%
from bceweights.lessons.exercises import (
    LESSON04_1_QUESTION,
    LESSON04_2_QUESTION,
    LESSON04_3_QUESTION,
    check_lesson04_1,
    check_lesson04_2,
    check_lesson04_3,
    print_questionnaire,
    show_solution,
)

# %% [markdown]
# **04.1** Transfer: section 1's rule on other counts.

# %%
print(LESSON04_1_QUESTION)
my_class_weight = None
_ = check_lesson04_1(my_class_weight)

# %% [markdown]
# **04.2** A repair: the thread's `pos_weight` line, counted as section 1 does and shaped as section 2 does.
# Define your function in the cell, then pass it (without parentheses).

# %%
print(LESSON04_2_QUESTION)


def plates_pos_weight(masks):
    return None  # replace with your repair


my_pos_weight = None  # then: my_pos_weight = plates_pos_weight
_ = check_lesson04_2(my_pos_weight)

# %% [markdown]
# **04.3** A concept: the map and `pos_weight` under SGD (section 3).

# %%
print(LESSON04_3_QUESTION)
my_choice = None  # "a", "b" or "c"
_ = check_lesson04_3(my_choice)

# %% [markdown]
# ## Questionnaire
#
# Short questions on the whole lesson. Answer each in a sentence or two, in your head or in a cell, before you
# compare with the answers: `show_solution("04.Q")` prints them.

# %%
print_questionnaire("04")
