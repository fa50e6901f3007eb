"""``process_group=``: global means and global counts across 2 real processes (gloo on 127.0.0.1).

The ranks hold shards of one global batch, of uneven sizes and with uneven ignored/weighted shares.
Each rank computes its loss with ``process_group=dist.group.WORLD`` and backpropagates into shared
parameters; the gradients are then averaged over the ranks, as DDP does. That average must equal the
gradient of the single-process loss over the whole batch (float64, tight tolerance). Without the group
it does not, which the test also checks, so it can fail.
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

import bceweights as bw
from bceweights.lessons.ranks import free_loopback_port, run_on_ranks

WORLD_SIZE = 2
SHARDS = (slice(0, 4), slice(4, 6))  # uneven: 4 samples on rank 0, 2 on rank 1
# (loss, reduction, ignore?, weight?, backend)
CASES = [
    ("bce", "mean", False, False, "torch"),
    ("bce", "mean", True, False, "torch"),
    ("bce", "weighted_mean", False, True, "torch"),
    ("bce", "weighted_mean", True, True, "torch"),
    ("bce", "weighted_mean", True, False, "torch"),
    ("bce", "sum", True, True, "torch"),
    ("focal", "mean", True, True, "torch"),
    ("focal", "weighted_mean", True, True, "torch"),
    # one fused signature (each costs a compile in both ranks): the wiring is backend-independent
    ("bce", "weighted_mean", True, True, "fused"),
]


def global_batch() -> dict[str, torch.Tensor]:
    """One batch (N=6, C=2, H=4, W=4) in float64; rank 0's pixels are mostly ignored, rank 1's kept."""
    g = torch.Generator().manual_seed(0)
    n, c, h, w = 6, 2, 4, 4
    images = torch.randn(n, c, h, w, generator=g, dtype=torch.float64)
    target = (torch.rand(n, c, h, w, generator=g, dtype=torch.float64) < 0.3).double()
    keep_share = torch.tensor([0.1, 0.1, 0.2, 0.1, 0.9, 1.0], dtype=torch.float64).view(n, 1, 1, 1)
    ignore = torch.rand(n, 1, h, w, generator=g, dtype=torch.float64) >= keep_share
    weight = torch.rand(n, 1, h, w, generator=g, dtype=torch.float64) * 3
    labels = torch.randint(0, 3, (n, h, w), generator=g)
    labels[4:, 0, 0] = 2
    return {"images": images, "target": target, "ignore": ignore, "weight": weight, "labels": labels}


def parameters() -> tuple[torch.Tensor, torch.Tensor]:
    """The shared model: per-channel scale and bias, logits = images * scale + bias."""
    scale = torch.tensor([1.5, -0.7], dtype=torch.float64).view(2, 1, 1).requires_grad_()
    bias = torch.tensor([-0.3, 0.4], dtype=torch.float64).view(2, 1, 1).requires_grad_()
    return scale, bias


def loss_and_grads(batch: dict, case: tuple, process_group=None) -> tuple[float, torch.Tensor]:
    kind, reduction, use_ignore, use_weight, backend = case
    scale, bias = parameters()
    logits = batch["images"] * scale + bias
    options = dict(
        weight=batch["weight"] if use_weight else None,
        ignore=batch["ignore"] if use_ignore else None,
        reduction=reduction,
        backend=backend,
        process_group=process_group,
    )
    if kind == "focal":
        loss = bw.focal_bce_with_logits(logits, batch["target"], gamma=2.0, alpha=0.25, **options)
    else:
        loss = bw.bce_with_logits(logits, batch["target"], **options)
    loss.backward()
    return float(loss.detach()), torch.cat([scale.grad.flatten(), bias.grad.flatten()])


def eager(case: tuple) -> tuple:
    """The same case on the eager path: the single-process reference every backend must match."""
    return (*case[:4], "torch")


def shard(batch: dict, rank: int) -> dict:
    return {name: value[SHARDS[rank]] for name, value in batch.items()}


def worker(rank: int, world_size: int) -> dict:
    """One rank's results, run by :func:`bceweights.lessons.ranks.run_on_ranks` (gloo on 127.0.0.1)."""
    group = dist.group.WORLD
    local = shard(global_batch(), rank)
    results: dict = {"cases": {}, "builders": {}}
    for case in CASES:
        row = {}
        for name, pg in (("global", group), ("local", None)):
            loss, grads = loss_and_grads(local, case, pg)
            averaged = grads.clone()
            dist.all_reduce(averaged)  # DDP averages the gradients over the ranks
            averaged /= WORLD_SIZE
            logged = torch.tensor([loss], dtype=torch.float64)
            dist.all_reduce(logged)
            row[name] = {"grad": averaged, "loss": loss, "mean_logged": float(logged) / WORLD_SIZE}
        results["cases"][case] = row
    results["builders"] = {
        "count_positives": bw.count_positives(local["target"], process_group=group),
        "pos_weight_from_targets": bw.pos_weight_from_targets(local["target"], process_group=group),
        "pos_weight_loader": bw.pos_weight_from_targets(
            [local["target"][i : i + 1] for i in range(local["target"].shape[0])], process_group=group
        ),
        "median_frequency_labels": bw.median_frequency_weights(local["labels"], num_classes=3, process_group=group),
        "median_frequency_masks": bw.median_frequency_weights(local["target"], process_group=group),
    }
    return results


@pytest.fixture(scope="module")
def ranks() -> list[dict]:
    return run_on_ranks(worker, world_size=WORLD_SIZE)


MEAN_CASES = [c for c in CASES if c[1] in ("mean", "weighted_mean")]


@pytest.mark.parametrize("case", MEAN_CASES, ids=lambda c: "-".join(str(v) for v in c))
def test_rank_averaged_gradient_equals_the_single_process_gradient(ranks, case):
    reference_loss, reference_grad = loss_and_grads(global_batch(), eager(case))
    for rank in ranks:
        row = rank["cases"][case]
        torch.testing.assert_close(row["global"]["grad"], reference_grad, rtol=1e-12, atol=1e-14)
        # the mean of the values the ranks log is the global loss
        assert row["global"]["mean_logged"] == pytest.approx(reference_loss, rel=1e-12)


@pytest.mark.parametrize("case", [c for c in MEAN_CASES if c[2] or c[3]], ids=lambda c: "-".join(str(v) for v in c))
def test_without_the_group_uneven_ranks_get_the_wrong_gradient(ranks, case):
    _, reference_grad = loss_and_grads(global_batch(), eager(case))
    local = ranks[0]["cases"][case]["local"]["grad"]
    assert (local - reference_grad).abs().max() > 1e-3


def test_sum_is_unchanged_by_the_group(ranks):
    case = ("bce", "sum", True, True, "torch")
    row = ranks[0]["cases"][case]
    assert row["global"]["loss"] == row["local"]["loss"]


@pytest.mark.parametrize("name", ["count_positives", "pos_weight_from_targets", "pos_weight_loader",
                                  "median_frequency_labels", "median_frequency_masks"])
def test_builders_return_the_union_result_on_every_rank(ranks, name):
    batch = global_batch()
    expected = {
        "count_positives": lambda: bw.count_positives(batch["target"]),
        "pos_weight_from_targets": lambda: bw.pos_weight_from_targets(batch["target"]),
        "pos_weight_loader": lambda: bw.pos_weight_from_targets(batch["target"]),
        "median_frequency_labels": lambda: bw.median_frequency_weights(batch["labels"], num_classes=3),
        "median_frequency_masks": lambda: bw.median_frequency_weights(batch["target"]),
    }[name]()
    for rank in ranks:
        torch.testing.assert_close(rank["builders"][name], expected, rtol=1e-12, atol=0)


def test_a_group_without_init_says_how_to_initialise():
    assert not dist.is_initialized()
    with pytest.raises(RuntimeError, match="init_process_group"):
        bw.bce_with_logits(torch.zeros(2, 3), torch.zeros(2, 3), process_group=object())
    with pytest.raises(RuntimeError, match="init_process_group"):
        bw.count_positives(torch.zeros(2, 3), process_group=object())


def test_no_group_means_no_collective_call():
    # process_group=None never touches torch.distributed, so it works without init
    x, y = torch.randn(4, 3, dtype=torch.float64), torch.rand(4, 3, dtype=torch.float64)
    torch.testing.assert_close(
        bw.bce_with_logits(x, y, process_group=None), torch.nn.functional.binary_cross_entropy_with_logits(x, y)
    )


def test_single_rank_group_equals_the_local_mean(tmp_path):
    """A group of one process: the global mean is the local mean, on both backends."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_loopback_port()}", rank=0, world_size=1)
    try:
        batch = global_batch()
        for case in CASES[:5]:
            local_loss, local_grad = loss_and_grads(batch, case)
            group_loss, group_grad = loss_and_grads(batch, case, dist.group.WORLD)
            assert group_loss == pytest.approx(local_loss, rel=1e-12)
            torch.testing.assert_close(group_grad, local_grad, rtol=1e-12, atol=1e-15)
    finally:
        dist.destroy_process_group()
