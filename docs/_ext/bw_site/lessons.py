"""The lessons as the site shows them: ``notebooks/NN_*.ipynb`` mirrored into ``docs/lessons/`` (git-ignored).

The stored outputs stay as they are (nothing is executed), except the ipywidgets parts: a widget's view
is dropped (an explorer keeps its stored PNG snapshot, a progress bar its text), the notebook's widget
state too (so myst-nb loads no ipywidgets JavaScript from a CDN), and a one-line note saying that the
explorer is live in JupyterLab follows each explorer snapshot.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
LESSON_GLOB = "[0-9][0-9]*.ipynb"
LESSONS_DIR = "lessons"  # under the Sphinx source folder (docs/)


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
