"""After the move: a later device export tells which phones came back (through the import)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from devices.models import PartnershipObservation
from migrations_plan import services
from migrations_plan.models import Continuity, MemberState, Notice, NoticeKind
from migrations_plan.notices import delivery
from tests.factories import ExchangeServerFactory, NamespaceFactory
from tests.test_notices import person

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)
HEADER = '"Identity","DeviceId","DeviceType","DeviceModel","FirstSyncTime","LastSuccessSync"\n'


def export_line(mailbox, device_id: str, first: datetime, last: datetime | None) -> str:
    def us(moment: datetime | None) -> str:
        return moment.strftime("%m/%d/%Y %I:%M:%S %p") if moment else ""

    identity = f"{mailbox.identity}/ExchangeActiveSyncDevices/iPhone\u00a7{device_id}"
    return f'"{identity}","{device_id}","iPhone","iPhone15C2","{us(first)}","{us(last)}"\n'


def import_devices(tmp_path, lines: list[str], *extra: str) -> None:
    """import_inventory, and what its commit sets off (the receivers: re-plans, verification)."""
    from django.test import TestCase

    path = tmp_path / f"devices-{len(list(tmp_path.iterdir()))}.csv"
    path.write_text(HEADER + "".join(lines), encoding="utf-8-sig")
    with TestCase.captureOnCommitCallbacks(execute=True):
        # The target's exports after the move are full ones (what goes missing is gone).
        full = () if "--partial" in extra else ("--full", "--confirm-stale")
        call_command(
            "import_inventory", str(path), "--culture", "en-US", *full, *extra, stdout=StringIO()
        )


@pytest.fixture
def lab():
    """Exchange 2010 to 2016 behind one namespace: every phone is predicted to continue."""
    target = ExchangeServerFactory(name="EX2016A")
    NamespaceFactory(host="mail.contoso.com", servers=[target])
    return {"source": ExchangeServerFactory(name="EX2010A", ex2010=True), "target": target}


def test_a_later_export_confirms_replaces_silences_and_loses_phones(lab, tmp_path):
    people = {n: person(lab["source"], f"{n} Person") for n in ("Ann", "Bob", "Cid", "Dee")}
    phones = {n: m.partnerships.get().device.device_id for n, m in people.items()}
    first = (timezone.now() - timedelta(days=30)).replace(microsecond=0, second=0)
    before = timezone.now().replace(microsecond=0, second=0) - timedelta(days=3)
    # The inventory as it was before the move, imported the usual way.
    import_devices(tmp_path, [export_line(m, phones[n], first, before) for n, m in people.items()])
    batch = services.batch_create(
        name="Wave 1",
        target_server=lab["target"],
        start_at=timezone.now() + timedelta(days=5),
        mailboxes=list(people.values()),
        actor=None,
    )
    batch = services.batch_transition(batch=batch, action="schedule", actor=None)
    moved_at = timezone.now().replace(microsecond=0, second=0) - timedelta(days=2)
    services.batch_mark_moves(
        batch=batch,
        outcomes=dict.fromkeys([m.pk for m in people.values()], MemberState.MOVED),
        actor=None,
        at=moved_at,
    )
    after = moved_at + timedelta(hours=5)
    # The target's export: Ann synced, Bob's partnership was re-created (same DeviceId), Cid
    # still shows the old sync, Dee is not in it at all (a full export), and Bob's... fine.
    import_devices(
        tmp_path,
        [
            export_line(people["Ann"], phones["Ann"], first, after),
            export_line(people["Bob"], phones["Bob"], after, after),
            export_line(people["Cid"], phones["Cid"], first, before),
        ],
    )

    out = StringIO()
    call_command("batch_status", "Wave 1", "--json", stdout=out)
    status = {
        m["address"]: m["devices"][0]["continuity"] for m in json.loads(out.getvalue())["mailboxes"]
    }
    assert status == {
        "ann@contoso.com": "confirmed",
        "bob@contoso.com": "replaced",
        "cid@contoso.com": "silent",
        "dee@contoso.com": "gone",
    }
    assert PartnershipObservation.objects.count() == 3
    chase = Notice.objects.get(kind=NoticeKind.CHASE)
    assert chase.recipient == "cid@contoso.com"
    assert delivery.notice_deliver(notice_id=chase.pk).state == "sent"
    assert Continuity.objects.filter(state="silent").count() == 1


def moved_batch(lab, people, *, name="Wave 1", at=None):
    """A planned, scheduled batch of `people`, all recorded as moved `at` (default 2 days ago)."""
    batch = services.batch_create(
        name=name,
        target_server=lab["target"],
        start_at=timezone.now() + timedelta(days=5),
        mailboxes=people,
        actor=None,
    )
    batch = services.batch_transition(batch=batch, action="schedule", actor=None)
    services.batch_mark_moves(
        batch=batch,
        outcomes=dict.fromkeys([m.pk for m in people], MemberState.MOVED),
        actor=None,
        at=at or timezone.now() - timedelta(days=2),
    )
    return batch


def test_a_silent_phone_that_syncs_after_the_watch_ended_is_confirmed(lab, tmp_path, settings):
    import time_machine

    from migrations_plan.continuity import continuity_refresh

    ann = person(lab["source"], "Ann Person")
    phone = ann.partnerships.get()
    first = timezone.now() - timedelta(days=60)
    moved = timezone.now() - timedelta(days=2)
    moved_batch(lab, [ann], at=moved)
    import_devices(tmp_path, [export_line(ann, phone.device.device_id, first, moved - DAY)])
    assert Continuity.objects.get().state == "silent"

    later = timezone.now() + timedelta(days=settings.CONTINUITY_WATCH_DAYS + 5)
    with time_machine.travel(later):
        import_devices(tmp_path, [export_line(ann, phone.device.device_id, first, later)])
        continuity_refresh()
    assert Continuity.objects.get().state == "confirmed"


def test_recording_one_move_does_not_watch_the_batchs_earlier_moves_again(lab):
    from devices.models import Mailbox

    ann, bob = person(lab["source"], "Ann Person"), person(lab["source"], "Bob Person")
    batch = services.batch_create(
        name="Wave 1",
        target_server=lab["target"],
        start_at=timezone.now() + timedelta(days=5),
        mailboxes=[ann, bob],
        actor=None,
    )
    batch = services.batch_transition(batch=batch, action="schedule", actor=None)
    services.batch_mark_moves(batch=batch, outcomes={ann.pk: MemberState.MOVED}, actor=None)
    Mailbox.objects.filter(pk=ann.pk).update(watch_until=timezone.now() - DAY)  # expired

    services.batch_mark_moves(batch=batch, outcomes={bob.pk: MemberState.MOVED}, actor=None)

    ann.refresh_from_db()
    bob.refresh_from_db()
    assert ann.watch_until < timezone.now() < bob.watch_until


def test_an_earlier_batchs_completed_move_request_does_not_move_the_mailbox_again(lab, tmp_path):
    from devices.models import MoveRequest

    ann = person(lab["source"], "Ann Person")
    first = moved_batch(lab, [ann], name="Wave 1", at=timezone.now() - timedelta(days=20))
    services.batch_transition(batch=first, action="complete", actor=None)
    MoveRequest.objects.create(
        mailbox=ann, status="Completed", completed_at=timezone.now() - timedelta(days=20)
    )
    second = services.batch_create(
        name="Wave 2",
        target_server=lab["source"],
        start_at=timezone.now() + timedelta(days=5),
        mailboxes=[ann],
        actor=None,
        allow_unsupported=True,
    )
    second = services.batch_transition(batch=second, action="schedule", actor=None)

    assert services.batch_apply_move_requests(batch=second, actor=None)["moved"] == 0
    assert second.members.get().state == MemberState.PENDING


def test_a_mailbox_moved_twice_gets_one_follow_up(lab, tmp_path):
    from migrations_plan.continuity import chases_queue

    ann = person(lab["source"], "Ann Person")
    first = moved_batch(lab, [ann], name="Wave 1", at=timezone.now() - timedelta(days=3))
    services.batch_transition(batch=first, action="complete", actor=None)
    second = moved_batch(lab, [ann], name="Wave 2", at=timezone.now() - timedelta(days=2))
    Continuity.objects.update(state="silent")

    chases_queue()

    assert Notice.objects.filter(kind=NoticeKind.CHASE, mailbox=ann).count() == 1
    assert second.members.get().state == MemberState.MOVED


def test_a_move_is_not_recorded_before_the_mailbox_was_planned(lab):
    ann = person(lab["source"], "Ann Person")
    batch = services.batch_create(
        name="Wave 1",
        target_server=lab["target"],
        start_at=timezone.now() + timedelta(days=5),
        mailboxes=[ann],
        actor=None,
        plan="queue",  # as the web page does: the worker has not planned it yet
    )
    batch = services.batch_transition(batch=batch, action="schedule", actor=None)

    with pytest.raises(services.BatchError, match="is being planned"):
        services.batch_mark_moves(batch=batch, outcomes={ann.pk: MemberState.MOVED}, actor=None)
    assert batch.members.get().state == MemberState.PENDING


def test_mark_moved_at_a_future_time_leaves_a_draft_batch_as_it_was(lab, tmp_path):
    from django.core.management import CommandError

    from migrations_plan.models import BatchState, MoveBatch, Notice

    ann = person(lab["source"], "Ann Person")
    services.batch_create(
        name="Wave 1",
        target_server=lab["target"],
        start_at=timezone.now() + timedelta(days=5),
        mailboxes=[ann],
        actor=None,
    )
    future = (timezone.now() + timedelta(days=1)).isoformat()

    with pytest.raises(CommandError, match="is in the future"):
        call_command("mark_moved", "Wave 1", "--at", future, stdout=StringIO())
    assert MoveBatch.objects.get().state == BatchState.DRAFT and not Notice.objects.exists()
