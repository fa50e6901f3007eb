"""The offline link check of the built site, run when the build finishes.

Every ``href``/``src`` of a built page that points inside the site must name a file that exists, and for
a ``#fragment`` link to a page, an ``id`` of that page; no page may load a script, style sheet, frame or
image from the network. Each problem is a Sphinx warning, so ``-W`` fails the build. External links
are not fetched.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

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
