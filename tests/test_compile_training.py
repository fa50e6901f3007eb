"""The loss inside ``torch.compile``d training steps: whole-graph capture and the same numbers as eager.

``backend="aot_eager"`` traces with Dynamo and AOTAutograd (forward and backward graphs, what
``fullgraph=True`` must capture) without generating C++ code, so these tests cost seconds. Value
checks become asserts inside the graph (no graph break): a bad value raises a ``RuntimeError`` that
names ``check_values=False``; the process default (``bw.set_value_checks``) is guarded, so changing it
recompiles.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import bceweights as bw

# Dynamo reads ``.grad`` of the non-leaf logits while tracing ``isinstance`` and PyTorch warns about
# it inside the tracer; the suite turns warnings into errors, which would abort the trace. Users see
# nothing (Dynamo's own warning handling), so ignore exactly that warning here.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The .grad attribute of a Tensor that is not a leaf Tensor is being accessed:UserWarning"
)


class Step:
    """One training step: the forward and loss (what gets compiled), then ``backward`` in eager.

    Dynamo does not trace ``Tensor.backward()``; ``torch.compile`` of the forward also compiles its
    backward graph (AOTAutograd), which the eager ``loss.backward()`` then runs.
    """

    def __init__(self, model: nn.Module, compile_options: dict | None = None, **loss_options):
        self.model = model
        self.forward = self.loss if compile_options is None else torch.compile(self.loss, **compile_options)
        self.loss_options = loss_options

    def loss(self, images, masks, void):
        return bw.bce_with_logits(self.model(images), masks, ignore=void, channel_dim=1, **self.loss_options)

    def __call__(self, images, masks, void):
        self.model.zero_grad(set_to_none=True)
        loss = self.forward(images, masks, void)
        loss.backward()
        return loss.detach(), [p.grad.detach().clone() for p in self.model.parameters()]


FULLGRAPH = dict(fullgraph=True, backend="aot_eager")


def batch():
    g = torch.Generator().manual_seed(0)
    images = torch.randn(4, 1, 8, 8, generator=g)
    masks = (torch.rand(4, 3, 8, 8, generator=g) < 0.2).float()
    void = torch.rand(4, 1, 8, 8, generator=g) < 0.3
    return images, masks, void


def model():
    torch.manual_seed(0)
    return nn.Conv2d(1, 3, 3, padding=1)


OPTIONS = [
    dict(pos_weight=[4.0, 9.0, 1.5], reduction="mean"),
    dict(pos_weight=[4.0, 9.0, 1.5], weight=[1.0, 2.0, 0.5], reduction="weighted_mean"),
    dict(reduction="sum", label_smoothing=0.1),
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: o["reduction"])
def test_fullgraph_training_step_matches_eager(options):
    torch._dynamo.reset()
    eager_loss, eager_grads = Step(model(), check_values=False, **options)(*batch())
    loss, grads = Step(model(), FULLGRAPH, check_values=False, **options)(*batch())
    torch.testing.assert_close(loss, eager_loss)
    for g, e in zip(grads, eager_grads):
        torch.testing.assert_close(g, e)


def test_value_checks_stay_on_inside_a_fullgraph_graph_and_follow_the_process_default():
    torch._dynamo.reset()
    images, masks, void = batch()
    bad = masks.clone()
    bad[0, 0, 0, 0] = 255.0  # a void label used as a target, outside the ignore mask
    void = void.clone()
    void[0, 0, 0, 0] = False
    step = Step(model(), FULLGRAPH, pos_weight=[4.0, 9.0, 1.5])
    loss, _ = step(images, masks, void)
    assert torch.isfinite(loss)
    with pytest.raises(RuntimeError, match="check_values=False"):
        step(images, bad, void)
    previous = bw.set_value_checks(False)
    try:
        loss, _ = step(images, bad, void)  # the default is a guarded global: the graph is recompiled
    finally:
        bw.set_value_checks(previous)
    assert torch.isfinite(loss)


def test_without_fullgraph_value_checks_still_run_under_compile():
    torch._dynamo.reset()
    step = Step(model(), dict(backend="aot_eager"), pos_weight=[4.0, 9.0, 1.5])
    images, masks, void = batch()
    loss, _ = step(images, masks, void)
    assert torch.isfinite(loss)
    bad = masks.clone()
    bad[0, 0, 0, 0] = 255.0  # a void label used as a target, outside the ignore mask
    void = void.clone()
    void[0, 0, 0, 0] = False
    with pytest.raises((ValueError, RuntimeError), match=r"\[0, 1\]"):
        step(images, bad, void)


def test_compiled_step_under_bfloat16_autocast_matches_eager_autocast():
    torch._dynamo.reset()
    images, masks, void = batch()

    def run(step):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return step(images, masks, void)

    eager_loss, eager_grads = run(Step(model(), check_values=False, pos_weight=[4.0, 9.0, 1.5]))
    loss, grads = run(Step(model(), FULLGRAPH, check_values=False, pos_weight=[4.0, 9.0, 1.5]))
    assert loss.dtype == eager_loss.dtype
    torch.testing.assert_close(loss, eager_loss, rtol=1e-2, atol=1e-3)
    for g, e in zip(grads, eager_grads):
        torch.testing.assert_close(g, e, rtol=2e-2, atol=1e-3)
