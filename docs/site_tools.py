"""Build, serve and photograph the bceweights website (``make site``, ``make site-screenshots``).

Usage::

    python docs/site_tools.py build          # build/site/ from docs/ and notebooks/ (warnings are errors)
    python docs/site_tools.py serve          # the built site on http://127.0.0.1:8000/ (loopback only)
    python docs/site_tools.py screenshots    # docs/screenshots/site_landing.png and site_lesson.png, 1400 px wide

The build is Sphinx's, incremental: only pages whose sources changed are rewritten. ``-W --keep-going -n``
turn every warning into a failure after listing them all, nitpicky references included; the site's
extension (``docs/_ext/bw_site/``) adds a check of every local link of the built pages.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

DOCS = Path(__file__).resolve().parent
REPO_ROOT = DOCS.parent
SITE_DIR = REPO_ROOT / "build" / "site"
SCREENSHOTS_DIR = DOCS / "screenshots"
SCREENSHOT_WIDTH = 1400
# The lesson the screenshot shows, scrolled to its first explorer snapshot.
SCREENSHOT_LESSON = "lessons/01_weight_vs_pos_weight.html"


def sphinx_command(outdir: Path = SITE_DIR) -> list[str]:
    """The one command that builds the site (the Makefile and the browser test both run it).

    ``-E`` reads every source again: the landing page links into the lessons' built sections, a
    dependency Sphinx does not track, so an incremental build could keep a link to a renamed section.
    A full build takes about 20 s.
    """
    return [sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going", "-n", "-q", "-b", "html", str(DOCS), str(outdir)]


def build(outdir: Path = SITE_DIR) -> float:
    """Build the site into ``outdir``; the seconds it took. Raises ``CalledProcessError`` on any warning."""
    started = time.monotonic()
    subprocess.run(sphinx_command(outdir), check=True, cwd=REPO_ROOT)
    return time.monotonic() - started


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        pass


@contextlib.contextmanager
def serving(directory: Path = SITE_DIR, port: int = 0) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 (``port`` 0: a free one) in a thread; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def screenshots(site: Path = SITE_DIR, target: Path = SCREENSHOTS_DIR) -> list[Path]:
    """The landing page and one lesson page, 1400 px wide, in headless Chromium, as PNGs in ``target``."""
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(REPO_ROOT))
    from tests.browser.lab_driver import CHROMIUM_ARGS, CHROMIUM_PATH

    written = []
    with serving(site) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM_PATH), headless=True, args=list(CHROMIUM_ARGS))
        try:
            page = browser.new_page(viewport={"width": SCREENSHOT_WIDTH, "height": 1500}, device_scale_factor=1)
            page.goto(base + "index.html", wait_until="load")
            landing = target / "site_landing.png"
            page.screenshot(path=str(landing))
            written.append(landing)

            page.set_viewport_size({"width": SCREENSHOT_WIDTH, "height": 1300})
            page.goto(base + SCREENSHOT_LESSON, wait_until="load")
            page.locator("div.cell_output img").first.evaluate(
                "img => window.scrollTo(0, img.getBoundingClientRect().top + window.scrollY - 260)"
            )
            lesson = target / "site_lesson.png"
            page.screenshot(path=str(lesson))
            written.append(lesson)
        finally:
            browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["build", "serve", "screenshots"])
    parser.add_argument("--port", type=int, default=8000, help="serve: the port on 127.0.0.1 (default 8000)")
    args = parser.parse_args(argv)
    if args.command == "build":
        seconds = build()
        print(f"Built {SITE_DIR.relative_to(REPO_ROOT)}/index.html in {seconds:.0f} s")
    elif args.command == "serve":
        with serving(SITE_DIR, args.port) as url:
            print(f"Serving {SITE_DIR.relative_to(REPO_ROOT)} at {url} (Ctrl+C stops)")
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
    else:
        for path in screenshots():
            print(f"Wrote {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
