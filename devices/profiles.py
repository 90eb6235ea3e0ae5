"""Import profiles: an admin's column mapping for an export exsync does not recognise (issue 16).

The Imports page saves them (:func:`import_profile_save`); ``import_inventory --profile NAME``
and a re-run from the page read a file through one (:func:`import_profile_kind`).
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from .importers.community import ReportKind, profile_kind, profile_problems
from .models import ImportProfile


def import_profile_kind(name: str | None) -> ReportKind | None:
    """The kind the named profile reads a file as; None without a name.

    Raises ValueError when the profile is gone or its mapping cannot read a device.
    """
    if not name:
        return None
    profile = ImportProfile.objects.filter(name=name).first()
    if profile is None:
        raise ValueError(f"no import profile named {name!r} (deleted since the upload?)")
    return profile_kind(name=profile.name, kind=profile.kind, mapping=profile.mapping)


@transaction.atomic
def import_profile_save(
    *, name: str, kind: str, mapping: dict[str, str], header: list[str], actor: AbstractBaseUser
) -> ImportProfile:
    """Create or replace the named profile. Raises ValueError with what is wrong with it."""
    mapping = {key: column for key, column in mapping.items() if column}
    problems = profile_problems(mapping, header)
    if problems:
        raise ValueError("; ".join(problems))
    profile, _ = ImportProfile.objects.update_or_create(
        name=name,
        defaults={"kind": kind, "mapping": mapping, "header": header, "created_by": actor},
    )
    return profile
