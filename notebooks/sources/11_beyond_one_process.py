# %% [markdown]
# # Lesson 11 · Beyond one process: DDP, mixed precision and `torch.compile`
#
# Questions answered: Q21, Q22
#
# **Goal.** After this lesson you know what a masked or weighted mean means when the batch is split
# over several processes, why the per-rank mean that `DistributedDataParallel` gives you by default
# is a different loss when the ranks keep different numbers of pixels, how `process_group=` makes the
# mean global, why every rank must call it, what the same denominator means for gradient
# accumulation, how `DistributedSampler`'s padding skews counts, how to count class weights over a data
# set that no process sees whole, and what to expect from the loss under `torch.autocast` (float16's
# range included) and `torch.compile`.
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
# of "weighted_mean" start with "weighted_". The same launch also runs the all-void steps shown later
# in this section (starting processes takes seconds).
launched = run_on_ranks(global_mean.rank_steps, world_size=2)
ranks = [result["step"] for result in launched]
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
# every rank what one process returns on the union of the shards, as long as the shards are disjoint
# (`DistributedSampler` pads, see below):

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
# grows as the positives per shard get fewer. The formula assumes independent pixels. Real positives
# come in objects: with objects of about `s` pixels, what varies from shard to shard is the number of
# objects, and the relative noise is about `√s` times larger, `√(s / (n q (1 − q)))`. So count objects,
# not pixels, when you judge whether a shard holds enough positives. Shards that differ in content (a
# sampler without shuffling, per-site data) would add a bias on top; that is not shown here.
#
# `examples/ddp_train.py` does both (the counts and the mean) inside `DistributedDataParallel` and
# checks its first step against one process; `tests/test_distributed.py` checks every reduction. Its
# counts come from its `DistributedSampler` loaders, which is exact there only because its 32 images
# split evenly over the 2 ranks it runs on (`32 % W == 0`: the sampler pads nothing).
#
# ### Every rank calls the loss, every step
#
# With `process_group=`, the loss itself calls `dist.all_reduce` on the denominator. An all-reduce is a
# *collective*: every rank of the group must call it, the same number of times, in the same order,
# because the backend pairs the ranks' calls by their order, not by step. A rank that skips the loss
# on some step, say with `if keep.any(): loss = ...` to save time on a batch that is all void, does not
# make the others wait at that step: their all-reduce pairs with the skipping rank's *next* one. In a
# two-rank `gloo` run made while writing this lesson (not run in this notebook), rank 1 skipped step 0:
# rank 0's step-0 denominator came back as its own step-0 count plus rank 1's step-1 count, both ranks
# ran on with counts mixed across steps, and the error came only at the end, when rank 1 finished and
# rank 0's last call found no partner ("Connection closed by peer"). Where the calls that meet differ in
# size or kind (the loss's one-number count against DDP's gradient buckets), the job fails sooner, with
# an error or a wait until the process group's timeout (`init_process_group(timeout=...)`). DDP's own
# gradient all-reduce in `backward` has the same rule, and a rank that skips the loss skips its backward
# too. This lesson runs the safe pattern: the rank with the all-void batch calls the loss like the
# others. Its kept count is 0, so it adds 0 to the sum and 0 to the denominator.
#
# **Predict.** Rank 1's batch is all void and rank 0 keeps its 64 pixels. What does rank 1's loss
# return, and is the averaged gradient the gradient of one process over rank 0's pixels? And when
# every rank's batch is all void?

# %%
void_ranks = [result["void"] for result in launched]  # global_mean.rank_all_void_step, run in section 1's launch
void_reference = global_mean.single_process_void_reference(world_size=2)
for step, label in (("one_void", "rank 1 all void"), ("all_void", "every rank all void")):
    losses = [sig4(r[f"{step}_loss"]) for r in void_ranks]
    gradient = void_ranks[0][f"{step}_gradient"]
    print(f"{label:<20}  kept per rank {[r[f'{step}_kept'] for r in void_ranks]}  loss per rank {losses}"
          f"  mean of the logged values {sig4(sum(r[f'{step}_loss'] for r in void_ranks) / 2)}"
          f"  averaged gradient {pair(gradient)}")
print(f"one process, rank 0's pixels only: loss {sig4(void_reference['loss'])}, gradient {pair(void_reference['gradient'])}"
      f" | equal to the 'rank 1 all void' step within 1e-12:"
      f" {float((void_ranks[0]['one_void_gradient'] - void_reference['gradient']).abs().max()) < 1e-12}")

# %% [markdown]
# **Reveal.** Rank 1 returns 0 and contributes a zero gradient; rank 0 returns twice its pixels' mean
# (`local_sum · W / D` with `D = 64`), and the mean of the logged values, 0.4184, is one process's loss
# over rank 0's pixels, with the same gradient. When no rank keeps a pixel, the global count is 0 and
# the loss is 0 with a zero gradient on every rank (no 0 / 0). So: call the loss unconditionally; if you
# must skip work, skip it *after* the collective calls, on every rank alike.
#
# ### Gradient accumulation: the denominator spans the micro-batches
#
# Accumulating gradients over micro-batches (several `backward` calls, one `optimizer.step`) is the
# same problem as DDP, in time instead of across processes. The usual recipe divides each
# micro-batch's mean by the number of micro-batches; with an ignore mask each micro-batch's mean has
# its own denominator, so a kept pixel of a sparse micro-batch counts more, exactly as on a rank with
# few kept pixels.
#
# **Predict.** Four micro-batches keep 100, 300, 50 and 350 pixels. How far is `loss / 4` of each
# micro-batch's ignore mean from the gradient of one big batch? And dividing each micro-batch's *sum*
# by the big batch's kept count, 800?

# %%
accumulation = torch.Generator().manual_seed(10)
kept_counts = (100, 300, 50, 350)
scale = torch.tensor(1.2, dtype=torch.float64, requires_grad=True)
bias = torch.tensor(-0.4, dtype=torch.float64, requires_grad=True)
micro = []
for count in kept_counts:  # each micro-batch: 512 pixels, `count` of them kept
    features = torch.randn(512, dtype=torch.float64, generator=accumulation)
    labels = (features + 0.8 * torch.randn(512, dtype=torch.float64, generator=accumulation) > 0.5).double()
    ignore = torch.ones(512, dtype=torch.bool)
    ignore[torch.randperm(512, generator=accumulation)[:count]] = False
    micro.append((features, labels, ignore))


def gradient_of(losses) -> torch.Tensor:
    """d/dscale and d/dbias of the sum of the given losses (one backward each, as accumulation does)."""
    scale.grad = bias.grad = None
    for loss in losses:
        loss.backward()
    return torch.stack([scale.grad, bias.grad])


def micro_loss(features, labels, ignore, **options):
    return bw.bce_with_logits(features * scale + bias, labels, ignore=ignore, **options)


big = gradient_of([micro_loss(*(torch.cat(parts) for parts in zip(*micro)))])  # one batch, every micro-batch
mean_over_steps = gradient_of([micro_loss(*m) / len(micro) for m in micro])
sum_over_total = gradient_of([micro_loss(*m, reduction="sum") / sum(kept_counts) for m in micro])
for name, gradient in (("one big batch (reference)", big), ("mean / 4 per micro-batch", mean_over_steps),
                       ("sum / 800 per micro-batch", sum_over_total)):
    off = 100 * float(((gradient - big) / big).abs().max())
    print(f"{name:<27} gradient {pair(gradient)}   largest difference to the big batch "
          + (f"{sig4(off)} %" if off > 1e-10 else "below 1e-10 %"))

# %% [markdown]
# **Reveal.** `mean / 4` gives every micro-batch the same say whatever it keeps: a kept pixel of the
# 50-pixel micro-batch counts 7 times one of the 350-pixel one, and the gradient is off, here by 10.7 %
# in its larger component. Dividing each micro-batch's sum by the total kept count gives the big batch's
# gradient exactly. Count the kept pixels (or the kept weight, for `"weighted_mean"`) of the whole
# accumulated batch before the first backward, and guard it as lesson 10 (sections 3 and 4) does: a count
# with `.clamp_min(1)`, a kept weight `S` with `torch.where(S > 0, S, 1)`, so that an accumulated batch with
# nothing kept gives 0 and not 0 / 0.
#
# Under DDP the two problems add up: DDP averages over the `W` ranks, so each micro-batch's loss must
# be `local_sum · W / D_total`, with `D_total` the kept count over every rank *and* every micro-batch.
# `process_group=` all-reduces only the current call's denominator, one micro-batch's, so it does not
# give that. Take `reduction="sum"`, all-reduce the total count yourself (`dist.all_reduce` once, before
# the first backward), divide each micro-batch's sum by it (guarded, `.clamp_min(1)`) and multiply by `W`, and run every
# micro-batch but the last inside `model.no_sync()` (`model` the `DistributedDataParallel` wrapper), so
# that DDP all-reduces the accumulated gradients once, after the last backward.
#
# ### `DistributedSampler` pads the data set
#
# `DistributedSampler` gives every rank the same number of samples. When the data set's length is not
# divisible by the number of ranks, it **pads** by repeating samples from the start (unless
# `drop_last=True`, which drops the tail instead). Counts made from what the ranks see then count some
# samples twice.
#
# **Predict.** Ten samples over four ranks: how many indices do the ranks see in total, and which?

# %%
from torch.utils.data import DistributedSampler

labels_10 = torch.tensor([1, 0, 0, 1, 0, 0, 0, 1, 0, 0])  # a data set of 10 samples, 3 positives
seen = []
for rank in range(4):
    indices = list(DistributedSampler(range(10), num_replicas=4, rank=rank, shuffle=False))
    seen += indices
    print(f"rank {rank}: indices {indices}")
counted = labels_10[seen]
print(f"indices seen over the ranks: {len(seen)} for 10 samples; seen twice: "
      f"{sorted(i for i in set(seen) if seen.count(i) > 1)}")
print(f"positives counted over the ranks {int(counted.sum())} of {len(seen)} "
      f"(neg/pos {sig4(float((counted == 0).sum() / counted.sum()))}); in the data set {int(labels_10.sum())} of 10 "
      f"(neg/pos {sig4(float((labels_10 == 0).sum() / labels_10.sum()))})")
dropped = sum(len(list(DistributedSampler(range(10), num_replicas=4, rank=r, shuffle=False, drop_last=True))) for r in range(4))
print(f"with drop_last=True the ranks see {dropped} indices: the rest are left out")

# %% [markdown]
# **Reveal.** The four ranks see 12 indices: 0 and 1 twice, so the positive sample 0 is counted twice and
# `neg/pos` over the ranks is 2 instead of the data set's 2.333. With shuffling the repeated samples are others, but
# there are still `W · ceil(n / W) − n` of them per epoch. On a large data set the error is small, but it
# is there in every count and every per-epoch mean made from what the ranks see. Count class weights from
# the data set itself (each sample once, e.g. each rank counting a disjoint slice and `process_group=`
# summing), or make the counting pass with `drop_last=True` when leaving a few samples out is acceptable.

# %% [markdown]
# ## 2 · Q22: mixed precision
#
# Under `torch.autocast`, PyTorch runs `binary_cross_entropy_with_logits` in **float32** whatever the
# autocast dtype: in bfloat16 (8 significant bits, 7 of them stored) or float16 (11 bits, 10 stored)
# every element's loss and the result would be rounded to those few bits. (PyTorch accumulates sums of
# low-precision tensors in float32, so a mean keeps more digits than its dtype suggests; the rounding of
# each element and of the result remains.) `bw.bce_with_logits` follows the same rule.
#
# To see that it is autocast's rule, and not type promotion, every input must have the low dtype: with
# float32 targets, PyTorch's loss alone would come back in float32, the targets' dtype, and so does
# `bw.bce_with_logits`. A float32 `pos_weight` or `weight` does not change the dtype in either: the loss
# stays in the logits' (and targets') dtype. So here logits, targets *and* `pos_weight` are all bfloat16, or all float16.
#
# **Predict.** Outside autocast, with all inputs in bfloat16, what dtype does the loss have? Inside a
# bfloat16 autocast region? The same for float16.

# %%
g = torch.Generator().manual_seed(0)
layer = nn.Conv2d(1, 3, 3, padding=1)
images = torch.randn(4, 1, 16, 16, generator=g)
masks = (torch.rand(4, 3, 16, 16, generator=g) < 0.2).float()
pos_weight = torch.tensor([4.0, 9.0, 1.5]).view(3, 1, 1)
float32_loss = float(bw.bce_with_logits(layer(images), masks, pos_weight=pos_weight).detach())  # float32 throughout
print(f"{'inputs':<9}  {'where':<16}  {'logits':<14}  {'loss: bceweights':<16}  {'PyTorch':<14}  rel. difference"
      "  within 0.5 % of the float32 run")
for dtype in (torch.bfloat16, torch.float16):
    low_masks, low_pos_weight = masks.to(dtype), pos_weight.to(dtype)  # targets and pos_weight in the low dtype too
    for where in ("outside autocast", "inside autocast"):
        with torch.autocast("cpu", dtype=dtype, enabled=where == "inside autocast"):
            # Inside, the convolution runs in the low dtype; outside, the float32 layer's logits are cast down.
            logits = layer(images) if where == "inside autocast" else layer(images).to(dtype)
            ours = bw.bce_with_logits(logits, low_masks, pos_weight=low_pos_weight)
            theirs = F.binary_cross_entropy_with_logits(logits, low_masks, pos_weight=low_pos_weight)
        difference = abs(float(ours.detach()) - float(theirs.detach())) / abs(float(theirs.detach()))
        off = abs(float(ours.detach()) - float32_loss) / float32_loss
        print(f"{str(dtype).removeprefix('torch.'):<9}  {where:<16}  {str(logits.dtype):<14}  {str(ours.dtype):<16}"
              f"  {str(theirs.dtype):<14}  {sig4(difference):<15}  {off <= 5e-3}")

# %% [markdown]
# **Reveal.** Outside autocast, all-bfloat16 inputs give a bfloat16 loss and all-float16 inputs a
# float16 loss, from PyTorch and from `bceweights` alike: nothing promotes them. Inside autocast the
# same low-dtype inputs give a **float32** loss: that is autocast's policy for this op, not promotion.
# The two libraries agree exactly in every row (relative difference 0). Every row stays within 0.5 % of
# the run in float32 throughout; what separates them from it is rounding: of the logits in the layer,
# and, outside autocast, of the loss's own arithmetic in bfloat16 or float16 (half a unit in the last
# place is 0.2 to 0.4 % in bfloat16, whose 8 significant bits are why autocast keeps the loss in float32).
#
# **`nn.BCELoss` on probabilities.** On CUDA, autocast refuses `F.binary_cross_entropy` and
# `nn.BCELoss`: PyTorch raises a `RuntimeError` whose message begins "torch.nn.functional.binary_cross_entropy
# and torch.nn.BCELoss are unsafe to autocast" and suggests the logits form (PyTorch's
# automatic-mixed-precision documentation says the same: prefer `binary_cross_entropy_with_logits`). The
# documented reason is the backward pass, which can produce gradients float16 cannot represent; lesson 03
# showed its `1 / (p(1 − p))` and the saturation of a float16 `sigmoid` from logit 8.3. This lesson runs on the CPU, where CPU autocast treats the op differently; the next cell
# shows what the CPU does, not what CUDA does.

# %%
for dtype in (torch.bfloat16, torch.float16):
    with torch.autocast("cpu", dtype=dtype):
        probabilities = torch.sigmoid(layer(images))
        try:
            value = nn.BCELoss()(probabilities, masks)
            print(f"CPU autocast {str(dtype).removeprefix('torch.')}: probabilities {probabilities.dtype},"
                  f" nn.BCELoss runs and returns {value.dtype}")
        except RuntimeError as error:
            print(f"CPU autocast {str(dtype).removeprefix('torch.')}: RuntimeError:", str(error).splitlines()[0])

# %% [markdown]
# On this CPU build `nn.BCELoss` runs under autocast and returns float32, but its input was already
# rounded: the probabilities are bfloat16 or float16, with the saturation of lesson 03. Write the logits
# form, which is safe on both devices.
#
# **float16's range.** float16's largest finite value is 65504. Autocast keeps this loss in float32.
# Code that runs the loss in float16 itself (a `.half()` model, or float16 logits passed to the loss
# outside the autocast region) is not protected: with a large `pos_weight` an element's loss
# `p · softplus(−x)` passes that limit. And on the way back, even under autocast, the gradient reaching
# float16 logits is `(σ(x) − y) / n` for a mean over `n` elements: small enough, on a large batch, to
# fall among float16's subnormal numbers (below 6.1e-05), which carry fewer significant bits.
#
# **Predict.** `pos_weight = 2000` and a positive pixel at logit −40: what is its loss in float16
# without autocast, and with it?

# %%
x16 = torch.tensor([-40.0, -10.0, 0.0, 5.0]).half()
y16 = torch.tensor([1.0, 1.0, 0.0, 1.0]).half()
for value in (100.0, 2000.0):
    big_pos_weight = torch.tensor([value]).half()
    plain = bw.bce_with_logits(x16, y16, pos_weight=big_pos_weight, reduction="none")
    with torch.autocast("cpu", dtype=torch.float16):
        cast = bw.bce_with_logits(x16, y16, pos_weight=big_pos_weight, reduction="none")
    print(f"pos_weight {value:g}: all float16 {[sig4(v) for v in plain.tolist()]} ({plain.dtype}) | "
          f"under autocast {[sig4(v) for v in cast.tolist()]} ({cast.dtype})")

big_images = torch.randn(8, 1, 128, 128, generator=g)
big_masks = (torch.rand(8, 3, 128, 128, generator=g) < 0.2).float()
print(f"\nmean over n = {big_masks.numel()} elements; gradient of the float16 logits under autocast:")
for loss_scale in (1.0, 1024.0):
    with torch.autocast("cpu", dtype=torch.float16):
        logits = layer(big_images)
        logits.retain_grad()
        loss = bw.bce_with_logits(logits, big_masks)
    (loss * loss_scale).backward()
    exact = (torch.sigmoid(logits.detach().double()) - big_masks.double()) / big_masks.numel()
    received = logits.grad.double() / loss_scale
    subnormal = float((logits.grad.abs() < 2.0**-14).double().mean())
    error = float(((received - exact).abs() / exact.abs()).max())
    print(f"  loss x {loss_scale:<6g} share of gradient entries below 6.1e-05 (subnormal): {sig4(subnormal)};"
          f" largest relative error after dividing back: {sig4(error)}")
    layer.zero_grad()

# %% [markdown]
# **Reveal.** At `pos_weight = 100` the largest element, 4000, fits; at 2000 the element at logit −40,
# 2000 × 40 = 80 000, is `inf` in float16, and every mean or sum that contains it is `inf`. Under
# autocast the loss is float32 and stays finite. The backward side is the other end of the range: the
# gradient of a mean over 393 216 elements is at most 1/393 216 ≈ 2.5e-06 per entry, so every entry
# lands among the subnormals, where float16 keeps fewer bits: the largest relative error is 0.1115.
# Multiplying the loss by 1024 before `backward` and dividing afterwards moves every entry back into
# the normal range, and the error drops to 0.0004862. That is what
# `torch.amp.GradScaler` does automatically, with a scale it lowers whenever a gradient overflows.
# Keep `pos_weight` and focal or boundary weights to sizes whose products with a loss of a few tens stay
# far below 65504, or keep the loss in float32 (autocast does), and use a `GradScaler` with float16.

# %% [markdown]
# ## 3 · Q22: `torch.compile`
#
# `torch.compile` traces a function into a graph. The loss is ordinary tensor code and traces
# completely, value checks included: inside a graph, the check that targets lie in `[0, 1]` and that
# weights are finite and `>= 0` becomes an assert that runs with the graph (no graph break, no wait
# for the device). On the CPU, as here, a bad value then raises a `RuntimeError` that names the way
# out, `check_values=False`. On CUDA (documented behaviour, not run here) the assert is a device-side
# assert: it fails asynchronously, the error surfaces at a later synchronisation as a generic
# "device-side assert triggered" without that message, and the CUDA context is unusable afterwards. So
# once the data is known good, compile with `check_values=False` on a GPU.
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
#   values is the global loss. Every rank must call the loss on every step (the denominator is an
#   all-reduce, and collectives pair by call order: a skipped call mixes steps silently and fails
#   later); a rank with an all-void batch returns 0 and adds nothing.
# * Gradient accumulation has the same denominator problem over time: divide each micro-batch's
#   `reduction="sum"` loss by the kept count of the whole accumulated batch, kept at least 1 (here `mean / 4`
#   was 10.7 % off). Under DDP, all-reduce that total over the ranks yourself and multiply by `W` (`process_group=`
#   covers one call only), with `model.no_sync()` on all but the last micro-batch. `DistributedSampler`
#   pads to a multiple of the world size, so counts made from what the ranks see count some samples
#   twice; count from the data set.
# * The builders (`count_positives`, `pos_weight_from_targets`, `median_frequency_weights`) take
#   `process_group=` too and return the whole data set's weights on every rank. A shard's own
#   `pos_weight` is noisy, the more so the rarer the positives (a 14.58 % spread over shards of 4096
#   pixels at a positive rate of 0.01).
# * Under `torch.autocast` (bfloat16 and float16 here) the loss runs in float32, as PyTorch's, and
#   was identical to it; with all inputs in the low dtype and no autocast it stays in that dtype, so the
#   float32 is autocast's policy. On CUDA, autocast refuses `nn.BCELoss` ("unsafe to autocast"). A loss
#   run in float16 itself (a `.half()` model, float16 logits outside autocast) is not protected: an
#   element's loss above 65504 is `inf` there. Even under autocast, a mean's gradient over a large batch
#   is subnormal in the float16 logits (use a `GradScaler`). Under `torch.compile`, also with `fullgraph=True`, it traces whole (with
#   `aot_eager` and with inductor); value checks become asserts in the graph, and
#   `check_values=False` (or `bw.set_value_checks(False)`) leaves them out.
#
# ## Exercises
#
# Each cell prints a question. Predict or compute your answer first, then replace `None` with it and run
# the cell: a wrong answer gets a hint that says what it would mean. When you have tried,
# `show_solution("11.1")` prints the worked solution of exercise 11.1 (and likewise for the others).

# %%
from bceweights.lessons.exercises import (
    LESSON11_1_QUESTION,
    LESSON11_2_QUESTION,
    LESSON11_3_QUESTION,
    LESSON11_4_QUESTION,
    LESSON11_5_QUESTION,
    check_lesson11_1,
    check_lesson11_2,
    check_lesson11_3,
    check_lesson11_4,
    check_lesson11_5,
    print_questionnaire,
    show_solution,
)

# %% [markdown]
# **11.1** Transfer: section 1 with three ranks and other kept counts.

# %%
print(LESSON11_1_QUESTION)
my_ratio = None
_ = check_lesson11_1(my_ratio)

# %% [markdown]
# **11.2** Transfer: what one rank returns with `process_group=`.

# %%
print(LESSON11_2_QUESTION)
my_loss_value = None
_ = check_lesson11_2(my_loss_value)

# %% [markdown]
# **11.3** Section 2: the dtype of the loss under autocast.

# %%
print(LESSON11_3_QUESTION)
my_dtype = None
_ = check_lesson11_3(my_dtype)

# %% [markdown]
# **11.4** A concept: the safe pattern of section 1, as a multiple choice.

# %%
print(LESSON11_4_QUESTION)
my_choice = None
_ = check_lesson11_4(my_choice)

# %% [markdown]
# **11.5** Transfer: section 1's gradient accumulation, with other counts and one all-void micro-batch.

# %%
print(LESSON11_5_QUESTION)
my_denominator = None
_ = check_lesson11_5(my_denominator)

# %% [markdown]
# ## Questionnaire
#
# Short questions on the whole lesson. Answer each in a sentence or two, from memory first, then check
# with the cells above. When you have tried, `show_solution("11.Q")` prints the answers.

# %%
print_questionnaire("11")
