"""The CUDA fused path: one Triton kernel computes the loss and the input gradient in a single pass.

Each program handles ``BLOCK`` consecutive elements of the (contiguous) input: it loads ``x`` and
``y``, loads ``weight``, ``pos_weight`` and ``ignore`` through their own strides (stride 0 along
broadcast dimensions, so an ``(N, 1, H, W)`` mask or a per-channel ``(1, C, 1, 1)`` pos_weight is read in
place, never materialised), computes the formula of :mod:`bceweights.fused.formula` in float32 (float64
for float64 inputs), writes the unscaled gradient, and either writes the per-element loss
(``reduction="none"``) or one partial sum per program (plus one partial denominator for the means).
The host then adds the partial sums in float64.

The operands' dimensions are first merged wherever every operand is contiguous across them, so the
kernel sees at most four dimensions: ``(N, C, H*W)`` for the usual segmentation case. Inputs needing
more (rare: interleaved broadcasting) have their broadcast operands materialised first.

Importing this module imports ``triton``. With ``TRITON_INTERPRET=1`` set *before* that import, the
kernel runs in Triton's interpreter on CPU tensors, which is how the tests check it without a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl
from torch import Tensor

from bceweights.fused.formula import LOG1P_TERMS
from bceweights.fused.plan import FusedBuildFailed, PassOutputs, Plan
from bceweights.messages import error_message

BLOCK: int = 1024
"""Elements per program."""

MAX_DIMS: int = 4
"""Dimensions the kernel can index after merging; more get their broadcast operands materialised."""


def unavailable_reason() -> str | None:
    """Why the kernel cannot run in this process, or None: always None once triton imports.

    A failed build or launch concerns its own call's signature only (see
    :func:`bceweights.backend.compute_loss`); nothing process-wide is remembered.
    """
    return None


@triton.jit
def _offset(index, size1, size2, size3, s0, s1, s2, s3):
    """Memory offset of linear ``index`` (row-major over the merged shape) in an operand with strides s."""
    c3 = index % size3
    rest = index // size3
    c2 = rest % size2
    rest = rest // size2
    c1 = rest % size1
    c0 = rest // size1
    return c0 * s0 + c1 * s1 + c2 * s2 + c3 * s3


@triton.jit
def _log1p_small(e, TERMS: tl.constexpr):
    """``log1p(e)`` for ``e`` in ``[0, 1]`` as ``2 atanh(t)``, ``t = e / (2 + e) <= 1/3``, powers up to
    ``t^(2 TERMS)`` (see :func:`bceweights.fused.formula.log1p_small`): arithmetic only, so it is
    accurate on every GPU and the interpreter runs it (libdevice's ``log1p`` is not interpreted)."""
    t = e / (2.0 + e)
    t2 = t * t
    poly = tl.zeros_like(e) + 1.0 / (2 * TERMS + 1)
    for j in tl.static_range(TERMS):  # Horner, from the t^(2 TERMS - 2) coefficient down to 1
        poly = poly * t2 + 1.0 / (2 * (TERMS - 1 - j) + 1)
    return 2.0 * t * poly


@triton.jit
def _load_operand(ptr, index, inside, size1, size2, size3, s0, s1, s2, s3, FLAT: tl.constexpr):
    if FLAT:
        offset = index
    else:
        offset = _offset(index, size1, size2, size3, s0, s1, s2, s3)
    return tl.load(ptr + offset, mask=inside, other=0)


@triton.jit
def _fused_bce_kernel(
    x_ptr, y_ptr, w_ptr, p_ptr, ignore_ptr,
    values_ptr, kept_ptr, grad_ptr,
    numel, size1, size2, size3,
    w_s0, w_s1, w_s2, w_s3,
    p_s0, p_s1, p_s2, p_s3,
    i_s0, i_s1, i_s2, i_s3,
    gamma, alpha, grad_scale,
    HAS_W: tl.constexpr, W_FLAT: tl.constexpr,
    HAS_P: tl.constexpr, P_FLAT: tl.constexpr,
    HAS_IGNORE: tl.constexpr, IGNORE_FLAT: tl.constexpr,
    GAMMA_MODE: tl.constexpr,  # 0: plain BCE; 1-4: that integer gamma; -1: any other gamma
    HAS_ALPHA: tl.constexpr,
    REDUCE: tl.constexpr,  # True: one partial sum per program; False: the loss per element
    KEPT: tl.constexpr,  # 0: no denominator; 1: count of non-ignored; 2: weight over non-ignored
    NEED_GRAD: tl.constexpr,
    FP64: tl.constexpr,
    INT64: tl.constexpr,
    LOG1P_TERMS: tl.constexpr,
    BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    if INT64:
        pid = pid.to(tl.int64)
    index = pid * BLOCK + tl.arange(0, BLOCK)
    inside = index < numel

    if FP64:
        x = tl.load(x_ptr + index, mask=inside, other=0).to(tl.float64)
        y = tl.load(y_ptr + index, mask=inside, other=0).to(tl.float64)
    else:
        x = tl.load(x_ptr + index, mask=inside, other=0).to(tl.float32)
        y = tl.load(y_ptr + index, mask=inside, other=0).to(tl.float32)

    # sigmoid, its complement and log-sigmoid from one exp, without cancellation
    e = tl.exp(-tl.abs(x))
    r = 1.0 / (1.0 + e)
    positive = x >= 0
    q = tl.where(positive, r, e * r)
    q_bar = tl.where(positive, e * r, r)
    log_sigmoid = tl.minimum(x, 0.0) - _log1p_small(e, LOG1P_TERMS)

    if HAS_P:
        p = _load_operand(p_ptr, index, inside, size1, size2, size3, p_s0, p_s1, p_s2, p_s3, P_FLAT).to(x.dtype)
        loss = (1.0 - y) * x - (1.0 + (p - 1.0) * y) * log_sigmoid
        grad = (1.0 - y) * q - p * y * q_bar
    else:
        loss = (1.0 - y) * x - log_sigmoid
        grad = (1.0 - y) * q - y * q_bar

    if GAMMA_MODE != 0:
        m = q * (1.0 - y) + q_bar * y  # 1 - q_t
        slope = (1.0 - 2.0 * y) * q * q_bar  # d m / d x
        if GAMMA_MODE == 1:
            modulation = m
            d_modulation = slope
        elif GAMMA_MODE == 2:
            modulation = m * m
            d_modulation = 2.0 * m * slope
        elif GAMMA_MODE == 3:
            modulation = m * m * m
            d_modulation = 3.0 * m * m * slope
        elif GAMMA_MODE == 4:
            modulation = (m * m) * (m * m)
            d_modulation = 4.0 * m * m * m * slope
        else:
            nonzero = m > 0
            log2_m = tl.log2(tl.where(nonzero, m, 1.0))
            modulation = tl.where(nonzero, tl.exp2(gamma * log2_m), 0.0)
            # gamma m^gamma (slope / m): |slope| <= m, so no m^(gamma - 1) to overflow as m -> 0
            d_modulation = tl.where(nonzero, gamma * modulation * (slope / tl.where(nonzero, m, 1.0)), 0.0)
        grad = d_modulation * loss + modulation * grad
        loss = modulation * loss

    if HAS_ALPHA:
        alpha_t = alpha * y + (1.0 - alpha) * (1.0 - y)
        loss = alpha_t * loss
        grad = alpha_t * grad

    if HAS_W:
        w = _load_operand(w_ptr, index, inside, size1, size2, size3, w_s0, w_s1, w_s2, w_s3, W_FLAT).to(x.dtype)
        loss = loss * w
        grad = grad * w
    if HAS_IGNORE:
        ignored = _load_operand(
            ignore_ptr, index, inside, size1, size2, size3, i_s0, i_s1, i_s2, i_s3, IGNORE_FLAT
        ) != 0
        loss = tl.where(ignored, 0.0, loss)
        grad = tl.where(ignored, 0.0, grad)

    if NEED_GRAD:
        tl.store(grad_ptr + index, (grad * grad_scale).to(grad_ptr.dtype.element_ty), mask=inside)
    if REDUCE:
        tl.store(values_ptr + pid, tl.sum(tl.where(inside, loss, 0.0), axis=0))
    else:
        tl.store(values_ptr + index, loss.to(values_ptr.dtype.element_ty), mask=inside)
    if KEPT != 0:
        if KEPT == 1:
            amount = tl.where(inside, 1.0, 0.0).to(x.dtype)
        else:
            amount = tl.where(inside, w, 0.0)
        if HAS_IGNORE:
            amount = tl.where(ignored, 0.0, amount)
        tl.store(kept_ptr + pid, tl.sum(amount, axis=0))


@dataclass(frozen=True)
class Layout:
    """The input's shape with mergeable dimensions merged, and every operand's strides over it.

    Attributes:
        sizes: ``MAX_DIMS`` sizes (leading 1s), row-major over the contiguous input.
        strides: per operand, ``MAX_DIMS`` strides (0 along dimensions it is broadcast over).
        flat: per operand, True when it is laid out exactly like the contiguous input.
    """

    sizes: tuple[int, ...]
    strides: tuple[tuple[int, ...], ...]
    flat: tuple[bool, ...]


def _broadcast_strides(operand: Tensor, shape: torch.Size) -> tuple[int, ...]:
    return tuple(operand.expand(shape).stride())


def merge_dimensions(shape: torch.Size, operands: list[Tensor]) -> tuple[list[int], list[list[int]]]:
    """Drop size-1 dimensions and merge neighbours across which the contiguous input and every operand
    are contiguous. Returns ``(sizes, strides per operand)``, each of the merged rank (at least 1)."""
    all_strides = [list(_contiguous_strides(shape))] + [list(_broadcast_strides(t, shape)) for t in operands]
    dims = [d for d in range(len(shape)) if shape[d] != 1]
    sizes: list[int] = []
    strides: list[list[int]] = [[] for _ in all_strides]
    for d in dims:
        if sizes and all(st[-1] == s[d] * shape[d] for st, s in zip(strides, all_strides)):
            sizes[-1] *= shape[d]
            for st, s in zip(strides, all_strides):
                st[-1] = s[d]
        else:
            sizes.append(shape[d])
            for st, s in zip(strides, all_strides):
                st.append(s[d])
    if not sizes:
        sizes, strides = [1], [[0] for _ in all_strides]
    return sizes, strides[1:]


def _contiguous_strides(shape: torch.Size) -> tuple[int, ...]:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def layout_for(shape: torch.Size, operands: list[Tensor]) -> Layout:
    """The :class:`Layout` the kernel indexes; raises ValueError when more than MAX_DIMS remain."""
    sizes, strides = merge_dimensions(shape, operands)
    if len(sizes) > MAX_DIMS:
        raise ValueError(f"{len(sizes)} dimensions after merging; the kernel indexes at most {MAX_DIMS}")
    pad = MAX_DIMS - len(sizes)
    contiguous = _contiguous_strides(torch.Size(sizes))
    return Layout(
        tuple([1] * pad + sizes),
        tuple(tuple([0] * pad + s) for s in strides),
        tuple(tuple(s) == contiguous for s in strides),
    )


def _gamma_mode(gamma: float) -> int:
    if gamma == 0:
        return 0
    if gamma in (1.0, 2.0, 3.0, 4.0):
        return int(gamma)
    return -1


_TRITON_TYPES = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32", torch.float64: "fp64"}


def _constexprs(plan: Plan, has: dict[str, bool], flat: dict[str, bool], fp64: bool, int64: bool) -> dict:
    return dict(
        HAS_W=has["w"], W_FLAT=flat.get("w", False),
        HAS_P=has["p"], P_FLAT=flat.get("p", False),
        HAS_IGNORE=has["i"], IGNORE_FLAT=flat.get("i", False),
        GAMMA_MODE=_gamma_mode(plan.gamma), HAS_ALPHA=plan.alpha is not None,
        REDUCE=plan.reduce, KEPT={None: 0, "count": 1, "weight": 2}[plan.kept],
        NEED_GRAD=plan.need_grad, FP64=fp64, INT64=int64,
        LOG1P_TERMS=LOG1P_TERMS[fp64], BLOCK=BLOCK,
    )


def compile_for_gpu(arch: int, dtype: torch.dtype, plan: Plan, *, weight: bool, pos_weight: bool, ignore: bool,
                    flat: bool = False, int64: bool = False):
    """Compile the kernel for CUDA compute capability ``arch`` (90: H100) without a GPU, down to a cubin
    with the ``ptxas`` Triton ships; the tests use it to check the CUDA code generation on a CPU machine.

    Returns the compiled kernel (``.asm["ptx"]`` holds its PTX).
    """
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    element, fp64 = _TRITON_TYPES[dtype], dtype == torch.float64
    accumulator = "fp64" if fp64 else "fp32"
    index = "i64" if int64 else "i32"
    pointers = {"x_ptr": element, "y_ptr": element, "w_ptr": element, "p_ptr": element, "ignore_ptr": "u8",
                "values_ptr": accumulator if plan.reduce else element, "kept_ptr": accumulator,
                "grad_ptr": element}
    constexprs = _constexprs(plan, {"w": weight, "p": pos_weight, "i": ignore},
                             {"w": flat, "p": flat, "i": flat}, fp64, int64)
    signature = {}
    for name in _fused_bce_kernel.arg_names:
        if name in pointers:
            signature[name] = "*" + pointers[name]
        elif name in constexprs:
            signature[name] = "constexpr"
        else:
            signature[name] = "fp32" if name in ("gamma", "alpha", "grad_scale") else index
    source = ASTSource(fn=_fused_bce_kernel, signature=signature, constexprs=constexprs)
    return triton.compile(source, target=GPUTarget("cuda", arch, 32))


def run(plan: Plan, input: Tensor, target: Tensor, weight: Tensor | None, pos_weight: Tensor | None,
        ignore: Tensor | None) -> PassOutputs:
    """One fused pass (see :class:`bceweights.fused.plan.PassOutputs`) on CUDA tensors, or on CPU
    tensors under ``TRITON_INTERPRET=1``.

    Shapes: ``input``, ``target`` ``(*)`` (made contiguous if they are not); ``weight``,
    ``pos_weight``, ``ignore`` broadcastable with the input's rank (read through their strides).
    """
    x = input.contiguous()
    y = target.contiguous()
    shape, numel = x.shape, x.numel()
    present = {name: t for name, t in (("w", weight), ("p", pos_weight), ("i", ignore)) if t is not None}
    if "i" in present:
        present["i"] = present["i"].view(torch.uint8)
    try:
        layout = layout_for(shape, list(present.values()))
    except ValueError:  # interleaved broadcasting: read the broadcast operands as full tensors
        present = {k: t.expand(shape).contiguous() for k, t in present.items()}
        layout = layout_for(shape, list(present.values()))
    strides = dict(zip(present, layout.strides))
    flat = dict(zip(present, layout.flat))

    fp64 = x.dtype == torch.float64
    acc = torch.float64 if fp64 else torch.float32
    programs = triton.cdiv(numel, BLOCK)
    largest_offset = max(
        [numel] + [sum((n - 1) * s for n, s in zip(layout.sizes, st)) + 1 for st in layout.strides]
    )
    values = torch.empty(programs, dtype=acc, device=x.device) if plan.reduce else torch.empty_like(x)
    kept = torch.empty(programs, dtype=acc, device=x.device) if plan.kept is not None else None
    grad = torch.empty_like(x) if plan.need_grad else None
    dummy = values  # stands in for absent operands; never read

    zero_strides = (0,) * MAX_DIMS
    try:
        _fused_bce_kernel[(programs,)](
            x, y, present.get("w", dummy), present.get("p", dummy), present.get("i", dummy),
            values, kept if kept is not None else dummy, grad if grad is not None else dummy,
            numel, layout.sizes[1], layout.sizes[2], layout.sizes[3],
            *strides.get("w", zero_strides), *strides.get("p", zero_strides), *strides.get("i", zero_strides),
            float(plan.gamma), 0.0 if plan.alpha is None else float(plan.alpha), float(plan.grad_scale),
            **_constexprs(plan, {k: k in present for k in ("w", "p", "i")}, flat, fp64,
                          max(largest_offset, programs * BLOCK) >= 2**31),
        )
    except Exception as error:  # a Triton compile error, or a GPU architecture Triton does not support
        reason = f"the Triton kernel failed to build or launch: {type(error).__name__}: {error}".splitlines()[0]
        raise FusedBuildFailed(error_message(reason, fixes='backend="torch"   # the eager path')) from error
    if plan.reduce:
        values = values.sum(dtype=torch.float64).to(acc)
    if kept is not None:
        kept = kept.sum(dtype=torch.float64).to(acc)
    return PassOutputs(values, kept, grad.view(shape) if grad is not None else None)
