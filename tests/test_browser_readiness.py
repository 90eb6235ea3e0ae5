"""Readiness in a real browser: an admin finds a blocking finding on the organisation page,
cannot schedule the batch it concerns, acknowledges it with a reason, then schedules."""

from __future__ import annotations

import pytest

from migrations_plan.models import BatchState, MoveBatch
from tests.browser import ARTIFACTS, signed_in
from tests.test_readiness import coexistence, draft

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_an_admin_acknowledges_a_blocking_finding_and_then_schedules(
    live_server, transactional_db, admin_user, monkeypatch
):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect

    _, cas, mailboxes = coexistence(iwa=False)
    batch = draft(cas, mailboxes)

    with signed_in(live_server, admin_user, height=1000) as seen:
        page = seen.page
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Readiness").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Readiness")
        first = page.locator("table.findings tbody tr").first
        expect(first).to_contain_text("blocking")
        expect(first).to_contain_text("X-IWA-2003")
        expect(first).to_contain_text("EX2003A")

        page.goto(f"{live_server.url}/batches/{batch.pk}/")
        panel = page.get_by_role("region", name="Readiness")
        expect(panel).to_contain_text("1 blocking finding")
        page.get_by_role("button", name="Schedule").click()
        expect(page.get_by_role("status")).to_contain_text("blocking readiness finding")

        panel = page.get_by_role("region", name="Readiness")
        panel.get_by_role("checkbox", name="Acknowledge X-IWA-2003 EX2003A").check()
        panel.get_by_label("Why the batch may go ahead").fill("IWA goes on tonight (change 4711)")
        panel.screenshot(path=ARTIFACTS / "readiness-acknowledge.png")
        panel.get_by_role("button", name="Acknowledge the checked findings").click()
        panel = page.get_by_role("region", name="Readiness")
        expect(panel).to_contain_text("Acknowledged by")
        expect(panel).to_contain_text("IWA goes on tonight (change 4711)")

        page.get_by_role("button", name="Schedule").click()
        expect(page.locator("h1 .state")).to_have_text("Scheduled")

    assert MoveBatch.objects.get(pk=batch.pk).state == BatchState.SCHEDULED
    assert seen.failed == [] and seen.dialogs == []
