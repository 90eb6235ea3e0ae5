"""Pure Exchange knowledge shared by the importers and the planner (no Django, no app imports).

`exchange.versions` parses AdminDisplayVersion / build numbers and EAS protocol versions. Both
`devices` (the importers) and `migrations_plan.planner` depend on it; it depends on neither,
and the import-linter contracts in pyproject.toml keep it that way.
"""
