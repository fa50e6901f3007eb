"""The API reference: one page per module of ``bceweights``, the table of public names, and the links to them.

* ``write_module_pages``: ``docs/api/generated/<module>.rst`` for every module (autodoc), with its
  submodules listed under it. autosummary's recursive mode is not used: it takes the module
  ``bceweights.explain`` for the function ``bw.explain`` that shadows it on the package.
  The exercise checkers are left out: their docstrings state the accepted answers.
* ``bw-public-api``: an autosummary table of ``bceweights.__all__`` (generated, so a new name appears
  by itself), each with its one-line summary.
* ``on_missing_reference``: ``bceweights.NAME`` (or a bare re-exported name) resolves to where the
  object is documented, e.g. ``bceweights.loss.bce_with_logits``.
* ``link_public_names``: inline code ``bw.NAME`` in a lesson links to NAME's entry.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import types
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment
from sphinx.ext.autosummary import Autosummary

API_PAGES_DIR = "api/generated"  # under the Sphinx source folder (docs/)


def hidden_module(name: str) -> bool:
    """Modules the site leaves out: ``__main__``, and the exercise checkers (their docstrings state the answers)."""
    last = name.rsplit(".", 1)[-1]
    return last == "__main__" or (".exercises." in name and re.fullmatch(r"lesson\d\d", last) is not None)


def package_modules(package: str) -> dict[str, list[str]]:
    """Every module of ``package`` (recursively) -> its direct submodules, hidden modules left out."""
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
    """The first paragraph of a module's docstring, on one line."""
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


#: A documented constant whose value is longer than this is shown without its value (a registry of every
#: exercise, a table's rows): the docstring says what it holds, and a screenful of repr says nothing more.
MAX_VALUE_CHARS = 120


def trim_long_values(doctree: nodes.document) -> None:
    """Drop the ``= value`` of a documented module constant or attribute whose value is too long to read."""
    for signature in doctree.findall(addnodes.desc_signature):
        for annotation in list(signature.findall(addnodes.desc_annotation)):
            is_value = any(
                isinstance(child, addnodes.desc_sig_punctuation) and child.astext() == "=" for child in annotation.children
            )
            if is_value and len(annotation.astext()) > MAX_VALUE_CHARS:
                annotation.parent.remove(annotation)

