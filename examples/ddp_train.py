"""Weighted BCE under DistributedDataParallel: global class weights and a global masked mean.

Run on 2 CPU processes (gloo on 127.0.0.1)::

    torchrun --nproc-per-node 2 examples/ddp_train.py            # a few training steps
    torchrun --nproc-per-node 2 examples/ddp_train.py --check    # also compare the first step's
                                                                 # gradients with one process

Each rank reads its ``DistributedSampler`` shard of the lessons' plates data set. Pixels of a void
border are ignored, and the border is wide in some images and absent in others, so the ranks keep
different numbers of pixels: exactly the case where a per-rank mean gives the wrong gradient.

* ``bw.pos_weight_from_targets(..., process_group=group)`` counts positives over every shard: every
  rank gets the pos_weight of the whole data set.
* ``bw.bce_with_logits(..., ignore=void, process_group=group)`` divides by the number of kept pixels
  of the *global* batch, so DDP's gradient average is the gradient of the single-process loss.

With ``--check``, rank 0 also runs one step of the same model on the whole global batch in a single
process and prints the largest difference between the two gradients, with and without
``process_group`` (exit status 1 if the global one is not within float64 rounding).
"""

from __future__ import annotations

import argparse
import copy
import gc
import sys

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import bceweights as bw
from bceweights.lessons import data
from bceweights.lessons.model import TinyUNet

IMAGES = 32
BATCH_PER_RANK = 4
SIZE = 16


def void_border(index: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """``(B, 1, size, size)`` bool: a void border of width ``index % 4`` pixels (0 to 3), per image."""
    width = (index % 4).view(-1, 1, 1, 1)
    rows = torch.arange(size).view(1, 1, size, 1)
    cols = torch.arange(size).view(1, 1, 1, size)
    distance = torch.minimum(torch.minimum(rows, size - 1 - rows), torch.minimum(cols, size - 1 - cols))
    return distance < width


def make_dataset() -> TensorDataset:
    plates = data.make_plates(IMAGES, SIZE, seed=0)
    return TensorDataset(plates.images, plates.masks, torch.arange(IMAGES))


def loss_fn(model, images, masks, index, pos_weight, process_group):
    return bw.bce_with_logits(
        model(images), masks, pos_weight=pos_weight, channel_dim=1,
        ignore=void_border(index), process_group=process_group,
    )


def gradients(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5, help="training steps")
    parser.add_argument("--check", action="store_true", help="compare the first step with one process")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    try:
        status = train(args.steps, args.check)
        # DDP's reducer holds the process group and runs C++ threads on it. If the DDP object
        # outlives destroy_process_group (say, until interpreter exit), tearing those threads down
        # aborts the process ("terminate called without an active exception"). train() has
        # returned, so its DDP object is unreachable; collect it, then leave the group together.
        gc.collect()
        dist.barrier()
    finally:
        dist.destroy_process_group()
    return status


def train(steps: int, check: bool) -> int:
    """A few DDP steps with a global pos_weight and a global masked mean; 1 if ``check`` fails."""
    rank, world = dist.get_rank(), dist.get_world_size()
    group = dist.group.WORLD
    dataset = make_dataset()
    sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=False)
    loader = DataLoader(dataset, batch_size=BATCH_PER_RANK, sampler=sampler)

    # One pos_weight for the whole data set, from every rank's shard. Counting from the sampler's loader is
    # exact only while IMAGES (32) is a multiple of the world size (2 or 4 processes): DistributedSampler
    # then pads nothing. Otherwise it repeats samples to even out the shards, and they are counted twice.
    # Count disjoint slices of the data set instead in that case (lesson 11, DistributedSampler).
    shard_masks = [masks for _, masks, _ in loader]
    pos_weight = bw.pos_weight_from_targets(shard_masks, channel_dim=1, process_group=group)
    if rank == 0:
        print("pos_weight over all shards:", [round(v, 3) for v in pos_weight.tolist()])

    model = TinyUNet(1, 3, seed=0, dtype=torch.float64)  # float64: the check below is exact to rounding
    reference = copy.deepcopy(model)
    ddp = DistributedDataParallel(model)
    optimizer = torch.optim.Adam(ddp.parameters(), lr=1e-2)

    status = 0
    for step, (images, masks, index) in zip(range(steps), loader):
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(ddp, images, masks, index, pos_weight, group)
        loss.backward()  # DDP averages the gradients over the ranks
        if step == 0 and check:
            status = check_first_step(ddp, reference, dataset, images, masks, index, pos_weight)
        optimizer.step()
        logged = loss.detach().clone()
        dist.all_reduce(logged)  # each rank's value is local_sum * W / D; their mean is the global loss
        if rank == 0:
            print(f"step {step}: loss over the global batch {float(logged) / world:.4f}")
    return status


def check_first_step(ddp, reference, dataset, images, masks, index, pos_weight) -> int:
    """Compare the DDP gradient of the first step with one process on the union of the batches."""
    rank, world = dist.get_rank(), dist.get_world_size()
    ddp_grad = gradients(ddp.module)

    # The same step with a per-rank mean (process_group=None), averaged as DDP would.
    local_model = copy.deepcopy(reference)
    loss_fn(local_model, images, masks, index, pos_weight, None).backward()
    local_grad = gradients(local_model)
    dist.all_reduce(local_grad)
    local_grad /= world

    # The global batch of the first step: every rank's first BATCH_PER_RANK indices.
    first = [list(sampler_for(rank_, world, dataset))[:BATCH_PER_RANK] for rank_ in range(world)]
    union = torch.tensor([i for part in first for i in part])
    single = copy.deepcopy(reference)
    all_images, all_masks, all_index = dataset.tensors[0][union], dataset.tensors[1][union], dataset.tensors[2][union]
    loss_fn(single, all_images, all_masks, all_index, pos_weight, None).backward()
    single_grad = gradients(single)

    if rank != 0:
        return 0
    scale = float(single_grad.abs().max())
    with_group = float((ddp_grad - single_grad).abs().max())
    without_group = float((local_grad - single_grad).abs().max())
    print(f"first-step gradients vs one process (largest |difference|, largest |gradient| {scale:.3g}):")
    print(f"  process_group=group: {with_group:.3g}")
    print(f"  process_group=None : {without_group:.3g}")
    ok = with_group <= 1e-12 * max(scale, 1.0)
    print("match" if ok else "MISMATCH")
    return 0 if ok else 1


def sampler_for(rank: int, world: int, dataset: TensorDataset) -> DistributedSampler:
    return DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=False)


if __name__ == "__main__":
    sys.exit(main())
