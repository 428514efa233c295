"""Debian's Chromium for the browser tests: where it is, how it is started, and a module-scoped `browser`
fixture (a pytest plugin of tests/conftest.py)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
HAVE_CHROMIUM = os.path.exists(CHROMIUM)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for a module's tests (each opens its own pages)."""
    if not HAVE_CHROMIUM:
        pytest.fail(
            "chromium is not installed: apt-get install -y chromium (`make test` installs it)", pytrace=False
        )
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()
