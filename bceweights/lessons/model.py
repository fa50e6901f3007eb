"""A tiny U-Net-like segmentation model and a training loop that fits in a lesson.

``TinyUNet`` has one down-sampling step (two resolutions) and a skip connection, about 6.5 k parameters
at ``width=8``: enough to segment the synthetic shapes of :mod:`bceweights.lessons.data` in seconds on a CPU.

:func:`train` runs full-batch-shuffled mini-batch Adam for a few epochs, shows a progress bar
(``tqdm.auto``: a widget in Jupyter, text elsewhere; ``progress=False`` turns it off) and returns a
:class:`History` of per-epoch loss and per-channel metrics. Runs are deterministic: the model's
initial weights come from its own seed, the batch order from a ``torch.Generator``, and training
runs with deterministic algorithms on a fixed number of CPU threads (both restored afterwards).

The initial weights are drawn with plain IEEE arithmetic (the same bits on every CPU, see
:class:`TinyUNet`), and the images of :mod:`bceweights.lessons.data` are CPU-independent too. Training
itself runs in float32 by default, where the vectorised kernels of AVX-512, AVX2, NEON and scalar code
round differently in the last bit; a few hundred Adam steps can amplify that. So a single run is a
trajectory, not a finding: the lessons report figures over seeds (:mod:`bceweights.lessons.seeds`).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from bceweights.lessons.metrics import ChannelMetrics, channel_metrics, one_hot_prediction, one_hot_target
from bceweights.lessons.perturb import jitter_

LossFn = Callable[[Tensor, Tensor], Tensor]


def _block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(out_channels, out_channels, 3, padding=1),
        nn.ReLU(),
    )


class TinyUNet(nn.Module):
    """Two-level U-Net: ``(N, in_channels, H, W)`` -> logits ``(N, out_channels, H, W)`` (H, W even).

    encoder: 2 convs at full resolution (``width`` channels) -> max-pool -> 2 convs (``2 width``)
    decoder: nearest up-sampling -> concatenate the full-resolution features -> 2 convs -> 1x1 ``head``

    Args:
        in_channels: input image channels.
        out_channels: one logit per channel (multi-label) or per class (single-label).
        width: channels of the first level.
        output_bias: initial bias of the head, a float or one value per output channel (e.g.
            ``log(pos / neg)`` so that the untrained model already predicts the positive rate);
            ``None`` keeps PyTorch's default initialisation.
        seed: seeds the initial weights (the global RNG is left as it was).
        dtype: the parameters' dtype; inputs are cast to it. The default, float32, trains about 2.5
            times faster than float64 on a CPU. In float32, AVX-512, AVX2, NEON and scalar kernels
            round differently in the last bit and a few hundred Adam steps can amplify that into the
            printed digits, so the lessons report figures over several seeds (:mod:`bceweights.lessons.seeds`)
            and check them with training perturbed (:mod:`bceweights.lessons.perturb`). float64
            reproduces a single run to about 1e-12 on any CPU, but not its sensitivity to the start.

    The initial weights are PyTorch's default distribution for ``nn.Conv2d``, uniform in
    ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]`` for weights and biases alike, but drawn in float64 from a
    generator seeded with ``seed`` with plain IEEE arithmetic, so they are the same bits on every CPU
    (``nn.init.kaiming_uniform_`` rescales float32 draws with vectorised code that rounds per CPU).
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        width: int = 8,
        *,
        output_bias: float | Sequence[float] | Tensor | None = None,
        seed: int = 0,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        # nn.Conv2d draws its default initialisation from the global RNG; leave that RNG as it was.
        with torch.random.fork_rng(devices=[]):
            self.encoder = _block(in_channels, width)
            self.bottom = _block(width, 2 * width)
            self.decoder = _block(3 * width, width)
            self.head = nn.Conv2d(width, out_channels, 1)
        _portable_init(self, seed)
        self.to(dtype)
        if output_bias is not None:
            set_output_bias(self, output_bias)
        # Off unless BCEWEIGHTS_PERTURB is set: make nbval-perturbed checks the lessons' figures with it.
        jitter_(list(self.parameters()), seed)

    def forward(self, images: Tensor) -> Tensor:
        if images.shape[-1] % 2 or images.shape[-2] % 2:
            raise ValueError(
                f"TinyUNet needs an even height and width (it pools by 2), got {tuple(images.shape)}.\n"
                "Write instead, e.g.:\n    model(F.pad(images, (0, images.shape[-1] % 2, 0, images.shape[-2] % 2)))"
            )
        images = images.to(self.head.weight.dtype)
        high = self.encoder(images)
        low = self.bottom(F.max_pool2d(high, 2))
        up = F.interpolate(low, scale_factor=2.0, mode="nearest")
        return self.head(self.decoder(torch.cat([high, up], dim=1)))


@torch.no_grad()
def _portable_init(model: nn.Module, seed: int) -> None:
    """Every conv's weight and bias uniform in ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]``, CPU-independent.

    ``torch.rand`` in float64 is exact integer arithmetic (53 random bits times 2**-53); ``2u - 1``
    and the product with a Python float are single IEEE operations, correctly rounded everywhere.
    """
    generator = torch.Generator().manual_seed(int(seed))
    for conv in (m for m in model.modules() if isinstance(m, nn.Conv2d)):
        fan_in = conv.weight[0].numel()
        bound = 1.0 / math.sqrt(fan_in)
        for parameter in (conv.weight, conv.bias):
            if parameter is None:
                continue
            draw = torch.rand(parameter.shape, generator=generator, dtype=torch.float64)
            parameter.copy_((draw * 2.0 - 1.0) * bound)


def set_output_bias(model: TinyUNet, bias: float | Sequence[float] | Tensor) -> None:
    """Set the head's bias: one value for every channel, or one per output channel ``(C,)``."""
    value = torch.as_tensor(bias, dtype=model.head.bias.dtype)
    with torch.no_grad():
        model.head.bias.copy_(value.expand_as(model.head.bias))


@contextlib.contextmanager
def reproducible(num_threads: int | None = 1) -> Iterator[None]:
    """Deterministic algorithms on ``num_threads`` CPU threads inside the block; previous settings after.

    ``num_threads=None`` leaves the thread count alone. A fixed count keeps the order of floating-point
    reductions, hence the printed numbers, the same from machine to machine. The default is one
    thread: the lesson models are so small that a second thread gains little on an idle machine and
    loses much on a busy one.
    """
    previous_threads = torch.get_num_threads()
    previous_deterministic = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        if num_threads is not None:
            torch.set_num_threads(num_threads)
        torch.use_deterministic_algorithms(True)
        yield
    finally:
        torch.use_deterministic_algorithms(previous_deterministic, warn_only=previous_warn)
        torch.set_num_threads(previous_threads)


@dataclass
class History:
    """What :func:`train` measured after every epoch.

    Attributes:
        loss: mean training loss of each epoch (average of its mini-batch losses).
        metrics: per-channel metrics of each epoch on the evaluation data (the training data when no
            evaluation data was given), thresholded at logit 0 (probability 0.5) or by argmax.
        seconds: wall-clock time of the whole run.
    """

    loss: list[float] = field(default_factory=list)
    metrics: list[ChannelMetrics] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def final(self) -> ChannelMetrics:
        """The last epoch's metrics."""
        if not self.metrics:
            raise ValueError("History is empty: train() ran no epoch. Write instead, e.g.:\n    train(model, data, epochs=5)")
        return self.metrics[-1]

    def series(self, name: str, channel: int = 0) -> list[float]:
        """One metric of one channel over the epochs, e.g. ``history.series("recall", 1)``."""
        if name not in ("precision", "recall", "f1", "iou"):
            raise ValueError(f"unknown metric {name!r}; choose one of precision, recall, f1, iou.")
        return [float(getattr(m, name)[channel]) for m in self.metrics]


@torch.no_grad()
def predict(model: nn.Module, images: Tensor, batch_size: int = 256) -> Tensor:
    """The model's logits for ``images``, in evaluation mode, in batches; ``(N, C, H, W)``."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(images[i : i + batch_size]) for i in range(0, images.shape[0], batch_size)])
    finally:
        model.train(was_training)


def evaluate(logits: Tensor, targets: Tensor) -> ChannelMetrics:
    """Per-channel metrics of logits ``(N, C, H, W)`` against multi-label masks ``(N, C, H, W)``
    (threshold at logit 0) or against class indices ``(N, H, W)`` (argmax, one channel per class)."""
    if targets.dtype in (torch.int64, torch.int32, torch.uint8) and targets.ndim == logits.ndim - 1:
        return channel_metrics(one_hot_prediction(logits), one_hot_target(targets, logits.shape[1]))
    return channel_metrics(logits > 0, targets)


def _default_loss(logits: Tensor, targets: Tensor) -> Tensor:
    if targets.ndim == logits.ndim - 1:
        return F.cross_entropy(logits, targets)
    return F.binary_cross_entropy_with_logits(logits, targets)


def train(
    model: nn.Module,
    images: Tensor,
    targets: Tensor,
    loss_fn: LossFn | None = None,
    *,
    epochs: int = 20,
    batch_size: int = 16,
    lr: float = 1e-2,
    seed: int = 0,
    eval_images: Tensor | None = None,
    eval_targets: Tensor | None = None,
    progress: bool = True,
    description: str = "training",
    num_threads: int | None = 1,
) -> History:
    """Train ``model`` with Adam on ``(images, targets)`` and return per-epoch loss and metrics.

    Args:
        model: maps ``(N, C_in, H, W)`` to logits ``(N, C, H, W)``; trained in place.
        images: ``(N, C_in, H, W)``, cast to the model's dtype.
        targets: multi-label masks (cast to the model's dtype) ``(N, C, H, W)`` in [0, 1], or class indices ``(N, H, W)`` (int64).
        loss_fn: ``loss_fn(logits, targets) -> scalar``; default plain BCE with logits (masks) or
            cross-entropy (class indices). For weighted BCE, e.g.
            ``lambda x, y: bw.bce_with_logits(x, y, pos_weight=pw, channel_dim=1)``.
        epochs: passes over the data; each visits the samples in a new seeded order.
        batch_size: samples per Adam step.
        lr: Adam learning rate.
        seed: seeds the batch order.
        eval_images, eval_targets: data the per-epoch metrics are measured on (default: the training data).
        progress: show a tqdm progress bar (a widget in Jupyter, text on stderr elsewhere).
        description: the progress bar's label.
        num_threads: CPU threads during training (see :func:`reproducible`).
    """
    if images.shape[0] != targets.shape[0]:
        raise ValueError(
            f"images has {images.shape[0]} samples but targets has {targets.shape[0]}; they must pair up.\n"
            "Write instead:\n    train(model, data.images, data.masks)"
        )
    if (eval_images is None) != (eval_targets is None):
        raise ValueError("give both eval_images and eval_targets, or neither.")
    loss_fn = loss_fn if loss_fn is not None else _default_loss
    # Train in the model's dtype (float64 for TinyUNet): float masks are cast with the images, so the
    # loss sees logits and targets of one dtype; class indices stay int64.
    dtype = next(model.parameters()).dtype
    images = images.to(dtype)
    if targets.is_floating_point():
        targets = targets.to(dtype)
    eval_images = images if eval_images is None else eval_images
    eval_targets = targets if eval_targets is None else eval_targets
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = History()
    start = time.perf_counter()
    n = images.shape[0]
    with reproducible(num_threads):
        bar = tqdm(range(epochs), desc=description, unit="epoch", disable=not progress, leave=True)
        for _ in bar:
            model.train()
            order = torch.randperm(n, generator=generator)
            total, batches = 0.0, 0
            for i in range(0, n, batch_size):
                index = order[i : i + batch_size]
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(images[index]), targets[index])
                loss.backward()
                optimizer.step()
                total += loss.item()
                batches += 1
            history.loss.append(total / batches)
            history.metrics.append(evaluate(predict(model, eval_images), eval_targets))
            bar.set_postfix(loss=f"{history.loss[-1]:.4f}")
        bar.close()
    history.seconds = time.perf_counter() - start
    return history
