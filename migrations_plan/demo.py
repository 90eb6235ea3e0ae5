"""Sample batches for `make run`: one scheduled (its first notices are due at once, so the
Outbox fills as soon as the worker runs) and one draft to preview and schedule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from devices.models import ExchangeServer, Mailbox

from . import readiness_inventory, services
from .models import MoveBatch

REPORTS_TO = "it-ops@northwind.example"


@dataclass(frozen=True)
class DemoBatch:
    name: str
    source: str
    target: str
    mailboxes: int
    days_ahead: int
    schedule: bool


DEMO_BATCHES = (
    # 2003 -> 2007 RTM: every phone must be re-partnered (eas-moves.md M-2003-2007RTM).
    DemoBatch("Demo: 2003 to 2007 RTM", "EX2003-01", "EX2007-RTM", 40, 2, True),
    DemoBatch("Demo: 2010 to 2016", "EX2010-01", "EX2016-01", 60, 9, False),
)


def seed_demo_batches() -> list[str]:
    """Create the sample batches that do not exist yet (by name); what was created."""
    created = []
    for spec in DEMO_BATCHES:
        if MoveBatch.objects.filter(name=spec.name).exists():
            continue
        source = ExchangeServer.objects.filter(name=spec.source).first()
        target = ExchangeServer.objects.filter(name=spec.target).first()
        if source is None or target is None:
            continue
        mailboxes = list(
            Mailbox.objects.filter(server=source)
            .exclude(batch_memberships__is_active=True)
            .order_by("display_name", "pk")[: spec.mailboxes]
        )
        if not mailboxes:
            continue
        start = (timezone.now() + timedelta(days=spec.days_ahead)).replace(
            hour=22, minute=0, second=0, microsecond=0
        )
        batch = services.batch_create(
            name=spec.name,
            target_server=target,
            start_at=start,
            mailboxes=mailboxes,
            notification_emails=REPORTS_TO,
            actor=None,
            via="seed_demo_batches",
        )
        if spec.schedule:
            # The sample organisation's blocking findings are acknowledged the way an admin
            # would, so the sample batch shows both the findings and who let it go ahead.
            blocking = [f for f in readiness_inventory.batch_findings(batch) if f.is_blocking]
            if blocking:
                services.findings_acknowledge(
                    batch=batch,
                    digests=[f.digest for f in blocking],
                    note="Sample data: acknowledged by seed_demo_batches.",
                    actor=None,
                )
            services.batch_transition(batch=batch, action="schedule", actor=None)
        created.append(spec.name)
    return created
