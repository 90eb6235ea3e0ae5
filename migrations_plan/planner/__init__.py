"""Pure planner: predicts what a mailbox move does to each phone's ActiveSync partnership.

Nothing below this package imports Django or anything outside the standard library, so the
rules can be read, tested and reused without a database (tests/planner/test_invariants.py
enforces this). Import from the modules: `from migrations_plan.planner.predict import predict`
(the package does not re-export, so the name `predict` never shadows its module).
"""
