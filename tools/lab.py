"""Start JupyterLab on ``notebooks/``, opening the landing notebook.

This is the one place that holds JupyterLab's argument list: ``make lab`` runs it, and the
browser tests build the same command with ``lab_command(port=...)``.

- bound to 127.0.0.1 only, token authentication left on (JupyterLab prints the URL with the token);
- ``--allow-root`` only when running as root;
- ``--no-browser`` when no display is available (Linux without $DISPLAY or $WAYLAND_DISPLAY);
- no "Would you like to get notified about official Jupyter news?" toast over the first lesson, and no
  update check: ``tools/jupyter_config/labconfig/default_setting_overrides.json`` sets the defaults of
  ``@jupyterlab/apputils-extension:notification`` to ``fetchNews: "false"`` and
  ``checkForUpdates: false`` (found through ``JUPYTER_CONFIG_PATH``; a learner's own choice in
  Settings still wins, and nothing is written anywhere).

Usage::

    python tools/lab.py [--port N] [--no-browser] [other `jupyter lab` options ...]
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
LANDING_NOTEBOOK = "00_start_here.ipynb"
LOCALHOST = "127.0.0.1"
# Extra Jupyter configuration directory: its labconfig/default_setting_overrides.json changes the
# default values of JupyterLab settings for this server only.
JUPYTER_CONFIG_EXTRA = Path(__file__).resolve().parent / "jupyter_config"


def display_available() -> bool:
    """Whether a browser window can be opened: always on macOS and Windows, else needs a display."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def running_as_root() -> bool:
    return hasattr(os, "getuid") and os.getuid() == 0


def jupyter_command() -> list[str]:
    """``jupyter`` from this interpreter's environment (``.venv/bin/jupyter`` under make)."""
    script = Path(sys.executable).with_name("jupyter")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "jupyter"]


def lab_command(
    port: int | None = None,
    open_browser: bool | None = None,
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The full ``jupyter lab`` argument list.

    port: None lets JupyterLab pick (8888, or the next free port); a number means exactly
        that port (no retries), which is what tests need.
    open_browser: None decides from ``display_available()``.
    extra_args: appended as given, e.g. ``["--IdentityProvider.token=<secret>"]`` for a test
        that must know the token.
    """
    argv = [
        *jupyter_command(),
        "lab",
        f"--ServerApp.root_dir={NOTEBOOKS_DIR}",
        f"--ServerApp.ip={LOCALHOST}",
        f"--LabApp.default_url=/lab/tree/{LANDING_NOTEBOOK}",
    ]
    if port is not None:
        argv += [f"--ServerApp.port={port}", "--ServerApp.port_retries=0"]
    if open_browser is None:
        open_browser = display_available()
    if not open_browser:
        argv.append("--no-browser")
    if running_as_root():
        argv.append("--allow-root")
    argv += list(extra_args)
    return argv


def kernel_environment() -> dict[str, str]:
    """The environment for JupyterLab, with this interpreter's kernel spec searched first.

    A ``python3`` kernel spec of the user's own (``~/.local/share/jupyter/kernels``) would otherwise
    win over the project's; ``.venv/share/jupyter`` first on ``JUPYTER_PATH`` makes the lessons run
    in the environment ``make lab`` built (its spec says ``python``, which Jupyter resolves to the
    server's own interpreter). ``JUPYTER_CONFIG_EXTRA`` joins ``JUPYTER_CONFIG_PATH`` for the
    settings defaults it holds (no news toast, no update check).
    """
    env = dict(os.environ)
    own = str(Path(sys.prefix) / "share" / "jupyter")
    env["JUPYTER_PATH"] = os.pathsep.join(p for p in (own, env.get("JUPYTER_PATH", "")) if p)
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
        p for p in (str(JUPYTER_CONFIG_EXTRA), env.get("JUPYTER_CONFIG_PATH", "")) if p
    )
    return env


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Start JupyterLab on notebooks/.")
    parser.add_argument("--port", type=int, default=None, help="serve on exactly this port")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser window")
    args, extra = parser.parse_known_args(argv)
    command = lab_command(port=args.port, open_browser=False if args.no_browser else None, extra_args=extra)
    print("+", " ".join(command), flush=True)
    os.execve(command[0], command, kernel_environment())


if __name__ == "__main__":
    main()
