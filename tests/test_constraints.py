"""The database itself refuses inconsistent inventory and batch rows."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction

from migrations_plan.models import BatchMailbox, MemberState
from tests.factories import (
    BatchMailboxFactory,
    ExchangeServerFactory,
    MailboxFactory,
    MobileDeviceFactory,
    MoveBatchFactory,
    PartnershipFactory,
)

pytestmark = pytest.mark.django_db


def test_mailbox_in_active_batch_cannot_join_another_active_batch():
    mailbox = MailboxFactory()
    BatchMailboxFactory(mailbox=mailbox)
    other = MoveBatchFactory()

    # Written with a plain insert, bypassing every service: the refusal comes from the database.
    with pytest.raises(IntegrityError), transaction.atomic():
        BatchMailbox.objects.create(batch=other, mailbox=mailbox)


def test_mailbox_removed_from_a_batch_may_join_another():
    mailbox = MailboxFactory()
    BatchMailboxFactory(mailbox=mailbox, state=MemberState.REMOVED, is_active=False)

    BatchMailboxFactory(mailbox=mailbox)

    assert BatchMailbox.objects.filter(mailbox=mailbox).count() == 2


def test_mailbox_appears_once_per_batch():
    member = BatchMailboxFactory(is_active=False)
    with pytest.raises(IntegrityError), transaction.atomic():
        BatchMailbox.objects.create(batch=member.batch, mailbox=member.mailbox, is_active=False)


def test_server_names_are_unique_ignoring_case():
    ExchangeServerFactory(name="EX2016A")
    with pytest.raises(IntegrityError), transaction.atomic():
        ExchangeServerFactory(name="ex2016a")


def test_one_device_with_two_mailboxes_is_two_partnerships_of_one_device():
    device = MobileDeviceFactory()
    PartnershipFactory(device=device)
    PartnershipFactory(device=device)
    assert device.partnerships.count() == 2

    with pytest.raises(IntegrityError), transaction.atomic():
        PartnershipFactory(device=device, mailbox=device.partnerships.first().mailbox)


def test_a_device_id_is_stored_once():
    MobileDeviceFactory(device_id="ApplF17XK2QJHG7F")
    with pytest.raises(IntegrityError), transaction.atomic():
        MobileDeviceFactory(device_id="ApplF17XK2QJHG7F")


def test_batch_cannot_complete_before_it_starts():
    batch = MoveBatchFactory()
    batch.complete_by = batch.start_at - timedelta(hours=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        batch.save()


def test_mailbox_addresses_are_stored_lower_case_and_unique():
    MailboxFactory(primary_smtp_address="Kim.Akers@Contoso.com")
    with pytest.raises(IntegrityError), transaction.atomic():
        MailboxFactory(primary_smtp_address="kim.akers@contoso.com")


@pytest.mark.postgres
def test_constraints_are_real_postgresql_indexes():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = %s", ["one_active_batch_per_mailbox"]
        )
        (definition,) = cursor.fetchone()
    assert "UNIQUE" in definition and "WHERE is_active" in definition
