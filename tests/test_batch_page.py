"""The batch page lists people, not devices: each person (a mailbox of the batch) with all their
phones under them, 25 people a page, filters and sorts by person, people counted next to
devices in one table, a fixed number of queries, and a table that fits a 1280 px screen."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from devices.models import Partnership
from migrations_plan.models import MoveBatch
from migrations_plan.services import batch_create, batch_plan, batch_transition
from tests.factories import (
    ExchangeServerFactory,
    MailboxFactory,
    NamespaceFactory,
    PartnershipFactory,
)

pytestmark = pytest.mark.django_db
START = timezone.now() + timedelta(days=10)


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # the batch's counts are cached per plan; start each test without them
    yield
    cache.clear()


@pytest.fixture
def org():
    ex2010 = ExchangeServerFactory(name="EX2010A", ex2010=True)
    ex2016 = ExchangeServerFactory(name="EX2016A")
    NamespaceFactory(host="mail.contoso.com", servers=[ex2016])  # phones keep syncing
    return ex2010, ex2016


@pytest.fixture
def wave(org):
    """Three people: Alex has a quarantined (blocked) phone and one that continues, Blake two
    phones that continue, Casey no phone."""
    ex2010, ex2016 = org
    alex = MailboxFactory(server=ex2010, display_name="Alex Amber", alias="alex")
    blocked = PartnershipFactory(
        mailbox=alex, access_state="Quarantined", device__device_id="ApplBLOCKED0001"
    )
    PartnershipFactory(mailbox=alex, device__device_id="ApplALEXFINE002", device__model="Pixel 8")
    blake = MailboxFactory(server=ex2010, display_name="Blake Brown", alias="blake")
    PartnershipFactory.create_batch(2, mailbox=blake)
    casey = MailboxFactory(server=ex2010, display_name="Casey Cole", alias="casey")
    batch = batch_create(
        name="Wave",
        target_server=ex2016,
        start_at=START,
        mailboxes=[casey, blake, alex],
        actor=None,
    )
    return batch, {"alex": alex, "blake": blake, "casey": casey, "blocked": blocked}


def page(client, batch: MoveBatch, **params) -> str:
    response = client.get(reverse("migrations_plan:batch_detail", args=[batch.pk]), params)
    assert response.status_code == 200
    return response.content.decode()


def people(body: str) -> list[str]:
    """The people listed, in order, by display name."""
    return re.findall(r'<span class="person-name">(?:<a [^>]*>)?([^<]+)', body)


def person(body: str, name: str) -> str:
    """The <tbody> of one person: their header row and their phones."""
    groups = re.findall(r'<tbody class="person">.*?</tbody>', body, re.S)
    (found,) = [g for g in groups if f">{name}<" in g]
    return found


def test_each_person_is_listed_once_with_every_phone_under_them(client, helpdesk_user, wave):
    batch, who = wave
    client.force_login(helpdesk_user)

    body = page(client, batch)

    assert people(body) == ["Alex Amber", "Blake Brown", "Casey Cole"], "worst outcome first"
    alex = person(body, "Alex Amber")
    assert alex.count('<tr class="phone">') == 2
    assert "ApplBLOCKED0001" in alex and "ApplALEXFINE002" in alex
    assert alex.index("ApplBLOCKED0001") < alex.index("ApplALEXFINE002"), "worst phone first"
    assert who["alex"].primary_smtp_address in alex and "from EX2010A / DB01" in alex
    assert "2 phones" in alex
    assert person(body, "Blake Brown").count('<tr class="phone">') == 2
    casey = person(body, "Casey Cole")
    assert '<tr class="phone">' not in casey and "No phone syncs with this mailbox" in casey


def test_reasons_are_readable_without_opening_anything(client, helpdesk_user, wave):
    batch, _ = wave
    client.force_login(helpdesk_user)

    alex = person(page(client, batch), "Alex Amber")

    blocked_row = alex.split('<tr class="phone">')[1]
    why = blocked_row.split("<details", 1)[0]
    assert "<em>Tell the user:</em> " in why and "<em>Admin:</em> " in why
    assert "quarantine" in why.lower()
    summary = re.search(r"<summary>(.*?)</summary>", blocked_row, re.S).group(1)
    assert "X-ABQ" in summary, "the rule ids show without expanding; only the full list folds"


def test_a_persons_name_links_to_their_helpdesk_page(client, helpdesk_user, wave):
    batch, who = wave
    client.force_login(helpdesk_user)

    body = page(client, batch)

    url = reverse("helpdesk:person", args=[who["alex"].pk])
    assert f'<a href="{url}">Alex Amber</a>' in body


def test_the_page_lists_25_people_a_page_with_all_their_phones(client, helpdesk_user, org):
    ex2010, ex2016 = org
    mailboxes = [MailboxFactory(server=ex2010, display_name=f"Person {n:02d}") for n in range(30)]
    for mailbox in mailboxes:
        PartnershipFactory.create_batch(2, mailbox=mailbox)
    batch = batch_create(
        name="Thirty", target_server=ex2016, start_at=START, mailboxes=mailboxes, actor=None
    )
    client.force_login(helpdesk_user)

    first = page(client, batch)
    second = page(client, batch, page=2)

    assert people(first) == [f"Person {n:02d}" for n in range(25)]
    assert people(second) == [f"Person {n:02d}" for n in range(25, 30)]
    assert first.count('<tr class="phone">') == 50 and second.count('<tr class="phone">') == 10
    assert "30 people, 1–25 shown" in first and "Page 1 of 2" in first
    assert "page=2#people" in first


def test_the_outcome_filter_selects_people_by_their_worst_phone_and_shows_all_their_phones(
    client, helpdesk_user, wave
):
    batch, _ = wave
    client.force_login(helpdesk_user)

    blocked = page(client, batch, outcome="blocked")
    continues = page(client, batch, outcome="continues")

    assert people(blocked) == ["Alex Amber"]
    assert "ApplALEXFINE002" in blocked, "the person's other phone is listed too"
    assert "1 person matches" in blocked
    assert people(continues) == ["Blake Brown"], "Alex counts under blocked, not continues"


def test_search_rule_and_sort_select_and_order_people(client, helpdesk_user, wave):
    batch, who = wave
    client.force_login(helpdesk_user)

    assert people(page(client, batch, q="ALEXFINE")) == ["Alex Amber"]  # a phone's device id
    assert people(page(client, batch, q="pixel 8")) == ["Alex Amber"]  # a phone's model
    assert people(page(client, batch, q="cole")) == ["Casey Cole"]  # the name
    assert people(page(client, batch, q=who["blake"].primary_smtp_address[:6])) == ["Blake Brown"]
    assert people(page(client, batch, rule="x-abq")) == ["Alex Amber"]
    assert people(page(client, batch, rule="X-NOPE")) == []
    assert "No person matches" in page(client, batch, rule="X-NOPE")
    assert people(page(client, batch, q="a", outcome="continues")) == ["Blake Brown"]
    assert people(page(client, batch, sort="mailbox")) == [
        "Alex Amber",
        "Blake Brown",
        "Casey Cole",
    ]
    Partnership.objects.filter(mailbox=who["blake"]).update(
        last_success_sync_at=timezone.now() + timedelta(hours=1)
    )
    assert people(page(client, batch, sort="last_sync")) == [
        "Blake Brown",
        "Alex Amber",
        "Casey Cole",
    ], "the most recent sync first, no phone last"
    assert people(page(client, batch, sort="device", outcome="blocked")) == ["Alex Amber"]
    selected = page(client, batch)
    assert '<option value="outcome" selected>' in selected, "the sort box says what the page does"


def test_people_are_counted_next_to_devices_once_per_outcome(client, helpdesk_user, wave):
    batch, _ = wave
    client.force_login(helpdesk_user)

    body = page(client, batch)

    assert body.count("per outcome</caption>") == 1, "one table of counts, no chart repeating it"
    assert "<svg role=" not in body and 'role="img"' not in body
    table = body[
        body.index('<table class="outcomes">') : body.index(
            "</table>", body.index('<table class="outcomes">')
        )
    ]
    rows = {
        outcome: (int(people_n), int(devices_n))
        for outcome, people_n, devices_n in re.findall(
            r'badge-(\w+)".*?<td class="num">(\d+)</td>\s*<td class="num">(\d+)</td>', table, re.S
        )
    }
    assert rows["blocked"] == (1, 1), "Alex, by the worst of two phones"
    assert rows["continues"] == (1, 3), "Blake; Alex's second phone counts only as a device"
    assert rows["repartner"] == (0, 0)
    assert '<td class="num">2</td><td class="num">4</td>' in table  # people with a phone, phones
    assert "1 person has no phone" in body
    assert "<strong>1</strong> of 3 people must act" in body
    assert 'href="?outcome=blocked#people"' in table


def test_the_batch_page_runs_the_same_queries_for_2_and_30_people(
    client, admin_user, org, django_assert_max_num_queries
):
    ex2010, ex2016 = org
    few = [MailboxFactory(server=ex2010) for _ in range(2)]
    many = [MailboxFactory(server=ex2010) for _ in range(30)]
    for mailbox in few + many:
        PartnershipFactory(mailbox=mailbox, access_state="Quarantined")
        PartnershipFactory(mailbox=mailbox)
    small = batch_create(
        name="Two", target_server=ex2016, start_at=START, mailboxes=few, actor=None
    )
    large = batch_create(
        name="Thirty", target_server=ex2016, start_at=START, mailboxes=many, actor=None
    )
    for batch in (small, large):
        batch_transition(batch=batch, action="schedule", actor=admin_user)  # Moved/Failed too
    client.force_login(admin_user)
    client.get(reverse("dashboard"))  # the session and permission caches

    for params in ({}, {"outcome": "blocked"}, {"q": "user"}, {"sort": "last_sync", "page": 2}):
        cache.clear()
        with CaptureQueriesContext(connection) as cold:
            page(client, small, **params)
        with CaptureQueriesContext(connection) as warm:
            page(client, small, **params)
        cache.clear()
        with django_assert_max_num_queries(len(cold)):
            page(client, large, **params)
        with django_assert_max_num_queries(len(warm)):
            body = page(client, large, **params)
        assert body.count('<tbody class="person">') in (5, 25, 30) or params.get("q")


def test_the_counts_follow_a_removal_and_a_new_plan(client, admin_user, wave):
    batch, who = wave
    client.force_login(admin_user)
    assert "<strong>1</strong> of 3 people must act" in page(client, batch)

    client.post(reverse("migrations_plan:batch_member", args=[batch.pk, who["alex"].pk, "remove"]))
    after_removal = page(client, batch)
    assert "Alex Amber" not in people(after_removal)
    assert "<strong>0</strong> of 2 people must act" in after_removal

    Partnership.objects.filter(mailbox=who["blake"]).update(access_state="Quarantined")
    batch_plan(batch=MoveBatch.objects.get(pk=batch.pk))
    replanned = page(client, batch)
    assert "<strong>1</strong> of 2 people must act" in replanned
    assert people(page(client, batch, outcome="blocked")) == ["Blake Brown"]


def test_member_actions_are_on_the_persons_row_for_admins_only(
    client, admin_user, helpdesk_user, wave
):
    batch, who = wave
    batch_transition(batch=batch, action="schedule", actor=admin_user)
    address = who["blake"].primary_smtp_address

    client.force_login(helpdesk_user)
    assert "Remove" not in person(page(client, batch), "Blake Brown")

    client.force_login(admin_user)
    blake = person(page(client, batch), "Blake Brown")
    for label in (
        f"Remove {address} from the batch",
        f"Record {address} as moved",
        f"Record {address} as failed",
    ):
        assert f'aria-label="{label}"' in blake
    response = client.post(
        reverse("migrations_plan:batch_member", args=[batch.pk, who["blake"].pk, "moved"]),
        {"next": reverse("migrations_plan:batch_detail", args=[batch.pk]) + "?page=1"},
    )
    assert response["Location"].endswith("?page=1")
    assert "Moved</span>" in person(page(client, batch), "Blake Brown")


@pytest.mark.browser
@pytest.mark.slow
def test_the_people_table_fits_1280_and_1024_pixels_with_long_values(
    live_server, transactional_db, admin_user, org, monkeypatch
):
    # Playwright's sync API keeps an event loop running in this thread (see test_browser_flow).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect, sync_playwright

    from tests.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

    ex2010, ex2016 = org
    mailboxes = []
    for n in range(4):
        mailbox = MailboxFactory(
            server=ex2010,
            display_name=f"{n} " + "Wolfeschlegelsteinhausenbergerdorff" * 7,
            primary_smtp_address=f"{'x' * 60}{n}@{'sub' * 20}.contoso.com",
            database="D" * 200,
        )
        PartnershipFactory(
            mailbox=mailbox,
            access_state="Quarantined",
            device__device_id=f"{n}" + "A" * 127,
            device__model="M" * 128,
            device__friendly_name="F" * 255,
        )
        PartnershipFactory(mailbox=mailbox)
        mailboxes.append(mailbox)
    batch = batch_create(
        name="Long", target_server=ex2016, start_at=START, mailboxes=mailboxes, actor=None
    )
    batch_transition(batch=batch, action="schedule", actor=admin_user)
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page_ = browser.new_page(viewport={"width": 1280, "height": 900})
            page_.set_default_timeout(10_000)
            page_.goto(f"{live_server.url}/accounts/login/")
            page_.get_by_label("User name").fill(admin_user.username)
            page_.get_by_label("Password").fill("pw-for-tests")
            page_.get_by_role("button", name="Log in").click()
            expect(page_.get_by_role("button", name="Log out")).to_be_visible()
            page_.goto(f"{live_server.url}/batches/{batch.pk}/")
            region = page_.get_by_role("region", name="People and their phones")
            expect(region.locator("tbody.person")).to_have_count(4)
            for width in (1280, 1024):
                page_.set_viewport_size({"width": width, "height": 900})
                wrap = region.locator(".table-wrap")
                scroll, client_width = wrap.evaluate("w => [w.scrollWidth, w.clientWidth]")
                assert scroll <= client_width, f"the table scrolls sideways at {width} px"
                last = region.locator("thead th").last
                expect(last).to_have_text("Why, and what to do")
                right = last.evaluate("th => th.getBoundingClientRect().right")
                assert right <= wrap.evaluate("w => w.getBoundingClientRect().right") + 1
                assert page_.evaluate("document.documentElement.scrollWidth") <= width
                failed = region.locator("tbody.person").first.get_by_role(
                    "button", name=re.compile(r"Record .* as failed")
                )
                expect(failed).to_be_visible()
                assert failed.evaluate("b => b.getBoundingClientRect().right") <= right + 1
                page_.screenshot(path=ARTIFACTS / f"batch-people-{width}.png", full_page=True)
        finally:
            browser.close()
