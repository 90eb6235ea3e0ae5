"""One end-to-end run through a real browser: log in, create a batch from a CSV, watch it
being planned, read the impact preview, schedule it, remove a mailbox. Drives Debian's
Chromium through Playwright."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from migrations_plan.models import BatchMailbox, BatchState, MoveBatch
from migrations_plan.tasks import batch_plan_task
from tests.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.factories import ExchangeServerFactory, MailboxFactory, PartnershipFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_admin_creates_schedules_and_trims_a_batch_in_the_browser(
    live_server, transactional_db, admin_user, tmp_path, monkeypatch
):
    # Playwright's sync API keeps an event loop running in this thread; the ORM calls the test
    # makes itself (factories, the final checks) would otherwise raise SynchronousOnlyOperation.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect, sync_playwright

    sent = []  # plan tasks the pages queue; this test plays the worker
    monkeypatch.setattr(batch_plan_task, "delay", sent.append)

    ex2010 = ExchangeServerFactory(name="EX2010A", ex2010=True)
    ExchangeServerFactory(name="EX2016A")
    addresses = [f"user{n}@contoso.com" for n in range(3)]
    mailboxes = [MailboxFactory(server=ex2010, primary_smtp_address=a) for a in addresses]
    quarantined = PartnershipFactory(mailbox=mailboxes[0], access_state="Quarantined")
    for mailbox in mailboxes[1:]:
        PartnershipFactory(mailbox=mailbox)
    csv_path = tmp_path / "wave1.csv"
    csv_path.write_text("EmailAddress\r\n" + "".join(f"{a}\r\n" for a in addresses))
    start = (timezone.localtime() + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M")
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(10_000)
            failed = []  # any 4xx/5xx (a missing stylesheet, a server error) fails the test
            page.on(
                "response",
                lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None,
            )

            page.goto(f"{live_server.url}/accounts/login/")
            page.get_by_label("User name").fill(admin_user.username)
            page.get_by_label("Password").fill("pw-for-tests")
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_role("button", name="Log out")).to_be_visible()

            page.goto(f"{live_server.url}/batches/")
            page.get_by_role("link", name="New batch").click()
            expect(page.get_by_role("heading", name="New move batch")).to_be_visible()
            page.get_by_label("Name").fill("Wave 1")
            page.get_by_label("Target server").select_option(label="EX2016A")
            page.get_by_label("Target database").fill("DB2016-01")
            page.get_by_label("Scheduled start").fill(start)
            page.get_by_label("Notify people (hours before the start)").fill("72, 2")
            page.get_by_label("Report recipients").fill("ops@contoso.com")
            page.get_by_label("Or a New-MigrationBatch CSV").set_input_files(csv_path)
            page.get_by_role("button", name="Create draft and preview the impact").click()

            # Queued for the worker; the page reloads itself until the plan is there.
            status = page.get_by_role("status")
            expect(status).to_contain_text("Batch 'Wave 1' created as a draft")
            expect(page.get_by_role("heading", name="Wave 1")).to_contain_text("Draft")
            expect(page.locator(".plan-status")).to_contain_text("Planning… queued at")
            assert sent == [MoveBatch.objects.get().pk]
            batch_plan_task(sent[0])

            # The impact preview.
            expect(page.locator(".plan-status")).to_contain_text("Planned at")
            expect(page.get_by_role("heading", name="Impact on people and devices")).to_be_visible()
            counts = page.get_by_role("table", name="People and devices per outcome")
            blocked = counts.get_by_role("row").filter(
                has=page.get_by_role("rowheader", name="Blocked", exact=True)
            )
            expect(blocked.get_by_role("cell").nth(1)).to_have_text("1")  # people, devices, bar
            shown = [int(n) for n in counts.locator("tbody td:nth-child(3)").all_inner_texts()]
            assert sum(shown) == 3, shown
            devices = page.get_by_role("region", name="People and their phones")
            expect(devices.locator("tr.phone")).to_have_count(3)  # one per phone
            expect(
                devices.locator("tbody.person").filter(has_text="user0@contoso.com")
            ).to_contain_text(quarantined.device.device_id)
            for address in addresses:
                expect(
                    devices.get_by_role("button", name=f"Remove {address} from the batch")
                ).to_be_visible()

            page.get_by_role("button", name="Schedule", exact=True).click()
            expect(status).to_contain_text("Batch 'Wave 1' is now scheduled.")
            expect(page.locator("h1 .state")).to_have_text("Scheduled")

            member_rows = devices.locator("tbody.person")  # a person per mailbox
            expect(member_rows).to_have_count(3)
            member_rows.filter(has_text="user1@contoso.com").get_by_role(
                "button", name="Remove user1@contoso.com from the batch"
            ).click()
            expect(status).to_contain_text("Removed user1@contoso.com from the batch.")
            expect(member_rows).to_have_count(2)
            expect(member_rows.filter(has_text="user1@contoso.com")).to_have_count(0)
            expect(page.locator("h1 .state")).to_have_text("Scheduled")
            expect(
                devices.get_by_role("button", name="Remove user1@contoso.com from the batch")
            ).to_have_count(0)
            expect(devices.locator("tr.phone")).to_have_count(2)

            page.screenshot(path=ARTIFACTS / "batch-flow.png", full_page=True)
            page.set_viewport_size({"width": 1024, "height": 800})
            page.screenshot(path=ARTIFACTS / "batch-flow-1024.png", full_page=True)
            assert failed == []
        finally:
            browser.close()

    batch = MoveBatch.objects.get()
    assert batch.state == BatchState.SCHEDULED and batch.created_by == admin_user
    by_address = {
        m.mailbox.primary_smtp_address: m
        for m in BatchMailbox.objects.filter(batch=batch).select_related("mailbox")
    }
    assert sorted(by_address) == addresses
    assert by_address["user1@contoso.com"].is_active is False
    assert by_address["user1@contoso.com"].state == "removed"
    assert by_address["user0@contoso.com"].is_active and by_address["user2@contoso.com"].is_active
