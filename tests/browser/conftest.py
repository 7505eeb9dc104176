"""Browser tests: Playwright for Python driving Debian's Chromium against pytest-django's live server.

Select elements by role and accessible name; check each page with `assert_accessible` (axe-core).
Log a user in with `log_in(context, live_server, user)` (a session cookie, no login form needed).
"""

import os
import shutil
from collections.abc import Iterator

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.conf import settings
from django.test import Client

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make around it
# are still synchronous, so Django's async-safety check would refuse them.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERIOUS = {"serious", "critical"}
# axe rates these "moderate", but the console's issue asks for them outright: headings in order, and
# every page with one main heading and its content in landmarks.
ALWAYS_FAIL = {"heading-order", "page-has-heading-one", "landmark-one-main", "region"}
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/browser/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"Chromium is not at {CHROMIUM}: .ci/run installs Debian's chromium package")
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def new_context(browser, *, viewport: dict[str, int], **options):
    # bypass_csp lets axe-core's script run on pages that send a Content-Security-Policy.
    context = browser.new_context(viewport=viewport, bypass_csp=True, locale="en-GB", **options)
    context.set_default_timeout(10_000)
    return context


@pytest.fixture
def desktop(browser):
    context = new_context(browser, viewport=DESKTOP)
    yield context
    context.close()


@pytest.fixture
def phone(browser):
    context = new_context(browser, viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    yield context
    context.close()


def log_in(context, live_server, user) -> None:
    """Give the browser context the session of `user`, as if they had logged in."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])


def assert_accessible(page) -> None:
    """axe-core finds no serious or critical violation on the page as it is now, nor headings out of order."""
    results = Axe().run(page)
    serious = [
        v for v in results.response["violations"] if v.get("impact") in SERIOUS or v["id"] in ALWAYS_FAIL
    ]
    details = "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']} -> {[n['target'] for n in v['nodes']][:5]}"
        for v in serious
    )
    assert not serious, f"axe-core found serious problems on {page.url}:\n{details}"
