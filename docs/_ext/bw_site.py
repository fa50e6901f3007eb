"""The Sphinx glue of the bceweights website (``make site``): lessons, questions table, API names, math, link check.

What it does, each part hooked to one Sphinx event:

* **Lessons** (``config-inited``): every ``notebooks/NN_*.ipynb`` is mirrored into ``docs/lessons/``
  (git-ignored), with its stored outputs as they are, except the ipywidgets parts: a widget's
  view is dropped (an explorer keeps its stored PNG snapshot, a progress bar its text) and a one-line
  note saying that the explorer is live in JupyterLab follows each explorer snapshot. Without widget
  state, myst-nb loads no ipywidgets JavaScript from a CDN. The lessons are not executed.
* **Questions table** (directive ``bw-questions``): the README's table of questions Q1–Q24, each lesson
  link pointing to the section of the lesson page whose heading names the question (found in the
  built doctree, so a renamed lesson or section keeps working); a question no section names links to
  the lesson's page.
* **Public names** (directive ``bw-public-api``): an autosummary table of every name in
  ``bceweights.__all__``, with its one-line summary; ``bceweights.NAME`` references resolve to where
  the object is documented (``bceweights.loss.bce_with_logits``).
* **Lesson to API links**: inline code ``bw.NAME`` (or ``bw.NAME(...)``) in a lesson links to the API entry.
* **Math** (``html_math_renderer = "mathml"``): LaTeX becomes MathML at build time (latex2mathml);
  browsers draw it without MathJax, so nothing is fetched.
* **Link check** (``build-finished``): every ``href``/``src`` of the built HTML that points inside the site
  names a file that exists (and an ``id`` that exists, for ``#fragment`` links to a page), and no page loads
  a script, style sheet or image from the network. Each problem is a Sphinx warning, so ``-W`` fails the build.
"""

from __future__ import annotations

import html
import json
import re
import types
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.ext.autosummary import Autosummary
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging
from sphinx.util.docutils import SphinxRole

logger = logging.getLogger(__name__)

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
LESSON_GLOB = "[0-9][0-9]*.ipynb"
LESSONS_DIR = "lessons"  # under the Sphinx source folder (docs/)


# --- lessons -------------------------------------------------------------------------------------


def live_note(explorer: str, notebook_name: str) -> str:
    """The one line under an explorer's stored snapshot (Markdown)."""
    return (
        f"*Snapshot of `{explorer}`: its sliders are live in JupyterLab only; run `make lab` and open "
        f"`notebooks/{notebook_name}` to move them.*"
    )


def site_notebook(notebook: dict, notebook_name: str) -> dict:
    """``notebook`` (nbformat JSON) as the website shows it: no ipywidgets, a note under each explorer snapshot."""
    notebook = json.loads(json.dumps(notebook))  # a deep copy
    notebook.get("metadata", {}).pop("widgets", None)
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        outputs = []
        for output in cell.get("outputs", []):
            outputs.append(output)
            data = output.get("data", {})
            if WIDGET_VIEW not in data:
                continue
            del data[WIDGET_VIEW]
            if "image/png" in data:
                text = "".join(data.get("text/plain", "")) or "the explorer"
                explorer = re.match(r"\w+", text).group(0) if re.match(r"\w+", text) else "the explorer"
                outputs.append({
                    "output_type": "display_data",
                    "metadata": {},
                    "data": {"text/markdown": live_note(explorer, notebook_name)},
                })
        cell["outputs"] = outputs
    return notebook


def mirror_lessons(notebooks_dir: Path, target_dir: Path) -> list[Path]:
    """Write ``site_notebook`` of each ``notebooks_dir/NN_*.ipynb`` into ``target_dir``; remove stale copies.

    A copy is rewritten only when its content changes, so Sphinx rebuilds only the lessons that changed.
    """
    target_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sorted(notebooks_dir.glob(LESSON_GLOB)):
        notebook = json.loads(source.read_text(encoding="utf-8"))
        text = json.dumps(site_notebook(notebook, source.name), indent=1, ensure_ascii=False) + "\n"
        target = target_dir / source.name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
        written.append(target)
    for stale in set(target_dir.glob("*.ipynb")) - set(written):
        stale.unlink()
    return written


def on_config_inited(app: Sphinx, config: Any) -> None:
    notebooks_dir = Path(app.srcdir).parent / "notebooks"
    lessons = mirror_lessons(notebooks_dir, Path(app.srcdir) / LESSONS_DIR)
    if not lessons:
        logger.warning(f"bw_site: no lesson notebooks {notebooks_dir / LESSON_GLOB}")
    write_module_pages(Path(app.srcdir) / API_PAGES_DIR)


# --- questions table -----------------------------------------------------------------------------

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


def on_doctree_read(app: Sphinx, doctree: nodes.document) -> None:
    env = app.env
    if env.docname.startswith(f"{LESSONS_DIR}/"):
        if not hasattr(env, "bw_question_sections"):
            env.bw_question_sections = {}
        env.bw_question_sections[env.docname] = question_sections(doctree)
        link_public_names(doctree)


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


# --- module pages --------------------------------------------------------------------------------

API_PAGES_DIR = "api/generated"  # under the Sphinx source folder (docs/)


def hidden_module(name: str) -> bool:
    """Modules the site leaves out: ``__main__``, and the exercise checkers (their docstrings state the answers)."""
    last = name.rsplit(".", 1)[-1]
    return last == "__main__" or (".exercises." in name and re.fullmatch(r"lesson\d\d", last) is not None)


def package_modules(package: str) -> dict[str, list[str]]:
    """Every module of ``package`` (recursively) -> its direct submodules, hidden modules left out."""
    import importlib
    import pkgutil

    tree: dict[str, list[str]] = {}

    def visit(name: str) -> None:
        module = importlib.import_module(name)
        children = []
        if hasattr(module, "__path__"):
            for info in pkgutil.iter_modules(module.__path__, prefix=f"{name}."):
                if not hidden_module(info.name):
                    children.append(info.name)
        tree[name] = children
        for child in children:
            visit(child)

    visit(package)
    return tree


def first_line(module_name: str) -> str:
    import importlib
    import inspect

    doc = inspect.getdoc(importlib.import_module(module_name)) or ""
    return doc.strip().split("\n\n", 1)[0].replace("\n", " ")


def module_page(name: str, children: list[str]) -> str:
    """The reStructuredText of one module's page: its docstring and members (autodoc), then its submodules."""
    lines = [name, "=" * len(name), "", f".. automodule:: {name}", ""]
    if children:
        lines += [".. rubric:: Modules", ""]
        for child in children:  # each summary line is read in its own module, as its references are written
            lines += [f".. currentmodule:: {child}", "", f"* :mod:`{child}`: {first_line(child)}", ""]
        lines += [f".. currentmodule:: {name}", "", ".. toctree::", "   :hidden:", ""]
        lines += [f"   {child}" for child in children]
        lines.append("")
    return "\n".join(lines)


def write_module_pages(target_dir: Path, package: str = "bceweights") -> list[Path]:
    """One page per module under ``target_dir``, written when changed; stale pages removed."""
    target_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, children in package_modules(package).items():
        target = target_dir / f"{name}.rst"
        text = module_page(name, children)
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
        written.append(target)
    for stale in set(target_dir.glob("*.rst")) - set(written):
        stale.unlink()
    return written


# --- public names --------------------------------------------------------------------------------


def canonical_name(dotted: str) -> str | None:
    """``bceweights.bce_with_logits`` -> ``bceweights.loss.bce_with_logits`` (where autodoc documents it)."""
    import importlib

    parts = dotted.split(".")
    if parts[0] != "bceweights" or len(parts) < 2:
        return None
    try:
        obj: Any = importlib.import_module(parts[0])
        for part in parts[1:]:
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        return None
    if isinstance(obj, types.ModuleType):
        return obj.__name__ if obj.__name__ != dotted else None
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if not module or not qualname:
        return None
    name = f"{module}.{qualname}"
    return name if name != dotted else None


def public_names() -> list[str]:
    import bceweights

    return list(bceweights.__all__)


class PublicAutosummary(Autosummary):
    """An autosummary table of ``bceweights.__all__`` (its content is generated, not written)."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        self.content = StringList([f"~bceweights.{name}" for name in public_names()], source="bceweights.__all__")
        return super().run()


def on_missing_reference(app: Sphinx, env: BuildEnvironment, node: addnodes.pending_xref,
                         contnode: nodes.Element) -> nodes.Element | None:
    """Resolve a name that is re-exported (``bceweights.bce_with_logits``, or ``unet_weight_map`` in the
    docstring of :mod:`bceweights.weights`) to the object's documented location."""
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "").lstrip("~.")
    module, klass = node.get("py:module"), node.get("py:class")
    candidates = [target]
    if module:
        candidates += [f"{module}.{klass}.{target}"] if klass else []
        candidates.append(f"{module}.{target}")
    candidates.append(f"bceweights.{target}")  # a public name written bare, e.g. in bceweights.eager
    domain = env.get_domain("py")
    for candidate in candidates:
        canonical = canonical_name(candidate)
        if canonical is None:
            continue
        found = domain.resolve_any_xref(env, node["refdoc"], app.builder, canonical, node, contnode)
        if found:
            return found[0][1]
    return None


# Napoleon reads an attribute's docstring "text: more text" as "type: description" (Google style for
# attributes); this package's ``#:`` comments are sentences, so they are kept as written.
_PLAIN_DOCSTRINGS: dict[str, list[str]] = {}
SENTENCE_DOCSTRINGS = ("attribute", "data", "property")


def keep_sentence_docstring(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    if what in SENTENCE_DOCSTRINGS:
        _PLAIN_DOCSTRINGS[name] = list(lines)


def restore_sentence_docstring(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    if what in SENTENCE_DOCSTRINGS and name in _PLAIN_DOCSTRINGS:
        lines[:] = _PLAIN_DOCSTRINGS.pop(name)


BW_LITERAL = re.compile(r"^bw\.(\w+)(\(.*\))?$")


def link_public_names(doctree: nodes.document) -> None:
    """Inline code ``bw.NAME`` / ``bw.NAME(...)`` in a lesson becomes a link to NAME's API entry."""
    names = set(public_names())
    for literal in list(doctree.findall(nodes.literal)):
        if isinstance(literal.parent, (addnodes.pending_xref, nodes.reference)):
            continue
        match = BW_LITERAL.match(literal.astext())
        if not match or match.group(1) not in names:
            continue
        xref = addnodes.pending_xref(
            "", refdomain="py", reftype="obj", reftarget=f"bceweights.{match.group(1)}", refexplicit=True,
            refwarn=True, refdoc=doctree.settings.env.docname,
        )
        literal.replace_self(xref)
        xref += literal


# --- docstring examples --------------------------------------------------------------------------

# The package's docstrings show code as an indented block after a paragraph, the plain-text convention
# (``help()`` prints it as written). In reStructuredText that block is a block quote: its lines would flow
# into one paragraph. Such a block becomes a literal block (``::``) before napoleon reads the docstring.
NAPOLEON_SECTION = re.compile(
    r"^\s*(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Other Parameters|Returns?|Yields?|"
    r"Raises|Warns|Examples?|Notes?|Attributes|Methods|See Also|References|Todo|Warnings?|Warning|Caution|"
    r"Danger|Error|Hint|Important|Tip|Admonition):\s*$"
)
OPENS_A_BLOCK = re.compile(r"^\s*([-*+•]\s|\d+[.)]\s|#\.\s|\.\.\s|:[^:\s][^:]*:(\s|$)|>>>)")
TABLE_BORDER = re.compile(r"^\s*(=+(\s+=+)+\s*$|\+[-=+]+\+\s*$)")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def literal_examples(lines: list[str]) -> list[str]:
    """``lines`` with each indented block that follows a plain paragraph turned into a literal block."""
    out: list[str] = []
    paragraph_start: str | None = None  # first line of the paragraph just read
    section_indent: int | None = None   # inside a napoleon section (Args:, Returns: ...) at this indent
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            out.append(line)
            nxt = next((j for j in range(i + 1, len(lines)) if lines[j].strip()), None)
            if nxt is not None and paragraph_start is not None and out[-2:-1] and out[-2].strip():
                base = _indent(paragraph_start)
                block = lines[nxt]
                if (
                    _indent(block) > base
                    and section_indent is None
                    and not NAPOLEON_SECTION.match(paragraph_start)
                    and not OPENS_A_BLOCK.match(paragraph_start)
                    and not out[-2].rstrip().endswith("::")
                    and not TABLE_BORDER.match(block)
                    and not block.lstrip().startswith(">>>")
                ):
                    if out[-2].rstrip().endswith(":"):
                        out[-2] = out[-2].rstrip() + ":"
                    else:
                        out[-1:] = ["", " " * base + "::", ""]
                    # copy the block as it is, up to the first line back at the paragraph's indent
                    j = nxt
                    while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > base):
                        j += 1
                    while j > nxt and not lines[j - 1].strip():
                        j -= 1
                    out.extend(lines[i + 1:j])
                    i = j
                    paragraph_start = None
                    continue
            paragraph_start = None
            i += 1
            continue
        if section_indent is not None and _indent(line) <= section_indent:
            section_indent = None
        if NAPOLEON_SECTION.match(line):
            section_indent = _indent(line)
        if paragraph_start is None:
            paragraph_start = line
        out.append(line)
        i += 1
    return out


def on_process_docstring(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    lines[:] = literal_examples(lines)


def on_process_signature(app: Sphinx, what: str, name: str, obj: Any, options: Any, signature: str | None,
                         return_annotation: str | None) -> tuple[str | None, str | None] | None:
    """A dataclass field's ``<factory>`` default becomes ``field(default_factory=list)``: valid Python, so
    Sphinx parses the signature (and its annotations) instead of splitting it at every comma."""
    import dataclasses

    if not signature or "<factory>" not in signature or not dataclasses.is_dataclass(obj):
        return None
    for field in dataclasses.fields(obj):
        factory = field.default_factory
        if factory is not dataclasses.MISSING:
            label = getattr(factory, "__qualname__", None) or "..."
            signature = re.sub(rf"(\b{re.escape(field.name)}\b:[^=]*?=\s*)<factory>",
                               rf"\g<1>field(default_factory={label})", signature, count=1)
    return signature, return_annotation


# --- math ----------------------------------------------------------------------------------------


def _mathml_inner(latex: str) -> str:
    from latex2mathml.converter import convert

    if not latex.strip():
        return ""
    return re.sub(r"^<math[^>]*>|</math>$", "", convert(latex.strip()))


def mathml(latex: str, display: bool) -> str:
    """LaTeX -> MathML; ``\\begin{aligned}`` rows become an ``mtable`` aligned at ``&``."""
    latex = latex.strip()
    aligned = re.fullmatch(r"\\begin\{aligned\}(.*)\\end\{aligned\}", latex, flags=re.S)
    if aligned:
        rows = [row for row in re.split(r"\\\\", aligned.group(1)) if row.strip()]
        body = "".join(
            "<mtr>" + "".join(
                f'<mtd style="text-align: {"right" if i % 2 == 0 else "left"}">{_mathml_inner(cell)}</mtd>'
                for i, cell in enumerate(row.split("&"))
            ) + "</mtr>"
            for row in rows
        )
        inner = f'<mtable displaystyle="true" columnalign="right left">{body}</mtable>'
    else:
        inner = _mathml_inner(latex)
    mode = "block" if display else "inline"
    return f'<math xmlns="http://www.w3.org/1998/Math/MathML" display="{mode}">{inner}</math>'


def visit_math_mathml(self: Any, node: nodes.math) -> None:
    self.body.append(f'<span class="math notranslate">{mathml(node.astext(), display=False)}</span>')
    raise nodes.SkipNode


def visit_displaymath_mathml(self: Any, node: nodes.math_block) -> None:
    if node.get("number"):
        self.body.append(f'<span class="eqno">({node["number"]})</span>')
    self.body.append(f'<div class="math notranslate">{mathml(node.astext(), display=True)}</div>')
    raise nodes.SkipNode


# --- link check ----------------------------------------------------------------------------------


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in ("id", "name") and (name == "id" or tag == "a"):
                self.ids.add(value)
            if name in ("href", "src") or (name == "data" and tag == "object"):
                self.links.append((tag, name, value))


def check_site_links(outdir: Path) -> list[str]:
    """Problems in the built site: local links to missing files or ids, resources loaded from the network."""
    pages: dict[Path, _Links] = {}
    for page in sorted(outdir.rglob("*.html")):
        if page.relative_to(outdir).parts[0] in ("_static", "_sources", "_images"):
            continue  # the theme's templates and copied files, not pages
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8"))
        pages[page.resolve()] = parser
    problems = []
    for page, parser in pages.items():
        where = page.relative_to(outdir.resolve())
        for tag, attribute, value in parser.links:
            parts = urlsplit(html.unescape(value))
            if parts.scheme in ("http", "https") or value.startswith("//"):
                if tag in ("script", "img", "iframe") or (tag == "link" and attribute == "href" and tag != "a"):
                    problems.append(f"{where}: <{tag} {attribute}={value!r}> loads from the network")
                continue
            if parts.scheme or parts.netloc:  # mailto:, data:, javascript: ...
                continue
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if not target.exists():
                problems.append(f"{where}: <{tag} {attribute}={value!r}> points to a missing file")
                continue
            if parts.fragment and target.suffix == ".html" and target in pages:
                if unquote(parts.fragment) not in pages[target].ids:
                    problems.append(f"{where}: <{tag} {attribute}={value!r}>: no id {parts.fragment!r} in that page")
    return problems


def on_build_finished(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    for problem in check_site_links(Path(app.outdir)):
        logger.warning(f"bw_site link check: {problem}")


# --- setup ---------------------------------------------------------------------------------------


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("config-inited", on_config_inited)
    app.connect("doctree-read", on_doctree_read)
    app.connect("env-purge-doc", on_env_purge_doc)
    app.connect("env-merge-info", on_env_merge_info)
    app.connect("missing-reference", on_missing_reference)
    app.connect("autodoc-process-signature", on_process_signature)
    app.connect("autodoc-process-docstring", on_process_docstring, priority=50)  # before napoleon (500)
    app.connect("autodoc-process-docstring", keep_sentence_docstring, priority=100)
    app.connect("autodoc-process-docstring", restore_sentence_docstring, priority=900)
    app.connect("build-finished", on_build_finished)
    app.add_node(bw_question_link)
    app.add_role("bw-question", QuestionLinkRole())
    app.add_directive("bw-questions", QuestionsTable)
    app.add_directive("bw-public-api", PublicAutosummary)
    app.add_post_transform(ResolveQuestionLinks)
    app.add_html_math_renderer("mathml", (visit_math_mathml, None), (visit_displaymath_mathml, None))
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True, "env_version": 1}
