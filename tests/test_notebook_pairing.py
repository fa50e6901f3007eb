"""Notebook pipeline: paired sources agree with the notebooks, and stored outputs are complete.

Every ``notebooks/*.ipynb`` is paired with a jupytext ``py:percent`` twin in ``notebooks/sources/``
(``notebooks/jupytext.toml``: ``ipynb,sources//py:percent``, so JupyterLab lists each lesson once).
The ``.py`` is the reviewed source; ``make notebooks`` rebuilds and executes the ``.ipynb`` from it.
These tests fail when the two disagree (a cell edited, added, removed, retagged on one side only),
when a notebook was not executed top to bottom, or when its figures need a kernel to be seen.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jupytext
import nbformat
import pytest
from jupytext.config import load_jupytext_config
from jupytext.paired_paths import paired_paths
from nbconvert import HTMLExporter

from tools.run_notebooks import SOURCES_DIR, notebook_path_for, resolve_sources

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
TEXT_FORMAT = "py:percent"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
SOURCES = sorted(SOURCES_DIR.glob("[0-9][0-9]_*.py"))
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def comparable_cells(notebook: nbformat.NotebookNode) -> list[tuple[str, str, tuple[str, ...]]]:
    """Cell type, source and tags of every cell: what must agree between the two files."""
    return [(cell.cell_type, cell.source, tuple(cell.metadata.get("tags", ()))) for cell in notebook.cells]


def pairing_differences(ipynb_path: Path, py_path: Path) -> list[str]:
    """Differences between a notebook and its py:percent twin, empty when they agree.

    The notebook is written as py:percent text and read back, so both sides go through the same
    jupytext normalisation; what remains are real differences.
    """
    notebook_cells = comparable_cells(jupytext.reads(jupytext.writes(jupytext.read(ipynb_path), fmt=TEXT_FORMAT), fmt=TEXT_FORMAT))
    source_cells = comparable_cells(jupytext.read(py_path, fmt=TEXT_FORMAT))
    differences = []
    for index, (in_notebook, in_source) in enumerate(zip(notebook_cells, source_cells)):
        if in_notebook != in_source:
            differences.append(
                f"cell {index}: {ipynb_path.name} has {in_notebook[0]} {in_notebook[2] or ''}\n{in_notebook[1]!r}\n"
                f"  but {py_path.name} has {in_source[0]} {in_source[2] or ''}\n{in_source[1]!r}"
            )
    if len(notebook_cells) != len(source_cells):
        differences.append(f"{ipynb_path.name} has {len(notebook_cells)} cells, {py_path.name} has {len(source_cells)}")
    return differences


def source_path_for(ipynb_path: Path) -> Path:
    """``notebooks/NN_name.ipynb`` -> ``notebooks/sources/NN_name.py``."""
    return SOURCES_DIR / f"{ipynb_path.stem}.py"


def out_of_sync_message(ipynb_path: Path, differences: list[str]) -> str:
    source = source_path_for(ipynb_path).name
    return (
        f"{ipynb_path.name} and sources/{source} are out of sync:\n" + "\n".join(differences) + "\n"
        f"If sources/{source} is right: make notebooks NB=notebooks/sources/{source}\n"
        f"If the notebook is right (edited in JupyterLab without jupytext): "
        f".venv/bin/jupytext --sync notebooks/{ipynb_path.name}"
    )


@pytest.mark.parametrize("ipynb_path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_has_a_py_percent_twin_with_the_same_cells(ipynb_path):
    py_path = source_path_for(ipynb_path)
    assert py_path.is_file(), f"{ipynb_path.name} has no paired source sources/{py_path.name}; create it with: .venv/bin/jupytext --sync notebooks/{ipynb_path.name}"
    differences = pairing_differences(ipynb_path, py_path)
    assert not differences, out_of_sync_message(ipynb_path, differences)


@pytest.mark.parametrize("py_path", SOURCES, ids=lambda path: path.name)
def test_source_has_its_executed_notebook(py_path):
    assert notebook_path_for(py_path).is_file(), (
        f"sources/{py_path.name} has no notebook; build and execute it with: make notebooks NB=notebooks/sources/{py_path.name}"
    )


def test_no_source_is_left_beside_the_notebooks():
    """The file browser of `make lab` lists each lesson once: no NN_*.py next to the notebooks."""
    strays = sorted(path.name for path in NOTEBOOKS_DIR.glob("[0-9][0-9]_*.py"))
    assert not strays, f"{strays} sit in notebooks/; lesson sources belong in notebooks/sources/ (git mv them there)"


@pytest.mark.parametrize("ipynb_path", NOTEBOOKS, ids=lambda path: path.name)
def test_jupytext_config_pairs_the_notebook_with_its_source(ipynb_path):
    """What JupyterLab's jupytext pairing does (notebooks/jupytext.toml) and what make notebooks does agree."""
    formats = load_jupytext_config(str(ipynb_path)).default_formats(str(ipynb_path))
    paired = [Path(path) for path, _ in paired_paths(str(ipynb_path), "ipynb", formats)]
    assert paired == [ipynb_path, source_path_for(ipynb_path)], f"jupytext pairs {ipynb_path.name} with {paired}"
    assert resolve_sources([str(ipynb_path)]) == [source_path_for(ipynb_path).resolve()]


@pytest.mark.parametrize("ipynb_path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_was_executed_top_to_bottom(ipynb_path):
    notebook = nbformat.read(ipynb_path, as_version=4)
    counts = [cell.get("execution_count") for cell in notebook.cells if cell.cell_type == "code" and cell.source.strip()]
    assert counts == list(range(1, len(counts) + 1)), (
        f"{ipynb_path.name} execution counts are {counts}, expected 1..{len(counts)} in order: "
        f"regenerate it with make notebooks NB=notebooks/sources/{source_path_for(ipynb_path).name}"
    )
    errors = [
        output.get("ename")
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors, f"{ipynb_path.name} stores errors {errors}"


def reachable_models(state: dict, model_id: str) -> list[str]:
    """``model_id`` and every widget model it references (children, canvas, toolbar, ...)."""
    found, pending = [], [model_id]
    while pending:
        current = pending.pop()
        if current in found or current not in state:
            continue
        found.append(current)
        pending += re.findall(r"IPY_MODEL_([0-9a-f]{32})", json.dumps(state[current].get("state", {})))
    return found


def missing_pictures(state: dict, model_ids: list[str]) -> list[str]:
    """Canvases among ``model_ids`` whose picture was not saved with the widget state."""
    missing = []
    for model_id in model_ids:
        model = state[model_id]
        if model.get("model_name") == "MPLCanvasModel":
            if not str(model["state"].get("_data_url") or "").startswith("data:image/png;base64,"):
                missing.append(f"ipympl canvas {model_id}")
        elif model.get("model_name") == "ImageModel":
            if not any(buffer.get("path") == ["value"] for buffer in model.get("buffers", [])):
                missing.append(f"image widget {model_id}")
    return missing


@pytest.mark.parametrize("ipynb_path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_figures_show_without_a_kernel(ipynb_path):
    """What GitHub or nbviewer shows: static images, and widgets drawn from their saved state.

    Every stored image/png must reach the HTML export as an <img>; every widget output must have
    its model tree in the saved widget state (embedded in the HTML), with the pictures of its
    canvases saved too (ipympl's first frame as a PNG data URL).
    """
    notebook = nbformat.read(ipynb_path, as_version=4)
    saved_state = notebook.metadata.get("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    outputs = [output for cell in notebook.cells for output in cell.get("outputs", [])]
    widget_ids = [output["data"][WIDGET_VIEW]["model_id"] for output in outputs if WIDGET_VIEW in output.get("data", {})]
    static_images = sum("image/png" in output.get("data", {}) and WIDGET_VIEW not in output["data"] for output in outputs)
    html, _ = HTMLExporter().from_notebook_node(notebook)

    unsaved = [model_id for model_id in widget_ids if model_id not in saved_state or model_id not in html]
    assert not unsaved, (
        f"{ipynb_path.name}: widget outputs {unsaved} have no saved state in the notebook or its HTML export, "
        f"so they are blank without a kernel; regenerate with make notebooks"
    )
    blank = [name for model_id in widget_ids for name in missing_pictures(saved_state, reachable_models(saved_state, model_id))]
    assert not blank, f"{ipynb_path.name}: the saved widget state has no picture for {blank}"
    assert len(re.findall(r"<img [^>]*src=\"data:image/png;base64,", html)) >= static_images, (
        f"{ipynb_path.name}: the HTML export shows fewer images than the {static_images} stored"
    )


def write_pair(folder: Path, py_source: str) -> tuple[Path, Path]:
    """A py:percent file and the notebook jupytext makes of it, as `make notebooks` would pair them."""
    py_path = folder / "99_pair.py"
    py_path.write_text(py_source, encoding="utf-8")
    ipynb_path = folder / "99_pair.ipynb"
    nbformat.write(jupytext.read(py_path, fmt=TEXT_FORMAT), ipynb_path)
    return ipynb_path, py_path


PAIR_SOURCE = """\
# %% [markdown]
# # A lesson

# %%
x = 1

# %% tags=["nbval-ignore-output"]
print(x)
"""


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda text: text.replace("x = 1", "x = 2"), "cell 1"),
        (lambda text: text.replace("# # A lesson", "# # Another lesson"), "cell 0"),
        (lambda text: text.replace(' tags=["nbval-ignore-output"]', ""), "cell 2"),
        (lambda text: text + "\n# %%\nx += 1\n", "has 3 cells"),
    ],
    ids=["code edited", "markdown edited", "tag removed", "cell added"],
)
def test_pairing_check_fails_when_one_side_is_edited(tmp_path, edit, expected):
    ipynb_path, py_path = write_pair(tmp_path, PAIR_SOURCE)
    assert pairing_differences(ipynb_path, py_path) == []
    py_path.write_text(edit(PAIR_SOURCE), encoding="utf-8")
    differences = pairing_differences(ipynb_path, py_path)
    assert differences and expected in "\n".join(differences)
