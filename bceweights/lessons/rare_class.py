"""Lesson 08's experiment: every common remedy for a rare class, trained the same way, scored the same way.

Data (:func:`make_features`): two features per sample, a share ``positive_share`` of positives.
Negatives are ``N(0, I)``, positives ``N((separation, 0), spread² I)``. Because the data are drawn
from known distributions, the true posterior ``P(y = 1 | x)`` of every sample is known exactly:

    logit P(y=1|x) = logit(π) - 2 log(spread) - |x - μ|² / (2 spread²) + |x|² / 2

The two regimes of :data:`REGIMES` have the same share of positives and differ in overlap only.

Model (:class:`TinyMLP`): 2 -> 16 -> 16 -> 1 with ReLUs, float64, initial weights drawn with plain
IEEE arithmetic from its seed (the same bits on every CPU, as :class:`~bceweights.lessons.model.TinyUNet`).
:func:`fit_together` trains the models of several seeds in one stacked network (one batched matrix
product per layer, one Adam over the stacked weights): Adam acts element by element, so each seed's
model takes the steps it would take alone, and five seeds cost little more than one.

Methods (:data:`METHODS`): plain BCE, ``pos_weight = neg/pos``, oversampling to balance with
``torch.utils.data.WeightedRandomSampler``, focal loss (γ = 2, α = 0.25 and 0.75), soft Dice and
BCE + Dice. Every method trains the same model for the same number of Adam steps, from the same
initial weights, with the output bias started at its method's "empty model" optimum.
:func:`run_experiment` trains each method on each regime and seed (five seeds by default: one
trained model is one trajectory, and a figure that only one seed shows is not a finding) and keeps
the test and validation logits; :mod:`bceweights.lessons.scoreboard` scores them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.utils.data import RandomSampler, WeightedRandomSampler

import bceweights as bw
from bceweights.lessons.dice import bce_dice_with_logits, soft_dice_with_logits
from bceweights.lessons.model import reproducible
from bceweights.lessons.perturb import jitter_

POSITIVE_SHARE = 0.02
SPREAD = 0.6


@dataclass(frozen=True)
class Regime:
    """How far the positives' centre lies from the negatives' (in units of the negatives' spread)."""

    separation: float
    spread: float = SPREAD
    positive_share: float = POSITIVE_SHARE


#: Same share of positives, clearly separated classes and overlapping ones.
REGIMES: dict[str, Regime] = {"separated": Regime(3.5), "overlapping": Regime(1.5)}


@dataclass(frozen=True)
class Features:
    """``x (N, 2)`` float64 features, ``y (N,)`` float64 0/1 labels, ``posterior (N,)`` the true ``P(y=1|x)``."""

    x: Tensor
    y: Tensor
    posterior: Tensor

    def __len__(self) -> int:
        return self.y.shape[0]


def true_logit(x: Tensor, regime: Regime) -> Tensor:
    """``logit P(y = 1 | x)`` of the data distribution (formula in the module docstring), ``(N,)``."""
    share, spread = regime.positive_share, regime.spread
    centre = torch.tensor([regime.separation, 0.0], dtype=x.dtype)
    return (
        math.log(share / (1 - share)) - 2 * math.log(spread)
        - ((x - centre) ** 2).sum(1) / (2 * spread**2) + (x**2).sum(1) / 2
    )


def largest_likelihood_ratio(regime: Regime) -> float:
    """``max_x p(x | y=1) / p(x | y=0)`` of ``regime``: the largest factor by which any ``x`` raises the prior odds.

    The posterior odds are ``LR(x) · π / (1 - π)``, so ``P(y = 1 | x) >= 0.5`` exactly where
    ``LR(x) >= (1 - π) / π``: the share ``π`` and the overlap (through ``LR``) decide together.
    With ``spread s < 1`` and centre distance ``d``, ``log LR(x) = -2 log s - |x - μ|² / (2 s²) + |x|² / 2``
    peaks at ``x = μ / (1 - s²)`` with ``log LR = -2 log s + d² / (2 (1 - s²))``.
    """
    s = regime.spread
    if s >= 1:
        raise ValueError(f"spread {s} >= 1: the positives' cloud is not the tighter one and LR(x) has no maximum")
    return math.exp(-2 * math.log(s) + regime.separation**2 / (2 * (1 - s**2)))


def share_where_half_is_reached(regime: Regime) -> float:
    """The smallest share ``π`` at which the true posterior of ``regime``'s overlap reaches 0.5: ``1 / (1 + LR_max)``."""
    return 1.0 / (1.0 + largest_likelihood_ratio(regime))


def make_features(n: int, regime: Regime, seed: int) -> Features:
    """``n`` samples of ``regime``; labels Bernoulli(``positive_share``); every draw from one generator.

    float64 throughout: ``torch.rand`` in float64 is exact integer arithmetic and ``torch.randn`` in
    float64 takes the same scalar path on every CPU, so the samples are the same bits everywhere.
    """
    generator = torch.Generator().manual_seed(int(seed))
    y = (torch.rand(n, generator=generator, dtype=torch.float64) < regime.positive_share).double()
    noise = torch.randn(n, 2, generator=generator, dtype=torch.float64)
    centre = torch.tensor([regime.separation, 0.0], dtype=torch.float64)
    x = torch.where(y[:, None] > 0.5, centre + regime.spread * noise, noise)
    return Features(x, y, torch.sigmoid(true_logit(x, regime)))


class TinyMLP(nn.Module):
    """``(N, in_features)`` -> logits ``(N,)``: Linear -> ReLU -> Linear -> ReLU -> ``head`` Linear(·, 1).

    Initial weights and biases uniform in ``[-1/sqrt(fan_in), 1/sqrt(fan_in)]`` (PyTorch's default
    range for ``nn.Linear``), drawn in float64 from ``seed``; ``output_bias`` sets the head's bias
    (``None``: keep the drawn one, near 0, i.e. every output starts near probability 0.5).
    """

    def __init__(self, in_features: int = 2, hidden: int = 16, *, output_bias: float | None = None, seed: int = 0) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(in_features, hidden, dtype=torch.float64), nn.ReLU(),
            nn.Linear(hidden, hidden, dtype=torch.float64), nn.ReLU(),
        )
        self.head = nn.Linear(hidden, 1, dtype=torch.float64)
        generator = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            for layer in (m for m in self.modules() if isinstance(m, nn.Linear)):
                bound = 1.0 / math.sqrt(layer.in_features)
                for parameter in (layer.weight, layer.bias):
                    draw = torch.rand(parameter.shape, generator=generator, dtype=torch.float64)
                    parameter.copy_((draw * 2.0 - 1.0) * bound)
            if output_bias is not None:
                self.head.bias.fill_(float(output_bias))
        # Off unless BCEWEIGHTS_PERTURB is set: make nbval-perturbed checks the lessons' figures with it.
        jitter_(list(self.parameters()), seed)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x.to(torch.float64))).squeeze(-1)


LossFn = Callable[[Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class Method:
    """One remedy: how its loss is built from the training counts, and how batches are drawn.

    ``loss(pos_weight)`` returns ``loss_fn(logits, targets)``, where ``pos_weight`` is ``neg/pos`` of the
    training split; ``balanced`` draws batches with ``WeightedRandomSampler`` so that each class is
    drawn equally often; ``bias(q, pos_weight)`` is the output bias the model starts from.
    """

    loss: Callable[[float], LossFn]
    balanced: bool = False
    bias: Callable[[float, float], float] = lambda q, p: float(bw.optimal_logit(q, 1.0))


# Batches of a few hundred elements: the eager torch path ("torch") is the fast one, and naming it
# skips the fused path's one-off toolchain probe.
BACKEND = "torch"


def _bce(pos_weight: float) -> LossFn:
    return lambda x, y: bw.bce_with_logits(x, y, backend=BACKEND)


def _weighted_bce(pos_weight: float) -> LossFn:
    return lambda x, y: bw.bce_with_logits(x, y, pos_weight=pos_weight, backend=BACKEND)


def _focal(alpha: float) -> Callable[[float], LossFn]:
    return lambda pos_weight: (lambda x, y: bw.focal_bce_with_logits(x, y, gamma=2.0, alpha=alpha, backend=BACKEND))


def _dice(pos_weight: float) -> LossFn:
    return lambda x, y: soft_dice_with_logits(x, y)


def _bce_dice(pos_weight: float) -> LossFn:
    return lambda x, y: bce_dice_with_logits(x, y, backend=BACKEND)


#: The trained methods, in table order. "pos_weight" and "oversampling" start at logit 0, the optimum
#: of an empty model trained on balanced weights; the others at the prior logit log(pos/neg).
METHODS: dict[str, Method] = {
    "plain BCE": Method(_bce),
    "pos_weight = neg/pos": Method(_weighted_bce, bias=lambda q, p: float(bw.optimal_logit(q, p))),
    "oversampling": Method(_bce, balanced=True, bias=lambda q, p: 0.0),
    "focal γ=2 α=0.25": Method(_focal(0.25)),
    "focal γ=2 α=0.75": Method(_focal(0.75)),
    "Dice": Method(_dice),
    "BCE + Dice": Method(_bce_dice),
}


@dataclass(frozen=True)
class TrainingSetup:
    """Sizes and optimiser settings shared by every run.

    The validation and test splits are large (about 800 positives each at 2 %): they cost only a
    forward pass, and a threshold chosen for a precision target, or a precision read from the
    predictions above it, is only as steady as the number of samples behind it.
    """

    n_train: int = 6000
    n_val: int = 40000
    n_test: int = 20000
    epochs: int = 10
    batch_size: int = 500
    lr: float = 2e-2


def batch_indices(train: Features, batch_size: int, balanced: bool, seed: int) -> list[Tensor]:
    """One epoch of index batches over ``train``: shuffled, or drawn with ``WeightedRandomSampler``.

    Balanced: each sample is drawn with probability ``1 / (2 · count of its class)``, with replacement,
    ``len(train)`` draws per epoch, so each batch holds about as many positives as negatives (the
    positives are repeated, about ``neg/pos`` times each per epoch). Otherwise ``RandomSampler``
    visits every sample once. The indices are the samplers' own draws, taken as one tensor (the
    ``torch.multinomial`` or ``torch.randperm`` call each sampler makes from ``generator``, without
    iterating over them one by one) and cut into batches, as a ``DataLoader`` with ``sampler=`` would.
    """
    generator = torch.Generator().manual_seed(int(seed))
    if balanced:
        positives = float(train.y.sum())
        per_class = torch.where(train.y > 0.5, 0.5 / positives, 0.5 / (len(train) - positives))
        sampler = WeightedRandomSampler(per_class, num_samples=len(train), replacement=True, generator=generator)
        order = torch.multinomial(sampler.weights, sampler.num_samples, sampler.replacement, generator=generator)
    else:
        sampler = RandomSampler(range(len(train)), generator=generator)
        order = torch.randperm(sampler.num_samples, generator=generator)
    return list(order.split(batch_size))


def fit(
    model: nn.Module, train: Features, loss_fn: LossFn, setup: TrainingSetup, *, balanced: bool = False, seed: int = 0,
    lr: float | None = None,
) -> list[float]:
    """Adam on ``train`` for ``setup.epochs`` epochs (one CPU thread, deterministic); the mean loss of each epoch."""
    optimizer = torch.optim.Adam(model.parameters(), lr=setup.lr if lr is None else lr, foreach=True)
    losses: list[float] = []
    with reproducible(1):
        for epoch in range(setup.epochs):
            total, count = 0.0, 0
            for index in batch_indices(train, setup.batch_size, balanced, seed * 1000 + epoch):
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(train.x[index]), train.y[index])
                loss.backward()
                optimizer.step()
                total, count = total + loss.item(), count + 1
            losses.append(total / count)
    return losses


def _stacked_forward(parameters: Sequence[Tensor], x: Tensor) -> Tensor:
    """``x (S, B, in)`` through ``S`` stacked MLPs, weights ``(S, out, in)`` and biases ``(S, out)``: logits ``(S, B)``."""
    hidden = x
    pairs = list(zip(parameters[0::2], parameters[1::2]))
    for depth, (weight, bias) in enumerate(pairs):
        hidden = torch.baddbmm(bias.unsqueeze(1), hidden, weight.transpose(1, 2))
        if depth < len(pairs) - 1:
            hidden = torch.relu(hidden)
    return hidden.squeeze(-1)


def fit_together(
    models: Sequence[TinyMLP], trains: Sequence[Features], loss_fns: Sequence[LossFn], setup: TrainingSetup, *,
    seeds: Sequence[int], balanced: bool = False, lr: float | None = None,
) -> list[list[float]]:
    """Train ``models[s]`` on ``trains[s]`` with ``loss_fns[s]`` for every ``s``, as :func:`fit` would one by one.

    The ``S`` models' weights are stacked (``(S, out, in)``) and run with one batched matrix product
    per layer; the summed loss ``Σ_s loss_fns[s](logits_s, y_s)`` gives each model its own gradient,
    and Adam, which acts element by element, gives each its own steps. Batches are drawn as in
    :func:`fit` with ``seeds[s]``; every training split must have the same size. The trained weights
    are copied back into ``models``.

    Returns:
        the mean loss of each epoch, one list per model.
    """
    if not (len(models) == len(trains) == len(loss_fns) == len(seeds)) or not models:
        raise ValueError(
            f"fit_together needs one training split, loss and seed per model, got {len(models)} models, "
            f"{len(trains)} splits, {len(loss_fns)} losses, {len(seeds)} seeds.\n"
            "Write instead, e.g.:\n    fit_together([TinyMLP(seed=s) for s in seeds], trains, [loss] * len(seeds), setup, seeds=seeds)"
        )
    if len({len(train) for train in trains}) != 1:
        raise ValueError(f"fit_together stacks the batches of every model; the training splits differ in size: {[len(t) for t in trains]}.")
    layers = [[m for m in model.modules() if isinstance(m, nn.Linear)] for model in models]
    parameters = [
        torch.stack([getattr(per_model[depth], name).detach() for per_model in layers]).clone().requires_grad_(True)
        for depth in range(len(layers[0])) for name in ("weight", "bias")
    ]
    optimizer = torch.optim.Adam(parameters, lr=setup.lr if lr is None else lr, foreach=True)
    losses: list[list[float]] = [[] for _ in models]
    all_x, all_y = torch.stack([train.x for train in trains]), torch.stack([train.y for train in trains])
    rows = torch.arange(len(models))[:, None]
    with reproducible(1):
        for epoch in range(setup.epochs):
            orders = torch.stack([
                torch.cat(batch_indices(train, setup.batch_size, balanced, seed * 1000 + epoch)) for train, seed in zip(trains, seeds)
            ])
            totals, count = torch.zeros(len(models), dtype=torch.float64), 0
            for indices in orders.split(setup.batch_size, dim=1):
                optimizer.zero_grad(set_to_none=True)
                x, y = all_x[rows, indices], all_y[rows, indices]
                logits = _stacked_forward(parameters, x)
                per_model = torch.stack([loss_fn(logits[s], y[s]) for s, loss_fn in enumerate(loss_fns)])
                per_model.sum().backward()
                optimizer.step()
                totals, count = totals + per_model.detach(), count + 1
            for s, value in enumerate((totals / count).tolist()):
                losses[s].append(value)
    with torch.no_grad():
        for s, per_model in enumerate(layers):
            for depth, layer in enumerate(per_model):
                layer.weight.copy_(parameters[2 * depth][s])
                layer.bias.copy_(parameters[2 * depth + 1][s])
    return losses


@torch.no_grad()
def logits_of(model: nn.Module, features: Features) -> Tensor:
    """The model's logits ``(N,)`` for ``features`` (one CPU thread, as in training)."""
    with reproducible(1):
        return model(features.x)


@dataclass
class Run:
    """One method on one regime and seed: validation and test logits, and what it was trained with."""

    method: str
    regime: str
    seed: int
    pos_weight: float
    val_logits: Tensor
    test_logits: Tensor
    losses: list[float]


@dataclass
class Experiment:
    """Every run of :func:`run_experiment`, with the data splits they were scored on."""

    setup: TrainingSetup
    runs: list[Run] = field(default_factory=list)
    splits: dict[tuple[str, int], dict[str, Features]] = field(default_factory=dict)
    seconds: float = 0.0

    def run(self, method: str, regime: str, seed: int) -> Run:
        """The run of ``method`` on ``regime`` with ``seed``."""
        for run in self.runs:
            if (run.method, run.regime, run.seed) == (method, regime, seed):
                return run
        raise KeyError(f"no run ({method!r}, {regime!r}, seed {seed}); methods: {sorted({r.method for r in self.runs})}")

    def seeds(self) -> list[int]:
        return sorted({run.seed for run in self.runs})


def make_splits(regime: Regime, seed: int, setup: TrainingSetup) -> dict[str, Features]:
    """Train, validation and test samples of ``regime`` for ``seed`` (three disjoint seeds)."""
    return {
        "train": make_features(setup.n_train, regime, 3 * seed),
        "val": make_features(setup.n_val, regime, 3 * seed + 1),
        "test": make_features(setup.n_test, regime, 3 * seed + 2),
    }


def run_experiment(
    methods: Iterable[str] = tuple(METHODS),
    regimes: Iterable[str] = tuple(REGIMES),
    seeds: Iterable[int] = range(5),
    setup: TrainingSetup | None = None,
) -> Experiment:
    """Train every method on every regime and seed; keep validation and test logits.

    For each seed the data (train, validation, test) and the model's initial weights change; every
    method of a seed starts from the same weights (only the output bias differs, see :data:`METHODS`).
    The seeds of one method and regime train together (:func:`fit_together`).
    """
    setup = setup or TrainingSetup()
    seeds = tuple(int(s) for s in seeds)
    experiment = Experiment(setup)
    start = time.perf_counter()
    for regime_name in regimes:
        regime = REGIMES[regime_name]
        trains, shares, pos_weights = [], [], []
        for seed in seeds:
            splits = make_splits(regime, seed, setup)
            experiment.splits[(regime_name, seed)] = splits
            positives = float(splits["train"].y.sum())
            trains.append(splits["train"])
            shares.append(positives / len(splits["train"]))
            pos_weights.append((len(splits["train"]) - positives) / positives)
        for name in methods:
            method = METHODS[name]
            models = [TinyMLP(output_bias=method.bias(q, p), seed=seed) for q, p, seed in zip(shares, pos_weights, seeds)]
            losses = fit_together(
                models, trains, [method.loss(p) for p in pos_weights], setup, seeds=seeds, balanced=method.balanced,
            )
            for model, seed, p, run_losses in zip(models, seeds, pos_weights, losses):
                splits = experiment.splits[(regime_name, seed)]
                experiment.runs.append(Run(
                    name, regime_name, seed, p, logits_of(model, splits["val"]), logits_of(model, splits["test"]), run_losses,
                ))
    experiment.seconds = time.perf_counter() - start
    return experiment
