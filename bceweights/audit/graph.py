"""Whether the elements a loss reads came out of a sigmoid, read from the autograd graph.

:func:`trace_sigmoid` walks ``tensor.grad_fn`` backwards through the nodes that keep their input's
values (views, copies, clamps, slices, ``cat``, ``stack``, ``split``, ``unbind``) and follows **the
region of each tensor that is actually read**: ``torch.cat([torch.sigmoid(a), logits], 1)[:, k:]``
leads to ``logits`` when ``k`` is ``a``'s width, and to the sigmoid when the slice lies in ``a``'s part.

A region is a ``{dim: (start, stop)}`` box in the coordinates of the node's output (``{}``: all of it),
or ``None`` when the walk has lost track of which elements are read (a slice followed, walking back,
by a reshape or a fancy index). With a known region, a ``cat`` or ``stack`` is followed into the inputs
the box overlaps; with ``None`` it counts as a sigmoid's output only when *every* input is one, and as
unknown when only some are: the audit stays quiet where the answer cannot be known.

Imports: torch only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Nodes whose output holds their (first) input's values at the same positions, shape unchanged.
SAME_SHAPE_NODES = frozenset({
    "CloneBackward0", "ToCopyBackward0", "ClampBackward1", "ClampBackward0", "ClampMinBackward0",
    "ClampMaxBackward0", "AliasBackward0",
})
#: Nodes that keep every value but move them to other positions or shapes.
RESHAPING_NODES = frozenset({
    "ViewBackward0", "UnsafeViewBackward0", "ReshapeAliasBackward0", "UnsqueezeBackward0", "SqueezeBackward0",
    "SqueezeBackward1", "SqueezeBackward2", "PermuteBackward0", "TransposeBackward0", "TBackward0",
    "ExpandBackward0", "FlattenBackward0", "MovedimBackward0", "IndexBackward0",
})
#: How many nodes one walk may visit.
MAX_NODES = 64

#: The read elements are a sigmoid's output.
SIGMOID = "sigmoid"
#: The read elements are something else (raw logits, another op's output).
OTHER = "other"
#: Which elements are read, or what they are, cannot be told from the graph.
UNKNOWN = "unknown"

#: A box of read elements, ``{dim: (start, stop)}`` (``{}``: all), or None when it is not known.
Region = dict[int, tuple[int, int]] | None


@dataclass
class Trace:
    """What the read elements are: ``kind`` is :data:`SIGMOID`, :data:`OTHER` or :data:`UNKNOWN`.

    Attributes:
        path: for :data:`SIGMOID`, the node names passed on the way, e.g. ``["SliceBackward0",
            "CatBackward0 (input 1 of 2)"]``.
        depth: how many sigmoids in a row produced the values (2 for ``sigmoid(sigmoid(x))``).
    """

    kind: str
    path: list[str] = field(default_factory=list)
    depth: int = 0


def _signed(value: int) -> int:
    """Autograd saves negative slice bounds as unsigned 64-bit integers."""
    value = int(value)
    return value - 2**64 if value >= 2**63 else value


def _bounds(start: int, stop: int, size: int) -> tuple[int, int]:
    start, stop = _signed(start), _signed(stop)
    start = max(0, min(size, start + size if start < 0 else start))
    stop = max(0, min(size, stop + size if stop < 0 else stop))
    return start, max(start, stop)


def _shape(node: Any, output_nr: int) -> tuple[int, ...] | None:
    """The shape of output ``output_nr`` of ``node``, or None."""
    if node is None:
        return None
    if type(node).__name__ == "AccumulateGrad":
        return tuple(node.variable.shape)
    try:
        return tuple(int(s) for s in node._input_metadata[output_nr].shape)
    except (AttributeError, IndexError, RuntimeError, TypeError):
        return None


def _sliced(region: dict[int, tuple[int, int]], dim: int, start: int, stop: int, step: int) -> dict[int, tuple[int, int]]:
    """A region in a slice's output, in its input's coordinates (a superset when ``step > 1``)."""
    out = dict(region)
    if dim in region:
        a, b = region[dim]
        out[dim] = (start + a * step, start + (b - 1) * step + 1) if b > a else (start, start)
    else:
        out[dim] = (start, stop)
    return out


def _inserted(region: dict[int, tuple[int, int]], dim: int, start: int, stop: int) -> dict[int, tuple[int, int]]:
    """A region of an output that lost dimension ``dim`` (select, unbind), in the input's coordinates."""
    out = {(d + 1 if d >= dim else d): r for d, r in region.items()}
    out[dim] = (start, stop)
    return out


class _Walk:
    def __init__(self) -> None:
        self.visited = 0

    def trace(self, node: Any, output_nr: int, region: Region) -> Trace:
        self.visited += 1
        if node is None or self.visited > MAX_NODES:
            return Trace(OTHER if node is None else UNKNOWN)
        name = type(node).__name__
        nexts = [(n, i) for n, i in node.next_functions]
        first = nexts[0] if nexts else (None, 0)
        if name == "SigmoidBackward0":
            inner = self.trace(first[0], first[1], region)
            depth = 1 + (inner.depth if inner.kind == SIGMOID else 0)
            return Trace(SIGMOID, [], depth)
        if name in SAME_SHAPE_NODES:
            return self._through(name, self.trace(first[0], first[1], region))
        if name in RESHAPING_NODES:
            return self._through(name, self.trace(first[0], first[1], {} if region == {} else None))
        if name == "SliceBackward0":
            size = int(node._saved_self_sym_sizes[_signed(node._saved_dim)])
            dim = _signed(node._saved_dim) % len(node._saved_self_sym_sizes)
            start, stop = _bounds(node._saved_start, node._saved_end, size)
            inner = None if region is None else _sliced(region, dim, start, stop, max(1, _signed(node._saved_step)))
            return self._through(name, self.trace(first[0], first[1], inner))
        if name == "SelectBackward0":
            sizes = node._saved_self_sym_sizes
            dim = _signed(node._saved_dim) % len(sizes)
            index = _signed(node._saved_index) % int(sizes[dim])
            inner = None if region is None else _inserted(region, dim, index, index + 1)
            return self._through(name, self.trace(first[0], first[1], inner))
        if name in ("SplitBackward0", "SplitWithSizesBackward0", "UnbindBackward0"):
            return self._through(name, self._split(node, name, output_nr, region, first))
        if name in ("CatBackward0", "StackBackward0"):
            return self._join(node, name, region, nexts)
        return Trace(OTHER)

    @staticmethod
    def _through(name: str, inner: Trace) -> Trace:
        if inner.kind == SIGMOID:
            inner.path.insert(0, name)
        return inner

    def _split(self, node: Any, name: str, output_nr: int, region: Region, first: tuple[Any, int]) -> Trace:
        if name == "UnbindBackward0":
            dim = _signed(node._saved_dim)
            sizes = _shape(first[0], first[1])
            if sizes is None:
                return self.trace(first[0], first[1], None)
            dim %= len(sizes)
            inner = None if region is None else _inserted(region, dim, output_nr, output_nr + 1)
            return self.trace(first[0], first[1], inner)
        sizes = node._saved_self_sym_sizes
        dim = _signed(node._saved_dim) % len(sizes)
        if name == "SplitBackward0":
            step = int(node._saved_split_size)
            start = output_nr * step
            stop = min(int(sizes[dim]), start + step)
        else:
            lengths = [int(s) for s in node._saved_split_sizes]
            start = sum(lengths[:output_nr])
            stop = start + lengths[output_nr]
        inner = None if region is None else _sliced(region, dim, start, stop, 1)
        return self.trace(first[0], first[1], inner)

    def _join(self, node: Any, name: str, region: Region, nexts: list[tuple[Any, int]]) -> Trace:
        out_shape = _shape(node, 0)
        parts: list[tuple[int, Region]] = []  # (input index, region in that input)
        if region is None or out_shape is None:
            parts = [(i, None) for i in range(len(nexts))]
        elif name == "StackBackward0":
            dim = _signed(node._saved_dim) % len(out_shape)
            a, b = region.get(dim, (0, len(nexts)))
            rest = {(d - 1 if d > dim else d): r for d, r in region.items() if d != dim}
            parts = [(i, rest) for i in range(a, min(b, len(nexts)))]
        else:
            dim = _signed(node._saved_dim) % len(out_shape)
            lengths = [(_shape(n, i) or (None,) * len(out_shape))[dim] if n is not None else None for n, i in nexts]
            unknown = [i for i, length in enumerate(lengths) if length is None]
            if len(unknown) == 1:  # a tensor without a graph: its length is what the others leave
                lengths[unknown[0]] = out_shape[dim] - sum(length for length in lengths if length is not None)
            if unknown and len(unknown) != 1:
                parts = [(i, None) for i in range(len(nexts))]
            else:
                a, b = region.get(dim, (0, out_shape[dim]))
                offset = 0
                for i, length in enumerate(lengths):
                    lo, hi = max(a, offset), min(b, offset + length)
                    if lo < hi:
                        parts.append((i, {**region, dim: (lo - offset, hi - offset)}))
                    offset += length
        traces = [(i, self.trace(nexts[i][0], nexts[i][1], r)) for i, r in parts]
        kinds = [t.kind for _, t in traces]
        known = region is not None and out_shape is not None and all(r is not None for _, r in parts)
        sigmoids = [(i, t) for i, t in traces if t.kind == SIGMOID]
        if not sigmoids:
            return Trace(UNKNOWN if UNKNOWN in kinds else OTHER)
        if not known and len(sigmoids) != len(traces):
            return Trace(UNKNOWN)  # which elements are read cannot be known, and only some are a sigmoid's
        index, first = sigmoids[0]
        which = f"input {index} of {len(nexts)}" if len(sigmoids) == 1 else f"{len(sigmoids)} of its {len(nexts)} inputs"
        return Trace(SIGMOID, [f"{name} ({which})"] + first.path, min(t.depth for _, t in sigmoids))


def trace_sigmoid(grad_fn: Any, output_nr: int = 0) -> Trace:
    """Whether the tensor with this ``grad_fn`` (its output ``output_nr``) holds a sigmoid's output.

    Returns a :class:`Trace`; never raises (an unexpected node makes the answer :data:`UNKNOWN`).
    """
    try:
        return _Walk().trace(grad_fn, output_nr, {})
    except Exception:  # an unusual node or attribute: no verdict
        return Trace(UNKNOWN)
