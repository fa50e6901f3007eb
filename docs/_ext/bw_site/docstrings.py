"""How autodoc reads this package's docstrings: code blocks, attribute comments, dataclass signatures."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from sphinx.application import Sphinx

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

    if not signature or "<factory>" not in signature or not dataclasses.is_dataclass(obj):
        return None
    for field in dataclasses.fields(obj):
        factory = field.default_factory
        if factory is not dataclasses.MISSING:
            label = getattr(factory, "__qualname__", None) or "..."
            signature = re.sub(rf"(\b{re.escape(field.name)}\b:[^=]*?=\s*)<factory>",
                               rf"\g<1>field(default_factory={label})", signature, count=1)
    return signature, return_annotation
