"""Lesson 06's two exercises: the focal ``gamma`` that silences easy pixels, and the U-Net map's ``w0``."""

from __future__ import annotations

import numpy as np

from bceweights.lessons.exercises.answers import answer_number
from bceweights.lessons.explore.display import format_number
from bceweights.lessons.explore.focal import EASY_FROM, easy_share
from bceweights.lessons.explore.weight_map import cell_scene, separating_share


#: The exercise: easy pixels (q_t >= 0.9) should carry at most this share of the total gradient.
LESSON06_EASY_SHARE = 0.05
LESSON06_FOCAL_QUESTION = (
    "On the explorer's sample image, without alpha: what is the smallest gamma (to one decimal) at "
    f"which the easy pixels (q_t >= {EASY_FROM}) carry at most {LESSON06_EASY_SHARE:.0%} of the total gradient?"
)


def lesson06_focal_answer() -> float:
    """The smallest gamma on the grid 0, 0.1, ..., 5 that meets :data:`LESSON06_FOCAL_QUESTION`."""
    return next(float(g) for g in np.round(np.arange(0.0, 5.05, 0.1), 1) if easy_share(float(g)) <= LESSON06_EASY_SHARE)


def check_lesson06_focal(answer: float | None) -> bool:
    """Check the answer to :data:`LESSON06_FOCAL_QUESTION`; print a verdict and return True when it is right."""
    gamma = answer_number(answer)
    if gamma is None:
        return False
    if not 0.0 <= gamma <= 5.0:
        print(f"gamma = {format_number(gamma)} is outside the explorer's range [0, 5]; the answer lies inside it.")
        return False
    right = lesson06_focal_answer()
    share = easy_share(gamma)
    if abs(gamma - right) < 0.05:
        print(
            f"Correct: at gamma = {right:.1f} the easy pixels carry {format_number(share)} of the gradient "
            f"(BCE: {format_number(easy_share(0.0))}). Each easy pixel keeps at most 0.1**gamma of its BCE loss."
        )
        return True
    if share > LESSON06_EASY_SHARE:
        print(
            f"Not yet: at gamma = {format_number(gamma)} the easy pixels still carry {format_number(share)} "
            f"of the gradient, more than {LESSON06_EASY_SHARE}; try a larger gamma."
        )
    else:
        print(
            f"Not yet: gamma = {format_number(gamma)} meets the bound (easy share {format_number(share)}), "
            "but a smaller gamma does too; look for the smallest one."
        )
    return False


#: The exercise: separating pixels should carry at least this share of the gradient.
LESSON06_SEPARATING_SHARE = 0.6
LESSON06_WEIGHT_MAP_QUESTION = (
    "In the explorer's first scene (cells = 0), with sigma = 5 and class balance on: what is the smallest "
    "w0 (a multiple of 0.5) at which the separating pixels carry at least "
    f"{LESSON06_SEPARATING_SHARE:.0%} of the weighted gradient?"
)


def lesson06_weight_map_answer() -> float:
    """The smallest w0 on the grid 0, 0.5, ..., 20 that meets :data:`LESSON06_WEIGHT_MAP_QUESTION`."""
    return next(float(w) for w in np.arange(0.0, 20.01, 0.5) if separating_share(float(w)) >= LESSON06_SEPARATING_SHARE)


def check_lesson06_weight_map(answer: float | None) -> bool:
    """Check the answer to :data:`LESSON06_WEIGHT_MAP_QUESTION`; print a verdict and return True when it is right."""
    w0 = answer_number(answer)
    if w0 is None:
        return False
    if not 0.0 <= w0 <= 20.0:
        print(f"w0 = {format_number(w0)} is outside the explorer's range [0, 20]; the answer lies inside it.")
        return False
    right = lesson06_weight_map_answer()
    share = separating_share(w0)
    if abs(w0 - right) < 0.25:
        print(
            f"Correct: at w0 = {format_number(right)} the separating pixels, {format_number(cell_scene(0).regions['separating'].mean())} "
            f"of the image, carry {format_number(share)} of the gradient (unweighted: {format_number(separating_share(0.0, class_balance=False))})."
        )
        return True
    if share < LESSON06_SEPARATING_SHARE:
        print(
            f"Not yet: at w0 = {format_number(w0)} the separating pixels carry {format_number(share)} of the "
            f"gradient, less than {LESSON06_SEPARATING_SHARE}; try a larger w0."
        )
    else:
        print(
            f"Not yet: w0 = {format_number(w0)} meets the bound (share {format_number(share)}), but a smaller "
            "w0 does too; look for the smallest multiple of 0.5."
        )
    return False
