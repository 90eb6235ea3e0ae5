"""Comparing targets in a real browser: an admin opens a draft's comparison, waits while the
worker compares (the page reloads itself), reads the table (ranges, the unsupported path, the
prerequisites with their links), picks another target with one click, and the batch page shows
it; on the new-batch form one click pre-selects a target."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from devices.models import Certificate
from migrations_plan.models import MoveBatch
from migrations_plan.services import batch_create
from migrations_plan.tasks import comparison_task
from tests.browser import ARTIFACTS, signed_in
from tests.factories import (
    ExchangeServerFactory,
    MailboxFactory,
    NamespaceFactory,
    PartnershipFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _organisation():
    """Two 2003 mailboxes with Windows Mobile phones; a 2007 RTM and a 2007 SP1 server (IWA on
    the 2003 directory recorded), and a 2016 server 2003 cannot move to. The phones use
    mail.contoso.com on the RTM server, whose certificate is recorded (so a prerequisite's
    credit rests on no missing fact)."""
    ex03 = ExchangeServerFactory(
        name="EX2003A",
        admin_display_version="Version 6.5 (Build 7638.2: Service Pack 2)",
        build="6.5.7638.2",
        generation="2003",
        site="",
        roles="",
        iwa_enabled=True,
    )
    rtm = ExchangeServerFactory(
        name="EX2007RTM",
        admin_display_version="Version 8.0 (Build 685.25)",
        build="8.0.685.25",
        generation="2007",
        roles="Mailbox, ClientAccess, HubTransport",
    )
    ExchangeServerFactory(
        name="EX2007SP1",
        admin_display_version="Version 8.1 (Build 240.6)",
        build="8.1.240.6",
        generation="2007",
        roles="Mailbox, ClientAccess, HubTransport",
    )
    ExchangeServerFactory(name="EX2016A")
    NamespaceFactory(host="mail.contoso.com", servers=[rtm])
    Certificate.objects.create(
        thumbprint="5A1B2C3D4E5F60718293A4B5C6D7E8F901234567",
        server=rtm,
        subject="CN=mail.contoso.com",
        issuer="CN=Public CA",
        not_after=timezone.now() + timedelta(days=400),
        services="IIS",
        domains="mail.contoso.com\nautodiscover.contoso.com",
        status="Valid",
        is_self_signed=False,
    )
    mailboxes = []
    for n in range(2):
        mailbox = MailboxFactory(server=ex03, primary_smtp_address=f"user{n}@contoso.com")
        PartnershipFactory(
            mailbox=mailbox,
            eas_version="",
            device__device_type="PocketPC",
            device__model="",
            device__os="",
        )
        mailboxes.append(mailbox)
    return ex03, rtm, mailboxes


def test_an_admin_compares_targets_and_picks_one_with_a_click(
    live_server, transactional_db, admin_user, monkeypatch
):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect

    sent = []  # comparisons the pages queue; this test plays the worker
    monkeypatch.setattr(comparison_task, "delay", lambda *args: sent.append(args))

    def work() -> None:
        while sent:
            comparison_task(*sent.pop(0))

    _, rtm, mailboxes = _organisation()
    batch = batch_create(
        name="Wave 2003",
        target_server=rtm,
        start_at=timezone.now() + timedelta(days=10),
        mailboxes=mailboxes,
        actor=None,
    )

    with signed_in(live_server, admin_user, height=1100) as seen:
        page = seen.page
        page.goto(f"{live_server.url}/batches/{batch.pk}/")
        page.get_by_role("link", name="Compare targets and prerequisites").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Compare targets")
        # Queued for the worker; the page reloads itself until the comparison is there.
        expect(page.locator(".comparing")).to_contain_text("Comparing 5 targets")
        assert len(sent) == 1
        work()

        table = page.locator("table.compare-targets")
        rows = table.locator("tbody tr")
        # The SP1 server first: nobody needs to act there (Sync State Upgrade).
        expect(rows.first).to_have_attribute("data-target", "EX2007SP1")
        expect(rows.first.locator("td.needing")).to_contain_text("0")
        current = table.locator("tr.current")
        expect(current).to_have_attribute("data-target", "EX2007RTM")
        expect(current).to_contain_text("current target")
        expect(table.locator("tr[data-target='EX2016A']")).to_contain_text("Unsupported path")
        expect(table.locator("tr[data-target='Exchange Online']")).to_be_visible()

        prerequisites = page.get_by_role("region", name="Prerequisites that change the answer")
        sp1 = prerequisites.locator("li[data-change='target-service-pack']")
        expect(sp1).to_contain_text("Install Exchange 2007 SP1 or later on the target")
        expect(sp1).to_contain_text("2 devices")
        expect(sp1.locator(".badge-repartner")).to_be_visible()
        expect(sp1.locator(".badge-continues")).to_be_visible()
        expect(sp1.get_by_role("link", name="the server's page (facts)")).to_have_attribute(
            "href", f"/inventory/servers/{rtm.pk}/#facts"
        )
        page.screenshot(path=ARTIFACTS / "compare-targets.png", full_page=True)

        rows.first.get_by_role("button", name="Use EX2007SP1 as the target").click()
        expect(page.get_by_role("status")).to_contain_text("now moves to EX2007SP1")
        expect(page.locator("dl.facts")).to_contain_text("EX2007SP1")

        # The new-batch form: compare for the 2003 server's mailboxes, pick with one click.
        page.goto(f"{live_server.url}/batches/new/")
        page.get_by_label("Mailboxes on server").select_option(label="EX2003A")
        page.get_by_role("button", name="Compare targets for these mailboxes").click()
        expect(page.locator(".comparing")).to_contain_text("Comparing")
        work()
        table = page.locator("table.compare-targets")
        expect(table.locator("tbody tr").first).to_have_attribute("data-target", "EX2007SP1")
        expect(page.get_by_label("Mailboxes on server")).to_have_value(str(mailboxes[0].server_id))
        table.get_by_role("button", name="Use EX2007RTM as the target").click()
        expect(page.locator(".comparing")).to_contain_text("Comparing")
        work()
        expect(page.get_by_label("Target server")).to_have_value(str(rtm.pk))
        expect(
            page.get_by_role("region", name="Prerequisites that change the answer")
        ).to_contain_text("Install Exchange 2007 SP1")

    assert MoveBatch.objects.get(pk=batch.pk).target_server.name == "EX2007SP1"
    assert MoveBatch.objects.count() == 1
    assert seen.failed == [] and seen.dialogs == []
