"""After the move, in a real browser: a helpdesk agent reads which rule was wrong on the
prediction-accuracy page, opens its wrong phones, then the batch's "After the move" panel.
Drives Debian's Chromium through Playwright, like test_browser_flow.py."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.browser import ARTIFACTS, signed_in
from tests.test_continuity_pages import CAST, NOW, XSS_NAME, moved_wave
from tests.test_continuity_pages import lab as lab  # the fixture, asked for by name

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_wrong_rule_stands_out_and_the_batch_shows_its_wrong_phones_first(
    live_server, transactional_db, helpdesk_user, lab, tmp_path, monkeypatch
):
    # Playwright's sync API keeps an event loop running in this thread; the ORM calls the test
    # makes itself would otherwise raise SynchronousOnlyOperation.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect

    batch, _ = moved_wave(
        tmp_path,
        lab,
        CAST,
        moved={"quinn": NOW - timedelta(days=3)},
        friendly={"bob": XSS_NAME},
    )

    with signed_in(live_server, helpdesk_user, height=900) as seen:
        page = seen.page

        page.get_by_role("navigation", name="Main").get_by_role("link", name="Accuracy").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Prediction accuracy")
        rules = page.get_by_role("region", name="Per rule")
        first = rules.locator("tbody tr").first
        expect(first).to_contain_text("M-2010-2013P")
        expect(first).to_contain_text("67 %")
        expect(first).to_have_class("verdict-row-wrong")
        rules.screenshot(path=ARTIFACTS / "accuracy-rules.png")

        page.get_by_role("link", name="Wrong phones of M-2010-2013P").click()
        wrong = page.get_by_role("region", name="Wrong predictions of M-2010-2013P")
        expect(wrong.locator("tbody tr")).to_have_count(2)
        expect(wrong).to_contain_text("Bob Person")
        expect(wrong).to_contain_text("Cid Person")
        expect(wrong).to_contain_text(XSS_NAME)  # as text
        expect(wrong.locator("script")).to_have_count(0)

        page.goto(f"{live_server.url}/batches/{batch.pk}/")
        panel = page.get_by_role("region", name="After the move")
        expect(panel).to_contain_text("3 wrong predictions")
        summary = panel.locator("table.continuity-summary tbody tr")
        expect(summary).to_have_count(8)
        for n in range(3):
            expect(summary.nth(n)).to_contain_text("Wrong prediction")
        phones = panel.locator("table.continuity-phones tbody tr")
        expect(phones.first).to_contain_text("Bob Person")
        expect(phones.first).to_contain_text(XSS_NAME)
        panel.screenshot(path=ARTIFACTS / "after-the-move.png")

        phones.first.get_by_role("link", name="Bob Person").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Bob Person")
        expect(page.locator(".continuity-silent").first).to_be_visible()
        assert seen.failed == [] and seen.dialogs == []
