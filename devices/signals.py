"""Signals the inventory sends; move planning listens so predictions follow the inventory."""

from django.dispatch import Signal

# Sent after a (non dry-run) import committed changes, or after an admin recorded a fact on the
# Organisation page; kwargs: kinds (the export kinds imported, or {"recorded_facts"}).
inventory_changed = Signal()

# Sent after every (non dry-run) device import committed, whether it changed anything or not:
# an export in which a phone still has not synced is news too. kwargs: import_ids.
devices_observed = Signal()
