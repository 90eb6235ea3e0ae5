"""Small template helpers."""

from django import template

register = template.Library()


@register.filter
def get_item(mapping: dict, key: object) -> object:
    """`{{ mapping|get_item:key }}`: look a value up by a variable key."""
    return mapping.get(key) if mapping else None
