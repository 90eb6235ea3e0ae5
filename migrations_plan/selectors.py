"""Reads of move planning for pages, commands and services; no writes here."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from django.db.models import Count, Q, QuerySet

from .models import BatchMailbox, Explanation, MemberState, MoveBatch, Outcome, Prediction

OUTCOME_ORDER = [o.value for o in Outcome]  # worst first
# Members a batch page and plan_batch show: all but removed ones, so a completed or
# cancelled batch (whose members no longer hold their mailboxes) still shows its plan.
SHOWN_STATES = (MemberState.PENDING, MemberState.MOVED, MemberState.FAILED)


def outcome_summary(*, batch: MoveBatch) -> dict[str, int]:
    """Devices per outcome, every outcome present (zero when none), worst first."""
    counts = Counter(
        dict(
            Prediction.objects.filter(member__batch=batch, member__state__in=SHOWN_STATES)
            .values_list("outcome")
            .annotate(n=Count("outcome"))
            .values_list("outcome", "n")
        )
    )
    return {outcome: counts.get(outcome, 0) for outcome in OUTCOME_ORDER}


def batch_plan_document(*, batch: MoveBatch) -> dict[str, Any]:
    """The plan as `plan_batch --json` prints it; three queries whatever the batch size."""
    members = list(
        BatchMailbox.objects.filter(batch=batch, state__in=SHOWN_STATES)
        .order_by("mailbox__primary_smtp_address")
        .values_list("pk", "mailbox__primary_smtp_address")
    )
    predictions = (
        Prediction.objects.filter(member__batch=batch, member__state__in=SHOWN_STATES)
        .order_by("member_id", "partnership__device__device_id")
        .values_list("member_id", "partnership__device__device_id", "outcome", "explanation_id")
    )
    by_member: dict[int, list[tuple[str, str, int]]] = defaultdict(list)
    explanation_ids = set()
    for member_id, device_id, outcome, explanation_id in predictions.iterator(chunk_size=20_000):
        by_member[member_id].append((device_id, outcome, explanation_id))
        explanation_ids.add(explanation_id)
    explained = {
        pk: rest
        for pk, *rest in Explanation.objects.filter(pk__in=explanation_ids).values_list(
            "pk", "reasons", "possible", "depends_on", "branches", "user_text", "admin_text"
        )
    }
    summary: Counter[str] = Counter()
    items = []
    for member_id, address in members:
        devices = []
        for device_id, outcome, explanation_id in by_member.get(member_id, []):
            summary[outcome] += 1
            reasons, possible, depends_on, branches, user_text, admin_text = explained[
                explanation_id
            ]
            devices.append(
                {
                    "device_id": device_id,
                    "outcome": outcome,
                    # Outcomes reachable under the missing facts, and the facts deciding them.
                    "possible": possible or [outcome],
                    "depends_on": depends_on,
                    "branches": [{"outcome": o, "when": w} for o, w in branches],
                    "user_text": user_text,
                    "admin_text": admin_text,
                    "reasons": reasons,
                }
            )
        items.append({"mailbox": address, "devices": devices})
    return {
        "batch": batch.name,
        "target_server": batch.target_server.name,
        "target_database": batch.target_database,
        "start": batch.start_at.isoformat(),
        "state": batch.state,
        "items": items,
        "summary": {o: summary.get(o, 0) for o in OUTCOME_ORDER},
    }


def batch_list() -> QuerySet[MoveBatch]:
    """Batches with their mailbox and per-outcome device counts, in one query."""
    active = Q(members__state__in=SHOWN_STATES)
    counts = {
        f"n_{o}": Count(
            "members__predictions__outcome", filter=active & Q(members__predictions__outcome=o)
        )
        for o in OUTCOME_ORDER
    }
    return (
        MoveBatch.objects.select_related("target_server", "created_by")
        .annotate(n_mailboxes=Count("members", filter=active, distinct=True), **counts)
        .order_by("-start_at", "name")
    )


SORTS = {
    "mailbox": ("member__mailbox__primary_smtp_address", "partnership__device__device_id"),
    "outcome": ("outcome_rank", "member__mailbox__primary_smtp_address"),
    "device": ("partnership__device__device_id",),
    "model": ("partnership__device__model", "member__mailbox__primary_smtp_address"),
    "last_sync": ("-partnership__last_success_sync_at",),
}


def prediction_rows(
    *, batch: MoveBatch, outcome: str = "", query: str = "", rule: str = "", sort: str = "outcome"
):
    """The per-device table of a batch: one row per partnership, joined in one query."""
    from django.db.models import Case, IntegerField, Value, When

    rank = Case(
        *[When(outcome=o, then=Value(i)) for i, o in enumerate(OUTCOME_ORDER)],
        output_field=IntegerField(),
    )
    rows = (
        Prediction.objects.filter(member__batch=batch, member__state__in=SHOWN_STATES)
        .select_related("member__mailbox", "member__source_server", "partnership__device")
        .only(
            "outcome",
            "explanation_id",
            "member__mailbox__primary_smtp_address",
            "member__mailbox__display_name",
            "member__mailbox__id",
            "member__source_server__name",
            "member__state",
            "partnership__eas_version",
            "partnership__last_success_sync_at",
            "partnership__device__device_id",
            "partnership__device__model",
            "partnership__device__device_type",
            "partnership__device__friendly_name",
        )
        .annotate(outcome_rank=rank)
    )
    if outcome:
        rows = rows.filter(outcome=outcome)
    if query:
        rows = rows.filter(
            Q(member__mailbox__primary_smtp_address__icontains=query)
            | Q(member__mailbox__display_name__icontains=query)
            | Q(partnership__device__device_id__icontains=query)
            | Q(partnership__device__model__icontains=query)
        )
    if rule:
        ids = [
            e.pk
            for e in Explanation.objects.filter(pk__in=_batch_explanation_ids(batch))
            if rule_in(e, rule)
        ]
        rows = rows.filter(explanation_id__in=ids)
    return rows.order_by(*SORTS.get(sort, SORTS["outcome"]))


def rule_in(explanation: Explanation, rule: str) -> bool:
    return any(r["rule"].lower() == rule.lower() for r in explanation.reasons)


def _batch_explanation_ids(batch: MoveBatch) -> list[int]:
    return list(
        Prediction.objects.filter(member__batch=batch, member__state__in=SHOWN_STATES)
        .order_by()
        .values_list("explanation_id", flat=True)
        .distinct()
    )


def explanations_for(predictions) -> dict[int, Explanation]:
    ids = {p.explanation_id for p in predictions}
    return {e.pk: e for e in Explanation.objects.filter(pk__in=ids)}


def outcome_chart(summary: dict[str, int]) -> list[dict[str, Any]]:
    """Bars for the server-rendered SVG chart: no chart library, no CDN."""
    top = max(summary.values(), default=0) or 1
    return [
        {"outcome": outcome, "count": n, "width": round(100 * n / top, 1), "y": i * 30}
        for i, (outcome, n) in enumerate(summary.items())
    ]


def blocking_fixes(*, batch: MoveBatch) -> list[dict[str, Any]]:
    """What admins can do before the move to turn `blocked` into something better, with how
    many devices each fix concerns, from the distinct explanations of blocked devices."""
    counts = dict(
        Prediction.objects.filter(
            member__batch=batch, member__state__in=SHOWN_STATES, outcome=Outcome.BLOCKED
        )
        .values_list("explanation_id")
        .annotate(n=Count("outcome"))
        .values_list("explanation_id", "n")
    )
    fixes: dict[tuple[str, str], dict[str, Any]] = {}
    for explanation in Explanation.objects.filter(pk__in=list(counts)):
        for reason in explanation.reasons:
            if reason["outcome"] != Outcome.BLOCKED or reason.get("is_warning"):
                continue
            key = (reason["rule"], reason["admin_action"])
            fix = fixes.setdefault(
                key,
                {
                    "rule": reason["rule"],
                    "admin_action": reason["admin_action"],
                    "text": reason["text"],
                    "devices": 0,
                },
            )
            fix["devices"] += counts[explanation.pk]
    return sorted(fixes.values(), key=lambda f: -f["devices"])


def member_counts(*, batch: MoveBatch) -> dict[str, int]:
    return dict(
        BatchMailbox.objects.filter(batch=batch)
        .values_list("state")
        .annotate(n=Count("pk"))
        .values_list("state", "n")
    )


def member_rows(*, batch: MoveBatch) -> QuerySet[BatchMailbox]:
    return (
        BatchMailbox.objects.filter(batch=batch)
        .exclude(state="removed")
        .select_related("mailbox", "source_server")
        .annotate(devices=Count("predictions__outcome"))
        .order_by("mailbox__primary_smtp_address")
    )


# Where each kind of question is answered: a URL name and a fragment of the page.
QUESTION_PLACES = {
    "namespaces": ("devices:organisation", "#namespaces"),
    "client-profiles": ("devices:organisation", "#client-profiles"),
    "servers": ("devices:organisation", "#servers"),
    "organisation": ("devices:organisation", ""),
    "imports": ("devices:import_list", ""),
    "batch": (None, ""),
}


def open_questions(*, batch: MoveBatch) -> list[dict[str, Any]]:
    """The facts this batch's predictions are missing, ranked by how many devices each would
    decide (then by how many it concerns at all), each with where it is answered.

    Two queries whatever the batch size: predictions counted per explanation, then the
    distinct explanations (each lists the questions its reasons name).
    """
    from django.urls import NoReverseMatch, reverse

    from .planner.questions import QUESTIONS

    counts = dict(
        Prediction.objects.filter(member__batch=batch, member__state=MemberState.PENDING)
        .values_list("explanation_id")
        .annotate(n=Count("outcome"))
        .values_list("explanation_id", "n")
    )
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for explanation in Explanation.objects.filter(pk__in=list(counts)):
        n = counts[explanation.pk]
        deciding = set(explanation.depends_on)
        for reason in explanation.reasons:
            question_id = reason.get("question")
            if not question_id or question_id not in QUESTIONS:
                continue
            key = (question_id, reason.get("subject") or "")
            entry = found.get(key)
            if entry is None:
                question = QUESTIONS[question_id]
                name, fragment = QUESTION_PLACES.get(question.where, (None, ""))
                try:
                    url = (reverse(name) + fragment) if name else ""
                except NoReverseMatch:
                    url = ""
                entry = found[key] = {
                    "id": question_id,
                    "subject": key[1],
                    "fact": question.fact,
                    "how": question.how,
                    "url": url,
                    "decides": 0,
                    "devices": 0,
                    "outcomes": set(),
                    "_seen": set(),
                }
            if explanation.pk in entry["_seen"]:
                continue
            entry["_seen"].add(explanation.pk)
            entry["devices"] += n
            if question_id in deciding or (
                reason.get("outcome") == "unknown" and explanation.outcome == "unknown"
            ):
                entry["decides"] += n
                entry["outcomes"].update(explanation.possible or [explanation.outcome])
    ranked = sorted(found.values(), key=lambda e: (-e["decides"], -e["devices"], e["id"]))
    for entry in ranked:
        entry.pop("_seen")
        entry["outcomes"] = [o for o in OUTCOME_ORDER if o in entry["outcomes"]]
    return ranked


def batch_unsupported_paths(*, batch: MoveBatch) -> list:
    """Source servers of this batch's mailboxes that cannot coexist with its target."""
    from .services import unsupported_paths

    source_ids = BatchMailbox.objects.filter(batch=batch, state__in=SHOWN_STATES).values_list(
        "source_server_id", flat=True
    )
    return unsupported_paths(source_ids=list(source_ids), target=batch.target_server)
