"""Readiness checks (issue 15): what around a move will break phones, found before it.

Pure Python like planner/: facts in (facts.py, filled by migrations_plan/readiness_inventory.py
from the database), findings out (findings.py). Each check has an id (eas-moves.md §3 and §4,
or HYG-* for partnership hygiene), says which facts it used, gives a result (ok, warning,
blocking, unknown) and the admin action; `unknown` names the missing fact and where to record it.
"""
