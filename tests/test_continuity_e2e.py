"""After the move, end to end as an admin scripts it (issue 14, point 6).

Exports as Export-Csv writes them (tests/real_path.py) -> import_inventory -> create_batch with
a start in the past -> the batch scheduled -> `mark_moved --at` a past time, and one mailbox
moved by an imported Get-MoveRequestStatistics (its CompletionTimestamp is the move time) ->
a later Get-MobileDeviceStatistics export from the target -> `batch_status --json` per device,
the follow-up e-mails of silent phones, the same export imported twice, and the
prediction-accuracy page.

Imports run inside captureOnCommitCallbacks(execute=True): what their commit sets off (moves
from move requests, re-plans, the verification after a device import) runs in the test's
transaction, as the worker runs it after a real import.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta
from email.utils import parseaddr
from io import StringIO

import pytest
from django.core import mail
from django.test import TestCase
from django.utils import timezone

from devices.models import PartnershipObservation
from migrations_plan import accuracy, services
from migrations_plan.models import MoveBatch, Notice, NoticeKind, NoticeState
from tests.real_path import (
    V2010SP3,
    V2016,
    Device,
    Lab,
    Plan,
    export_csv,
    move_request_statistics,
    run,
)
from tests.real_path import Mailbox as MailboxSpec
from tests.test_continuity_pages import body_rows, cells, get, section
from tests.test_notices import send_due

pytestmark = pytest.mark.django_db

BATCH = "Wave 1"
CHASE_SUBJECT = "Your phone has not synced since your mailbox moved"


def imported(lab: Lab, **options: bool) -> dict[str, str]:
    """import_inventory of what the lab collected, and what its commit sets off."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        # Full exports, as the target's after the move are (what goes missing is gone).
        return lab.import_exports("--culture", "en-US", "--full", "--confirm-stale", **options)


def status() -> dict:
    """batch_status NAME --json, as {(address, DeviceId): device} and {address: mailbox}."""
    document = json.loads(run("batch_status", BATCH, "--json"))
    devices = {
        (m["address"], d["device_id"]): d for m in document["mailboxes"] for d in m["devices"]
    }
    return {"devices": devices, "mailboxes": {m["address"]: m for m in document["mailboxes"]}}


def at(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def chases_sent() -> dict[str, str]:
    """{recipient: body} of the follow-up e-mails sent so far."""
    sent = [m for m in mail.outbox if m.subject == CHASE_SUBJECT]
    to = [parseaddr(m.to[0])[1] for m in sent]
    assert len(set(to)) == len(sent), f"a person got two follow-ups: {to}"
    return dict(zip(to, (m.body for m in sent), strict=True))


@dataclasses.dataclass
class Scenario:
    lab: Lab
    people: dict[str, MailboxSpec]
    phone: dict[str, Device]
    ipad: Device
    plan: Plan
    new_phone: str
    now: datetime
    moved: datetime
    completed: datetime
    before: datetime
    after: datetime


def moved_and_exported(tmp_path) -> Scenario:
    """Seven people on 2010 moved to 2016 (phones predicted to continue), the target's export
    imported two days after the hand-recorded moves; Pia is still waiting."""
    now = timezone.now().replace(microsecond=0)
    moved = now - timedelta(days=3)  # mark_moved --at: past the 24 h grace
    completed = now - timedelta(days=2)  # the move request's CompletionTimestamp
    first = now - timedelta(days=60)  # FirstSyncTime of every phone before the move
    before = moved - timedelta(hours=2)  # their last sync before the move

    lab = Lab(tmp_path)
    ex2010 = lab.server("EX2010A", V2010SP3)
    ex2016 = lab.server("EX2016A", V2016)
    people = {
        alias: lab.mailbox(alias, ex2010, f"{alias.capitalize()} Person")
        for alias in ("ann", "bob", "cid", "dee", "eve", "max", "pia")
    }
    phone = {
        alias: lab.device(
            mailbox, f"Appl{alias.upper()}00000001", eas="14.1", first_sync=first, last_sync=before
        )
        for alias, mailbox in people.items()
    }
    ipad = lab.device(
        people["ann"],
        "ApplANNIPAD00002",
        device_type="iPad",
        model="iPad13C1",
        user_agent="Apple-iPad13C1/2008.115",
        eas="14.1",
        first_sync=first,
        last_sync=before,
    )
    lab.vdir(ex2016, "mail.contoso.com")
    imported(lab)
    lab.phones_use("mail.contoso.com")

    # A batch recording moves already done: create_batch warns and nobody is told before it.
    warnings = StringIO()
    plan = lab.plan(
        "EX2016A",
        *people.values(),
        name=BATCH,
        start=(now - timedelta(days=4)).isoformat(),
        stderr=warnings,
    )
    assert "is in the past" in warnings.getvalue()
    predicted = [plan.device(d.device_id)["outcome"] for d in [*phone.values(), ipad]]
    assert predicted == ["continues"] * 8
    batch = services.batch_transition(
        batch=MoveBatch.objects.get(name=BATCH), action="schedule", actor=None
    )
    assert batch.notice_counts.get("notices_queued", 0) == 0
    assert not Notice.objects.filter(kind=NoticeKind.BEFORE_MOVE).exists()

    # Five moves recorded by hand three days late; max's from the move request export.
    moved_csv = tmp_path / "moved.csv"
    moved_csv.write_bytes(
        export_csv(
            ["EmailAddress"], [[people[a].address] for a in ("ann", "bob", "cid", "dee", "eve")]
        ).encode("utf-8-sig")
    )
    out = run("mark_moved", BATCH, "--mailboxes-csv", str(moved_csv), "--at", moved.isoformat())
    assert "5 moved" in out
    lab.export(
        "moverequests.csv", move_request_statistics([(people["max"], "Completed", completed)])
    )
    assert "move_requests" in imported(lab).values()

    # The target's full export, two days later.
    after = now - timedelta(days=1)
    new_phone = "ApplBOBNEW000003"  # Bob's phone re-partnered under a new DeviceId
    changes = {
        phone["ann"]: {"last_sync": after},  # synced: confirmed
        phone["cid"]: {"first_sync": after, "last_sync": after},  # re-created: replaced
        # Synced after the hand-recorded time but before its move request completed: silent.
        phone["max"]: {"last_sync": completed - timedelta(hours=6)},
    }
    lab.devices = [dataclasses.replace(d, **changes.get(d, {})) for d in lab.devices]
    lab.devices.remove(phone["eve"])  # no longer listed: gone
    lab.device(people["bob"], new_phone, eas="16.1", first_sync=after, last_sync=after)
    assert "devices" in imported(lab).values()
    return Scenario(
        lab=lab,
        people=people,
        phone=phone,
        ipad=ipad,
        plan=plan,
        new_phone=new_phone,
        now=now,
        moved=moved,
        completed=completed,
        before=before,
        after=after,
    )


def test_after_the_move_each_phone_is_confirmed_replaced_silent_gone_or_pending(
    tmp_path, client, helpdesk_user
):
    s = moved_and_exported(tmp_path)
    lab, people, phone, ipad, new_phone = s.lab, s.people, s.phone, s.ipad, s.new_phone
    now, moved, completed, before, after = s.now, s.moved, s.completed, s.before, s.after

    # Pia's move is recorded after that export: no export since her move.
    out = run("mark_moved", BATCH, "--at", (now - timedelta(hours=2)).isoformat())
    assert "1 moved" in out

    seen = status()
    expected = {
        "ann": (phone["ann"], "confirmed", after),
        "bob": (phone["bob"], "replaced", before),
        "cid": (phone["cid"], "replaced", after),
        "dee": (phone["dee"], "silent", before),
        "eve": (phone["eve"], "gone", before),
        "max": (phone["max"], "silent", completed - timedelta(hours=6)),
        "pia": (phone["pia"], "pending", before),
    }
    got = {
        alias: (
            seen["devices"][(people[alias].address, device.device_id)]["continuity"],
            at(seen["devices"][(people[alias].address, device.device_id)]["last_success_sync_at"]),
        )
        for alias, (device, _, _) in expected.items()
    }
    assert got == {alias: (state, sync) for alias, (_, state, sync) in expected.items()}
    ann_ipad = seen["devices"][("ann@contoso.com", ipad.device_id)]
    assert (ann_ipad["continuity"], at(ann_ipad["last_success_sync_at"])) == ("silent", before)
    assert seen["devices"][("bob@contoso.com", phone["bob"].device_id)]["replaced_by"] == new_phone
    # Only predicted phones are listed: Bob's new one is the replacement, not a device of its own.
    assert ("bob@contoso.com", new_phone) not in seen["devices"]
    move_times = {a: at(m["moved_at"]) for a, m in seen["mailboxes"].items()}
    assert move_times == {
        **{people[a].address: moved for a in ("ann", "bob", "cid", "dee", "eve")},
        "max@contoso.com": completed,
        "pia@contoso.com": now - timedelta(hours=2),
    }
    assert {m["move"] for m in seen["mailboxes"].values()} == {"moved"}

    # One follow-up per person with a silent phone, naming only the silent ones.
    chases = Notice.objects.filter(kind=NoticeKind.CHASE)
    assert sorted(chases.values_list("recipient", flat=True)) == [
        "ann@contoso.com",
        "dee@contoso.com",
        "max@contoso.com",
    ]
    send_due()
    assert set(chases.values_list("state", flat=True)) == {NoticeState.SENT}
    bodies = chases_sent()
    assert sorted(bodies) == ["ann@contoso.com", "dee@contoso.com", "max@contoso.com"]
    assert "iPad13C1" in bodies["ann@contoso.com"]
    assert "iPhone15C2" not in bodies["ann@contoso.com"]  # her iPhone synced again
    assert "iPhone15C2" in bodies["dee@contoso.com"]

    # The same export imported again: nothing changes, nobody is chased twice.
    observations = PartnershipObservation.objects.count()
    assert observations == 7  # ann 2, bob 2, cid, dee, max: watched when it was imported
    assert "devices" in imported(lab, devices_again=True).values()
    # Each import keeps what it saw: now Pia's phone as well.
    assert PartnershipObservation.objects.count() == observations + 8
    again = status()
    assert {
        k: (d["continuity"], d["last_success_sync_at"]) for k, d in again["devices"].items()
    } == {k: (d["continuity"], d["last_success_sync_at"]) for k, d in seen["devices"].items()}
    assert chases.count() == 3
    send_due()
    assert sorted(chases_sent()) == ["ann@contoso.com", "dee@contoso.com", "max@contoso.com"]
    assert not Notice.objects.filter(kind=NoticeKind.BEFORE_MOVE).exists()

    # The accuracy page: the rule that predicted "continues" for all eight phones, wrong for
    # five (Ann's iPad, Dee and Max silent; Bob and Cid re-partnered), right for Ann's iPhone;
    # Eve's (gone) has no verdict, Pia's (pending) none yet.
    decided_by = [s.plan.device(d.device_id) for d in [*phone.values(), ipad]]
    (rule,) = {r for d in decided_by for r in accuracy.deciding_rules(d["reasons"], d["outcome"])}
    client.force_login(helpdesk_user)
    table = section(get(client, "migrations_plan:accuracy"), "rules")
    rows = {cells(r)[0]: cells(r) for r in body_rows(table)}
    # phones, decided, as predicted, wrong, not re-partnered yet, wrong share
    assert rows[rule][2:] == ["8", "7", "1", "⚠ 5", "0", "83 %"]
    wrong = section(get(client, "migrations_plan:accuracy", rule=rule), "wrong")
    listed = sorted((cells(r)[0].split(" ")[0], cells(r)[4]) for r in body_rows(wrong))
    assert listed == [
        ("Ann", "silent"),
        ("Bob", "replaced"),
        ("Cid", "replaced"),
        ("Dee", "silent"),
        ("Max", "silent"),
    ]


def test_the_replan_an_import_queues_keeps_the_gone_phone_in_batch_status(tmp_path):
    """The full export marks Eve's phone stale and queues a re-plan; the worker's plan keeps
    what moved members were moved with (fixed in 7697346: it used to delete the prediction,
    and batch_status lists devices from predictions)."""
    s = moved_and_exported(tmp_path)
    batch = MoveBatch.objects.get(name=BATCH)
    assert batch.plan_state == "queued"  # the device import asked for a re-plan
    services.batch_plan_run(batch_id=batch.pk)  # what the worker then does

    device = status()["devices"].get((s.people["eve"].address, s.phone["eve"].device_id))
    assert device is not None and device["continuity"] == "gone"


def test_the_follow_up_says_when_the_mailbox_moved(tmp_path):
    s = moved_and_exported(tmp_path)
    send_due()

    completed = timezone.localtime(s.completed)  # no zone recorded: TIME_ZONE
    said = f"{completed:%A} {completed.day} {completed:%B %Y} at {completed:%H:%M}"
    bodies = chases_sent()
    if s.people["max"].address not in bodies:
        pytest.fail(f"Max got no follow-up: {sorted(bodies)}")
    assert said in bodies[s.people["max"].address]
