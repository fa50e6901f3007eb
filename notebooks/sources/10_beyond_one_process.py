# %% [markdown]
# # Lesson 10 · Beyond one process: DDP, mixed precision and `torch.compile`
#
# Questions answered: Q21, Q22
#
# **Goal.** After this lesson you know what a masked or weighted mean means when the batch is split
# over several processes, why the per-rank mean that `DistributedDataParallel` gives you by default
# is a different loss when the ranks keep different numbers of pixels, how `process_group=` makes the
# mean global, how to count class weights over a data set that no process sees whole, and what to
# expect from the loss under `torch.autocast` and `torch.compile`.
#
# **How to read it.** Predict before each reveal. Section 1 starts two real processes on this
# machine (PyTorch's `gloo` backend on 127.0.0.1), as `torchrun --nproc-per-node 2` would; it takes a
# few seconds. `examples/ddp_train.py` is the same thing as a full training script.

# %%
import os
import shutil

import torch
import torch.nn.functional as F
from torch import nn

import bceweights as bw
from bceweights.lessons import global_mean
from bceweights.lessons.ranks import run_on_ranks

torch.set_num_threads(1)
torch.manual_seed(0)


def sig4(value: float) -> str:
    """A number with 4 significant digits, as every printed number in these lessons."""
    return f"{value:.4g}"


# %% [markdown]
# ## 1 · Q21: a masked or weighted mean over two ranks
#
# Under DDP each process (*rank*) computes the loss on its own part of the batch, and DDP then
# **averages the gradients** over the `W` ranks. With `reduction="mean"` and an ignore mask, each rank
# divides its sum by *its own* number of kept pixels `k_r`. A kept pixel on rank `r` therefore enters
# the averaged gradient with weight `1 / (W · k_r)`. With `reduction="weighted_mean"` each rank divides
# by *its own* kept weight `S_r` (the sum of `weight` over its kept pixels), and a kept pixel of
# weight `w` enters with `w / (W · S_r)`.
#
# The experiment: 2 ranks, each with 512 pixels of a two-parameter model
# (`logits = images · scale + bias`). Rank 0 keeps only 64 of its pixels (the rest is void), rank 1
# keeps 448. One process holding both halves would divide by all `64 + 448 = 512` kept pixels. For
# `"weighted_mean"` the same pixels also carry a weight map: 3 on positives, 1 on negatives.
#
# **Predict.** With the per-rank mean, how much more does one kept pixel of rank 0 count than one of
# rank 1? Is the averaged gradient the gradient of the single-process loss? And with the weighted mean?

# %%
# rank_step averages the gradients with dist.all_reduce(...) / W, which is what DDP does after backward
# (examples/ddp_train.py uses DistributedDataParallel itself). One launch runs both reductions; the keys
# of "weighted_mean" start with "weighted_".
ranks = run_on_ranks(global_mean.rank_step, world_size=2)
single = global_mean.single_process_step(world_size=2)

world = len(ranks)
kept = [r["kept"] for r in ranks]
kept_weight = [r["kept_weight"] for r in ranks]
print(f"{'reduction':<13}  {'rank':<25}  {'denominator':>11}  {'logged: per-rank mean':>21}"
      f"  {'with process_group':>18}")
for reduction, prefix in global_mean.REDUCTION_KEY_PREFIXES.items():
    count = "kept_weight" if prefix else "kept"           # k_r for "mean", S_r for "weighted_mean"
    for r in ranks:
        print(f"{reduction:<13}  {r['rank']:<25}  {sig4(r[count]):>11}  {sig4(r[prefix + 'loss_per_rank']):>21}"
              f"  {sig4(r[prefix + 'loss_global']):>18}")
    print(f"{reduction:<13}  {'mean of the logged values':<25}  {'':>11}"
          f"  {sig4(sum(r[prefix + 'loss_per_rank'] for r in ranks) / world):>21}"
          f"  {sig4(sum(r[prefix + 'loss_global'] for r in ranks) / world):>18}")
    print(f"{reduction:<13}  {'one process, both shards':<25}  {sig4(single[count]):>11}"
          f"  {sig4(single[prefix + 'loss']):>21}")

# %% [markdown]
# **Reveal.** Under the per-rank mean a kept pixel of rank 0 has weight `1 / (2 · 64) = 1/128` in the
# averaged gradient and one of rank 1 has `1 / (2 · 448) = 1/896`: **7 times** less say, for no reason
# but where the sampler happened to put it. The loss DDP optimises is then the mean of the two ranks'
# means, 0.4375, not the mean over all kept pixels, 0.4518.
#
# The weighted mean has the same flaw, with kept weights in place of counts. The ranks keep the
# weights `S_0 = 110` and `S_1 = 754`, so a kept pixel of weight `w` enters with `w / (2 · 110)` on
# rank 0 and `w / (2 · 754)` on rank 1: 6.855 times less say on rank 1. DDP then optimises 0.4653,
# the mean of the two ranks' weighted means, not one process's 0.4755.
#
# `process_group=dist.group.WORLD` all-reduces the denominator. Rank `r` returns
# `local_sum_r · W / D`, with `D` the global denominator (it carries no gradient): `D = Σ_r k_r = 512`
# for `"mean"`, `D = Σ_r S_r = 864` for `"weighted_mean"`. Then DDP's average,
# `(1/W) Σ_r ∇(local_sum_r · W / D) = ∇(Σ_r local_sum_r) / D`, is exactly the gradient of the
# single-process loss: every kept pixel has weight `1/512`, or `w/864` with the weight map. Each
# rank's *logged* value is no longer a mean of anything by itself (0.1046 and 0.799 for `"mean"`,
# 0.115 and 0.8361 for `"weighted_mean"`); the mean of the logged values over the ranks is the
# global loss, 0.4518 and 0.4755.

# %%
def pair(gradient):
    return f"({sig4(float(gradient[0]))}, {sig4(float(gradient[1]))})"


print(f"{'reduction':<13}  {'gradient':<25}  {'(d/dscale, d/dbias)':<20}  equals one process's within 1e-12")
for reduction, prefix in global_mean.REDUCTION_KEY_PREFIXES.items():
    reference = single[f"{prefix}gradient"]
    print(f"{reduction:<13}  {'one process':<25}  {pair(reference)}")
    for name, label in (("per_rank", "per-rank, DDP-averaged"), ("global", "process_group, averaged")):
        gradient = ranks[0][f"{prefix}gradient_{name}"]
        error = float((gradient - reference).abs().max())
        print(f"{reduction:<13}  {label:<25}  {pair(gradient):<20}  {error < 1e-12}")
    off = (ranks[0][f"{prefix}gradient_per_rank"] - reference) / reference
    print(f"{reduction:<13}  per-rank gradient off by {sig4(100 * float(off[0]))} % (d/dscale)"
          f" and {sig4(100 * float(off[1]))} % (d/dbias)")
per_rank_weight = [1 / (world * k) for k in kept]
print(f"mean, weight of one kept pixel: rank 0 {sig4(per_rank_weight[0])}, rank 1 {sig4(per_rank_weight[1])}"
      f" (ratio {sig4(per_rank_weight[0] / per_rank_weight[1])});"
      f"  with process_group: {sig4(1 / sum(kept))} on both")
print(f"weighted_mean, a kept pixel of weight w: rank 0 w/{sig4(world * kept_weight[0])},"
      f" rank 1 w/{sig4(world * kept_weight[1])} (ratio {sig4(kept_weight[1] / kept_weight[0])});"
      f"  with process_group: w/{sig4(sum(kept_weight))} on both")

# %% [markdown]
# The per-rank gradient is off by about 14 % in both components for `"mean"` (13.67 % and −13.66 %),
# and by 4.044 % and 6.782 % for `"weighted_mean"`; with `process_group=` both equal one process's.
# `"sum"` and `"none"` need no denominator, so `process_group=` leaves them unchanged; note that DDP's
# averaging still divides a summed loss's gradient by `W`.
#
# In a training script the only change is the keyword:
#
# ```python
# dist.init_process_group("gloo")        # "nccl" on GPUs; torchrun sets rank and world size
# model = DistributedDataParallel(model)
# loss = bw.bce_with_logits(model(x), y, ignore=void, process_group=dist.group.WORLD)
# loss.backward()                        # DDP averages; the result is the global-batch gradient
# ```
#
# ### Class weights over every shard
#
# A `DistributedSampler` gives each rank a different part of the data set, so counting positives on
# one rank gives that shard's `pos_weight`, and the ranks disagree. The builders take the same keyword
# and sum their counts over the group: `bw.pos_weight_from_targets(loader, channel_dim=1,
# process_group=group)`, `bw.count_positives(...)` and `bw.median_frequency_weights(...)` return on
# every rank what one process returns on the union of the shards:

# %%
weights = run_on_ranks(global_mean.rank_pos_weight, world_size=2)
union = torch.cat([global_mean.shard(rank)["target"] for rank in range(2)])
print("pos_weight = neg/pos from each rank's own shard:", [sig4(float(w["local"][0])) for w in weights])
print("with process_group, on each rank              :", [sig4(float(w["global"][0])) for w in weights])
print("one process over both shards                  :", sig4(float(bw.pos_weight_from_targets(union, channel_dim=1)[0])))

# %% [markdown]
# Without the group each rank weights its positives by its own shard's ratio (here 1.909 and 1.893),
# so the ranks train slightly different losses; with it every rank gets one process's 1.901.
#
# **Predict.** A shard's `neg / pos` comes from a count of positives, so it carries counting noise.
# Split a data set into 64 shards of `n = 4096` pixels: does the spread of the shards' `pos_weight`
# grow when the positives get rarer? (A shard's value is what its rank computes without
# `process_group=`, so this runs in one process.)

# %%
shards, pixels = 64, 4096
g = torch.Generator().manual_seed(0)
uniform = torch.rand(shards, pixels, 1, generator=g)  # each shard (N, C) with one channel; same draws at each q
print("positive rate  pos_weight (one process)  shards' range   spread (std) of shards"
      "  1/sqrt(n q (1 - q))")
for q in (0.3, 0.05, 0.01):
    target = (uniform < q).float()
    per_shard = torch.cat([bw.pos_weight_from_targets(t, channel_dim=1) for t in target]).double()
    whole = float(bw.pos_weight_from_targets(target.flatten(0, 1), channel_dim=1)[0])
    low, high = sig4(float(per_shard.min())), sig4(float(per_shard.max()))
    spread = 100 * float(per_shard.std()) / whole
    print(f"{q:>13}  {sig4(whole):>24}  {low + ' to ' + high:>14}  {sig4(spread):>20} %"
          f"  {sig4(100 / (pixels * q * (1 - q)) ** 0.5):>17} %")

# %% [markdown]
# **Reveal.** Yes. Relative to one process's value, the shards' `pos_weight` spreads by 3.07 % at a
# positive rate of 0.3, 7.011 % at 0.05 and 14.58 % at 0.01 (there from 67.27 to 131.1 around
# 94.88). That is about `1/√(n q (1 − q))`, the relative noise of `neg / pos` when the count of
# positives is binomial (the count's own relative noise, `√((1 − q) / (n q))`, divided by `1 − q`): it
# grows as the positives per shard get fewer. Shards that differ in content (a sampler without shuffling,
# per-site data) would add a bias on top; that is not shown here.
#
# `examples/ddp_train.py` does both (the counts and the mean) inside `DistributedDataParallel` and
# checks its first step against one process; `tests/test_distributed.py` checks every reduction.

# %% [markdown]
# ## 2 · Q22: mixed precision
#
# Under `torch.autocast`, PyTorch runs `binary_cross_entropy_with_logits` in **float32** whatever the
# autocast dtype: a loss summed over many elements in bfloat16 (8 significant bits, 7 of them stored)
# or float16 (11 bits, 10 stored) would lose most of its digits. `bw.bce_with_logits` follows the same
# rule.
#
# **Predict.** In a bfloat16 and in a float16 autocast region, with logits of that dtype from a layer,
# what dtype does the loss have? How far is it from PyTorch's, and from the same layer's loss without
# autocast?

# %%
g = torch.Generator().manual_seed(0)
layer = nn.Conv2d(1, 3, 3, padding=1)
images = torch.randn(4, 1, 16, 16, generator=g)
masks = (torch.rand(4, 3, 16, 16, generator=g) < 0.2).float()
pos_weight = torch.tensor([4.0, 9.0, 1.5]).view(3, 1, 1)
float32_loss = float(bw.bce_with_logits(layer(images), masks, pos_weight=pos_weight).detach())  # no autocast
for dtype in (torch.bfloat16, torch.float16):
    with torch.autocast("cpu", dtype=dtype):
        logits = layer(images)
        ours = bw.bce_with_logits(logits, masks, pos_weight=pos_weight)
        theirs = F.binary_cross_entropy_with_logits(logits, masks, pos_weight=pos_weight)
    print(f"autocast to {dtype}: logits {logits.dtype} | loss dtype: bceweights {ours.dtype},"
          f" PyTorch {theirs.dtype}")
    our_gradient = torch.autograd.grad(ours, layer.weight, retain_graph=True)[0]
    their_gradient = torch.autograd.grad(theirs, layer.weight)[0]
    gradient_difference = float((our_gradient - their_gradient).abs().max() / their_gradient.abs().max())
    ours, theirs = float(ours.detach()), float(theirs.detach())
    print(f"    relative difference to PyTorch: loss {sig4(abs(ours - theirs) / abs(theirs))},"
          f" weight gradient {sig4(gradient_difference)}"
          f" | within 1e-3 of the loss without autocast: {abs(ours - float32_loss) <= 1e-3 * float32_loss}")

# %% [markdown]
# **Reveal.** Both losses are float32 in both regions, and identical here: the relative difference
# to PyTorch is 0, for the loss and for its gradient. The logits are bfloat16 or float16 (the
# convolution ran in that dtype), but the loss reads them into float32 before computing. What moves
# the loss away from the float32 run (by less than 0.1 %, relative) must then be the logits' own
# rounding in the layer, not the loss. On a GPU, `torch.autocast("cuda", dtype=torch.float16)` follows the same rule (not
# run here); use a `GradScaler` there, as for any float16 training, since small gradients underflow
# in float16.

# %% [markdown]
# ## 3 · Q22: `torch.compile`
#
# `torch.compile` traces a function into a graph. The loss is ordinary tensor code and traces
# completely, value checks included: inside a graph, the check that targets lie in `[0, 1]` and that
# weights are finite and `>= 0` becomes an assert that runs with the graph (no graph break, no wait
# for the device). A bad value then raises a `RuntimeError` that names the way out,
# `check_values=False`. (On a GPU a failed assert ends the CUDA context, so once the data is known
# good, compile with `check_values=False`.)
#
# **Predict.** Compile the forward pass and loss of a training step with `fullgraph=True` (the whole
# function must become one graph). Are loss and gradients the same as in eager mode? What happens when
# one target is a void label, 255?
#
# (`backend="aot_eager"` runs Dynamo's capture, which `fullgraph=True` checks for graph breaks, and
# AOTAutograd's forward and backward graphs, without generating code, so it takes a second. The
# default backend, `"inductor"`, also compiles them to machine code; it runs after the reveal, on the
# loss alone. This lesson runs on the CPU: float16 autocast on CUDA and NCCL are not run here.)

# %%
def forward_loss(model, images, masks):
    return bw.bce_with_logits(model(images), masks, pos_weight=pos_weight)


def step(loss_fn, masks=masks):
    torch.manual_seed(0)
    model = nn.Conv2d(1, 3, 3, padding=1)
    loss = loss_fn(model, images, masks)
    loss.backward()
    return float(loss.detach()), torch.cat([p.grad.flatten() for p in model.parameters()])


compiled_forward = torch.compile(forward_loss, fullgraph=True, backend="aot_eager")
eager_loss, eager_gradient = step(forward_loss)
compiled_loss, compiled_gradient = step(compiled_forward)
print("loss eager", sig4(eager_loss), "| compiled", sig4(compiled_loss))
print("same loss and gradients (float32 rounding):",
      abs(eager_loss - compiled_loss) <= 1e-6 * abs(eager_loss)
      and torch.allclose(eager_gradient, compiled_gradient, rtol=1e-5, atol=1e-7))

void_masks = masks.clone()
void_masks[0, 0, 0, 0] = 255.0
try:
    step(compiled_forward, void_masks)
except RuntimeError as error:
    print("a void label in the compiled graph:", str(error))

# %% [markdown]
# **Reveal.** The compiled step gives the eager loss and gradients, and the check still guards the
# data from inside the graph. To leave the checks out of a compiled step, pass `check_values=False`
# to the loss, or call `bw.set_value_checks(False)`: the process default is a plain global that the
# compiler guards on, so changing it recompiles the graph. A `with bw.value_checks(False):` block
# applies per thread and per task through a context variable, which a compiled graph cannot read:
# inside compiled code it has no effect.
#
# ### The default backend, inductor
#
# `torch.compile(fn)` without a `backend=` uses `"inductor"`: it generates C++ for the forward and
# backward graphs and builds it with the machine's C++ compiler (g++, clang++ or c++ on the `PATH`). That takes several seconds
# the first time, so this cell compiles only the loss, on logits that need a gradient. Generated code
# may order floating-point operations differently, so the comparison allows float32 rounding.
#
# **Predict.** Does inductor's code give the eager loss and gradient, and does it still refuse a void
# label?

# %%
def loss_of_logits(logits, masks):
    return bw.bce_with_logits(logits, masks, pos_weight=pos_weight)


logits = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(1), requires_grad=True)
eager = loss_of_logits(logits, masks)
eager_gradient = torch.autograd.grad(eager, logits)[0]
# backend="inductor" is the default. fx_graph_cache=False only because this lesson is tested under two CPU
# settings (ATEN_CPU_CAPABILITY) that inductor's on-disk graph cache does not tell apart; you need not pass it.
inductor_loss = torch.compile(loss_of_logits, fullgraph=True, options={"fx_graph_cache": False})
if not any(shutil.which(name) for name in (os.environ.get("CXX") or "g++", "clang++", "c++")):
    print("no C++ compiler on PATH: inductor cannot build its code on this machine (backend='aot_eager' above needs none)")
else:
    compiled = inductor_loss(logits, masks)
    compiled_gradient = torch.autograd.grad(compiled, logits)[0]
    eager, compiled = float(eager.detach()), float(compiled.detach())
    print("loss eager", sig4(eager), "| inductor", sig4(compiled))
    print("same loss and gradient (float32 rounding):",
          abs(eager - compiled) <= 1e-6 * abs(eager)
          and torch.allclose(eager_gradient, compiled_gradient, rtol=1e-5, atol=1e-7))
    try:
        inductor_loss(logits, void_masks)
    except RuntimeError as error:
        print("a void label in inductor's code raises RuntimeError naming check_values=False:",
              "check_values=False" in str(error))

# %% [markdown]
# **Reveal.** Yes to both (where the cell found a compiler and ran the comparison): inductor's code
# gives the eager loss and gradient to float32 rounding, and the value check runs inside the generated
# code.

# %% [markdown]
# ## Summary
#
# * Under DDP, `reduction="mean"` with an ignore mask (or `"weighted_mean"`) is a **per-rank** mean:
#   a kept pixel counts `1 / (W · k_r)` (`w / (W · S_r)` for the weighted mean, `S_r` the rank's kept
#   weight), so ranks with few kept pixels get more say. Here one pixel of rank 0 counted 7 times as
#   much as one of rank 1 (6.855 times with the weight map), and the gradient was 14 % off (4.044 % and
#   6.782 % with the weight map).
# * `process_group=group` divides by the global count (or kept weight): each rank returns
#   `local_sum · W / D`, DDP's average is then the single-process gradient, and the mean of the logged
#   values is the global loss.
# * The builders (`count_positives`, `pos_weight_from_targets`, `median_frequency_weights`) take
#   `process_group=` too and return the whole data set's weights on every rank. A shard's own
#   `pos_weight` is noisy, the more so the rarer the positives (a 14.58 % spread over shards of 4096
#   pixels at a positive rate of 0.01).
# * Under `torch.autocast` (bfloat16 and float16 here) the loss runs in float32, as PyTorch's, and
#   was identical to it. Under `torch.compile`, also with `fullgraph=True`, it traces whole (with
#   `aot_eager` and with inductor); value checks become asserts in the graph, and
#   `check_values=False` (or `bw.set_value_checks(False)`) leaves them out.
#
# ## Exercises
#
# Each cell prints a question. Predict or compute your answer first, then replace `None` with it and run
# the cell: a wrong answer gets a hint that says what it would mean. When you have tried,
# `show_solution("10.1")` prints the worked solution of exercise 10.1 (and likewise for the others).

# %%
from bceweights.lessons.exercises import (
    LESSON10_1_QUESTION,
    LESSON10_2_QUESTION,
    LESSON10_3_QUESTION,
    check_lesson10_1,
    check_lesson10_2,
    check_lesson10_3,
    show_solution,
)

# %% [markdown]
# **10.1** Transfer: section 1 with three ranks and other kept counts.

# %%
print(LESSON10_1_QUESTION)
my_ratio = None
_ = check_lesson10_1(my_ratio)

# %% [markdown]
# **10.2** Transfer: what one rank returns with `process_group=`.

# %%
print(LESSON10_2_QUESTION)
my_loss_value = None
_ = check_lesson10_2(my_loss_value)

# %% [markdown]
# **10.3** Section 2: the dtype of the loss under autocast.

# %%
print(LESSON10_3_QUESTION)
my_dtype = None
_ = check_lesson10_3(my_dtype)
