# %% [markdown]
# # 06 · Multi-label or multi-class: sigmoid + BCE or softmax + cross-entropy
#
# Questions answered: Q7, Q11
#
# **Goal.** Decide, from what a pixel *is*, whether its outputs are independent yes/no questions
# (sigmoid per channel, binary cross-entropy) or one choice among classes (softmax, cross-entropy),
# and see that for two classes the two are the same model.
#
# You will:
#
# 1. train both kinds of model on the four-colour plates, where magenta = red + blue, from five
#    network seeds each, and compare what each predicts for magenta (Q7);
# 2. move one pixel's logits and watch both heads' probabilities, losses and gradients;
# 3. check that one logit with BCE and two logits with cross-entropy give identical losses and
#    gradients, and translate cross-entropy class weights into `weight` and `pos_weight` (Q11).

# %%
# %matplotlib widget

# %%
import math
import time

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

import bceweights as bw
from bceweights.lessons import data
from bceweights.lessons.explore import png_image
from bceweights.lessons.explore.two_heads import TwoHeadsExplorer
from bceweights.lessons.model import TinyUNet, predict, train
from bceweights.lessons.seeds import check_every_seed, check_pairs, over_seeds

# Small problems run faster on one thread, and one thread fixes the order of the sums; other CPUs may
# still differ in the last bit, hence the five seeds.
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
plates = data.make_plates(96, 32, seed=0)
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
#
# A tiny network trained for 96 steps is one trajectory among many: another seed, or a weight moved by
# one float32 rounding step, can change its figures in the second digit. So each kind of model is
# trained from five network seeds (0 to 4, all of them kept), the tables give every seed's figures, and
# the lesson states only what the checks after them confirm on every seed, or on as many seeds as a check
# names ("on at least 4 of 5"): a 96-step run can fail outright on some seed, and a claim about "every
# seed" would then rest on which five seeds were drawn. Both heads' biases start at the constant that minimises the loss (lesson 05, section 3):
# the sigmoid head's bias at `log(pos/neg)` of each channel, the softmax head's at `log(share)` of each
# class, so that `softmax` gives the class shares.

# %%
SEEDS = range(5)
channel_shares = plates.masks.mean(dim=(0, 2, 3))  # (3,) red, green, blue
MULTI_LABEL_BIAS = torch.log(channel_shares / (1 - channel_shares))  # sigmoid(bias) = share of each channel
SINGLE_LABEL_BIAS = torch.log(class_shares)  # softmax(bias) = share of each class
print("multi-label start, sigmoid(bias) :", [round(v, 4) for v in torch.sigmoid(MULTI_LABEL_BIAS).tolist()])
print("single-label start, softmax(bias):", [round(v, 4) for v in SINGLE_LABEL_BIAS.softmax(dim=0).tolist()])


def train_head(images, targets, bias, seed):
    """TinyUNet with len(bias) outputs, 4 epochs of 24 Adam steps (4 plates each, lr 1e-2).

    BCE for masks (N, 3, H, W), cross-entropy for class maps (N, H, W): train's default loss.
    train() measures the model after every epoch; on 8 of the training plates that costs little,
    and the figures below measure the final model on all 96 validation plates.
    """
    model = TinyUNet(1, len(bias), seed=seed, output_bias=bias)
    train(model, images, targets, epochs=4, batch_size=4, eval_images=images[:8], eval_targets=targets[:8], progress=False)
    return model


def iou(prediction, truth):
    return float((prediction & truth).sum() / (prediction | truth).sum())


def average_precision(score, truth):
    """AP of a ranking: the mean, over the positives, of the precision among the pixels ranked at or above each.

    Reads the ranking, not one cut: a model that ranks green pixels first has a high AP even if no
    probability reaches 0.5. Chance level is the positives' share. Ties are rare in float scores and
    ignored (sklearn's average_precision_score gives the same up to ties).
    """
    order = score.flatten().argsort(descending=True)
    hits = truth.flatten()[order].double()
    precision_at_hit = hits.cumsum(0) / torch.arange(1, len(hits) + 1, dtype=torch.float64)
    return float((precision_at_hit * hits).sum() / hits.sum())


magenta = val_labels == 3  # (N, H, W)
plate = val.masks[:, 2] > 0.5  # the blue mask: plate, code or no code
# Magenta pixels on the code's edge (a non-magenta pixel among their 8 neighbours) and inside it.
next_to_other = F.max_pool2d((~magenta).float().unsqueeze(1), 3, stride=1, padding=1).squeeze(1) > 0
edge, interior = magenta & next_to_other, magenta & ~next_to_other


def multi_label_figures(model):
    probability = torch.sigmoid(predict(model, val.images))  # (N, 3, H, W)
    found = probability > 0.5
    figures = {f"{name} IoU": iou(found[:, c], val.masks[:, c] > 0.5) for c, name in enumerate(RGB)}
    figures |= {f"p_{name} on magenta": float(probability[:, c][magenta].mean()) for c, name in enumerate(RGB)}
    figures["p_red + p_blue on magenta"] = figures["p_red on magenta"] + figures["p_blue on magenta"]
    for name, where in (("edge", edge), ("interior", interior)):
        figures[f"p_red, magenta {name}"] = float(probability[:, 0][where].mean())
    figures["p_blue, magenta edge"] = float(probability[:, 2][edge].mean())
    figures["green AP"] = average_precision(probability[:, 1], val.masks[:, 1] > 0.5)
    return figures


def single_label_figures(model):
    probability = predict(model, val.images).softmax(dim=1)  # (N, 4, H, W)
    chosen = probability.argmax(dim=1)  # (N, H, W)
    figures = {f"{name} IoU": iou(chosen == k, val_labels == k) for k, name in enumerate(COLOURS)}
    figures |= {f"q_{name} on magenta": float(probability[:, k][magenta].mean()) for k, name in enumerate(COLOURS)}
    figures["q_black + q_green on magenta"] = figures["q_black on magenta"] + figures["q_green on magenta"]
    figures["plate IoU, blue alone"] = iou(chosen == 2, plate)
    figures["plate IoU, blue or magenta"] = iou((chosen == 2) | (chosen == 3), plate)
    for name, where in (("edge", edge), ("interior", interior)):
        figures[f"q_blue, magenta {name}"] = float(probability[:, 2][where].mean())
        figures[f"argmax blue, magenta {name}"] = float((chosen[where] == 2).float().mean())
    return figures


def print_over_seeds(results):
    for name, spread in results.items():
        print(f"  {name:<28} {spread}   per seed {[round(v, 3) for v in spread.values]}")


print(f"magenta pixels of the validation plates: {int(edge.sum())} on the code's edge, {int(interior.sum())} inside")
# The ceiling of the single-label reading: a perfect 'blue' class (the true class map) against the plate.
print(f"plate IoU of a perfect single-label 'blue' class: {iou(val_labels == 2, plate):.4g}")

# %% tags=["nbval-ignore-output"]
# 2 heads x 5 network seeds, 96 Adam steps each. All models are kept; the first seed's are pictured below.
models = {}


def run_multi_label(seed):
    models["multi-label", seed] = train_head(plates.images, plates.masks, MULTI_LABEL_BIAS, seed)
    return multi_label_figures(models["multi-label", seed])


def run_single_label(seed):
    models["single-label", seed] = train_head(plates.images, labels, SINGLE_LABEL_BIAS, seed)
    return single_label_figures(models["single-label", seed])


start = time.perf_counter()
multi = over_seeds(run_multi_label, SEEDS)
single = over_seeds(run_single_label, SEEDS)
print(f"{2 * len(SEEDS)} models in {time.perf_counter() - start:.0f} s")
print(f"validation plates, mean ± sd (lowest–highest) over network seeds {SEEDS[0]}-{SEEDS[-1]}")
print("multi-label, sigmoid + BCE (threshold 0.5):")
print_over_seeds(multi)
print("single-label, softmax + cross-entropy (argmax):")
print_over_seeds(single)

# %%
for check in (
    check_every_seed("multi-label: red IoU above 0.5 (red is magenta here)", multi["red IoU"], above=0.5, at_least=4),
    check_every_seed("single-label: magenta IoU above 0.5", single["magenta IoU"], above=0.5),
    check_every_seed("multi-label, on magenta: mean p_blue above 0.9", multi["p_blue on magenta"], above=0.9, at_least=4),
    check_every_seed("multi-label, on magenta: p_red + p_blue above 1.4 (no single unit shared)", multi["p_red + p_blue on magenta"], above=1.4, at_least=4),
    check_every_seed("single-label, on magenta: mean q_magenta above 0.5", single["q_magenta on magenta"], above=0.5),
    check_every_seed("single-label, on magenta: mean q_blue above 0.05", single["q_blue on magenta"], above=0.05),
    check_every_seed("single-label, on magenta: q_black + q_green below 0.05", single["q_black + q_green on magenta"], below=0.05),
    check_every_seed("plate IoU, multi-label blue channel above 0.85", multi["blue IoU"], above=0.85, at_least=4),
    check_every_seed("plate IoU, single-label blue alone below 0.8", single["plate IoU, blue alone"], below=0.8),
    check_every_seed("plate IoU, single-label blue or magenta above 0.85", single["plate IoU, blue or magenta"], above=0.85),
    check_every_seed("plate IoU: multi-label blue channel above single-label blue alone by 0.1, seed by seed",
                     multi["blue IoU"].minus(single["plate IoU, blue alone"]), above=0.1, at_least=4),
    check_pairs("single-label: mean q_blue on the code's edge above inside it by 0.1",
                single["q_blue, magenta edge"], single["q_blue, magenta interior"], margin=0.1),
    check_pairs("single-label: argmax blue on the edge's pixels more often than inside, by 0.1",
                single["argmax blue, magenta edge"], single["argmax blue, magenta interior"], margin=0.1),
    check_every_seed("single-label: argmax blue on less than 0.1 of the code's interior", single["argmax blue, magenta interior"], below=0.1),
    check_every_seed("multi-label: mean p_red inside the code above on its edge by 0.1",
                     multi["p_red, magenta interior"].minus(multi["p_red, magenta edge"]), above=0.1, at_least=4),
    check_every_seed("multi-label: mean p_blue on the code's edge above 0.99", multi["p_blue, magenta edge"], above=0.99, at_least=4),
    check_every_seed("multi-label, on magenta: mean p_red above 0.5", multi["p_red on magenta"], above=0.5, at_least=4),
    check_every_seed("multi-label, bright disc: green AP above 0.3", multi["green AP"], above=0.3, at_least=4),
):
    print(check)


# %%
def plot_two_readings(index=0, seed=SEEDS[0]):
    multi_probability = torch.sigmoid(predict(models["multi-label", seed], val.images[index : index + 1]))[0]
    single_class = predict(models["single-label", seed], val.images[index : index + 1])[0].argmax(dim=0)
    figure = Figure(figsize=(9.6, 2.6), layout="constrained")
    figure.suptitle(f"network seed {seed}, one run, shown for its picture", fontsize=9)
    axes = figure.subplots(1, 5)
    palette = torch.tensor(list(data.PLATE_CLASSES.values()), dtype=torch.float32)
    panels = [
        (val.images[index, 0], "input image", "gray"),
        (val.masks[index].permute(1, 2, 0), "target (RGB)", None),
        ((multi_probability > 0.5).float().permute(1, 2, 0), "multi-label: R, G, B", None),
        (palette[single_class], "single-label: class colour", None),
        ((multi_probability[2] > 0.5).float(), "multi-label blue alone", "Blues"),
    ]
    for ax, (picture, title, cmap) in zip(axes, panels):
        ax.imshow(picture.numpy(), cmap=cmap, interpolation="nearest", vmin=0 if cmap == "Blues" else None)
        ax.set_title(title, fontsize=9)
        ax.set_axis_off()
    return figure


png_image(plot_two_readings(0, seed=SEEDS[0]))

# %% [markdown]
# **Reveal.** Both models get magenta mostly right, each in its own language (IoU above 0.5 for the
# single-label class magenta on every seed, and for the multi-label red channel, which is magenta here,
# on at least 4 of 5 seeds; on all five in the stored run).
#
# Why "at least 4 of 5" for the multi-label figures: a 96-step multi-label run can fail outright. Run
# with other seeds, one multi-label model (network seed 10) learned almost nothing of the code: red IoU 0,
# blue IoU 0.663, mean `p_blue` on magenta 0.463, `p_red + p_blue` 0.599, and its faint-disc twin failed
# red and blue too. The single-label checks held on every seed there. So the multi-label findings below
# are stated for at least 4 of 5 seeds.
#
# The multi-label model says "blue: yes" (`p_blue` near 1) and mostly "red: yes" (mean `p_red` above
# 0.5 on at least 4 of 5 seeds): on the magenta pixels the mean `p_blue` is above 0.9 and the sum
# `p_red + p_blue` above 1.4 on at least 4 of 5 seeds (about 1.57–1.87 over the five stored seeds, with
# `p_red` alone about 0.57–0.87);
# the channels do not have to share one unit. The single-label model says "class magenta" (mean
# `q_magenta` above 0.5) and gives the rest of its one unit of probability to "blue" (mean `q_blue`
# about 0.14–0.30), almost none to black or green. It is least sure at the code's edge: there the mean
# `q_blue` (about 0.27–0.51) is above its value inside the code (about 0.03–0.14) on every seed, and
# argmax says blue on about 0.19–0.51 of the edge's pixels, against less than 0.1 inside. That
# uncertainty is not softmax's doing: the multi-label head's mean `p_red` is lower on the edge (about
# 0.43–0.77) than inside (about 0.68–0.95), by more than 0.1 on at least 4 of 5 seeds. The multi-label
# head is just as unsure about red at the edge, but its blue channel stays near 1 there (mean `p_blue`
# above 0.99 on at least 4 of 5 seeds): a model that learned the plate is not unsure of it at the code.
#
# The difference is in what the outputs *mean*:
#
# * the multi-label blue channel is the whole plate, code or no code; its IoU with the plate (above
#   0.85 on at least 4 of 5 seeds) is read straight off one channel (right panel). This is what the thread's author
#   wanted: "blue plate pixels under the QR code";
# * the single-label "blue" class has a code-shaped hole (its IoU with the plate stays below 0.8); to get
#   the plate you add classes (blue or magenta: above 0.85 again), which works only because you know which
#   colours contain blue. The "below 0.8" is expected, not a failure of training: even a
#   perfect "blue" class reaches only 0.7606 plate IoU (printed above), since the code covers about a
#   quarter of the plate.
#
# Green, the disc that covers 1 % of the training plates' pixels, is the hard case. With these 96
# steps and no weight, each head learns it (validation green IoU above 0.3) on about half the seeds or
# more (the check asks for at least 2 of 5: with other seeds the single-label head learned it on only 2
# of 5), not on all of them. In the stored tables, network seed 0 ends with green IoU 0 in both heads
# (the picture shows that seed: no green in either reading) and seed 3's single-label model with 0.28,
# while the other seeds reach about 0.6–0.75. IoU reads one cut, `p > 0.5`. The ranking says more:
# `green AP`, the average precision of the pixels sorted by `p_green` (1 for a ranking that puts every
# green pixel first, about the green share, 0.01, for one that knows nothing), is above 0.3 on at
# least 4 of 5 seeds (about 0.65–0.94 in the stored run, seed 0's included): on most seeds, not all, since
# a run can miss the rare class entirely, ranking included (with other seeds, one multi-label model's
# green AP was 0.016, at the 0.0101 share). In the stored table, seed 0 ranks the disc's pixels near
# the top (AP 0.65) without lifting them over 0.5. That is what tiny models trained briefly do. For a
# practitioner: one run that misses a rare class at 0.5 does not show that the class cannot be
# learned; read the ranking (AP) as well as the 0.5 cut, train from several seeds, or longer, before
# concluding, and compare the seeds' figures, not one run's.
#
# Lesson 05 trains on plates with the same 1 % share, where plain BCE does not find green in its short
# runs. There the disc is faint: 0.25 darker than the background, against pixel noise 0.35; here it is
# 0.8 darker, the `make_plates` default.
#
# **Predict.** Keep everything else (seeds, steps, start) and make only the disc as faint as lesson 05's.
# Does the multi-label model still learn green?

# %%
faint = data.make_plates(96, 32, green_contrast=0.25, seed=0)
faint_val = data.make_plates(96, 32, green_contrast=0.25, seed=1)
# The same seeds draw the same plates, codes and discs: only the image's disc is fainter.
print("same masks as section 1's plates:", torch.equal(faint.masks, plates.masks) and torch.equal(faint_val.masks, val.masks))
# Chance level of green's AP: a ranking that knows nothing puts green pixels anywhere.
print(f"green share of the validation pixels (AP by chance): {float(faint_val.masks[:, 1].mean()):.4f}")


def faint_figures(model):
    logits = predict(model, faint_val.images)
    found = logits > 0  # logit 0: probability 0.5
    truth = faint_val.masks > 0.5
    return {
        "faint: green AP": average_precision(logits[:, 1], truth[:, 1]),
        "faint: highest p_green": float(torch.sigmoid(logits[:, 1].max())),
        "faint: green recall": float((found[:, 1] & truth[:, 1]).sum() / truth[:, 1].sum()),
        "faint: green IoU": iou(found[:, 1], truth[:, 1]),
        "faint: red IoU": iou(found[:, 0], truth[:, 0]),
        "faint: blue IoU": iou(found[:, 2], truth[:, 2]),
    }


# %% tags=["nbval-ignore-output"]
def run_faint(seed):
    return faint_figures(train_head(faint.images, faint.masks, MULTI_LABEL_BIAS, seed))


start = time.perf_counter()
faint_results = over_seeds(run_faint, SEEDS)
print(f"{len(SEEDS)} models in {time.perf_counter() - start:.0f} s")
print(f"faint disc (lesson 05's plates), multi-label, validation plates, threshold 0.5, network seeds {SEEDS[0]}-{SEEDS[-1]}:")
print_over_seeds(faint_results)
print("bright disc (section 1's models), for comparison:")
print_over_seeds({"green IoU, multi-label": multi["green IoU"], "green IoU, single-label": single["green IoU"],
                  "green AP, multi-label": multi["green AP"]})

# %%
for check in (
    check_every_seed("bright disc, multi-label: green IoU above 0.3", multi["green IoU"], above=0.3, at_least=2),
    check_every_seed("bright disc, single-label: green IoU above 0.3", single["green IoU"], above=0.3, at_least=2),
    check_every_seed("faint disc, multi-label: green recall below 0.05", faint_results["faint: green recall"], below=0.05),
    check_every_seed("faint disc, multi-label: red IoU above 0.5", faint_results["faint: red IoU"], above=0.5, at_least=4),
    check_every_seed("faint disc, multi-label: blue IoU above 0.8", faint_results["faint: blue IoU"], above=0.8, at_least=4),
    check_every_seed("green AP: bright disc above faint disc by 0.3, seed by seed",
                     multi["green AP"].minus(faint_results["faint: green AP"]), above=0.3, at_least=4),
    check_every_seed("faint disc: green AP above 3x the share", faint_results["faint: green AP"], above=0.03, at_least=3),
    check_every_seed("faint disc: highest p_green below 0.5", faint_results["faint: highest p_green"], below=0.5),
):
    print(check)

# %% [markdown]
# **Reveal.** With the faint disc, green's recall stays below 0.05 on all five seeds (it is 0 on each in
# the stored run, and the highest `p_green` on the validation plates, about 0.02–0.28 over the seeds,
# stays below 0.5), while red and blue are learned as with the bright disc (red IoU above 0.5, blue
# above 0.8, on at least 4 of 5 seeds). In these short runs, the faint disc stayed below the 0.5 cut on
# all five seeds (recall 0), while the bright one crossed it on at least 2 of 5 (4 in the stored run).
# Recall at 0.5 is not the ranking: the faint models still rank green above chance (green AP above
# 0.03, three times the 0.0101 share, on at least 3 of 5 seeds; about 0.15–0.18 on seeds 1–4 and 0.015
# on seed 0 in the stored run), though far below the bright disc's AP (by more than 0.3 on at least 4
# of 5 seeds). The 0.5 cut, not the ranking, is what failed. Only
# the contrast was varied, so this does not separate rarity from overlap, and whether longer training
# lifts the faint disc over the cut is not tested here. When a class is missed, cross-entropy has the
# same remedy as BCE: a class `weight=` for `F.cross_entropy` (e.g. `bw.balanced_weights`), as lesson
# 04 does with `pos_weight` for BCE.
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
# (black and green), `q_green` equals `p_green` to 4 digits at the same logit: the next section is that case.

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
# * BCE needs one output instead of a redundant pair, and the same loss extends unchanged to several
#   independent channels.

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
# * A short run of a tiny model is one trajectory: a rare class found at the 0.5 cut from one seed can
#   stay below it from the next, while the ranking (AP) often puts it above chance already (on most
#   seeds; a run can miss the rare class entirely, ranking included). State what holds
#   over several seeds, and before concluding that a class cannot be learned, read the ranking (AP), try
#   several seeds or train longer.
#
# ## Exercises
#
# Each cell prints a question. Predict or compute your answer first (with the formula, the explorers above, or
# a few lines of PyTorch), then replace `None` with it and run the cell: a wrong answer gets a hint that says
# what it would mean. When you have tried, `show_solution("06.2")` prints the worked solution of exercise
# 06.2 (and likewise for the others).

# %%
from bceweights.lessons.exercises import (
    LESSON06_1_QUESTION,
    LESSON06_2_QUESTION,
    LESSON06_3_QUESTION,
    LESSON06_4_QUESTION,
    check_lesson06_1,
    check_lesson06_2,
    check_lesson06_3,
    check_lesson06_4,
    print_questionnaire,
    show_solution,
)

# %% [markdown]
# **06.1** Transfer: other class weights than section 3's. Replace the two `None`.

# %%
print(LESSON06_1_QUESTION)
my_weight, my_pos_weight = None, None
_ = check_lesson06_1(my_weight, my_pos_weight)

# %% [markdown]
# **06.2** Transfer: section 1's point that softmax over colour channels cannot say "both", now for a pixel
# in three channels. Enter one number, the softmax head's floor; the verdict compares it with BCE's.

# %%
print(LESSON06_2_QUESTION)
my_floor = None
_ = check_lesson06_2(my_floor)

# %% [markdown]
# **06.3** Transfer: section 3 printed the two means; predict their ratio from the weights alone.

# %%
print(LESSON06_3_QUESTION)
my_ratio = None
_ = check_lesson06_3(my_ratio)

# %% [markdown]
# **06.4** A concept: which head fits labels that overlap? Answer from section 1, without training anything.

# %%
print(LESSON06_4_QUESTION)
my_choice = None  # "a", "b" or "c"
_ = check_lesson06_4(my_choice)

# %% [markdown]
# ## Questionnaire
#
# Short questions on the whole lesson. Answer each in a sentence or two, in your head or in a cell, before you
# compare with the answers: `show_solution("06.Q")` prints them.

# %%
print_questionnaire("06")
