"""tools/lab.py (make lab): the argument list pins the security settings; hostile config cannot undo them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tools import lab
from tools.lab import PINNED_SETTINGS, LaunchRefused, lab_command, lab_url, option_value

SECRET = "0123456789abcdef" * 3


def pinned_in(argv: list[str]) -> dict[str, str]:
    return {name: option_value(argv, [name]) for name in PINNED_SETTINGS}


def test_every_pinned_setting_is_on_the_command_line():
    argv = lab_command(port=9999, open_browser=False)
    assert pinned_in(argv) == PINNED_SETTINGS
    assert option_value(argv, ["ServerApp.ip"]) == "127.0.0.1"
    assert option_value(argv, ["ServerApp.port"]) == "9999"
    assert "--ServerApp.port_retries=0" in argv and "--no-browser" in argv
    assert argv[argv.index("lab") - 1].endswith("jupyter") or argv[1:3] == ["-m", "jupyter"]
    # the settings the issue names, spelled as jupyter_server 2 reads them
    for expected in (
        "--ServerApp.disable_check_xsrf=False",
        "--ServerApp.allow_origin=",
        "--ServerApp.allow_remote_access=False",
    ):
        assert expected in argv


def test_a_token_is_generated_fresh_and_pinned(monkeypatch):
    monkeypatch.delenv("JUPYTER_TOKEN", raising=False)
    first = option_value(lab_command(port=9999, open_browser=False), ["IdentityProvider.token"])
    second = option_value(lab_command(port=9999, open_browser=False), ["IdentityProvider.token"])
    assert first and second and first != second and len(first) == 48
    monkeypatch.setenv("JUPYTER_TOKEN", "from-the-environment")
    assert option_value(lab_command(port=9999, open_browser=False), ["IdentityProvider.token"]) == "from-the-environment"


def test_a_given_token_is_used_once():
    argv = lab_command(port=9999, open_browser=False, extra_args=[f"--IdentityProvider.token={SECRET}", "--debug"])
    assert [a for a in argv if a.startswith("--IdentityProvider.token")] == [f"--IdentityProvider.token={SECRET}"]
    assert argv[-1] == "--debug"
    assert lab_url(argv) == f"http://127.0.0.1:9999/lab/tree/00_start_here.ipynb?token={SECRET}"
    assert option_value(lab_command(port=1, open_browser=False, token="t0k"), ["IdentityProvider.token"]) == "t0k"


@pytest.mark.parametrize("empty", [["--IdentityProvider.token="], ["--IdentityProvider.token", ""]])
def test_an_empty_token_is_refused(empty):
    with pytest.raises(LaunchRefused, match="switches authentication off"):
        lab_command(port=9999, open_browser=False, extra_args=empty)


@pytest.mark.parametrize(
    "weakening",
    [
        ["--ServerApp.disable_check_xsrf=True"],
        ["--ServerApp.allow_origin=*"],
        ["--ServerApp.allow_origin_pat", ".*"],
        ["--ServerApp.allow_remote_access=True"],
        ["--ServerApp.tornado_settings=disable_check_xsrf=True"],
        ["--ServerApp.identity_provider_class=jupyter_server.auth.identity.IdentityProvider"],
    ],
)
def test_options_that_undo_a_pinned_setting_are_refused(weakening):
    with pytest.raises(LaunchRefused, match="would override a security setting"):
        lab_command(port=9999, open_browser=False, extra_args=weakening)
    # repeating the pinned value is harmless
    name = weakening[0].lstrip("-").split("=")[0]
    lab_command(port=9999, open_browser=False, extra_args=[f"--{name}={PINNED_SETTINGS[name]}"])


@pytest.mark.parametrize("address", ["0.0.0.0", "", "192.168.1.20", "::", "example.org"])
@pytest.mark.parametrize("form", ["--ip={}", "--ServerApp.ip={}"])
def test_non_loopback_ip_needs_the_explicit_flag(address, form):
    extra = [form.format(address)]
    with pytest.raises(LaunchRefused, match="--allow-non-loopback") as info:
        lab_command(port=9999, open_browser=False, extra_args=extra)
    assert f"python tools/lab.py --allow-non-loopback --ip={address}" in str(info.value)
    argv = lab_command(port=9999, open_browser=False, extra_args=extra, allow_non_loopback=True)
    assert [a for a in argv if a.startswith(("--ip", "--ServerApp.ip"))] == [f"--ServerApp.ip={address}"]
    assert pinned_in(argv) == PINNED_SETTINGS  # the token and the other pins stay


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_ips_are_fine(address):
    argv = lab_command(port=9999, open_browser=False, extra_args=["--ip", address])
    assert option_value(argv, ["ServerApp.ip"]) == address


def test_main_refuses_with_exit_status_2(capsys):
    with pytest.raises(SystemExit) as info:
        lab.main(["--ip=0.0.0.0"])
    assert info.value.code == 2
    assert "--allow-non-loopback" in capsys.readouterr().err


def test_port_is_chosen_free_when_not_given():
    argv = lab_command(open_browser=False)
    port = int(option_value(argv, ["ServerApp.port"]))
    assert lab.FIRST_PORT <= port < lab.FIRST_PORT + lab.PORT_TRIES


PROBE = textwrap.dedent(
    """
    import json, sys
    from jupyter_server.serverapp import ServerApp
    app = ServerApp()
    app.initialize(sys.argv[1:], find_extensions=False, new_httpserver=False)
    settings = app.web_app.settings
    print(json.dumps({
        "token": app.identity_provider.token,
        "auth_enabled": app.identity_provider.auth_enabled,
        "identity_provider": type(app.identity_provider).__name__,
        "ip": app.ip,
        "disable_check_xsrf": bool(settings.get("disable_check_xsrf")),
        "xsrf_cookies": bool(settings.get("xsrf_cookies")),
        "allow_origin": settings.get("allow_origin"),
        "allow_origin_pat": settings.get("allow_origin_pat"),
        "allow_credentials": bool(settings.get("allow_credentials")),
        "allow_remote_access": bool(settings.get("allow_remote_access")),
        "local_hostnames": settings.get("local_hostnames"),
        "trust_xheaders": app.trust_xheaders,
    }, default=str))
    """
)

HOSTILE_CONFIG = textwrap.dedent(
    """
    c.IdentityProvider.token = ""
    c.ServerApp.identity_provider_class = "jupyter_server.auth.identity.IdentityProvider"
    c.ServerApp.disable_check_xsrf = True
    c.ServerApp.allow_origin = "*"
    c.ServerApp.allow_origin_pat = ".*"
    c.ServerApp.allow_credentials = True
    c.ServerApp.allow_remote_access = True
    c.ServerApp.ip = "0.0.0.0"
    c.ServerApp.local_hostnames = ["localhost", "rebind.example"]
    c.ServerApp.trust_xheaders = True
    c.ServerApp.tornado_settings = {"disable_check_xsrf": True, "allow_origin": "*", "allow_remote_access": True}
    """
)


def test_a_hostile_user_config_cannot_switch_the_protections_off(tmp_path: Path):
    """jupyter_server itself, configured by a ~/.jupyter that turns everything off, given make lab's arguments."""
    pytest.importorskip("jupyter_server")
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "jupyter_server_config.py").write_text(HOSTILE_CONFIG, encoding="utf-8")
    argv = lab_command(port=9999, open_browser=False, extra_args=[f"--IdentityProvider.token={SECRET}"])
    server_args = argv[argv.index("lab") + 1:]
    environment = {**lab.kernel_environment(), "JUPYTER_CONFIG_DIR": str(config_dir),
                   "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    environment.pop("JUPYTER_TOKEN", None)
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *server_args], capture_output=True, text=True, env=environment, timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {
        "token": SECRET,
        "auth_enabled": True,
        "identity_provider": "PasswordIdentityProvider",
        "ip": "127.0.0.1",
        "disable_check_xsrf": False,
        "xsrf_cookies": True,
        "allow_origin": "",
        "allow_origin_pat": None,
        "allow_credentials": False,
        "allow_remote_access": False,
        "local_hostnames": ["localhost"],
        "trust_xheaders": False,
    }
    # and without the pins, the same config does switch them off (the probe can tell)
    unpinned = subprocess.run(
        [sys.executable, "-c", PROBE, "--ServerApp.port=9999"], capture_output=True, text=True, env=environment,
        timeout=120, check=False,
    )
    weakened = json.loads(unpinned.stdout.strip().splitlines()[-1])
    assert weakened["token"] == "" and weakened["identity_provider"] == "IdentityProvider"
    assert weakened["disable_check_xsrf"] is True and weakened["allow_origin"] == "*"
    assert weakened["allow_remote_access"] is True and weakened["ip"] == "0.0.0.0"
