"""People search (helpdesk/search.py and /people/): every way of finding someone, one row per
person with their batch and worst outcome, constant queries, escaping, and the trigram plan on
PostgreSQL."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from helpdesk import search
from migrations_plan.models import BatchState, Explanation, MemberState, Prediction
from tests.factories import (
    BatchMailboxFactory,
    MailboxFactory,
    MobileDeviceFactory,
    MoveBatchFactory,
    PartnershipFactory,
)

pytestmark = pytest.mark.django_db


def predict(member, partnership, outcome: str) -> None:
    explanation, _ = Explanation.objects.get_or_create(
        digest=f"test-{outcome}", defaults={"outcome": outcome}
    )
    Prediction.objects.create(
        member=member, partnership=partnership, outcome=outcome, explanation=explanation
    )


@pytest.fixture
def kim():
    """Kim Jensen, with an iPhone and an old (stale) Android phone, in no batch."""
    mailbox = MailboxFactory(
        display_name="Jensen, Kim",
        alias="kjensen",
        primary_smtp_address="kim.jensen@contoso.com",
    )
    PartnershipFactory(
        mailbox=mailbox,
        device=MobileDeviceFactory(
            device_id="ApplF17LTTCGFFG8",
            imei="356938035643809",
            phone_number="+45 20 12 34 56",
            model="iPhone15C2",
            friendly_name="Kims arbejdstelefon",
        ),
    )
    PartnershipFactory(
        mailbox=mailbox,
        is_stale=True,
        device=MobileDeviceFactory(
            device_id="SEC1A2B3C4D5E6F7",
            device_type="SAMSUNGSMG991B",
            model="SM-G991B",
            friendly_name="Galaxy S21",
        ),
    )
    # Someone else, so that every search shows it tells people apart.
    PartnershipFactory(
        mailbox=MailboxFactory(
            display_name="Hansen, Anna",
            alias="ahansen",
            primary_smtp_address="anna.hansen@contoso.com",
        ),
        device=MobileDeviceFactory(device_id="ApplZZZ999999999", model="iPad13C1"),
    )
    return mailbox


def found(query: str) -> list[str]:
    return [p.display_name for p in search.people(query)]


@pytest.mark.parametrize(
    "query",
    [
        "Kim Jensen",  # given name first
        "Jensen, Kim",  # as Exchange displays it
        "jensen kim",
        "  KIM   JENSEN ",
        "jens",  # part of a name
        "kim.jensen@contoso.com",  # address
        "kim.jensen@",  # part of an address
        "kjensen",  # alias
        "kjens",  # part of an alias
        "ApplF17LTTCGFFG8",  # DeviceId
        "applf17",  # part of a DeviceId, any case
        "356938035643809",  # IMEI
        "35693803",  # part of an IMEI
        "+45 20 12 34 56",  # phone number
        "20 12 34",  # part of a phone number
        "iPhone15C2",  # model
        "sm-g991",  # part of the model of a stale partnership's phone
        "arbejdstelefon",  # friendly name
        "galaxy s21",  # friendly name of the stale one
    ],
)
def test_a_person_is_found_by_name_address_alias_or_phone(kim, query):
    assert found(query) == ["Jensen, Kim"]


def test_a_person_in_no_batch_is_found_without_batch_or_outcome(kim):
    (person,) = search.people("Kim Jensen")
    assert person.id == kim.pk
    assert person.address == "kim.jensen@contoso.com"
    assert person.batch_id is None
    assert person.worst_outcome == ""


def test_a_name_matches_only_when_every_word_does(kim):
    assert found("Kim Hansen") == []
    assert found("Anna Jensen") == []


def test_a_person_found_by_name_address_and_phone_is_one_row(kim):
    # "kim" is in the name, the address and the name of the phone.
    assert found("kim") == ["Jensen, Kim"]


def test_two_matching_phones_and_a_matching_name_still_give_one_row():
    mailbox = MailboxFactory(display_name="Tablet, Tom", alias="ttablet")
    for n in range(2):
        PartnershipFactory(
            mailbox=mailbox,
            device=MobileDeviceFactory(device_id=f"TABLET{n}", friendly_name=f"Tablet {n}"),
        )
    assert [p.id for p in search.people("tablet")] == [mailbox.pk]


def test_the_current_batch_and_the_worst_outcome_of_its_phones_are_shown(kim):
    old = MoveBatchFactory(name="Old wave", state=BatchState.COMPLETED)
    BatchMailboxFactory(batch=old, mailbox=kim, is_active=False, state=MemberState.MOVED)
    later_cancelled = MoveBatchFactory(name="Cancelled wave", state=BatchState.CANCELLED)
    BatchMailboxFactory(batch=later_cancelled, mailbox=kim, is_active=False)
    current = MoveBatchFactory(name="Wave 3", state=BatchState.SCHEDULED)
    later_cancelled.start_at = current.start_at.replace(year=current.start_at.year + 1)
    later_cancelled.save()
    member = BatchMailboxFactory(batch=current, mailbox=kim)
    iphone, galaxy = kim.partnerships.order_by("device__device_id")
    predict(member, iphone, "continues")
    predict(member, galaxy, "repartner")

    (person,) = search.people("kjensen")
    assert (person.batch_name, person.batch_active, person.worst_outcome) == (
        "Wave 3",
        True,
        "repartner",
    )
    assert person.batch_start == current.start_at


def test_without_an_active_batch_the_latest_one_is_shown(kim):
    first = MoveBatchFactory(name="Wave 1", state=BatchState.COMPLETED)
    second = MoveBatchFactory(name="Wave 2", state=BatchState.COMPLETED)
    second.start_at = first.start_at.replace(year=first.start_at.year + 1)
    second.save()
    BatchMailboxFactory(batch=first, mailbox=kim, is_active=False, state=MemberState.MOVED)
    member = BatchMailboxFactory(
        batch=second, mailbox=kim, is_active=False, state=MemberState.MOVED
    )
    predict(member, kim.partnerships.first(), "full_resync")
    removed = MoveBatchFactory(name="Left this one", state=BatchState.SCHEDULED)
    removed.start_at = second.start_at.replace(year=second.start_at.year + 1)
    removed.save()
    BatchMailboxFactory(batch=removed, mailbox=kim, is_active=False, state=MemberState.REMOVED)

    (person,) = search.people("Kim Jensen")
    assert (person.batch_name, person.batch_active, person.worst_outcome) == (
        "Wave 2",
        False,
        "full_resync",
    )
    assert person.batch_state_label == "Completed"


def test_exact_and_prefix_matches_come_before_partial_ones():
    MailboxFactory(display_name="Aakim, Zora", alias="zaakim")  # "kim" inside a word
    MailboxFactory(display_name="Berg, Kimberly", alias="kberg")  # a word starts with "kim"
    MailboxFactory(display_name="Zeta, Zed", alias="kim")  # the alias is "kim"
    assert found("kim") == ["Zeta, Zed", "Berg, Kimberly", "Aakim, Zora"]


def test_a_short_query_finds_exact_matches_only():
    MailboxFactory(display_name="Ng", alias="ngu")
    MailboxFactory(display_name="Nguyen, Ann", alias="anguyen")
    people = search.people("ng")
    assert people.exact_only
    assert [p.display_name for p in people] == ["Ng"]


def test_more_matches_than_the_limit_say_so():
    MailboxFactory.create_batch(4, display_name="Smith, Sam")
    people = search.people("Sam Smith", limit=3)
    assert len(people) == 3 and people.more
    assert not search.people("Sam Smith", limit=4).more


def test_the_selector_runs_two_queries_whatever_it_finds(django_assert_num_queries, kim):
    batch = MoveBatchFactory()
    for n in range(20):
        mailbox = MailboxFactory(display_name=f"Many, Person {n}")
        partnership = PartnershipFactory(mailbox=mailbox)
        if n % 2:
            predict(BatchMailboxFactory(batch=batch, mailbox=mailbox), partnership, "blocked")
    with django_assert_num_queries(2):
        assert len(search.people("Many")) == 20
    with django_assert_num_queries(1):  # nobody found: no batch query
        assert len(search.people("nobody-at-all")) == 0


# -- the page ------------------------------------------------------------------------------------


def test_the_page_lists_people_with_batch_date_outcome_and_link(client, helpdesk_user, kim):
    batch = MoveBatchFactory(name="Wave 3")
    member = BatchMailboxFactory(batch=batch, mailbox=kim)
    predict(member, kim.partnerships.first(), "blocked")
    client.force_login(helpdesk_user)
    response = client.get(reverse("helpdesk:search"), {"q": "Kim Jensen"})
    assert response.status_code == 200
    body = response.content.decode()
    assert reverse("helpdesk:person", args=[kim.pk]) in body
    assert "kim.jensen@contoso.com" in body
    assert "Wave 3" in body
    assert batch.start_at.strftime("%Y-%m-%d") in body
    assert 'class="badge badge-blocked"' in body
    assert "1 person matches" in body


def test_the_page_without_a_query_shows_the_form_only(client, helpdesk_user):
    client.force_login(helpdesk_user)
    body = client.get(reverse("helpdesk:search")).content.decode()
    assert 'name="q"' in body
    assert "Nobody matches" not in body


def test_the_page_says_when_nobody_matches(client, admin_user, kim):
    client.force_login(admin_user)
    body = client.get(reverse("helpdesk:search"), {"q": "Zebedee"}).content.decode()
    assert "Nobody matches “Zebedee”" in body


def test_the_page_asks_to_refine_beyond_the_limit(client, helpdesk_user):
    MailboxFactory.create_batch(51, display_name="Smith, Sam")
    client.force_login(helpdesk_user)
    body = client.get(reverse("helpdesk:search"), {"q": "smith"}).content.decode()
    assert "Too many results" in body
    assert len(re.findall(r'href="/people/\d+/"', body)) == 50


def test_page_queries_do_not_grow_with_results(
    client, helpdesk_user, django_assert_max_num_queries
):
    batch = MoveBatchFactory()
    for name, n in (("Pair", 2), ("Crowd", 20)):
        for i in range(n):
            mailbox = MailboxFactory(display_name=f"{name}, Member {i}")
            partnership = PartnershipFactory(mailbox=mailbox)
            predict(BatchMailboxFactory(batch=batch, mailbox=mailbox), partnership, "unknown")
    client.force_login(helpdesk_user)
    url = reverse("helpdesk:search")
    client.get(url, {"q": "warm up"})
    with CaptureQueriesContext(connection) as two:
        response = client.get(url, {"q": "pair"})
    assert response.content.count(b"badge-unknown") == 2
    with django_assert_max_num_queries(len(two)):
        response = client.get(url, {"q": "crowd"})
    assert response.content.count(b"badge-unknown") == 20


def test_device_text_is_escaped(client, helpdesk_user):
    mailbox = MailboxFactory(display_name="<b>Eve</b> Evans", alias="eevans")
    PartnershipFactory(
        mailbox=mailbox,
        device=MobileDeviceFactory(friendly_name="<script>alert(1)</script>"),
    )
    client.force_login(helpdesk_user)
    response = client.get(reverse("helpdesk:search"), {"q": "<script>alert(1)</script>"})
    body = response.content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body  # the query, echoed
    assert "&lt;b&gt;Eve&lt;/b&gt; Evans" in body  # the person found by their phone's name
    assert "<b>Eve</b>" not in body


def test_the_page_answers_get_only(client, helpdesk_user):
    client.force_login(helpdesk_user)
    assert client.post(reverse("helpdesk:search"), {"q": "kim"}).status_code == 405


def test_anonymous_visitors_are_sent_to_log_in(client):
    response = client.get(reverse("helpdesk:search"), {"q": "kim"})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_both_roles_may_search(client, admin_user, helpdesk_user, kim):
    for user in (admin_user, helpdesk_user):
        client.force_login(user)
        response = client.get(reverse("helpdesk:search"), {"q": "kjensen"})
        assert response.status_code == 200
        assert b"Jensen, Kim" in response.content


def test_every_page_has_the_search_box_in_the_top_bar(client, helpdesk_user):
    assert b'role="search"' not in client.get(reverse("login")).content
    client.force_login(helpdesk_user)
    for name in ("dashboard", "migrations_plan:batch_list", "devices:server_list"):
        body = client.get(reverse(name)).content.decode()
        action = reverse("helpdesk:search")
        assert f'<form class="top-search" role="search" method="get" action="{action}">' in body
        assert '<label for="top-q"' in body and 'id="top-q"' in body and 'name="q"' in body


# -- PostgreSQL: the trigram indexes serve the search ---------------------------------------------


@pytest.mark.postgres
def test_postgresql_searches_through_the_trigram_indexes(kim):
    with connection.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        assert cur.fetchone()
        sql, params = search._matches("jens", exact_only=False)[:10].query.sql_with_params()
        # A few rows make any plan cheap: take sequential scans off the table to see which
        # indexes the planner can use for these conditions at all.
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cur.fetchall())
    for index in ("display_name", "alias", "primary_smtp_a", "device_id", "friendly_name"):
        assert f"_{index}_trgm" in plan, plan
    for query in ("Kim Jensen", "Jensen, Kim", "jens", "kjens", "applf17", "35693803", "20 12 34"):
        assert found(query) == ["Jensen, Kim"], query
