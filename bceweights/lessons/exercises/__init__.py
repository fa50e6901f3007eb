"""The lessons' exercise checkers, one module per lesson, under one naming scheme.

Lesson ``NN`` has ``LESSONNN_QUESTION`` (the text the notebook prints) and ``check_lessonNN(answer)``,
which prints a verdict a learner can act on and returns True when the answer is right; lesson 06 has
two exercises, ``_focal`` and ``_weight_map``. Every checker reads its answer with the one helper in
:mod:`~bceweights.lessons.exercises.answers`::

    from bceweights.lessons.exercises import LESSON04_QUESTION, check_lesson04
    print(LESSON04_QUESTION)
    _ = check_lesson04(0.1)

Imports: the explorers (:mod:`bceweights.lessons.explore`) and the core; nothing imports this package
but the notebooks and the tests.
"""

from __future__ import annotations

from bceweights.lessons.exercises.answers import answer_number, no_answer_yet
from bceweights.lessons.exercises.lesson01 import LESSON01_QUESTION, check_lesson01
from bceweights.lessons.exercises.lesson02 import LESSON02_QUESTION, check_lesson02
from bceweights.lessons.exercises.lesson03 import LESSON03_QUESTION, check_lesson03
from bceweights.lessons.exercises.lesson04 import LESSON04_QUESTION, check_lesson04
from bceweights.lessons.exercises.lesson05 import LESSON05_QUESTION, check_lesson05
from bceweights.lessons.exercises.lesson06 import (
    LESSON06_FOCAL_QUESTION,
    LESSON06_WEIGHT_MAP_QUESTION,
    check_lesson06_focal,
    check_lesson06_weight_map,
)
from bceweights.lessons.exercises.lesson07 import (
    LESSON07_CHECKLIST_QUESTION,
    LESSON07_SHIFT_QUESTION,
    LESSON07_THRESHOLD_QUESTION,
    check_lesson07_checklist,
    check_lesson07_shift,
    check_lesson07_threshold,
    lesson07_checklist_case,
    lesson07_threshold_data,
    show_lesson07_solution,
)

__all__ = [
    "LESSON01_QUESTION",
    "LESSON02_QUESTION",
    "LESSON03_QUESTION",
    "LESSON04_QUESTION",
    "LESSON05_QUESTION",
    "LESSON06_FOCAL_QUESTION",
    "LESSON06_WEIGHT_MAP_QUESTION",
    "LESSON07_CHECKLIST_QUESTION",
    "LESSON07_SHIFT_QUESTION",
    "LESSON07_THRESHOLD_QUESTION",
    "answer_number",
    "check_lesson01",
    "check_lesson02",
    "check_lesson03",
    "check_lesson04",
    "check_lesson05",
    "check_lesson06_focal",
    "check_lesson06_weight_map",
    "check_lesson07_checklist",
    "check_lesson07_shift",
    "check_lesson07_threshold",
    "lesson07_checklist_case",
    "lesson07_threshold_data",
    "no_answer_yet",
    "show_lesson07_solution",
]
