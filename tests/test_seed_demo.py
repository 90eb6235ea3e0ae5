"""seed_demo builds a realistic sample organisation and is safe to run twice."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.db.models import Count

from devices.models import ExchangeServer, Mailbox, MobileDevice, Partnership

pytestmark = pytest.mark.django_db


def test_seed_demo_builds_every_generation_and_runs_twice_without_duplicates():
    call_command("seed_demo", mailboxes=400, chunk_size=150, stdout=StringIO())
    first = (Mailbox.objects.count(), MobileDevice.objects.count(), Partnership.objects.count())

    call_command("seed_demo", mailboxes=400, chunk_size=150, stdout=StringIO())

    assert (
        Mailbox.objects.count(),
        MobileDevice.objects.count(),
        Partnership.objects.count(),
    ) == first
    assert first[0] == 400
    builds = set(ExchangeServer.objects.values_list("build", flat=True))
    assert {
        "6.5.7638.2",
        "8.0.685.25",
        "8.1.240.6",
        "14.3.123.4",
        "15.1.2507.6",
        "15.2.1748.10",
    } <= builds
    per_mailbox = Mailbox.objects.annotate(n=Count("partnerships")).values_list("n", flat=True)
    assert max(per_mailbox) <= 4 and min(per_mailbox) == 0
    shared = MobileDevice.objects.annotate(n=Count("partnerships")).filter(n__gt=1)
    assert shared.exists(), "some phones read two mailboxes"
    thumbprints = set(
        ExchangeServer.objects.exclude(cert_thumbprint="").values_list("cert_thumbprint", flat=True)
    )
    assert len(thumbprints) >= 2, "at least one endpoint's certificate differs"


def test_seed_demo_reports_progress():
    from io import StringIO

    out = StringIO()
    call_command("seed_demo", mailboxes=30, chunk_size=10, stdout=out)
    assert out.getvalue().count("mailboxes") >= 3
    assert "Seeded 8 servers, 30 mailboxes" in out.getvalue()


def test_the_sample_batches_send_their_first_notices_at_once_and_seed_once(mailoutbox):
    from migrations_plan.models import MoveBatch, Notice, NoticeState
    from migrations_plan.notices import delivery

    call_command("seed_demo", mailboxes=600, stdout=StringIO())
    call_command("seed_demo_batches", stdout=StringIO())
    call_command("seed_demo_batches", stdout=StringIO())

    assert sorted(MoveBatch.objects.values_list("name", "state")) == [
        ("Demo: 2003 to 2007 RTM", "scheduled"),
        ("Demo: 2010 to 2016", "draft"),
    ]
    due = delivery.notices_dispatch(enqueue=lambda ids: None).enqueued
    for notice_id in due:
        delivery.notice_deliver(notice_id=notice_id)
    sent = Notice.objects.filter(state=NoticeState.SENT)
    assert sent.filter(kind="before").exists() and sent.filter(kind="report_scheduled").exists()
    assert len(mailoutbox) == sent.count()
