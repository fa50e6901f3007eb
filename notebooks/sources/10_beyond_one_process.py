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
# ## 1 · Q21: a masked mean over two ranks
#
# Under DDP each process (*rank*) computes the loss on its own part of the batch, and DDP then
# **averages the gradients** over the `W` ranks. With `reduction="mean"` and an ignore mask, each rank
# divides its sum by *its own* number of kept pixels `k_r`. A kept pixel on rank `r` therefore enters
# the averaged gradient with weight `1 / (W · k_r)`.
#
# The experiment: 2 ranks, each with 512 pixels of a two-parameter model
# (`logits = images · scale + bias`). Rank 0 keeps only 64 of its pixels (the rest is void), rank 1
# keeps 448. One process holding both halves would divide by all `64 + 448 = 512` kept pixels.
#
# **Predict.** With the per-rank mean, how much more does one kept pixel of rank 0 count than one of
# rank 1? Is the averaged gradient the gradient of the single-process loss?

# %%
# rank_step averages the gradients with dist.all_reduce(...) / W, which is what DDP does after backward
# (examples/ddp_train.py uses DistributedDataParallel itself).
ranks = run_on_ranks(global_mean.rank_step, world_size=2)
single = global_mean.single_process_step(world_size=2)

world = len(ranks)
kept = [r["kept"] for r in ranks]
print("rank  kept pixels  logged loss: per-rank mean  with process_group")
for r in ranks:
    print(f"{r['rank']:>4}  {r['kept']:>11}  {sig4(r['loss_per_rank']):>26}  {sig4(r['loss_global']):>17}")
print(f"mean of the logged values:      {sig4(sum(r['loss_per_rank'] for r in ranks) / world):>12}"
      f"  {sig4(sum(r['loss_global'] for r in ranks) / world):>17}")
print(f"one process over both shards:   {sig4(single['loss']):>12}   (kept pixels {single['kept']})")

# %% [markdown]
# **Reveal.** Under the per-rank mean a kept pixel of rank 0 has weight `1 / (2 · 64) = 1/128` in the
# averaged gradient and one of rank 1 has `1 / (2 · 448) = 1/896`: **7 times** less say, for no reason
# but where the sampler happened to put it. The loss DDP optimises is then the mean of the two ranks'
# means, 0.4375, not the mean over all kept pixels, 0.4518.
#
# `process_group=dist.group.WORLD` all-reduces the denominator. Rank `r` returns
# `local_sum_r · W / D`, with `D = Σ_r k_r` the global count (it carries no gradient). Then DDP's
# average, `(1/W) Σ_r ∇(local_sum_r · W / D) = ∇(Σ_r local_sum_r) / D`, is exactly the gradient of the
# single-process loss, and every kept pixel has weight `1/512`. Each rank's *logged* value is no
# longer a mean of anything by itself (0.1046 and 0.799 above); the mean of the logged values over the
# ranks is the global loss, 0.4518.

# %%
reference = single["gradient"]
for name in ("per_rank", "global"):
    gradient = ranks[0][f"gradient_{name}"]
    error = float((gradient - reference).abs().max())
    print(f"{name:<9} averaged gradient (d/dscale, d/dbias) = ({sig4(float(gradient[0]))}, {sig4(float(gradient[1]))})"
          f"   equals one process's within 1e-12: {error < 1e-12}")
print(f"one process               (d/dscale, d/dbias) = ({sig4(float(reference[0]))}, {sig4(float(reference[1]))})")
off = (ranks[0]["gradient_per_rank"] - reference) / reference
print(f"per-rank gradient off by {sig4(100 * float(off[0]))} % (d/dscale) and {sig4(100 * float(off[1]))} % (d/dbias)")
per_rank_weight = [1 / (world * k) for k in kept]
print(f"weight of one kept pixel, per-rank mean: rank 0 {sig4(per_rank_weight[0])}, rank 1 {sig4(per_rank_weight[1])}"
      f" (ratio {sig4(per_rank_weight[0] / per_rank_weight[1])});  with process_group: {sig4(1 / sum(kept))} on both")

# %% [markdown]
# The per-rank gradient is off by about 14 % in both components here (13.67 % and −13.66 %). With
# `reduction="weighted_mean"` the same holds for the sum of the weights (each rank's kept weight is
# all-reduced). `"sum"` and `"none"` need no denominator, so `process_group=` leaves them unchanged;
# note that DDP's averaging still divides a summed loss's gradient by `W`.
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
# so the ranks train slightly different losses; with it every rank gets one process's 1.901. The gap
# grows with the imbalance, and with shards that differ (a sampler without shuffling, per-site data). `examples/ddp_train.py` does both (the counts
# and the mean) inside `DistributedDataParallel` and checks its first step against one process;
# `tests/test_distributed.py` checks every reduction.

# %% [markdown]
# ## 2 · Q22: mixed precision
#
# Under `torch.autocast`, PyTorch runs `binary_cross_entropy_with_logits` in **float32** whatever the
# autocast dtype: a loss summed over many elements in bfloat16 (8 significant bits, 7 of them stored) would lose most of
# its digits. `bw.bce_with_logits` follows the same rule.
#
# **Predict.** In a bfloat16 autocast region, with bfloat16 logits from a layer, what dtype does the
# loss have, and how far is it from PyTorch's?

# %%
g = torch.Generator().manual_seed(0)
layer = nn.Conv2d(1, 3, 3, padding=1)
images = torch.randn(4, 1, 16, 16, generator=g)
masks = (torch.rand(4, 3, 16, 16, generator=g) < 0.2).float()
pos_weight = torch.tensor([4.0, 9.0, 1.5]).view(3, 1, 1)
with torch.autocast("cpu", dtype=torch.bfloat16):
    logits = layer(images)
    ours = bw.bce_with_logits(logits, masks, pos_weight=pos_weight)
    theirs = F.binary_cross_entropy_with_logits(logits, masks, pos_weight=pos_weight)
print("logits dtype:", logits.dtype, "| loss dtype: bceweights", ours.dtype, ", PyTorch", theirs.dtype)
difference = float((ours - theirs).abs().detach())
print("relative difference:", sig4(difference / float(theirs.abs().detach())), "| below 1e-6:", difference <= 1e-6 * float(theirs.abs().detach()))

# %% [markdown]
# **Reveal.** Both are float32 and agree to float32 rounding. The logits are bfloat16 (the convolution
# ran in bfloat16), but the loss reads them into float32 before computing. With float16 on a GPU
# (`torch.autocast("cuda", dtype=torch.float16)`) the same rule holds; use a `GradScaler` there, as
# for any float16 training, since small gradients underflow in float16.

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
# AOTAutograd's forward and backward graphs, without generating code, so it takes a second; the
# default `"inductor"` backend would also compile them to machine code. This lesson runs on the CPU:
# float16 autocast on CUDA, NCCL and inductor are not run here.)

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

# %% [markdown]
# ## Summary
#
# * Under DDP, `reduction="mean"` with an ignore mask (or `"weighted_mean"`) is a **per-rank** mean:
#   a kept pixel counts `1 / (W · k_r)`, so ranks with few kept pixels get more say. Here one pixel of
#   rank 0 counted 7 times as much as one of rank 1, and the gradient was 14 % off.
# * `process_group=group` divides by the global count: each rank returns `local_sum · W / D`, DDP's
#   average is then the single-process gradient, and the mean of the logged values is the global loss.
# * The builders (`count_positives`, `pos_weight_from_targets`, `median_frequency_weights`) take
#   `process_group=` too and return the whole data set's weights on every rank.
# * Under `torch.autocast` the loss runs in float32, as PyTorch's. Under `torch.compile`, also with
#   `fullgraph=True`, it traces whole; value checks become asserts in the graph, and
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
