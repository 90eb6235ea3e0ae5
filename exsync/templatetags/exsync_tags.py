"""Small template helpers."""

from django import template

register = template.Library()


@register.filter
def get_item(mapping: dict, key: object) -> object:
    """`{{ mapping|get_item:key }}`: look a value up by a variable key."""
    return mapping.get(key) if mapping else None


OUTCOME_LABELS = {
    "blocked": "Blocked",
    "repartner": "Re-partner",
    "unknown": "Unknown",
    "redirect": "Redirect",
    "full_resync": "Full resync",
    "continues": "Continues",
}


@register.filter
def outcome_label(outcome: str) -> str:
    """The outcome token (kept in data and JSON) as people read it on a page."""
    return OUTCOME_LABELS.get(outcome, outcome)


@register.filter
def plain(value: object) -> str:
    """Audit details for people: lists joined with commas instead of Python's repr."""
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


@register.filter
def question_fact(question_id: str) -> str:
    """A question id of the planner (e.g. "namespace") as the fact it asks for."""
    from migrations_plan.planner.questions import QUESTIONS

    question = QUESTIONS.get(question_id)
    return question.fact if question else question_id
