"""Every exercise of the lessons under one key, ``"NN.K"`` (lesson NN, exercise K), with its hidden solution.

Each lesson module registers its exercises here; the notebooks print the question, call the checker
(``check_lessonNN_K``) and never print a solution. A learner who wants one asks for it explicitly::

    from bceweights.lessons.exercises import show_solution
    show_solution("04.2")

A lesson's end-of-lesson questionnaire (short questions, fastbook style) is registered under the lesson's
number: :func:`print_questionnaire` prints the questions, ``show_solution("01.Q")`` the answers.

Imports nothing from ``bceweights``; :mod:`bceweights.lessons.exercises` imports every lesson module,
so its ``EXERCISES`` holds them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Exercise:
    """One checked exercise.

    Attributes:
        key: ``"NN.K"``, lesson ``NN``, exercise ``K``.
        question: the text the notebook prints.
        check: the checker: prints a verdict (a hint on a wrong answer) and returns True when right.
        solution: builds the worked solution; called only by :func:`show_solution`.
        transfer: True when the exercise uses shapes or numbers the lesson did not demonstrate.
    """

    key: str
    question: str
    check: Callable[..., bool]
    solution: Callable[[], str]
    transfer: bool = False

    @property
    def lesson(self) -> str:
        """The lesson number, ``"04"`` for ``"04.2"``."""
        return self.key.split(".")[0]


#: Every registered exercise, by key, in the order the lessons registered them.
EXERCISES: dict[str, Exercise] = {}


def register(
    key: str, question: str, check: Callable[..., bool], solution: Callable[[], str], *, transfer: bool = False
) -> Exercise:
    """Add an exercise under ``key`` (``"NN.K"``); a key may be registered once."""
    lesson, _, number = key.partition(".")
    if not (len(lesson) == 2 and lesson.isdigit() and number.isdigit()):
        raise ValueError(f"exercise key {key!r} should read 'NN.K', e.g. '04.2'")
    if key in EXERCISES:
        raise ValueError(f"exercise {key} is registered twice")
    exercise = Exercise(key, question, check, solution, transfer)
    EXERCISES[key] = exercise
    return exercise


def get_exercise(key: str) -> Exercise:
    """The exercise registered under ``key``; a KeyError that lists the keys when there is none."""
    try:
        return EXERCISES[key]
    except KeyError:
        raise KeyError(f"no exercise {key!r}; the exercises are {', '.join(EXERCISES)}") from None


def lesson_exercises(lesson: str) -> list[Exercise]:
    """The exercises of lesson ``lesson`` (``"04"``), in order."""
    return [exercise for exercise in EXERCISES.values() if exercise.lesson == lesson]


#: Every registered questionnaire, by lesson (``"01"``): ``(question, answer)`` pairs in order.
QUESTIONNAIRES: dict[str, tuple[tuple[str, str], ...]] = {}


def register_questionnaire(lesson: str, items: tuple[tuple[str, str], ...]) -> None:
    """Add lesson ``lesson``'s questionnaire: ``(question, answer)`` pairs, 5 to 10 of them."""
    if not (len(lesson) == 2 and lesson.isdigit()):
        raise ValueError(f"questionnaire lesson {lesson!r} should read 'NN', e.g. '04'")
    if lesson in QUESTIONNAIRES:
        raise ValueError(f"the questionnaire of lesson {lesson} is registered twice")
    if not 5 <= len(items) <= 10:
        raise ValueError(f"a questionnaire has 5 to 10 questions; lesson {lesson}'s has {len(items)}")
    QUESTIONNAIRES[lesson] = tuple(items)


def print_questionnaire(lesson: str) -> None:
    """Print lesson ``lesson``'s questionnaire, numbered; ``show_solution("NN.Q")`` prints the answers."""
    if lesson not in QUESTIONNAIRES:
        raise KeyError(f"no questionnaire for lesson {lesson!r}; there are questionnaires for {', '.join(QUESTIONNAIRES)}")
    for number, (question, _) in enumerate(QUESTIONNAIRES[lesson], start=1):
        print(f"{number}. {question}")


def show_solution(key: str) -> None:
    """Print the worked solution of exercise ``key`` (``"04.2"``), or the answers of questionnaire ``"04.Q"``.

    Try the exercise, or answer the questions, first.
    """
    lesson, _, rest = key.partition(".")
    if rest == "Q" and lesson in QUESTIONNAIRES:
        print(f"Solution {key}: the answers to lesson {lesson}'s questionnaire")
        for number, (_, answer) in enumerate(QUESTIONNAIRES[lesson], start=1):
            print(f"{number}. {answer}")
        return
    exercise = get_exercise(key)
    print(f"Solution {key}: {exercise.solution()}")
