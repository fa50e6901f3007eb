"""Fixtures of the browser tests: one JupyterLab server and one headless Chromium per test module.

Without Chromium (``/usr/bin/chromium``) or Playwright the browser tests are skipped with the
command that installs what is missing. With ``BCEWEIGHTS_REQUIRE_BROWSER=1`` (``.ci/run`` sets it)
every skip in this directory is reported as a failure instead, so CI cannot pass without them.

The key-press-to-new-pixels latencies the tests measure are printed in pytest's terminal summary.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.lab_driver import (
    LabServer,
    RedrawTiming,
    chromium_unavailable_reason,
    latency_summary,
    launch_chromium,
)

REQUIRE_BROWSER_ENV = "BCEWEIGHTS_REQUIRE_BROWSER"


def browser_required() -> bool:
    return os.environ.get(REQUIRE_BROWSER_ENV, "").strip() not in ("", "0")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under BCEWEIGHTS_REQUIRE_BROWSER=1 a skipped browser test is a failed one."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and not hasattr(report, "wasxfail") and browser_required():
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"{REQUIRE_BROWSER_ENV}=1: the browser tests must run, but this one was skipped: {reason}"


_TIMINGS = pytest.StashKey[list[RedrawTiming]]()
_DURATIONS = pytest.StashKey[dict[str, float]]()


@pytest.fixture(scope="session")
def redraw_timings(pytestconfig: pytest.Config) -> list[RedrawTiming]:
    return pytestconfig.stash.setdefault(_TIMINGS, [])


@pytest.fixture(scope="session")
def notebook_durations(pytestconfig: pytest.Config) -> dict[str, float]:
    return pytestconfig.stash.setdefault(_DURATIONS, {})


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    timings = config.stash.get(_TIMINGS, [])
    durations = config.stash.get(_DURATIONS, {})
    if not timings and not durations:
        return
    terminalreporter.section("browser: key press (or dropdown choice) to changed canvas pixels, JupyterLab in headless Chromium")
    for timing in timings:
        terminalreporter.write_line(
            f"{timing.notebook:30} {timing.explorer:18} {timing.control:24} {latency_summary(timing.latencies_ms)}"
        )
    if durations:
        terminalreporter.write_line(
            "notebook open + run all + checks: "
            + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in durations.items())
            + f"; total {sum(durations.values()):.0f} s"
        )


@pytest.fixture(scope="session")
def chromium_ready() -> None:
    reason = chromium_unavailable_reason()
    if reason is not None:
        pytest.skip(f"browser tests need Chromium and Playwright: {reason}")


@pytest.fixture(scope="module")
def lab_server(chromium_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """JupyterLab started through tools/lab.py, stopped (process group killed) at the end, even on failure."""
    server = LabServer(tmp_path_factory.mktemp("jupyterlab"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(chromium_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Playwright browser context on /usr/bin/chromium with a fresh profile."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = launch_chromium(playwright, tmp_path_factory.mktemp("chromium-profile"))
        try:
            yield context
        finally:
            context.close()
