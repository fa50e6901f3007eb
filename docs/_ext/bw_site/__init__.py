"""The Sphinx extension of the bceweights website (``make site``): each part in its own module.

* :mod:`bw_site.lessons`: ``notebooks/NN_*.ipynb`` mirrored into ``docs/lessons/`` with their stored
  outputs, widget views dropped and a "live in JupyterLab" line under each explorer snapshot;
* :mod:`bw_site.questions`: the landing page's questions table, linked to the lesson sections;
* :mod:`bw_site.api`: one page per module, the table of public names, the links to them (from
  ``bceweights.NAME`` and from ``bw.NAME`` in the lessons);
* :mod:`bw_site.docstrings`: how autodoc reads the package's docstrings;
* :mod:`bw_site.mathml`: LaTeX to MathML at build time (no MathJax);
* :mod:`bw_site.linkcheck`: every local link of the built pages, and nothing loaded from the network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging

from bw_site import api, docstrings, linkcheck, lessons, mathml, questions

logger = logging.getLogger(__name__)


def on_config_inited(app: Sphinx, config: Any) -> None:
    srcdir = Path(app.srcdir)
    notebooks_dir = srcdir.parent / "notebooks"
    if not lessons.mirror_lessons(notebooks_dir, srcdir / lessons.LESSONS_DIR):
        logger.warning(f"bw_site: no lesson notebooks {notebooks_dir / lessons.LESSON_GLOB}")
    api.write_module_pages(srcdir / api.API_PAGES_DIR)


def on_doctree_read(app: Sphinx, doctree: nodes.document) -> None:
    api.trim_long_values(doctree)
    if app.env.docname.startswith(f"{lessons.LESSONS_DIR}/"):
        questions.record_question_sections(app.env, doctree)
        api.link_public_names(doctree)


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("config-inited", on_config_inited)
    app.connect("doctree-read", on_doctree_read)
    app.connect("env-purge-doc", questions.on_env_purge_doc)
    app.connect("env-merge-info", questions.on_env_merge_info)
    app.add_node(questions.bw_question_link)
    app.add_role("bw-question", questions.QuestionLinkRole())
    app.add_directive("bw-questions", questions.QuestionsTable)
    app.add_post_transform(questions.ResolveQuestionLinks)

    app.add_directive("bw-public-api", api.PublicAutosummary)
    app.connect("missing-reference", api.on_missing_reference)

    app.connect("autodoc-process-signature", docstrings.on_process_signature)
    app.connect("autodoc-process-docstring", docstrings.on_process_docstring, priority=50)  # before napoleon (500)
    app.connect("autodoc-process-docstring", docstrings.keep_sentence_docstring, priority=100)
    app.connect("autodoc-process-docstring", docstrings.restore_sentence_docstring, priority=900)

    app.add_html_math_renderer("mathml", (mathml.visit_math_mathml, None), (mathml.visit_displaymath_mathml, None))
    app.connect("build-finished", linkcheck.on_build_finished)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True, "env_version": 2}
