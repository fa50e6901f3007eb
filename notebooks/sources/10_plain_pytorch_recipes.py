# %% [markdown]
# # Lesson 10 · Appendix: every recipe in plain PyTorch
#
# Questions answered: Q24
#
# **Goal.** After this appendix you can do each thing the lessons do with `bceweights` using PyTorch
# alone, with nothing to install: a per-channel `pos_weight`, a mask as `weight`, ignore regions, the
# weighted mean, a different weight on every call, and class weights from counts (checked against
# scikit-learn). You also know the traps the recipes do not protect you from: a `(N, H, W)` mask when
# `N == C` or `N = 1`, an ignore mean on a batch that is all void, a per-batch weight stored in a
# module's `state_dict`, and a `pos_weight` computed per batch; and one alternative to weighting,
# resampling.
#
# **How to read it.** Each recipe is one cell: the plain-PyTorch line, the `bceweights` call it replaces,
# and a check that they agree (`torch.allclose`). Before each trap, predict what the cell will print.
# About 25 minutes with the exercises; it runs in a few seconds.

# %%
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.utils.class_weight import compute_class_weight
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

import bceweights as bw

# Small problems run faster on one thread, and one thread gives reproducible numbers on this machine.
torch.set_num_threads(1)
torch.manual_seed(0)


def sig4(value: float) -> str:
    """A number with 4 significant digits, as every printed number in these lessons."""
    return f"{value:.4g}"


def agree(plain: torch.Tensor, with_bw: torch.Tensor) -> str:
    """The two values, rounded, and whether they agree (torch.allclose)."""
    plain, with_bw = plain.detach(), with_bw.detach()
    return f"plain {sig4(float(plain))} | bceweights {sig4(float(with_bw))} | agree: {torch.allclose(plain, with_bw)}"


generator = torch.Generator().manual_seed(9)
N, C, H, W = 2, 3, 8, 10
logits = torch.randn(N, C, H, W, generator=generator)
target = (torch.rand(N, C, H, W, generator=generator) < 0.2).float()
mask = (torch.rand(N, H, W, generator=generator) < 0.7).float()  # (N, H, W): which pixels count

# %% [markdown]
# ## 1 · Per-channel `pos_weight` (lessons 02 and 04)
#
# PyTorch lines `pos_weight` up with the input's **trailing** dimensions, so one value per channel of
# `(N, C, H, W)` needs two trailing 1s: `pos_weight.view(C, 1, 1)`. `bceweights` takes the `(C,)` vector
# with `channel_dim=1`.

# %%
pos_weight = torch.tensor([1.0, 30.0, 6.0])
plain = F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight.view(C, 1, 1))
module = nn.BCEWithLogitsLoss(pos_weight=pos_weight.view(C, 1, 1))(logits, target)
with_bw = bw.bce_with_logits(logits, target, pos_weight=pos_weight, channel_dim=1)
print("F, pos_weight.view(C, 1, 1)         :", agree(plain, with_bw))
print("nn.BCEWithLogitsLoss, same pos_weight:", agree(module, with_bw))

# %% [markdown]
# ## 2 · A mask as `weight` (lessons 01 and 02)
#
# A `(N, H, W)` mask needs its channel dimension, `mask.unsqueeze(1)`, shape `(N, 1, H, W)`, which
# broadcasts over the channels; `.expand_as(logits)` gives the full shape as a zero-copy view.

# %%
plain = F.binary_cross_entropy_with_logits(logits, target, weight=mask.unsqueeze(1))
expanded = mask.unsqueeze(1).expand_as(logits)
plain_expanded = F.binary_cross_entropy_with_logits(logits, target, weight=expanded)
with_bw = bw.bce_with_logits(logits, target, weight=bw.expand_mask(mask, logits))
print("weight=mask.unsqueeze(1)            :", agree(plain, with_bw))
print("weight=mask.unsqueeze(1).expand_as(logits):", agree(plain_expanded, with_bw),
      "| stride", expanded.stride(), "| shares the mask's memory:", expanded.data_ptr() == mask.data_ptr())

# %% [markdown]
# ### The trap: `weight=mask` when `N == C`, or when `N = 1`
#
# **Predict.** With 3 images of 3 channels, what does PyTorch do with `weight=mask` for a `(3, H, W)`
# mask? And with a single image, a `(1, H, W)` mask?

# %%
square_logits = torch.randn(3, 3, H, W, generator=generator)  # N == C == 3
square_target = (torch.rand(3, 3, H, W, generator=generator) < 0.2).float()
square_mask = (torch.rand(3, H, W, generator=generator) < 0.7).float()
silent = F.binary_cross_entropy_with_logits(square_logits, square_target, weight=square_mask)
meant = F.binary_cross_entropy_with_logits(square_logits, square_target, weight=square_mask.unsqueeze(1))
print(f"N == C: weight=mask runs: {sig4(float(silent))}; weight=mask.unsqueeze(1): {sig4(float(meant))}; "
      f"equal: {torch.allclose(silent, meant)}")
wrong_pixels = square_mask.expand(3, 3, H, W) != square_mask.unsqueeze(1).expand(3, 3, H, W)
print(f"        elements whose weight is wrong: {int(wrong_pixels.sum())} of {wrong_pixels.numel()}")
try:
    bw.bce_with_logits(square_logits, square_target, weight=square_mask)
except bw.WeightShapeError as error:
    print("bceweights refuses:", str(error).splitlines()[0])

one_logits, one_target, one_mask = square_logits[:1], square_target[:1], square_mask[:1]  # N = 1
by_luck = F.binary_cross_entropy_with_logits(one_logits, one_target, weight=one_mask)
right = F.binary_cross_entropy_with_logits(one_logits, one_target, weight=one_mask.unsqueeze(1))
print(f"N = 1: weight=mask gives {sig4(float(by_luck))}, the right value {sig4(float(right))}: "
      f"equal {torch.allclose(by_luck, right)}")
try:
    F.binary_cross_entropy_with_logits(square_logits[:2], square_target[:2], weight=square_mask[:2])
except RuntimeError as error:
    print("N = 2: RuntimeError:", error)

# %% [markdown]
# **Reveal.** Right-aligned, `(N, H, W)` meets `(C, H, W)`. When `N == C` the sizes match and PyTorch
# runs: channel `c` of *every* image gets image `c`'s mask, so 184 of the 720 weights are wrong. The mean
# hardly moves (0.5706 against 0.5703) only because everything here is random: one image's mask picks
# pixels as typical as another's. On real masks, drawn where the objects are, the wrong weights land on
# the wrong pixels, and the loss and its gradient follow them. When `N = 1` the mask's size 1 broadcasts
# over the channels and the value is right by accident, so a test on one image passes; later the first
# batch with `1 < N ≠ C` raises, and one with `N == C` goes silently wrong. Always write `mask.unsqueeze(1)`.
#
# ## 3 · Ignore regions (lesson 07)
#
# Pixels with no label (void, 255) must add nothing and leave the mean's denominator. In plain PyTorch:
# replace the void targets by any valid value, take `reduction="none"`, zero the void pixels and divide
# by the number of **kept** pixels, `keep.sum()`, not by all pixels; `.clamp_min(1)` on the count keeps
# a batch with no kept pixel at 0 instead of 0 / 0 (shown after the next cell).

# %%
labels = (torch.rand(N, 1, H, W, generator=generator) < 0.3).float()
one_channel = logits[:, :1].clone()
void = torch.zeros(N, 1, H, W, dtype=torch.bool)
void[0, :, :2] = True  # top 2 rows of image 0 unannotated
void[1, :, :5] = True  # top 5 rows of image 1
labels[void] = 255.0
keep = (~void).float()

leaf = one_channel.clone().requires_grad_(True)
per_pixel = F.binary_cross_entropy_with_logits(leaf, labels.masked_fill(void, 0.0), reduction="none")
plain = (per_pixel * keep).sum() / keep.sum().clamp_min(1)
plain.backward()
plain_indexed = per_pixel[~void].sum() / keep.sum().clamp_min(1)  # the same: boolean indexing keeps the kept pixels only
with_bw = bw.bce_with_logits(one_channel, labels, ignore=void)
print("(l * keep).sum() / keep.sum().clamp_min(1):", agree(plain, with_bw))
print("l[~void].sum() / keep.sum().clamp_min(1)  :", agree(plain_indexed, with_bw))
print("gradient on void pixels, largest |value|:", float(leaf.grad[void].abs().max()))
trap = (per_pixel * keep).mean().detach()
print(f"(l * keep).mean(), the trap: {sig4(float(trap))}; kept share {sig4(float(keep.mean()))} x the ignore mean: "
      f"{torch.allclose(trap, keep.mean() * with_bw)}")

# %% [markdown]
# `(l * keep).mean()` keeps the void pixels in the denominator: its gradient is the ignore mean's times the
# annotated share of the batch, which changes from batch to batch (lesson 07, section 1).
#
# **Predict.** A batch in which every pixel is void (an image not annotated at all, or a crop of an
# unannotated region). What do `(l * keep).sum() / keep.sum()` and `l[~void].mean()` return, without the
# clamp?

# %%
all_void = torch.ones(N, 1, H, W, dtype=torch.bool)
none_kept = (~all_void).float()
leaf = one_channel.clone().requires_grad_(True)
per_pixel = F.binary_cross_entropy_with_logits(leaf, labels.masked_fill(all_void, 0.0), reduction="none")
forms = {
    "(l * keep).sum() / keep.sum()": (per_pixel * none_kept).sum() / none_kept.sum(),
    "l[~void].mean()": per_pixel[~all_void].mean(),
    "(l * keep).sum() / keep.sum().clamp_min(1)": (per_pixel * none_kept).sum() / none_kept.sum().clamp_min(1),
    "bw.bce_with_logits(..., ignore=void)": bw.bce_with_logits(leaf, labels.masked_fill(all_void, 255.0), ignore=all_void),
}
for name, value in forms.items():
    (gradient,) = torch.autograd.grad(value, leaf, retain_graph=True)
    print(f"{name:<44} {float(value.detach()):<6g} gradient finite: {bool(torch.isfinite(gradient).all())}")

# %% [markdown]
# **Reveal.** Both unclamped forms return NaN: 0 / 0, and `mean()` of an empty selection. The first
# one's gradient is NaN as well: backward spreads it into every weight's gradient, and one optimizer step
# with it ruins the model. The second's gradient happens to be 0 (an empty selection passes nothing
# back), but its NaN value still poisons whatever it is added to: another loss term, the epoch's logged
# mean. With `.clamp_min(1)` the count is at least 1 and the sum is 0, so the loss is 0 with a zero
# gradient: the batch teaches nothing, which is right. `bw.bce_with_logits(..., ignore=void)` does the
# same. When some pixel is kept, the count is already at least 1 and the clamp changes nothing.
#
# ## 4 · The weighted mean (lesson 03, Q16)
#
# `reduction="mean"` divides the weighted sum by the number of elements. The weighted mean divides by the
# sum of the weights: `reduction="none"`, then `(l * w).sum() / w.sum()`. Guard the division: the weight
# below contains the mask, so a batch in which every pixel is masked has `w.sum() == 0`, and 0 / 0 is NaN.
# Divide by `torch.where(w_sum > 0, w_sum, torch.ones_like(w_sum))` instead. `.clamp_min(1)`, right for
# the kept *count* of section 3, is wrong here: soft weights can sum to less than 1 on a batch that does
# keep pixels, and the clamp would then shrink the mean.

# %%
weight = torch.where(target > 0, 5.0, 1.0) * mask.unsqueeze(1)  # a weight map: positives x5, masked pixels 0
l = F.binary_cross_entropy_with_logits(logits, target, reduction="none")


def guarded_weighted_mean(l: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """(l * w).sum() / w.sum(), and 0 when every weight is 0 (the division by 1 keeps the gradient finite)."""
    w_sum = w.sum()
    return (l * w).sum() / torch.where(w_sum > 0, w_sum, torch.ones_like(w_sum))


plain = guarded_weighted_mean(l, weight)
with_bw = bw.bce_with_logits(logits, target, weight=weight, reduction="weighted_mean")
torch_mean = F.binary_cross_entropy_with_logits(logits, target, weight=weight)
print("(l * w).sum() / w.sum(), guarded:", agree(plain, with_bw))
print(f"PyTorch's 'mean' {sig4(float(torch_mean))} = weighted mean x mean weight "
      f"{sig4(float(weight.mean()))}: {torch.allclose(torch_mean, plain * weight.mean())}")

no_weight = torch.zeros_like(weight)  # an all-masked batch: every weight is 0
print(f"every weight 0: (l * w).sum() / w.sum() {float((l * no_weight).sum() / no_weight.sum())}; guarded "
      f"{float(guarded_weighted_mean(l, no_weight))}; bceweights "
      f"{float(bw.bce_with_logits(logits, target, weight=no_weight, reduction='weighted_mean'))}")
soft = torch.full_like(weight, 0.001)  # soft weights that sum to less than 1
print(f"weights 0.001 each (sum {sig4(float(soft.sum()))}): with .clamp_min(1) "
      f"{sig4(float((l * soft).sum() / soft.sum().clamp_min(1)))}; the weighted mean (guarded) "
      f"{sig4(float(guarded_weighted_mean(l, soft)))}")

# %% [markdown]
# On a batch whose weights are all 0, the plain ratio is NaN, while the guarded one and `bceweights` give
# 0. With weights of 0.001 each (sum 0.48) `.clamp_min(1)` divides by 1 instead of 0.48
# and returns 0.3935, not the weighted mean 0.8198.
#
# ## 5 · A different weight on every call (lesson 03, Q10)
#
# `nn.BCEWithLogitsLoss(weight=w)` fixes `w` at construction, and `forward` takes no weight. Two plain
# ways: the functional form with `weight=` on every call, or the module with its `weight` buffer replaced
# before each call. `weight` (and `pos_weight`) are registered buffers, even when built as `None`, so
# assigning a tensor updates the buffer: it moves with `.to(device)`, and it is saved in `state_dict`,
# which is a trap rather than a benefit (after the next cell).

# %%
criterion = nn.BCEWithLogitsLoss()
print("criterion.weight is None:", criterion.weight is None, "| registered as a buffer:", "weight" in criterion._buffers)
module_bw = bw.BCEWithLogits()
for batch_size in (2, 3):  # two batches of different sizes, each with its own weight map
    batch_logits = torch.randn(batch_size, 1, H, W, generator=generator)
    batch_target = (torch.rand(batch_size, 1, H, W, generator=generator) < 0.2).float()
    batch_weight = torch.where(batch_target > 0, 4.0, 1.0)
    functional = F.binary_cross_entropy_with_logits(batch_logits, batch_target, weight=batch_weight)
    criterion.weight = batch_weight  # the buffer trick: replace the stored weight before the call
    with_buffer = criterion(batch_logits, batch_target)
    with_bw = module_bw(batch_logits, batch_target, weight=batch_weight)
    print(f"batch of {batch_size}: functional {agree(functional, with_bw)} | criterion.weight = w: "
          f"{sig4(float(with_buffer))}, agree: {torch.allclose(with_buffer, with_bw)}")
print("'weight' in state_dict:", "weight" in criterion.state_dict())

# %% [markdown]
# The buffer keeps the last weight: a call that forgets to set it uses the previous batch's map (an
# error if the sizes differ, a silently wrong loss if they match). The functional form cannot forget.
#
# **Predict.** A model keeps its criterion as a submodule, as many training scripts do, and the buffer
# trick sets `criterion.weight` on each batch. You save `model.state_dict()` and load it into a freshly
# built model. What happens, and what did the checkpoint store?

# %%
class Segmenter(nn.Module):
    """A one-layer model that keeps its loss as a submodule (as many training scripts do)."""

    def __init__(self):
        super().__init__()
        self.head = nn.Conv2d(1, 1, 3, padding=1)
        self.criterion = nn.BCEWithLogitsLoss()  # weight is None when the model is built


model = Segmenter()
print("keys of a freshly built model:", list(model.state_dict()))
batch_generator = torch.Generator().manual_seed(59)  # its own generator: the later sections draw as before
for batch_size in (2, 3):  # two training batches, the buffer trick on each
    batch_images = torch.randn(batch_size, 1, H, W, generator=batch_generator)
    batch_target = (torch.rand(batch_size, 1, H, W, generator=batch_generator) < 0.2).float()
    model.criterion.weight = torch.where(batch_target > 0, 4.0, 1.0)
    model.criterion(model.head(batch_images), batch_target).backward()
checkpoint = model.state_dict()
print("keys of the checkpoint       :", list(checkpoint))
print("criterion.weight in the checkpoint: shape", tuple(checkpoint["criterion.weight"].shape),
      "| equal to the last batch's map:",
      torch.equal(checkpoint["criterion.weight"], torch.where(batch_target > 0, 4.0, 1.0)))  # recomputed from its target
try:
    Segmenter().load_state_dict(checkpoint)
except RuntimeError as error:
    print("loading into a fresh model -> RuntimeError:", " ".join(str(error).split()))

# %% [markdown]
# **Reveal.** The fresh model has no `criterion.weight` entry (a buffer that is `None` is not saved), the
# trained one has, so a strict `load_state_dict` refuses the checkpoint with "Unexpected key(s)". And what
# it stored is no class weight: it is the last batch's `(3, 1, 8, 10)` weight map, which means nothing for
# the next run. `load_state_dict(..., strict=False)` passes by dropping the entry, which hides the symptom
# and would also hide a key you do need.
# Keep per-batch weights out of modules: the functional form, or `bw.BCEWithLogits`, whose `weight=` per
# call is not stored. A weight that belongs to the model (a per-channel `pos_weight` fixed for the whole
# run) is the one thing a buffer should hold.
#
# ## 6 · Class weights from counts (lesson 04, Q6), checked against scikit-learn
#
# For single-label targets, "balanced" class weights are `n_samples / (n_classes * count)`: every class's
# weighted count becomes `n_samples / n_classes`. scikit-learn's `compute_class_weight("balanced", ...)`
# is the reference. For BCE's channels, the counterpart is `pos_weight = neg / pos` per channel, but only
# up to a factor. The balanced weights of a channel of `n` elements, `n / (2 pos)` on positives and
# `n / (2 neg)` on negatives, are `n / (2 neg)` times `(neg / pos, 1)`. So the balanced loss and its
# gradient are the `pos_weight` loss times `n / (2 neg)`: the same optimum for each channel's logits,
# but not the same effective learning rate (with `pos_weight` it is `2 neg / n` times larger, close to 2
# when positives are rare). The factor differs by channel (nearly equal here), so a network shared by
# the channels also sees the channels re-weighted against each other.

# %%
class_labels = torch.multinomial(torch.tensor([0.7, 0.2, 0.08, 0.02]), 4000, replacement=True, generator=generator)
counts = torch.bincount(class_labels, minlength=4).double()
plain = counts.sum() / (4 * counts)
reference = compute_class_weight("balanced", classes=np.arange(4), y=class_labels.numpy())
with_bw = bw.balanced_weights(counts).double()
print("counts             :", counts.long().tolist())
print("plain n / (K count):", [sig4(v) for v in plain.tolist()])
print("scikit-learn       :", [sig4(v) for v in reference.tolist()])
print("agree: plain vs sklearn", np.allclose(plain.numpy(), reference), "| bceweights vs sklearn", np.allclose(with_bw.numpy(), reference))

n = target[:, 0].numel()  # elements per channel
positives = target.sum(dim=(0, 2, 3))  # per channel of (N, C, H, W)
negatives = n - positives
plain_pos_weight = negatives / positives
bw_pos_weight = bw.pos_weight_from_targets(target, channel_dim=1)
print("pos_weight = neg / pos per channel: plain", [sig4(v) for v in plain_pos_weight.tolist()],
      "| bceweights", [sig4(v) for v in bw_pos_weight.tolist()],
      "| agree:", torch.allclose(plain_pos_weight, bw_pos_weight))

factor = (n / (2 * negatives)).view(C, 1, 1)
balanced = torch.where(target > 0, (n / (2 * positives)).view(C, 1, 1), factor)  # n / (2 count) per element
with_weights = F.binary_cross_entropy_with_logits(logits, target, weight=balanced, reduction="none")
with_ratio = F.binary_cross_entropy_with_logits(
    logits, target, pos_weight=plain_pos_weight.view(C, 1, 1), reduction="none"
)
print("factor n / (2 neg) per channel:", [sig4(v) for v in factor.flatten().tolist()],
      "| balanced loss = factor x pos_weight loss:", torch.allclose(with_weights, factor * with_ratio))

# %% [markdown]
# ## 7 · Per-batch ratios versus the data set's ratio
#
# **Predict.** A data set of 64 small masks, a quarter of which hold one small object, read in batches
# of 4. If you compute `neg / pos` on each batch, how far apart are the smallest and largest values?

# %%
rare = torch.zeros(64, 1, 16, 16)
for index in range(64):
    if float(torch.rand(1, generator=generator)) < 0.25:  # a quarter of the images hold one small object
        row, col = (int(v) for v in torch.randint(0, 13, (2,), generator=generator))
        rare[index, 0, row : row + 3, col : col + 2] = 1.0
loader = DataLoader(TensorDataset(rare), batch_size=4)
per_batch = []
positive_count, pixel_count = 0.0, 0
for (batch,) in loader:
    pos = float(batch.sum())
    per_batch.append((batch.numel() - pos) / pos if pos > 0 else float("inf"))
    positive_count += pos
    pixel_count += batch.numel()
dataset_ratio = (pixel_count - positive_count) / positive_count
print("neg/pos per batch:", [sig4(r) for r in per_batch])
print(f"over the data set, counted first: {sig4(dataset_ratio)}; bw.pos_weight_from_targets(loader): "
      f"{sig4(float(bw.pos_weight_from_targets(((b,) for (b,) in loader), channel_dim=1)[0]))}")
finite = [r for r in per_batch if r != float("inf")]
print(f"batches without a positive: {len(per_batch) - len(finite)} of {len(per_batch)}; finite ratios from "
      f"{sig4(min(finite))} to {sig4(max(finite))}; their mean {sig4(sum(finite) / len(finite))}")

# %% [markdown]
# **Reveal.** Per batch, the ratio jumps from batch to batch, and it is infinite whenever a batch has no
# positive; the mean of per-batch ratios is not the data set's ratio either (a ratio of
# sums is not a mean of ratios). Here (with this draw) the data set's 209.1 is above every finite batch
# ratio, because the batches without a positive add only negatives; with another draw it can fall
# inside their range. Either way no batch's ratio is the data set's. Count positives and pixels over the whole
# data set once, before training, and divide once: that is what `bw.pos_weight_from_targets(loader)` does
# without holding the data in memory.
#
# ## 8 · Resampling instead of weighting
#
# Instead of weighting the rare class, you can draw it more often: `WeightedRandomSampler` draws sample
# `i` with probability proportional to `w_i`. With `w_i = 1 / count[y_i]`, each class is drawn equally
# often. **Predict:** how does the average sampled-batch loss compare with the weighted mean with the
# same `w_i`?

# %%
sample_labels = (torch.rand(2000, generator=generator) < 0.05).float()
sample_logits = torch.randn(2000, generator=generator)
class_count = torch.bincount(sample_labels.long(), minlength=2).double()
sample_weight = 1.0 / class_count[sample_labels.long()]  # (2000,): 1 / (its class's count)
sampler = WeightedRandomSampler(sample_weight, num_samples=20000, replacement=True, generator=torch.Generator().manual_seed(0))
drawn = torch.tensor(list(sampler))
per_sample = F.binary_cross_entropy_with_logits(sample_logits, sample_labels, reduction="none")
sampled_mean = per_sample[drawn].mean()
weighted_mean = (per_sample * sample_weight).sum() / sample_weight.sum()
pos_weight_mean = bw.bce_with_logits(
    sample_logits, sample_labels, pos_weight=float(class_count[0] / class_count[1]), reduction="sum"
) / (2 * class_count[0])
print(f"positives: {sig4(float(sample_labels.mean()))} of the data, {float(sample_labels[drawn].mean()):.2f} of the draws")
print(f"mean loss over the draws {float(sampled_mean):.3f} | weighted mean with the same w {float(weighted_mean):.3f} | "
      f"within 2 %: {abs(float(sampled_mean / weighted_mean) - 1) < 0.02}")
print(f"pos_weight = neg/pos, sum / (2 neg): {float(pos_weight_mean):.3f}; equal to the weighted mean: "
      f"{torch.allclose(pos_weight_mean.double(), weighted_mean)}")
positive_draws = int(sample_labels[drawn].sum())
per_positive = positive_draws / float(class_count[1])
per_negative = (len(drawn) - positive_draws) / float(class_count[0])
print(f"draws per positive sample: {per_positive:.1f}; per negative sample: {per_negative:.1f}; "
      f"ratio {per_positive / per_negative:.1f}")

# %% [markdown]
# **Reveal.** On average, a balanced sampler trains on the same loss as weighting with `1 / count`, which
# is `pos_weight = neg / pos` up to a constant, so it has the same optimum as `pos_weight = neg / pos`:
# the unweighted optimum's logit plus `log(neg / pos)` (lesson 01).
# What differs is how the batches get there: over these 20 000 draws (ten passes' worth) the sampler shows
# each positive 18.5 times as often as each negative: the same few positives over and over, with a
# risk of overfitting them, while weighting shows every sample once per epoch and puts the rare class's
# weight into larger gradients. Resampling keeps every loss term at weight 1, which helps with optimisers and losses
# that dislike large weights; weighting keeps every sample in every epoch. Either way, undo the shift
# (or pick the threshold on validation data) before reading probabilities.
#
# ## 9 · Summary
#
# | what | plain PyTorch | `bceweights` |
# |---|---|---|
# | per-channel `pos_weight` | `pos_weight=pw.view(C, 1, 1)` | `pos_weight=pw, channel_dim=1` |
# | a `(N, H, W)` mask | `weight=mask.unsqueeze(1)` (or `.expand_as(logits)`); never `weight=mask` | `weight=bw.expand_mask(mask, logits)` |
# | ignore regions | `l = F.binary_cross_entropy_with_logits(x, y.masked_fill(void, 0), reduction="none")`; `(l * keep).sum() / keep.sum().clamp_min(1)` | `ignore=void` |
# | weighted mean | `w_sum = w.sum()`; `(l * w).sum() / torch.where(w_sum > 0, w_sum, torch.ones_like(w_sum))` (not `.clamp_min(1)`, which is right only for counts) | `reduction="weighted_mean"` |
# | a weight per call | `F.binary_cross_entropy_with_logits(..., weight=w)` (`criterion.weight = w` works, but lands in `state_dict`) | `bw.BCEWithLogits()(x, y, weight=w)` |
# | class weights | `counts.sum() / (K * counts)` (= sklearn's `"balanced"`); `neg / pos` per channel (balanced up to `n / (2 neg)`) | `bw.balanced_weights`, `bw.pos_weight_from_targets` |
#
# Count over the data set, not per batch; resampling with `1 / count` is weighting in expectation.
#
# ## 10 · Exercises
#
# Each cell prints a question. Predict or compute your answer first (a few lines of PyTorch are enough),
# then replace `None` with it and run the cell: a wrong answer gets a hint that says what it would mean.
# When you have tried, `show_solution("10.1")` prints the worked solution of exercise 10.1 (and likewise
# for the others).

# %%
from bceweights.lessons.exercises import (
    LESSON10_1_QUESTION,
    LESSON10_2_QUESTION,
    LESSON10_3_QUESTION,
    LESSON10_4_QUESTION,
    LESSON10_5_QUESTION,
    check_lesson10_1,
    check_lesson10_2,
    check_lesson10_3,
    check_lesson10_4,
    check_lesson10_5,
    lesson10_1_mask,
    print_questionnaire,
    show_solution,
)

# %% [markdown]
# **10.1** Transfer: the trap of section 2 with four images and four channels. Build your answer from `mask`.

# %%
print(LESSON10_1_QUESTION)
mask = lesson10_1_mask()
my_weight = None
_ = check_lesson10_1(my_weight)

# %% [markdown]
# **10.2** Transfer: the weighted mean of section 4, by hand.

# %%
print(LESSON10_2_QUESTION)
my_weighted_mean = None
_ = check_lesson10_2(my_weighted_mean)

# %% [markdown]
# **10.3** Transfer: section 7's lesson on four batches.

# %%
print(LESSON10_3_QUESTION)
my_pos_weight = None
_ = check_lesson10_3(my_pos_weight)

# %% [markdown]
# **10.4** Transfer: section 8's sampler, aiming at a quarter of positives instead of half.

# %%
print(LESSON10_4_QUESTION)
my_sample_weight = None
_ = check_lesson10_4(my_sample_weight)

# %% [markdown]
# **10.5** A repair: section 3's ignore mean on an all-void batch. Write the function; the checker runs it, with its backward, on three batches.

# %%
print(LESSON10_5_QUESTION)
my_masked_mean = None
_ = check_lesson10_5(my_masked_mean)

# %% [markdown]
# ## 11 · Questionnaire
#
# Short questions on the whole lesson. Answer each in a sentence or two, from memory first, then check
# with the cells above. When you have tried, `show_solution("10.Q")` prints the answers.

# %%
print_questionnaire("10")
