"""With 200,000 mailboxes loaded, the batch pages still run a fixed number of queries."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from devices.demo import seed_demo
from devices.models import ExchangeServer, Mailbox
from migrations_plan.services import batch_create

MAILBOXES = int(os.environ.get("SCALE_TEST_MAILBOXES", "200000"))
LARGE = min(5000, MAILBOXES // 3)  # 5,000 at full size; smaller for a quick local try


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.django_db
def test_batch_list_and_a_5000_mailbox_batch_render_in_constant_queries(client, admin_user):
    seed_demo(mailboxes=MAILBOXES, chunk_size=10_000)
    target = ExchangeServer.objects.get(name="EX2019-01")
    start = timezone.now() + timedelta(days=7)
    ids = list(
        Mailbox.objects.exclude(server=target)
        .order_by("pk")
        .values_list("pk", flat=True)[: LARGE + 8]
    )
    small = batch_create(
        name="Five",
        target_server=target,
        start_at=start,
        mailboxes=list(Mailbox.objects.filter(pk__in=ids[:5])),
        actor=None,
        allow_unsupported=True,  # seed_demo's 2003 mailboxes cannot go straight to 2019
    )
    large = batch_create(
        name="Five thousand",
        target_server=target,
        start_at=start,
        mailboxes=list(Mailbox.objects.filter(pk__in=ids[5 : LARGE + 5])),
        allow_unsupported=True,
        actor=None,
    )
    assert large.members.count() == LARGE
    client.force_login(admin_user)

    def queries(url: str) -> int:
        client.get(url)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200
        return len(captured)

    detail_small = queries(reverse("migrations_plan:batch_detail", args=[small.pk]))
    detail_large = queries(reverse("migrations_plan:batch_detail", args=[large.pk]))
    assert detail_large == detail_small
    list_two = queries(reverse("migrations_plan:batch_list"))
    batch_create(
        name="Third",
        target_server=target,
        start_at=start,
        mailboxes=list(Mailbox.objects.filter(pk__in=ids[LARGE + 5 :])),
        actor=None,
        allow_unsupported=True,
    )
    assert queries(reverse("migrations_plan:batch_list")) == list_two
    # 15, and one more for an admin: the notices that failed or are overdue
    assert queries(reverse("dashboard")) <= 16
