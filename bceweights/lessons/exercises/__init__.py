"""The lessons' exercise checkers, one module per lesson, under one naming scheme.

Exercise ``K`` of lesson ``NN`` has the key ``"NN.K"``, its text ``LESSONNN_K_QUESTION`` and its checker
``check_lessonNN_K(answer)``, which prints a verdict a learner can act on (on a wrong answer, what that
answer means) and returns True when the answer is right. Solutions are printed only on request, by
``show_solution("NN.K")``; ``EXERCISES`` holds every exercise by key. Every checker reads its answer
with the one helper in :mod:`~bceweights.lessons.exercises.answers`::

    from bceweights.lessons.exercises import LESSON04_2_QUESTION, check_lesson04_2, show_solution
    print(LESSON04_2_QUESTION)
    _ = check_lesson04_2(None)      # "No answer yet: ..."
    show_solution("04.2")           # only when you ask
    print_questionnaire("04")       # the end-of-lesson questions; show_solution("04.Q") prints the answers

The first names stay: ``check_lessonNN`` / ``LESSONNN_QUESTION`` are exercise ``NN.1`` (lessons 01, 02, 03, 06 and 09), and
``check_lesson07_focal`` / ``check_lesson07_weight_map`` are 07.1 and 07.2.

Imports: the explorers (:mod:`bceweights.lessons.explore`) and the core; nothing imports this package
but the notebooks and the tests.
"""

from __future__ import annotations

from bceweights.lessons.exercises.answers import answer_choice, answer_number, judge_number, no_answer_yet
from bceweights.lessons.exercises.lesson01 import (
    LESSON01_1_QUESTION,
    LESSON01_2_QUESTION,
    LESSON01_3_QUESTION,
    LESSON01_4_QUESTION,
    LESSON01_QUESTION,
    check_lesson01,
    check_lesson01_1,
    check_lesson01_2,
    check_lesson01_3,
    check_lesson01_4,
)
from bceweights.lessons.exercises.lesson02 import (
    LESSON02_1_QUESTION,
    LESSON02_2_QUESTION,
    LESSON02_3_QUESTION,
    LESSON02_4_QUESTION,
    LESSON02_QUESTION,
    check_lesson02,
    check_lesson02_1,
    check_lesson02_2,
    check_lesson02_3,
    check_lesson02_4,
)
from bceweights.lessons.exercises.lesson03 import (
    LESSON03_1_QUESTION,
    LESSON03_2_QUESTION,
    LESSON03_3_QUESTION,
    LESSON03_4_QUESTION,
    LESSON03_QUESTION,
    check_lesson03,
    check_lesson03_1,
    check_lesson03_2,
    check_lesson03_3,
    check_lesson03_4,
)
from bceweights.lessons.exercises.lesson04 import (
    LESSON04_1_QUESTION,
    LESSON04_2_QUESTION,
    LESSON04_3_QUESTION,
    check_lesson04_1,
    check_lesson04_2,
    check_lesson04_3,
)
from bceweights.lessons.exercises.lesson05 import (
    LESSON05_1_QUESTION,
    LESSON05_2_QUESTION,
    LESSON05_3_QUESTION,
    check_lesson05_1,
    check_lesson05_2,
    check_lesson05_3,
)
from bceweights.lessons.exercises.lesson06 import (
    LESSON06_1_QUESTION,
    LESSON06_2_QUESTION,
    LESSON06_3_QUESTION,
    LESSON06_4_QUESTION,
    LESSON06_QUESTION,
    check_lesson06,
    check_lesson06_1,
    check_lesson06_2,
    check_lesson06_3,
    check_lesson06_4,
)
from bceweights.lessons.exercises.lesson07 import (
    LESSON07_1_QUESTION,
    LESSON07_2_QUESTION,
    LESSON07_3_QUESTION,
    LESSON07_4_QUESTION,
    LESSON07_5_QUESTION,
    LESSON07_FOCAL_QUESTION,
    LESSON07_WEIGHT_MAP_QUESTION,
    check_lesson07_1,
    check_lesson07_2,
    check_lesson07_3,
    check_lesson07_4,
    check_lesson07_5,
    check_lesson07_focal,
    check_lesson07_weight_map,
)
from bceweights.lessons.exercises.lesson08 import (
    LESSON08_1_QUESTION,
    LESSON08_2_QUESTION,
    LESSON08_3_QUESTION,
    LESSON08_4_QUESTION,
    LESSON08_CHECKLIST_QUESTION,
    LESSON08_SHIFT_QUESTION,
    LESSON08_THRESHOLD_QUESTION,
    check_lesson08_1,
    check_lesson08_2,
    check_lesson08_3,
    check_lesson08_4,
    check_lesson08_checklist,
    check_lesson08_shift,
    check_lesson08_threshold,
    lesson08_checklist_case,
    lesson08_threshold_data,
    show_lesson08_solution,
)
from bceweights.lessons.exercises.lesson09 import (
    LESSON09_1_QUESTION,
    LESSON09_2_QUESTION,
    LESSON09_3_QUESTION,
    LESSON09_4_QUESTION,
    LESSON09_QUESTION,
    check_lesson09,
    check_lesson09_1,
    check_lesson09_2,
    check_lesson09_3,
    check_lesson09_4,
    lesson09_solution,
)
from bceweights.lessons.exercises.lesson10 import (
    LESSON10_1_QUESTION,
    LESSON10_2_QUESTION,
    LESSON10_3_QUESTION,
    LESSON10_4_QUESTION,
    LESSON10_5_QUESTION,
    check_lesson10_1,
    check_lesson10_2,
    check_lesson10_3,
    check_lesson10_4,
    check_lesson10_5,
    lesson10_1_mask,
)
from bceweights.lessons.exercises.lesson11 import (
    LESSON11_1_QUESTION,
    LESSON11_2_QUESTION,
    LESSON11_3_QUESTION,
    LESSON11_4_QUESTION,
    LESSON11_5_QUESTION,
    check_lesson11_1,
    check_lesson11_2,
    check_lesson11_3,
    check_lesson11_4,
    check_lesson11_5,
)
from bceweights.lessons.exercises.registry import (
    EXERCISES,
    QUESTIONNAIRES,
    Exercise,
    get_exercise,
    lesson_exercises,
    print_questionnaire,
    show_solution,
)

__all__ = [
    "EXERCISES",
    "QUESTIONNAIRES",
    "Exercise",
    "answer_choice",
    "answer_number",
    "get_exercise",
    "judge_number",
    "lesson08_checklist_case",
    "lesson08_threshold_data",
    "lesson09_solution",
    "lesson10_1_mask",
    "lesson_exercises",
    "no_answer_yet",
    "print_questionnaire",
    "show_lesson08_solution",
    "show_solution",
]
__all__ += sorted(name for name in dir() if name.startswith(("LESSON", "check_lesson")))
