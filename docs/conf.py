"""Sphinx configuration of the bceweights website: ``make site`` writes it to ``build/site/`` (open ``index.html``).

The lessons are rendered from their stored outputs (``nb_execution_mode = "off"``): what nbval checks is what
the site shows. Nothing is fetched at build time or when a page is read: the theme's assets are in the
wheel, math is MathML (``bw_site``), there is no intersphinx and no ipywidgets JavaScript.
"""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO_ROOT = DOCS.parent
# This checkout's bceweights, whatever is installed; and the site's own extension.
sys.path[:0] = [str(REPO_ROOT), str(DOCS / "_ext")]

import bceweights  # noqa: E402

project = "bceweights"
author = "the bceweights authors"
copyright = "the bceweights authors"
release = version = bceweights.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "bw_site",
]

root_doc = "index"
exclude_patterns = ["_build", "screenshots/MANIFEST.txt", "**/.ipynb_checkpoints"]
# .rst first: autosummary writes its generated pages with the first suffix, and writes them in reStructuredText.
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}

# --- lessons: stored outputs, never executed -------------------------------------------------------
nb_execution_mode = "off"
# The explorers' widget views are removed by bw_site; no widget JavaScript from a CDN either way.
nb_ipywidgets_js: dict = {}
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
# Links to files outside the site (e.g. ../README.md) are errors, not silent dead links.
myst_all_links_external = False

# --- API reference ---------------------------------------------------------------------------------
# One page per module is written by bw_site (autosummary would take the module bceweights.explain for
# the function bw.explain that shadows it); autosummary only draws the table of public names.
autosummary_generate = False
autosummary_ignore_module_all = True
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
    # A package's __all__ re-exports objects documented in their own module; document each object once.
    "ignore-module-all": True,
}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
# A method without its own docstring (e.g. torch.autograd.Function.forward) is not documented with torch's.
autodoc_inherit_docstrings = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

# Every reference inside bceweights must resolve. Objects of other libraries have no pages here (no
# intersphinx: nothing is downloaded), so references to them are left as plain text.
nitpicky = True
nitpick_ignore_regex = [
    # autograd's ctx, dunder methods and torch's __torch_function__: PyTorch's and Python's, not ours
    (r"py:.*", r"(ctx(\..*)?|(.*\.)?__\w+__)"),
    # the exercise checkers and their questions: their pages are left out (they state the answers)
    (r"py:.*", r"(bceweights\.lessons\.exercises\.)?(lesson\d\d\.)?(check_lesson\w+|LESSON\w+)"),
    (r"py:.*", r"(torch|numpy|np|scipy|sklearn|matplotlib|ipywidgets|IPython|tqdm|triton|PIL)(\..*)?"),
    (r"py:.*", r"(collections|typing|typing_extensions|contextvars|contextlib|dataclasses|types|pathlib|enum|"
               r"numbers|abc|argparse|io|os|threading|asyncio|functools|weakref)(\..*)?"),
    (r"py:.*", r"(Tensor|Module|Generator|Figure|Axes|Callable|Iterable|Iterator|Sequence|Mapping|"
               r"ProcessGroup|Path|ndarray|DType|dtype|device|Number|TracebackType|ContextVar|Self|"
               r"ModuleType|NDArray|ArrayLike|Widget|Output|Generic|Enum|ContextManager)"),
]

# --- HTML ------------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = "bceweights"
html_math_renderer = "mathml"
html_static_path = ["_static"]
html_css_files = ["bw_site.css"]
html_js_files = ["bw_search.js"]
html_show_sourcelink = False
html_copy_source = False
html_last_updated_fmt = None
# The theme reads this when the reader has not chosen a mode (without it, a console error on every page).
html_context = {"default_mode": "light"}
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "navbar_align": "left",
    "footer_start": ["copyright"],
    "footer_end": [],
    "secondary_sidebar_items": ["page-toc"],
    "show_version_warning_banner": False,
}
html_sidebars = {"index": [], "search": []}
