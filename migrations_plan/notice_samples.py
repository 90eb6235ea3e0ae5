"""Made-up but realistic values for previewing a notice template before any batch uses it.

They have the shape delivery.person_context() and reports.batch_report() give the real
templates (plain dicts and strings), so a template that renders well here renders the same way
for a real person. Nothing here reads the database.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from .models import TemplateName
from .notices.content import OUTCOME_FOR_USER, UNDECIDED_TEXT

# Which situations the editor offers for each template name: (key, label).
VARIANTS: dict[str, list[tuple[str, str]]] = {
    TemplateName.BEFORE: [
        ("action", "a phone needs setting up again, one is undecided"),
        ("short", "all phones keep syncing (the short notice)"),
        ("undecided", "only an undecided phone"),
    ],
    TemplateName.AFTER: [
        ("action", "a phone needs setting up again"),
        ("short", "all phones keep syncing"),
    ],
    TemplateName.CORRECTION: [
        ("action", "the plan changed"),
        ("cancelled", "the move is off"),
    ],
    TemplateName.CHASE: [("action", "a phone has not synced since the move")],
    TemplateName.REPORT: [
        ("scheduled", "the batch was scheduled"),
        ("started", "the batch has started"),
        ("completed", "the batch is complete"),
    ],
}


def _phone(name: str, model: str, outcome: str, **extra: Any) -> dict[str, Any]:
    undecided = outcome == "unknown"
    return {
        "name": name,
        "model": model,
        "platform": extra.pop("platform", "iOS Mail"),
        "outcome": outcome,
        "what_happens": OUTCOME_FOR_USER[outcome],
        "explanation": extra.pop("explanation", ""),
        "undecided": undecided,
        "continues": outcome == "continues",
        "steps": extra.pop("steps", []),
    }


REPARTNER_STEPS = [
    {
        "title": "Set up your mail account again",
        "lines": [
            "Open Settings → Mail → Accounts and tap the work account.",
            "Tap Delete Account, then Add Account → Microsoft Exchange.",
            "Sign in with alex.morgan@contoso.com and your usual password.",
        ],
    }
]


def person_sample(variant: str = "action") -> dict[str, Any]:
    """A person's template context (delivery.person_context's keys)."""
    repartner = _phone(
        "Alex's iPhone",
        "iPhone15C2",
        "repartner",
        explanation="The new server cannot take over this phone's sync partnership.",
        steps=REPARTNER_STEPS,
    )
    undecided = _phone("Work tablet", "SM-X710", "unknown", platform="Samsung Email")
    keeps = _phone("Pixel 8", "Pixel 8", "continues", platform="Gmail (Android)")
    phones = {
        "action": [repartner, undecided],
        "short": [keeps],
        "undecided": [undecided],
        "cancelled": [repartner],
    }.get(variant, [repartner, undecided])
    return {
        "person": {"name": "Alex Morgan", "address": "alex.morgan@contoso.com"},
        "batch": {"name": "Wave 3 – Finance"},
        "move": {
            "at": "Saturday 14 June 2025 at 20:00",
            "day": "Saturday 14 June",
            "time_zone": "Europe/Amsterdam",
        },
        "phones": phones,
        "needs_action": any(not p["continues"] for p in phones),
        "needs_steps": any(p["steps"] for p in phones),
        "undecided": sum(1 for p in phones if p["undecided"]),
        "undecided_text": UNDECIDED_TEXT,
        "short": variant == "short",
        "cancelled": variant == "cancelled",
        "helpdesk": settings.NOTICE_HELPDESK_CONTACT,
    }


STAGES = {"scheduled": "was scheduled", "started": "has started", "completed": "is complete"}


def report_sample(variant: str = "scheduled") -> dict[str, Any]:
    """A batch report's template context (reports.batch_report's keys)."""
    outcomes = [
        ("Blocked", 3, 2),
        ("Re-partner", 41, 37),
        ("Unknown", 6, 5),
        ("Redirect", 0, 0),
        ("Full resync", 12, 12),
        ("Continues", 188, 160),
    ]
    return {
        "batch": {
            "name": "Wave 3 – Finance",
            "target": "EX2019A",
            "start": "Saturday 14 June 2025 at 20:00",
            "time_zone": settings.TIME_ZONE,
            "state": {"scheduled": "Scheduled", "started": "In progress"}.get(variant, "Completed"),
        },
        "stage": STAGES.get(variant, STAGES["scheduled"]),
        "totals": {"people": 230, "people_needing_action": 54},
        "outcomes": [
            {"label": label, "devices": devices, "people": people}
            for label, devices, people in outcomes
        ],
        "blocked": [
            {
                "person": "Sam Lee",
                "address": "sam.lee@contoso.com",
                "device": "Sam's Galaxy",
                "model": "SM-S911B",
                "admin_action": "Approve the device in the quarantine before the move.",
            },
            {
                "person": "Kim Jensen",
                "address": "kim.jensen@contoso.com",
                "device": "iPad",
                "model": "iPad13,4",
                "admin_action": "Renew the certificate of mail.contoso.com on the target.",
            },
        ],
        "blocked_total": 3,
        "blocked_more": 1,
        "csv_name": "exsync-Wave-3-Finance-people-to-act.csv",
        "link": "https://exsync.contoso.com/batches/3/",
    }


def sample_context(name: str, variant: str = "") -> dict[str, Any]:
    if name == TemplateName.REPORT:
        return report_sample(variant or "scheduled")
    return person_sample(variant or "action")
