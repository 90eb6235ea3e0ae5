"""Before scheduling, in a real browser: an admin reads on a draft batch's page what scheduling
would send, opens the preview of one person's e-mail and reads it inside its sandboxed frame.
Drives Debian's Chromium through Playwright, like test_browser_flow.py."""

from __future__ import annotations

import pytest

from tests.browser import ARTIFACTS, signed_in
from tests.test_notice_pages import XSS_NAME, wave
from tests.test_notice_pages import people as people  # the fixture, asked for by name

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_an_admin_reads_the_forecast_and_previews_an_e_mail_in_its_sandbox(
    live_server, transactional_db, admin_user, people, monkeypatch
):
    # Playwright's sync API keeps an event loop running in this thread; the ORM calls the test
    # makes itself would otherwise raise SynchronousOnlyOperation.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect

    from tests.factories import PartnershipFactory

    _, mailboxes = people
    PartnershipFactory(mailbox=mailboxes["rita"], device__friendly_name=XSS_NAME)
    batch = wave(people)

    with signed_in(live_server, admin_user) as seen:
        page = seen.page

        page.goto(f"{live_server.url}/batches/{batch.pk}/")
        notices = page.get_by_role("region", name="Notices")
        expect(notices).to_contain_text(
            "Scheduling queues 5 notices to 3 people at 72 h and 2 h before the start; "
            "1 person has 1 phone that is undecided: they are told IT is checking"
        )
        expect(notices).to_contain_text("A server's Exchange version")
        expect(page.get_by_role("button", name="Schedule", exact=True)).to_be_visible()
        notices.screenshot(path=ARTIFACTS / "notice-forecast.png")

        page.get_by_role("link", name="Preview the e-mail to rita@contoso.com").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(
            "Preview: Before the move, 72 h before the start"
        )
        expect(page.locator("pre.mail")).to_contain_text("Rita's iPhone")
        frame_element = page.locator("iframe.mail-html")
        assert frame_element.get_attribute("sandbox") == ""
        frame = page.frame_locator("iframe.mail-html")
        expect(frame.get_by_text("Hello Rita Repartner,")).to_be_visible()
        expect(frame.get_by_role("heading", name="Rita's iPhone")).to_be_visible()
        # The friendly name is text inside the frame, never markup.
        expect(frame.locator("script")).to_have_count(0)
        expect(frame.locator("body")).to_contain_text("<script>alert(1)</script>")

        page.screenshot(path=ARTIFACTS / "notice-preview.png", full_page=True)
        frame_element.screenshot(path=ARTIFACTS / "notice-preview-html.png")
        assert seen.failed == [] and seen.dialogs == []
