# %% [markdown]
# # Lesson 03 · Flattening, reduction and numerical stability
#
# Questions answered: Q5, Q10, Q12, Q16
#
# **Goal.** After this lesson you know that binary cross-entropy is one formula applied to every
# element, whatever the tensor's shape; what `reduction="mean"` divides by and how weights, image size
# and reduction change the size of a training step; how to pass a different weight on every call; and
# why the logits form is preferred to `sigmoid` followed by `BCELoss`.
#
# **How to read it.** Predict before each reveal. The two explorers (sections 2 and 4) are live in
# JupyterLab; on a static page you see their first frame and the snapshots after the check cells.

# %%
# %matplotlib widget

# %%
import math

import torch
import torch.nn.functional as F

import bceweights as bw
from bceweights.lessons.explore.reduction import ReductionExplorer
from bceweights.lessons.explore.stability import StabilityExplorer

# Small problems run faster on one thread, and then give the same numbers on every machine.
torch.set_num_threads(1)
torch.manual_seed(0)


def sig4(value: float) -> str:
    """A number with 4 significant digits, as every printed number in these lessons."""
    return f"{value:.4g}"


# %% [markdown]
# ## 1 · Q5: the loss has no notion of batch, channel or pixel
#
# The documentation speaks of "batch elements" and "classes", which suggests that some dimensions are
# treated specially. They are not: every element gets
# $\ell = -w\,[\,p\,y\log\sigma(x) + (1-y)\log(1-\sigma(x))\,]$, and `mean` divides the sum by the
# number of elements.
#
# **Predict:** take `(N, C, H, W)` logits with per-pixel weights and a per-channel `pos_weight`.
# Flatten everything to `(N, C·H·W)`, to one long vector, to `(N·C·H·W, 1)`. Do loss and gradients
# change?

# %%
generator = torch.Generator().manual_seed(3)
N, C, H, W = 4, 3, 8, 8
logits = torch.randn(N, C, H, W, generator=generator, dtype=torch.float64)
target = (torch.rand(N, C, H, W, generator=generator, dtype=torch.float64) < 0.3).double()
weight = torch.rand(N, C, H, W, generator=generator, dtype=torch.float64)
# The per-channel pos_weight at full size (a zero-copy view), so it can be reshaped with the rest.
pos_weight = torch.tensor([1.0, 30.0, 6.0], dtype=torch.float64).view(3, 1, 1).expand(N, C, H, W)


def loss_and_gradient(shape: tuple[int, ...]) -> tuple[float, torch.Tensor]:
    """Reshape logits, target, weight and pos_weight alike; loss, and the gradient back in (N, C, H, W)."""
    x = logits.reshape(shape).clone().requires_grad_(True)
    loss = F.binary_cross_entropy_with_logits(
        x, target.reshape(shape), weight=weight.reshape(shape), pos_weight=pos_weight.reshape(shape)
    )
    (gradient,) = torch.autograd.grad(loss, x)
    return float(loss.detach()), gradient.reshape(N, C, H, W)


reference_loss, reference_gradient = loss_and_gradient((N, C, H, W))
for name, shape in {"(N, C, H, W)": (N, C, H, W), "(N, C*H*W)": (N, C * H * W), "(N*C*H*W,)": (-1,),
                    "(N*C*H*W, 1)": (-1, 1), "(1, 1, N*C, H, W)": (1, 1, N * C, H, W)}.items():
    loss, gradient = loss_and_gradient(shape)
    gradient_difference = float((gradient - reference_gradient).abs().max())
    print(f"{name:<18} loss {sig4(loss)}   |loss - loss in (N, C, H, W)| = {sig4(abs(loss - reference_loss))}"
          f"   max |gradient - gradient in (N, C, H, W)| = {sig4(gradient_difference)}")

# %% [markdown]
# **Reveal.** Identical, loss and gradients to the last bit, as the zeros show: the loss is elementwise
# and `mean` divides by the same `N·C·H·W` whatever the shape. Only two things tie an element to "its"
# weight: the reshapes must keep the elements in the same order (reshape all tensors the same way), and
# a weight that relied on
# broadcasting must be expanded *before* flattening. Flatten the predictions but keep `pos_weight` as
# `(3, 1, 1)`, and it no longer lines up with the channels: right-aligned it would stretch the
# `(4, 192)` loss to `(3, 4, 192)`, which PyTorch refuses:

# %%
flat_logits, flat_target = logits.reshape(N, -1), target.reshape(N, -1)
per_channel = torch.tensor([1.0, 30.0, 6.0], dtype=torch.float64).view(3, 1, 1)
try:
    F.binary_cross_entropy_with_logits(flat_logits, flat_target, pos_weight=per_channel)
except RuntimeError as error:
    print("PyTorch   :", error)
try:
    bw.bce_with_logits(flat_logits, flat_target, pos_weight=per_channel)
except bw.WeightShapeError as error:
    print("bceweights:", str(error).splitlines()[0])
    print("           ", str(error).splitlines()[1])

# %% [markdown]
# The same holds for a 3-D volume: a `(1, 1, 60, 40, 40)` scan whose voxels are drawn foreground with
# probability 1/95, and a per-voxel weight that gives background voxels $1/r$, with $r$ = negatives /
# positives counted from this draw's target. (The forum thread behind Q9 describes "95 times more
# background pixels than foreground", that is $r = 95$ and a foreground share of 1/96, and gives
# background voxels 1/95, exactly $1/r$. A share of exactly 1/95, the rate drawn here, would give
# $r = 94$: "about one foreground voxel in 95" means $r$ between 94 and 95.) The volume, against the same tensors reshaped to `(96000, 1)`, a
# "batch" of 96 000 single predictions:

# %%
volume_logits = torch.randn(1, 1, 60, 40, 40, generator=generator, dtype=torch.float64)
volume_target = (torch.rand(1, 1, 60, 40, 40, generator=generator, dtype=torch.float64) < 1 / 95).double()
foreground = int(volume_target.sum())
ratio = (volume_target.numel() - foreground) / foreground  # negatives / positives, counted from the target
rebalance = torch.where(volume_target > 0, 1.0, 1.0 / ratio)  # background voxels count 1 / ratio
volume_x = volume_logits.clone().requires_grad_(True)
column_x = volume_logits.reshape(96000, 1).clone().requires_grad_(True)
as_volume = F.binary_cross_entropy_with_logits(volume_x, volume_target, weight=rebalance)
as_column = F.binary_cross_entropy_with_logits(
    column_x, volume_target.reshape(96000, 1), weight=rebalance.reshape(96000, 1)
)
(volume_gradient,) = torch.autograd.grad(as_volume, volume_x)
(column_gradient,) = torch.autograd.grad(as_column, column_x)
print(f"foreground voxels {foreground}, a share of {sig4(float(volume_target.mean()))}; "
      f"negatives / positives = {sig4(ratio)}")
print(f"loss (1, 1, 60, 40, 40): {sig4(float(as_volume.detach()))} "
      f"| (96000, 1): {sig4(float(as_column.detach()))} "
      f"| equal: {torch.equal(as_volume, as_column)} "
      f"| gradients equal: {torch.equal(volume_gradient.reshape(96000, 1), column_gradient)}")

# %% [markdown]
# Loss and gradients are equal to the last bit. This draw has 938 foreground voxels, a share of
# 0.009771, so the ratio counted from it is 101.3, not the 94 of an exact 1/95 share: a random draw of 96 000 voxels does not hit
# 1/95 exactly (this draw is unusually low: the expected count is 1010.5 with a standard deviation of about 31.6,
# so 938 is 2.3 standard deviations below it, and r lands within about ±3 % of 94 two times in three), which is why a weight is
# counted from the data and not from the rate you meant.
#
# > Two slips in the forum answer behind Q9 and Q10, which otherwise explains per-voxel weights well: its
# > "flattened" unweighted loss was
# > computed from the *unflattened* tensors, so that line just recomputed the unflattened loss; and it
# > flattened with the in-place `resize_`, which can reallocate and is not meant for this: use
# > `reshape` (or `view`). The conclusion holds, as the cells above show with every tensor reshaped.
# > The thread's question also quoted the documentation's "weight ... of size nbatch": in fact any
# > shape that broadcasts to the input's shape works (it may not enlarge it: PyTorch multiplies the
# > loss in place), per voxel included.
#
# ## 2 · Q16: what `reduction="mean"` divides by
#
# With per-element losses $\ell_i$ and weights $w_i$ over $n$ elements:
#
# | reduction | value | gradient on element $i$ |
# |---|---|---|
# | `"sum"` | $\sum_i w_i \ell_i$ | $w_i\,\ell_i'$ |
# | `"mean"` (PyTorch's default) | $\frac{1}{n}\sum_i w_i \ell_i$ | $\frac{w_i}{n}\,\ell_i'$ |
# | `"weighted_mean"` (`bceweights`) | $\frac{\sum_i w_i \ell_i}{\sum_i w_i}$ | $\frac{w_i}{\sum_j w_j}\,\ell_i'$ |
#
# `mean` divides by the **number of elements**, not by the sum of the weights. `nn.CrossEntropyLoss`
# with class weights does the other thing: it divides by the sum of the weights of the targets.
#
# **Predict:** 2 % of the elements are positive, with weight 49; the rest have weight 1. Is
# `reduction="mean"` an average of the per-element losses?

# %%
n = 5000
x = torch.randn(n, generator=generator, dtype=torch.float64)
y = (torch.rand(n, generator=generator, dtype=torch.float64) < 0.02).double()
w = 1.0 + 48.0 * y
per_element = F.binary_cross_entropy_with_logits(x, y, reduction="none")
weighted_sum = float((w * per_element).sum())

torch_mean = F.binary_cross_entropy_with_logits(x, y, weight=w)
bw_weighted_mean = bw.bce_with_logits(x, y, weight=w, reduction="weighted_mean")
# Cross-entropy over two logits [0, x] is the same per-element loss; its class weights are [1, 49].
two_class = torch.stack([torch.zeros_like(x), x], dim=1)
cross_entropy = F.cross_entropy(two_class, y.long(), weight=torch.tensor([1.0, 49.0], dtype=torch.float64))

print(f"sum of weights / n = {sig4(float(w.sum()) / n)}")
print(f"BCE, reduction='mean'       {sig4(float(torch_mean))}   = sum / n        = {sig4(weighted_sum / n)}")
print(f"bceweights 'weighted_mean'  {sig4(float(bw_weighted_mean))}   = sum / sum(w)   = {sig4(weighted_sum / float(w.sum()))}")
print(f"CrossEntropyLoss(weight=)   {sig4(float(cross_entropy))}   (divides by the sum of the targets' weights too)")

# %% [markdown]
# **Reveal.** `mean` is the weighted sum divided by `n`: it equals the true weighted average times the
# mean weight (here about 2). So the weights change the *scale* of the loss, and with it the scale of
# every gradient: with plain SGD, multiplying all weights by 10 is multiplying the learning rate by
# 10. (Adam normalises gradient scale away over time, which is why this often goes unnoticed.)
# `weighted_mean` is a true weighted average: rescaling all weights changes nothing.
#
# The explorer shows a whole image: a disk of foreground pixels (fraction `f`, weight `weight_fg`),
# background with weight `weight_bg`, and a fixed, mediocre model (logit −1 on the foreground, −2 on
# the background). The bars give the loss under each reduction (dashed: the unweighted mean) and the
# *gradient size* $\sum_i |\partial L/\partial x_i|$, the total push on the logits, labelled by its
# ratio to the unweighted mean's: the **effective learning-rate factor** of your weights and reduction.
#
# **Predict:** with `f = 0.02`, (1) set `weight_fg = 50`, `weight_bg = 1`; (2) divide both weights
# by 10; (3) double the image side. Which bars move each time, and by how much?

# %% tags=["nbval-ignore-output"]
reduction_explorer = ReductionExplorer()
reduction_explorer

# %%
reduction_explorer.set(foreground=0.02, weight_fg=50.0, weight_bg=1.0, side=64)
reduction_explorer.print_readouts(
    "weight_sum", "pixels", "loss_mean", "loss_sum", "loss_weighted_mean",
    "lr_factor_mean", "lr_factor_sum", "lr_factor_weighted_mean",
)

# %%
reduction_explorer.snapshot()

# %% [markdown]
# `loss_mean / loss_weighted_mean` is `weight_sum / pixels`, the mean weight. Now the same weights,
# ten times smaller (same ratio, 50 to 1):

# %%
reduction_explorer.set(weight_fg=5.0, weight_bg=0.1)
reduction_explorer.print_readouts(
    "loss_mean", "loss_sum", "loss_weighted_mean", "lr_factor_mean", "lr_factor_sum", "lr_factor_weighted_mean"
)

# %% [markdown]
# And the image twice as wide and high (four times the pixels), weights back to 50 and 1:

# %%
reduction_explorer.set(weight_fg=50.0, weight_bg=1.0, side=128)
reduction_explorer.print_readouts(
    "pixels", "loss_mean", "loss_sum", "loss_weighted_mean", "lr_factor_mean", "lr_factor_sum", "lr_factor_weighted_mean"
)

# %% [markdown]
# **Reveal.**
#
# * `mean` and `sum` scale with the weights: dividing the weights by 10 divided their loss (1.439 to
#   0.1439, 5894 to 589.4) and their learning-rate factor (6.456 to 0.6456, 2.644e+04 to 2644) by 10.
#   `weighted_mean` did not move (loss 0.7264, factor 3.259): it only sees the weights' *ratio*.
# * `sum` scales with the number of pixels: four times the pixels, four times the loss (5894 to
#   2.358e+04) and the step (factor 2.644e+04 to 1.058e+05). `mean` and `weighted_mean` do not care
#   about the image size at the same foreground share: loss 1.439 and 0.7264, factor 6.456 and 3.259, as at side 64.
# * `weighted_mean`'s factor is still not 1 but 3.259: it keeps the total weight at 1 but gives a larger
#   share of it to the foreground pixels, whose gradients are larger here ($|\sigma(-1) - 1| = 0.73$
#   against $\sigma(-2) = 0.12$). Weights redistribute the step under every reduction; `weighted_mean`
#   only takes away the dependence on the weights' overall scale and on the image size (at a fixed
#   foreground share).
#
# Practical consequence: adding weights, or changing their ratio, changes the step under any reduction
# (here a factor 3.259 even under `weighted_mean`, whereas training without weights gives 1), so retune
# the learning rate then. Under `mean`, rescaling the weights changes it too; under `sum`, rescaling
# them or a larger image. Use `weighted_mean` (or divide by the mean weight yourself) to keep the step
# comparable across those. A crop that changes the foreground share changes the step under every
# reduction, since the factor depends on that share.
#
# ## 3 · Q10: a different weight on every call
#
# **Predict:** `nn.BCELoss(weight=w)` stores `w` when the criterion is built. What happens when the
# next batch needs a different weight map, or has a different size?

# %%
probabilities = torch.sigmoid(torch.randn(4, 1, 6, 6, generator=generator))
labels = (torch.rand(4, 1, 6, 6, generator=generator) < 0.2).float()
batch_weight = torch.where(labels > 0, 5.0, 1.0)  # this batch's weight map, from its labels

criterion = torch.nn.BCELoss(weight=batch_weight)  # fixed at construction
try:
    criterion(probabilities, labels, weight=batch_weight)
except TypeError as error:
    print("TypeError:", error)
try:
    criterion(probabilities[:2], labels[:2])  # a smaller last batch
except RuntimeError as error:
    print("RuntimeError:", error)

per_call_functional = F.binary_cross_entropy(probabilities, labels, weight=batch_weight)
logits_q10 = torch.logit(probabilities)
per_call_logits = F.binary_cross_entropy_with_logits(logits_q10, labels, weight=batch_weight)
per_call_module = bw.BCEWithLogits()(logits_q10, labels, weight=batch_weight)
print("F.binary_cross_entropy(weight=)            ", sig4(float(per_call_functional)))
print("F.binary_cross_entropy_with_logits(weight=)", sig4(float(per_call_logits)))
print("bw.BCEWithLogits()(..., weight=)           ", sig4(float(per_call_module)))

# %% [markdown]
# **Reveal.** The modules of `torch.nn` take their weight in the constructor only; `forward` has no
# `weight` argument, and the stored tensor must broadcast against every later batch. The functional
# forms take a weight per call. On the forum, a learner believed PyTorch "only supports the same weight
# for all instances in a batch which has to be provided when the loss is declared/initialized"; that
# holds for the module, and the answer pointed to `binary_cross_entropy`, to which "you can pass in a
# batch of weights ... every time the loss is called". `bw.BCEWithLogits` is a
# module whose `forward` takes `weight=` per call, multiplied by any weight given at construction
# (lesson 02 used that for "per channel × this batch's mask"). Use the logits form, for the reason of
# the next section.
#
# ## 4 · Q12: why `BCEWithLogitsLoss` and not `sigmoid` + `BCELoss`
#
# Mathematically the two are one function. Numerically they are not. In float32 torch computes
# `sigmoid(x)` as $1/(1+e^{-x})$, and $1 + e^{-x}$ rounds to exactly 1 once $e^{-x}$ falls below
# $2^{-24}$, from $x = 24 \ln 2 \approx 16.64$: there `sigmoid(x)` is *exactly* 1.0 (the true $\sigma(x)$
# rounded to float32 would reach 1 only at $\ln(2^{25}-1) \approx 17.33$). float16 and bfloat16 are
# computed in float32 and then rounded, so there the true $\sigma(x)$ is rounded to the dtype
# (exercise 03.3). Then $\log(1-\sigma(x))$
# is $\log 0 = -\infty$; `BCELoss` clamps each log at $-100$. The logits form never builds
# $\sigma(x)$: it uses $\log\sigma(x) = -\mathrm{softplus}(-x)$, accurate for every $x$.
#
# **Predict:** a pixel with target 0 gets logit 20 (a confident, wrong prediction). In float32, what
# loss and gradient does `sigmoid` + `BCELoss` give? The exact values are 20 and 1. And in float16,
# at logit 10?

# %% tags=["nbval-ignore-output"]
stability = StabilityExplorer()
stability

# %%
stability.set(dtype="float32", target=0.0, logit=20.0)
stability.print_probe()
stability.print_readouts(
    "one_minus_sigmoid", "saturation_logit", "wrong_gradients_sigmoid_bce", "wrong_gradients_logits"
)
x32 = torch.tensor([16.63, 16.64], dtype=torch.float32)
print(f"24 ln 2 = {sig4(24 * math.log(2))}, ln(2**25 - 1) = {sig4(math.log(2**25 - 1))}; "
      f"float32 sigmoid(x) == 1 at x = 16.63, 16.64: {(torch.sigmoid(x32) == 1).tolist()}")

# %%
stability.snapshot()

# %% [markdown]
# **Reveal, float32.** `sigmoid(20)` rounded to 1, so `BCELoss` returned the clamp, 100, instead of
# 20, and a gradient of exactly **0**: the element is as wrong as it can be and contributes nothing to
# learning. The by-hand formula is worse: `inf` and `nan`. In the panels: the orange curve jumps to
# the clamp where the blue one keeps rising linearly, and its gradient drops from 1 to 0.
# `wrong_gradients_sigmoid_bce` is the share of the plotted logits (here −21 to 21) where that form's
# gradient is NaN, infinite, or more than 0.01 away from the exact $\sigma(x) - y$: 0.1049, the logits
# above the saturation point 16.64. `wrong_gradients_logits`, the same share for the logits form, is 0.
# Now half precision:

# %%
stability.set(dtype="float16", logit=10.0)
stability.print_probe()
stability.print_readouts("saturation_logit", "wrong_gradients_sigmoid_bce", "wrong_gradients_logits")

# %%
stability.snapshot()

# %% [markdown]
# **Reveal, float16.** `sigmoid` saturates already at 8.3, and the gradient of `sigmoid` + `BCELoss`
# is **NaN**: its backward divides by `max(p(1-p), 1e-12)`, and 1e-12 rounds to 0 in float16, so a
# saturated element gives `1/0 = inf` times sigmoid's zero slope, or `0/0`: NaN either way. The markers
# along the top edge show every logit where a form returns `inf` or `NaN`. At the other end, below
# about −17, `sigmoid` underflows to 0 in float16 and even a correctly confident background pixel gets
# `0/0 = NaN`: the left cluster of markers, and why the wrong share is much larger in float16 (0.3895;
# the logits form's is still 0). On a GPU, PyTorch refuses `F.binary_cross_entropy` under
# `torch.autocast` for this reason (lesson 11 quotes its message).
#
# ### Optional deep dive: a wrong gradient without saturation
#
# This part explains one more failure of `sigmoid` + `BCELoss`, down to PyTorch's backward formula;
# skip to the training demonstration below if you are short of time. Only the summary's line on
# $x \approx -27.6$, the logit −40 of exercise 03.4 and question 7 of the questionnaire come back to it.
#
# **Predict:** back in float32, a positive pixel (target 1) with logit −40, confidently wrong the other
# way. `sigmoid(-40)` is tiny but a normal float32, far from saturating. Are loss and gradient right?

# %%
stability.set(dtype="float32", target=1.0, logit=-40.0)
stability.print_probe()
stability.print_readouts("sigmoid", "wrong_gradients_sigmoid_bce", "wrong_gradients_logits")
print("\nsigmoid + BCELoss, float32, target 1 (exact: loss -x, d loss / d p = -1/p, gradient -1)")
for x in (-20.0, -27.0, -28.0, -30.0, -40.0, -60.0):
    one_logit = torch.tensor(x, requires_grad=True)
    probability = torch.sigmoid(one_logit)
    probability.retain_grad()
    F.binary_cross_entropy(probability, torch.tensor(1.0)).backward()
    p = float(probability.detach())
    print(f"  x = {x:<5g} p = {sig4(p):<9}  -1/p = {sig4(-1 / p):<10} "
          f"d loss / d p = {sig4(float(probability.grad)):<10} gradient = {sig4(float(one_logit.grad))}")

# %% [markdown]
# **Reveal.** The loss is right (40), but the gradient is −4.248e-06 instead of −1, and saturation is
# not the cause: `sigmoid(-40)` = 4.248e-18 is a normal float32, and its log, −40, is far above the
# clamp. The cause is the guard of the float16 case. `BCELoss`'s backward returns
# $\partial\ell/\partial p = (p - y)/\max(p(1-p), 10^{-12})$, and sigmoid's backward multiplies that
# by $p(1-p)$, about $p$ here. While $p(1-p) \ge 10^{-12}$ the two cancel and the gradient is
# $p - y \approx -1$ (at −20 and −27). Below $x = \log 10^{-12} \approx -27.6$ the guard wins:
# $\partial\ell/\partial p$ stays at −1e+12 instead of $-1/p$, and the gradient is
# $(p - 1)\,p(1-p)/10^{-12} \approx -e^{x} \cdot 10^{12}$, a factor $e$ smaller per unit of logit
# (−0.6914 at −28, −0.09358 at −30, −8.757e-15 at −60). In float32 that is every logit below about
# −27.6: the 0.3683 share of the plotted range −105 to 105 is about $(105 - 27.6)/210$. The logits
# form's share is again 0.
#
# ### Back to the main line: what a zero gradient does to training
#
# What a zero gradient means for training, on the saturated side of the first probe: one bias, every
# logit equal to it, targets 0, 100 SGD steps from a confidently wrong start.

# %%
def train_bias(form: str, steps: int = 100, learning_rate: float = 0.5) -> float:
    """SGD on one bias (the logit of 16 pixels with target 0), starting at 20; returns the final logit."""
    bias = torch.tensor(20.0, requires_grad=True)
    optimizer = torch.optim.SGD([bias], lr=learning_rate)
    targets = torch.zeros(16)
    for _ in range(steps):
        optimizer.zero_grad()
        pixel_logits = bias.expand(16)
        if form == "logits":
            loss = F.binary_cross_entropy_with_logits(pixel_logits, targets)
        else:
            loss = F.binary_cross_entropy(torch.sigmoid(pixel_logits), targets)
        loss.backward()
        optimizer.step()
    return bias.item()


print("logits form     : logit after 100 steps", sig4(train_bias("logits")))
print("sigmoid+BCELoss : logit after 100 steps", sig4(train_bias("sigmoid_bce")))

# %% [markdown]
# The logits form walks the bias down from 20 to below 0; `sigmoid` + `BCELoss` never moves it. And in
# half precision a saturated element turns every gradient of a layer into NaN, because a weight's
# gradient sums over all elements. Four samples through one float16 layer:

# %%
layer = torch.nn.Linear(2, 1).half()
with torch.no_grad():
    layer.weight.copy_(torch.tensor([[2.0, 1.0]]))
    layer.bias.zero_()
features = torch.tensor([[1.0, 2.0], [0.0, 1.0], [3.0, 3.0], [5.0, 4.0]]).half()
labels_half = torch.tensor([[0.0], [1.0], [1.0], [0.0]]).half()  # the last two: logits 9 and 14
layer_logits = layer(features)
F.binary_cross_entropy(torch.sigmoid(layer_logits), labels_half).backward()
print("logits:", [sig4(v) for v in layer_logits.detach().flatten().tolist()])
print("sigmoid rounds to 1 (saturated):", (torch.sigmoid(layer_logits) == 1).flatten().tolist())
# Each element on its own: the gradient of sigmoid + BCELoss with respect to its logit.
for index in range(4):
    one_logit = layer_logits.detach()[index].clone().requires_grad_(True)
    F.binary_cross_entropy(torch.sigmoid(one_logit), labels_half[index]).backward()
    print(f"  element {index}: logit {sig4(float(one_logit.detach()))}, target {sig4(float(labels_half[index]))}, "
          f"gradient {sig4(float(one_logit.grad))}")
print("sigmoid + BCELoss, weight gradient:", layer.weight.grad.tolist())
layer.zero_grad()
F.binary_cross_entropy_with_logits(layer(features), labels_half).backward()
print("logits form,       weight gradient:", [sig4(v) for v in layer.weight.grad.flatten().tolist()])

# %% [markdown]
# Two of the four logits, 9 and 14, lie above float16's saturation point 8.3, so two elements
# saturate: `sigmoid` returns exactly 1 for both. Each one's own gradient is NaN (target 1 gives
# `0/0`, target 0 gives `inf · 0`), and either one alone would be enough: the weight gradient adds up
# all four elements, and one NaN in a sum makes the sum NaN. The logits form gives finite gradients
# for the same layer.
#
# ## 5 · Summary
#
# * Binary cross-entropy is elementwise: `(N, C, H, W)`, `(N, C·H·W)`, a flat vector and a
#   `(96000, 1)` column give the same loss and gradients, as long as weights are reshaped alongside
#   (expand broadcast weights first) (Q5).
# * `reduction="mean"` divides by the number of elements, not by the sum of the weights, so the weights'
#   scale is a learning-rate factor; `sum` also scales with the image size; `weighted_mean` divides by
#   the sum of the weights, so rescaling them, or a larger image with the same foreground share, keeps
#   the step; a new weight ratio or foreground share still needs the learning rate retuned (Q16).
# * `nn.BCELoss(weight=...)` fixes the weight at construction (you could reassign `criterion.weight` before every
#   call; the functional form is simpler); pass it per call to
#   `F.binary_cross_entropy`, `F.binary_cross_entropy_with_logits` or `bw.BCEWithLogits` (Q10).
# * `sigmoid` + `BCELoss` gets $\sigma(x) = 1$ exactly beyond $x \approx 16.6$ (float32) or 8.3 (float16):
#   the loss sticks at the clamp (100), the gradient becomes 0 or NaN. In float32, below
#   $x \approx -27.6$ its backward's $10^{-12}$ guard shrinks a positive pixel's gradient towards 0
#   although the loss is right (down to $x \approx -100$, where the loss meets the clamp). The logits form's gradient was within 0.01 of $\sigma(x) - y$ at every plotted logit of
#   every check above (`wrong_gradients_logits = 0`); use it (Q12).
#
# ## 6 · Exercises
#
# Each cell prints a question. Predict or compute your answer first (with the formula, the explorers above, or
# a few lines of PyTorch), then replace `None` with it and run the cell: a wrong answer gets a hint that says
# what it would mean. When you have tried, `show_solution("03.2")` prints the worked solution of exercise
# 03.2 (and likewise for the others).

# %%
from bceweights.lessons.exercises import (
    LESSON03_1_QUESTION,
    LESSON03_2_QUESTION,
    LESSON03_3_QUESTION,
    LESSON03_4_QUESTION,
    check_lesson03_1,
    check_lesson03_2,
    check_lesson03_3,
    check_lesson03_4,
    print_questionnaire,
    show_solution,
)

# %% [markdown]
# **03.1** Transfer: other weights than section 2's. Use the formula, or the reduction explorer's sliders and readouts.

# %%
print(LESSON03_1_QUESTION)
my_factor = None
_ = check_lesson03_1(my_factor)

# %% [markdown]
# **03.2** Transfer: section 1 flattened everything; here write the per-channel `pos_weight` for flattened logits yourself.

# %%
print(LESSON03_2_QUESTION)
my_flat_pos_weight = None
_ = check_lesson03_2(my_flat_pos_weight)

# %% [markdown]
# **03.3** Transfer: section 4 measured float32 and float16; now the third training dtype.

# %%
print(LESSON03_3_QUESTION)
my_logit = None
_ = check_lesson03_3(my_logit)

# %% [markdown]
# **03.4** A repair: section 4's failure in a float16 model. Write the function; the checker runs it, with its backward, on logits on both sides of the saturation points.

# %%
print(LESSON03_4_QUESTION)
my_loss = None
_ = check_lesson03_4(my_loss)

# %% [markdown]
# ## 7 · Questionnaire
#
# Short questions on the whole lesson. Answer each in a sentence or two, from memory first, then check
# with the cells above. When you have tried, `show_solution("03.Q")` prints the answers.

# %%
print_questionnaire("03")
