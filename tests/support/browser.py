"""A real browser for the dashboard's tests: Playwright driving Debian's Chromium (no browser download).

`browser` is module-scoped (one Chromium per test module); each test opens its own context (cookies
and storage of its own) with `browser.new_context()`. Not session-scoped: Playwright's sync API keeps an
event loop running in the process while it is started, and every later test that calls `asyncio.run`
would fail, so it is stopped when the module's tests are done. Import the fixture into a test module:
`from tests.support.browser import browser  # noqa: F401`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is not installed: `make setup` installs Debian's chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
