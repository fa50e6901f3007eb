# %% [markdown]
# # 04 · Class imbalance: weights from data, a channel that is never learned, thresholds
#
# Questions answered: Q6, Q8, Q9, Q15
#
# **Goal.** When one class covers 1 % of the pixels, a plain BCE model can be "99 % accurate" and
# find nothing. This lesson measures the imbalance, fixes it with `pos_weight` or a weight map,
# and then shows that the decision threshold does much of the same job without retraining.
#
# You will:
#
# 1. compute class weights from counts and from a whole dataset, four common ways (Q6);
# 2. train a tiny U-Net on a three-channel problem whose green channel covers 1 % of the pixels,
#    without and with per-channel `pos_weight` (Q8);
# 3. compare a voxel weight map with `pos_weight` on a `(1, 1, 60, 40, 40)` volume (Q9);
# 4. move `pos_weight` and the threshold on a trained model and watch the operating point (Q15);
# 5. see why recall is 0 for the first epochs of a short run, and check with the average precision
#    and a second run that it is a run still behind after a slow bias phase from the default start,
#    not a posterior below 0.5 (Q15).
#
# Every model here trains in a few seconds on a CPU; all data are made by `bceweights.data`.

# %%
# %matplotlib widget

# %%
import math

import numpy as np
import torch
from matplotlib.figure import Figure
from sklearn.metrics import average_precision_score
from torch.utils.data import DataLoader

import bceweights as bw
from bceweights.lessons import data
from bceweights.lessons.explore import png_image
from bceweights.lessons.explore.threshold import ThresholdExplorer
from bceweights.lessons.model import TinyUNet, predict, train

# Small problems run faster on one thread, and then give the same numbers on every machine.
torch.set_num_threads(1)
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
# (at logit 0, for example, as in section 3). `bw.pos_weight_from_counts(num_pos, num_neg)` does exactly that and
# returns a tensor of shape `(1,)`, the shape a single-output model needs (a bare `3` is refused by
# `nn.BCEWithLogitsLoss`, see lesson 01).

# %%
print(bw.pos_weight_from_counts(100, 300))
print(bw.pos_weight_from_counts([100, 10], [300, 990]))  # one value per channel

# %% [markdown]
# On a real dataset you count over every target, batch by batch. The data set here is the
# **plates** problem used in the rest of the lesson: a single-channel image, and a mask with three
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
# With four classes the median is the mean of the two middle frequencies (blue's and magenta's), a
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
# above. That is what the next section uses.

# %% [markdown]
# ## 2 · A channel that is never learned (Q8)
#
# **Goal of this part.** see what a per-channel `pos_weight` changes when a rare class also *overlaps*
# the background: the green disc is faint (drawn 0.25 darker than its surroundings, against pixel noise
# 0.35), so many background pixels look like disc pixels. Lesson 05 trains on the same 1 % share with a
# high-contrast disc (0.8 darker, the `make_plates` default), and there plain BCE learns it.
#
# **Predict.** We train the same tiny U-Net for 10 epochs on the plates: with plain BCE, with the
# per-channel `pos_weight = neg/pos` from section 1, and with its square root (a milder dial setting).
# Blue covers 25 % of the pixels, red 6 %, green 1 %, and the green disc is faint. With plain BCE, what
# will the green channel's recall be? And with `neg/pos`, its precision?
#
# First, the shape. The thread behind Q8 wrote
# `pos_weight=torch.Tensor([1, 30, 6]).repeat(BATCH_SIZE, 1)`: a `(B, 3)` tensor. Broadcasting lines up
# *trailing* dimensions, so its 3 meets the width of `(B, 3, H, W)` and PyTorch refuses:

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
# and blue in that order. Lesson 02 has more on shapes. Now the three trainings:

# %%
train_plates = plates
val_plates = data.make_plates(96, 32, fractions=(0.06, 0.01, 0.25), green_contrast=0.25, seed=1)


def plates_loss(pos_weight):
    """Per-channel pos_weight (3,) lined up with dimension 1 of (N, 3, H, W) logits."""
    return lambda logits, masks: bw.bce_with_logits(logits, masks, pos_weight=pos_weight, channel_dim=1)


def train_plates_model(pos_weight=None, epochs=10, progress=False, description="plates"):
    model = TinyUNet(1, 3, seed=0)
    loss_fn = None if pos_weight is None else plates_loss(pos_weight)
    history = train(
        model, train_plates.images, train_plates.masks, loss_fn, epochs=epochs, batch_size=16, lr=1e-2,
        eval_images=val_plates.images, eval_targets=val_plates.masks, progress=progress,
        description=description,
    )
    return model, history


# %% tags=["nbval-ignore-output"]
# The progress bar (a widget in Jupyter). Training is deterministic: the numbers below are the same
# on every run.
plain_model, plain_history = train_plates_model(progress=True, description="plain BCE")
sqrt_model, sqrt_history = train_plates_model(pos_weight_rgb.sqrt(), progress=True, description="sqrt(neg/pos)")
weighted_model, weighted_history = train_plates_model(pos_weight_rgb, progress=True, description="neg/pos")
print(f"seconds: {plain_history.seconds:.1f}, {sqrt_history.seconds:.1f}, {weighted_history.seconds:.1f}")

# %%
print("validation, after 10 epochs: plain BCE")
print(plain_history.final.table(RGB))
print("\npos_weight = sqrt(neg/pos) =", [round(w, 2) for w in pos_weight_rgb.sqrt().tolist()])
print(sqrt_history.final.table(RGB))
print("\npos_weight = neg/pos =", [round(w, 1) for w in pos_weight_rgb.tolist()])
print(weighted_history.final.table(RGB))

# %%
def plot_recall_by_epoch():
    figure = Figure(figsize=(9.6, 3.0), layout="constrained")
    axes = figure.subplots(1, 3, sharey=True)
    colours = {"red": "tab:red", "green": "tab:green", "blue": "tab:blue"}
    runs = ((plain_history, "plain BCE"), (sqrt_history, "pos_weight = sqrt(neg/pos)"), (weighted_history, "pos_weight = neg/pos"))
    for ax, (history, title) in zip(axes, runs):
        epochs = np.arange(1, len(history.loss) + 1)
        for c, name in enumerate(RGB):
            ax.plot(epochs, history.series("recall", c), marker="o", color=colours[name], label=name)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylim(-0.03, 1.03)
    axes[0].set_ylabel("validation recall")
    axes[0].legend(frameon=False)
    return figure


png_image(plot_recall_by_epoch())

# %%
def rgb_image(masks):
    """(3, H, W) in [0, 1] -> (H, W, 3) for imshow."""
    return masks.clamp(0, 1).permute(1, 2, 0).numpy()


def plot_predictions(index=0):
    figure = Figure(figsize=(9.6, 2.3), layout="constrained")
    axes = figure.subplots(1, 5)
    image = val_plates.images[index : index + 1]
    panels = [
        (image[0, 0].numpy(), "input image", "gray"),
        (rgb_image(val_plates.masks[index]), "target", None),
        (rgb_image((predict(plain_model, image)[0] > 0).float()), "plain BCE", None),
        (rgb_image((predict(sqrt_model, image)[0] > 0).float()), "sqrt(neg/pos)", None),
        (rgb_image((predict(weighted_model, image)[0] > 0).float()), "neg/pos", None),
    ]
    for ax, (picture, title, cmap) in zip(axes, panels):
        ax.imshow(picture, cmap=cmap, interpolation="nearest")
        ax.set_title(title)
        ax.set_axis_off()
    return figure


png_image(plot_predictions(0))

# %% [markdown]
# **Reveal.** With plain BCE (the left panel, and the numbers below), blue's recall is 0.009 and 0
# after the first two epochs, then 0.324, 0.518 and 0.769 after the fifth; red's stays at 0 for six
# epochs, is 0.042 after the seventh and 0.745 after the eighth. Green's recall stays at 0 for all ten epochs: the model never says
# "green" at threshold 0.5. This is more than the 0.5 cut:
# the plain model's green average precision is at chance (below), so in ten epochs it has not learned
# to rank disc pixels at all. A faint disc on 1 % of the pixels sends green little gradient beyond
# "not green everywhere". And even a model that had learned it would seldom reach a calibrated 0.5:
# the weighted models' rankings (average precision below 0.2) show that most disc-like pixels are
# background. Whether much longer training finds green is not tested here.
#
# `pos_weight = p` moves the optimum from the frequency `q` to `p·q / (p·q + 1 − q)` (lesson 01): with
# `neg/pos ≈ 99`, a pixel that is green 1 time in 100 is already pushed to 0.5. Green appears from the
# second epoch on, with recall between 0.761 and 0.996, and with it many false alarms: precision 0.043. The
# square root is a milder setting: fewer false alarms (precision 0.159), lower recall (0.374), and
# green only appears in the eighth epoch. `pos_weight` is a dial between recall and precision, and
# `neg/pos` is its high-recall end; section 4 shows the same dial as a threshold.
#
# (Red loses precision too: with `pos_weight` 15.7 it is over-predicted around the code.)

# %%
for c in (0, 2):  # red and blue, plain BCE (the left panel)
    label = f"{RGB[c]} recall by epoch, plain"
    print(f"{label:<36}:", [round(r, 3) for r in plain_history.series("recall", c)])
for name, history in (("plain", plain_history), ("sqrt(neg/pos)", sqrt_history), ("neg/pos", weighted_history)):
    print(f"green recall by epoch, {name:<13}:", [round(r, 3) for r in history.series("recall", 1)])

# Did the plain model learn anything about green? Its probabilities rank pixels even if none reaches 0.5:
# the average precision of the green channel's precision-recall curve measures that ranking.
green_ap = {
    name: average_precision_score(val_plates.masks[:, 1].flatten().numpy(), predict(model, val_plates.images)[:, 1].flatten().numpy())
    for name, model in (("plain", plain_model), ("sqrt(neg/pos)", sqrt_model), ("neg/pos", weighted_model))
}
for name, ap in green_ap.items():
    print(f"green average precision, {name:<13}: {ap:.3f}")

# %% [markdown]
# Did the plain model learn green at all, below the 0.5 cut? The average precision of a ranking that
# knows nothing is the positive share of the validation pixels, 0.0101. The plain model's green AP is
# 0.010: its green probabilities rank disc pixels no better than chance. With `pos_weight` the AP is
# 0.178 and 0.193. So on this faint disc the weight does more than move the operating point: in ten
# epochs, plain BCE does not learn the rare channel at all, and the weighted models do, if poorly (an
# average precision below 0.2). The check below states that claim with a margin.

# %%
green_share = float(val_plates.masks[:, 1].mean())
print(f"green share of validation pixels: {green_share:.4f}")
print("plain AP within 20 % of the share (a chance ranking):", abs(green_ap["plain"] - green_share) < 0.2 * green_share)
print("both weighted APs above 10 x the plain AP            :", min(green_ap["sqrt(neg/pos)"], green_ap["neg/pos"]) > 10 * green_ap["plain"])

# %% [markdown]
# Section 4 shows the other case: shapes that the unweighted model already ranks well (average
# precision 0.9193). There `pos_weight` mostly moves the operating point, which a threshold does as well.

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
# rate. `reduction="weighted_mean"` divides by the sum of the weights instead and puts the map's
# gradient back on a per-voxel scale. With SGD, pick one, then tune the learning rate for it. With Adam
# (which the lessons' `train` uses) a constant factor on the loss hardly matters: Adam divides each
# gradient by a running estimate of its own size, so the factor cancels (all but the small `eps`),
# and only the ratio of the foreground weight to the background weight, the same in both, is left.
#
# (The thread's script passes probabilities to `binary_cross_entropy`; prefer logits and
# `binary_cross_entropy_with_logits`, lesson 03. It also says a weight cannot change from call to call:
# that holds for the module `nn.BCELoss(weight=...)`, not for the functional form, which takes
# `weight=` on every call, as `bw.bce_with_logits` does.)

# %% [markdown]
# ## 4 · `pos_weight` or the threshold? (Q15)
#
# **Goal of this part.** see that, on a model that already ranks well, `pos_weight` and the threshold pick points on one precision-recall curve.
#
# The thread behind Q15 wants high precision with acceptable recall, and asks why recall is 0 after
# the first epoch. We train a small binary segmenter (shapes covering 4 % of the pixels, with noise)
# without any weight, and two more with `pos_weight` 4 and 16.
#
# Every model starts with its output bias at the logit of the positive rate, `log(pos / neg)`, plus
# `log p` for the weighted ones, i.e. at the optimum of an empty model (`bw.optimal_logit(q, p)`).
# Section 5 shows what happens without that.

# %%
shapes_train = data.make_shapes(192, 32, 0.04, objects=2, noise=0.8, seed=0)
shapes_val = data.make_shapes(128, 32, 0.04, objects=2, noise=0.8, seed=1)
q = float(shapes_train.fractions()[0])
prior_logit = math.log(q / (1 - q))
print(f"positive share q = {q:.4g}, log(pos/neg) = {prior_logit:.4g}")


def train_shapes(pos_weight=1.0, epochs=12, output_bias="prior", progress=False):
    bias = None if output_bias is None else float(bw.optimal_logit(q, pos_weight))
    model = TinyUNet(1, 1, seed=0, output_bias=bias)
    loss_fn = None if pos_weight == 1.0 else (lambda x, y: bw.bce_with_logits(x, y, pos_weight=pos_weight))
    history = train(
        model, shapes_train.images, shapes_train.masks, loss_fn, epochs=epochs, eval_images=shapes_val.images,
        eval_targets=shapes_val.masks, progress=progress, description=f"shapes, pos_weight {pos_weight:g}" + ("" if output_bias == "prior" else ", default bias"),
    )
    return model, history


# %% tags=["nbval-ignore-output"]
shapes_model, shapes_history = train_shapes(progress=True)
retrained = {p: train_shapes(p, progress=True) for p in (4.0, 16.0)}
print(f"seconds: {shapes_history.seconds:.1f}, " + ", ".join(f"{h.seconds:.1f}" for _, h in retrained.values()))

# %%
val_logits = predict(shapes_model, shapes_val.images)
retrained_points = {p: (float(h.final.precision[0]), float(h.final.recall[0])) for p, (_, h) in retrained.items()}
print("unweighted model at threshold 0.5:")
print(shapes_history.final.table(["shape"]))
for p, (precision, recall) in retrained_points.items():
    print(f"retrained with pos_weight {p:g} at 0.5: precision {precision:.3f}, recall {recall:.3f}")

# %% [markdown]
# **Predict.** A model retrained with `pos_weight = p` outputs, near its optimum, the unweighted
# logit plus `log p`. So thresholding the *unweighted* model at `t` with its logits shifted by `log p`
# should land near the retrained model's operating point. The explorer below does exactly that shift
# on the unweighted model's validation logits. Set `pos_weight` to 4 and then 16, with threshold 0.5:
# does the red dot land on the purple squares (the real retrained models)? Then set `pos_weight` back
# to 1 and find the threshold that gives the same point.

# %% tags=["nbval-ignore-output"]
threshold_explorer = ThresholdExplorer(val_logits, shapes_val.masks, retrained=retrained_points)
threshold_explorer

# %%
for p in (4.0, 16.0):
    threshold_explorer.set(pos_weight=p, threshold=0.5)
    shifted = (threshold_explorer.readouts["precision"], threshold_explorer.readouts["recall"])
    # The two cuts, pixel by pixel, on the unweighted model's logits (no rounded threshold).
    cut_shifted = torch.sigmoid(val_logits + math.log(p)) >= 0.5
    cut_threshold = torch.sigmoid(val_logits) >= 1 / (1 + p)
    differ = int((cut_shifted != cut_threshold).sum())
    print(
        f"p={p:g}: shift log p at t=0.5 -> precision {shifted[0]:.4g}, recall {shifted[1]:.4g};  "
        f"retrained -> {retrained_points[p][0]:.4g}, {retrained_points[p][1]:.4g};  "
        f"pixels where t=0.5 after the shift and t=1/(1+p) decide differently: {differ} of {val_logits.numel()}"
    )
threshold_explorer.set(pos_weight=1.0, threshold=0.5)
threshold_explorer.print_readouts("precision", "recall", "average_precision")
for p, (model, _) in retrained.items():
    retrained_ap = average_precision_score(shapes_val.masks.flatten().numpy(), predict(model, shapes_val.images).flatten().numpy())
    print(f"average precision of the model retrained with pos_weight {p:g}: {retrained_ap:.4f}")

# %%
# The gradient panel: the positives' share of the total push sum |dl/dx| of BCE with pos_weight p, at
# the unweighted model's logits (where training with p would start) and shifted by log p (where it ends).
for p in (1.0, 4.0, 16.0):
    threshold_explorer.set(pos_weight=p, threshold=0.5)
    r = threshold_explorer.readouts
    print(f"p={p:g}: positives' share at the unweighted logits {r['grad_share_pos_start']:.3f}, "
          f"at the shifted logits {r['grad_share_pos_shifted']:.3f}")
threshold_explorer.set(pos_weight=1.0, threshold=0.5)

# %% [markdown]
# The middle panel is the gradient view: `pos_weight` multiplies each positive pixel's push
# `|∂ℓ/∂x| = 1 − σ(x)` by `p`, to `p (1 − σ(x))`, and the threshold is not in the loss at all. On these validation pixels
# the unweighted model's positives carry 0.604 of the total push (not 1/2: the model was trained on other
# images, for 12 epochs). Switch on `pos_weight` 4 or 16 at the same logits and that becomes 0.859 and
# 0.961: the positives' pushes win, and training raises the logits. At the logits shifted by `log p` the
# share is back to 0.587 and 0.563, near the unweighted balance: the shift is where training with `p`
# comes to rest, which is the gradient's side of "a model trained with `pos_weight` is shifted by `log p`".

# %%
# A still of the explorer at pos_weight 16, threshold 0.5 (the live figure above follows the sliders).
threshold_explorer.set(pos_weight=16.0, threshold=0.5)
threshold_explorer.snapshot()

# %% [markdown]
# **Reveal.** Shifting the logits by `log p` and thresholding at 0.5 is the same decision as
# thresholding the unweighted model at `1 / (1 + p)`: both are the cut `x ≥ −log p`, and of the
# 131072 validation pixels the two decide differently on 0, for both values of `p`. The retrained
# models land close to that predicted point, not on it: with `p = 4`, precision 0.7865 and recall
# 0.859 against the predicted 0.7656 and 0.8874; with `p = 16`, 0.5466 and 0.9665 against 0.5604 and
# 0.9725. A network trained for a finite number of epochs is not exactly at the optimum, and its
# confident pixels are not shifted by exactly `log p`. Their average precisions, 0.9113 and 0.9062,
# are a little below the unweighted model's 0.9193: retraining moved the operating point, and it did
# not make the ranking better.
#
# So for "high precision with acceptable recall":
#
# * the **precision-recall curve** is what training gives you; the **threshold** picks a point on it,
#   after training, on validation data, for free;
# * `pos_weight` mostly picks the point *for* you (at 0.5) and changes the curve only a little (the
#   average precisions above). It earns its keep when the rare class would otherwise not be learned at
#   all (section 2).
#
# The thread's model went from precision 90 % / recall 10 % (no weight) to 33 % / 40 % with one
# `pos_weight`. That is consistent with a move along one curve; only its average precision before and
# after would confirm it.

# %% [markdown]
# ## 5 · Why recall is 0 after the first epoch (Q15)
#
# **Goal of this part.** tell the two causes of zero recall apart: a run still behind after a slow bias
# phase from the default start, and a posterior below 0.5.
#
# **Predict.** PyTorch initialises the output bias near 0, and the logits start near 0, i.e. every
# pixel starts near probability 0.5, while only 4 % are positive. What does the first epoch spend its
# updates on?

# %% tags=["nbval-ignore-output"]
default_model, default_history = train_shapes(epochs=5, output_bias=None, progress=True)
prior_model, prior_history = train_shapes(epochs=5, progress=True)

# %%
print(f"steps per epoch: {math.ceil(len(shapes_train.images) / 16)} ({len(shapes_train.images)} images, batches of 16)")
# A model that predicts the share q everywhere, and so ranks nothing, has training loss H(q).
entropy_q = -(q * math.log(q) + (1 - q) * math.log(1 - q))
print(f"loss of predicting q = {q:.4g} everywhere: H(q) = {entropy_q:.4g}")
print("bias at PyTorch's default init:")
print("  loss by epoch  ", [round(v, 4) for v in default_history.loss])
print("  recall by epoch", [round(v, 3) for v in default_history.series("recall")])
print(f"bias at log(pos/neg) = {prior_logit:.4g}:")
print("  loss by epoch  ", [round(v, 4) for v in prior_history.loss])
print("  recall by epoch", [round(v, 3) for v in prior_history.series("recall")])

# The ranking after five epochs, on the validation shapes: the average precision of a ranking that knows
# nothing is their positive share.
print(f"\nafter 5 epochs, validation shapes (positive share {float(shapes_val.masks.mean()):.4g}):")
for name, model in (("default bias", default_model), ("bias at log(pos/neg)", prior_model)):
    logits = predict(model, shapes_val.images)
    ap = average_precision_score(shapes_val.masks.flatten().numpy(), logits.flatten().numpy())
    largest = float(torch.sigmoid(logits).max())
    print(f"  {name:<20}  average precision {ap:.4g}, largest probability {largest:.4g}")

# %% [markdown]
# **Reveal.** Recall 0 at threshold 0.5 has two causes, and they call for different fixes.
#
# 1. **Bias dynamics: too few steps.** From the default start, the fastest way down the loss is to push
#    *every* output toward "negative". That phase takes about the first two epochs (24 steps): the loss
#    falls from 0.3822 to 0.1738, close to H(q) = 0.1696, the loss of a model that predicts the share
#    everywhere and ranks nothing. From the third epoch on the loss is below it (0.1401, 0.109,
#    0.0896), which only a model that tells shapes from background can reach, and after five epochs
#    its average precision is 0.7147, far above the share 0.04053. Yet recall is still 0: no validation
#    pixel reaches 0.5 (the largest probability is 0.4359). After the bias phase the ranking exists,
#    but the 0.5 cut still finds nothing. Starting the bias at `log(pos/neg)` begins where that phase
#    would end, and the updates go to telling shapes from background: recall is 0.448 after the first
#    epoch and rises to 0.767 by the fifth (average precision 0.8961). With a single output that is one
#    line: `model.head.bias.data.fill_(math.log(pos / neg))`, here
#    `TinyUNet(..., output_bias=math.log(q / (1 - q)))`.
# 2. **The posterior stays below 0.5.** The thread's first epoch had 1,320 steps, 110 times
#    this one's 12, but at a fine-tuning learning rate (about 3e-5), so a slow bias phase is not ruled
#    out; after its second epoch the unweighted model reached recall about 10 % at precision about
#    90 %. The other cause to rule out is the optimum itself: where positives look like negatives, the
#    calibrated probability of "positive" is below 0.5 for every input, and even a well-trained
#    unweighted model says "negative" everywhere at 0.5. A better start does not help then; a lower
#    threshold, or `pos_weight` (section 4), does. This lesson does not show that case: lesson 01
#    (section 3) derives it, and lesson 07 shows it on a trained model (section 1) with a "recall is
#    0" checklist (section 6).
#
# To tell them apart, look at the ranking rather than at the 0.5 cut. An average precision at the
# positive share means the model has learned nothing yet (green with plain BCE in section 2: 0.010
# against 0.0101). One well above the share means the model separates the classes and only the cut is
# wrong, from either cause; what is left is whether a calibrated model would reach 0.5. Here it would:
# the default-bias run ranks (0.7147 against 0.04053) but reaches no 0.5, while the same data started
# at `log(pos/neg)` give recall 0.767 at 0.5. So its recall of 0 is cause 1, a run still behind, not a
# posterior below 0.5.

# %% [markdown]
# ## Summary
#
# * `pos_weight = neg / pos` per channel (`bw.pos_weight_from_counts`, `bw.pos_weight_from_targets` over
#   a `DataLoader`); for single-label problems, `bw.balanced_weights` or `bw.median_frequency_weights`.
# * On the faint green disc, plain BCE learned nothing in ten epochs (green average precision 0.010,
#   the chance level 0.0101); a per-channel `pos_weight` made the model learn it, if poorly (0.178 with
#   the square root, 0.193 with `neg/pos`, at precisions 0.159 and 0.043). Shape it `(C, 1, 1)` or pass
#   `channel_dim=1`, in the mask's channel order; drop `.repeat(B, 1)`. Where the unweighted model
#   already ranks well (section 4), `pos_weight` mostly moves the operating point.
# * `pos_weight` and a background-down weight map balance the gradient the same way; they differ in
#   scale by the ratio itself. With SGD that is a different effective learning rate; with Adam a
#   constant scale hardly matters, only the ratio of foreground to background weight does.
# * Shifting an unweighted model's logits by `log p` *is* thresholding it at `1 / (1 + p)`; a model
#   retrained with `pos_weight = p` lands near that point (within 0.03 in precision and recall here).
#   Choose the threshold on validation data for the precision you need.
# * Recall 0 at 0.5: a short run still behind after its bias phase (initialise the output bias at
#   `log(pos / neg)`), or a posterior below 0.5 everywhere (lower the threshold or use `pos_weight`;
#   lesson 07). The average precision tells both from "not learned at all": the default-bias run here
#   had recall 0 after five epochs but average precision 0.7147 (share 0.04053), and a run started at
#   `log(pos / neg)` reached recall 0.767, so it was the bias start, not the posterior.
#
# ## Exercises
#
# Each cell prints a question. Predict or compute your answer first (with the formula, the explorers above, or
# a few lines of PyTorch), then replace `None` with it and run the cell: a wrong answer gets a hint that says
# what it would mean. When you have tried, `show_solution("04.2")` prints the worked solution of exercise
# 04.2 (and likewise for the others).

# %%
from bceweights.lessons.exercises import (
    LESSON04_1_QUESTION,
    LESSON04_2_QUESTION,
    LESSON04_3_QUESTION,
    check_lesson04_1,
    check_lesson04_2,
    check_lesson04_3,
    show_solution,
)

# %% [markdown]
# **04.1** Use the threshold explorer (set `pos_weight`, read where the unweighted model lands), or the algebra of section 4.

# %%
print(LESSON04_1_QUESTION)
my_threshold = None
_ = check_lesson04_1(my_threshold)

# %% [markdown]
# **04.2** Transfer: section 1's rule on other counts.

# %%
print(LESSON04_2_QUESTION)
my_class_weight = None
_ = check_lesson04_2(my_class_weight)

# %% [markdown]
# **04.3** Transfer: section 5's initial bias, now with a `pos_weight`.

# %%
print(LESSON04_3_QUESTION)
my_bias = None
_ = check_lesson04_3(my_bias)
