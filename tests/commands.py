"""Running exsync's commands as an admin would, for the tests: exit code, stdout, stderr."""

from __future__ import annotations

from io import StringIO
from pathlib import Path

from django.core.management import call_command


def import_inventory(*files: Path, **options) -> tuple[int, str, str]:
    """manage.py import_inventory FILES [options]: (exit code, what it printed, its errors)."""
    out, err = StringIO(), StringIO()
    try:
        call_command("import_inventory", *map(str, files), stdout=out, stderr=err, **options)
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()
