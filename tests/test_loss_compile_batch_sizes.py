"""``torch.compile(fullgraph=True)`` of the loss when the batch size changes, and with ``dynamic=True``.

A training loop whose last batch is smaller calls the compiled loss with a second batch size. With a
``weight`` or ``pos_weight`` the shape line-up used to format its message (``str(shape)``) even when
it accepted the operand, which Dynamo cannot trace: ``fullgraph=True`` failed at the second batch size
(and at the first call under ``dynamic=True``). These tests compile with ``backend="aot_eager"``
(Dynamo and AOTAutograd, what ``fullgraph=True`` must capture, without generating C++), every backend
name, with weight and pos_weight, and compare loss and gradient with the eager call.
"""

from __future__ import annotations

import pytest
import torch

import bceweights as bw

pytestmark = pytest.mark.filterwarnings(
    "ignore:The .grad attribute of a Tensor that is not a leaf Tensor is being accessed:UserWarning"
)

BACKENDS = ("torch", "fused", "auto")


def operands(batch: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed + batch)
    x = torch.randn(batch, 3, 4, 4, generator=generator)
    y = (torch.rand(batch, 3, 4, 4, generator=generator) < 0.3).float()
    mask = torch.rand(batch, 1, 4, 4, generator=generator)
    return x, y, mask


def loss_function(backend: str, reduction: str):
    def loss(x, y, mask, pos_weight):
        return bw.bce_with_logits(x, y, weight=mask, pos_weight=pos_weight, channel_dim=1,
                                  reduction=reduction, backend=backend)

    return loss


def value_and_grad(function, x, y, mask, pos_weight):
    x = x.clone().requires_grad_()
    out = function(x, y, mask, pos_weight)
    (grad,) = torch.autograd.grad(out.sum(), x)
    return out.detach(), grad


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dynamic", [None, True], ids=["default", "dynamic"])
def test_fullgraph_compile_follows_a_changing_batch_size(backend, dynamic):
    torch._dynamo.reset()
    pos_weight = torch.tensor([2.0, 1.0, 3.0])
    eager = loss_function(backend, "mean")
    compiled = torch.compile(eager, fullgraph=True, dynamic=dynamic, backend="aot_eager")
    for batch in (8, 16, 5):
        operands_now = (*operands(batch), pos_weight)
        out, grad = value_and_grad(compiled, *operands_now)
        expected_out, expected_grad = value_and_grad(eager, *operands_now)
        torch.testing.assert_close(out, expected_out)
        torch.testing.assert_close(grad, expected_grad)


def test_dynamic_compile_traces_one_graph_for_every_batch_size():
    """``dynamic=True``: the sizes stay symbolic (no ``int()`` specialises them), so one graph serves
    batch sizes 8, 16 and 5."""
    torch._dynamo.reset()
    graphs = []

    def counting_backend(graph_module, example_inputs):
        graphs.append(graph_module)
        return graph_module.forward

    pos_weight = torch.tensor([2.0, 1.0, 3.0])
    compiled = torch.compile(loss_function("torch", "weighted_mean"), fullgraph=True, dynamic=True,
                             backend=counting_backend)
    for batch in (8, 16, 5):
        x, y, mask = operands(batch)
        expected = bw.bce_with_logits(x, y, weight=mask, pos_weight=pos_weight, channel_dim=1,
                                      reduction="weighted_mean")
        torch.testing.assert_close(compiled(x, y, mask, pos_weight), expected)
    assert len(graphs) == 1


@pytest.mark.parametrize("operand", ["weight", "pos_weight"])
def test_fullgraph_compile_with_one_operand_and_a_trailing_reading(operand):
    """The issue's own case, a ``(3,)`` operand on ``(N, 3)`` logits, weight and pos_weight alike."""
    torch._dynamo.reset()
    values = torch.tensor([2.0, 1.0, 3.0])
    compiled = torch.compile(lambda x, y, v: bw.bce_with_logits(x, y, **{operand: v}), fullgraph=True,
                             backend="aot_eager")
    for batch in (8, 16):
        generator = torch.Generator().manual_seed(batch)
        x, y = torch.randn(batch, 3, generator=generator), torch.rand(batch, 3, generator=generator)
        torch.testing.assert_close(compiled(x, y, values), bw.bce_with_logits(x, y, **{operand: values}))


def test_a_refused_operand_still_raises_its_message_under_compile():
    """Near miss: the message is built only on refusal, and a refusal still names the fix."""
    torch._dynamo.reset()
    compiled = torch.compile(lambda x, y, p: bw.bce_with_logits(x, y, pos_weight=p), fullgraph=True,
                             backend="aot_eager")
    with pytest.raises(Exception, match=r"pos_weight\.view\(3, 1, 1\)"):
        compiled(torch.randn(2, 3, 4, 4), torch.rand(2, 3, 4, 4), torch.tensor([1.0, 2.0, 3.0]))


def test_line_up_formats_nothing_when_it_accepts(monkeypatch):
    """The accepting path of :func:`bceweights.shapes.line_up` never calls ``shape_str``."""
    from bceweights import shapes

    calls = []
    original = shapes.shape_str
    monkeypatch.setattr(shapes, "shape_str", lambda shape: calls.append(shape) or original(shape))
    for shape, input_shape, channel_dim in [((3, 1, 1), (8, 3, 4, 4), None), ((3,), (8, 3, 4, 4), 1),
                                            ((8, 1, 4, 4), (8, 3, 4, 4), None), ((3,), (8, 3), None), ((), (8,), None)]:
        assert shapes.line_up("weight", shape, input_shape, channel_dim).ok
    assert calls == []
    assert not shapes.line_up("weight", (3,), (8, 3, 4, 4)).ok
    assert calls  # a refusal formats its message
