"""Every lesson notebook in JupyterLab, in headless Chromium, as a learner meets it after ``make lab``.

For each ``notebooks/*.ipynb`` (new lessons are picked up without registering them):

- open it, clear the stored outputs (Edit menu), run every cell (Run > Run All Cells) and wait until
  the kernel is idle with every code cell executed;
- no cell shows an error, a traceback, stderr text or a widget that failed to display;
- the kernel runs in the environment JupyterLab was started from (the project's ``.venv`` under
  ``make test``), not some other ``python3`` kernelspec;
- every explorer the stored notebook displays is on the page and has drawn its ipympl canvas;
- for each explorer, one slider moved with the keyboard (arrow keys on the focused handle; an
  explorer without sliders gets the next option of a dropdown, since JupyterLab keeps the arrow
  keys on a focused dropdown for notebook navigation) changes both the canvas pixels and a
  numeric readout; the time from key press to new pixels is printed in
  the terminal summary (a figure to read, not an assertion);
- JupyterLab wrote nothing into ``notebooks/``: no new file (checkpoints, workspace state) and the
  notebook and its ``.py`` pair are byte-for-byte unchanged (no autosave).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.browser.lab_driver import (
    NOTEBOOKS_DIR,
    ExplorerView,
    LabServer,
    RedrawTiming,
    ControlMove,
    directory_snapshot,
    explorers_in_stored_notebook,
    opened_notebook,
    snapshot_changes,
)

NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
# Lessons 05 and 06 train small models on CPU; 2 busy cores can stretch that a lot.
RUN_ALL_TIMEOUT_S = 420.0
CANVAS_DRAW_TIMEOUT_S = 120.0  # a busy 2-core machine once needed more than 60 s after a long Run All
KEY_PRESSES = 3


def test_lesson_notebooks_exist() -> None:
    assert NOTEBOOKS, f"no notebooks/*.ipynb in {NOTEBOOKS_DIR}: run `make notebooks` to build them from the .py sources"


def move_a_control(explorer: ExplorerView) -> tuple[ControlMove | None, list[ControlMove]]:
    """Try the explorer's sliders (then dropdowns) in display order until one changes canvas and readouts."""
    attempts = []
    for action in explorer.controls_to_move():
        move = explorer.move_control(action, presses=KEY_PRESSES)
        attempts.append(move)
        if move.canvas_changed and move.changed_readouts:
            return move, attempts
    return None, attempts


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_runs_and_explorers_respond(
    notebook: Path,
    lab_server: LabServer,
    browser: Any,
    redraw_timings: list[RedrawTiming],
    notebook_durations: dict[str, float],
) -> None:
    started = time.monotonic()
    files_before = directory_snapshot(NOTEBOOKS_DIR)
    expected_explorers = explorers_in_stored_notebook(notebook)

    with opened_notebook(browser, lab_server, notebook) as page:
        page.clear_outputs()
        page.run_all_cells()
        page.wait_until_executed(RUN_ALL_TIMEOUT_S)

        errors = page.error_outputs()
        assert not errors, f"{page.name} shows error output after Run All Cells:\n" + "\n".join(errors)
        unexecuted = page.unexecuted_cells()
        assert not unexecuted, f"{page.name}: cells {unexecuted} did not run after Run All Cells"

        session = lab_server.session_for(page.name)
        assert session is not None, f"no kernel session for {page.name} on the server"
        kernel_prefix = lab_server.kernel_sys_prefix(session["kernel"]["id"])
        assert Path(kernel_prefix).resolve() == Path(sys.prefix).resolve(), (
            f"{page.name} runs in a kernel from {kernel_prefix}, but JupyterLab was started from {sys.prefix}: "
            f"a {session['kernel']['name']!r} kernelspec on JUPYTER_PATH points at another Python"
        )

        explorers = page.explorers()
        missing = Counter(expected_explorers) - Counter(e.class_name for e in explorers)
        assert not missing, (
            f"{page.name}: the stored notebook displays {expected_explorers}, but the page shows "
            f"{[e.class_name for e in explorers]}; missing {dict(missing)}"
        )
        for explorer in explorers:
            explorer.wait_until_drawn(CANVAS_DRAW_TIMEOUT_S)

        problems = []
        for explorer in explorers:
            move, attempts = move_a_control(explorer)
            if not attempts:
                problems.append(f"{explorer}: no slider or dropdown to move")
            elif move is None:
                problems.append(f"{explorer}: no control changed both canvas and readouts: " + "; ".join(a.describe() for a in attempts))
            else:
                redraw_timings.append(RedrawTiming(notebook.stem, explorer.class_name, f"{move.control} {move.key}", move.latencies_ms))
        errors_after_moves = page.error_outputs()
        assert not problems, f"{page.name}:\n" + "\n".join(problems)
        assert not errors_after_moves, f"{page.name} shows error output after moving the explorers' controls:\n" + "\n".join(errors_after_moves)

    # Only this lesson's pair and new files: other lessons may be regenerated meanwhile.
    own_files = {notebook.name, f"sources/{notebook.stem}.py"}
    changes = [
        change
        for change in snapshot_changes(files_before, directory_snapshot(NOTEBOOKS_DIR))
        if change.startswith("new file") or change.split(" ", 1)[1] in own_files
    ]
    assert not changes, f"opening {notebook.name} in JupyterLab changed notebooks/: {changes}"
    notebook_durations[notebook.stem] = time.monotonic() - started
