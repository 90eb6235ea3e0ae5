"""The shape of problem and warning lines: FILE:LINE: column COLUMN: message."""

from devices.importers import ExportWarning, Problem
from devices.importers.problems import Findings


def test_problem_with_line_and_column_names_both():
    problem = Problem("devices.csv", 23, "LastSuccessSync", "'2/30/2019' is not a date in en-US")
    assert str(problem) == (
        "devices.csv:23: column LastSuccessSync: '2/30/2019' is not a date in en-US"
    )


def test_problem_without_column_leaves_the_column_part_out():
    problem = Problem("devices.csv", 18, None, "41 values, but the header has 44 columns")
    assert str(problem) == "devices.csv:18: 41 values, but the header has 44 columns"


def test_problem_of_a_whole_column_has_no_line():
    problem = Problem("devices.csv", None, "FirstSyncTime", "could be d/M or M/d")
    assert str(problem) == "devices.csv: column FirstSyncTime: could be d/M or M/d"


def test_file_level_problem_is_file_then_message():
    assert str(Problem("servers.csv", None, None, "is empty")) == "servers.csv: is empty"


def test_warning_has_the_same_shape():
    warning = ExportWarning("moves.csv", 5, "DisplayName", "'Bj?rn' lost letters")
    assert str(warning) == "moves.csv:5: column DisplayName: 'Bj?rn' lost letters"
    assert isinstance(warning, Problem)


def test_findings_keep_the_first_ones_in_line_order_and_count_the_rest():
    findings = Findings(file="f.csv", limit=3)
    for line in (9, 4, 7, 8, 2):
        findings.add(line, None, f"bad {line}")
    findings.add(None, None, "file level")
    shown = [str(p) for p in findings.as_list()]
    assert shown == [
        "f.csv:4: bad 4",
        "f.csv:7: bad 7",
        "f.csv:9: bad 9",
        "f.csv: and 3 more problems not shown",
    ]
    assert len(findings) == 6
