"""The options PyTorch does not have: channel_dim, ignore, weighted_mean, focal loss, per-call weights."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck

import bceweights as bw


@pytest.fixture
def batch():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 4, 5, generator=gen, dtype=torch.float64)
    y = (torch.rand(2, 3, 4, 5, generator=gen, dtype=torch.float64) > 0.6).double()
    mask = torch.rand(2, 4, 5, generator=gen, dtype=torch.float64)
    ignore = torch.rand(2, 1, 4, 5, generator=gen) > 0.7
    return x, y, mask, ignore


def test_channel_dim_places_a_vector_on_the_channels(batch):
    x, y, _, _ = batch
    pw = torch.tensor([6.0, 30.0, 1.0], dtype=torch.float64)
    expected = F.binary_cross_entropy_with_logits(x, y, pos_weight=pw.view(3, 1, 1))
    torch.testing.assert_close(bw.bce_with_logits(x, y, pos_weight=pw, channel_dim=1), expected)
    torch.testing.assert_close(bw.bce_with_logits(x, y, pos_weight=[6, 30, 1], channel_dim=-3), expected)
    torch.testing.assert_close(bw.bce_with_logits(x, y, pos_weight=bw.per_channel(pw, x)), expected)
    w = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    torch.testing.assert_close(
        bw.bce_with_logits(x, y, weight=w, channel_dim=1),
        F.binary_cross_entropy_with_logits(x, y, weight=w.view(3, 1, 1)),
    )


def test_ignore_drops_elements_from_sum_gradient_and_denominator(batch):
    x, y, mask, ignore = batch
    x = x.clone().requires_grad_()
    full_ignore = ignore.expand_as(x)
    loss = bw.bce_with_logits(x, y, weight=mask.unsqueeze(1), ignore=ignore)
    kept = ~full_ignore
    per_element = F.binary_cross_entropy_with_logits(x.detach(), y, weight=mask.unsqueeze(1), reduction="none")
    torch.testing.assert_close(loss, per_element[kept].sum() / kept.sum())
    loss.backward()
    assert torch.all(x.grad[full_ignore] == 0)
    assert torch.all(x.grad[kept] != 0)
    none = bw.bce_with_logits(x, y, ignore=ignore, reduction="none")
    assert torch.all(none[full_ignore] == 0)
    weighted = bw.bce_with_logits(x, y, weight=mask.unsqueeze(1), ignore=ignore, reduction="weighted_mean")
    w_full = mask.unsqueeze(1).expand_as(x)
    torch.testing.assert_close(weighted, per_element[kept].sum() / w_full[kept].sum())


def test_ignored_targets_may_hold_void_labels():
    y = torch.tensor([[0.0, 1.0, 255.0, 255.0]])
    x = torch.tensor([[0.3, -0.2, 50.0, -50.0]], requires_grad=True)
    loss = bw.bce_with_logits(x, y, ignore=y == 255)
    expected = F.binary_cross_entropy_with_logits(x[:, :2], y[:, :2])
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert x.grad[0, 2:].eq(0).all()


def test_everything_ignored_gives_zero_not_nan():
    x = torch.randn(2, 3, requires_grad=True)
    everything = torch.ones(2, 3, dtype=torch.bool)
    for reduction in ("mean", "weighted_mean", "sum"):
        loss = bw.bce_with_logits(x, torch.zeros(2, 3), ignore=everything, reduction=reduction)
        assert loss.item() == 0.0
        loss.backward()
        assert torch.all(x.grad == 0)
    zero_weight = bw.bce_with_logits(x, torch.zeros(2, 3), weight=0.0, reduction="weighted_mean")
    assert zero_weight.item() == 0.0


def test_weighted_mean_without_weight_is_the_mean_over_kept_elements(batch):
    x, y, _, ignore = batch
    torch.testing.assert_close(bw.bce_with_logits(x, y, reduction="weighted_mean"), bw.bce_with_logits(x, y))
    torch.testing.assert_close(
        bw.bce_with_logits(x, y, ignore=ignore, reduction="weighted_mean"), bw.bce_with_logits(x, y, ignore=ignore)
    )


def _torchvision_focal(x, y, gamma, alpha):
    """torchvision.ops.sigmoid_focal_loss as documented (reduction='none'); alpha < 0 disables alpha."""
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    p_t = p * y + (1 - p) * (1 - y)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return loss


@pytest.mark.parametrize("gamma,alpha", [(2.0, 0.25), (0.5, None), (3.0, 0.9), (0.0, 0.25)])
def test_focal_matches_torchvision_formula(batch, gamma, alpha):
    x, y, _, _ = batch
    ours = bw.focal_bce_with_logits(x, y, gamma, alpha, reduction="none")
    torch.testing.assert_close(ours, _torchvision_focal(x, y, gamma, -1 if alpha is None else alpha))


def test_focal_with_gamma_zero_is_plain_bce(batch):
    x, y, mask, ignore = batch
    kwargs = dict(weight=mask.unsqueeze(1), pos_weight=[2, 3, 4], channel_dim=1, ignore=ignore)
    for reduction in ("mean", "sum", "none", "weighted_mean"):
        torch.testing.assert_close(
            bw.focal_bce_with_logits(x, y, 0.0, None, reduction=reduction, **kwargs),
            bw.bce_with_logits(x, y, reduction=reduction, **kwargs),
        )


def test_focal_rejects_bad_parameters(batch):
    x, y, _, _ = batch
    with pytest.raises(ValueError, match="gamma"):
        bw.focal_bce_with_logits(x, y, gamma=-1)
    with pytest.raises(ValueError, match="alpha=None"):
        bw.focal_bce_with_logits(x, y, alpha=1.5)


OPTIONS = [
    dict(),
    dict(weight="mask"),
    dict(pos_weight="per_channel", channel_dim=1),
    dict(weight="mask", pos_weight="per_channel", channel_dim=1, ignore="ignore"),
    dict(weight="mask", ignore="ignore", reduction="weighted_mean"),
    dict(pos_weight="per_channel", channel_dim=1, reduction="sum"),
    dict(weight="mask", reduction="none"),
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "plain")
@pytest.mark.parametrize("focal", [False, True])
def test_gradcheck_every_option(options, focal):
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 3, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.rand(2, 3, 3, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    mask = (torch.rand(2, 1, 3, 2, generator=gen, dtype=torch.float64) + 0.5).requires_grad_()
    pos_weight = torch.tensor([0.5, 3.0, 8.0], dtype=torch.float64, requires_grad=True)
    ignore = torch.rand(2, 1, 3, 2, generator=gen) > 0.6
    kwargs = dict(options)
    tensors = [x, y]
    if kwargs.get("weight") == "mask":
        tensors.append(mask)
    if kwargs.get("pos_weight") == "per_channel":
        tensors.append(pos_weight)
    if kwargs.get("ignore") == "ignore":
        kwargs["ignore"] = ignore

    def fn(*args):
        call = dict(kwargs)
        rest = list(args[2:])
        if call.get("weight") == "mask":
            call["weight"] = rest.pop(0)
        if call.get("pos_weight") == "per_channel":
            call["pos_weight"] = rest.pop(0)
        if focal:
            return bw.focal_bce_with_logits(args[0], args[1], 1.5, 0.3, **call)
        return bw.bce_with_logits(args[0], args[1], **call)

    assert gradcheck(fn, tuple(tensors))


def test_module_takes_a_new_weight_every_call(batch):
    x, y, mask, ignore = batch
    criterion = bw.BCEWithLogits(pos_weight=[6.0, 30.0, 1.0], channel_dim=1).double()
    for scale in (1.0, 2.0):
        torch.testing.assert_close(
            criterion(x, y, weight=scale * mask.unsqueeze(1), ignore=ignore),
            bw.bce_with_logits(x, y, scale * mask.unsqueeze(1), [6.0, 30.0, 1.0], channel_dim=1, ignore=ignore),
        )
    assert set(dict(criterion.named_buffers())) == {"pos_weight"}
    assert "channel_dim=1" in repr(criterion)


def test_module_weight_and_call_weight_multiply(batch):
    x, y, mask, _ = batch
    criterion = bw.BCEWithLogits(weight=[1.0, 2.0, 3.0], channel_dim=1, reduction="sum").double()
    expected = bw.bce_with_logits(x, y, torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1) * mask.unsqueeze(1), reduction="sum")
    torch.testing.assert_close(criterion(x, y, mask.unsqueeze(1)), expected)
    torch.testing.assert_close(criterion(x, y), bw.bce_with_logits(x, y, [1.0, 2.0, 3.0], channel_dim=1, reduction="sum"))


def test_focal_module(batch):
    x, y, mask, _ = batch
    criterion = bw.FocalBCEWithLogits(gamma=2.0, alpha=0.25).double()
    torch.testing.assert_close(criterion(x, y, mask.unsqueeze(1)), bw.focal_bce_with_logits(x, y, 2.0, 0.25, mask.unsqueeze(1)))
    assert "gamma=2.0" in repr(criterion)


def test_expand_mask_is_a_zero_copy_view():
    mask = torch.rand(4, 16, 16)
    pred = torch.zeros(4, 3, 16, 16)
    expanded = bw.expand_mask(mask, pred)
    assert expanded.shape == pred.shape
    assert expanded.data_ptr() == mask.data_ptr()
    assert expanded.stride(1) == 0
    torch.testing.assert_close(expanded[:, 2], mask)
    assert bw.expand_mask(mask.unsqueeze(1), pred).stride(1) == 0
    volume = bw.expand_mask(torch.rand(1, 6, 4, 4), (1, 2, 6, 4, 4))
    assert volume.shape == (1, 2, 6, 4, 4)
    with pytest.raises(bw.WeightShapeError, match="expand_mask needs"):
        bw.expand_mask(torch.rand(4, 8, 8), pred)


def test_per_channel_shapes():
    pred = torch.zeros(2, 3, 5, 5, dtype=torch.float64)
    pw = bw.per_channel([1, 30, 6], pred)
    assert pw.shape == (3, 1, 1) and pw.dtype == torch.float64
    assert bw.per_channel([1, 2], (2, 4, 2), channel_dim=-1).shape == (2,)
    assert bw.per_channel(torch.tensor([1.0, 2.0, 3.0, 4.0]), (8, 4)).shape == (4,)
    with pytest.raises(bw.WeightShapeError, match="3 channel"):
        bw.per_channel([1, 2], pred)


def test_label_smoothing_pulls_targets_toward_one_half(batch):
    x, y, mask, _ = batch
    eps = 0.2
    smoothed = y * (1 - eps) + eps / 2
    torch.testing.assert_close(
        bw.bce_with_logits(x, y, mask.unsqueeze(1), label_smoothing=eps), bw.bce_with_logits(x, smoothed, mask.unsqueeze(1))
    )
    torch.testing.assert_close(
        bw.focal_bce_with_logits(x, y, 2.0, 0.25, mask.unsqueeze(1), label_smoothing=eps),
        bw.focal_bce_with_logits(x, smoothed, 2.0, 0.25, mask.unsqueeze(1)),
    )
    module = bw.BCEWithLogits(label_smoothing=eps)
    torch.testing.assert_close(module(x, y), bw.bce_with_logits(x, smoothed))
    assert "label_smoothing=0.2" in repr(module)
    # the optimum logit of a smoothed positive is finite: log(y' / (1 - y'))
    z = torch.linspace(-10, 10, 20001, dtype=torch.float64)
    losses = bw.bce_with_logits(z, torch.ones_like(z), label_smoothing=eps, reduction="none")
    best = z[losses.argmin()]
    assert abs(best.item() - torch.log(torch.tensor((1 - eps / 2) / (eps / 2))).item()) < 1e-3
    with pytest.raises(ValueError, match="label_smoothing=1.5"):
        bw.bce_with_logits(x, y, label_smoothing=1.5)


def test_half_precision_mean_with_ignore_does_not_overflow():
    """More than 65504 kept elements: a float16 count or sum would overflow to inf."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(1, 1, 300, 300, generator=gen)
    y = torch.rand(1, 1, 300, 300, generator=gen)
    ignore = torch.zeros(1, 1, 300, 300, dtype=torch.bool)
    ignore[..., :5] = True
    expected = bw.bce_with_logits(x, y, ignore=ignore)
    for reduction in ("mean", "weighted_mean"):
        got = bw.bce_with_logits(x.half(), y.half(), ignore=ignore, reduction=reduction, backend="torch")
        assert got.dtype == torch.float16
        torch.testing.assert_close(got.float(), expected, rtol=2e-3, atol=1e-3)
