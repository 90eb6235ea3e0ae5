"""An import reads a device file once (issue 16, point 1): rows are checked as they are
stored, a problem anywhere refuses the whole file with every line, and dates whose day/month
order only a later row shows are read in that order by the database (both databases)."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.importers import ExportRejected, open_export
from devices.importers.dates import DateColumn, DateOrder
from devices.models import ImportState, InventoryImport, MobileDevice, Partnership
from devices.services import _progress_key
from devices.writers import _IdentityLinks
from tests import exports
from tests.commands import import_inventory as run
from tests.factories import MailboxFactory, UserFactory
from tests.test_bad_input import counts, device_line, devices_file, inventory, problems

__all__ = ["inventory"]  # the fixture, shared with the bad-input tests

LONDON = ZoneInfo("Europe/London")
db = pytest.mark.django_db


def with_dates(n: int, first_sync: str, last_sync: str = "11/24/2026 4:05:07 PM") -> str:
    line = device_line(n)
    return (
        line.replace('"3/14/2019 9:12:44 AM"', f'"{first_sync}"')
        .replace('"11/24/2026 4:05:07 PM"', f'"{last_sync}"', 1)
        .replace('"11/24/2026 4:05:07 PM"', f'"{last_sync}"', 1)
    )


def first_sync_of(device_id: str) -> datetime:
    return Partnership.objects.get(device__device_id=device_id).first_sync_at.astimezone(LONDON)


@db
def test_a_late_row_that_only_reads_day_first_decides_every_earlier_row(tmp_path, inventory):
    # 300 rows that read either way, then one whose 25 can only be a day.
    rows = [with_dates(n, "3/4/2026 10:00:00", "3/4/2026 10:00:00") for n in range(1, 301)]
    rows.append(with_dates(301, "25/4/2026 10:00:00", "3/4/2026 10:00:00"))

    code, _, err = run(devices_file(tmp_path, rows), timezone="Europe/London")

    assert code == 0, err
    assert first_sync_of("Appl00000001") == datetime(2026, 4, 3, 10, 0, tzinfo=LONDON)
    assert first_sync_of("Appl00000301") == datetime(2026, 4, 25, 10, 0, tzinfo=LONDON)
    synced = Partnership.objects.get(device__device_id="Appl00000001").last_success_sync_at
    assert synced.astimezone(LONDON) == datetime(2026, 4, 3, 10, 0, tzinfo=LONDON)


@db
def test_am_pm_reads_a_file_month_first_in_the_import_time_zone(tmp_path, inventory):
    rows = [with_dates(1, "3/4/2026 9:30:00 PM"), with_dates(2, "12/1/2026 12:05:00 AM")]

    code, _, err = run(devices_file(tmp_path, rows), timezone="Europe/London")

    assert code == 0, err
    assert first_sync_of("Appl00000001") == datetime(2026, 3, 4, 21, 30, tzinfo=LONDON)
    assert first_sync_of("Appl00000002") == datetime(2026, 12, 1, 0, 5, tzinfo=LONDON)


@db
def test_a_named_culture_reads_dates_in_its_order(tmp_path, inventory):
    code, _, err = run(
        devices_file(tmp_path, [with_dates(1, "03/04/2026 10:00:00", "03/04/2026 11:00:00")]),
        culture="en-GB",
        timezone="UTC",
    )

    assert code == 0, err
    stored = Partnership.objects.get(device__device_id="Appl00000001").first_sync_at
    assert stored == datetime(2026, 4, 3, 10, 0, tzinfo=ZoneInfo("UTC"))


@db
def test_problems_found_after_rows_were_stored_refuse_the_whole_file(tmp_path, inventory):
    code, _, err = run(devices_file(tmp_path, [device_line(1)]))
    assert code == 0, err
    before = counts()
    kept = Partnership.objects.get(device__device_id="Appl00000001").last_success_sync_at
    rows = [with_dates(n, "3/14/2019 9:12:44 AM", "11/30/2026 8:00:00 AM") for n in range(1, 400)]
    rows[149] = with_dates(150, "yesterday")
    rows.append(with_dates(400, "2/30/2019 1:00:00 PM"))  # in no order a date

    code, _, err = run(devices_file(tmp_path, rows, name="late.csv"))

    assert code == 1
    assert problems(err) == [
        "late.csv:151: column FirstSyncTime: 'yesterday' is not a date; expected a date like "
        "3/9/2019 4:05:07 PM, 09/03/2019 16:05:07 or 2019-03-09T16:05:07",
        "late.csv:401: column FirstSyncTime: '2/30/2019 1:00:00 PM' is not a valid M/d/yyyy "
        "date, the reading of this column (month first, as line 2 '3/14/2019 9:12:44 AM' shows)",
    ]
    assert counts() == before
    assert Partnership.objects.get(device__device_id="Appl00000001").last_success_sync_at == kept


@db
def test_the_import_record_says_how_many_rows_the_one_pass_read(tmp_path, inventory):
    code, _, err = run(devices_file(tmp_path, [device_line(n) for n in range(1, 26)]))

    assert code == 0, err
    record = InventoryImport.objects.filter(kind="devices").latest("id")
    assert (record.state, record.rows_total, record.rows_done) == (ImportState.SUCCEEDED, 25, 25)
    assert MobileDevice.objects.count() >= 25


@pytest.mark.django_db
def test_the_import_page_shows_the_rows_a_running_pass_has_read(client):
    admin = UserFactory(role="admin")
    record = InventoryImport.objects.create(
        group=uuid.uuid4(),
        filename="devices.csv",
        state=ImportState.RUNNING,
        rows_done=0,
        created_by=admin,
    )
    cache.set(_progress_key(record.pk), 120_000)
    client.force_login(admin)

    page = client.get(reverse("devices:import_group", args=[record.group]))

    assert "120,000 rows read and checked" in page.content.decode()


# -- the two readings of a date value agree ---------------------------------------------------

numbers = st.integers(min_value=0, max_value=40)
values = st.one_of(
    st.builds(
        "{}{}{}{}{} {}:{:02d}:{:02d}{}".format,
        numbers,
        st.sampled_from("/.-"),
        numbers,
        st.sampled_from("/.-"),
        st.sampled_from(["2019", "2026", "19", "0000"]),
        st.integers(min_value=0, max_value=25),
        st.integers(min_value=0, max_value=61),
        st.integers(min_value=0, max_value=61),
        st.sampled_from(["", " AM", " PM", "PM", " p.m.", ".5", ".1234567", "  "]),
    ),
    st.builds(
        "{}-{:02d}-{:02d} {}:{:02d}:00".format,
        st.sampled_from(["2019", "2024"]),
        st.integers(min_value=0, max_value=13),
        st.integers(min_value=0, max_value=32),
        st.integers(min_value=0, max_value=24),
        st.integers(min_value=0, max_value=60),
    ),
    st.text(alphabet="0123456789/ :APM.-T", max_size=24),
)


def _outcome(read, line: int, value: str) -> object:
    try:
        return read(line, value)
    except Exception as error:  # the message is what the file's reader shows
        return f"{type(error).__name__}: {error}"


def _state(column: DateColumn) -> tuple:
    samples = (column.year_last, column.dmy_only, column.mdy_only, column.neither)
    return (*((s.count, s.items) for s in samples), column.ampm, column.day_first_separator)


@settings(max_examples=400, deadline=None)
@given(st.lists(values, min_size=1, max_size=12))
def test_the_halves_of_common_values_read_as_the_whole_value_does(sample):
    fast, slow = DateColumn("FirstSyncTime"), DateColumn("FirstSyncTime")

    for line, value in enumerate(sample * 2, start=2):  # the second time from the halves
        assert _outcome(fast.take, line, value) == _outcome(slow._take, line, value)

    assert _state(fast) == _state(slow)
    assert fast.decide() == slow.decide()
    assert fast.order == slow.order or fast.order in (None, DateOrder.MDY, DateOrder.DMY)


def test_no_row_reaches_a_writer_after_the_first_problem(tmp_path):
    rows = [device_line(n) for n in range(1, 6)]
    rows[2] = with_dates(3, "not a date")
    export = open_export(devices_file(tmp_path, rows), one_pass=True)
    handed: list[int] = []

    with pytest.raises(ExportRejected):
        for line, _ in export.checked_rows():
            handed.append(line)

    assert handed == [2, 3]  # line 4 is the wrong one; lines 5 and 6 were only checked
    assert export.row_count == 5
    assert [p.line for p in export.problems] == [4]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_device_imports_write_one_at_a_time_so_new_phones_can_be_added_plainly(tmp_path):
    """New phones go in with a plain INSERT (setsql.upsert(serialised=True)): that is safe
    only while no other import adds phones meanwhile, which the advisory lock makes so."""
    import threading

    import psycopg2
    from django.db import connection

    from devices.writers import DEVICE_WRITES

    code, _, err = run(
        exports.write(tmp_path, "servers.csv", exports.SERVERS),
        exports.write(tmp_path, "mailboxes.csv", exports.MAILBOXES),
    )
    assert code == 0, err
    other = psycopg2.connect(**connection.get_connection_params())
    other.autocommit = False
    with other.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [DEVICE_WRITES])  # another import
    outcome: list[tuple[int, str, str]] = []

    def import_devices() -> None:
        try:
            outcome.append(run(devices_file(tmp_path, [device_line(n) for n in range(1, 4)])))
        finally:
            connection.close()

    importer = threading.Thread(target=import_devices)
    importer.start()
    importer.join(timeout=1.5)
    waited = importer.is_alive()
    other.rollback()  # the other import ends
    importer.join(timeout=30)
    other.close()

    assert waited, "the import wrote phones while another import held the lock"
    assert outcome and outcome[0][0] == 0, outcome
    assert MobileDevice.objects.count() == 3


@pytest.fixture(params=["short file", "long file"])
def identity_links(request, monkeypatch):
    """Both ways a device row finds its mailbox by Identity: one UPDATE after the load (a short
    file), or the map read before it (a long one; the threshold lowered to these 3 rows)."""
    if request.param == "long file":
        monkeypatch.setattr(_IdentityLinks, "LONG", 3)
    return request.param


@db
def test_devices_find_their_mailbox_by_identity_in_a_short_or_a_long_file(
    tmp_path, inventory, identity_links
):
    with CaptureQueriesContext(connection) as queries:
        code, _, err = run(devices_file(tmp_path, [device_line(n) for n in range(1, 5)]))

    assert code == 0, err
    owners = set(Partnership.objects.values_list("mailbox__alias", flat=True))
    assert owners == {"tsmith"}
    linked_after_the_load = any(
        "UPDATE stage_devices SET mailbox_id = m.id FROM (SELECT identity_key" in q["sql"]
        for q in queries.captured_queries
    )
    assert linked_after_the_load == (identity_links == "short file")


@db
def test_an_identity_two_mailboxes_share_links_to_neither_in_a_short_or_a_long_file(
    tmp_path, inventory, identity_links
):
    MailboxFactory(identity="contoso.local/Europe/London/Tony Smith", display_name="Tony's twin")
    before = counts()

    code, _, err = run(devices_file(tmp_path, [device_line(n) for n in range(1, 5)]))

    assert code == 1
    assert all("matches several mailboxes" in line for line in problems(err)), err
    assert len(problems(err)) == 4
    assert counts()[2:] == before[2:]
