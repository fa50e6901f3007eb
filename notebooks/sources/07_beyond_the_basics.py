# %% [markdown]
# # Lesson 07 · Beyond the basics: ignore regions, focal loss, boundary weights, label smoothing
#
# Questions answered: none of Q1–Q24 directly. This lesson covers what the forum threads never reach
# (the "beyond the threads" topics of the collection).
#
# **Goal.** After this lesson you can:
#
# 1. **leave pixels out** (void labels, unannotated borders) with `ignore=`, and say what changes when
#    ignored pixels stay in the mean's denominator instead (multiplying by a mask, or
#    `segmentation_models_pytorch`'s `SoftBCEWithLogitsLoss`): whose gradient grows when a batch has
#    few labels, why either choice can be the one you want, and why `bw.audit()` reports the second as
#    a warning rather than an error;
# 2. say what the **focal loss**'s `gamma` and `alpha` do to the loss and to the gradient, how much of an
#    image's gradient its easy pixels carry with BCE and with focal loss, why a focal-trained model's
#    probabilities are not frequencies, which thresholds still mean what they say, and what α does to
#    the missed objects of a rare-foreground image (live explorer);
# 3. build the U-Net paper's **boundary weight map** for touching objects with `unet_weight_map`, and see
#    where it sends the gradient of a model that merges touching cells (live explorer);
# 4. say where the minimum of a **label-smoothed** loss lies, and what smoothing does to calibration.
#
# **How to read it.** Each section asks you to *predict* something before a cell reveals it. Write
# your guess down first. The explorers are live in JupyterLab (drag their sliders); on a static page
# (GitHub) you see their first frame, and the snapshots below the check cells show the states they set.
# Five exercises at the end are checked by functions in the package, and a short questionnaire closes
# the lesson.

# %%
# %matplotlib widget

# %%
import math

import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from scipy import optimize, special

import bceweights as bw
from bceweights.lessons.exercises.lesson07 import lesson07_missed_sample, missed_positive_share
from bceweights.lessons.explore import png_image
from bceweights.lessons.explore.focal import EASY_FROM, HARD_BELOW, FocalExplorer, focal_curves, focal_sample
from bceweights.lessons.explore.weight_map import WeightMapExplorer
from bceweights.weights import unet_weight_map

# Small problems run faster on one thread, and then give the same numbers on every machine.
torch.set_num_threads(1)
torch.manual_seed(0)


def sig4(value: float) -> str:
    """A number with 4 significant digits, as every printed number in these lessons."""
    return f"{value:.4g}"


# %% [markdown]
# ## 1 · Ignore regions
#
# **Goal of this part.** leave unlabelled pixels out of the loss, and choose what the mean divides by.
#
# Some pixels have no label: the void border of a Pascal VOC mask (value 255), a region the annotator
# skipped, padding. They must add nothing to the loss and get no gradient. Three ways are in common use:
#
# * **(a)** `ignore=void`: the pixel is left out entirely, and `reduction="mean"` divides by the number
#   of **kept** pixels. (PyTorch's `nn.CrossEntropyLoss(ignore_index=...)` averages the same way.)
# * **(b)** multiplying by a mask, `weight=keep`: ignored pixels add 0, but the mean still divides by
#   **all** pixels.
# * **(c)** what `segmentation_models_pytorch`'s `SoftBCEWithLogitsLoss(ignore_index=...)` does,
#   according to its documentation and source: it computes every pixel's loss, multiplies it by
#   `target != ignore_index`, and takes `.mean()` over all elements, so ignored pixels stay in the
#   denominator. (The same library's `FocalLoss` drops ignored pixels before averaging instead, like
#   (a).) We write (c) out in two lines; nothing here depends on that library.
#
# A batch of two 16×16 images whose top rows were not annotated: 2 rows in the first, 10 in the second.

# %%
generator = torch.Generator().manual_seed(6)
logits = 2 * torch.randn(2, 1, 16, 16, generator=generator)
labels = (torch.rand(2, 1, 16, 16, generator=generator) < 0.3).long()
void = torch.zeros(2, 1, 16, 16, dtype=torch.bool)
void[0, :, :2] = True  # image 0: top 2 rows unannotated
void[1, :, :10] = True  # image 1: top 10 rows unannotated
labels[void] = 255  # the usual "void" value
keep = (~void).float()
clean_target = labels.masked_fill(void, 0).float()  # (b) needs a valid target where it multiplies by 0

print(f"kept pixels: {int(keep.sum())} of {keep.numel()} ({sig4(keep.mean().item())})")

# %% [markdown]
# **Predict.** Which of (a), (b), (c) give the same number? By what factor do the others differ?

# %%
loss_ignore = bw.bce_with_logits(logits, labels.float(), ignore=void)  # (a)
loss_mask = bw.bce_with_logits(logits, clean_target, weight=keep)  # (b)
per_pixel = F.binary_cross_entropy_with_logits(logits, labels.float(), reduction="none")
loss_smp_style = (per_pixel * (labels != 255).float()).mean()  # (c)
loss_weighted_mean = bw.bce_with_logits(logits, clean_target, weight=keep, reduction="weighted_mean")

print(f"(a) ignore=void                        {sig4(loss_ignore.item())}")
print(f"(b) weight=keep, mean                  {sig4(loss_mask.item())}")
print(f"(c) zeroed, mean over all (smp-style)  {sig4(loss_smp_style.item())}")
print(f"    weight=keep, weighted_mean         {sig4(loss_weighted_mean.item())}")
print(f"(b) / (a) = {sig4((loss_mask / loss_ignore).item())}   kept fraction = {sig4(keep.mean().item())}")

# %% [markdown]
# **Reveal.** (b) and (c) give the same number: both zero the void pixels and divide by all 512. (a),
# and `weight=keep` with `reduction="weighted_mean"`, divide by the 320 kept pixels. So (b) and (c) are
# (a) times the kept fraction, 0.625, and so is their gradient:

# %%
leaf_a = logits.clone().requires_grad_(True)
bw.bce_with_logits(leaf_a, labels.float(), ignore=void).backward()
leaf_c = logits.clone().requires_grad_(True)
(F.binary_cross_entropy_with_logits(leaf_c, labels.float(), reduction="none") * keep).mean().backward()
print(f"largest gradient on a void pixel: (a) {sig4(leaf_a.grad[void].abs().max().item())}"
      f"   (c) {sig4(leaf_c.grad[void].abs().max().item())}")
print(f"gradient of every kept pixel, (c) / (a): {sig4((leaf_c.grad[~void] / leaf_a.grad[~void]).mean().item())}")

# %% [markdown]
# The kept fraction changes from batch to batch, and the two rules answer differently. Each image as
# a batch of its own, with the same predictions. A kept pixel's gradient is its own slope
# $\ell' = \sigma(x) - y$ divided by the mean's denominator; the cell recovers that denominator from
# the gradients:

# %%
slope = torch.sigmoid(logits) - clean_target  # d(per-pixel loss)/d(logit) of every kept pixel
denominators = {}
for index in (0, 1):
    one = slice(index, index + 1)
    kept_here = ~void[one]
    leaf_a = logits[one].clone().requires_grad_(True)
    a = bw.bce_with_logits(leaf_a, labels[one].float(), ignore=void[one])
    a.backward()
    leaf_c = logits[one].clone().requires_grad_(True)
    c = (F.binary_cross_entropy_with_logits(leaf_c, labels[one].float(), reduction="none") * keep[one]).mean()
    c.backward()
    denominators[index] = {
        rule: float((slope[one][kept_here] / leaf.grad[kept_here]).mean()) for rule, leaf in (("a", leaf_a), ("c", leaf_c))
    }
    print(f"image {index}: kept {int(kept_here.sum())} of 256   (a) {sig4(a.item())}   (c) {sig4(c.item())}"
          f"   gradient of a kept pixel: (a) slope / {denominators[index]['a']:.0f}, (c) slope / {denominators[index]['c']:.0f}")
print(f"a kept pixel of image 1 against one of image 0, same slope: (a) {sig4(denominators[0]['a'] / denominators[1]['a'])} times the step,"
      f"   (c) {sig4(denominators[0]['c'] / denominators[1]['c'])} times")

# %% [markdown]
# Under (c) every kept pixel gets its slope divided by 256, whichever image it is in: a labelled pixel
# always counts the same. Under (a) the denominator is the image's own count of kept pixels, 224 and
# 96, so a kept pixel of image 1 takes a step 2.333 times larger than one of image 0 with the same
# slope: every image counts the same in total (each image as its own batch), however few of its pixels
# are labelled. Each rule is a design choice with a consequence. (a) keeps the loss an average you can
# compare between batches (as `CrossEntropyLoss(ignore_index=...)` does) and gives a sparsely labelled
# batch as much say as a fully labelled one (an image, only when it is its own batch), at the price
# of a labelled pixel's step that grows when its batch has few labels; (c)
# keeps every labelled pixel's step fixed, at the price of a loss value that is the mean over the
# labelled pixels times the labelled share, so it rises and falls with each batch's share. In a batch,
# both rules use one denominator for the whole batch (320 or 512 above), so the difference shows
# between batches. One more difference: with `ignore=`, the void pixels' targets may hold anything
# (255 here) and the value checks skip them; with (b) you must replace 255 first, or a pixel you meant
# to drop is computed from a target that is not a probability (its weight of 0 hides that, until
# someone changes the weight).
#
# `bw.audit()` (lesson 09) gives the same account when it reads (b) written in plain PyTorch and most
# of the weights are 0, as in image 1 alone (160 of its 256 pixels void): a `diluted-mean`
# **warning**, not an error, whose message states the consequence and the lines to write if you meant
# (a). (On the whole batch, where 192 of 512 are void, it stays quiet: it reports a mask that zeroes
# most elements.)

# %%
with bw.audit() as report:
    F.binary_cross_entropy_with_logits(logits[1:], clean_target[1:], weight=keep[1:])  # (b) on image 1, in plain PyTorch
print(report)

# %% [markdown]
#
# **Summary.** `ignore=void` (a bool tensor, broadcastable like a weight) gives void pixels nothing
# and averages over the annotated pixels only: each batch's loss is a mean of labelled pixels, and a
# labelled pixel's step grows when its batch has few labels. Multiplying by a mask, or a library's
# `ignore_index` that keeps void pixels in the denominator, gives every labelled pixel the same step
# and scales the loss value by the annotated fraction. Choose the one you mean; know which one your
# library does.
#
# ## 2 · Focal loss
#
# **Goal of this part.** see how focal loss moves the gradient to hard pixels, and what it does to probabilities and to the 0.5 cut.
#
# On a segmentation most pixels are easy background the model already gets right. Each contributes
# little, but there are thousands. With $q_t$ the probability the model gives to a pixel's true class,
# the focal loss of Lin et al. (2017) multiplies BCE by $(1 - q_t)^\gamma$, and optionally by
# $\alpha_t$ ($\alpha$ for positives, $1-\alpha$ for negatives):
#
# $$
# \ell_\text{focal} = \alpha_t\,(1 - q_t)^\gamma\,\big(-\log q_t\big),
# \qquad
# \Big|\frac{\partial \ell_\text{focal}}{\partial x}\Big| = \alpha_t\,(1-q_t)^\gamma\,\big[(1 - q_t) + \gamma\,q_t\,(-\log q_t)\big]
# $$
#
# computed by `bw.focal_bce_with_logits(x, y, gamma, alpha)`. With $\gamma = 0$ and no $\alpha$ it is BCE,
# whose gradient magnitude is $1 - q_t$.
#
# **Predict.** A pixel with $q_t = 0.9$ is "easy". At $\gamma = 2$, what fraction of its BCE loss does it
# keep? The explorer's sample image is synthetic, not a model's output: a 64×64 image with about 6 %
# foreground (four discs), and logits made to look like a partly trained model's. They follow the
# distance to the discs' edges (about ±4 well inside and outside), plus noise, plus three bright
# false-positive spots on the background (`focal_sample`). Under plain BCE, what share of the image's
# total gradient do its easy pixels carry: 5 %, 20 % or 50 %? And at $\gamma = 2$?

# %% tags=["nbval-ignore-output"]
focal = FocalExplorer()
focal

# %% [markdown]
# Drag `gamma` and watch the curves bend and the bars move, or run the next cell. The readouts:
#
# * `loss_ratio_easy` and `grad_ratio_easy`: the focal loss and gradient magnitude of one easy positive
#   pixel ($y = 1$, $q_t = 0.9$) divided by its BCE loss and gradient; with α on, they include its
#   $\alpha_t = \alpha$;
# * `easy_share_bce` and `easy_share_focal`: the share of the sample image's total gradient magnitude
#   $\sum |\partial\ell/\partial x|$ carried by its easy pixels ($q_t \ge 0.9$), under BCE and under the focal loss;
# * `hard_share_bce` and `hard_share_focal`: the same for the hard pixels ($q_t < 0.5$, the ones the
#   model gets wrong); the pixels in between carry the rest;
# * `easy_pixels` and `hard_pixels`: how many pixels of the 64×64 sample are easy and hard. They are
#   fixed by the sample, whatever the sliders say.

# %%
focal.set(gamma=0.0, use_alpha=False)
focal.print_readouts("easy_share_bce", "hard_share_bce", "easy_pixels", "hard_pixels")
focal.set(gamma=2.0)
focal.print_readouts("loss_ratio_easy", "grad_ratio_easy", "easy_share_focal", "hard_share_focal")

# %%
focal.snapshot()

# %% [markdown]
# **Reveal.** At $\gamma = 2$ the easy pixel keeps $0.1^2 = 1\,\%$ of its loss and about 3 % of its
# gradient. Under BCE the ~3,700 easy pixels carry almost half of the image's gradient, more than the 61
# pixels the model gets wrong; at $\gamma = 2$ they carry about 1 % and the wrong pixels three quarters.
# The gradient goes where the mistakes are. (At $\gamma = 2$, below $q_t \approx 0.3$ the focal gradient is even a little
# larger than BCE's: the $\gamma\,q_t(-\log q_t)$ term.)
#
# $\alpha$ is a plain class weight on top. Lin et al. found $\alpha = 0.25$ best with $\gamma = 2$: it
# weights the rare positives *less*, because $\gamma$ has already removed most of the easy negatives.

# %%
focal.set(gamma=2.0, use_alpha=True, alpha=0.25)
focal.print_readouts("loss_ratio_easy", "grad_ratio_easy", "easy_share_focal", "hard_share_focal")
focal.set(use_alpha=False)

# %%
# The explorer's sample image: its easy and hard pixels by class, and the negatives' part of each
# group's focal gradient (gamma = 2, no alpha).
sample_logits, sample_target = (t.numpy() for t in focal_sample())
sample_margin = sample_logits * (2 * sample_target - 1)  # the logit signed toward the true class
sample_prob_true = special.expit(sample_margin)
_, sample_gradient = focal_curves(sample_margin, 2.0)
for group, in_group in (("easy", sample_prob_true >= EASY_FROM), ("hard", sample_prob_true < HARD_BELOW)):
    negative = in_group & (sample_target == 0)
    print(
        f"{group}: {int((in_group & (sample_target == 1)).sum())} positive, {int(negative.sum())} negative pixels;"
        f"   negatives carry {sig4(sample_gradient[negative].sum() / sample_gradient[in_group].sum())} of its gradient"
    )

# %% [markdown]
# With α on, the two ratios are those of an easy *positive*, which α weights by 0.25: its loss keeps
# $0.25 \times 0.1^2 = 0.0025$ of BCE's, its gradient 0.007241, a quarter of the 0.02896 without α. An easy
# negative would get $1 - \alpha = 0.75$ instead. The image's shares barely move (easy 0.01263 instead of
# 0.01357, hard 0.7446 instead of 0.7377). α multiplies every positive by 0.25 and every negative by
# 0.75, and in this image both groups are mostly negatives (the cell above: 3479 negatives and 189
# positives among the easy pixels, the negatives carrying 0.8829 of the group's gradient; all 61 hard
# pixels negative), so both groups are scaled by about the same factor, which cancels in a share.
# α moves weight between the classes, not between easy and hard pixels: that is γ's job.
#
# In this synthetic image the model misses no object: its mistakes are false-positive spots. In a real
# rare-foreground image the hard pixels are often the other kind, positives of an object the model
# missed (a small lesion, a thin vessel). **Predict**: on such an image, does α = 0.25 leave the missed
# positives' share of the gradient alone, as it left the shares above? A second sample: the same
# image, with the logits of its smallest object lowered by 6, so that the model misses it.

# %%
missed_logits, missed_target, missed_object = lesson07_missed_sample()
missed_margin = missed_logits * (2 * missed_target - 1)
missed_hard = special.expit(missed_margin) < HARD_BELOW
print(f"missed object: {int(missed_object.sum())} pixels;  hard pixels: {int((missed_hard & (missed_target == 1)).sum())} "
      f"positive, {int((missed_hard & (missed_target == 0)).sum())} negative")
print("share of the gradient on the hard positives:"
      f"   BCE {sig4(missed_positive_share(0.0))}"
      f"   gamma=2 {sig4(missed_positive_share(2.0))}"
      f"   gamma=2, alpha=0.25 {sig4(missed_positive_share(2.0, 0.25))}")
kept_by_alpha = [missed_positive_share(2.0, 0.25, seed=s) / missed_positive_share(2.0, seed=s) for s in range(8)]
print(f"seeds 0-7: alpha=0.25 multiplies that share by {sig4(min(kept_by_alpha))} to {sig4(max(kept_by_alpha))}")

# %% [markdown]
# **Reveal.** It does not. Now 30 of the 91 hard pixels are positives, the missed object's, and γ = 2
# sends them 0.369 of the gradient, against 0.1199 under BCE. α = 0.25 then weights every positive by
# 0.25 and every negative by 0.75, and within the hard group that is no longer a common factor: the
# missed positives' share falls to 0.164, less than half of what γ gave them. On the same construction
# drawn with seeds 0 to 7, α = 0.25 multiplies their share by 0.4445 to 0.6692: always a cut, since α
# weights the negatives up relative to the positives whatever the image. Lin et al.'s α = 0.25 was
# tuned with γ = 2 on object detection; where your missed pixels are positives, it works against them.
# Try α = 0.5 or no α, and compare recall on your own validation data.

# %% [markdown]
# **Predict.** With BCE, a model that sees identical-looking pixels of which a fraction $q$ is positive
# learns to predict $q$ (lesson 01). What does a model trained with the focal loss predict for
# $q = 0.1$?
#
# The best prediction minimises the expected loss $q\,\ell_\text{focal}(p, y{=}1) + (1-q)\,\ell_\text{focal}(p, y{=}0)$;
# the package's loss with `weight=[q, 1 - q]` and `reduction="sum"` is exactly that sum:

# %%
def focal_optimum(q: float, gamma: float, alpha: float | None = None) -> float:
    """The probability that minimises the expected focal loss where a fraction q of the pixels is positive."""
    target = torch.tensor([1.0, 0.0], dtype=torch.float64)
    share = torch.tensor([q, 1 - q], dtype=torch.float64)

    def expected_loss(z: float) -> float:
        logit = torch.full((2,), z, dtype=torch.float64)
        return bw.focal_bce_with_logits(logit, target, gamma=gamma, alpha=alpha, weight=share, reduction="sum").item()

    best = optimize.minimize_scalar(expected_loss, bounds=(-15, 15), method="bounded", options={"xatol": 1e-9})
    return float(special.expit(best.x))


for q in (0.05, 0.1, 0.3, 0.5, 0.7, 0.9):
    row = "   ".join(f"gamma={g}: {sig4(focal_optimum(q, g))}" for g in (0, 1, 2))
    print(f"q = {q:<5} {row}")

# %% [markdown]
# **Reveal.** At $\gamma = 2$ a kind of pixel that is positive 10 % of the time gets about 0.31: focal
# probabilities are pulled toward 0.5. Two properties of the table decide what that breaks. The optimum
# is symmetric: $q$ and $1 - q$ get $p$ and $1 - p$ (0.3058 and 0.6942 for $q = 0.1$ and $0.9$), because
# without $\alpha$ the loss treats the two classes alike. And it is monotone: a larger $q$ always gets
# a larger $p$, with $q = 0.5$ mapped to 0.5 at every $\gamma$. So **the 0.5 cut still makes the same
# decisions as a calibrated model's 0.5 cut**: $p \ge 0.5$ exactly where $q \ge 0.5$. What is
# distorted is everything else: reading the output as a probability, and any other threshold. To flag
# pixels that are positive at least 30 % of the time, a calibrated model is cut at 0.3, a $\gamma = 2$
# model at 0.4215. At the optimum the ranking is kept ($p$ is a monotone function of $q$), so an ideal focal model has the same precision–recall curve; a real network trained with it can rank differently.
#
# With $\alpha$ the symmetry goes and the 0.5 cut moves too. The expected loss weights the positive
# side by $q\,\alpha$ and the negative side by $(1 - q)(1 - \alpha)$, so the optimum is 0.5 where those
# are equal, at $q = 1 - \alpha$:

# %%
for q in (0.5, 0.75):
    print(f"q = {q:<5} gamma=2, alpha=0.25: optimum {sig4(focal_optimum(q, 2.0, alpha=0.25))}")

# %% [markdown]
# With Lin et al.'s $\alpha = 0.25$, a kind of pixel that is positive half the time is predicted at
# 0.3988, and the 0.5 cut is where three pixels in four are positive: fewer pixels called positive
# than with a calibrated model's 0.5 cut.
#
# **Summary.** $\gamma$ down-weights pixels by how right they already are: at $\gamma = 2$ a pixel at
# $q_t = 0.9$ keeps 1 % of its loss. On imbalanced images this moves the gradient from the mass of easy
# background to the few mistakes. $\alpha$ is a class weight on top. The outputs are no longer
# calibrated probabilities: without $\alpha$ the 0.5 cut still decides like a calibrated model's,
# every other threshold does not, and with $\alpha$ the 0.5 cut sits at $q = 1 - \alpha$; where the
# missed pixels are positives, $\alpha = 0.25$ cuts their share of the gradient. Calibrate afterwards
# (fit a temperature on validation data, for example) if you need probabilities.
#
# The pull toward 0.5 is a bias for a model that would be calibrated anyway, as here. Mukhoti et al.
# (2020), "Calibrating Deep Neural Networks using Focal Loss" (NeurIPS), study the other case, which is
# common: large networks trained with cross-entropy over-fit and become over-confident. They find that
# networks trained with the focal loss are much better calibrated than cross-entropy ones, and best
# combined with temperature scaling, with accuracy kept; they also give a way to choose $\gamma$. The
# two results agree: the same pull toward 0.5 that biases an already calibrated model counters an
# over-confident one. Check calibration on your own validation data (lesson 08) rather than assume it.
#
# ## 3 · Boundary weight maps for touching objects
#
# **Goal of this part.** build U-Net's border weights, and read how much of the loss they put on the gaps between touching objects.
#
# When cells touch, the background between them is a line one or two pixels wide. Those few pixels
# decide whether two cells come out as two objects or as one, yet under plain BCE they count as much as
# any other pixel, and a model that blurs its output merges the cells. The U-Net paper (Ronneberger et
# al., 2015) weights each pixel by
#
# $$
# w(x) = w_c(x) + w_0 \exp\!\Big(-\frac{\big(d_1(x) + d_2(x)\big)^2}{2\sigma^2}\Big)
# $$
#
# where $d_1$, $d_2$ are the distances to the nearest and the second-nearest cell and $w_c$ balances
# the class frequencies; the paper uses $w_0 = 10$ and $\sigma \approx 5$ pixels. `unet_weight_map(labels)`
# computes it from **instance** labels (0 = background, 1..K = one number per cell), with distances from
# `scipy.ndimage.distance_transform_edt`, and adds the border term on background pixels only. That
# restriction is this package's choice, not part of the paper's equation, which is written for every
# pixel: the border term is meant for the gaps between cells, and gaps are background. Small enough
# to check by hand: two one-pixel cells on a strip.

# %%
strip = torch.tensor([[1, 0, 0, 2, 0, 0, 0]])
strip_weights = unet_weight_map(strip, w0=10.0, sigma=5.0, class_balance=False)
print("weights:", " ".join(sig4(w) for w in strip_weights[0].tolist()))
print("by hand, column 1 (d1 = 1, d2 = 2):", sig4(1 + 10 * math.exp(-((1 + 2) ** 2) / (2 * 5**2))))
print("by hand, column 6 (d1 = 3, d2 = 6):", sig4(1 + 10 * math.exp(-((3 + 6) ** 2) / (2 * 5**2))))
print("class term only:", " ".join(sig4(w) for w in unet_weight_map(strip, w0=0.0)[0].tolist()))

# %% [markdown]
# The class term $w_c = n / (2\,n_\text{class})$ gives both classes the same total weight (here
# $7/4$ for each of the 2 cell pixels, $7/10$ for each of the 5 background pixels), and an image with
# fewer than two cells gets no border term. In training, pass the map as a per-pixel weight:
#
# ```python
# weight = unet_weight_map(instance_labels)                      # (N, H, W), once per image
# loss = bw.bce_with_logits(logits, target, weight=weight.unsqueeze(1))   # logits, target (N, 1, H, W)
# ```
#
# The map depends only on the labels, so compute it once per training image (in the dataset), not at
# every step. A binary mask is refused, because from a mask touching cells cannot be told apart:

# %%
try:
    unet_weight_map(strip > 0)
except TypeError as error:
    print(error)

# %% [markdown]
# **Predict.** In the explorer below, the red pixels separate touching cells: under 3 % of the image.
# The "model" is a blurry prediction that paints most of them as foreground. Without the map, what share
# of the gradient do the red pixels carry? With $w_0 = 10$? And when you raise $\sigma$ from 5 to 15, does
# their share go up or down?

# %% tags=["nbval-ignore-output"]
weight_map = WeightMapExplorer()
weight_map

# %% [markdown]
# The readouts, all on the scene shown (a seed of `cells`), with the blurry model's gradient
# $w\,|\sigma(x) - y|$ per pixel:
#
# * `separating_share_plain` and `separating_share_weighted`: the share of the total gradient magnitude
#   carried by the separating (red) pixels, without the map ($w = 1$) and with it;
# * `cells_share_weighted`: the share carried by the cells' own pixels, with the map (the other
#   background pixels carry the rest);
# * `separating_pixels`: the separating pixels' share of all pixels, fixed by the scene;
# * `separating_mean_weight`: the map's mean weight on the separating pixels;
# * `max_weight` and `mean_weight`: the largest weight and the mean over the image;
# * `gradient_scale`: $\sum w\,|g| \,/\, \sum |g|$ with $g = \sigma(x) - y$, the factor by which the map
#   scales the total gradient magnitude on the logits with `reduction="mean"`. It equals `mean_weight`
#   when every pixel has the same $|g|$ (at initialisation, say); it is larger when the heavy pixels
#   have the large $|g|$. With plain SGD the step size roughly follows it; Adam divides a constant
#   factor away.

# %%
weight_map.set(w0=10.0, sigma=5.0, class_balance=True, cells=0)
weight_map.print_readouts()
at_sigma_5 = dict(weight_map.readouts)

# %%
weight_map.set(sigma=15.0)
weight_map.print_readouts(
    "separating_share_weighted", "cells_share_weighted", "separating_mean_weight", "mean_weight", "gradient_scale"
)
growth = {name: weight_map.readouts[name] / at_sigma_5[name] for name in ("mean_weight", "gradient_scale")}
print("sigma 15 against sigma 5:", "   ".join(f"{name} x {sig4(factor)}" for name, factor in growth.items()))
# In a one-pixel gap d1 + d2 = 2: the border term's exponential there, for three widths.
print("exp(-2^2 / (2 sigma^2)):", "   ".join(f"sigma={s:g}: {sig4(math.exp(-4 / (2 * s**2)))}" for s in (2.0, 5.0, 15.0)))

# %%
weight_map.snapshot()

# %% [markdown]
# **Reveal.** The separating pixels are under 3 % of the image (0.02745). Because the model gets them
# wrong they already carry about a quarter of the unweighted gradient (0.2354), and with the map almost
# two thirds (0.6421). $\sigma$ changes their own weight less than everything else's: in a one-pixel
# gap $d_1 + d_2 = 2$, so the border term there is $w_0 \exp(-2/\sigma^2)$, with the exponential at
# 0.6065 for $\sigma = 2$, 0.9231 for $\sigma = 5$ and 0.9912 for $\sigma = 15$. For $\sigma$ of a few pixels or more,
# the gaps are close to the full $w_0$: their mean weight only goes from 9.843 to 11.16 between
# $\sigma = 5$ and 15. What $\sigma$ sets is how far the weight spreads into open background. At
# $\sigma = 15$ every background pixel near two cells is heavy, and the gaps' share falls to 0.5002. The
# mean weight of the whole map goes from 1.56 to 3.016 (× 1.933), but that is not what the map does to
# this model's gradient on the logits. `gradient_scale` is 3.706 at $\sigma = 5$, far above the mean weight, because
# the heavy pixels are the ones the model gets wrong; at $\sigma = 15$ it is 5.271, only × 1.422. (With
# plain SGD the step size roughly follows it; Adam divides a constant factor away, so there only how the map
# shares the gradient out matters.)
#
# **Summary.** Compute `unet_weight_map` once per label image and pass it as `weight`. $w_0$ sets how
# much the gaps count; $\sigma$ sets how far the extra weight reaches. A $\sigma$ between the gap width
# and a cell radius keeps it on the gaps.
#
# ## 4 · Label smoothing
#
# **Goal of this part.** see how label smoothing keeps the optimal logit finite, and what it does to the probabilities.
#
# `label_smoothing=eps` replaces every target $y$ by $y' = y\,(1 - \varepsilon) + \varepsilon / 2$: 1
# becomes $1 - \varepsilon/2$ and 0 becomes $\varepsilon/2$. (PyTorch's `CrossEntropyLoss(label_smoothing=eps)`
# with two classes does the same; `segmentation_models_pytorch`'s `smooth_factor=s` maps 1 to $1 - s$,
# which is our $\varepsilon = 2s$.)
#
# **Predict.** With a hard label 1, plain BCE keeps pushing the logit up forever: its minimum is at
# $+\infty$. Where is the minimum of the smoothed loss, for $\varepsilon = 0.1$?

# %%
eps = 0.1
logit = torch.zeros(1, dtype=torch.float64, requires_grad=True)
optimizer = torch.optim.LBFGS([logit], max_iter=100, line_search_fn="strong_wolfe")


def closure() -> torch.Tensor:
    optimizer.zero_grad()
    loss = bw.bce_with_logits(logit, torch.ones(1, dtype=torch.float64), label_smoothing=eps)
    loss.backward()
    return loss


optimizer.step(closure)
print(f"trained logit {sig4(logit.item())}   logit(1 - eps/2) = {sig4(math.log((1 - eps / 2) / (eps / 2)))}")
print(f"its probability {sig4(torch.sigmoid(logit).item())}")

# %% [markdown]
# **Reveal.** The gradient $\sigma(x) - y'$ vanishes at $x = \operatorname{logit}(y')$, about 2.944 for
# $\varepsilon = 0.1$: the loss has a finite minimiser, so logits stop growing. That is what smoothing
# is for.
#
# **Predict.** Now pixels of seven kinds; in each kind a fraction $q$ is truly positive. A model with
# one free logit per kind is trained to convergence with $\varepsilon = 0$, 0.1 and 0.2. What does it
# predict where $q = 0.9$?

# %%
generator = torch.Generator().manual_seed(4)
true_frequency = torch.tensor([0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98], dtype=torch.float64)
per_kind = 3000
kind = torch.arange(7).repeat_interleave(per_kind)
outcome = torch.bernoulli(true_frequency[kind], generator=generator)
observed = outcome.view(7, per_kind).mean(dim=1)  # q of each kind, as sampled


def fit_kind_logits(label_smoothing: float) -> torch.Tensor:
    """One logit per kind, fitted with L-BFGS to the smoothed BCE; returns the probabilities (7,)."""
    table = torch.zeros(7, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [table], max_iter=500, tolerance_grad=1e-12, tolerance_change=0.0, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = bw.bce_with_logits(table[kind], outcome, label_smoothing=label_smoothing)
        loss.backward()
        return loss

    optimizer.step(closure)
    return torch.sigmoid(table.detach())


smoothings = (0.0, 0.1, 0.2)
predicted = {e: fit_kind_logits(e) for e in smoothings}
print("q         " + "".join(f"eps={e:<7}" for e in smoothings) + "q(1-0.2)+0.1")
for k in range(7):
    row = "".join(f"{sig4(predicted[e][k].item()):<11}" for e in smoothings)
    print(f"{sig4(observed[k].item()):<10}{row}{sig4((observed[k] * 0.8 + 0.1).item())}")

# %% [markdown]
# **Reveal.** The model predicts the mean *smoothed* target $q\,(1-\varepsilon) + \varepsilon/2$, not $q$:
# every probability is squeezed toward 0.5 (where $q \approx 0.9$, 0.8947 as sampled, 0.8157 at $\varepsilon = 0.2$). Measured as the
# mean of $|p - q|$ over the kinds, and after undoing the squeeze with $(p - \varepsilon/2)/(1 - \varepsilon)$:

# %%
for e in smoothings:
    error = (predicted[e] - observed).abs().mean().item()
    undone = ((predicted[e] - e / 2) / (1 - e) - observed).abs().mean().item()
    print(f"eps={e}: calibration error {error:.4f}   after (p - eps/2)/(1 - eps): {undone:.4f}")

# %%
figure = Figure(figsize=(4.4, 3.6), dpi=90)
axes = figure.subplots()
axes.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="calibrated")
for e, marker in zip(smoothings, "osD"):
    axes.plot(observed.numpy(), predicted[e].numpy(), marker=marker, linewidth=1.2, label=f"eps = {e}")
axes.set_xlabel("true frequency q of the kind")
axes.set_ylabel("predicted probability")
axes.set_title("label smoothing squeezes toward 0.5", fontsize=10)
axes.legend(fontsize=8)
axes.grid(alpha=0.3)
figure.subplots_adjust(left=0.16, right=0.97, bottom=0.14, top=0.91)
png_image(figure)

# %% [markdown]
# The model is calibrated to the smoothed targets and under-confident for the true ones, by
# $\varepsilon\,|1/2 - q|$ at frequency $q$. A large network that overfits is usually over-confident, and
# there the squeeze often lands closer to the truth, which is why smoothing is said to "help
# calibration". For a model that would be calibrated anyway it only adds a known bias, which you can
# undo. With `pos_weight` as well the two shifts combine: the optimum is $p\,y' / (p\,y' + 1 - y')$
# (`bw.optimal_probability(y', p)`, lesson 01).

# %%
print("pos_weight=4, eps=0.1, hard label 1: optimum", sig4(float(bw.optimal_probability(1 - 0.1 / 2, 4.0))))

# %% [markdown]
# **Summary.** `label_smoothing=eps` gives every pixel a finite target logit $\operatorname{logit}(y')$, and
# turns a calibrated model's $q$ into $q(1 - \varepsilon) + \varepsilon/2$. Undo it with
# $(p - \varepsilon/2)/(1 - \varepsilon)$ when you need probabilities.
#
# ## 5 · Summary
#
# | you want to… | write | watch out for |
# |---|---|---|
# | drop void / unannotated pixels | `ignore=void` | a mean over labelled pixels: a sparsely labelled batch takes larger steps per pixel; a mask or an `ignore_index` that keeps void pixels in the denominator is the other design (same step per pixel) |
# | focus on hard pixels | `bw.focal_bce_with_logits(x, y, gamma=2)` | the outputs are no longer probabilities: only the 0.5 cut without `alpha` decides like a calibrated model; `alpha=0.25` cuts missed positives' share |
# | separate touching objects | `weight=unet_weight_map(labels).unsqueeze(1)` | instance labels, not a mask; compute once per image |
# | stop logits from growing without bound | `label_smoothing=0.1` | predictions squeezed toward 0.5 by $\varepsilon\,\lvert 1/2 - q\rvert$ |
#
# ## 6 · Exercises
#
# Each cell prints a question. Predict or compute your answer first (with the formula, the explorers above, or
# a few lines of PyTorch), then replace `None` with it and run the cell: a wrong answer gets a hint that says
# what it would mean. When you have tried, `show_solution("07.2")` prints the worked solution of exercise
# 07.2 (and likewise for the others).

# %%
from bceweights.lessons.exercises import (
    LESSON07_1_QUESTION,
    LESSON07_2_QUESTION,
    LESSON07_3_QUESTION,
    LESSON07_4_QUESTION,
    LESSON07_5_QUESTION,
    check_lesson07_1,
    check_lesson07_2,
    check_lesson07_3,
    check_lesson07_4,
    check_lesson07_5,
    print_questionnaire,
    show_solution,
)

# %% [markdown]
# **07.1** Focal loss: use the focal explorer above (it keeps running while you read this).

# %%
print(LESSON07_1_QUESTION)
my_gamma = None
_ = check_lesson07_1(my_gamma)

# %% [markdown]
# **07.2** Boundary weights: use the weight-map explorer.

# %%
print(LESSON07_2_QUESTION)
my_w0 = None
_ = check_lesson07_2(my_w0)

# %% [markdown]
# **07.3** Transfer, ignore regions: a batch of three images instead of section 1's two.

# %%
print(LESSON07_3_QUESTION)
my_fraction = None
_ = check_lesson07_3(my_fraction)

# %% [markdown]
# **07.4** Transfer, label smoothing: another `eps`, with a `pos_weight` as well.

# %%
print(LESSON07_4_QUESTION)
my_probability = None
_ = check_lesson07_4(my_probability)

# %% [markdown]
# **07.5** Concept, focal α: the second focal sample, whose missed positives are the hard pixels.

# %%
print(LESSON07_5_QUESTION)
my_choice = None
_ = check_lesson07_5(my_choice)

# %% [markdown]
# ## 7 · Questionnaire
#
# Short questions on the whole lesson. Answer each in a sentence or two, from memory first, then check
# with the cells above. When you have tried, `show_solution("07.Q")` prints the answers.

# %%
print_questionnaire("07")
