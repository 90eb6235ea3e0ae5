"""IIS W3C logs of an Exchange 2003 front end: recognised, read as a stream, grouped per device."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any

import pytest

from devices.importers import ExportHasProblems, IisLog, is_iis_log, open_iis_log

HEADER = (
    "#Software: Microsoft Internet Information Services 6.0\r\n"
    "#Version: 1.0\r\n"
    "#Date: 2009-04-17 00:00:04\r\n"
    "#Fields: date time s-sitename s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username "
    "c-ip cs(User-Agent) sc-status sc-substatus sc-win32-status\r\n"
)
# The example line of formats.md §3.
EXAMPLE = (
    "2009-04-17 07:14:03 W3SVC1 10.1.0.25 POST /Microsoft-Server-ActiveSync "
    "User=kakers&DeviceId=6F24CAD599A5BF1A690246B8C68FAE8D&DeviceType=PocketPC&Cmd=Sync"
    "&Log=V2TEmSSC:0A0C0D0FS:2A0C0D0SP:1C1I180S200R 443 CONTOSO\\kakers 192.0.2.17 "
    "MSFT-PPC/5.2.5082 200 0 0\r\n"
)
DEVICE = "6F24CAD599A5BF1A690246B8C68FAE8D"


def request(
    time: str,
    query: str,
    *,
    agent: str = "MSFT-PPC/5.2.5082",
    status: str = "200",
    stem: str = "/Microsoft-Server-ActiveSync",
    method: str = "POST",
    date: str = "2009-04-17",
) -> str:
    """One record under HEADER's #Fields line."""
    return (
        f"{date} {time} W3SVC1 10.1.0.25 {method} {stem} {query} 443 CONTOSO\\kakers "
        f"192.0.2.17 {agent} {status} 0 0\r\n"
    )


def sync(user: str = "kakers", device: str = DEVICE, kind: str = "PocketPC") -> str:
    return f"User={user}&DeviceId={device}&DeviceType={kind}&Cmd=Sync&Log=V2"


def read(text: str | bytes, name: str = "ex090417.log", **options: Any) -> IisLog:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return open_iis_log(io.BytesIO(data), filename=name, **options)


def rows(log: IisLog) -> list[tuple[int, dict[str, Any]]]:
    assert log.ok, [str(p) for p in log.problems]
    return list(log.rows())


def at(hms: str, day: int = 17) -> datetime:
    return datetime.fromisoformat(f"2009-04-{day:02d}T{hms}").replace(tzinfo=UTC)


def test_the_example_line_of_formats_md_is_one_pocketpc_of_kakers():
    [(line, row)] = rows(read(HEADER + EXAMPLE))

    assert line == 5
    assert row == {
        "user": "kakers",
        "user_key": "kakers",
        "device_id": DEVICE,
        "device_type": "PocketPC",
        "user_agent": "MSFT-PPC/5.2.5082",
        "first_seen": at("07:14:03"),
        "last_success": at("07:14:03"),
        "last_attempt": at("07:14:03"),
    }


def test_requests_of_one_device_give_first_seen_last_success_and_last_attempt():
    log = read(
        HEADER
        + EXAMPLE
        + request("09:00:00", sync().replace("Cmd=Sync", "Cmd=Ping"))
        + request("10:30:00", sync(), status="401")
        + request("11:00:00", sync(), status="500")
    )

    [(line, row)] = rows(log)

    assert line == 5, "the first line the device appears on"
    assert (row["first_seen"], row["last_success"], row["last_attempt"]) == (
        at("07:14:03"),
        at("09:00:00"),
        at("11:00:00"),
    )
    assert log.requests == {"eas": 4, "other": 0, "without_device": 0, "base64": 0}


def test_a_domain_in_user_is_dropped_and_the_same_account_is_one_device():
    log = read(
        HEADER
        + request("07:00:00", sync(user="CONTOSO%5CKAkers"))
        + request("08:00:00", sync(user="kakers"))
    )

    [(_, row)] = rows(log)

    assert row["user"] == "CONTOSO\\KAkers" and row["user_key"] == "kakers"
    assert (row["first_seen"], row["last_attempt"]) == (at("07:00:00"), at("08:00:00"))


def test_a_fields_line_in_the_middle_of_the_file_changes_the_columns():
    restarted = (
        "#Software: Microsoft Internet Information Services 6.0\r\n"
        "#Version: 1.0\r\n"
        "#Date: 2009-04-17 12:00:00\r\n"
        "#Fields: date time cs-uri-query cs-uri-stem cs(User-Agent) sc-status\r\n"
        f"2009-04-17 12:05:00 {sync()} /Microsoft-Server-ActiveSync MSFT-PPC/5.2.5083 200\r\n"
    )

    [(_, row)] = rows(read(HEADER + EXAMPLE + restarted))

    assert row["last_attempt"] == at("12:05:00")
    assert row["user_agent"] == "MSFT-PPC/5.2.5083", "from the latest request"


def test_a_dash_is_an_empty_value():
    log = read(
        HEADER
        + request("07:00:00", "-", method="OPTIONS")  # the probe before the first sync
        + request("07:00:01", sync(), agent="-")
    )

    [(_, row)] = rows(log)

    assert row["user_agent"] == ""
    assert log.requests["without_device"] == 1


def test_plus_signs_in_a_user_agent_are_spaces():
    agent = "Mozilla/4.0+(compatible;+MSIE+6.0;+Windows+CE;+IEMobile+7.11)"

    [(_, row)] = rows(read(HEADER + request("07:00:00", sync(kind="SmartPhone"), agent=agent)))

    assert row["user_agent"] == "Mozilla/4.0 (compatible; MSIE 6.0; Windows CE; IEMobile 7.11)"
    assert row["device_type"] == "SmartPhone"


def test_requests_to_other_paths_are_ignored_and_the_path_matches_in_any_case():
    log = read(
        HEADER
        + request("07:00:00", "-", stem="/exchange/kakers/Inbox/", method="GET")
        + request("07:00:01", "Cmd=logon", stem="/exchweb/bin/auth/owaauth.dll")
        + request("07:00:02", sync(), stem="/microsoft-server-activesync")
    )

    assert len(rows(log)) == 1
    assert log.requests == {"eas": 1, "other": 2, "without_device": 0, "base64": 0}
    assert log.row_count == 3


def test_a_truncated_last_line_is_a_problem_on_its_line():
    log = read(HEADER + EXAMPLE + "2009-04-17 07:20:00 W3SVC1 10.1.0.25 POST /Microsoft-Ser")

    assert [str(p) for p in log.problems] == [
        "ex090417.log:6: 6 values, but the #Fields line (line 4) names 14 fields; the last "
        "line ends without a line break: the log was cut off (copied while IIS was still "
        "writing it?)"
    ]
    with pytest.raises(ExportHasProblems):
        list(log.rows())


def test_a_complete_last_line_without_a_line_break_is_read():
    assert len(rows(read(HEADER + EXAMPLE.rstrip("\r\n")))) == 1


def test_every_problem_names_its_line_and_nothing_is_handed_out():
    log = read(
        "#Software: Microsoft Internet Information Services 6.0\r\n"
        + EXAMPLE  # before any #Fields line
        + HEADER
        + request("07:61:00", sync())
        + "2009-04-17 07:00:00 W3SVC1\r\n"
        + "#Fields: date time cs-method cs-uri-stem\r\n"
        + "2009-04-17 07:00:00 POST /Microsoft-Server-ActiveSync\r\n"
    )

    assert [str(p) for p in log.problems] == [
        "ex090417.log:2: a log record before any #Fields line; expected the IIS header "
        "(#Software, #Version, #Date, #Fields) first",
        "ex090417.log:7: column time: '2009-04-17 07:61:00' is not a time like "
        "2009-04-17 07:14:03 (date and time in UTC)",
        "ex090417.log:8: 3 values, but the #Fields line (line 6) names 14 fields",
        "ex090417.log:9: the #Fields line has no cs-uri-query: exsync cannot tell ActiveSync "
        "requests and their devices without them; turn on Date, Time, URI Stem and URI Query "
        "in the web site's logging properties (W3C extended log file format)",
    ]
    assert not log.ok


def test_base64_query_strings_are_skipped_with_one_warning_counting_them():
    encoded = "jAAJBAp2MTQwRGV2aWNlAApTbWFydFBob25l"
    log = read(
        HEADER
        + request("07:00:00", sync())
        + request("07:00:01", encoded)
        + request("07:00:02", f"{encoded}&Log=V141")
    )

    assert len(rows(log)) == 1
    assert log.requests["base64"] == 2
    assert [str(w) for w in log.warnings] == [
        "ex090417.log: column cs-uri-query: 2 ActiveSync requests have a base64-encoded query "
        "string (newer clients, MS-ASHTTP; first on line 6): exsync does not decode those, so "
        "they were skipped"
    ]


def test_no_protocol_version_is_read_from_the_log_field():
    [(_, row)] = rows(read(HEADER + EXAMPLE))
    assert "eas_version" not in row, "the V token of Log= is not a reliable EAS version"


def test_a_log_in_the_ansi_code_page_needs_its_encoding():
    ansi = (HEADER + request("07:00:00", sync(), agent="Björn's+phone")).encode("cp1252")

    log = read(ansi)
    assert [str(p) for p in log.problems] == [
        "ex090417.log:5: is not UTF-8 (byte 0xF6). IIS writes logs in the server's ANSI code "
        "page unless UTF-8 logging is on: re-import with --encoding cp1252 (or that code page)"
    ]

    [(_, row)] = rows(read(ansi, encoding="cp1252"))
    assert row["user_agent"] == "Björn's phone"


def test_devices_are_grouped_per_user_and_device_id_in_line_order():
    log = read(
        HEADER
        + request("07:00:00", sync(device="B"))
        + request("07:00:01", sync(device="A"))
        + request("07:00:02", sync(user="tsmith", device="A"))
        + request("07:00:03", sync(device="B"))
    )

    assert [(line, r["user_key"], r["device_id"]) for line, r in rows(log)] == [
        (5, "kakers", "B"),
        (6, "kakers", "A"),
        (7, "tsmith", "A"),
    ]


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (HEADER.encode(), True),
        (b"\xef\xbb\xbf" + HEADER.encode(), True),
        (b"#Fields: date time cs-uri-stem cs-uri-query\r\n", True),
        (b"#Software: Microsoft Internet Information Services 7.5\r\n", True),
        (b'#TYPE Deserialized.Microsoft.Exchange.Data.Directory.Management.Mailbox\r\n"a"', False),
        (b'"Identity","DeviceID"\r\n', False),
        (b"", False),
    ],
)
def test_a_log_is_recognised_by_its_directives_not_by_a_csv_header(head, expected):
    assert is_iis_log(head) is expected


def test_a_csv_file_is_not_read_as_a_log():
    log = read('"Identity","DeviceID"\r\n"a","b"\r\n', name="devices.csv")
    assert [str(p) for p in log.problems] == [
        "devices.csv: is not an IIS W3C log: expected '#Software: Microsoft Internet "
        "Information Services' and '#Fields:' lines first"
    ]
