"""Drive JupyterLab in headless Chromium: the harness of the browser tests and of ``tools/screenshots.py``.

- :class:`LabServer` starts JupyterLab through ``tools/lab.py`` (the entry point of ``make lab``) with
  this interpreter, on 127.0.0.1, a free port and a token it knows, and stops the whole process group.
  Everything JupyterLab writes besides the notebooks' kernels (settings, workspaces, runtime files,
  checkpoints) goes to a temporary state directory, and autosave is off, so ``notebooks/`` is left as
  it was.
- :func:`launch_chromium` starts Debian's ``/usr/bin/chromium`` through Playwright with the flags a
  machine without network needs.
- :class:`NotebookPage` opens one notebook in its own JupyterLab workspace, clears its outputs, runs
  every cell from the Run menu and waits for the kernel to finish; :class:`ExplorerView` reads one
  explorer's canvas pixels and readouts and moves its sliders with the keyboard.

The DOM hooks come from :mod:`bceweights.lessons.explore.base`: every explorer is a ``.bce-explorer`` element
(plus ``.bce-explorer-<ClassName>``) holding a ``.bce-canvas`` (the ipympl canvas widget, whose first
``<canvas>`` is the figure), ``.bce-control-<name>`` controls and a ``.bce-readout`` table whose
value cells carry ``data-readout="<name>"``.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
LAB_ENTRY_POINT = REPO_ROOT / "tools" / "lab.py"
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"

# Debian's Chromium; BCEWEIGHTS_CHROMIUM points the tests at another Chromium or Chrome binary.
CHROMIUM_PATH = Path(os.environ.get("BCEWEIGHTS_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_INSTALL = "apt-get update && apt-get install -y chromium"
# Without network, Chromium stalls on first-run, update, sync and QUIC probes; --no-sandbox because
# CI runs as root.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
VIEWPORT = {"width": 1400, "height": 1000}

# JupyterLab user settings written into the temporary settings directory, plugin id -> values.
LAB_SETTINGS: dict[str, dict[str, Any]] = {
    # Keep every cell in the DOM (the default windowing detaches cells scrolled out of view).
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
    # Never write the executed notebook back to notebooks/.
    "@jupyterlab/docmanager-extension:plugin": {"autosave": False},
    # No news or update checks (and no toast asking about them).
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}

SERVER_START_TIMEOUT_S = 120.0
SERVER_STOP_TIMEOUT_S = 15.0

# The explorer's display bundle (``Explorer._repr_mimebundle_``) holds a widget view, a PNG of the
# first frame and ``ClassName(control=value, ...)`` as text/plain.
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
_EXPLORER_REPR = re.compile(r"^([A-Z]\w*)\(")


def chromium_unavailable_reason() -> str | None:
    """Why the browser tests cannot run here, with the command that fixes it; None when they can."""
    if not (CHROMIUM_PATH.is_file() and os.access(CHROMIUM_PATH, os.X_OK)):
        return f"Chromium is not installed at {CHROMIUM_PATH}; install it (as root) with: {CHROMIUM_INSTALL}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return (
            "Python Playwright is missing from this environment; run the tests through `make test`, "
            "which installs it into .venv"
        )
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def directory_snapshot(directory: Path) -> dict[str, str]:
    """``relative path -> sha256`` of every file under ``directory`` (hidden ones included)."""
    return {
        str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def snapshot_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Human-readable differences between two :func:`directory_snapshot` results."""
    changes = [f"new file {name}" for name in after if name not in before]
    changes += [f"removed {name}" for name in before if name not in after]
    changes += [f"modified {name}" for name in before if name in after and before[name] != after[name]]
    return changes


def explorer_cells_in_stored_notebook(notebook: Path) -> list[tuple[int, str]]:
    """``(cell index, class name)`` of each explorer a notebook displays, read from its stored outputs."""
    found = []
    for index, cell in enumerate(json.loads(notebook.read_text(encoding="utf-8"))["cells"]):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            text = data.get("text/plain", "")
            text = "".join(text) if isinstance(text, list) else text
            match = _EXPLORER_REPR.match(text)
            if WIDGET_VIEW_MIME in data and "image/png" in data and match:
                found.append((index, match.group(1)))
    return found


def explorers_in_stored_notebook(notebook: Path) -> list[str]:
    """Class names of the explorers a notebook displays, read from its stored outputs, in order."""
    return [name for _, name in explorer_cells_in_stored_notebook(notebook)]


class LabServer:
    """JupyterLab as ``make lab`` starts it (``tools/lab.py``), on a free loopback port with a known token.

    ``state_dir`` receives JupyterLab's configuration, settings, workspaces, runtime files (kernel
    connection files), checkpoints and the server log. Use as a context manager, or call
    :meth:`start` and :meth:`stop` (which kills the whole process group, kernels included).
    """

    def __init__(self, state_dir: Path, python: str = sys.executable, entry_point: Path = LAB_ENTRY_POINT) -> None:
        self.state_dir = Path(state_dir)
        self.python = python
        self.entry_point = entry_point
        self.port = free_port()
        self.token = uuid.uuid4().hex
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.state_dir / "jupyterlab.log"
        self.runtime_dir = self.state_dir / "runtime"
        self.process: subprocess.Popen[bytes] | None = None

    # -- lifecycle -----------------------------------------------------------------------------------

    def command(self) -> list[str]:
        return [
            self.python,
            str(self.entry_point),
            "--port",
            str(self.port),
            "--no-browser",
            f"--IdentityProvider.token={self.token}",
            # Checkpoints (written when a notebook is opened) into the state directory, not
            # notebooks/.ipynb_checkpoints/.
            f"--FileCheckpoints.checkpoint_dir={self.state_dir / 'checkpoints'}",
        ]

    def environment(self) -> dict[str, str]:
        config_dir = self.state_dir / "config"
        env = dict(os.environ)
        env.update(
            JUPYTER_CONFIG_DIR=str(config_dir),
            JUPYTERLAB_SETTINGS_DIR=str(config_dir / "lab" / "user-settings"),
            JUPYTERLAB_WORKSPACES_DIR=str(config_dir / "lab" / "workspaces"),
            JUPYTER_RUNTIME_DIR=str(self.runtime_dir),
        )
        return env

    def write_settings(self) -> None:
        settings_dir = self.state_dir / "config" / "lab" / "user-settings"
        for plugin_id, values in LAB_SETTINGS.items():
            package, plugin = plugin_id.split(":")
            path = settings_dir / package / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values, indent=2), encoding="utf-8")

    def start(self, timeout_s: float = SERVER_START_TIMEOUT_S) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.write_settings()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=REPO_ROOT,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() takes the kernels down too
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"JupyterLab exited with status {self.process.returncode} while starting.\n"
                    f"command: {' '.join(self.command())}\nlog:\n{self.log_tail()}"
                )
            with contextlib.suppress(OSError):
                self.api("status")
                return
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"JupyterLab did not answer on {self.base_url} within {timeout_s:.0f} s.\nlog:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM to the server's process group, SIGKILL if it is still there after a grace period."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=SERVER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=SERVER_STOP_TIMEOUT_S)
        # Kernels live in the same group; make sure none outlives the server.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def __enter__(self) -> LabServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def log_tail(self, characters: int = 4000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-characters:]
        except FileNotFoundError:
            return "(no log written)"

    # -- REST API ------------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        """A browser URL with the token as query parameter (JupyterLab then sets its login cookie)."""
        separator = "&" if "?" in path else "?"
        return f"{self.base_url}/{path.lstrip('/')}{separator}token={self.token}"

    def api(self, path: str, method: str = "GET") -> Any:
        request = urllib.request.Request(
            f"{self.base_url}/api/{path.lstrip('/')}",
            method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def session_for(self, notebook_name: str) -> dict[str, Any] | None:
        for session in self.api("sessions"):
            if session.get("path") == notebook_name:
                return session
        return None

    def kernel_sys_prefix(self, kernel_id: str, timeout_s: float = 30.0) -> str:
        """``sys.prefix`` inside a running kernel, asked through its connection file."""
        from jupyter_client import BlockingKernelClient

        client = BlockingKernelClient(connection_file=str(self.runtime_dir / f"kernel-{kernel_id}.json"))
        client.load_connection_file()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=timeout_s)
            reply = client.execute_interactive(
                "",
                silent=True,
                store_history=False,
                user_expressions={"prefix": "__import__('sys').prefix"},
                timeout=timeout_s,
            )
        finally:
            client.stop_channels()
        expression = reply["content"]["user_expressions"]["prefix"]
        if expression.get("status") != "ok":
            raise RuntimeError(f"could not read sys.prefix from kernel {kernel_id}: {expression}")
        return str(ast.literal_eval(expression["data"]["text/plain"]))

    def shut_down_session(self, session_id: str) -> None:
        with contextlib.suppress(urllib.error.URLError, OSError):
            self.api(f"sessions/{session_id}", method="DELETE")


def launch_chromium(playwright: Any, user_data_dir: Path) -> Any:
    """A Playwright persistent browser context on Debian's Chromium, with a fresh profile directory."""
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=str(CHROMIUM_PATH),
        headless=True,
        args=list(CHROMIUM_ARGS),
        viewport=VIEWPORT,
        device_scale_factor=1,
    )


# JavaScript installed in every page: a cheap canvas fingerprint, the time of the last key press,
# and a poller that reports when a canvas's pixels first differ from what they were when it started.
PAGE_SCRIPT = """
(() => {
  window.__bce = {
    lastKeyDown: null,  // time of the last key press (or dropdown choice), performance.now()
    fingerprint(canvas) {
      const width = canvas.width, height = canvas.height;
      if (!width || !height) return {width, height, hash: 0, inked: 0, pixels: 0};
      const pixels = new Uint32Array(
        canvas.getContext('2d').getImageData(0, 0, width, height).data.buffer);
      let hash = 2166136261 >>> 0, inked = 0;
      for (let i = 0; i < pixels.length; i++) {
        const value = pixels[i];
        hash = Math.imul(hash ^ value, 16777619) >>> 0;
        if (value !== 0 && value !== 0xffffffff) inked++;
      }
      return {width, height, hash, inked, pixels: pixels.length};
    },
    watch(canvas, timeoutMs) {
      const state = {done: false, changed: false, latencyMs: null, early: false};
      const before = this.fingerprint(canvas).hash;
      const started = performance.now();
      const poll = () => {
        const now = performance.now();
        if (this.fingerprint(canvas).hash !== before) {
          const key = this.lastKeyDown;
          state.changed = true;
          state.early = key === null || key < started;
          state.latencyMs = key === null ? null : now - key;
          state.done = true;
        } else if (now - started > timeoutMs) {
          state.done = true;
        } else {
          setTimeout(poll, 2);
        }
      };
      setTimeout(poll, 0);
      return state;
    },
  };
  const stamp = () => { window.__bce.lastKeyDown = performance.now(); };
  window.addEventListener('keydown', stamp, true);
  window.addEventListener('input', stamp, true);
})();
"""


@dataclass
class RedrawTiming:
    """Key-press-to-new-pixels latencies of one explorer's control, for the terminal summary."""

    notebook: str
    explorer: str
    control: str  # the control and the move, e.g. "weight ArrowRight"
    latencies_ms: list[float]


@dataclass
class ControlAction:
    """How to move one control inward: ``kind`` "key" presses ``step`` (e.g. "ArrowRight");
    "option" chooses the "next" or "previous" option of a dropdown."""

    name: str
    element: Any
    kind: str
    step: str

    def describe(self) -> str:
        return self.step if self.kind == "key" else f"{self.step} option"


@dataclass
class ControlMove:
    """What pressing an arrow key on one control (a slider, else a dropdown) did to its explorer."""

    control: str
    key: str
    latencies_ms: list[float] = field(default_factory=list)
    canvas_changed: bool = False
    readouts_before: dict[str, str] = field(default_factory=dict)
    readouts_after: dict[str, str] = field(default_factory=dict)

    @property
    def changed_readouts(self) -> list[str]:
        return [
            name
            for name, text in self.readouts_after.items()
            if self.readouts_before.get(name) != text and _parse_number(text) is not None
        ]

    def describe(self) -> str:
        return (
            f"{self.key} on {self.control!r}: canvas {'changed' if self.canvas_changed else 'unchanged'}, "
            f"numeric readouts changed: {self.changed_readouts or 'none'}"
        )


def _parse_number(text: str) -> float | None:
    cleaned = text.strip().replace("\u2212", "-").replace("+\u221e", "inf").replace("\u221e", "inf")
    try:
        return float(cleaned)
    except ValueError:
        return None


class ExplorerView:
    """One ``.bce-explorer`` element on a page."""

    def __init__(self, page: Any, locator: Any, index: int) -> None:
        self.page = page
        self.locator = locator
        self.index = index
        classes = (locator.get_attribute("class") or "").split()
        names = [c.removeprefix("bce-explorer-") for c in classes if c.startswith("bce-explorer-")]
        self.class_name = names[0] if names else "Explorer"
        self.canvas = locator.locator(".bce-canvas canvas").first

    def __repr__(self) -> str:
        return f"{self.class_name} #{self.index}"

    def has_canvas(self) -> bool:
        return self.locator.locator(".bce-canvas canvas").count() > 0

    def fingerprint(self) -> dict[str, int]:
        return self.canvas.evaluate("canvas => window.__bce.fingerprint(canvas)")

    def wait_until_drawn(self, timeout_s: float, min_inked_fraction: float = 0.01) -> dict[str, int]:
        """Wait until the figure canvas has a size and ink (non-white pixels); return its fingerprint."""
        deadline = time.monotonic() + timeout_s
        last: dict[str, int] = {}
        while time.monotonic() < deadline:
            if self.has_canvas():
                last = self.fingerprint()
                if last["pixels"] and last["inked"] >= min_inked_fraction * last["pixels"]:
                    return last
            time.sleep(0.2)
        raise AssertionError(f"{self}: no drawn ipympl canvas after {timeout_s:.0f} s (last canvas state: {last or 'none'})")

    def wait_until_stable(self, quiet_s: float = 0.4, timeout_s: float = 15.0) -> None:
        """Wait until the canvas pixels stay the same for ``quiet_s`` (pending redraws have landed)."""
        deadline = time.monotonic() + timeout_s
        previous = self.fingerprint()["hash"]
        stable_since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            current = self.fingerprint()["hash"]
            if current != previous:
                previous, stable_since = current, time.monotonic()
            elif time.monotonic() - stable_since >= quiet_s:
                return

    def readouts(self) -> dict[str, str]:
        cells = self.locator.locator(".bce-readout [data-readout]")
        return {
            cells.nth(i).get_attribute("data-readout") or str(i): cells.nth(i).inner_text().strip()
            for i in range(cells.count())
        }

    def controls_to_move(self) -> list[ControlAction]:
        """One inward move for each slider, in display order, then for each dropdown.

        A slider is moved from the keyboard: its noUiSlider handle is focused and gets ArrowRight
        (ArrowLeft at the maximum). A dropdown gets the next option chosen with Playwright's
        ``select_option`` (input and change events, as a pick from the open list): JupyterLab takes
        the arrow keys on a focused ``<select>`` in an output for its own notebook navigation
        (ArrowUp/Down move between cells, ArrowLeft/Right fold headings), so a dropdown cannot be
        moved with them. Explorers without sliders are moved through a dropdown.
        """
        sliders, dropdowns = [], []
        controls = self.locator.locator(".bce-control")
        for i in range(controls.count()):
            control = controls.nth(i)
            classes = (control.get_attribute("class") or "").split()
            names = [c.removeprefix("bce-control-") for c in classes if c.startswith("bce-control-")]
            name = names[0] if names else f"control {i}"
            handles = control.locator(".noUi-handle")
            selects = control.locator("select")
            if handles.count():
                handle = handles.first
                now = float(handle.get_attribute("aria-valuenow") or 0)
                high = float(handle.get_attribute("aria-valuemax") or 0)
                sliders.append(ControlAction(name, handle, "key", "ArrowRight" if now < high else "ArrowLeft"))
            elif selects.count():
                select = selects.first
                index, count = select.evaluate("node => [node.selectedIndex, node.options.length]")
                if count > 1:
                    dropdowns.append(ControlAction(name, select, "option", "next" if index < count - 1 else "previous"))
        return sliders + dropdowns

    def _act(self, action: ControlAction) -> None:
        if action.kind == "key":
            self.page.keyboard.press(action.step)
            return
        index, count = action.element.evaluate("node => [node.selectedIndex, node.options.length]")
        target = index + 1 if action.step == "next" else index - 1
        action.element.select_option(index=min(max(target, 0), count - 1))

    def move_control(self, action: ControlAction, presses: int = 3, timeout_s: float = 10.0) -> ControlMove:
        """Apply ``action`` ``presses`` times; time each redraw (key press or choice -> new pixels)."""
        self.wait_until_stable()
        move = ControlMove(control=action.name, key=action.describe(), readouts_before=self.readouts())
        action.element.focus()
        for _ in range(presses):
            watch = self.canvas.evaluate_handle(
                "(canvas, timeoutMs) => window.__bce.watch(canvas, timeoutMs)", int(timeout_s * 1000)
            )
            self._act(action)
            self.page.wait_for_function("state => state.done", arg=watch, timeout=(timeout_s + 5) * 1000, polling=10)
            result = watch.json_value()
            watch.dispose()
            if not result["changed"]:
                break
            move.canvas_changed = True
            if result["latencyMs"] is not None and not result["early"]:
                move.latencies_ms.append(float(result["latencyMs"]))
            self.wait_until_stable(quiet_s=0.2)
        move.readouts_after = self._settled_readouts(move.readouts_before)
        return move

    def _settled_readouts(self, before: dict[str, str], timeout_s: float = 5.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout_s
        current = self.readouts()
        while current == before and time.monotonic() < deadline:
            time.sleep(0.1)
            current = self.readouts()
        return current

    def screenshot(self, path: Path) -> None:
        self.locator.scroll_into_view_if_needed()
        self.page.mouse.move(0, 0)
        self.locator.screenshot(path=str(path), animations="disabled", caret="hide")


class NotebookPage:
    """One notebook open in its own JupyterLab workspace in a new browser page."""

    def __init__(self, context: Any, server: LabServer, notebook: Path) -> None:
        self.server = server
        self.notebook = notebook
        self.name = notebook.relative_to(NOTEBOOKS_DIR).as_posix()
        self.page = context.new_page()
        self.page.add_init_script(PAGE_SCRIPT)
        self.console_errors: list[str] = []
        self.page.on("console", lambda message: message.type == "error" and self.console_errors.append(message.text))
        self.page.on("pageerror", lambda error: self.console_errors.append(f"uncaught: {error}"))

    # -- opening and running ---------------------------------------------------------------------

    def open(self, timeout_s: float = 120.0) -> None:
        workspace = f"bce-{uuid.uuid4().hex[:8]}"
        path = f"lab/workspaces/{workspace}/tree/{urllib.parse.quote(self.name)}"
        self.page.goto(self.server.url(path), timeout=timeout_s * 1000)
        self.page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=timeout_s * 1000)
        # The kernel is ready when the server has a session for the notebook whose kernel is idle and
        # the status bar says "<kernel name> | Idle" (before that it says "No Kernel | Initializing",
        # and a Run command then would ask which kernel to start).
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.fail_on_dialog("opening")
            session = self.server.session_for(self.name)
            ready = self.page.evaluate(
                """() => Array.from(document.querySelectorAll('.jp-StatusBar-TextItem'))
                         .map(item => item.textContent.trim())
                         .some(text => / \\| Idle$/.test(text) && !text.startsWith('No Kernel'))"""
            )
            if ready and session is not None and session["kernel"].get("execution_state") == "idle":
                break
            time.sleep(0.25)
        else:
            raise AssertionError(f"{self.name}: the kernel was not connected and idle within {timeout_s:.0f} s")
        self.fail_on_dialog("opening")

    def fail_on_dialog(self, when: str) -> None:
        dialogs = self.page.locator(".jp-Dialog")
        if dialogs.count():
            text = " | ".join(t.strip().replace("\n", " / ") for t in dialogs.all_inner_texts())
            raise AssertionError(f"{self.name}: JupyterLab showed a dialog while {when}: {text}")

    def menu(self, menu: str, item: str | re.Pattern[str]) -> None:
        self.page.get_by_role("menuitem", name=menu, exact=True).click()
        label = item if isinstance(item, re.Pattern) else re.compile(f"^{re.escape(item)}$")
        self.page.locator(".lm-Menu .lm-Menu-itemLabel").filter(has_text=label).first.click()

    def clear_outputs(self) -> None:
        """Edit > Clear Outputs of All Cells, so what is checked afterwards comes from this run."""
        self.menu("Edit", "Clear Outputs of All Cells")
        self.page.wait_for_function(
            "() => document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output').length === 0",
            timeout=30_000,
        )

    def run_all_cells(self) -> None:
        """Run > Run All Cells."""
        self.menu("Run", "Run All Cells")

    def run_through(self, cell_index: int) -> None:
        """Run cells 0..cell_index: select that cell, Run > Run All Above Selected Cell, then run it."""
        self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").nth(cell_index).locator(
            ".jp-InputPrompt"
        ).click()
        if cell_index > 0:
            self.menu("Run", "Run All Above Selected Cell")
        self.menu("Run", re.compile(r"^Run Selected Cells?$"))

    def wait_until_executed(self, timeout_s: float, through_cell: int | None = None) -> None:
        """Wait until no cell is queued or running and the kernel is idle, or an error stopped the run.

        Done when every non-empty code cell (up to ``through_cell`` if given) shows an execution
        count, or when nothing is queued and some output is an error (JupyterLab then skips the
        cells below it).
        """
        self.page.wait_for_function(
            """(through) => {
                 const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
                 if (!panel) return false;
                 const indicator = panel.querySelector('.jp-Notebook-ExecutionIndicator');
                 if (!indicator || indicator.dataset.status !== 'idle') return false;
                 const cells = Array.from(panel.querySelectorAll('.jp-Notebook .jp-Cell'));
                 const prompts = cells.map(c => (c.querySelector('.jp-InputPrompt') || {}).textContent || '');
                 if (prompts.some(p => p.includes('*'))) return false;
                 const pending = cells.filter((c, i) => c.classList.contains('jp-CodeCell')
                     && (through === null || i <= through)
                     && !/\\[\\d+\\]/.test(prompts[i])
                     && ((c.querySelector('.cm-content') || {}).textContent || '').trim() !== '');
                 const failed = panel.querySelector('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]');
                 return pending.length === 0 || failed !== null;
               }""",
            arg=through_cell,
            timeout=timeout_s * 1000,
            polling=250,
        )
        self.fail_on_dialog("running the cells")

    # -- what the run left on the page -----------------------------------------------------------

    def error_outputs(self) -> list[str]:
        """Every error, traceback, stderr text or widget error shown, as ``cell N: text``."""
        return self.page.evaluate(
            """() => {
                 const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
                 const cells = Array.from(panel.querySelectorAll('.jp-Notebook .jp-Cell'));
                 const selector = [
                   '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]',
                   '.jupyter-widgets-error-widget',
                 ].join(', ');
                 const found = Array.from(panel.querySelectorAll(selector)).map(node => {
                   const cell = cells.findIndex(c => c.contains(node));
                   return `cell ${cell}: ${node.innerText.trim().slice(0, 1500)}`;
                 });
                 for (const node of panel.querySelectorAll('.jp-OutputArea-output')) {
                   if (node.innerText.includes('Error displaying widget')) {
                     found.push(`cell ${cells.findIndex(c => c.contains(node))}: ${node.innerText.trim().slice(0, 300)}`);
                   }
                 }
                 return found;
               }"""
        )

    def unexecuted_cells(self) -> list[int]:
        """Indices of non-empty code cells without an execution count."""
        return self.page.evaluate(
            """() => {
                 const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
                 const cells = Array.from(panel.querySelectorAll('.jp-Notebook .jp-Cell'));
                 return cells.map((c, i) => [c, i]).filter(([c, i]) =>
                     c.classList.contains('jp-CodeCell')
                     && !/\\[\\d+\\]/.test((c.querySelector('.jp-InputPrompt') || {}).textContent || '')
                     && ((c.querySelector('.cm-content') || {}).textContent || '').trim() !== ''
                   ).map(([c, i]) => i);
               }"""
        )

    def explorers(self, cell_index: int | None = None) -> list[ExplorerView]:
        """The explorers on the page, or those in one cell's output."""
        scope = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"
        root = self.page.locator(scope)
        if cell_index is not None:
            root = root.locator(".jp-Cell").nth(cell_index)
        found = root.locator(".bce-explorer")
        return [ExplorerView(self.page, found.nth(i), i) for i in range(found.count())]

    def close(self) -> None:
        """Shut the notebook's kernel down and close the page (unsaved changes are dropped)."""
        with contextlib.suppress(Exception):
            session = self.server.session_for(self.name)
            if session is not None:
                self.server.shut_down_session(session["id"])
        with contextlib.suppress(Exception):
            self.page.close()


@contextlib.contextmanager
def opened_notebook(context: Any, server: LabServer, notebook: Path, timeout_s: float = 120.0) -> Iterator[NotebookPage]:
    view = NotebookPage(context, server, notebook)
    try:
        view.open(timeout_s=timeout_s)
        yield view
    finally:
        view.close()


def latency_summary(latencies_ms: list[float]) -> str:
    if not latencies_ms:
        return "no redraw timed"
    ordered = sorted(latencies_ms)
    return (
        f"median {statistics.median(ordered):6.0f} ms, max {ordered[-1]:6.0f} ms "
        f"over {len(ordered)} move{'s' if len(ordered) != 1 else ''}"
    )
