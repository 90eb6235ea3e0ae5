"""What a real-browser test needs: Debian's Chromium through Playwright, a page that records
every 4xx/5xx answer and every dialog a script opened, signed in as a user."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
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
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@dataclass
class Browsing:
    page: Any
    failed: list[str] = field(default_factory=list)  # any 4xx/5xx fails the test
    dialogs: list[str] = field(default_factory=list)  # a script that ran would alert()


@contextmanager
def signed_in(
    live_server: Any, user: Any, *, password: str = "pw-for-tests", height: int = 800
) -> Iterator[Browsing]:
    """A page logged in as `user`; the caller's test asserts `failed` and `dialogs` empty.

    The test needs `monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")`: Playwright's sync
    API keeps an event loop in the thread the test's own ORM calls run in.
    """
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": height})
            page.set_default_timeout(10_000)
            seen = Browsing(page=page)
            page.on(
                "response",
                lambda r: seen.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None,
            )
            page.on("dialog", lambda d: (seen.dialogs.append(d.message), d.dismiss()))
            page.goto(f"{live_server.url}/accounts/login/")
            page.get_by_label("User name").fill(user.username)
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_role("button", name="Log out")).to_be_visible()
            yield seen
        finally:
            browser.close()
