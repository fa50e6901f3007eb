"""How an operand (``weight``, ``pos_weight``, ``ignore``) lines up with the input's dimensions.

PyTorch broadcasts by aligning *trailing* dimensions: an operand of shape ``(3,)`` multiplied into
an input of shape ``(N, C, H, W)`` pairs with ``W``, never with ``C``. That rule is where most weighting
bugs come from, so :func:`line_up` reads an operand's shape the way PyTorch will and also the ways a
person probably meant it (one value per sample, per channel, a mask without its channel dimension).
When the readings disagree it refuses with a message that names the fix, instead of silently weighting
the wrong axis.

Everything here looks only at shapes, never at values, so it costs nothing on any device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from numbers import Number

import torch

from bceweights.errors import WeightShapeError
from bceweights.messages import error_message

Shape = tuple[int, ...]

_DIM_NAMES: dict[int, tuple[str, ...]] = {
    0: (),
    1: ("N",),
    2: ("N", "C"),
    3: ("N", "C", "L"),
    4: ("N", "C", "H", "W"),
    5: ("N", "C", "D", "H", "W"),
}


def dim_names(ndim: int) -> tuple[str, ...]:
    """Conventional names of an input's dimensions: ``(N, C, H, W)`` for 4-D, ``d0, d1, ...`` past 5-D."""
    return _DIM_NAMES.get(ndim, tuple(f"d{i}" for i in range(ndim)))


def shape_str(shape: Sequence[int]) -> str:
    """``(8, 3, 256, 256)``; a 1-tuple keeps its comma: ``(3,)``."""
    shape = tuple(int(s) for s in shape)
    return str(shape)


def _named(input_shape: Shape) -> str:
    names = dim_names(len(input_shape))
    if len(input_shape) == 0:
        return "()"
    return "(" + ", ".join(f"{n}={s}" for n, s in zip(names, input_shape)) + ")"


def normalize_dim(dim: int, ndim: int, what: str = "channel_dim") -> int:
    """A possibly negative dimension index as a non-negative one; ``WeightShapeError`` if out of range."""
    if not -ndim <= dim < ndim:
        raise WeightShapeError(error_message(
            f"{what}={dim} is out of range for an input with {ndim} dimension(s) {dim_names(ndim)}",
            f"expected an index in [{-ndim}, {ndim - 1}].",
            why="For (N, C, ...) inputs the channels are dimension 1." if ndim >= 2 else "",
            fixes=f"{what}=1   # the C of (N, C, ...)" if ndim >= 2 else f"{what}=None   # no channel dimension",
        ))
    return dim % ndim


@dataclass(frozen=True)
class LineUp:
    """How one operand lines up with the input.

    Attributes:
        name: the operand's argument name (``"pos_weight"``).
        shape: the operand's own shape.
        input_shape: the input's shape.
        aligned: the operand's shape padded with leading 1s to the input's rank, as it will be
            broadcast; ``None`` when the operand is refused.
        problem: the full error message when refused, else ``None``.
        via_channel_dim: True when a 1-D operand was placed on ``channel_dim``.
    """

    name: str
    shape: Shape
    input_shape: Shape
    aligned: Shape | None
    problem: str | None = None
    via_channel_dim: bool = False
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return self.problem is None

    def varies_along(self) -> tuple[str, ...]:
        """Names of the input dimensions along which the operand takes different values."""
        if self.aligned is None:
            return ()
        names = dim_names(len(self.input_shape))
        return tuple(n for n, a in zip(names, self.aligned) if a != 1)

    def broadcast_over(self) -> tuple[str, ...]:
        """Names of the input dimensions (of size > 1) the operand is repeated over without a copy."""
        if self.aligned is None:
            return ()
        names = dim_names(len(self.input_shape))
        return tuple(n for n, a, s in zip(names, self.aligned, self.input_shape) if a == 1 and s != 1)


def _view_code(name: str, shape: Shape) -> str:
    return f"{name}.view{shape_str(shape)}" if len(shape) != 1 else f"{name}.view({shape[0]})"


def _trailing_strip(shape: Shape) -> Shape:
    """Drop leading 1s: ``(1, 3, 1, 1)`` -> ``(3, 1, 1)``, the shortest shape that broadcasts the same."""
    shape = tuple(shape)
    while len(shape) > 1 and shape[0] == 1:
        shape = shape[1:]
    return shape


def intended_readings(shape: Shape, input_shape: Shape) -> list[tuple[str, Shape]]:
    """Readings a person probably meant for an operand of lower rank than a ``(N, C, ...)`` input.

    Returns ``(description, full-rank shape)`` pairs; only for inputs with 3 or more dimensions,
    where trailing alignment skips the channel dimension.
    """
    nd, k = len(input_shape), len(shape)
    readings: list[tuple[str, Shape]] = []
    if nd < 3 or k == 0 or k >= nd:
        return readings
    names = dim_names(nd)
    if shape == tuple(input_shape[:k]):
        what = {1: "one value per sample (N,)", 2: "one value per sample and channel (N, C), as .repeat(N, 1) makes (if its rows are copies, drop .repeat)"}
        desc = what.get(k, f"values along the leading dimensions ({', '.join(names[:k])})")
        readings.append((desc, shape + (1,) * (nd - k)))
    if k == 1 and shape[0] == input_shape[1]:
        readings.append(("one value per channel (C,)", (1, shape[0]) + (1,) * (nd - 2)))
    if k == nd - 1 and shape == (input_shape[0],) + tuple(input_shape[2:]):
        readings.append(
            (f"a mask without its channel dimension ({', '.join(n for n in names if n != 'C')})",
             (shape[0], 1) + shape[1:])
        )
    return readings


def _placements(shape: Shape, input_shape: Shape) -> list[Shape]:
    """Every way to place ``shape`` on consecutive input dimensions with equal sizes (padded to full rank)."""
    nd, k = len(input_shape), len(shape)
    out = []
    for start in range(nd - k + 1):
        if tuple(input_shape[start:start + k]) == shape:
            out.append((1,) * start + shape + (1,) * (nd - k - start))
    return out


def _fewer_dimension_fixes(name: str, shape: Shape, input_shape: Shape, channel_dim: int | None) -> list[str]:
    """Fixes for an operand with more dimensions than the input: each one a shape the loss accepts.

    Its leading 1s dropped, or every 1 dropped (``model(x).squeeze()`` left the input without the
    size-1 axis the weight kept), or one value per element in the input's order; failing those, the
    shape it must have (e.g. a per-channel weight whose input was flattened: expand it first).
    """
    fixes: list[str] = []
    candidates = [_trailing_strip(shape), tuple(s for s in shape if s != 1) or (1,)]
    for candidate in candidates:
        code = f"{name}={_view_code(name, candidate)}"
        if len(candidate) <= len(input_shape) and code not in fixes:
            try:
                accepted = line_up(name, candidate, input_shape, channel_dim).ok
            except WeightShapeError:  # channel_dim out of range: the candidate cannot be judged
                accepted = False
            if accepted:
                fixes.append(code)
    numel = torch.Size(shape).numel()
    if numel == torch.Size(input_shape).numel() and numel > 1:
        fixes.append(f"{name}={name}.reshape{shape_str(input_shape)}   # only if it holds one value per element, "
                     "in the input's order")
    if not fixes:
        fixes.append(
            f"{name}=<a tensor of shape {shape_str(input_shape)}, or with 1s where it should be shared>   "
            "# if the input was flattened, expand the weight to the input's shape before flattening, "
            "then flatten both the same way"
        )
    return fixes


def line_up(
    name: str,
    shape: Sequence[int],
    input_shape: Sequence[int],
    channel_dim: int | None = None,
) -> LineUp:
    """Read an operand's shape against the input's, the way broadcasting will, and judge it.

    Rules, for an input of shape ``(N, C, *spatial)``:

    * a scalar (0-d, or every size 1) always lines up;
    * with ``channel_dim=k``, a 1-D operand of length ``input_shape[k]`` is placed on dimension ``k``;
    * otherwise shapes are aligned on trailing dimensions (PyTorch's rule), and every size must equal the
      input's or be 1 — the operand may not enlarge the result;
    * for inputs of 3 or more dimensions, an operand of lower rank that looks like one value per sample
      ``(N,)``, per sample and channel ``(N, C)``, per channel ``(C,)`` or a mask ``(N, *spatial)`` is
      refused whenever that reading differs from the trailing one, *even when it would broadcast*
      (``W == C``, ``N == W``): the silent traps.

    Returns:
        a :class:`LineUp`; ``problem`` holds the message when the operand is refused.
    """
    # Sizes stay as they are (ints, or SymInts under torch.compile(dynamic=True)): int() would
    # specialise a dynamic size. Nothing below formats a string unless the operand is refused, so an
    # accepted operand traces under torch.compile(fullgraph=True) with any batch size.
    shape = tuple(shape)
    input_shape = tuple(input_shape)
    nd, k = len(input_shape), len(shape)

    def refuse(body: str, fixes: list[str]) -> LineUp:
        head = (
            f"{name} has shape {shape_str(shape)} but the input has shape {shape_str(input_shape)}"
            + (f" = {_named(input_shape)}" if nd else "")
            + "."
        )
        return LineUp(name, shape, input_shape, None, error_message(head, why=body, fixes=fixes))

    if all(s == 1 for s in shape) and k <= max(nd, 1):
        return LineUp(name, shape, input_shape, (1,) * nd if k <= nd else shape)

    if channel_dim is not None and k == 1 and nd >= 1:
        dim = normalize_dim(channel_dim, nd)
        size = input_shape[dim]
        if shape[0] in (size, 1):
            aligned = (1,) * dim + (shape[0],) + (1,) * (nd - 1 - dim)
            return LineUp(name, shape, input_shape, aligned, via_channel_dim=True)
        return refuse(
            f"With channel_dim={channel_dim}, a 1-D {name} needs one value per entry of dimension "
            f"{dim_names(nd)[dim]}={size}, but it has {shape[0]}.",
            [f"{name}=torch.tensor([...])   # exactly {size} values, one per channel"],
        )

    if k > nd:
        return refuse(
            f"{name} has more dimensions ({k}) than the input ({nd}); broadcasting would enlarge the loss.",
            _fewer_dimension_fixes(name, shape, input_shape, channel_dim),
        )

    padded = (1,) * (nd - k) + shape
    readings = [(d, s) for d, s in intended_readings(shape, input_shape) if s != padded]
    fits = all(a in (1, b) for a, b in zip(padded, input_shape))

    if readings:
        names = dim_names(nd)
        if fits:
            against = ", ".join(f"{n}={s}" for n, a, s in zip(names, padded, input_shape) if a != 1)
            body = (
                f"Broadcasting lines up trailing dimensions, so it WOULD run, pairing {name} with {against} — "
                f"probably not what you meant: it looks like "
            )
        else:
            body = "Broadcasting lines up trailing dimensions, so it does not fit; it looks like "
        body += " or ".join(d for d, _ in readings) + "."
        fixes = []
        for desc, full in readings:
            code = _view_code(name, _trailing_strip(full))
            if desc.startswith("a mask"):
                fixes.append(f"{name}={name}.unsqueeze(1)   # (N, 1, ...): shared by every channel, no copy")
            elif ".repeat(N, 1)" in desc:
                # Rows made by .repeat are copies: one row per channel fits every batch size.
                per_channel = _view_code(f"{name}[0]", (full[1],) + (1,) * (nd - 2))
                fixes.append(f"{name}={per_channel}   # drop .repeat(N, 1): one value per channel, any batch size")
                fixes.append(f"{name}={code}   # only if the values really differ per sample (this batch size only)")
            else:
                fixes.append(f"{name}={code}   # varies along {', '.join(n for n, a in zip(names, full) if a != 1)}")
            if desc.startswith("one value per channel"):
                fixes.append(f"{name}={name}, channel_dim=1")
        if fits:
            fixes.append(f"{name}={name}.view{shape_str(padded)}   # if you really mean the trailing reading")
        return refuse(body, fixes)

    if not fits:
        names = dim_names(nd)
        clashes = ", ".join(
            f"{name} size {a} vs {n}={s}" for n, a, s in zip(names, padded, input_shape) if a not in (1, s)
        )
        fixes = [f"{name}={_view_code(name, _trailing_strip(p))}" for p in _placements(shape, input_shape)]
        if k == 1 and any(s == shape[0] for s in input_shape):
            dims = [i for i, s in enumerate(input_shape) if s == shape[0]]
            fixes += [f"{name}={name}, channel_dim={d}" for d in dims]
        body = (
            f"Broadcasting lines up trailing dimensions and every size must equal the input's or be 1; "
            f"here: {clashes}."
        )
        if not fixes:
            fixes = [f"{name}=<a tensor of shape {shape_str(input_shape)}, or with 1s where it should be shared>"]
        return refuse(body, fixes)

    return LineUp(name, shape, input_shape, padded)


def align(
    name: str,
    operand: torch.Tensor,
    input_shape: Sequence[int],
    channel_dim: int | None = None,
) -> torch.Tensor:
    """View ``operand`` with the input's rank so it broadcasts correctly, or raise ``WeightShapeError``.

    Args:
        name: argument name used in the message (``"pos_weight"``).
        operand: a tensor, any shape :func:`line_up` accepts.
        input_shape: the input's shape, e.g. ``(N, C, H, W)``.
        channel_dim: where a 1-D operand goes, if given.

    Returns:
        a view of ``operand`` (no copy) with ``len(input_shape)`` dimensions, each of size 1 or equal
        to the input's.
    """
    result = line_up(name, operand.shape, input_shape, channel_dim)
    if result.problem is not None:
        raise WeightShapeError(result.problem)
    assert result.aligned is not None
    return operand.reshape(result.aligned)


def as_tensor_like(value: object, like: torch.Tensor, name: str) -> torch.Tensor:
    """A number, sequence or tensor as a tensor on ``like``'s device, in ``like``'s floating dtype."""
    dtype = like.dtype if like.is_floating_point() else torch.get_default_dtype()
    if isinstance(value, torch.Tensor):
        if value.dtype == torch.bool or not (value.is_floating_point() or value.dtype in _INT_DTYPES):
            raise TypeError(error_message(
                f"{name} has dtype {value.dtype}", "expected a floating-point tensor or a number.", f"{name}={name}.float()"
            ))
        return value.to(device=like.device, dtype=dtype)
    if isinstance(value, (Number, Sequence)) and not isinstance(value, (str, bytes)):
        return torch.as_tensor(value, dtype=dtype, device=like.device)
    raise TypeError(error_message(
        f"{name} is a {type(value).__name__}", "expected a tensor, a number or a sequence of numbers.",
        f"{name}=torch.as_tensor({name}, dtype=torch.float32)",
    ))


_INT_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def expand_mask(mask: torch.Tensor, like: torch.Tensor | Sequence[int], channel_dim: int = 1) -> torch.Tensor:
    """Expand a mask without channels over every channel, as a zero-copy view.

    Args:
        mask: ``(N, H, W)`` (or ``(N, D, H, W)``, any rank one below ``like``), or already
            ``(N, 1, H, W)`` with a size-1 channel dimension.
        like: the predictions ``(N, C, H, W)`` (a tensor or just its shape).
        channel_dim: the channel dimension of ``like``.

    Returns:
        ``mask.unsqueeze(channel_dim).expand(like.shape)``: shape ``(N, C, H, W)``, stride 0 along
        ``C``, sharing ``mask``'s memory (compare ``.repeat``, which copies C times).
    """
    shape = tuple(like.shape) if isinstance(like, torch.Tensor) else tuple(int(s) for s in like)
    nd = len(shape)
    dim = normalize_dim(channel_dim, nd)
    without = shape[:dim] + shape[dim + 1:]
    if mask.ndim == nd - 1 and all(m in (1, s) for m, s in zip(mask.shape, without)):
        return mask.unsqueeze(dim).expand(shape)
    if mask.ndim == nd and mask.shape[dim] == 1 and all(
        m in (1, s) for m, s in zip(mask.shape, shape)
    ):
        return mask.expand(shape)
    raise WeightShapeError(error_message(
        f"mask has shape {shape_str(mask.shape)} but expand_mask needs {shape_str(without)} (the shape of "
        f"{shape_str(shape)} without dimension {dim}) or {shape_str(shape[:dim] + (1,) + shape[dim + 1:])}.",
        fixes=f"weight=mask   # shape {shape_str(shape)}, nothing to expand",
        lead="Write instead, if the mask has its own channels already",
    ))


def per_channel(
    values: torch.Tensor | Sequence[float],
    like: torch.Tensor | Sequence[int],
    channel_dim: int = 1,
) -> torch.Tensor:
    """A length-C vector shaped to broadcast along the channels of ``like``.

    ``per_channel([1, 30, 6], pred)`` for ``pred`` of shape ``(N, 3, H, W)`` returns shape
    ``(3, 1, 1)``: value ``c`` weights every pixel of channel ``c``. On a tensor ``like`` the result
    takes its device and (floating) dtype.
    """
    shape = tuple(like.shape) if isinstance(like, torch.Tensor) else tuple(int(s) for s in like)
    nd = len(shape)
    dim = normalize_dim(channel_dim, nd)
    if isinstance(like, torch.Tensor):
        vector = as_tensor_like(values, like, "values")
    else:
        vector = torch.as_tensor(values, dtype=torch.get_default_dtype())
    if vector.ndim != 1 or vector.shape[0] not in (1, shape[dim]):
        raise WeightShapeError(error_message(
            f"values has shape {shape_str(vector.shape)} but {shape_str(shape)} has {shape[dim]} channel(s) "
            f"along dimension {dim}", f"expected a 1-D list of {shape[dim]} numbers.",
            f"bw.per_channel([{', '.join(['...'] * min(shape[dim], 3))}], like, channel_dim={dim})",
        ))
    return vector.view((vector.shape[0],) + (1,) * (nd - 1 - dim))
