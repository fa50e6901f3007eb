"""Regenerate the stored outputs of the lesson notebooks.

For every ``notebooks/sources/NN_*.py`` (jupytext ``py:percent``, the reviewed source; the pairing
``ipynb,sources//py:percent`` is set in ``notebooks/jupytext.toml``):

1. build the notebook from the ``.py`` file: cell types, sources and metadata come from the
   ``.py``; cell ids are taken over from the existing ``.ipynb`` where a cell is unchanged, and
   new cells get an id derived from their content, so ids stay stable between runs;
2. execute it top to bottom with nbclient in a kernel running this interpreter (the same kernel
   spec ``pytest --nbval --nbval-current-env`` starts), with the working directory set to
   ``notebooks/``;
3. drop volatile metadata (execution timing), store progress bars in their final state without
   timings, and renumber widget model ids deterministically, so that a second run writes the same
   file;
4. write ``notebooks/NN_*.ipynb``, one folder above the source.

Run it through ``make notebooks``: the Makefile gives the kernel the same environment variables
as ``make test`` (``NOTEBOOK_ENV``), which is what makes stored outputs and strict nbval agree.

Usage::

    python tools/run_notebooks.py                               # every notebooks/sources/NN_*.py
    python tools/run_notebooks.py notebooks/sources/01_*.py     # some of them
    python tools/run_notebooks.py notebooks/01_weight_vs_pos_weight.ipynb 04_class_weights_from_data
                                                # .ipynb paths and bare names work too
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import jupytext
import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from jupytext.combine import map_outputs_to_inputs
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
# The py:percent twins, paired by notebooks/jupytext.toml (formats = "ipynb,sources//py:percent").
SOURCES_DIR = NOTEBOOKS_DIR / "sources"
SOURCE_PATTERN = "[0-9][0-9]_*.py"
TEXT_FORMAT = "py:percent"

# Marker exported by the Makefile's NOTEBOOK_ENV; without it the kernel may run with a
# different environment from the one strict nbval uses.
ENV_MARKER = "BCEWEIGHTS_NOTEBOOK_ENV"

CELL_TIMEOUT_S = 600
DEFAULT_KERNELSPEC = {
    "display_name": "Python 3 (ipykernel)",
    "language": "python",
    "name": "python3",
}
# Notebook-level metadata kept in the .ipynb; anything else (jupytext's text_representation,
# front-end state) is dropped so the file depends only on the source and the execution.
KEPT_NOTEBOOK_METADATA = ("kernelspec", "language_info", "widgets")
WIDGET_STATE_KEY = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW_KEY = "application/vnd.jupyter.widget-view+json"
# Characters of a finalised tqdm bar in the stored text (tqdm's own default width for notebooks' text).
PROGRESS_BAR_WIDTH = 10
# Namespace for the deterministic widget model ids written into stored notebooks.
MODEL_ID_NAMESPACE = uuid.UUID("6b3c1d52-52f4-4d6e-9a55-2f8c0f1e7a10")


class CurrentEnvKernelSpecManager(KernelSpecManager):
    """Resolve every kernel name to ipykernel running in this interpreter.

    ``pytest --nbval-current-env`` does the same, so regeneration and tests execute the
    notebooks with the same Python, whatever kernel specs the user has installed.
    """

    def get_kernel_spec(self, kernel_name: str):  # noqa: D102 (inherited)
        import ipykernel.kernelspec

        return self.kernel_spec_class(
            resource_dir=ipykernel.kernelspec.RESOURCES,
            **ipykernel.kernelspec.get_kernel_dict(),
        )


def content_cell_id(cell: nbformat.NotebookNode, taken: set[str]) -> str:
    """A cell id derived from the cell's type and source, made unique among ``taken``."""
    digest = hashlib.sha1(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()
    candidate = digest[:8]
    suffix = 2
    while candidate in taken:
        candidate = f"{digest[:8]}-{suffix}"
        suffix += 1
    return candidate


def notebook_from_source(source_path: Path, ipynb_path: Path) -> nbformat.NotebookNode:
    """Build the unexecuted notebook for ``source_path``, reusing cell ids from ``ipynb_path``."""
    source_nb = jupytext.read(source_path, fmt=TEXT_FORMAT)
    previous_cells = []
    previous_metadata: dict = {}
    if ipynb_path.exists():
        previous = nbformat.read(ipynb_path, as_version=4)
        previous_cells = previous.cells
        previous_metadata = previous.metadata

    matches = map_outputs_to_inputs(source_nb.cells, previous_cells) if previous_cells else [None] * len(source_nb.cells)

    cells = []
    taken: set[str] = set()
    for source_cell, match in zip(source_nb.cells, matches):
        if source_cell.cell_type == "code":
            cell = nbformat.v4.new_code_cell(source=source_cell.source)
        elif source_cell.cell_type == "markdown":
            cell = nbformat.v4.new_markdown_cell(source=source_cell.source)
        else:
            cell = nbformat.v4.new_raw_cell(source=source_cell.source)
        cell.metadata = nbformat.from_dict(dict(source_cell.metadata))
        inherited = previous_cells[match].get("id") if match is not None else None
        cell.id = inherited if inherited and inherited not in taken else content_cell_id(cell, taken)
        taken.add(cell.id)
        cells.append(cell)

    notebook = nbformat.v4.new_notebook(cells=cells)
    kernelspec = source_nb.metadata.get("kernelspec") or previous_metadata.get("kernelspec") or DEFAULT_KERNELSPEC
    notebook.metadata = nbformat.from_dict({"kernelspec": dict(kernelspec)})
    return notebook


def renumber_widget_ids(notebook: nbformat.NotebookNode, seed: str) -> nbformat.NotebookNode:
    """Replace the kernel's random widget model ids by ids derived from ``seed`` and order.

    Model ids appear as keys of the saved widget state, inside it (``IPY_MODEL_<id>``
    references) and in the display outputs; all are rewritten consistently.
    """
    state = notebook.metadata.get("widgets", {}).get(WIDGET_STATE_KEY, {}).get("state", {})
    known_ids = list(state.keys())
    # Outputs may also name widgets that were closed before the state was saved.
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            view = output.get("data", {}).get(WIDGET_VIEW_KEY)
            if view and view.get("model_id") not in (None, *known_ids):
                known_ids.append(view["model_id"])
    if not known_ids:
        return notebook
    text = json.dumps(notebook)
    for index, old in enumerate(known_ids):
        # Kernel model ids are random uuid4 hex strings: an exact match cannot occur by chance.
        text = text.replace(old, uuid.uuid5(MODEL_ID_NAMESPACE, f"{seed}:{index}").hex)
    return nbformat.from_dict(json.loads(text))


def _progress_bar_parts(state: dict, model_id: str) -> tuple[dict, dict, dict] | None:
    """The (label, bar, counter) widget models of a tqdm.notebook bar, or None for any other widget.

    tqdm draws a notebook bar as an HBox of HTML (label and percentage), FloatProgress and HTML
    (``n/total [elapsed<remaining, rate, postfix]``).
    """
    box = state.get(model_id)
    if box is None or box.get("model_name") != "HBoxModel":
        return None
    children = [state.get(child.removeprefix("IPY_MODEL_")) for child in box["state"].get("children", [])]
    names = [child.get("model_name") if child else None for child in children]
    if names != ["HTMLModel", "FloatProgressModel", "HTMLModel"]:
        return None
    return children[0], children[1], children[2]


def _without_timing(counter: str) -> str:
    """``' 8/8 [00:00<00:00, 863.67it/s, loss=0.1]'`` -> ``' 8/8 [loss=0.1]'`` (or ``' 8/8'``)."""
    match = re.fullmatch(r"(?P<count>.*?)\s*\[(?P<inside>.*)\]\s*", counter)
    if not match:
        return counter.rstrip()
    items = [item.strip() for item in match["inside"].split(",")]
    postfix = [item for item in items[2:] if item]  # items[0]: elapsed<remaining, items[1]: rate
    return match["count"] + (f" [{', '.join(postfix)}]" if postfix else "")


def finalise_progress_bars(notebook: nbformat.NotebookNode) -> None:
    """Store every tqdm bar in its final state, without timings.

    The text a static page shows for a widget (``text/plain``) is the bar as it was *displayed*, at
    0 % ("0%| | 0/8"), which reads as stuck; the saved widget state holds the final bar. Both are
    rewritten to the final bar with the elapsed time and rate dropped (they differ on every run and
    every machine), so a static page reads e.g. ``plain BCE: 100%|██████████| 10/10 [loss=0.0715]``
    and a second run writes the same file.
    """
    state = notebook.metadata.get("widgets", {}).get(WIDGET_STATE_KEY, {}).get("state", {})
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            view = data.get(WIDGET_VIEW_KEY)
            parts = _progress_bar_parts(state, view["model_id"]) if view else None
            if parts is None:
                continue
            label, bar, counter = (part["state"] for part in parts)
            counter["value"] = html.escape(_without_timing(html.unescape(counter.get("value", ""))), quote=False)
            total = float(bar.get("max") or 0)
            done = min(max(float(bar.get("value") or 0) / total, 0.0), 1.0) if total else 0.0
            filled = round(done * PROGRESS_BAR_WIDTH)
            text = (
                html.unescape(label.get("value", "")) + "|" + "\u2588" * filled + " " * (PROGRESS_BAR_WIDTH - filled) + "|"
                + html.unescape(counter["value"])
            )
            data["text/plain"] = text.replace("\u2007", " ")


def strip_volatile_metadata(notebook: nbformat.NotebookNode) -> None:
    """Drop metadata that changes on every run without the outputs changing."""
    for cell in notebook.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("ExecuteTime", None)
    for key in list(notebook.metadata):
        if key not in KEPT_NOTEBOOK_METADATA:
            del notebook.metadata[key]


def merge_stream_outputs(notebook: nbformat.NotebookNode) -> None:
    """Join consecutive stream outputs of the same name into one, as a frontend shows them.

    How a cell's prints are split into messages depends on timing (the kernel flushes when it
    likes); merging makes the stored file independent of it. nbval compares the merged text too.
    """
    for cell in notebook.cells:
        merged: list[nbformat.NotebookNode] = []
        for output in cell.get("outputs", []):
            previous = merged[-1] if merged else None
            if (
                output.get("output_type") == "stream"
                and previous is not None
                and previous.get("output_type") == "stream"
                and previous.get("name") == output.get("name")
            ):
                previous["text"] = "".join(previous["text"]) + "".join(output["text"])
            else:
                merged.append(output)
        if "outputs" in cell:
            cell["outputs"] = merged


def execute_notebook(notebook: nbformat.NotebookNode, working_dir: Path) -> nbformat.NotebookNode:
    """Run every cell in order in a fresh kernel; raise CellExecutionError on the first error."""
    kernel_manager = KernelManager(
        kernel_name=notebook.metadata["kernelspec"]["name"],
        kernel_spec_manager=CurrentEnvKernelSpecManager(),
    )
    client = NotebookClient(
        notebook,
        km=kernel_manager,
        timeout=CELL_TIMEOUT_S,
        allow_errors=False,
        record_timing=False,
        store_widget_state=True,
        resources={"metadata": {"path": str(working_dir)}},
    )
    # The kernel process's own log lines (not cell output) are dropped, as nbval does.
    return client.execute(stderr=subprocess.DEVNULL)


def notebook_path_for(source_path: Path) -> Path:
    """``notebooks/sources/NN_name.py`` -> ``notebooks/NN_name.ipynb`` (the prefix pairing)."""
    return source_path.parent.parent / f"{source_path.stem}.ipynb"


def regenerate(source_path: Path) -> float:
    """Rebuild, execute and save the notebook paired with ``source_path``; return seconds taken."""
    ipynb_path = notebook_path_for(source_path)
    started = time.perf_counter()
    notebook = notebook_from_source(source_path, ipynb_path)
    # Run in the notebook's folder (notebooks/), where JupyterLab runs it too.
    notebook = execute_notebook(notebook, ipynb_path.parent)
    strip_volatile_metadata(notebook)
    merge_stream_outputs(notebook)
    finalise_progress_bars(notebook)
    notebook = renumber_widget_ids(notebook, seed=source_path.stem)
    nbformat.validate(notebook)
    text = nbformat.writes(notebook, version=4)
    ipynb_path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    return time.perf_counter() - started


def resolve_sources(arguments: list[str]) -> list[Path]:
    """Map command-line paths (``.py``, ``.ipynb`` or stems) to existing ``sources/*.py`` files.

    Whatever folder an argument names, the source is ``notebooks/sources/<stem>.py``: so
    ``notebooks/04_class_weights_from_data.ipynb``, ``04_class_weights_from_data`` and the old
    ``notebooks/04_class_weights_from_data.py`` all mean ``notebooks/sources/04_class_weights_from_data.py``.
    """
    if not arguments:
        return sorted(SOURCES_DIR.glob(SOURCE_PATTERN))
    sources = []
    for argument in arguments:
        path = Path(argument)
        if not (path.suffix == ".py" and path.is_file() and path.resolve().parent == SOURCES_DIR.resolve()):
            path = SOURCES_DIR / f"{Path(path.name).stem if path.suffix in ('.py', '.ipynb') else path.name}.py"
        if not path.is_file():
            raise SystemExit(f"run_notebooks: no jupytext source {path} for {argument!r}; "
                             f"expected notebooks/sources/NN_name.py (py:percent).")
        sources.append(path.resolve())
    return sources


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="sources to regenerate (default: notebooks/NN_*.py)")
    args = parser.parse_args(argv)

    if os.environ.get(ENV_MARKER) != "1":
        print(f"run_notebooks: warning: {ENV_MARKER} is not set, so the kernel may not get the "
              "environment strict nbval uses; run `make notebooks` instead.", file=sys.stderr)

    sources = resolve_sources(args.notebooks)
    if not sources:
        print(f"run_notebooks: no notebooks/sources/{SOURCE_PATTERN} to run")
        return 0

    total = 0.0
    for source_path in sources:
        name = source_path.relative_to(REPO_ROOT) if source_path.is_relative_to(REPO_ROOT) else source_path
        print(f"{name} ...", end=" ", flush=True)
        try:
            seconds = regenerate(source_path)
        except CellExecutionError as error:
            print("FAILED")
            print(error, file=sys.stderr)
            print(f"run_notebooks: {name} raised; its .ipynb was left unchanged.", file=sys.stderr)
            return 1
        total += seconds
        print(f"{seconds:.1f} s")
    print(f"{len(sources)} notebook(s) executed in {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
