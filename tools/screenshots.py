"""Regenerate the README's pictures of the lessons' explorers: ``docs/screenshots/NN_<explorer>.png``.

For each lesson that displays explorers (found from the stored outputs of ``notebooks/NN_*.ipynb``),
JupyterLab is started the way ``make lab`` starts it and the notebook is opened in headless
Chromium (the browser tests' harness, ``tests/browser/lab_driver.py``). For each explorer class,
the cells up to its first display are run, and the explorer element (title, controls, live ipympl
canvas, readouts) is captured in the state the lesson first shows it, trimmed of blank margins and
stored as an optimised PNG under 200 KB: ``01_loss_curve_explorer.png`` for ``LossCurveExplorer``
in lesson 01.

Run it through ``make screenshots`` (needs ``/usr/bin/chromium``: ``apt-get install -y chromium``).

Usage::

    python tools/screenshots.py                                   # every lesson, stale PNGs removed
    python tools/screenshots.py notebooks/01_weight_vs_pos_weight.ipynb
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.browser.lab_driver import (  # noqa: E402  (needs the repository root on sys.path)
    NOTEBOOKS_DIR,
    LabServer,
    NotebookPage,
    chromium_unavailable_reason,
    explorer_cells_in_stored_notebook,
    launch_chromium,
)

SCREENSHOTS_DIR = REPO_ROOT / "docs" / "screenshots"
MAX_BYTES = 200_000
# Lessons 05 and 06 train small models before their explorers.
RUN_TIMEOUT_S = 420.0
SCREENSHOT_VIEWPORT = {"width": 1400, "height": 2400}
DRAW_TIMEOUT_S = 60.0
MARGIN_PX = 8
# The list of files a run wrote, kept next to them: the only files a later run may delete.
MANIFEST_NAME = "MANIFEST.txt"


def screenshot_name(notebook: Path, class_name: str) -> str:
    """``01_loss_curve_explorer.png`` for LossCurveExplorer in 01_weight_vs_pos_weight.ipynb."""
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", class_name).lower()
    return f"{notebook.name[:2]}_{snake}.png"


def compact_png(png: bytes, max_bytes: int = MAX_BYTES) -> bytes:
    """Trim the uniform margin around the element's content and compress; palette PNG if needed."""
    from PIL import Image, ImageChops

    image = Image.open(io.BytesIO(png)).convert("RGB")
    background = Image.new("RGB", image.size, image.getpixel((image.width - 1, image.height - 1)))
    box = ImageChops.difference(image, background).getbbox()
    if box is not None:
        left, top, right, bottom = box
        image = image.crop(
            (
                max(left - MARGIN_PX, 0),
                max(top - MARGIN_PX, 0),
                min(right + MARGIN_PX, image.width),
                min(bottom + MARGIN_PX, image.height),
            )
        )
    candidates = [image, image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)]
    best = b""
    for candidate in candidates:
        buffer = io.BytesIO()
        candidate.save(buffer, format="PNG", optimize=True)
        best = buffer.getvalue()
        if len(best) <= max_bytes:
            break
    return best


def capture_lesson(context, server: LabServer, notebook: Path, out_dir: Path) -> list[Path]:
    """One PNG per explorer class in ``notebook``, at its first display."""
    firsts: dict[str, int] = {}
    for cell_index, class_name in explorer_cells_in_stored_notebook(notebook):
        firsts.setdefault(class_name, cell_index)
    written = []
    page = NotebookPage(context, server, notebook)
    try:
        # Tall enough for the tallest explorer with its readouts: an element taller than the viewport
        # is captured with JupyterLab's sticky toolbar drawn over its top.
        page.page.set_viewport_size(SCREENSHOT_VIEWPORT)
        page.open()
        page.clear_outputs()
        for class_name, cell_index in firsts.items():
            page.run_through(cell_index)
            page.wait_until_executed(RUN_TIMEOUT_S, through_cell=cell_index)
            errors = page.error_outputs()
            if errors:
                raise RuntimeError(f"{notebook.name} shows errors before its {class_name}:\n" + "\n".join(errors))
            explorers = [e for e in page.explorers(cell_index) if e.class_name == class_name]
            if not explorers:
                raise RuntimeError(f"{notebook.name}: no {class_name} in the output of cell {cell_index}")
            explorer = explorers[0]
            explorer.wait_until_drawn(DRAW_TIMEOUT_S)
            explorer.wait_until_stable()
            with tempfile.TemporaryDirectory() as scratch:
                raw = Path(scratch) / "explorer.png"
                explorer.screenshot(raw)
                png = compact_png(raw.read_bytes())
            target = out_dir / screenshot_name(notebook, class_name)
            target.write_bytes(png)
            written.append(target)
            print(f"{target.relative_to(REPO_ROOT)}  {len(png) / 1000:.0f} kB  ({class_name}, {notebook.name} cell {cell_index})")
    finally:
        page.close()
    return written


def read_manifest(out_dir: Path) -> set[str]:
    """Names of the screenshots an earlier run wrote into ``out_dir`` (empty if none was recorded)."""
    manifest = out_dir / MANIFEST_NAME
    if not manifest.exists():
        return set()
    return {line.strip() for line in manifest.read_text().splitlines() if line.strip() and not line.startswith("#")}


def remove_stale(out_dir: Path, written: list[Path], *, full_run: bool) -> list[Path]:
    """Delete the screenshots that an earlier run wrote and this one did not; record what was written.

    Only names listed in ``out_dir``'s manifest are ever deleted, so other files in the folder (a
    user's own PNGs, a ``--out`` that already held pictures) are left alone. A run over some
    notebooks only adds its names to the manifest and deletes nothing.
    """
    names = {p.name for p in written}
    previous = read_manifest(out_dir)
    removed: list[Path] = []
    if full_run:
        for name in sorted(previous - names):
            stale = out_dir / name
            if stale.is_file():
                stale.unlink()
                removed.append(stale)
                print(f"removed stale {stale}")
        kept = names
    else:
        kept = previous | names
    (out_dir / MANIFEST_NAME).write_text(
        "# Screenshots written by tools/screenshots.py (make screenshots); it deletes only these.\n"
        + "".join(f"{name}\n" for name in sorted(kept))
    )
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="lesson .ipynb files (default: all)")
    parser.add_argument("--out", type=Path, default=SCREENSHOTS_DIR, help="output folder")
    args = parser.parse_args(argv)

    reason = chromium_unavailable_reason()
    if reason is not None:
        print(f"screenshots need Chromium and Playwright: {reason}", file=sys.stderr)
        return 2
    notebooks = [p.resolve() for p in args.notebooks] or sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
    lessons = [nb for nb in notebooks if explorer_cells_in_stored_notebook(nb)]
    args.out.mkdir(parents=True, exist_ok=True)

    from playwright.sync_api import sync_playwright

    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="bce-screenshots-") as state:
        with LabServer(Path(state) / "jupyterlab") as server, sync_playwright() as playwright:
            context = launch_chromium(playwright, Path(state) / "chromium-profile")
            try:
                for notebook in lessons:
                    written += capture_lesson(context, server, notebook, args.out)
            finally:
                context.close()

    remove_stale(args.out, written, full_run=not args.notebooks)
    too_big = [p for p in written if p.stat().st_size > MAX_BYTES]
    if too_big:
        print(f"over {MAX_BYTES // 1000} kB: {', '.join(p.name for p in too_big)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
