"""Parsers for Exchange Management Shell CSV exports: stream, validate, yield typed rows (no ORM).

Use :func:`open_export`; an import reads the file once (``one_pass=True`` and
``Export.checked_rows()``); a check before anything is written reads it once for problems, and
``Export.rows()`` again for the rows. Exchange 2003 front-end IIS logs (recognised by :func:`is_iis_log`) are
read by :func:`open_iis_log` instead. The formats are described in ``shared/domain/formats.md``.
"""

from .dates import CULTURES, DateColumn, DateOrder, culture_named, parse_date, wallclock
from .export import Export, ExportChanged, ExportHasProblems, ExportRejected, open_export
from .iislog import IisLog, is_iis_log, open_iis_log, path_is_iis_log
from .kinds import KINDS, KINDS_BY_NAME, Kind
from .problems import MAX_REPORTED, ExportWarning, Problem
from .reader import CsvFile, Source
from .values import BadValue, byte_size, is_type_name, multi_valued

__all__ = [
    "CULTURES",
    "KINDS",
    "KINDS_BY_NAME",
    "MAX_REPORTED",
    "BadValue",
    "CsvFile",
    "DateColumn",
    "DateOrder",
    "Export",
    "ExportChanged",
    "ExportHasProblems",
    "ExportRejected",
    "ExportWarning",
    "IisLog",
    "Kind",
    "Problem",
    "Source",
    "byte_size",
    "culture_named",
    "is_iis_log",
    "is_type_name",
    "multi_valued",
    "open_export",
    "open_iis_log",
    "parse_date",
    "path_is_iis_log",
    "wallclock",
]
