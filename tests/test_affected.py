"""The affected-people list (/people/affected/): who is listed, filters, sorts, keyset pages,
the CSV export and its safety, permissions, escaping and a constant number of queries."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from helpdesk import affected
from helpdesk.csv_export import csv_lines, safe_cell
from migrations_plan import selectors
from migrations_plan.models import BatchState, Explanation, MemberState, Prediction
from tests.factories import (
    BatchMailboxFactory,
    ExchangeServerFactory,
    MailboxFactory,
    MobileDeviceFactory,
    MoveBatchFactory,
    PartnershipFactory,
)

pytestmark = pytest.mark.django_db
URL = reverse("helpdesk:affected")
NOW = timezone.now()


def explanation(outcome: str) -> Explanation:
    return Explanation.objects.get_or_create(
        digest=f"test-{outcome}", defaults={"outcome": outcome, "user_text": f"{outcome}."}
    )[0]


def person(batch, name: str, *phones: dict, state=MemberState.PENDING, source=None, **mailbox):
    """A member of `batch` with one prediction per phone; a phone is a dict of outcome,
    device fields (device_type, model, os, friendly_name) and partnership fields."""
    address = mailbox.pop("address", None) or f"{name.lower().replace(' ', '.')}@contoso.com"
    mb = MailboxFactory(display_name=name, primary_smtp_address=address, **mailbox)
    member = BatchMailboxFactory(
        batch=batch,
        mailbox=mb,
        state=state,
        is_active=batch.state in ("draft", "scheduled", "in_progress")
        and state != MemberState.REMOVED,
        source_server=source or mb.server,
    )
    for phone in phones:
        phone = dict(phone)
        outcome = phone.pop("outcome")
        device = {k: phone.pop(k) for k in list(phone) if k in DEVICE_FIELDS}
        partnership = PartnershipFactory(mailbox=mb, device=MobileDeviceFactory(**device), **phone)
        Prediction.objects.create(
            member=member,
            partnership=partnership,
            outcome=outcome,
            explanation=explanation(outcome),
        )
    return member


DEVICE_FIELDS = {"device_type", "model", "os", "friendly_name", "device_id"}


def phone(outcome: str = "continues", **fields) -> dict:
    return {"outcome": outcome, **fields}


@pytest.fixture
def world():
    """Two active batches to two targets, a finished and a cancelled one, people with phones
    of every platform, outcome, access state and sync age."""
    ex2010 = ExchangeServerFactory(name="EX2010A", ex2010=True)
    ex2013 = ExchangeServerFactory(name="EX2013A")
    t1 = ExchangeServerFactory(name="EX2019A")
    t2 = ExchangeServerFactory(name="EX2019B")
    soon = MoveBatchFactory(name="Wave 1", target_server=t1, start_at=NOW + timedelta(days=3))
    later = MoveBatchFactory(
        name="Wave 2",
        target_server=t2,
        start_at=NOW + timedelta(days=10),
        state=BatchState.SCHEDULED,
    )
    running = MoveBatchFactory(
        name="Wave 0",
        target_server=t1,
        start_at=NOW - timedelta(hours=2),
        state=BatchState.IN_PROGRESS,
    )
    done = MoveBatchFactory(name="Old", target_server=t1, state=BatchState.COMPLETED)
    cancelled = MoveBatchFactory(name="Dropped", target_server=t1, state=BatchState.CANCELLED)
    fresh = NOW - timedelta(hours=2)
    people = {
        "Ann Blocked": person(
            soon,
            "Ann Blocked",
            phone("blocked", device_type="iPhone", last_success_sync_at=fresh),
            phone(
                "continues",
                device_type="Outlook",
                client_type="Outlook",
                last_success_sync_at=fresh,
            ),
            source=ex2010,
        ),
        "Bob Repartner": person(
            soon,
            "Bob Repartner",
            phone(
                "repartner",
                device_type="SAMSUNGSMG991B",
                model="SM-G991B",
                os="Android 13",
                last_success_sync_at=NOW - timedelta(days=3),
                access_state="Quarantined",
            ),
            source=ex2013,
        ),
        "Cid Continues": person(
            later,
            "Cid Continues",
            phone(
                "continues",
                device_type="WP8",
                model="Lumia 950",
                last_success_sync_at=NOW - timedelta(days=30),
            ),
            source=ex2010,
        ),
        "Dee Nophone": person(later, "Dee Nophone", source=ex2013),
        "Eve Never": person(
            running,
            "Eve Never",
            phone(
                "unknown",
                device_type="NokiaE72",
                model="E72-1",
                last_success_sync_at=None,
                access_state="",
            ),
            state=MemberState.MOVED,
            source=ex2010,
        ),
        "Fay Failed": person(
            running,
            "Fay Failed",
            phone("full_resync", device_type="PocketPC", last_success_sync_at=fresh),
            phone("redirect", device_type="Android", os="Android 14", last_success_sync_at=fresh),
            state=MemberState.FAILED,
            source=ex2013,
        ),
    }
    # Not listed: a finished batch, a cancelled one, a removed member.
    person(done, "Old Moved", phone("blocked"), state=MemberState.MOVED)
    person(cancelled, "Gone Cancelled", phone("blocked"))
    person(soon, "Rem Removed", phone("blocked"), state=MemberState.REMOVED)
    return {
        "people": people,
        "batches": {"soon": soon, "later": later, "running": running, "done": done},
        "servers": {"ex2010": ex2010, "ex2013": ex2013, "t1": t1, "t2": t2},
    }


def names(response) -> list[str]:
    return [p.mailbox.display_name for p, _, _ in response.context["rows"]]


def get(client, **params):
    response = client.get(URL, params)
    assert response.status_code == 200, response.content[:500]
    return response


@pytest.fixture
def helpdesk(client, helpdesk_user):
    client.force_login(helpdesk_user)
    return client


# --- who is listed, and who may see it ----------------------------------------------------


def test_lists_people_of_draft_scheduled_and_running_batches_only(helpdesk, world):
    listed = names(get(helpdesk))
    assert sorted(listed) == sorted(world["people"])
    assert "Old Moved" not in listed and "Gone Cancelled" not in listed
    assert "Rem Removed" not in listed


def test_a_row_shows_batch_servers_worst_outcome_counts_and_last_sync(helpdesk, world):
    rows = {
        p.mailbox.display_name: (p, worst, phones)
        for p, worst, phones in get(helpdesk).context["rows"]
    }
    ann, worst, phones = rows["Ann Blocked"]
    assert worst == "blocked"
    assert (ann.n_devices, ann.n_action) == (2, 1)
    assert ann.batch.name == "Wave 1" and ann.source_server.name == "EX2010A"
    assert ann.batch.target_server.name == "EX2019A"
    assert [p["outcome"] for p in phones] == ["blocked", "continues"]
    assert [p["platform"] for p in phones] == ["iPhone / iPad", "Outlook for iOS / Android"]
    dee, worst, phones = rows["Dee Nophone"]
    assert (worst, dee.n_devices, dee.n_action, dee.last_sync, phones) == ("none", 0, 0, None, [])
    eve = rows["Eve Never"][0]
    assert eve.last_sync is None and eve.n_devices == 1
    fay = rows["Fay Failed"][0]
    assert rows["Fay Failed"][1] == "redirect" and fay.n_action == 2
    page = get(helpdesk).content.decode()
    assert reverse("helpdesk:person", args=[ann.mailbox_id]) in page
    assert '<span class="nowrap">EX2010A →</span> <span class="nowrap">EX2019A</span>' in page


def test_helpdesk_can_read_it(helpdesk, world):
    assert helpdesk.get(URL).status_code == 200


def test_exchange_admins_can_read_it(client, admin_user, world):
    client.force_login(admin_user)
    assert client.get(URL).status_code == 200


def test_anonymous_visitors_are_sent_to_the_login_page(client, world):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={URL}"
    assert client.get(URL, {"export": "csv"}).status_code == 302


def test_a_user_without_a_role_gets_403(client, world):
    from tests.factories import UserFactory

    client.force_login(UserFactory())
    assert client.get(URL).status_code == 403


def test_post_is_refused_with_405(helpdesk, world):
    assert helpdesk.post(URL).status_code == 405
    assert helpdesk.post(f"{URL}?export=csv").status_code == 405


# --- filters ------------------------------------------------------------------------------


FILTERS = [
    ({"outcome": "blocked"}, ["Ann Blocked"]),
    ({"outcome": "continues"}, ["Cid Continues"]),
    ({"outcome": "redirect"}, ["Fay Failed"]),
    ({"outcome": "none"}, ["Dee Nophone"]),
    ({"has": "continues"}, ["Ann Blocked", "Cid Continues"]),
    ({"has": "full_resync"}, ["Fay Failed"]),
    ({"needs_action": "yes"}, ["Ann Blocked", "Bob Repartner", "Eve Never", "Fay Failed"]),
    ({"needs_action": "no"}, ["Cid Continues", "Dee Nophone"]),
    ({"platform": "ios"}, ["Ann Blocked"]),
    ({"platform": "outlook"}, ["Ann Blocked"]),
    ({"platform": "android"}, ["Bob Repartner", "Fay Failed"]),
    ({"platform": "windows"}, ["Cid Continues", "Fay Failed"]),
    ({"platform": "other"}, ["Eve Never"]),
    ({"last_sync": "1d"}, ["Ann Blocked", "Fay Failed"]),
    ({"last_sync": "7d"}, ["Ann Blocked", "Bob Repartner", "Fay Failed"]),
    ({"last_sync": "older"}, ["Cid Continues"]),
    ({"last_sync": "never"}, ["Eve Never"]),
    ({"access_state": "Quarantined"}, ["Bob Repartner"]),
    ({"access_state": "unknown"}, ["Eve Never"]),
    ({"needs_action": "yes", "platform": "android", "last_sync": "1d"}, ["Fay Failed"]),
]


@pytest.mark.parametrize(
    ("params", "expected"), FILTERS, ids=lambda v: urlencode(v) if isinstance(v, dict) else None
)
def test_each_filter_narrows_the_list(helpdesk, world, params, expected):
    assert names(get(helpdesk, **params)) == expected


def test_filter_by_batch_source_and_target_server(helpdesk, world):
    batches, servers = world["batches"], world["servers"]
    assert names(get(helpdesk, batch=batches["later"].pk)) == ["Cid Continues", "Dee Nophone"]
    assert names(get(helpdesk, source=servers["ex2013"].pk)) == [
        "Bob Repartner",
        "Dee Nophone",
        "Fay Failed",
    ]
    assert names(get(helpdesk, target=servers["t2"].pk)) == ["Cid Continues", "Dee Nophone"]
    assert names(get(helpdesk, target=servers["t1"].pk, source=servers["ex2010"].pk)) == [
        "Ann Blocked",
        "Eve Never",
    ]


def test_a_finished_batch_is_not_a_choice_and_is_reported_not_ignored_silently(helpdesk, world):
    response = get(helpdesk, batch=world["batches"]["done"].pk)
    assert "batch" in response.context["filters"].form.errors
    assert "Old Moved" not in names(response)


def test_the_count_is_shown_when_everyone_fits_on_the_page_and_never_asked_for(
    helpdesk, world, monkeypatch
):
    with CaptureQueriesContext(connection) as captured:
        assert "6 people match." in get(helpdesk).content.decode()
    assert not [q for q in captured if q["sql"].upper().startswith("SELECT COUNT(")]
    assert "1 person matches." in get(helpdesk, outcome="blocked").content.decode()
    monkeypatch.setattr(affected, "PAGE_SIZE", 4)
    first = get(helpdesk)
    assert "More than 4 people match" in first.content.decode()
    second = helpdesk.get(URL, {"after": first.context["people"].next_cursor})
    assert "2 more people." in second.content.decode()


# --- sorting ------------------------------------------------------------------------------


SORTED = {
    "name": [
        "Ann Blocked",
        "Bob Repartner",
        "Cid Continues",
        "Dee Nophone",
        "Eve Never",
        "Fay Failed",
    ],
    "address": [
        "Ann Blocked",
        "Bob Repartner",
        "Cid Continues",
        "Dee Nophone",
        "Eve Never",
        "Fay Failed",
    ],
    "start": [
        "Eve Never",
        "Fay Failed",
        "Ann Blocked",
        "Bob Repartner",
        "Cid Continues",
        "Dee Nophone",
    ],
    "outcome": [
        "Ann Blocked",
        "Bob Repartner",
        "Eve Never",
        "Fay Failed",
        "Cid Continues",
        "Dee Nophone",
    ],
    # Never synced (and no phone) first, then the longest ago.
    "last_sync": [
        "Dee Nophone",
        "Eve Never",
        "Cid Continues",
        "Bob Repartner",
        "Ann Blocked",
        "Fay Failed",
    ],
    "-last_sync": [
        "Ann Blocked",
        "Fay Failed",
        "Bob Repartner",
        "Cid Continues",
        "Dee Nophone",
        "Eve Never",
    ],
}


@pytest.mark.parametrize("sort", list(SORTED))
def test_sorting(helpdesk, world, sort):
    assert names(get(helpdesk, sort=sort)) == SORTED[sort]


def test_address_sort_follows_the_address_not_the_name(helpdesk, world):
    person(world["batches"]["soon"], "Aaron Last", address="zz@contoso.com")
    assert names(get(helpdesk, sort="address"))[-1] == "Aaron Last"
    assert names(get(helpdesk, sort="name"))[0] == "Aaron Last"


def test_an_unknown_sort_falls_back_to_the_name(helpdesk, world):
    assert names(get(helpdesk, sort="drop table")) == SORTED["name"]


# --- keyset pages -------------------------------------------------------------------------


@pytest.fixture
def crowd(world):
    """23 more people with equal names, equal sync times and equal outcomes: ties that only
    the id can break."""
    batch = world["batches"]["soon"]
    same = NOW - timedelta(days=2)
    for n in range(23):
        outcome = ("blocked", "continues", "unknown")[n % 3]
        synced = None if n % 5 == 0 else same
        person(
            batch,
            f"Same Name {n % 4}",
            *([phone(outcome, last_success_sync_at=synced)] if n % 7 else []),
            address=f"same{n:02d}@contoso.com",
        )
    return world


def walk(client, params: dict, direction: str = "next", start: str | None = None):
    """Follow the rel=next (or prev) links from the first page; returns the pages' names."""
    pages = []
    url = start or f"{URL}?{urlencode(params)}"
    for _ in range(50):
        response = client.get(url)
        assert response.status_code == 200
        pages.append(names(response))
        people = response.context["people"]
        cursor = people.next_cursor if direction == "next" else people.previous_cursor
        if not cursor:
            return pages, response
        key = "after" if direction == "next" else "before"
        query = response.context["querystring"]
        url = f"{URL}?{query + '&' if query else ''}{key}={cursor}"
        assert f"{key}=" in response.content.decode()
    raise AssertionError("no last page")


@pytest.mark.parametrize("sort", list(SORTED))
def test_keyset_pages_neither_repeat_nor_miss_a_row_both_ways(helpdesk, crowd, monkeypatch, sort):
    everyone = names(get(helpdesk, sort=sort))  # 29 people < 50: one page
    assert len(everyone) == 29
    monkeypatch.setattr(affected, "PAGE_SIZE", 4)
    pages, last = walk(helpdesk, {"sort": sort})
    assert [len(p) for p in pages] == [4] * 7 + [1]
    assert list(itertools.chain(*pages)) == everyone
    rows = [p.pk for p, _, _ in last.context["rows"]]
    assert len(set(rows)) == len(rows)
    # Back from the last page to the first, through "previous" links.
    query = last.context["querystring"]
    cursor = last.context["people"].previous_cursor
    back, first = walk(helpdesk, {}, direction="prev", start=f"{URL}?{query}&before={cursor}")
    assert back == pages[-2::-1]
    assert not first.context["people"].has_previous


def test_keyset_pages_keep_the_filters(helpdesk, crowd, monkeypatch):
    everyone = names(get(helpdesk, outcome="blocked", sort="outcome"))
    monkeypatch.setattr(affected, "PAGE_SIZE", 3)
    pages, _ = walk(helpdesk, {"outcome": "blocked", "sort": "outcome"})
    flat = list(itertools.chain(*pages))
    assert flat == everyone and len(pages) > 2
    assert "Ann Blocked" in flat and "Bob Repartner" not in flat


def test_a_previous_link_short_of_a_page_shows_the_whole_first_page(helpdesk, crowd, monkeypatch):
    everyone = get(helpdesk).context["people"].rows  # 29 rows: one page of 50 before the patch
    keys = affected.SORTS["name"][1]
    monkeypatch.setattr(affected, "PAGE_SIZE", 4)

    def before(row) -> list[str]:
        cursor = affected.encode_cursor(key.value_of(row) for key in keys)
        return get(helpdesk, before=cursor)

    response = before(everyone[8])
    assert names(response) == [p.mailbox.display_name for p in everyone[4:8]]
    assert response.context["people"].has_previous and response.context["people"].has_next
    response = before(everyone[2])  # two rows before it, short of a page
    assert names(response) == [p.mailbox.display_name for p in everyone[:4]]
    assert not response.context["people"].has_previous


@pytest.mark.parametrize("cursor", ["garbage", "W10", "WzEsIngiXQ", "eyJhIjoxfQ", "%%%"])
def test_a_broken_cursor_shows_the_first_page(helpdesk, world, cursor):
    assert names(get(helpdesk, after=cursor)) == SORTED["name"]
    assert names(get(helpdesk, before=cursor)) == SORTED["name"]


def test_the_page_runs_the_same_queries_for_2_and_30_people(
    helpdesk, world, django_assert_max_num_queries
):
    batch = world["batches"]["soon"]

    def queries(sort: str) -> tuple[int, int]:
        helpdesk.get(URL)
        with CaptureQueriesContext(connection) as captured:
            response = helpdesk.get(URL, {"batch": batch.pk, "sort": sort})
        assert response.status_code == 200
        return len(captured), len(response.context["rows"])

    few = {sort: queries(sort) for sort in SORTED}
    assert {shown for _, shown in few.values()} == {2}
    for n in range(28):
        person(
            batch, f"Extra {n:02d}", phone("repartner"), phone("continues", device_type="Android")
        )
    many = {sort: queries(sort) for sort in SORTED}
    assert {shown for _, shown in many.values()} == {30}
    assert {sort: n for sort, (n, _) in many.items()} == {sort: n for sort, (n, _) in few.items()}
    # Sorted by a figure of the phones: one more query (the page's ids, then the people).
    assert many["outcome"][0] == many["name"][0] + 1
    with django_assert_max_num_queries(many["outcome"][0]):
        helpdesk.get(URL, {"batch": batch.pk, "sort": "outcome", "platform": "android"})


# --- escaping -----------------------------------------------------------------------------

SCRIPT = '<script>alert("x")</script>'
RLO = "\u202e"


def test_device_and_directory_values_are_escaped_in_the_page(helpdesk, world):
    person(
        world["batches"]["soon"],
        f"{SCRIPT} Mallory",
        phone("blocked", friendly_name=SCRIPT, model=f'"><img src=x onerror=alert(1)>{RLO}gnp.exe'),
    )
    page = get(helpdesk).content.decode()
    assert SCRIPT not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    # The override stays as data, isolated so it cannot turn the text around it.
    assert f"<bdi>&quot;&gt;&lt;img src=x onerror=alert(1)&gt;{RLO}gnp.exe</bdi>" in page


# --- CSV ----------------------------------------------------------------------------------


def read_csv(response) -> list[list[str]]:
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="affected-people-')
    assert response.streaming
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body[1:], newline="")))


def test_csv_has_every_row_with_the_same_filters_and_sort(helpdesk, crowd, monkeypatch):
    monkeypatch.setattr(affected, "PAGE_SIZE", 4)
    rows = read_csv(helpdesk.get(URL, {"export": "csv", "sort": "outcome", "needs_action": "yes"}))
    assert rows[0][:4] == ["Name", "Address", "Batch", "Batch start"]
    pages, _ = walk(helpdesk, {"sort": "outcome", "needs_action": "yes"})
    assert [r[0] for r in rows[1:]] == list(itertools.chain(*pages))
    ann = next(r for r in rows if r[0] == "Ann Blocked")
    assert ann[1:3] == ["ann.blocked@contoso.com", "Wave 1"]
    assert ann[4:10] == ["Pending", "EX2010A", "EX2019A", "Blocked", "2", "1"]
    assert "iPhone" in ann[11] and "Blocked" in ann[11] and "Outlook" in ann[11]


def test_csv_link_carries_the_current_view(helpdesk, world):
    page = get(helpdesk, outcome="blocked", sort="start").content.decode()
    link = next(part.split('"')[1] for part in page.split("href=")[1:] if "export=csv" in part)
    assert parse_qs(urlparse(link.replace("&amp;", "&")).query) == {
        "outcome": ["blocked"],
        "sort": ["start"],
        "export": ["csv"],
    }


NASTY = [
    '=HYPERLINK("http://evil.example","click")',
    "+SUM(1,2)",
    "-2+3",
    "@SUM(A1)",
    "\tTabbed",
    "\rReturned",
    f"{RLO}=1+1",
]


def test_csv_cells_cannot_run_as_formulas(helpdesk, world):
    batch = world["batches"]["soon"]
    for n, value in enumerate(NASTY):
        person(
            batch,
            value,
            phone("blocked", friendly_name=value, model=value),
            address=f"nasty{n}@contoso.com",
        )
    person(
        batch,
        'Quote "Q" O\'Neil, Jr.',
        phone("continues", friendly_name="line one\nline two", model=f"x{RLO}gpj.exe"),
        address="quote@contoso.com",
    )
    rows = read_csv(helpdesk.get(URL, {"export": "csv"}))
    by_address = {r[1]: r for r in rows[1:]}
    for n, value in enumerate(NASTY):
        row = by_address[f"nasty{n}@contoso.com"]
        assert row[0] == "'" + value
        assert row[11].startswith("'" + value)  # the phone's model starts its cell: neutralised
    quoted = by_address["quote@contoso.com"]
    assert quoted[0] == 'Quote "Q" O\'Neil, Jr.'
    # Kept as data: the line break, and an override that does not start the cell.
    assert quoted[11] == f"x{RLO}gpj.exe “line one\nline two” (iPhone / iPad): Continues"
    for row in rows:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r", RLO))


def test_safe_cell_rules():
    assert safe_cell("=1+1") == "'=1+1"
    assert safe_cell("a=1") == "a=1"
    assert safe_cell("O'Neil") == "O'Neil"
    assert safe_cell("") == ""
    assert safe_cell(None) == ""
    assert safe_cell(3) == 3
    assert safe_cell(f"{RLO}abc") == f"'{RLO}abc"
    assert safe_cell(f"abc{RLO}def") == f"abc{RLO}def"
    assert safe_cell("\ufeff=1") == "'\ufeff=1"


def test_a_10000_character_value_streams_whole():
    long = "=" + "A" * 9_999
    body = "".join(csv_lines(["h"], [[long, "x\ny", 'say "hi"']]))
    rows = list(csv.reader(io.StringIO(body[1:], newline="")))
    assert rows[1] == ["'" + long, "x\ny", 'say "hi"']
    assert len(rows[1][0]) == 10_001


def test_a_long_device_value_is_exported_whole(helpdesk, world):
    long = "-" + "B" * 254  # the longest friendly name the column holds
    person(world["batches"]["soon"], "Long Name", phone("blocked", friendly_name=long))
    rows = read_csv(helpdesk.get(URL, {"export": "csv", "outcome": "blocked"}))
    row = next(r for r in rows if r[0] == "Long Name")
    assert f"“{long}”" in row[11]


def test_csv_streams_people_and_phones_in_few_queries(helpdesk, world, monkeypatch):
    monkeypatch.setattr(affected, "with_phones", _small_chunks(affected.with_phones))
    with CaptureQueriesContext(connection) as captured:
        rows = read_csv(helpdesk.get(URL, {"export": "csv"}))
    assert len(rows) == 7
    phone_queries = [
        q
        for q in captured
        if q["sql"].startswith('SELECT "migrations_plan_prediction"."member_id"')
    ]
    assert len(phone_queries) == 3  # 6 people in chunks of 2


def _small_chunks(original):
    def chunked(people, chunk=1000):
        return original(people, chunk=2)

    return chunked


# --- platforms ----------------------------------------------------------------------------


PLATFORM_CASES = [
    ({"device_type": "iPhone"}, "ios"),
    ({"device_type": "iPad"}, "ios"),
    ({"device_type": "Outlook", "client_type": "Outlook"}, "outlook"),
    ({"device_type": "iPhone", "client_type": "REST"}, "outlook"),
    ({"device_type": "SAMSUNGSMG991B"}, "android"),
    ({"device_type": "Android"}, "android"),
    ({"device_type": "HTCOne", "os": "Android 9"}, "android"),
    ({"device_type": "WP8"}, "windows"),
    ({"device_type": "PocketPC"}, "windows"),
    ({"device_type": "SmartPhone"}, "windows"),
    ({"device_type": "NokiaE72", "os": "S60 3.2"}, "other"),
    ({"device_type": ""}, "other"),
]


def test_platform_rules_agree_in_python_and_sql():
    from devices.models import Partnership

    made = []
    for facts, expected in PLATFORM_CASES:
        partnership = PartnershipFactory(
            client_type=facts.get("client_type", "EAS"),
            device=MobileDeviceFactory(device_type=facts["device_type"], os=facts.get("os", "")),
        )
        assert (
            affected.platform_of(
                device_type=facts["device_type"],
                os=facts.get("os", ""),
                client_type=facts.get("client_type", "EAS"),
            )
            == expected
        ), facts
        made.append((partnership.pk, expected))
    for code, _ in affected.PLATFORMS:
        in_sql = set(
            Partnership.objects.filter(affected.platform_q(code)).values_list("pk", flat=True)
        )
        assert in_sql == {pk for pk, expected in made if expected == code}, code


# --- batch list: people as well as devices ------------------------------------------------


def test_batch_list_counts_people_by_their_worst_outcome(helpdesk, world):
    batches = {b.name: b for b in selectors.batch_list()}
    soon = batches["Wave 1"]  # Ann (blocked + continues), Bob (repartner); Rem removed
    assert (soon.n_mailboxes, soon.n_people) == (2, 2)
    assert (soon.n_blocked, soon.n_continues, soon.n_repartner) == (1, 1, 1)
    assert (soon.n_people_blocked, soon.n_people_repartner, soon.n_people_continues) == (1, 1, 0)
    running = batches["Wave 0"]  # Eve (unknown), Fay (full_resync + redirect)
    assert running.n_people == 2
    assert (running.n_people_unknown, running.n_people_redirect, running.n_people_full_resync) == (
        1,
        1,
        0,
    )
    later = batches["Wave 2"]  # Cid (continues), Dee (no phone)
    assert (later.n_mailboxes, later.n_people, later.n_people_continues) == (2, 1, 1)
    for batch in batches.values():
        assert batch.n_people == sum(
            getattr(batch, f"n_people_{o}") for o in selectors.OUTCOME_ORDER
        )
    page = helpdesk.get(reverse("migrations_plan:batch_list")).content.decode()
    assert f"{URL}?batch={soon.pk}" in page
    assert "1 person" in page and "People" in page


@pytest.mark.postgres
def test_a_page_walks_without_parallel_workers_and_puts_the_setting_back(helpdesk, world):
    def setting() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW max_parallel_workers_per_gather")
            return cursor.fetchone()[0]

    before = setting()
    with CaptureQueriesContext(connection) as captured:
        assert names(get(helpdesk, outcome="blocked", sort="outcome"))
    sql = [q["sql"] for q in captured.captured_queries]
    assert sql.count("SELECT set_config('max_parallel_workers_per_gather', '0', false)") == 1
    assert sql.count("RESET max_parallel_workers_per_gather") == 1
    assert setting() == before
