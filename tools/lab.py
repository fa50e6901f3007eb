"""Start JupyterLab on ``notebooks/``, opening the landing notebook.

This is the one place that holds JupyterLab's argument list: ``make lab`` runs it, and the
browser tests build the same command with ``lab_command(port=...)``.

- bound to 127.0.0.1 only; another address only with ``--allow-non-loopback`` (then anyone who can
  reach that address and holds the token can run code as you);
- the security settings pinned on the command line (:data:`PINNED_SETTINGS`), which wins over every
  config file, so a ``~/.jupyter`` (or ``/etc/jupyter``) config cannot switch them off silently: token
  authentication with a token this script generates (or ``$JUPYTER_TOKEN``, or an explicit
  ``--IdentityProvider.token=...``; an empty token is refused), XSRF protection on, no cross-origin
  access, no requests whose Host is not local, the stock identity provider; ``tornado_settings`` is
  replaced by a harmless value, because its keys override the settings above inside jupyter_server. A
  password configured in ``~/.jupyter`` still works as a second way in. Giving one of the pinned
  options on the command line yourself is refused, with the reason;
- the URL with the token printed by this script (JupyterLab prints ``?token=...`` for a token it did
  not generate), which is why it picks the port itself when none is given;
- ``--allow-root`` only when running as root;
- ``--no-browser`` when no display is available (Linux without $DISPLAY or $WAYLAND_DISPLAY);
- no "Would you like to get notified about official Jupyter news?" toast over the first lesson, and no
  update check: ``tools/jupyter_config/labconfig/default_setting_overrides.json`` sets the defaults of
  ``@jupyterlab/apputils-extension:notification`` to ``fetchNews: "false"`` and
  ``checkForUpdates: false`` (found through ``JUPYTER_CONFIG_PATH``; a learner's own choice in
  Settings still wins, and nothing is written anywhere).

Usage::

    python tools/lab.py [--port N] [--no-browser] [--allow-non-loopback --ip ADDRESS] [other `jupyter lab` options ...]
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import secrets
import socket
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

FIRST_PORT = 8888  # JupyterLab's default; the next free one is taken, as JupyterLab would
PORT_TRIES = 50

#: Settings ``make lab`` pins on the command line (``--name=value``), whatever the config files say.
PINNED_SETTINGS: dict[str, str] = {
    "ServerApp.identity_provider_class": "jupyter_server.auth.identity.PasswordIdentityProvider",
    "ServerApp.disable_check_xsrf": "False",
    "ServerApp.allow_origin": "",
    "ServerApp.allow_origin_pat": "",
    "ServerApp.allow_credentials": "False",
    "ServerApp.allow_remote_access": "False",
    "ServerApp.local_hostnames": "localhost",
    "ServerApp.trust_xheaders": "False",
    # jupyter_server lets these keys override disable_check_xsrf, allow_origin, ... above: replace the
    # whole dict by one that sets only what jupyter_server sets anyway (the value is read as a string).
    "ServerApp.tornado_settings": "xsrf_cookies=True",
}
TOKEN_OPTION = "IdentityProvider.token"
IP_OPTIONS = ("ServerApp.ip", "ip")


class LaunchRefused(ValueError):
    """An option that would weaken the pinned security settings; the message says what to do."""


def option_value(extra_args: Sequence[str], names: Sequence[str]) -> str | None:
    """The value of the last ``--name=value`` or ``--name value`` in ``extra_args`` for one of ``names``."""
    value = None
    for index, arg in enumerate(extra_args):
        for name in names:
            if arg.startswith(f"--{name}="):
                value = arg.split("=", 1)[1]
            elif arg == f"--{name}" and index + 1 < len(extra_args):
                value = extra_args[index + 1]
    return value


def without_options(extra_args: Sequence[str], names: Sequence[str]) -> list[str]:
    """``extra_args`` without any ``--name=value`` / ``--name value`` of ``names``."""
    kept: list[str] = []
    skip = False
    for arg in extra_args:
        if skip:
            skip = False
            continue
        if any(arg.startswith(f"--{name}=") for name in names):
            continue
        if arg in {f"--{name}" for name in names}:
            skip = True
            continue
        kept.append(arg)
    return kept


def is_loopback(address: str) -> bool:
    """``127.x.x.x``, ``::1`` or ``localhost``; ``0.0.0.0``, ``""`` (all interfaces) and names are not."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def check_extra_args(extra_args: Sequence[str], allow_non_loopback: bool) -> str:
    """Refuse options that undo a pinned setting; return the address to listen on."""
    for name, pinned in PINNED_SETTINGS.items():
        given = option_value(extra_args, [name])
        if given is not None and given != pinned:
            raise LaunchRefused(
                f"--{name}={given} would override a security setting that make lab pins (--{name}={pinned}), "
                "so that no config file can switch it off. Start JupyterLab yourself "
                "(.venv/bin/jupyter lab ...) if you really need it."
            )
    token = option_value(extra_args, [TOKEN_OPTION])
    if token is not None and not token:
        raise LaunchRefused(
            f"--{TOKEN_OPTION}= (empty) switches authentication off: anyone who can reach the port could run "
            f"code as you. Leave the token out (make lab generates one) or give a non-empty one."
        )
    address = option_value(extra_args, IP_OPTIONS)
    if address is None:
        return LOCALHOST
    if not is_loopback(address) and not allow_non_loopback:
        raise LaunchRefused(
            f"--ip={address} would serve JupyterLab beyond this machine (it runs code as you). "
            f"Write instead, if that is what you want (the token still protects it):\n"
            f"    python tools/lab.py --allow-non-loopback --ip={address}"
        )
    return address


def free_port(first: int = FIRST_PORT, tries: int = PORT_TRIES, host: str = LOCALHOST) -> int:
    """The first port from ``first`` that can be bound on ``host`` (what JupyterLab's retries would find)."""
    for port in range(first, first + tries):
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    raise OSError(f"no free port in {first}..{first + tries - 1} on {host}; pass --port N.")


def new_token() -> str:
    """A fresh random token (48 hex digits, as jupyter_server generates), or ``$JUPYTER_TOKEN`` if set."""
    return os.environ.get("JUPYTER_TOKEN") or secrets.token_hex(24)


def pinned_args(token: str, address: str) -> list[str]:
    """The command-line form of :data:`PINNED_SETTINGS`, the token and the address."""
    return [
        f"--ServerApp.ip={address}",
        f"--{TOKEN_OPTION}={token}",
        *(f"--{name}={value}" for name, value in PINNED_SETTINGS.items()),
    ]


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
    *,
    token: str | None = None,
    allow_non_loopback: bool = False,
) -> list[str]:
    """The full ``jupyter lab`` argument list, with :data:`PINNED_SETTINGS` pinned.

    port: None picks the first free port from 8888; a number means exactly that port (no
        retries), which is what tests need.
    open_browser: None decides from ``display_available()``.
    extra_args: appended as given, e.g. ``["--IdentityProvider.token=<secret>"]`` for a test
        that must know the token. An option that undoes a pinned setting, an empty token, or a
        non-loopback ``--ip`` without ``allow_non_loopback=True`` raises :class:`LaunchRefused`.
    token: the token; None takes the one in ``extra_args``, else ``$JUPYTER_TOKEN``, else a new one.
    """
    address = check_extra_args(extra_args, allow_non_loopback)
    given_token = option_value(extra_args, [TOKEN_OPTION])
    token = token or given_token or new_token()
    if port is None:
        port = free_port(host=LOCALHOST if address in ("", "0.0.0.0", "::") else address)
    argv = [
        *jupyter_command(),
        "lab",
        f"--ServerApp.root_dir={NOTEBOOKS_DIR}",
        f"--LabApp.default_url=/lab/tree/{LANDING_NOTEBOOK}",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        *pinned_args(token, address),
    ]
    if open_browser is None:
        open_browser = display_available()
    if not open_browser:
        argv.append("--no-browser")
    if running_as_root():
        argv.append("--allow-root")
    argv += without_options(extra_args, [TOKEN_OPTION, *IP_OPTIONS])
    return argv


def lab_url(argv: Sequence[str]) -> str:
    """The landing notebook's URL with the token, from a :func:`lab_command` list."""
    address = option_value(argv, ["ServerApp.ip"]) or LOCALHOST
    host = LOCALHOST if address in ("", "0.0.0.0") else f"[{address}]" if ":" in address else address
    port = option_value(argv, ["ServerApp.port"])
    token = option_value(argv, [TOKEN_OPTION])
    return f"http://{host}:{port}/lab/tree/{LANDING_NOTEBOOK}?token={token}"


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
    parser.add_argument(
        "--allow-non-loopback", action="store_true",
        help="allow an --ip that other machines can reach (refused otherwise)",
    )
    args, extra = parser.parse_known_args(argv)
    try:
        command = lab_command(
            port=args.port, open_browser=False if args.no_browser else None, extra_args=extra,
            allow_non_loopback=args.allow_non_loopback,
        )
    except LaunchRefused as refusal:
        parser.exit(2, f"make lab: {refusal}\n")
    token = option_value(command, [TOKEN_OPTION]) or ""
    print("+", " ".join(command).replace(token, "<token>"), flush=True)
    print(f"JupyterLab will be at (token included; JupyterLab's own log shows it as '...'):\n    {lab_url(command)}",
          flush=True)
    os.execve(command[0], command, kernel_environment())


if __name__ == "__main__":
    main()
