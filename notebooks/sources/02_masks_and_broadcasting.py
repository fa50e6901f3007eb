# %% [markdown]
# # Lesson 02 · Masks, channels and broadcasting
#
# Questions answered: Q1, Q2, Q3, Q8 (the shape half; lesson 04 counts the weights, lesson 05 trains with them)
#
# **Goal.** After this lesson you can line any `weight` or `pos_weight` up with `(N, C, H, W)`
# predictions: give a `(N, H, W)` mask to every channel without copying it, tell weighting apart from
# editing the targets, give each channel its own weight or its own mask, and read PyTorch's
# broadcasting errors, including the case where it gives none and weights the wrong axis.
#
# **How to read it.** Each section asks you to *predict* before a cell reveals. The explorer in
# section 6 is live in JupyterLab (pick a case, or type a shape); on a static page you see its first
# frame and the snapshots after the check cells.

# %%
# %matplotlib widget

# %%
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

import bceweights as bw
from bceweights.lessons.explore import png_image
from bceweights.lessons.explore.broadcast import BroadcastExplorer

# Small problems run faster on one thread, and then give the same numbers on every machine.
torch.set_num_threads(1)
torch.manual_seed(0)


def sig4(value: float) -> str:
    """A number with 4 significant digits, as every printed number in these lessons."""
    return f"{value:.4g}"


def storage_bytes(tensor: torch.Tensor) -> int:
    """Bytes of memory behind a tensor (an expanded view shares its base's memory)."""
    return tensor.untyped_storage().nbytes()


# %% [markdown]
# ## 1 · The rule: trailing dimensions line up
#
# `weight` and `pos_weight` are not matched to the input by *meaning* (batch, channel, pixel) but by
# *position*: PyTorch writes the two shapes right-aligned, and every pair of sizes must be equal or
# contain a 1 (the 1 is repeated, without copying). Missing leading dimensions count as 1.
# `weight` and `pos_weight` must pass one more test: PyTorch multiplies the loss by them in place, so the
# operand must broadcast *to* the input's shape. It may not add leading dimensions, and a size-1 axis of
# the input may not meet a larger size (lesson 01's `(N, H, W)` map on `(N, 1, H, W)` logits fails
# this way).
#
# ```
# input       (8, 3, 256, 256)          input       (8, 3, 256, 256)
# operand           (3,   1,   1)  ✓    operand                   (3,)  ✗  3 against 256
# ```
#
# **Predict** which of these five operands broadcast against `(8, 3, 256, 256)`, and which of those
# PyTorch would take as `weight`: `(3, 1, 1)`, `(8, 1, 256, 256)`, `(1, 8, 3, 256, 256)`, `(3,)`,
# `(8, 256, 256)`.

# %%
input_shape = (8, 3, 256, 256)
for operand_shape in [(3, 1, 1), (8, 1, 256, 256), (1, 8, 3, 256, 256), (3,), (8, 256, 256)]:
    try:
        result = tuple(torch.broadcast_shapes(operand_shape, input_shape))
        fits = "the input's shape: usable as weight" if result == input_shape else "a larger shape: refused as weight"
        print(f"{str(operand_shape):>19}  broadcasts to {result}, {fits}")
    except RuntimeError:
        print(f"{str(operand_shape):>19}  does not broadcast")

# %% [markdown]
# The last two fail for different reasons, both from right alignment: `(3,)` puts its 3 against
# `W = 256`; `(8, 256, 256)` matches `H, W` but puts its 8 against `C = 3`. `(1, 8, 3, 256, 256)`
# broadcasts, but to a five-dimensional shape: fine for `x * w`, refused as `weight`. Everything in this lesson
# follows from that rule (and, for `weight` and `pos_weight`, from its in-place test).
#
# ## 2 · Q1: a `(N, H, W)` mask for `(N, C, H, W)` predictions
#
# A segmentation model predicts 3 channels; the weight mask says which pixels count and has no
# channel dimension.
#
# **Predict:** (1) does `weight=mask` work? (2) after `mask.unsqueeze(1)`, shape `(N, 1, H, W)`, does it?
# (3) `expand` and `repeat` both make a `(N, C, H, W)` tensor; which one copies the mask `C` times?

# %%
generator = torch.Generator().manual_seed(2)
N, C, H, W = 2, 3, 4, 5
pred = torch.randn(N, C, H, W, generator=generator)
target = (torch.rand(N, C, H, W, generator=generator) < 0.3).float()
mask = (torch.rand(N, H, W, generator=generator) < 0.6).float()

try:
    F.binary_cross_entropy_with_logits(pred, target, weight=mask)
except RuntimeError as error:
    print("weight=mask             -> RuntimeError:", error)

unsqueezed = mask.unsqueeze(1)  # (N, 1, H, W): broadcasting repeats it over C
expanded = mask.unsqueeze(1).expand(N, C, H, W)  # a view: no new memory
repeated = mask.unsqueeze(1).repeat(1, C, 1, 1)  # a copy: C times the memory
for name, weight in [("mask.unsqueeze(1)", unsqueezed), ("...expand(N, C, H, W)", expanded), ("...repeat(1, C, 1, 1)", repeated)]:
    loss = F.binary_cross_entropy_with_logits(pred, target, weight=weight)
    print(f"{name:<22}  shape {tuple(weight.shape)}  stride {weight.stride()}  "
          f"shares the mask's memory: {weight.data_ptr() == mask.data_ptr()}  "
          f"bytes {storage_bytes(weight)}  loss {sig4(float(loss))}")

# %% [markdown]
# **Reveal.** Here `weight=mask` fails: right-aligned, `(N, H, W) = (2, 4, 5)` puts `N = 2` against
# `C = 3`. After `unsqueeze(1)` the mask is `(2, 1, 4, 5)` and broadcasting repeats it over the
# channels by itself, so you never need to materialise `(N, C, H, W)`.
#
# It fails only because `N` and `C` differ. **Predict:** with three images of three channels, a
# `(3, 4, 5)` mask, does `weight=mask` raise? And with a single image, a `(1, 4, 5)` mask?

# %%
square_generator = torch.Generator().manual_seed(21)  # its own generator: the later cells draw as before
square_pred = torch.randn(3, 3, H, W, generator=square_generator)  # N == C == 3
square_target = (torch.rand(3, 3, H, W, generator=square_generator) < 0.3).float()
square_mask = (torch.rand(3, H, W, generator=square_generator) < 0.6).float()
silent = F.binary_cross_entropy_with_logits(square_pred, square_target, weight=square_mask)
meant = F.binary_cross_entropy_with_logits(square_pred, square_target, weight=square_mask.unsqueeze(1))
wrong = square_mask.expand(3, 3, H, W) != square_mask.unsqueeze(1).expand(3, 3, H, W)
print(f"N == C == 3: weight=mask runs, loss {sig4(float(silent))}; weight=mask.unsqueeze(1) gives {sig4(float(meant))}; "
      f"{int(wrong.sum())} of {wrong.numel()} weights differ")
print("    weight=mask gives image 0's channels the maps of images:", [
    next(k for k in range(3) if torch.equal(square_mask.expand(3, 3, H, W)[0, c], square_mask[k])) for c in range(3)
])
single = F.binary_cross_entropy_with_logits(square_pred[:1], square_target[:1], weight=square_mask[:1])
single_meant = F.binary_cross_entropy_with_logits(square_pred[:1], square_target[:1], weight=square_mask[:1].unsqueeze(1))
print(f"N = 1:       weight=mask runs, loss {sig4(float(single))}; weight=mask.unsqueeze(1) gives {sig4(float(single_meant))}; "
      f"equal: {torch.equal(single, single_meant)}")
try:
    bw.bce_with_logits(square_pred, square_target, weight=square_mask)
except bw.WeightShapeError as error:
    print("bceweights refuses N == C:", str(error).splitlines()[0])

# %% [markdown]
# **Reveal.** With `N == C` the right-aligned sizes match, `(3, 4, 5)` against `(C, H, W)`, so PyTorch
# runs without a word: channel `c` of *every* image gets image `c`'s map (image 0's three channels
# got the maps of images 0, 1 and 2), 52 of the 180 weights are wrong, and the loss is 0.4155 where
# `mask.unsqueeze(1)` gives 0.3924. With `N = 1` the mask's
# size 1 sits under `C` and broadcasts over the channels, which happens to be right: a test on one
# image passes, and the first batch of 2 raises (or, with 3 channels, a batch of 3 is silently wrong).
# `mask.unsqueeze(1)` is right for every `N`. (Lesson 10 shows the same trap in plain PyTorch.)
#
# If you do want the full shape, `expand` gives it as a *view*: stride `0` along `C` means "the
# same memory for every channel", and its data pointer is the mask's own (160 bytes: 40 floats).
# `repeat` allocates and copies: 480 bytes here, `C` times the mask. All three give the same loss.
#
# Because all channels of an expanded view are the same memory, writing into one channel writes
# into all of them, and into the mask itself; PyTorch refuses in-place operations that would write
# one memory location several times. Use `expand` for a weight you only read; `clone()` or `repeat`
# when you need to edit channels separately. (A copy of the mask here, to leave `mask` untouched.)

# %%
mask_copy = mask.clone()
view = mask_copy.unsqueeze(1).expand(N, C, H, W)
view[0, 0, 0, 0] = 5.0  # one element of channel 0...
print("channel values at [0, :, 0, 0]:", view[0, :, 0, 0].tolist(), "| mask_copy[0, 0, 0] =", mask_copy[0, 0, 0].item())
try:
    view.mul_(2.0)
except RuntimeError as error:
    print("view.mul_(2.0) -> RuntimeError:", error)

# %% [markdown]
# `bw.expand_mask(mask, pred)` does the `unsqueeze(1).expand(...)` for you and checks the shapes;
# `bw.explain` shows how an operand lines up with the input and what it costs in memory, here at a
# realistic size:

# %%
big_pred = torch.zeros(8, 3, 256, 256)
big_mask = torch.ones(8, 256, 256)
via_bw = bw.expand_mask(big_mask, big_pred)
print("stride", via_bw.stride(), "| shares memory with the mask:", via_bw.data_ptr() == big_mask.data_ptr())
print(bw.explain(big_pred, weight=big_mask.unsqueeze(1)))
print()
print(bw.explain(big_pred, weight=via_bw))

# %% [markdown]
# The first report reads: the `(8, 1, 256, 256)` weight varies along `N, H, W` and is broadcast over
# `C`. The second: the expanded weight has the full shape, but stride 0 along `C`; it takes 2 MiB,
# the mask's own memory (shared), where a materialised copy would take 6 MiB.
#
# > A widely read answer to Q1 on a forum gets the `unsqueeze(1).expand_as(prediction)` right but
# > then passes the result as `target * mask` instead of `weight=`, which is the next section's
# > mistake. It also warns that mask values outside `[0,1]` "might artificially inflate or deflate the
# > loss gradient" and that "integer masks can lead to unexpected behavior". Weights may be any
# > non-negative numbers (a weight of 10 is the point of weighting), and PyTorch accepts an integer
# > `weight`: it is the *target* that must be floating point. The section-2 mask as integers, then an
# > integer target:

# %%
int_weight = mask.unsqueeze(1).long()
as_float = F.binary_cross_entropy_with_logits(pred, target, weight=mask.unsqueeze(1))
as_int = F.binary_cross_entropy_with_logits(pred, target, weight=int_weight)
print(f"weight dtype {int_weight.dtype}: loss {sig4(float(as_int))} | same as the float weight: {torch.equal(as_int, as_float)}")
try:
    F.binary_cross_entropy_with_logits(pred, target.long(), weight=mask.unsqueeze(1))
except RuntimeError as error:
    print(f"target dtype {target.long().dtype} -> RuntimeError:", str(error).splitlines()[0])

# %% [markdown]
# The integer weight gives the float weight's loss, 0.4912, exactly; only the integer target is refused.
#
# ## 3 · Q2: `criterion(pred, target * mask)` is not weighting
#
# Take one channel of a small image: a square object (target 1) on background (target 0), and a mask
# that says "only the left half counts". Two ways to "apply the mask":
#
# * **(a)** `F.binary_cross_entropy_with_logits(pred, target * mask)`;
# * **(b)** `F.binary_cross_entropy_with_logits(pred, target, weight=mask)`.
#
# **Predict:** for a pixel of the object that lies in the right half (mask 0), what does each version
# teach the model? Does it stop contributing?

# %%
side = 8
rows = torch.arange(side).view(side, 1)
cols = torch.arange(side).view(1, side)
object_target = ((rows >= 2) & (rows <= 5) & (cols >= 2) & (cols <= 6)).float().view(1, 1, side, side)
left_half = (cols < 4).float().expand(side, side).reshape(1, 1, side, side)
image_logits = (0.8 * torch.randn(1, 1, side, side, generator=generator)).requires_grad_(True)

gradients = {}
for name, options in {
    "(a) target * mask": dict(target=object_target * left_half),
    "(b) weight=mask": dict(target=object_target, weight=left_half),
}.items():
    loss = F.binary_cross_entropy_with_logits(image_logits, options["target"], weight=options.get("weight"), reduction="sum")
    (gradients[name],) = torch.autograd.grad(loss, image_logits)

outside = left_half == 0
object_outside = outside & (object_target == 1)
for name, gradient in gradients.items():
    print(f"{name:<18}  object pixels outside the mask: mean gradient {sig4(float(gradient[object_outside].mean()))}"
          f"  |  all pixels outside: sum |gradient| {sig4(float(gradient[outside].abs().sum()))}")

# %%
figure = Figure(figsize=(10.0, 2.8), dpi=90)
panels = figure.subplots(1, 4)
figure.subplots_adjust(left=0.01, right=0.9, bottom=0.03, top=0.88, wspace=0.08)
limit = float(max(g.abs().max() for g in gradients.values()))
images = [
    ("target", object_target, "gray", (0, 1)),
    ("target * mask: new targets", object_target * left_half, "gray", (0, 1)),
    ("gradient, (a) target * mask", gradients["(a) target * mask"], "RdBu_r", (-limit, limit)),
    ("gradient, (b) weight=mask", gradients["(b) weight=mask"], "RdBu_r", (-limit, limit)),
]
for axes, (title, values, cmap, (low, high)) in zip(panels, images):
    shown = axes.imshow(values.detach()[0, 0].numpy(), cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
    axes.axvline(3.5, color="gold", linewidth=2.5)  # the mask's edge: only the left half counts
    # The object's outline (rows 2-5, columns 2-6), so it stays visible on the gradient maps.
    axes.add_patch(Rectangle((1.5, 1.5), 5, 4, fill=False, edgecolor="limegreen", linewidth=2.0, linestyle="--"))
    axes.set_title(title, fontsize=9)
    axes.set_xticks([])
    axes.set_yticks([])
colorbar_axes = figure.add_axes((0.915, 0.08, 0.012, 0.75))
figure.colorbar(shown, cax=colorbar_axes, label="d loss / d logit (red: push down)")
png_image(figure)

# %% [markdown]
# **Reveal.** Multiplying the *targets* by the mask does not switch pixels off; it relabels them. The
# right half of the object became background, and version (a) pushes those logits **down** (red):
# it teaches the model that the object is not there. The background pixels on the right still count
# fully. Version (b) leaves the targets alone and gives every pixel outside the mask a zero gradient
# (white): they no longer count, which is what a mask is for.
#
# With a soft mask the damage is subtler: `target * 0.3` turns a positive pixel into the soft target
# 0.3, and the loss is then smallest at probability 0.3, so the model is trained to be 30 % sure of
# something that is certainly there. `weight=0.3` keeps the optimum at 1 and only makes the pixel
# count less:

# %%
one_pixel = torch.linspace(-6.0, 6.0, 1201).view(-1, 1)
for name, options in {"target * 0.3": dict(target=torch.full_like(one_pixel, 0.3)),
                      "weight=0.3": dict(target=torch.ones_like(one_pixel), weight=torch.tensor(0.3))}.items():
    losses = F.binary_cross_entropy_with_logits(one_pixel, options["target"], weight=options.get("weight"), reduction="none")
    best = one_pixel[int(losses.argmin())]
    print(f"{name:<13} loss is smallest at probability {sig4(float(torch.sigmoid(best)))}"
          + ("  (the grid's edge: the minimum is at +infinity)" if float(best) == 6.0 else ""))

# %% [markdown]
# ## 4 · Q3: a weight per channel, a mask per channel
#
# **Predict:** for `(N, 3, H, W)` predictions, what shape gives channel `c` the weight `w[c]`
# everywhere? How do you combine it with the shared `(N, H, W)` mask of section 2?

# %%
channel_weight = torch.tensor([0.5, 2.0, 1.0])
per_channel = channel_weight.view(3, 1, 1)  # right-aligned: (1, 3, 1, 1), varies along C only
print("per_channel shape", tuple(per_channel.shape), "== bw.per_channel:", torch.equal(per_channel, bw.per_channel(channel_weight, pred)))
combined = per_channel * mask.unsqueeze(1)  # (3, 1, 1) x (N, 1, H, W) -> (N, 3, H, W)
print("combined weight shape", tuple(combined.shape))

with_torch = F.binary_cross_entropy_with_logits(pred, target, weight=combined)
with_bw = bw.bce_with_logits(pred, target, weight=combined)
# The module keeps the per-channel weight and takes this batch's mask on every call; it multiplies them.
criterion = bw.BCEWithLogits(weight=channel_weight, channel_dim=1)
with_module = criterion(pred, target, weight=mask.unsqueeze(1))
print("torch", sig4(float(with_torch)), "| bceweights", sig4(float(with_bw)), "| bw.BCEWithLogits", sig4(float(with_module)))

# %% [markdown]
# **Reveal.** `(3, 1, 1)` lines up with `(C, H, W)` and varies only along `C`. Multiplying it by
# `mask.unsqueeze(1)` broadcasts both into the full `(N, 3, H, W)` weight: channel 1's pixels count
# four times as much as channel 0's, and masked-out pixels count in no channel. `bw.BCEWithLogits`
# does the multiplication for you, keeping the per-channel part in the module and taking the mask per
# call (lesson 03 returns to weights per call).
#
# A *different mask for each channel* has real values along `C`, so there is nothing to broadcast:
# stack the masks on the channel dimension (a copy, and it must be one). One call then does what a
# loop over the channels would do: no per-channel loop is needed. (A forum question about U-Net
# losses assumed that with BCE one must "individually find the loss for each output channel, per
# image, and sum them together".)

# %%
mask_c0 = (torch.rand(N, H, W, generator=generator) < 0.5).float()
mask_c1 = (torch.rand(N, H, W, generator=generator) < 0.5).float()
mask_c2 = torch.ones(N, H, W)
channel_masks = torch.stack([mask_c0, mask_c1, mask_c2], dim=1)  # (N, 3, H, W)
one_call = F.binary_cross_entropy_with_logits(pred, target, weight=channel_masks)
loop = sum(
    F.binary_cross_entropy_with_logits(pred[:, c], target[:, c], weight=channel_masks[:, c]) for c in range(C)
) / C
print("stacked masks", tuple(channel_masks.shape), "| one call", sig4(float(one_call)), "| mean of a per-channel loop", sig4(float(loop)))

# %% [markdown]
# The loop's channel losses are averaged because `mean` divides by all `N·C·H·W` elements and every
# channel has the same number of them.
#
# ## 5 · Q8: why `pos_weight=[1, 30, 6]` crashes on `(B, 3, 256, 256)`, and when it does not
#
# One channel of a three-channel multi-label model is rarely positive and is never learned; a larger
# `pos_weight` for that channel makes its positives pull harder (lesson 01 showed how; lesson 05
# trains it). Here, the shape half: the forum attempt was
# `pos_weight=torch.Tensor([1, 30, 6]).repeat(BATCH_SIZE, 1)`.
#
# **Predict:** what does PyTorch pair the three values with, with and without `.repeat(B, 1)`?

# %%
B = 4
logits_rgb = torch.randn(B, 3, 256, 256, generator=generator)
target_rgb = (torch.rand(B, 3, 256, 256, generator=generator) < 0.1).float()
values = torch.tensor([1.0, 30.0, 6.0])  # channel 0, 1, 2: the order of the channels, nothing else

attempts = {
    "values            (3,)": values,
    "values.repeat(B, 1) (B, 3)": values.repeat(B, 1),
    "values.view(3, 1, 1)": values.view(3, 1, 1),
}
for name, pos_weight in attempts.items():
    try:
        loss = F.binary_cross_entropy_with_logits(logits_rgb, target_rgb, pos_weight=pos_weight)
        print(f"{name:<28} loss {sig4(float(loss))}")
    except RuntimeError as error:
        print(f"{name:<28} RuntimeError: {error}")
bw_loss = bw.bce_with_logits(logits_rgb, target_rgb, pos_weight=values, channel_dim=1)
print(f"{'bceweights, channel_dim=1':<28} loss {sig4(float(bw_loss))}")

# %% [markdown]
# **Reveal.** Right-aligned, `(3,)` meets `W = 256`, and `(B, 3)` meets `(H, W) = (256, 256)`:
# `.repeat(B, 1)` only adds a dimension that lines up with `H`, never with the batch. The 3 has to sit
# under `C`, which takes two trailing 1s: `(3, 1, 1)`. (The thread's comment lists the channels as
# "red, blue, green = 6, 1, 30" next to a tensor `[1, 30, 6]`: the tensor's order is the channel
# index order, whatever the comment says.)
#
# `bw.explain` says the same without running anything, and `bceweights` raises a `WeightShapeError`
# with a suggestion:

# %%
print(bw.explain(logits_rgb, pos_weight=values.repeat(B, 1)))

# %% [markdown]
# Read the two suggestions in order. The first, `pos_weight[0].view(3, 1, 1)`, keeps one row of the
# repeated tensor: the values do not depend on the sample, so the fix is to **drop `.repeat`** and
# write `values.view(3, 1, 1)`, which works for any batch size. The second, `.view(4, 3, 1, 1)`, takes
# the `(B, 3)` tensor at its word, one value per sample *and* channel: it runs, but only for batches of
# exactly 4 (a smaller last batch fails again), and it keeps four copies of the same three numbers.

# %%
for batch in (4, 3):
    fixed = F.binary_cross_entropy_with_logits(logits_rgb[:batch], target_rgb[:batch], pos_weight=values.view(3, 1, 1))
    try:
        F.binary_cross_entropy_with_logits(logits_rgb[:batch], target_rgb[:batch], pos_weight=values.repeat(B, 1).view(4, 3, 1, 1))
        suggestion = "runs"
    except RuntimeError:
        suggestion = "RuntimeError"
    print(f"batch of {batch}: values.view(3, 1, 1) loss {sig4(float(fixed))}   |   values.repeat(4, 1).view(4, 3, 1, 1): {suggestion}")

# %% [markdown]
# ### The silent trap: when `W` happens to equal `C`
#
# **Predict:** on predictions of shape `(4, 3, 8, 3)` (width 3), what does `pos_weight=values` do?

# %%
narrow_logits = torch.randn(B, 3, 8, 3, generator=generator)
narrow_target = (torch.rand(B, 3, 8, 3, generator=generator) < 0.3).float()
silent = F.binary_cross_entropy_with_logits(narrow_logits, narrow_target, pos_weight=values)
intended = F.binary_cross_entropy_with_logits(narrow_logits, narrow_target, pos_weight=values.view(3, 1, 1))
print("PyTorch, pos_weight=values          :", sig4(float(silent)), "(no error)")
print("PyTorch, pos_weight=values.view(3,1,1):", sig4(float(intended)))
try:
    bw.bce_with_logits(narrow_logits, narrow_target, pos_weight=values)
except bw.WeightShapeError as error:
    print("\nbceweights refuses:\n" + str(error))

# %% [markdown]
# **Reveal.** PyTorch runs and returns a number: the three values went to the three *columns* of
# every image, in every channel. Nothing warns you; only the loss is different. `bceweights` refuses
# any 1-D operand that lines up with a dimension other than the one it looks meant for, and lists the
# lines to write instead: two for the per-channel reading, and a third in case you really meant the
# columns.
#
# ## 6 · The explorer: every case on one screen
#
# Pick a case (or type a shape with numbers and the letters `N, C, H, W`), choose whether it is a
# `weight` or a `pos_weight`, and switch the predictions between `(2, 3, 8, 10)` and `(2, 3, 8, 3)`
# (where `W = C`). The left panel draws the input's dimensions on top and the operand's below, where
# broadcasting puts them: green where the operand varies along that dimension, grey dotted where it
# has size 1 (shared), red for a clash, orange when PyTorch's pairing is not the one `bceweights`
# reads. Under it: what `bceweights` and PyTorch do. The right panel shows the operand's value at
# every pixel, for both samples (rows) and the three channels (columns); the full error messages
# appear under the readouts.
#
# **Predict:** choose "Q8: pos_weight=[1, 30, 6], (C,)" and switch the predictions to width 3. Which
# colour will the link be, and what will the three channel images look like?

# %% tags=["nbval-ignore-output"]
explorer = BroadcastExplorer()
explorer

# %%
explorer.set(case="pos_weight_vector", input=(2, 3, 8, 3))
explorer.print_readouts("bceweights_accepts", "pytorch_runs", "silent_trap", "mean_c0", "mean_c1", "mean_c2")

# %%
explorer.snapshot()

# %% [markdown]
# **Reveal.** The link goes from the operand's 3 to `W=3`, in orange: sizes match, so PyTorch runs,
# but on the wrong axis. Every channel shows the same three columns (1, 30, 6), and the channel means
# are all equal. Now give `bceweights` the hint it needs, `channel_dim=1`:

# %%
explorer.set(channel_dim=1)
print("case:", explorer.values["case"])
explorer.print_readouts("bceweights_accepts", "silent_trap", "mean_c0", "mean_c1", "mean_c2")

# %%
explorer.snapshot()

# %% [markdown]
# One value per channel, constant over each image. `channel_dim` is a `bceweights` argument: the
# verdict under the diagram reminds you that PyTorch, handed the same `(3,)` tensor, still pairs it
# with `W`; in PyTorch write `.view(3, 1, 1)`.
#
# Finally the mask of section 2, expanded with `bw.expand_mask`: the operand has as many elements as
# the mask, not as the predictions.

# %%
explorer.set(case="mask_expanded", input=(2, 3, 8, 10))
explorer.print_readouts("bceweights_accepts", "operand_elements", "elements_if_materialised", "mean_c0", "mean_c1")

# %% [markdown]
# Try on your own: the `.repeat(N, 1)` case on both inputs; "your own shape" with `N, C` on the
# narrow input `(2, 3, 8, 3)` (the 3 meets `W = 3`, but is `N = 2` against `H = 8` a clash?); a `(C, 1, 1)` operand with 6 values typed as
# `6, 1, 1`.
#
# ## 7 · Summary
#
# * Broadcasting lines shapes up **from the right**; sizes must be equal or 1. It knows nothing of
#   batch, channel or pixel.
# * A `(N, H, W)` mask becomes a weight with `mask.unsqueeze(1)`, shape `(N, 1, H, W)`; `expand` (or
#   `bw.expand_mask`) gives the full shape as a zero-copy view (stride 0), `repeat` copies (Q1).
#   `weight=mask` raises when `N != C` and `N > 1`, runs silently on the wrong axis when `N == C`, and is right by
#   luck when `N = 1`.
# * `target * mask` relabels pixels and trains the model on the new labels; `weight=mask` makes
#   pixels count less or not at all (Q2).
# * Per channel: `w.view(C, 1, 1)` (or `bw.per_channel`, or `channel_dim=1` in `bceweights`); times
#   `mask.unsqueeze(1)` for a shared mask; `torch.stack(masks, dim=1)` for a mask per channel (Q3).
# * `pos_weight=[1, 30, 6]` meets `W`, `.repeat(B, 1)` meets `(H, W)`; `(3, 1, 1)` meets `C`: drop
#   `.repeat` and write `.view(3, 1, 1)`. When `W == C` the wrong version runs silently; `bceweights`
#   refuses it (Q8).
#
# ## 8 · Exercises
#
# Each cell prints a question. Predict or compute your answer first (with the formula, the explorers above, or
# a few lines of PyTorch), then replace `None` with it and run the cell: a wrong answer gets a hint that says
# what it would mean. When you have tried, `show_solution("02.2")` prints the worked solution of exercise
# 02.2 (and likewise for the others).

# %%
from bceweights.lessons.exercises import (
    LESSON02_1_QUESTION,
    LESSON02_2_QUESTION,
    LESSON02_3_QUESTION,
    LESSON02_4_QUESTION,
    check_lesson02_1,
    check_lesson02_2,
    check_lesson02_3,
    check_lesson02_4,
    print_questionnaire,
    show_solution,
)

# %% [markdown]
# **02.1** Write a `pos_weight` tensor (new values, the layout of section 5). The checker tries it with PyTorch's own loss on `(4, 3, 256, 256)` and the treacherous `(4, 3, 8, 3)`.

# %%
print(LESSON02_1_QUESTION)
my_pos_weight = None
_ = check_lesson02_1(my_pos_weight)

# %% [markdown]
# **02.2** Transfer: the same on 3-D volumes. The checker tries shapes where `D` or `W` equals the channel count.

# %%
print(LESSON02_2_QUESTION)
my_volume_pos_weight = None
_ = check_lesson02_2(my_volume_pos_weight)

# %% [markdown]
# **02.3** Transfer: the memory bill of section 2 at a realistic size.

# %%
print(LESSON02_3_QUESTION)
my_mib = None
_ = check_lesson02_3(my_mib)

# %% [markdown]
# **02.4** A concept: section 2's trap as a multiple choice. All three calls run; predict before you try them.

# %%
print(LESSON02_4_QUESTION)
my_choice = None
_ = check_lesson02_4(my_choice)

# %% [markdown]
# ## 9 · Questionnaire
#
# Short questions on the whole lesson. Answer each in a sentence or two, from memory first, then check
# with the cells above. When you have tried, `show_solution("02.Q")` prints the answers.

# %%
print_questionnaire("02")
