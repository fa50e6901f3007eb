"""``bw.explain``: a report of how each operand lines up with the input's dimensions.

The teaching tool for "my mask is (N, H, W) and my output is (N, C, H, W)", "how do I give each channel
its own weight" and "why does ``pos_weight.repeat(N, 1)`` crash". It never raises for a bad operand: it
shows what broadcasting would do, what ``bceweights`` would say, and what materialising the operand at the
input's full size would cost.

Each operand is judged by the loss's own checks (:mod:`bceweights.prepared`: the target rule, the
operand types, the line-up, and the value checks when they are on), so ``explain(...).ok`` is true
exactly when ``bw.bce_with_logits`` accepts the same call. Imports: :mod:`bceweights.prepared` and
:mod:`bceweights.shapes`; nothing imports this module but the package's ``__init__`` and the lessons.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from numbers import Number

import torch
from torch import Tensor

from bceweights import prepared as rules
from bceweights.errors import WeightShapeError
from bceweights.messages import error_message
from bceweights.shapes import LineUp, dim_names, line_up, shape_str


def _bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover


@dataclass(frozen=True)
class OperandReport:
    """One operand's line-up with the input, plus its memory now and if materialised at full size."""

    line_up: LineUp
    dtype: str
    bytes_now: int
    bytes_materialized: int
    zero_stride: tuple[str, ...]
    error: str = "WeightShapeError"
    """The exception the loss raises for this operand: ``WeightShapeError``, ``ValueError``, ``TypeError``."""

    @property
    def shares_memory(self) -> bool:
        return bool(self.zero_stride)

    @property
    def name(self) -> str:
        return self.line_up.name

    def cells(self) -> list[str]:
        """One entry per input dimension: the size it varies with, ``·`` where broadcast, ``✗`` if refused."""
        lu = self.line_up
        nd = len(lu.input_shape)
        if lu.aligned is None:
            padded = (None,) * (nd - len(lu.shape)) + tuple(lu.shape) if len(lu.shape) <= nd else (None,) * nd
            return ["?" if a is None else f"{a}?" for a in padded]
        return [str(a) if a != 1 else "·" for a in lu.aligned]

    def verdict(self) -> str:
        lu = self.line_up
        if not lu.ok:
            lines = (lu.problem or "").splitlines()
            return "refused: " + (lines[1] if len(lines) > 1 and self.error == "WeightShapeError" else lines[0])
        varies = ", ".join(lu.varies_along()) or "nothing (one value)"
        over = ", ".join(lu.broadcast_over()) or "nothing"
        via = " (placed by channel_dim)" if lu.via_channel_dim else ""
        verdict = f"varies along {varies}; broadcast over {over}{via}"
        if self.zero_stride:
            verdict += f"; stride 0 along {', '.join(self.zero_stride)} (an expand view: no copy)"
        return verdict


@dataclass(frozen=True)
class Explanation:
    """What :func:`explain` returns: print it, or let a notebook show it as an HTML table."""

    input_shape: tuple[int, ...]
    input_dtype: str
    operands: tuple[OperandReport, ...]

    @property
    def ok(self) -> bool:
        """True exactly when the loss accepts these operands (target, weight, pos_weight, ignore)."""
        return all(op.line_up.ok for op in self.operands)

    def problems(self) -> dict[str, str]:
        """Operand name -> the full error message ``bceweights`` would raise."""
        return {op.name: op.line_up.problem for op in self.operands if op.line_up.problem}

    def errors(self) -> dict[str, str]:
        """Operand name -> the exception class the loss raises for it (refused operands only)."""
        return {op.name: op.error for op in self.operands if op.line_up.problem}

    def _header(self) -> list[str]:
        return ["operand", "shape", *dim_names(len(self.input_shape)), "memory", "if materialised", "how it lines up"]

    def _rows(self) -> list[list[str]]:
        rows = [["input", shape_str(self.input_shape), *map(str, self.input_shape), "", "", self.input_dtype]]
        for op in self.operands:
            note = " (shared)" if op.shares_memory else ""
            rows.append(
                [op.name, shape_str(op.line_up.shape), *op.cells(), _bytes(op.bytes_now) + note,
                 _bytes(op.bytes_materialized), op.verdict()]
            )
        return rows

    def __str__(self) -> str:
        table = [self._header(), *self._rows()]
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1] for row in table]
        errors = self.errors()
        for name, problem in self.problems().items():
            lines += ["", f"{name}: {errors[name]}", *("  " + line for line in problem.splitlines())]
        return "\n".join(line.rstrip() for line in lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        esc = html.escape
        head = "".join(f"<th>{esc(h)}</th>" for h in self._header())
        body = []
        for row in self._rows():
            refused = row[-1].startswith("refused")
            style = ' style="color:#b00020"' if refused else ""
            body.append(f"<tr{style}>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>")
        out = [f'<table class="bce-explain"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>']
        errors = self.errors()
        for name, problem in self.problems().items():
            out.append(f"<p><b>{esc(name)}</b>: {esc(errors[name])}</p><pre>{esc(problem)}</pre>")
        return "\n".join(out)


def _as_display_tensor(value: object) -> Tensor | None:
    """The operand as the table shows it (its own dtype; lists in the default dtype), None if impossible."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, Number):
        return torch.tensor(float(value))
    try:
        return torch.as_tensor(value, dtype=torch.get_default_dtype())
    except (TypeError, ValueError, RuntimeError):
        return None


def _loss_verdict(name: str, value: object, input: Tensor, channel_dim: int | None,
                  ignore: Tensor | None) -> tuple[str, str] | None:
    """``(exception name, message)`` the loss raises for this operand, or None when it accepts it.

    The same functions :func:`bceweights.prepared.prepare` runs; ``ignore`` is the aligned ignore mask
    (a target's ignored elements may hold anything).
    """
    try:
        if name == "target":
            rules.prepare_target(value, input, ignore)
        elif name == "ignore":
            rules.prepare_ignore(value, input)
        else:
            rules.prepare_operand(name, value, input, channel_dim)
    except (TypeError, ValueError) as error:  # WeightShapeError is a ValueError
        return type(error).__name__, str(error)
    return None


def _report(name: str, value: object, input: Tensor, channel_dim: int | None,
            ignore: Tensor | None = None) -> OperandReport:
    tensor = _as_display_tensor(value)
    verdict = _loss_verdict(name, value, input, channel_dim, ignore)
    shape = tuple(tensor.shape) if tensor is not None else ()
    if name == "target" or tensor is None:
        lu = LineUp(name, shape, tuple(input.shape), shape if verdict is None else None)
    else:
        try:
            lu = line_up(name, shape, input.shape, None if name == "ignore" else channel_dim)
        except WeightShapeError as error:  # channel_dim out of range
            lu = LineUp(name, shape, tuple(input.shape), None, str(error))
    if verdict is not None and lu.problem != verdict[1]:
        lu = LineUp(name, shape, tuple(input.shape), None, verdict[1])
    error = verdict[0] if verdict is not None else "WeightShapeError"
    if tensor is None:
        return OperandReport(lu, type(value).__name__, 0, 0, (), error)
    storage = tensor.untyped_storage().nbytes() if isinstance(value, Tensor) else tensor.element_size() * tensor.numel()
    zero_stride: tuple[str, ...] = ()
    if isinstance(value, Tensor) and lu.aligned is not None:
        names = dim_names(len(input.shape))[len(input.shape) - tensor.ndim:]
        zero_stride = tuple(n for n, st, s in zip(names, tensor.stride(), tensor.shape) if s > 1 and st == 0)
    return OperandReport(
        line_up=lu,
        dtype=str(tensor.dtype).replace("torch.", ""),
        bytes_now=storage,
        bytes_materialized=input.numel() * tensor.element_size(),
        zero_stride=zero_stride,
        error=error,
    )


def explain(
    input: Tensor,
    target: Tensor | None = None,
    weight: object = None,
    pos_weight: object = None,
    channel_dim: int | None = None,
    ignore: Tensor | None = None,
) -> Explanation:
    """Report how each operand lines up with ``input``'s dimensions; never raises for a bad operand.

    For each of ``target``, ``weight``, ``pos_weight`` and ``ignore`` that is given: its shape, the
    input dimensions it varies along and those it is broadcast over (``·``), the memory it takes now
    (``(shared)`` for an expanded view with stride 0) and what it would take materialised at the
    input's size, and — for a refused operand — the message the loss raises, with its fix. The target
    must have exactly the input's shape, as the loss requires (it does not broadcast). Shapes are all
    it needs: on ``meta`` tensors (or with real operands beside a meta input) the value checks are
    skipped and the line-up is reported as usual.

    Raises:
        TypeError: ``input`` is not a floating-point tensor (the loss refuses it the same way).

    Example::

        >>> print(bw.explain(torch.zeros(8, 3, 64, 64), pos_weight=torch.tensor([1., 30., 6.])))
        operand     shape           N  C  H   W   ...
        input       (8, 3, 64, 64)  8  3  64  64  ...
        pos_weight  (3,)            ?  ?  ?   3?  ...  refused: ...
    """
    if not isinstance(input, Tensor):
        raise TypeError(error_message(
            f"explain needs the input tensor (the logits) first, got {type(input).__name__}",
            "expected a floating-point tensor such as the model's output.",
            fixes="bw.explain(torch.as_tensor(input, dtype=torch.float32), target, weight=weight)",
        ))
    rules.check_input(input)
    try:
        aligned_ignore = rules.prepare_ignore(ignore, input)
    except (TypeError, ValueError):
        aligned_ignore = None
    operands = []
    for name, value in (("target", target), ("weight", weight), ("pos_weight", pos_weight), ("ignore", ignore)):
        if value is not None:
            operands.append(_report(name, value, input, channel_dim, aligned_ignore))
    return Explanation(tuple(input.shape), str(input.dtype).replace("torch.", ""), tuple(operands))
