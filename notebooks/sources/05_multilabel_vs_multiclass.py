# %% [markdown]
# # 05 · Multi-label or multi-class: sigmoid + BCE or softmax + cross-entropy
#
# Questions answered: Q7, Q11
#
# **Goal.** Decide, from what a pixel *is*, whether its outputs are independent yes/no questions
# (sigmoid per channel, binary cross-entropy) or one choice among classes (softmax, cross-entropy),
# and see that for two classes the two are the same model.
#
# You will:
#
# 1. train both kinds of model on the four-colour plates, where magenta = red + blue, and compare
#    what each predicts for magenta (Q7);
# 2. move one pixel's logits and watch both heads' probabilities, losses and gradients;
# 3. check that one logit with BCE and two logits with cross-entropy give identical losses and
#    gradients, and translate cross-entropy class weights into `weight` and `pos_weight` (Q11).

# %%
# %matplotlib widget

# %%
import math

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

import bceweights as bw
from bceweights.lessons import data
from bceweights.lessons.explore import png_image
from bceweights.lessons.explore.two_heads import TwoHeadsExplorer
from bceweights.lessons.model import TinyUNet, predict, train

# Small problems run faster on one thread, and then give the same numbers on every machine.
torch.set_num_threads(1)
torch.manual_seed(0)
RGB = ("red", "green", "blue")
COLOURS = tuple(data.PLATE_CLASSES)  # black, green, blue, magenta

# %% [markdown]
# ## 1 · Four colours, two readings (Q7)
#
# The thread behind Q7 segments images into black, green, blue and magenta, with three output
# channels R, G, B. Magenta is red *and* blue. The plates reproduce it: a blue plate, a code printed on
# the plate (red on blue: magenta), a small green disc. The same masks can be read two ways:
#
# * **multi-label**: three channels, each pixel may be in any number of them, `(N, 3, H, W)` of 0/1.
#   Under the code the plate is still there: those pixels are red and blue;
# * **single-label**: four classes, each pixel is exactly one colour, class indices `(N, H, W)`.
#   Magenta is a class of its own, and "blue" means "plate, but not under the code".

# %%
plates = data.make_plates(256, 32, seed=0)
val = data.make_plates(96, 32, seed=1)
labels, val_labels = data.rgb_to_labels(plates.masks), data.rgb_to_labels(val.masks)
print("multi-label masks ", tuple(plates.masks.shape), plates.masks.dtype)
print("single-label maps ", tuple(labels.shape), labels.dtype, " classes", COLOURS)
class_shares = torch.bincount(labels.flatten(), minlength=4) / labels.numel()
print("pixel shares, training plates:", [round(v, 4) for v in class_shares.tolist()])

# %% [markdown]
# **Predict.** We train a 3-channel model with sigmoid + BCE on the masks and a 4-class model with
# softmax + cross-entropy on the class maps (same network, `TinyUNet`, only the number of outputs
# differs). On magenta pixels, what will each output? And if you ask each model "where is the plate?",
# which one answers directly?

# %% tags=["nbval-ignore-output"]
# Seed 1 for both networks. Tiny models are seed-sensitive: with some seeds (seed 0 among them) this
# learning rate leaves channels of the multi-label model unlearned after 10 epochs.
multi_label = TinyUNet(1, 3, seed=1)
multi_history = train(
    multi_label, plates.images, plates.masks, epochs=10, eval_images=val.images, eval_targets=val.masks,
    description="multi-label, sigmoid + BCE",
)
single_label = TinyUNet(1, 4, seed=1)
single_history = train(
    single_label, plates.images, labels, epochs=10, eval_images=val.images, eval_targets=val_labels,
    description="single-label, softmax + CE",
)
print(f"seconds: {multi_history.seconds:.1f}, {single_history.seconds:.1f}")

# %%
# Measured on the validation plates (val: 96 images, seed 1), after the last epoch.
print("validation plates: multi-label model, per channel (threshold 0.5)")
print(multi_history.final.table(RGB))
print("\nvalidation plates: single-label model, per class (argmax)")
print(single_history.final.table(COLOURS))

# %%
multi_probability = torch.sigmoid(predict(multi_label, val.images))  # (N, 3, H, W)
single_probability = predict(single_label, val.images).softmax(dim=1)  # (N, 4, H, W)
magenta = val_labels == 3
plate = val.masks[:, 2] > 0.5


def iou(prediction, truth):
    return float((prediction & truth).sum() / (prediction | truth).sum())


print("on the validation plates' magenta pixels, mean probabilities")
print("  multi-label  red, green, blue          :", [round(float(p[magenta].mean()), 3) for p in multi_probability.unbind(1)])
print("  single-label black, green, blue, magenta:", [round(float(p[magenta].mean()), 3) for p in single_probability.unbind(1)])
single_class = single_probability.argmax(dim=1)
print("plate IoU, multi-label blue channel          :", round(iou(multi_probability[:, 2] > 0.5, plate), 3))
print("plate IoU, single-label class blue alone      :", round(iou(single_class == 2, plate), 3))
print("plate IoU, single-label blue or magenta       :", round(iou((single_class == 2) | (single_class == 3), plate), 3))
# Magenta pixels on the code's edge (a non-magenta pixel among their 8 neighbours) and inside it.
next_to_other = F.max_pool2d((~magenta).float().unsqueeze(1), 3, stride=1, padding=1).squeeze(1) > 0
for name, where in (("edge    ", magenta & next_to_other), ("interior", magenta & ~next_to_other)):
    print(
        f"magenta {name} ({int(where.sum())} pixels): mean q_blue {float(single_probability[:, 2][where].mean()):.4g},"
        f" argmax blue on {float((single_class[where] == 2).float().mean()):.4g} of them"
    )


# %%
def plot_two_readings(index=0):
    figure = Figure(figsize=(9.6, 2.4), layout="constrained")
    axes = figure.subplots(1, 5)
    palette = torch.tensor(list(data.PLATE_CLASSES.values()), dtype=torch.float32)
    panels = [
        (val.images[index, 0], "input image", "gray"),
        (val.masks[index].permute(1, 2, 0), "target (RGB)", None),
        ((multi_probability[index] > 0.5).float().permute(1, 2, 0), "multi-label: R, G, B", None),
        (palette[single_class[index]], "single-label: class colour", None),
        ((multi_probability[index, 2] > 0.5).float(), "multi-label blue alone", "Blues"),
    ]
    for ax, (picture, title, cmap) in zip(axes, panels):
        ax.imshow(picture.numpy(), cmap=cmap, interpolation="nearest", vmin=0 if cmap == "Blues" else None)
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    return figure


png_image(plot_two_readings(0))

# %% [markdown]
# **Reveal.** Both models get magenta mostly right, in their own language: the multi-label model says
# "red: yes, blue: yes" (two high probabilities at once: they do not have to share), the single-label
# model says "class magenta", and sometimes "blue". The two classes compete at the code's edge: there the
# mean `q_blue` is 0.3293 and argmax says blue on 0.2658 of the pixels, inside the code 0.03942 and 0.01318.
# The difference is in what the outputs *mean*:
#
# * the multi-label blue channel is the whole plate, code or no code; its IoU with the plate is read
#   straight off one channel (right panel). This is what the thread's author wanted: "blue plate
#   pixels under the QR code";
# * the single-label "blue" class has a code-shaped hole; to get the plate you add classes
#   (blue or magenta), which works only because you know which colours contain blue.
#
# Both models also learn green, the disc that covers 1 % of the training plates' pixels (validation
# green IoU 0.647 multi-label, 0.742 single-label), without any weight. Lesson 04 trains on plates with
# the same 1 % share, where plain BCE does not find green in ten epochs. Two things differ there: its
# disc is faint (0.25 darker than the background, against pixel noise 0.35; here it is 0.8 darker, the
# `make_plates` default), and its network starts from seed 0, not 1.
#
# **Predict.** Keep this lesson's network seed and make only the disc as faint as lesson 04's (its
# plates exactly). Does the multi-label model still learn green in ten epochs?

# %%
faint = data.make_plates(256, 32, green_contrast=0.25, seed=0)
faint_val = data.make_plates(96, 32, green_contrast=0.25, seed=1)
faint_model = TinyUNet(1, 3, seed=1)
faint_history = train(
    faint_model, faint.images, faint.masks, epochs=10, eval_images=faint_val.images, eval_targets=faint_val.masks,
    progress=False,
)
print("faint disc (lesson 04's plates), network seed 1, validation plates, threshold 0.5")
print(faint_history.final.table(RGB))

# %% [markdown]
# **Reveal.** Green's recall falls to 0: at the same 1 % share and the same seed, the bright disc is
# learned in ten epochs and the faint one is not. These runs suggest that rarity alone does not make
# a class unlearnable; rarity *and* overlap with the background (a disc darker by less than the
# noise's standard deviation) does. One seed each way is a hint, not a proof: tiny models are seed-sensitive (see the comment in
# the training cell). When a class is missed, cross-entropy has the same remedy as BCE: a class
# `weight=` for `F.cross_entropy` (e.g. `bw.balanced_weights`), as lesson 04 does with `pos_weight`
# for BCE.
#
# When is each right?
#
# * **sigmoid + BCE** when each channel is a property that can co-occur with the others (overlapping
#   objects, attributes, a plate and what is printed on it). Each channel is its own binary problem,
#   with its own `pos_weight` (lesson 04).
# * **softmax + cross-entropy** when each pixel is exactly one thing, including "nothing"
#   (background is a class). Probabilities sum to 1, and classes compete.
# * **softmax over the R, G, B channels themselves is wrong for these masks**: it can express neither
#   "no colour" (black) nor "two colours" (magenta): its three probabilities always add up to 1, where
#   black needs 0 and magenta 2. A single-label head needs one class per colour, as the 4-class model has.

# %% [markdown]
# ## 2 · One pixel, two heads
#
# The explorer shows section 1's two kinds of head, at one pixel, with the same colours; each head has
# its own logits, set by free sliders (no trained model behind them):
#
# * multi-label: three channel logits `x_R, x_G, x_B`, `p_c = sigmoid(x_c)`; loss: BCE averaged over the
#   three channels against the target's channels (magenta is R and B, black is none);
# * single-label over the classes black, green, blue, magenta: four class logits, `q = softmax(z)`;
#   loss: cross-entropy `−log q_target`. The black logit is fixed at 0: softmax only sees differences,
#   so three sliders reach every prediction.
#
# The right panel is the gradient of each loss with respect to each logit, side by side:
# `∂BCE/∂x_c = (p_c − m_c) / 3` for the target's channel membership `m` (the 3 is the mean over the
# channels) and `∂CE/∂z_k = q_k − t_k` for the one-hot target `t`. A bar below 0 means gradient descent
# raises that logit.
#
# **Predict.** With target magenta, which logits must go up and which down for each loss to approach 0?
# Then drag the green logit of each head, `x_G` and `z_green`: which gradient bars move, only green's
# or the others too?

# %% tags=["nbval-ignore-output"]
two_heads = TwoHeadsExplorer()
two_heads

# %%
two_heads.set(red=5.0, green=-5.0, blue=5.0, z_green=-5.0, z_blue=0.0, z_magenta=5.0, target="magenta")
two_heads.print_readouts("p_red", "p_green", "p_blue", "p_target", "bce", "q_blue", "q_magenta", "ce")

# %%
two_heads.snapshot()

# %%
# Raise the green logit of each head (the rest as above). BCE: only the G gradient changes.
# Cross-entropy: every class's gradient changes, and the four always sum to 0.
for green in (-5.0, 0.0, 5.0):
    two_heads.set(green=green, z_green=green)
    r = two_heads.readouts
    print(
        f"green logits {green:+.0f}:  dBCE/dx (R, G, B) = " + ", ".join(f"{r['grad_bce_' + c]:+.4f}" for c in RGB)
        + ";  dCE/dz (black, green, blue, magenta) = " + ", ".join(f"{r['grad_ce_' + k]:+.4f}" for k in COLOURS)
        + f";  sum {round(sum(r['grad_ce_' + k] for k in COLOURS), 10) + 0.0:.4f}"
    )

# %%
# Two classes left: push blue and magenta far down, and the single-label head is a sigmoid of
# z_green (softmax(0, z) = sigmoid(z) for the pair black, green), like the multi-label G channel.
two_heads.set(green=1.5, z_green=1.5, z_blue=-10.0, z_magenta=-10.0, target="green")
two_heads.print_readouts("p_green", "q_green")
print(f"sigmoid(1.5) = {1 / (1 + math.exp(-1.5)):.4g}")

# %% [markdown]
# **Reveal.** For magenta both heads get there, each in its own language: the multi-label head with two
# yeses (`x_R` and `x_B` up, `x_G` down; `p_target = p(R) (1 − p(G)) p(B)`), the single-label head with one
# class (`z_magenta` above the others). At the logits ±5 above both losses are small (BCE 0.006715,
# CE 0.01343), and no floor stops them: magenta is a class of its own here.
#
# The gradients are shared differently. BCE's gradient on a channel is that channel's own error
# divided by 3, so raising `x_G` from −5 to +5 moves only the G bar (from +0.0022 to +0.3311): the other
# channels are not told anything. Cross-entropy's gradients are `q_k − t_k` and add up to 0: raising
# `z_green` makes green a competitor, so the same step pushes `z_green` down (+0.4967) *and* `z_magenta`
# up (−0.5033). Classes compete for one unit of probability; channels do not. With two classes left
# (black and green), `q_green` equals `p_green` at the same logit: the next section is that case.

# %% [markdown]
# ## 3 · One logit with BCE, or two logits with cross-entropy? (Q11)
#
# For a binary problem, cross-entropy over two logits `(a, b)` only sees their difference:
# `softmax(a, b)_1 = sigmoid(b − a)`. With `a = 0` and `b = x` the loss is BCE on the one logit `x`,
# term by term. The check below uses random logits and targets.

# %%
generator = torch.Generator().manual_seed(0)
x = torch.randn(10_000, generator=generator, dtype=torch.float64) * 3
y = (torch.rand(10_000, generator=generator, dtype=torch.float64) < 0.3).double()

x_bce = x.clone().requires_grad_(True)
bce = F.binary_cross_entropy_with_logits(x_bce, y, reduction="none")
(grad_bce,) = torch.autograd.grad(bce.sum(), x_bce)

two_logits = torch.stack([torch.zeros_like(x), x], dim=1).requires_grad_(True)  # (N, 2): logits (0, x)
ce = F.cross_entropy(two_logits, y.long(), reduction="none")
(grad_ce,) = torch.autograd.grad(ce.sum(), two_logits)

# Differences at the level of float64 round-off (below 1e-12) count as equal.
print("BCE == CE, element by element          :", bool((bce - ce).detach().abs().max() < 1e-12))
print("dBCE/dx == dCE/db                      :", bool((grad_bce - grad_ce[:, 1]).abs().max() < 1e-12))
print("dCE/da == -dCE/db                      :", bool((grad_ce[:, 0] + grad_ce[:, 1]).abs().max() < 1e-12))

# %% [markdown]
# Identical losses, and the gradient on `b` is BCE's gradient; the gradient on `a` is its negative
# (only `b − a` matters). So the two are the same model, with one redundant output. Two consequences:
#
# * not *exactly* the same training: with two outputs, a gradient step moves `a` and `b` by the same
#   amount in opposite directions, so their difference moves twice as far as the single logit would
#   (one step of SGD and of Adam on free logits below; in a network the same holds for the last
#   layer's two rows of weights). The forum answer's "exactly the same result" holds for the loss,
#   not for the optimisation path;
# * BCE has one output per class and extends to multi-label without change, which is why it is
#   preferred for binary segmentation.

# %%
# One optimiser step from the same logits: x alone with BCE, or the pair (0, x) with cross-entropy.
for name, make_optimizer in (("SGD ", torch.optim.SGD), ("Adam", torch.optim.Adam)):
    single = x.clone().requires_grad_(True)
    pair = torch.stack([torch.zeros_like(x), x], dim=1).requires_grad_(True)
    optimizers = make_optimizer([single], lr=0.1), make_optimizer([pair], lr=0.1)
    F.binary_cross_entropy_with_logits(single, y, reduction="sum").backward()
    F.cross_entropy(pair, y.long(), reduction="sum").backward()
    for optimizer in optimizers:
        optimizer.step()
    ratio = ((pair[:, 1] - pair[:, 0]).detach() - x) / (single.detach() - x)
    print(f"{name}: step of b - a / step of x, all 10,000 elements: {float(ratio.min()):.4g} to {float(ratio.max()):.4g}")

# %% [markdown]
# **Class weights.** `F.cross_entropy(weight=[w_neg, w_pos])` multiplies each element's loss by the
# weight of its target class. In BCE the negative term is scaled by `weight` and the positive term by
# `weight · pos_weight`. So per element, `weight = w_neg` and `pos_weight = w_pos / w_neg`. The means
# differ: cross-entropy divides by the sum of the targets' weights, BCE's `"mean"` by the number of
# elements. A per-element weight map with `reduction="weighted_mean"` matches cross-entropy's mean too.

# %%
w_neg, w_pos = 0.5, 4.0
class_weights = torch.tensor([w_neg, w_pos], dtype=torch.float64)
ce_weighted = F.cross_entropy(two_logits.detach(), y.long(), weight=class_weights, reduction="none")
bce_weighted = bw.bce_with_logits(x, y, weight=w_neg, pos_weight=w_pos / w_neg, reduction="none")
print("per element, CE with class weights == BCE:", bool((ce_weighted - bce_weighted).abs().max() < 1e-12))

ce_mean = F.cross_entropy(two_logits.detach(), y.long(), weight=class_weights)
bce_mean = bw.bce_with_logits(x, y, weight=w_neg, pos_weight=w_pos / w_neg)
weight_map = w_neg + (w_pos - w_neg) * y  # the target class's weight at every element
bce_weighted_mean = bw.bce_with_logits(x, y, weight=weight_map, reduction="weighted_mean")
print(f"CE mean (divides by sum of w_y)    : {float(ce_mean):.4f}")
print(f"BCE mean (divides by N)            : {float(bce_mean):.4f}")
print(f"BCE weighted_mean with a weight map: {float(bce_weighted_mean):.4f}")

# %% [markdown]
# ## Summary
#
# * Channels that can be on together (magenta = red + blue, a plate under its code): one sigmoid per
#   channel and BCE. Each channel is a binary problem with its own `pos_weight`.
# * Exactly one class per pixel, background included: softmax and cross-entropy. Classes compete, and
#   a "both" outcome must be a class of its own.
# * Never softmax over channels that are not mutually exclusive: it cannot say "none" or "both".
# * Binary: one logit with BCE and two logits `(0, x)` with cross-entropy have identical losses and
#   gradients; class weights `(w_neg, w_pos)` are `weight = w_neg`, `pos_weight = w_pos / w_neg`, and the
#   means differ unless you use a weight map with `reduction="weighted_mean"`.
#
# ## Exercises
#
# Each cell prints a question. Predict or compute your answer first (with the formula, the explorers above, or
# a few lines of PyTorch), then replace `None` with it and run the cell: a wrong answer gets a hint that says
# what it would mean. When you have tried, `show_solution("05.2")` prints the worked solution of exercise
# 05.2 (and likewise for the others).

# %%
from bceweights.lessons.exercises import (
    LESSON05_1_QUESTION,
    LESSON05_2_QUESTION,
    LESSON05_3_QUESTION,
    check_lesson05_1,
    check_lesson05_2,
    check_lesson05_3,
    show_solution,
)

# %% [markdown]
# **05.1** Transfer: other class weights than section 3's. Replace the two `None`.

# %%
print(LESSON05_1_QUESTION)
my_weight, my_pos_weight = None, None
_ = check_lesson05_1(my_weight, my_pos_weight)

# %% [markdown]
# **05.2** Transfer: section 1's point that softmax over colour channels cannot say "both", now for a pixel
# in three channels. Enter one number, the softmax head's floor; the verdict compares it with BCE's.

# %%
print(LESSON05_2_QUESTION)
my_floor = None
_ = check_lesson05_2(my_floor)

# %% [markdown]
# **05.3** Transfer: section 3 printed the two means; predict their ratio from the weights alone.

# %%
print(LESSON05_3_QUESTION)
my_ratio = None
_ = check_lesson05_3(my_ratio)
