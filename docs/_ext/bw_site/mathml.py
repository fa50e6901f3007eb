"""Math as MathML, written at build time (latex2mathml): browsers draw it without MathJax, so nothing is fetched.

Registered as the HTML math renderer ``mathml`` (``html_math_renderer = "mathml"`` in conf.py).
"""

from __future__ import annotations

import re
from typing import Any

from docutils import nodes

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
