"""The website (``make site``), built from the committed sources and read in headless Chromium.

The module builds the site first, with the command ``make site`` runs (incremental: seconds when it is up
to date), so the pages checked are those of the files in this checkout. The pages are served from a
loopback server and every request to anywhere else is refused and reported: the site must work with the
network closed. On each page opened:

- no console error and no uncaught exception;
- every image has loaded (``naturalWidth > 0``);
- the landing page: the README's questions table, each question linked to the section of the lesson that
  answers it, and the two commands;
- every lesson page: one image per stored figure of its notebook, and under each explorer snapshot the
  line saying that the explorer is live in JupyterLab, with the command;
- the API reference: every name of ``bceweights.__all__`` with a one-line summary, and links that land on
  the documented object;
- the search page: searching ``pos_weight`` lists lesson pages and API pages, with the matching text; opened
  from the files (``file://``, no server), it lists them by title.

The first tests need no browser: the pieces of the site's extension (``docs/_ext/bw_site/``) that decide
what the site shows.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO_ROOT / "docs"), str(REPO_ROOT / "docs" / "_ext")]

import site_tools  # noqa: E402  (docs/ and docs/_ext are put on sys.path above)
from bw_site import linkcheck, mathml  # noqa: E402
from bw_site.docstrings import literal_examples  # noqa: E402
from bw_site.lessons import LESSON_GLOB, WIDGET_VIEW, live_note, site_notebook  # noqa: E402
from bw_site.questions import readme_questions  # noqa: E402

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob(LESSON_GLOB))
README = REPO_ROOT / "README.md"
PAGE_TIMEOUT_MS = 30_000

# JavaScript: make every image load now (none lazily), wait for each, then report the ones that failed.
WAIT_FOR_IMAGES = """
async () => {
  const images = [...document.images];
  images.forEach(image => { image.loading = 'eager'; });
  await Promise.all(images.map(image => image.complete ? null : new Promise(done => {
    image.addEventListener('load', done); image.addEventListener('error', done);
  })));
  return images.map(image => ({src: image.getAttribute('src'), width: image.naturalWidth}));
}
"""


# --- without a browser ---------------------------------------------------------------------------


def stored_outputs(notebook: Path) -> list[dict[str, Any]]:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return [output for cell in cells if cell["cell_type"] == "code" for output in cell.get("outputs", [])]


def test_lessons_are_found() -> None:
    assert len(NOTEBOOKS) >= 11, f"expected the lessons notebooks/NN_*.ipynb, found {NOTEBOOKS}"


def test_site_notebook_drops_widgets_and_notes_each_explorer() -> None:
    notebook = json.loads((REPO_ROOT / "notebooks" / "01_weight_vs_pos_weight.ipynb").read_text(encoding="utf-8"))
    shown = site_notebook(notebook, "01_weight_vs_pos_weight.ipynb")
    assert "widgets" not in shown["metadata"]
    outputs = [o for c in shown["cells"] if c["cell_type"] == "code" for o in c["outputs"]]
    assert not [o for o in outputs if WIDGET_VIEW in o.get("data", {})]
    notes = [o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    assert notes == [live_note("LossCurveExplorer", "01_weight_vs_pos_weight.ipynb")]
    assert "make lab" in notes[0]
    # the stored notebook itself is left as it was
    assert "widgets" in notebook["metadata"]


def test_code_after_a_paragraph_becomes_a_literal_block_and_napoleon_sections_stay() -> None:
    lines = [
        "Summary.",
        "",
        "    import bceweights as bw",
        "    bw.audit()",
        "",
        "The formula:",
        "",
        "    loss = w * x",
        "",
        "Args:",
        "    x: the logits.",
        "",
        "        More about x.",
        "",
        "1. an item",
        "",
        "   its continuation",
    ]
    assert literal_examples(lines) == [
        "Summary.", "", "::", "", "    import bceweights as bw", "    bw.audit()", "",
        "The formula::", "", "    loss = w * x", "",
        "Args:", "    x: the logits.", "", "        More about x.", "",
        "1. an item", "", "   its continuation",
    ]


def test_readme_questions_are_read_with_their_lessons() -> None:
    rows = readme_questions(README)
    assert [question for question, _, _ in rows] == [f"Q{k}" for k in range(1, len(rows) + 1)]
    assert len(rows) >= 24
    assert all(lessons for _, _, lessons in rows)
    assert dict((q, lessons) for q, _, lessons in rows)["Q8"] == ["02", "04", "05"]


def test_link_check_reports_missing_files_ids_and_network_loads(tmp_path: Path) -> None:
    (tmp_path / "a.html").write_text(
        '<p id="here"><a href="b.html#there">ok</a> <a href="b.html#nowhere">no id</a> <img src="gone.png">'
        '<script src="https://example.org/x.js"></script> <a href="https://example.org/">a link is fine</a>'
        '<a href="#here">self</a></p>',
        encoding="utf-8",
    )
    (tmp_path / "b.html").write_text('<h1 id="there">b</h1>', encoding="utf-8")
    problems = linkcheck.check_site_links(tmp_path)
    assert len(problems) == 3, problems
    assert any("'nowhere'" in p for p in problems)
    assert any("gone.png" in p and "missing file" in p for p in problems)
    assert any("loads from the network" in p for p in problems)


def test_mathml_aligned_rows_become_a_table() -> None:
    html = mathml.mathml(r"\begin{aligned} a &= b \\ &= c \end{aligned}", display=True)
    assert html.count("<mtr>") == 2 and html.count("<mtd") == 4 and 'display="block"' in html
    assert "<mi>&</mi>" not in html


# --- in the browser ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(chromium_ready: None) -> Path:
    """The site built from this checkout (``make site``'s command; incremental)."""
    run = subprocess.run(site_tools.sphinx_command(), cwd=REPO_ROOT, capture_output=True, text=True)
    if run.returncode != 0:
        pytest.fail(f"the site does not build (make site):\n{run.stdout[-4000:]}\n{run.stderr[-8000:]}")
    return site_tools.SITE_DIR


@pytest.fixture(scope="module")
def base_url(site: Path) -> Iterator[str]:
    with site_tools.serving(site) as url:
        yield url


@pytest.fixture(scope="module")
def offline(browser: Any, base_url: str) -> list[str]:
    """The browser context with every request outside the loopback server refused; the refused URLs."""
    refused: list[str] = []

    def route(request_route: Any) -> None:
        url = request_route.request.url
        if url.startswith((base_url, "file:", "data:", "blob:")):
            request_route.continue_()
        else:
            refused.append(url)
            request_route.abort()

    browser.route("**/*", route)
    return refused


class SitePage:
    """One page of the site in a fresh tab, with the console errors and failed requests it produced."""

    def __init__(self, browser: Any, base_url: str, path: str) -> None:
        self.page = browser.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda message: self.errors.append(message.text) if message.type == "error" else None)
        self.page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        self.page.on("requestfailed", lambda request: self.errors.append(f"request failed: {request.url}"))
        self.page.set_default_timeout(PAGE_TIMEOUT_MS)
        self.page.goto(path if "://" in path else base_url + path, wait_until="load")

    def images(self) -> list[dict[str, Any]]:
        return self.page.evaluate(WAIT_FOR_IMAGES)

    def check_clean(self, refused: list[str]) -> None:
        broken = [image["src"] for image in self.images() if not image["width"]]
        assert not broken, f"{self.page.url}: images that did not load: {broken}"
        assert not self.errors, f"{self.page.url}: console errors: {self.errors}"
        assert not refused, f"requests outside the site (the network must not be needed): {refused}"


@pytest.fixture
def open_page(browser: Any, base_url: str, offline: list[str]) -> Iterator[Any]:
    pages: list[SitePage] = []

    def opener(path: str) -> SitePage:
        pages.append(SitePage(browser, base_url, path))
        return pages[-1]

    yield opener
    for page in pages:
        page.page.close()


def test_landing_page_links_every_question_to_its_lesson_section(open_page: Any, offline: list[str]) -> None:
    landing = open_page("index.html")
    text = landing.page.locator("article").inner_text()
    assert "make lab" in text and "make test" in text
    rows = landing.page.locator(".bw-questions tbody tr")
    questions = readme_questions(README)
    assert rows.count() == len(questions)
    for index, (question, _, lessons) in enumerate(questions):
        row = rows.nth(index)
        assert row.locator("td").first.inner_text().strip() == question
        links = row.locator("td").nth(2).locator("a")
        assert links.count() == len(lessons), f"{question}: links {links.all_inner_texts()}, lessons {lessons}"
        for k, lesson in enumerate(lessons):
            href = links.nth(k).get_attribute("href")
            assert href.startswith(f"lessons/{lesson}"), f"{question}: {href} is not a page of lesson {lesson}"
    landing.check_clean(offline)

    # Q4's link lands on lesson 01's section about Q4
    landing.page.locator(".bw-questions tbody tr").nth(3).locator("td").nth(2).locator("a").first.click()
    landing.page.wait_for_load_state("load")
    fragment = landing.page.url.split("#", 1)[1]
    heading = landing.page.locator(f"section[id='{fragment}'] > h2, section[id='{fragment}'] > h3").first
    assert "Q4" in heading.inner_text()


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_lesson_page_shows_every_stored_figure(notebook: Path, open_page: Any, offline: list[str]) -> None:
    outputs = stored_outputs(notebook)
    figures = sum(1 for output in outputs if "image/png" in output.get("data", {}))
    explorers = [
        "".join(output["data"]["text/plain"]).split("(")[0]
        for output in outputs
        if WIDGET_VIEW in output.get("data", {}) and "image/png" in output.get("data", {})
    ]
    lesson = open_page(f"lessons/{notebook.stem}.html")
    shown = lesson.page.locator("article div.cell_output img")
    assert shown.count() == figures, f"{notebook.name} stores {figures} figures; the page shows {shown.count()}"
    notes = lesson.page.locator("article div.cell_output").filter(has_text="live in JupyterLab only")
    assert notes.count() == len(explorers)
    for k, explorer in enumerate(explorers):
        assert f"Snapshot of {explorer}" in notes.nth(k).inner_text()
        assert f"make lab and open notebooks/{notebook.name}" in notes.nth(k).inner_text()
    for math in lesson.page.locator("article math").all()[:20]:
        box = math.bounding_box()
        assert box is not None and box["width"] > 0, f"{notebook.name}: a formula is not drawn"
    lesson.check_clean(offline)


def test_api_reference_lists_every_public_name_with_a_summary(open_page: Any, offline: list[str]) -> None:
    import bceweights

    api = open_page("api/index.html")
    rows = api.page.locator("table.autosummary tr")
    listed = {}
    for k in range(rows.count()):
        cells = rows.nth(k).locator("td")
        name = cells.nth(0).locator("a").first.inner_text().strip()
        listed[name] = cells.nth(1).inner_text().strip()
    assert sorted(listed) == sorted(bceweights.__all__)
    assert not [name for name, summary in listed.items() if not summary], "public names without a summary"
    api.check_clean(offline)

    api.page.locator("table.autosummary a", has_text="bce_with_logits").first.click()
    api.page.wait_for_load_state("load")
    assert api.page.url.endswith("#bceweights.loss.bce_with_logits")
    entry = api.page.locator("dl.py.function:has(> dt[id='bceweights.loss.bce_with_logits'])")
    assert "pos_weight" in entry.locator("dd").first.inner_text()
    assert entry.locator("dd dl.field-list").count() >= 1, "napoleon's Args: should render as a field list"

    rules = open_page("api/generated/bceweights.audit.rules.html")
    rule_table = rules.page.locator("article table").first.inner_text()
    for rule in ("misaligned-operand", "per-sample-pos-weight", "double-sigmoid", "diluted-mean"):
        assert rule in rule_table
    rules.check_clean(offline)


def search_results(search: SitePage) -> list[str]:
    """The result links of a search page once the search has finished."""
    results = search.page.locator("#search-results ul.search li")
    results.first.wait_for()
    search.page.wait_for_function(
        "() => (document.querySelector('#search-results p.search-summary') || {}).textContent?.includes('found')"
    )
    return [results.nth(k).locator("a").first.get_attribute("href") for k in range(results.count())]


def test_search_for_pos_weight_finds_lessons_and_api_pages(open_page: Any, offline: list[str]) -> None:
    search = open_page("search.html?q=pos_weight")
    hrefs = search_results(search)
    assert any(href.startswith("lessons/") for href in hrefs), hrefs
    assert any(href.startswith("api/") for href in hrefs), hrefs
    assert search.page.locator("#search-results ul.search li p.context").count() > 0, "no matching text shown"
    search.check_clean(offline)


def test_search_works_from_the_files_themselves(open_page: Any, site: Path, offline: list[str]) -> None:
    """Opened as file:// (no server), search lists the pages by title, without a console error."""
    search = open_page((site / "search.html").as_uri() + "?q=pos_weight")
    hrefs = search_results(search)
    assert any(href.startswith("lessons/") for href in hrefs), hrefs
    search.check_clean(offline)


def test_a_lesson_links_the_api_names_it_uses(open_page: Any, offline: list[str]) -> None:
    lesson = open_page("lessons/02_masks_and_broadcasting.html")
    link = lesson.page.locator("article a[href$='#bceweights.shapes.expand_mask']").first
    assert link.inner_text().startswith("bw.expand_mask")
    link.click()
    lesson.page.wait_for_load_state("load")
    assert lesson.page.locator("dt[id='bceweights.shapes.expand_mask']").is_visible()
    lesson.check_clean(offline)
