"""Signals the inventory sends; move planning listens so predictions follow the inventory."""

from django.dispatch import Signal

# Sent after a (non dry-run) import committed changes, or after an admin recorded a fact on the
# Organisation page; kwargs: kinds (the export kinds imported, or {"recorded_facts"}).
inventory_changed = Signal()
