"""The landing page's questions table: the README's Q1–Q24, each linked to the lesson section that answers it.

The directive ``bw-questions`` reads the README's table; each lesson link becomes a placeholder, resolved
once every lesson has been read: to the first section of the lesson whose heading names the question,
else the first section whose own text names it, else the lesson's page. So a renamed lesson or section,
or regenerated outputs, keep the links right; a lesson number with no page is a build warning.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging
from sphinx.util.docutils import SphinxRole

from bw_site.lessons import LESSONS_DIR

logger = logging.getLogger(__name__)

QUESTION_ROW = re.compile(r"^\|\s*(Q\d+)\s*\|(.+)\|([^|]+)\|\s*$")
LESSON_LINK = re.compile(r"\[(\d\d)\]\(notebooks/")
SECTION_NUMBER = re.compile(r"^(\d+)\s*·")


class bw_question_link(nodes.Inline, nodes.Element):
    """Placeholder for a link from question ``q`` to lesson ``lesson``, resolved after every lesson is read."""


def readme_questions(readme: Path) -> list[tuple[str, str, list[str]]]:
    """The README's questions table: (``"Q1"``, question in Markdown, lesson numbers ``["02"]``) per row."""
    rows = []
    for line in readme.read_text(encoding="utf-8").splitlines():
        match = QUESTION_ROW.match(line)
        if match:
            rows.append((match.group(1), match.group(2).strip(), LESSON_LINK.findall(match.group(3))))
    return rows


class QuestionLinkRole(SphinxRole):
    """``{bw-question}`02 Q1``` -> a link to the section of lesson 02 that answers Q1."""

    def run(self) -> tuple[list[nodes.Node], list[nodes.system_message]]:
        lesson, question = self.text.split()
        return [bw_question_link(lesson=lesson, question=question)], []


class QuestionsTable(Directive):
    """The README's questions table, with links into the lesson pages. Argument: the README's path."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        env = self.state.document.settings.env
        readme = (Path(env.srcdir) / self.arguments[0]).resolve()
        env.note_dependency(str(readme))
        rows = readme_questions(readme)
        if not rows:
            raise self.error(f"bw-questions: no '| Q1 | question | [NN](notebooks/...) |' rows in {readme}")
        lines = ["| # | question | answered in |", "|---|---|---|"]
        for question, text, lessons in rows:
            if not lessons:
                raise self.error(f"bw-questions: {question} in {readme} links to no notebooks/NN_*.ipynb")
            links = ", ".join(f"{{bw-question}}`{lesson} {question}`" for lesson in lessons)
            lines.append(f"| {question} | {text} | {links} |")
        container = nodes.container(classes=["bw-questions"])
        self.state.nested_parse(StringList(lines, source=str(readme)), self.content_offset, container)
        return [container]


def section_title(section: nodes.section) -> str:
    return section[0].astext() if section.children and isinstance(section[0], nodes.title) else ""


def question_sections(doctree: nodes.document) -> dict[str, tuple[str, str, int]]:
    """Q id -> (section id, section title, depth) of the section that answers it, for one lesson.

    A section whose heading names the question wins (the first one); otherwise the first section below
    the page title whose own paragraphs name it; otherwise the page itself (depth 1).
    """
    by_heading: dict[str, tuple[str, str, int]] = {}
    by_text: dict[str, tuple[str, str, int]] = {}
    for section in doctree.findall(nodes.section):
        depth = 1 + sum(1 for _ in _ancestors(section, nodes.section))
        title = section_title(section)
        ident = section["ids"][0] if section["ids"] else ""
        for question in re.findall(r"\bQ\d+\b", title):
            by_heading.setdefault(question, (ident, title, depth))
        own_text = " ".join(
            child.astext() for child in section.children if not isinstance(child, (nodes.section, nodes.title))
        )
        for question in re.findall(r"\bQ\d+\b", own_text):
            by_text.setdefault(question, (ident, title, depth))
    found = dict(by_text)
    found.update(by_heading)
    return found


def _ancestors(node: nodes.Node, kind: type) -> list[nodes.Node]:
    found = []
    parent = node.parent
    while parent is not None:
        if isinstance(parent, kind):
            found.append(parent)
        parent = parent.parent
    return found


def record_question_sections(env: BuildEnvironment, doctree: nodes.document) -> None:
    """Remember, for a lesson page just read, which section answers each question it names."""
    if not hasattr(env, "bw_question_sections"):
        env.bw_question_sections = {}
    env.bw_question_sections[env.docname] = question_sections(doctree)


def on_env_purge_doc(app: Sphinx, env: BuildEnvironment, docname: str) -> None:
    getattr(env, "bw_question_sections", {}).pop(docname, None)


def on_env_merge_info(app: Sphinx, env: BuildEnvironment, docnames: list[str], other: BuildEnvironment) -> None:
    if not hasattr(env, "bw_question_sections"):
        env.bw_question_sections = {}
    env.bw_question_sections.update(getattr(other, "bw_question_sections", {}))


class ResolveQuestionLinks(SphinxPostTransform):
    """Turn each ``bw_question_link`` into a link to the lesson section (``02 § 2``)."""

    default_priority = 5

    def run(self, **kwargs: Any) -> None:
        sections = getattr(self.env, "bw_question_sections", {})
        for placeholder in list(self.document.findall(bw_question_link)):
            lesson, question = placeholder["lesson"], placeholder["question"]
            docnames = sorted(d for d in self.env.found_docs if d.startswith(f"{LESSONS_DIR}/{lesson}"))
            if not docnames:
                logger.warning(f"bw-questions: {question} names lesson {lesson}, but there is no {LESSONS_DIR}/{lesson}*.ipynb",
                               location=placeholder)
                placeholder.replace_self(nodes.Text(lesson))
                continue
            docname, (ident, title, depth) = next(
                ((d, sections[d][question]) for d in docnames if question in sections.get(d, {})),
                (docnames[0], ("", "", 1)),
            )
            uri = self.app.builder.get_relative_uri(self.env.docname, docname)
            if depth > 1 and ident:
                number = SECTION_NUMBER.match(title)
                label = f"{lesson} § {number.group(1)}" if number else f"{lesson} · {title}"
                uri = f"{uri}#{ident}"
            else:
                label = lesson
            reference = nodes.reference("", "", nodes.Text(label), internal=True, refuri=uri,
                                        reftitle=title or docname)
            placeholder.replace_self(reference)
