"""Reading Export-Csv files: encodings, delimiters, quoting, physical lines, non-CSV files."""

from __future__ import annotations

import io
import tracemalloc

import pytest

from devices.importers import ExportChanged, ExportHasProblems, open_export

from .helpers import crlf, messages, only_row, quoted, read, rows, warnings

SERVER_HEADER = quoted("Name", "Fqdn", "ServerRole", "AdminDisplayVersion")
TYPE_SERVER = "#TYPE Deserialized.Microsoft.Exchange.Data.Directory.Management.ExchangeServer"


def server_line(name: str, version: str = "Version 15.1 (Build 2507.6)") -> str:
    return quoted(name, f"{name.lower()}.contoso.local", "Mailbox", version)


# -- #TYPE, line numbers, quoting --------------------------------------------------------------


def test_type_line_is_line_one_and_is_kept_as_hint():
    export = read(crlf(TYPE_SERVER, SERVER_HEADER, server_line("EX1"), server_line("EX2")))
    assert export.type_hint == TYPE_SERVER.removeprefix("#TYPE ")
    assert [line for line, _ in rows(export)] == [3, 4]


def test_without_type_line_the_header_is_line_one():
    export = read(crlf(SERVER_HEADER, server_line("EX1")))
    assert export.type_hint is None
    assert [line for line, _ in rows(export)] == [2]


def test_quoted_commas_quotes_and_newlines_keep_physical_line_numbers():
    header = quoted("Identity", "PrimarySmtpAddress", "DisplayName", "Alias")
    text = crlf(
        header,
        quoted("c.local/Users/Tony Smith", "tony@c.com", "Smith, Tony", "tsmith"),
        quoted("c.local/Users/Kate Lee", "kate@c.com", 'Katherine "Kate"\r\nLee', "klee"),
        quoted("c.local/Users/Anna", "anna@c.com", "Anna\r\n\r\nMüller", "anna"),
        quoted("c.local/Users/Bob", "bob@c.com", "Bob", "bob"),
    )
    found = rows(read(text, "mailboxes.csv"))
    assert [line for line, _ in found] == [2, 3, 5, 8]
    assert found[0][1]["display_name"] == "Smith, Tony"
    assert found[1][1]["display_name"] == 'Katherine "Kate"\r\nLee'


def test_lf_only_files_from_powershell_7_read_the_same():
    text = "\n".join([SERVER_HEADER, server_line("EX1"), server_line("EX2")]) + "\n"
    assert [line for line, _ in rows(read(text))] == [2, 3]


def test_unquoted_values_as_powershell_7_writes_them_with_usequotes_asneeded():
    export = read(
        "Name,Fqdn,ServerRole,AdminDisplayVersion\nEX1,ex1.c.local,Mailbox,"
        "Version 15.2 (Build 1748.10)\n"
    )
    assert only_row(export)["generation"] == "2019"


def test_null_and_empty_string_both_read_as_not_given():
    export = read(crlf(SERVER_HEADER, '"EX1",,"","Version 15.1 (Build 2507.6)"'))
    row = only_row(export)
    assert row["fqdn"] is None
    assert row["roles"] is None


def test_blank_lines_between_records_are_skipped():
    export = read(crlf(SERVER_HEADER, server_line("EX1"), "", server_line("EX2")))
    assert [line for line, _ in rows(export)] == [2, 4]


# -- encodings -------------------------------------------------------------------------------

MAILBOX_HEADER = quoted("Identity", "PrimarySmtpAddress", "DisplayName")
NAMES = ("Björn Größer", "佐々木 花子")


def mailbox_text() -> str:
    return crlf(
        MAILBOX_HEADER,
        *(quoted(f"c.local/Users/{name}", f"u{i}@c.com", name) for i, name in enumerate(NAMES)),
    )


@pytest.mark.parametrize(
    ("encoded", "encoding"),
    [
        (mailbox_text().encode("utf-8"), "utf-8"),
        (b"\xef\xbb\xbf" + mailbox_text().encode("utf-8"), "utf-8"),
        (b"\xff\xfe" + mailbox_text().encode("utf-16-le"), "utf-16-le"),
        (b"\xfe\xff" + mailbox_text().encode("utf-16-be"), "utf-16-be"),
        (b"\xff\xfe\x00\x00" + mailbox_text().encode("utf-32-le"), "utf-32-le"),
    ],
    ids=["utf8", "utf8-bom", "utf16le-bom", "utf16be-bom", "utf32le-bom"],
)
def test_non_ascii_names_survive_every_unicode_export(encoded, encoding):
    export = read(encoded, "mailboxes.csv")
    assert export.encoding == encoding
    assert [row["display_name"] for _, row in rows(export)] == list(NAMES)


def test_utf16_bom_with_type_line_counts_lines_the_same():
    text = crlf(
        "#TYPE Deserialized.Microsoft.Exchange.Data.Directory.Management.Mailbox", mailbox_text()
    )
    export = read(text.encode("utf-16"), "mailboxes.csv")
    assert [line for line, _ in rows(export)] == [3, 4]


def test_cp1252_without_bom_asks_for_encoding_naming_the_line_and_byte():
    text = crlf(
        MAILBOX_HEADER,
        quoted("c.local/Users/Tony", "tony@c.com", "Tony"),
        quoted("c.local/Users/Björn", "bjoern@c.com", "Björn Größer"),
    )
    export = read(text.encode("cp1252"), "mailboxes.csv")
    assert messages(export) == [
        "mailboxes.csv:3: is not UTF-8 (byte 0xF6 on line 3). It was probably exported with "
        "-Encoding Default or OEM; re-import with --encoding cp1252 (or the code page it was "
        "written in), or export again with -Encoding UTF8."
    ]
    again = read(text.encode("cp1252"), "mailboxes.csv", encoding="cp1252")
    assert [row["display_name"] for _, row in rows(again)] == ["Tony", "Björn Größer"]


def test_bad_byte_deep_in_a_large_file_is_found_on_its_line():
    lines = [MAILBOX_HEADER] + [quoted(f"c/U/u{i}", f"u{i}@c.com", f"U {i}") for i in range(30000)]
    lines.insert(25000, quoted("c/U/x", "x@c.com", "Gr\x00ßer"))
    data = crlf(*lines).encode("utf-8").replace("\x00ß".encode(), b"\xdf")
    assert messages(read(data, "m.csv"))[0].startswith("m.csv:25001: is not UTF-8 (byte 0xDF")


def test_unknown_encoding_is_a_problem():
    assert messages(read(mailbox_text(), "m.csv", encoding="klingon")) == [
        "m.csv: unknown encoding 'klingon' (--encoding)"
    ]


def test_a_bom_wins_over_a_contradicting_encoding_option():
    export = read(b"\xff\xfe" + mailbox_text().encode("utf-16-le"), "m.csv", encoding="cp1252")
    assert export.encoding == "utf-16-le"
    assert "read as utf-16-le, not as --encoding cp1252" in warnings(export)[0]


def test_utf16_without_bom_is_recognised():
    export = read(mailbox_text().encode("utf-16-le"), "m.csv")
    assert "--encoding utf-16-le" in messages(export)[0]


# -- delimiters ---------------------------------------------------------------------------------


def test_semicolon_from_useculture_is_detected():
    text = crlf(
        '"Name";"Fqdn";"ServerRole";"AdminDisplayVersion"',
        '"EX1";"ex1.c";"Mailbox, ClientAccess";"Version 14.3 (Build 123.4)"',
    )
    export = read(text)
    assert export.delimiter == ";"
    assert only_row(export)["roles"] == ["Mailbox", "ClientAccess"]


def test_tab_is_detected_and_a_given_delimiter_wins():
    text = "Name\tFqdn\tServerRole\tAdminDisplayVersion\n"
    text += "EX1\tex1\tMailbox\tVersion 8.1 (Build 240.6)\n"
    assert read(text).delimiter == "\t"
    assert only_row(read(text, delimiter="tab"))["generation"] == "2007"


def test_single_column_file_needs_no_delimiter():
    export = read("EmailAddress\r\nanna@contoso.com\r\n", "batch.csv")
    assert export.kind == "migration_batch"
    assert only_row(export) == {"email_address": "anna@contoso.com"}


# -- sources ---------------------------------------------------------------------------------


def test_path_source_takes_its_name_from_the_path(tmp_path):
    path = tmp_path / "servers.csv"
    path.write_text(crlf(SERVER_HEADER, server_line("EX1")), encoding="utf-8-sig")
    export = open_export(path)
    assert export.filename == "servers.csv"
    assert only_row(export)["name"] == "EX1"


def test_opener_source_is_called_for_each_pass(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text(crlf(SERVER_HEADER, server_line("EX1")), encoding="utf-8")
    calls = []

    def opener():
        calls.append(1)
        return open(path, "rb")

    export = open_export(opener, filename="s.csv")
    assert only_row(export)["name"] == "EX1"
    assert len(calls) >= 2


def test_seekable_stream_is_rewound_to_where_it_started():
    stream = io.BytesIO(b"junk" + crlf(SERVER_HEADER, server_line("EX1")).encode())
    stream.read(4)
    assert only_row(open_export(stream, filename="s.csv"))["name"] == "EX1"


def test_rows_refuses_a_file_with_problems():
    export = read(crlf(SERVER_HEADER, '"EX1","x"'))
    with pytest.raises(ExportHasProblems):
        list(export.rows())


def _peak_memory_reading(path) -> int:
    tracemalloc.start()
    try:
        export = open_export(path)
        assert sum(1 for _ in export.rows()) == export.row_count
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_flat_however_long_the_file(tmp_path):
    peaks = []
    for count in (1500, 6000):
        path = tmp_path / f"servers{count}.csv"
        with open(path, "w", encoding="utf-8", newline="") as out:
            out.write(SERVER_HEADER + "\r\n")
            for i in range(count):
                out.write(server_line(f"EX{i:06d}") + "\r\n")
        peaks.append(_peak_memory_reading(path))
    small, large = peaks
    assert large < small * 1.2  # four times the rows, (almost) the same memory


# -- structural problems -----------------------------------------------------------------------


def test_wrong_field_count_names_the_line_and_both_counts():
    export = read(crlf(SERVER_HEADER, server_line("EX1"), quoted("EX2", "x", "y")), "servers.csv")
    assert messages(export) == ["servers.csv:3: 3 values, but the header has 4 columns"]


def test_unterminated_quote_is_reported_where_the_quote_opened():
    text = crlf(
        SERVER_HEADER,
        server_line("EX1"),
        quoted("EX2", "ex2.c", "Mailbox, Client\r\nAccess", "Version 15.1 (Build 1.2)"),
    )
    text += '"EX3","ex3.c","Mail\r\nbox, '  # cut off in the middle of a value
    export = read(text, "servers.csv")
    assert messages(export) == [
        "servers.csv:5: column ServerRole: quoted value never closed before the end of the file "
        "(file cut off?)"
    ]


def test_text_after_a_closing_quote_is_a_problem_and_reading_goes_on():
    text = crlf(SERVER_HEADER, '"EX1"x,"a","b","c"', server_line("EX2"), '"EX3","b"')
    assert messages(read(text, "s.csv")) == [
        "s.csv:2: a closing quote is followed by other text instead of ',' or the end of the line",
        "s.csv:4: 2 values, but the header has 4 columns",
    ]


def test_empty_and_duplicate_header_cells_name_their_column_number():
    export = read(crlf(quoted("Name", "", "Fqdn", "name"), quoted("a", "b", "c", "d")), "s.csv")
    assert messages(export) == [
        "s.csv:1: column 2 of the header is empty; every column needs a name",
        "s.csv:1: column 4 of the header repeats 'name' (already column 1); column names "
        "must be unique",
    ]


def test_empty_file_and_header_only_file():
    assert messages(read(b"", "d.csv")) == [
        "d.csv: the file is empty; expected an Export-Csv file with a header line"
    ]
    header_only = read(crlf(SERVER_HEADER), "s.csv")
    assert header_only.ok
    assert header_only.row_count == 0
    assert warnings(header_only) == ["s.csv: has a header but no rows (0 rows)"]


def test_several_problems_are_reported_in_one_run():
    text = crlf(
        quoted("Identity", "DeviceID", "DeviceType", "LastSuccessSync"),
        quoted("c/U/A/ExchangeActiveSyncDevices/iPhone§X1", "X1", "iPhone", "3/14/2019 9:12:44 AM"),
        quoted("c/U/B/ExchangeActiveSyncDevices/iPhone§X2", "X2", "iPhone"),
        quoted("c/U/C/Devices/iPhone§X3", "X3", "iPhone", "3/15/2019 9:12:44 AM"),
        quoted("c/U/D/ExchangeActiveSyncDevices/iPhone§X4", "X4", "iPhone", "2/30/2019 1:00:00 PM"),
        quoted("c/U/E/ExchangeActiveSyncDevices/iPhone§X5", "Y5", "iPhone", "yesterday"),
    )
    assert messages(read(text, "devices.csv")) == [
        "devices.csv:3: 3 values, but the header has 4 columns",
        "devices.csv:4: column Identity: 'c/U/C/Devices/iPhone§X3' is not a device identity; "
        "expected '<mailbox>/ExchangeActiveSyncDevices/<DeviceType>§<DeviceId>'",
        "devices.csv:5: column LastSuccessSync: '2/30/2019 1:00:00 PM' is not a valid M/d/yyyy "
        "date, the reading of this column (month first, as line 2 '3/14/2019 9:12:44 AM' shows)",
        "devices.csv:6: column LastSuccessSync: 'yesterday' is not a date; expected a date like "
        "3/9/2019 4:05:07 PM, 09/03/2019 16:05:07 or 2019-03-09T16:05:07",
        "devices.csv:6: column DeviceID: 'Y5' differs from the id 'X5' at the end of Identity",
    ]


def test_problems_are_capped_with_a_note_of_how_many_more():
    lines = [SERVER_HEADER] + [quoted(f"EX{i}", "x") for i in range(250)]
    export = read(crlf(*lines), "s.csv", max_problems=200)
    shown = messages(export)
    assert len(shown) == 201
    assert shown[-1] == "s.csv: and 50 more problems not shown"
    assert export.problem_count == 250


# -- files that are not CSV --------------------------------------------------------------------

ADVICE = "Export-Csv -Path devices.csv -NoTypeInformation -Encoding UTF8"


def test_format_list_output_is_rejected_with_advice():
    text = "\r\n\r\nFirstSyncTime       : 3/14/2019 9:12:44 AM\r\nDeviceID            : ApplF17\r\n"
    export = read(("\ufeff" + text).encode("utf-16-le"), "devices.csv")
    [message] = messages(export)
    assert message.startswith("devices.csv: is Format-List output (lines like 'FirstSyncTime :")
    assert ADVICE in message and "instead of `| Format-List`" in message


def test_format_table_output_is_rejected_with_advice():
    text = (
        "\r\nDeviceType DeviceID         DeviceUserAgent\r\n"
        "---------- --------         ---------------\r\n"
        "iPhone     ApplF17LTTCGFFG8 Apple-iPhone9C1/1602...\r\n"
    )
    [message] = messages(read(text, "devices.csv"))
    assert message.startswith("devices.csv: is Format-Table output")
    assert ADVICE in message


def test_format_table_piped_to_export_csv_is_rejected_with_advice():
    text = crlf(
        "#TYPE Microsoft.PowerShell.Commands.Internal.Format.FormatStartData",
        quoted("ClassId2e4f51ef21dd47e99d3c952918aff9cd", "pageHeaderEntry", "pageFooterEntry"),
        quoted("033ecb2bc07a4d43b5ef94ed5a35d280", None, None),
    )
    [message] = messages(read(text, "devices.csv"))
    assert "Format-Table (or Format-List) ran before Export-Csv" in message
    assert "Replace `Format-Table` with `Select-Object`" in message


def test_format_output_without_type_line_is_recognised_by_its_class_id_column():
    text = crlf(quoted("ClassId2e4f51ef21dd47e99d3c952918aff9cd", "groupingEntry"))
    assert "formatting objects" in messages(read(text, "d.csv"))[0]


def test_clixml_is_rejected_with_advice():
    text = '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">\r\n'
    [message] = messages(read(text, "devices.csv"))
    assert message.startswith("devices.csv: is a PowerShell CLIXML file (Export-Clixml)")
    assert ADVICE in message


def test_a_file_that_changes_between_the_passes_stops_the_rows():
    versions = [crlf(SERVER_HEADER, server_line("EX1")), crlf(SERVER_HEADER, '"EX1","x"')]
    opened = []

    def opener():
        opened.append(1)
        return io.BytesIO(versions[0 if len(opened) <= 2 else 1].encode())

    export = open_export(opener, filename="s.csv")
    assert export.ok
    with pytest.raises(ExportChanged, match=r"s\.csv:2: 2 values"):
        list(export.rows())


def test_progress_is_reported_during_both_passes(monkeypatch):
    monkeypatch.setattr("devices.importers.export.PROGRESS_EVERY", 2)
    seen = []
    text = crlf(SERVER_HEADER, *(server_line(f"EX{i}") for i in range(5)))
    export = open_export(io.BytesIO(text.encode()), filename="s.csv", progress=seen.append)
    assert seen == [2, 4, 5]
    assert len(list(export.rows())) == 5
    assert seen == [2, 4, 5, 2, 4, 5]
