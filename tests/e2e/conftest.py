"""Browser tests: Playwright's Python client driving Debian's Chromium, headless.

Set UPDATE_SCREENSHOTS=1 to refresh the screenshots kept in docs/screenshots/.
"""

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",  # root in CI; the page content is our own
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT_DIR = Path(settings.BASE_DIR) / "docs" / "screenshots"


def _chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), *CHROMIUM_CANDIDATES):
        if candidate and shutil.which(candidate):
            return candidate
    return None


@pytest.fixture(scope="session")
def browser():
    executable = _chromium_path()
    if executable is None:
        message = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("REQUIRE_PRODUCTION_STACK") == "1":
            pytest.fail(message)
        pytest.skip(message)
    # Playwright's sync API runs an event loop in this thread; Django's ORM calls
    # in the same test are still synchronous and safe.
    from playwright.sync_api import sync_playwright

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=executable, headless=True, args=CHROMIUM_ARGS
            )
            yield browser
            browser.close()


@pytest.fixture
def page_factory(browser, live_server):
    """New pages in fresh contexts: ``page_factory(locale="zh-CN", width=1280)``."""
    contexts = []

    def make(locale: str = "en-US", width: int = 1280, height: int = 860):
        context = browser.new_context(
            locale=locale,
            viewport={"width": width, "height": height},
            base_url=live_server.url,
        )
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def screenshot():
    """Save a screenshot to docs/screenshots/ when UPDATE_SCREENSHOTS=1."""

    def take(page, name: str, full_page: bool = True) -> None:
        if os.environ.get("UPDATE_SCREENSHOTS") == "1":
            SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
            page.screenshot(
                path=str(SCREENSHOT_DIR / f"{name}.png"), full_page=full_page
            )

    return take


def log_in(page, username: str, password: str = "bijie-demo") -> None:
    """Sign in through the login form (any page language)."""
    page.goto("/login/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(password)
    page.locator("#id_password").press("Enter")
    page.wait_for_url("**/")
