""""Recall is 0": four checks on your own model's logits, each reported with its own finding.

    from bceweights.lessons.diagnose import recall_zero_checklist
    report = recall_zero_checklist(val_logits, val_targets, model=untrained_model, losses=history.loss,
                                   train_share=float(train_targets.float().mean()))
    report.failures               # the names of the checks that failed
    report.warnings               # the names of the checks that warn (a finding that is not the cause)

1. **bias init**: the output bias against the prior logit ``log(pos / neg)``. A bias near 0 starts
   every output at probability 0.5; the first epochs then go to pushing *all* outputs down, and for
   a while nothing is above 0.5. Pass the model as built, before training (the check reads its
   output bias; after training it reads where the bias went).
2. **posterior below 0.5**: whether any *positive* reaches the threshold, and whether the ranking is
   informative (average precision against the positive share, the AP of a ranking that knows
   nothing). Informative ranking + nothing above 0.5 = the classes overlap and a calibrated model is
   *right* to stay below 0.5: move the threshold (check 4), do not retrain. A few outputs that reach
   the threshold, none of them positive, give a warning, not a pass: recall is still 0 there.
3. **learning rate and warmup**: collapsed outputs (every logit the same), non-finite logits, or a
   training loss that rose or never went 2 % below the loss of always predicting the positive share
   (``H(q) = -q log q - (1 - q) log(1 - q)``; the lowest epoch loss must be under ``0.98 H(q)``): the
   optimiser left the model nothing to rank with. Collapsed means a logit spread (standard deviation)
   below ``0.001 * max(1, |mean logit|)``; logits larger than :data:`EXPLODED_LOGIT` in size fail too
   (steps too large blew them up, even where the loss still went down).
4. **evaluation threshold**: probabilities passed where logits are expected (sigmoid twice, or
   ``logits > 0.5``), and, when recall is 0, the threshold of the best F1 and its precision and recall
   (when that precision is at least twice the positive share). The probabilities test runs first: when
   every value lies in [0, 1], checks 2 and 3 are skipped (their numbers would be read on the wrong
   scale) and check 4 fails.

Checks 1 and 3 concern training, so they measure against the training data's positive share when
``train_share=`` is given (the validation targets' share otherwise); checks 2 and 4 use the validation
targets. Each check prints ``[ok]``, ``[FAIL]``, ``[warn]`` or ``[skip]`` and a sentence; the result is
a :class:`Checklist`. scikit-learn supplies the average precision.

The numbering is not a ranking of causes and there is no "first failure" verdict: one failure can
cause another (a collapsed model, check 3, has nothing to rank with, check 2), and a bias far from the
prior (check 1) matters only if the model did not learn. So every check reports its finding, and three
findings are warnings, not failures: the output bias far from the prior when the model learned anyway
(its lowest training loss at least 2 % below the base-rate loss ``H(q)`` and its AP at least ``AP_LIFT``
times the positive share), a few outputs that reach the threshold with no positive among them (check 2: recall is
still 0, so that is no pass), and recall 0 at the threshold when no threshold would do better (the cause
is then in checks 2 and 3).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import average_precision_score
from torch import nn

from bceweights.lessons.metrics import as_flat_numpy, precision_recall_curve

CHECK_NAMES = ("bias init", "posterior below 0.5", "learning rate and warmup", "evaluation threshold")
#: An output bias farther than this from log(pos/neg) fails check 1.
BIAS_TOLERANCE = 1.0
#: A ranking is informative when its AP is at least this many times the positive share.
AP_LIFT = 2.0
#: A model learned when its lowest training loss is below this share of the base rate H(q) (2 % below it).
LEARNED_SHARE = 0.98
#: Logits larger than this in size mean the steps blew them up (a trained BCE model's stay within a few tens).
EXPLODED_LOGIT = 100.0


@dataclass(frozen=True)
class Check:
    """One check: ``status`` is ``"ok"``, ``"fail"``, ``"warn"`` or ``"skip"``; ``detail`` says what was seen and what to do."""

    name: str
    status: str
    detail: str

    def line(self, number: int) -> str:
        tag = {"ok": "[ok]  ", "fail": "[FAIL]", "warn": "[warn]", "skip": "[skip]"}[self.status]
        return f"{number}. {tag} {self.name}: {self.detail}"


@dataclass
class Checklist:
    """The four checks (numbered, not ranked) and the numbers they were based on."""

    checks: list[Check] = field(default_factory=list)
    numbers: dict[str, float] = field(default_factory=dict)

    @property
    def failures(self) -> list[str]:
        """The names of the checks that failed, in their numbering."""
        return [c.name for c in self.checks if c.status == "fail"]

    @property
    def warnings(self) -> list[str]:
        """The names of the checks that warn: a finding worth fixing that did not keep recall at 0."""
        return [c.name for c in self.checks if c.status == "warn"]

    def __str__(self) -> str:
        return "\n".join(check.line(i) for i, check in enumerate(self.checks, 1))


def output_bias(model: nn.Module) -> float | None:
    """The bias of the model's last layer with one output (``nn.Linear`` or a conv), or None."""
    last = None
    for module in model.modules():
        bias = getattr(module, "bias", None)
        if isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)) and bias is not None:
            last = module
    if last is None or last.bias.numel() != 1:
        return None
    return float(last.bias.detach().reshape(()))


def _entropy(q: float) -> float:
    return -sum(v * math.log(v) for v in (q, 1.0 - q) if v > 0)


def recall_zero_checklist(
    logits,
    targets,
    model: nn.Module | None = None,
    *,
    threshold: float = 0.5,
    losses: Sequence[float] | None = None,
    train_share: float | None = None,
    verbose: bool = True,
) -> Checklist:
    """Run the four checks of the module docstring on ``logits`` and 0/1 ``targets`` (same shape, any shape).

    Args:
        logits: the model's raw outputs on validation data (before any sigmoid).
        targets: 0/1 targets of the same shape.
        model: the model *as built, before training*, for check 1 (its last layer's single bias);
            ``None`` skips check 1.
        threshold: the probability threshold your evaluation uses.
        losses: the training loss per epoch (or per step), for check 3.
        train_share: the positive share of the training data, which the output bias (check 1) and the
            training loss (check 3: the base-rate loss ``H(train_share)``) are measured against;
            ``None`` uses the share of ``targets``.
        verbose: print each check's line.
    """
    z, y = as_flat_numpy(logits), as_flat_numpy(targets) > 0.5
    if z.shape != y.shape:
        raise ValueError(
            f"logits has {z.size} elements but targets has {y.size}; they pair up element by element.\n"
            "Write instead, e.g.:\n    recall_zero_checklist(model(val_x).squeeze(-1), val_y)"
        )
    if train_share is not None and not 0.0 < train_share < 1.0:
        raise ValueError(
            f"train_share={train_share!r}, but it is the positive share of the training data, strictly "
            "between 0 and 1.\nWrite instead, e.g.:\n    train_share=float(train_y.float().mean())"
        )
    report = Checklist()
    positives = int(y.sum())
    q = positives / max(y.size, 1)
    if positives == 0 or positives == y.size:
        report.checks = [Check(name, "skip", "the targets hold one class only: nothing to diagnose") for name in CHECK_NAMES]
        return _finish(report, verbose)
    train_q = q if train_share is None else float(train_share)
    prior_logit = math.log(train_q / (1 - train_q))  # the logit of the training data's positive share
    of_training = "" if train_share is None else " on the training data"
    finite = bool(np.all(np.isfinite(z)))
    p = 0.5 * (1.0 + np.tanh(0.5 * np.where(np.isfinite(z), z, 0.0)))
    ap = float(average_precision_score(y, np.where(np.isfinite(z), z, 0.0)))
    report.numbers.update(positive_share=q, prior_logit=prior_logit, average_precision=ap, max_probability=float(p.max()))
    informative = ap >= AP_LIFT * q
    # Probabilities passed as logits: every value in [0, 1]. Tested first, since checks 2 and 3 would
    # read their numbers on the wrong scale (check 4 reports it).
    looks_like_probabilities = finite and float(z.min()) >= 0.0 and float(z.max()) <= 1.0
    wrong_scale = (
        "every value lies in [0, 1]: these look like probabilities, not logits (check 4), and this check "
        "would read them on the wrong scale; run the checklist on the logits (torch.logit(probabilities))"
    )
    loss_values = [float(v) for v in losses] if losses is not None else []
    floor = _entropy(train_q)
    # The model learned: its training loss went at least 2 % below the base rate and its ranking beats chance.
    learned = (
        bool(loss_values) and all(math.isfinite(v) for v in loss_values) and min(loss_values) < LEARNED_SHARE * floor and informative
    )

    # 1. bias init
    bias = output_bias(model) if model is not None else None
    if model is None:
        report.checks.append(Check(CHECK_NAMES[0], "skip", "pass model= (as built, before training) to check its output bias"))
    elif bias is None:
        report.checks.append(Check(CHECK_NAMES[0], "skip", "no last layer with a single bias found in model"))
    else:
        report.numbers["output_bias"] = bias
        if abs(bias - prior_logit) > BIAS_TOLERANCE and learned:
            report.checks.append(Check(CHECK_NAMES[0], "warn", (
                f"output bias {bias:.3g}, but log(pos/neg){of_training} = {prior_logit:.3g}; the model learned "
                f"anyway (training loss at least 2 % below {floor:.3g}, the base rate H(q); AP at least {AP_LIFT:g} x the positive "
                f"share), so this did not keep recall at 0. Still cheap to set: with torch.no_grad(): model.head.bias.fill_({prior_logit:.3g})"
            )))
        elif abs(bias - prior_logit) > BIAS_TOLERANCE:
            report.checks.append(Check(CHECK_NAMES[0], "fail", (
                f"output bias {bias:.3g}, but log(pos/neg){of_training} = {prior_logit:.3g}: every output starts "
                f"near probability {1 / (1 + math.exp(-bias)):.2g} while {train_q:.2%} are positive. Start it there: "
                f"with torch.no_grad(): model.head.bias.fill_({prior_logit:.3g})"
            )))
        else:
            report.checks.append(Check(
                CHECK_NAMES[0], "ok", f"output bias {bias:.3g} is near log(pos/neg){of_training} = {prior_logit:.3g}"
            ))

    # 2. posterior below 0.5
    above = int(np.sum(p >= threshold))
    positives_above = int(np.sum(p[y] >= threshold))
    report.numbers.update(outputs_reaching_threshold=above, positives_reaching_threshold=positives_above)
    lift = f"AP {ap:.3g} = {ap / q:.3g} x the positive share {q:.3g}"
    if looks_like_probabilities:
        report.checks.append(Check(CHECK_NAMES[1], "skip", wrong_scale))
    elif above > 0 and positives_above == 0:
        verdict = (
            "yet the ranking is informative: the classes overlap; lower the threshold (check 4)" if informative
            else "and the ranking is near chance: see checks 1 and 3"
        )
        report.checks.append(Check(CHECK_NAMES[1], "warn", (
            f"only {above} of {y.size} outputs reach {threshold:g}, none of them positive ({lift}), {verdict}"
        )))
    elif above == 0 and informative:
        report.checks.append(Check(CHECK_NAMES[1], "fail", (
            f"no probability reaches {threshold:g} (largest {p.max():.3g}), yet the ranking is informative "
            f"({lift}): the classes overlap and a calibrated model stays below {threshold:g}. Lower the "
            "threshold (check 4) rather than retrain"
        )))
    elif above == 0:
        report.checks.append(Check(CHECK_NAMES[1], "fail", (
            f"no probability reaches {threshold:g} (largest {p.max():.3g}) and the ranking is near chance "
            f"({lift}): the model learned nothing to rank with; see checks 1 and 3"
        )))
    else:
        report.checks.append(Check(CHECK_NAMES[1], "ok", (
            f"{above} of {y.size} outputs reach {threshold:g}, {positives_above} of {positives} positives among them; {lift}"
        )))

    # 3. learning rate and warmup
    spread = float(np.std(z)) if finite else math.nan
    report.numbers["logit_std"] = spread
    problems = []
    if not finite:
        problems.append("some logits are NaN or infinite (a step too large: lower the learning rate, clip gradients)")
    elif float(np.abs(z).max()) > EXPLODED_LOGIT:
        problems.append(
            f"logits reach {float(np.abs(z).max()):.3g} in size (above {EXPLODED_LOGIT:g}): steps too large blew them up, "
            "whatever the loss says; lower the learning rate or warm it up"
        )
    elif spread < 1e-3 * max(1.0, abs(float(np.mean(z)))):
        problems.append(
            f"every logit is about {float(np.mean(z)):.3g} (spread below 0.001 × max(1, |mean logit|)): the model collapsed to one "
            "output, typically after a first step too large (dead ReLUs); lower the learning rate or warm it up"
        )
    if loss_values:
        values = loss_values
        report.numbers["prior_entropy"] = floor
        if not all(math.isfinite(v) for v in values):
            problems.append("the training loss became NaN or infinite")
        elif len(values) > 1 and values[-1] > values[0]:
            problems.append(f"the training loss rose from {values[0]:.3g} to {values[-1]:.3g}: lower the learning rate")
        elif min(values) >= LEARNED_SHARE * floor:
            problems.append(
                f"the training loss never went 2 % below {floor:.3g}, the loss of always answering the positive "
                f"share (plain BCE): nothing beyond the base rate was learned; lower the learning rate, warm it up"
            )
    if looks_like_probabilities:
        report.checks.append(Check(CHECK_NAMES[2], "skip", wrong_scale))
    elif problems:
        report.checks.append(Check(CHECK_NAMES[2], "fail", "; ".join(problems)))
    elif losses is None and finite:
        report.checks.append(Check(CHECK_NAMES[2], "ok", f"logits spread {spread:.3g} (pass losses= to check the loss curve too)"))
    else:
        report.checks.append(Check(CHECK_NAMES[2], "ok", f"logits spread {spread:.3g}; the loss went down"))

    # 4. evaluation threshold
    curve = precision_recall_curve(np.where(np.isfinite(z), z, 0.0), y)
    f1 = 2 * curve.precision * curve.recall / np.maximum(curve.precision + curve.recall, 1e-300)
    recall_now = float(np.mean(p[y] >= threshold))
    report.numbers["recall_at_threshold"] = recall_now
    k = int(np.argmax(f1)) if curve.precision.size else -1  # the best-F1 point of the curve
    if looks_like_probabilities:
        report.checks.append(Check(CHECK_NAMES[3], "fail", (
            "every value lies in [0, 1]: these look like probabilities, not logits. sigmoid(probability) >= 0.5 "
            "holds for every value (logit 0 = probability 0.5): threshold probabilities at 0.5, or logits at 0"
        )))
    elif recall_now == 0.0 and k >= 0 and float(curve.precision[k]) >= AP_LIFT * q:
        t = 1.0 / (1.0 + math.exp(-float(curve.thresholds[k])))
        report.numbers["suggested_threshold"] = t
        report.checks.append(Check(CHECK_NAMES[3], "fail", (
            f"recall is 0 at {threshold:g}, but at threshold {t:.3g} (the best F1 on these data) recall is "
            f"{curve.recall[k]:.3g} with precision {curve.precision[k]:.3g}. Choose the threshold on validation "
            "data for the precision you need (calibration.threshold_for_precision), report it on test data"
        )))
    elif recall_now == 0.0:
        report.checks.append(Check(CHECK_NAMES[3], "warn", (
            f"recall 0 at threshold {threshold:g}, and the best-F1 threshold's precision is not "
            f"{AP_LIFT:g} x the positive share either: moving the threshold would not help; the cause is "
            "elsewhere (checks 2 and 3)"
        )))
    else:
        report.checks.append(Check(CHECK_NAMES[3], "ok", f"recall {recall_now:.3g} at threshold {threshold:g}"))
    return _finish(report, verbose)


def _finish(report: Checklist, verbose: bool) -> Checklist:
    if verbose:
        print(report)
    return report
