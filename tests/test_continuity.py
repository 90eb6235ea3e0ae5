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
        call_command("import_inventory", str(path), "--culture", "en-US", *extra, stdout=StringIO())


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
