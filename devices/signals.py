"""Signals the inventory sends; move planning listens so predictions follow the inventory."""

from django.dispatch import Signal

# Sent after a (non dry-run) import committed changes; kwargs: kinds (set of export kinds).
inventory_changed = Signal()
