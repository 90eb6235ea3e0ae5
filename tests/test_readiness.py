"""Readiness through the product: the organisation page, the batch page's panel, and a batch
with blocking findings scheduled only after an admin acknowledged them (audited)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from devices.models import Generation
from migrations_plan import services
from migrations_plan.models import AuditEntry, BatchState, FindingAcknowledgement
from migrations_plan.readiness_inventory import batch_findings, organisation_findings
from tests.factories import (
    ExchangeServerFactory,
    MailboxFactory,
    MobileDeviceFactory,
    PartnershipFactory,
)

pytestmark = pytest.mark.django_db


def coexistence(*, iwa: bool | None = False):
    """Mailboxes on Exchange 2003 fronted by a 2007 CAS, moving to a 2007 SP1 server."""
    ex2003 = ExchangeServerFactory(
        name="EX2003A",
        generation=Generation.EX2003,
        build="6.5.7638.1",
        admin_display_version="Version 6.5 (Build 7638.2: Service Pack 2)",
        roles="",
        eas_external_url="",
        iwa_enabled=iwa,
    )
    cas = ExchangeServerFactory(
        name="EX2007CAS",
        generation=Generation.EX2007,
        build="8.1.240.6",
        admin_display_version="Version 8.1 (Build 240.6)",
        roles="ClientAccess, Mailbox",
    )
    mailboxes = []
    for n in range(2):
        mailbox = MailboxFactory(server=ex2003, primary_smtp_address=f"user{n}@contoso.com")
        PartnershipFactory(mailbox=mailbox, device=MobileDeviceFactory())
        mailboxes.append(mailbox)
    return ex2003, cas, mailboxes


def draft(target, mailboxes):
    return services.batch_create(
        name="Wave 1",
        target_server=target,
        start_at=timezone.now() + timedelta(days=7),
        mailboxes=mailboxes,
        actor=None,
    )


def test_iwa_is_checked_organisation_wide_not_only_for_batched_mailboxes(client, helpdesk_user):
    coexistence(iwa=False)  # no batch at all

    found = [f for f in organisation_findings() if f.check == "X-IWA-2003"]

    assert [(f.subject, f.result.value) for f in found] == [("EX2003A", "blocking")]
    client.force_login(helpdesk_user)
    page = client.get(reverse("migrations_plan:readiness"), {"result": "blocking"})
    assert page.status_code == 200
    assert "X-IWA-2003" in page.text and "EX2003A" in page.text
    assert "Enable Integrated Windows Authentication" in page.text


def test_a_batch_with_a_blocking_finding_is_scheduled_only_after_an_acknowledgement(
    client, admin_user
):
    _, cas, mailboxes = coexistence(iwa=False)
    batch = draft(cas, mailboxes)
    client.force_login(admin_user)

    page = client.get(reverse("migrations_plan:batch_detail", args=[batch.pk]))
    assert "1 blocking finding" in page.text and "X-IWA-2003" in page.text
    refused = client.post(
        reverse("migrations_plan:batch_action", args=[batch.pk, "schedule"]), follow=True
    )
    assert "blocking readiness finding" in refused.text
    batch.refresh_from_db()
    assert batch.state == BatchState.DRAFT

    (finding,) = [f for f in batch_findings(batch) if f.is_blocking]
    url = reverse("migrations_plan:batch_acknowledge", args=[batch.pk])
    no_reason = client.post(url, {"finding": finding.digest, "note": " "}, follow=True)
    assert "Say why" in no_reason.text
    for _ in range(2):  # a double click acknowledges once
        client.post(url, {"finding": finding.digest, "note": "IWA is enabled tonight by Bob"})
    assert FindingAcknowledgement.objects.filter(batch=batch).count() == 1
    entry = AuditEntry.objects.get(batch=batch, action="finding_acknowledged")
    assert entry.actor == admin_user and entry.detail["check"] == "X-IWA-2003"
    assert entry.detail["note"] == "IWA is enabled tonight by Bob"

    client.post(reverse("migrations_plan:batch_action", args=[batch.pk, "schedule"]))
    batch.refresh_from_db()
    assert batch.state == BatchState.SCHEDULED
    page = client.get(reverse("migrations_plan:batch_detail", args=[batch.pk]))
    assert "Acknowledged by" in page.text and "IWA is enabled tonight by Bob" in page.text


def test_fixing_the_fact_clears_the_finding_and_a_changed_finding_needs_a_new_acknowledgement():
    ex2003, cas, mailboxes = coexistence(iwa=False)
    batch = draft(cas, mailboxes)
    (finding,) = [f for f in batch_findings(batch) if f.is_blocking]
    services.findings_acknowledge(batch=batch, digests=[finding.digest], note="known", actor=None)
    # Another 2007 CAS appears in front of it: the finding says something else now.
    ExchangeServerFactory(
        name="EX2007CAS2",
        generation=Generation.EX2007,
        build="8.1.240.6",
        roles="ClientAccess",
    )
    with pytest.raises(services.BatchError, match="blocking readiness finding"):
        services.batch_transition(batch=batch, action="schedule", actor=None)

    ex2003.iwa_enabled = True  # what the server page records
    ex2003.save()
    assert not [f for f in batch_findings(batch) if f.is_blocking]
    services.batch_transition(batch=batch, action="schedule", actor=None)


def test_helpdesk_reads_the_panel_but_cannot_acknowledge(client, helpdesk_user):
    _, cas, mailboxes = coexistence(iwa=False)
    batch = draft(cas, mailboxes)
    (finding,) = [f for f in batch_findings(batch) if f.is_blocking]
    client.force_login(helpdesk_user)

    page = client.get(reverse("migrations_plan:batch_detail", args=[batch.pk]))
    assert "X-IWA-2003" in page.text and 'name="finding"' not in page.text
    answer = client.post(
        reverse("migrations_plan:batch_acknowledge", args=[batch.pk]),
        {"finding": finding.digest, "note": "me"},
    )
    assert answer.status_code == 403
    assert not FindingAcknowledgement.objects.exists()


def test_nobody_sees_readiness_without_logging_in(client):
    page = client.get(reverse("migrations_plan:readiness"))
    assert page.status_code == 302 and "login" in page["Location"]


def test_a_finding_that_is_not_blocking_now_cannot_be_acknowledged():
    _, cas, mailboxes = coexistence(iwa=True)
    batch = draft(cas, mailboxes)
    with pytest.raises(services.BatchError, match="changed since the page was shown"):
        services.findings_acknowledge(batch=batch, digests=["0" * 64], note="x", actor=None)


def test_the_readiness_page_costs_the_same_queries_for_3_or_30_servers(
    client, helpdesk_user, django_assert_max_num_queries
):
    client.force_login(helpdesk_user)

    def count(servers: int) -> int:
        for n in range(servers):
            ExchangeServerFactory(
                name=f"EX2003-{servers}-{n}",
                generation=Generation.EX2003,
                roles="",
                iwa_enabled=None,
            )
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse("migrations_plan:readiness")).status_code == 200
        return len(queries)

    assert count(3) == count(30)


def stored_probe(url: str, *, days_ago: float, issuer: str, thumbprint: str, **extra):
    from devices.models import EndpointProbe

    host = url.split("/")[2]
    values = {
        "url": url,
        "host": host,
        "probed_at": timezone.now() - timedelta(days=days_ago),
        "outcome": "ok",
        "issuer": issuer,
        "subject": f"CN={host}",
        "names": host,
        "thumbprint": thumbprint,
        "not_after": timezone.now() + timedelta(days=300),
        "trusted": True,
        "covers_host": True,
        "self_signed": False,
    }
    return EndpointProbe.objects.create(**{**values, **extra})


def test_an_issuer_change_holds_until_fixed_however_often_it_is_probed_again():
    url = "https://mail.contoso.com/Microsoft-Server-ActiveSync"
    ExchangeServerFactory(name="EX2016A", eas_external_url=url)
    stored_probe(url, days_ago=9, issuer="CN=Contoso CA", thumbprint="A" * 40)
    for days_ago in (2, 1, 0):  # the new certificate, probed three times
        stored_probe(url, days_ago=days_ago, issuer="CN=Other CA", thumbprint="B" * 40)

    (finding,) = [f for f in organisation_findings() if f.check == "X-CERT"]

    assert finding.result.value == "blocking"
    assert "issuer changed from CN=Contoso CA to CN=Other CA" in finding.message


def test_a_bad_certificate_on_a_namespace_without_servers_still_stops_scheduling():
    from tests.factories import NamespaceFactory

    _, cas, mailboxes = coexistence(iwa=True)
    NamespaceFactory(host="legacy.contoso.com")  # no server recorded behind it
    stored_probe(
        "https://legacy.contoso.com/Microsoft-Server-ActiveSync",
        days_ago=0,
        issuer="CN=Contoso CA",
        thumbprint="C" * 40,
        outcome="expired",
        not_after=timezone.now() - timedelta(days=2),
        trusted=False,
    )
    batch = draft(cas, mailboxes)

    blocking = [f for f in batch_findings(batch) if f.is_blocking]

    assert [f.check for f in blocking] == ["X-CERT"]
    with pytest.raises(services.BatchError, match="X-CERT"):
        services.batch_transition(batch=batch, action="schedule", actor=None)
