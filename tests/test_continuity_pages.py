"""After the move, on the pages (issue 14): the batch page's "After the move" panel, the
prediction-accuracy page, the helpdesk's silent queue, the search filter and the person's page,
all from states produced by the real import path (test_continuity.py's helpers)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from helpdesk import search
from migrations_plan import accuracy, services
from migrations_plan.accuracy import Verdict
from migrations_plan.models import AuditEntry, Continuity, MemberState, MoveBatch
from tests.factories import ExchangeServerFactory, MailboxFactory, NamespaceFactory

pytestmark = pytest.mark.django_db

HEADER = (
    '"Identity","DeviceId","DeviceType","DeviceModel","DeviceFriendlyName",'
    '"DeviceAccessState","FirstSyncTime","LastSuccessSync"\n'
)
XSS_NAME = "<script>alert(1)</script>"
NOW = timezone.now().replace(second=0, microsecond=0)
FIRST = NOW - timedelta(days=60)
BEFORE = NOW - timedelta(days=4)  # the last sync before the move


def _us(moment: datetime | None) -> str:
    return moment.strftime("%m/%d/%Y %I:%M:%S %p") if moment else ""


def export_line(mailbox, device_id, first, last, *, friendly="", access="Allowed") -> str:
    identity = f"{mailbox.identity}/ExchangeActiveSyncDevices/iPhone\u00a7{device_id}"
    return (
        f'"{identity}","{device_id}","iPhone","iPhone15C2","{friendly}","{access}",'
        f'"{_us(first)}","{_us(last)}"\n'
    )


def import_devices(tmp_path, lines, *extra) -> None:
    """import_inventory, and what its commit sets off (re-plans, verification, follow-ups)."""
    path = tmp_path / f"devices-{len(list(tmp_path.iterdir()))}.csv"
    path.write_text(HEADER + "".join(lines), encoding="utf-8-sig")
    with TestCase.captureOnCommitCallbacks(execute=True):
        # The target's exports after the move are full ones (what goes missing is gone).
        full = () if "--partial" in extra else ("--full", "--confirm-stale")
        call_command(
            "import_inventory", str(path), "--culture", "en-US", *full, *extra, stdout=StringIO()
        )


@pytest.fixture
def lab():
    """Exchange 2010 (contoso) and a server of another forest (fabrikam) moving to Exchange
    2016 behind the namespace phones use: contoso's phones are predicted to keep syncing,
    fabrikam's to need re-partnering, a quarantined phone to be blocked."""
    target = ExchangeServerFactory(name="EX2016A", forest="contoso.local")
    NamespaceFactory(host="mail.contoso.com", servers=[target])
    return {
        "contoso": ExchangeServerFactory(name="EX2010A", ex2010=True, forest="contoso.local"),
        "fabrikam": ExchangeServerFactory(name="EXFAB", forest="fabrikam.local"),
        "target": target,
    }


# Who is who: (server, quarantined, what the export after the move shows of their phone).
CAST = {
    "ann": ("contoso", False, "sync"),  # continues -> confirmed: as predicted
    "bob": ("contoso", False, "silent"),  # continues -> silent: wrong
    "cid": ("contoso", False, "recreate"),  # continues -> replaced (same DeviceId): wrong
    "dee": ("contoso", False, "vanish"),  # continues -> gone: no verdict
    "rita": ("fabrikam", False, "new_device"),  # repartner -> replaced: as predicted
    "rex": ("fabrikam", False, "sync"),  # repartner -> confirmed: wrong
    "ray": ("fabrikam", False, "silent"),  # repartner -> silent: not re-partnered yet
    "quinn": ("contoso", True, "silent"),  # blocked -> silent: as predicted
}


def device_id(key: str) -> str:
    return f"Appl{key.upper()}0001"


def moved_wave(tmp_path, lab, cast, *, name="Wave 1", moved=None, friendly=None, partial=False):
    """Import the inventory, create and schedule a batch of `cast`, record it moved (two days
    ago unless `moved` says otherwise), then import the target's export after the move."""
    friendly = friendly or {}
    extra = ("--partial",) if partial else ()
    people = {
        key: MailboxFactory(
            server=lab[server],
            display_name=f"{key.title()} Person",
            alias=key,
            primary_smtp_address=f"{key}@contoso.com",
        )
        for key, (server, _, _) in cast.items()
    }

    def line(key, first, last, *, suffix=""):
        return export_line(
            people[key],
            device_id(key) + suffix,
            first,
            last,
            friendly=friendly.get(key, f"{key.title()}'s iPhone"),
            access="Quarantined" if cast[key][1] else "Allowed",
        )

    import_devices(tmp_path, [line(key, FIRST, BEFORE) for key in cast], *extra)
    batch = services.batch_create(
        name=name,
        target_server=lab["target"],
        start_at=NOW + timedelta(days=5),
        mailboxes=list(people.values()),
        actor=None,
    )
    batch = services.batch_transition(batch=batch, action="schedule", actor=None)
    moved_at = {key: (moved or {}).get(key, NOW - timedelta(days=2)) for key in cast}
    services.batch_mark_moves(
        batch=batch,
        outcomes={m.pk: MemberState.MOVED for m in people.values()},
        actor=None,
        at={people[key].pk: at for key, at in moved_at.items()},
    )
    lines = []
    for key, (_, _, after) in cast.items():
        synced = moved_at[key] + timedelta(hours=5)
        if after == "sync":
            lines.append(line(key, FIRST, synced))
        elif after == "silent":
            lines.append(line(key, FIRST, BEFORE))
        elif after == "recreate":
            lines.append(line(key, synced, synced))
        elif after == "new_device":
            lines += [line(key, FIRST, BEFORE), line(key, synced, synced, suffix="N")]
    import_devices(tmp_path, lines, *extra)
    batch.refresh_from_db()
    return batch, people


@pytest.fixture
def wave(lab, tmp_path):
    """CAST moved two days ago (Quinn three: the oldest move), the export after the move
    imported; Bob's phone is called <script>alert(1)</script>."""
    return moved_wave(
        tmp_path,
        lab,
        CAST,
        moved={"quinn": NOW - timedelta(days=3)},
        friendly={"bob": XSS_NAME},
    )


def section(page: str, section_id: str) -> str:
    match = re.search(rf'<section class="panel" id="{section_id}".*?</section>', page, re.S)
    assert match, f"no section {section_id}"
    return match.group(0)


def get(client, name: str, *args, **params) -> str:
    response = client.get(reverse(name, args=args), params)
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def cells(row_html: str) -> list[str]:
    return [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", c)).strip()
        for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row_html, re.S)
    ]


def body_rows(table_html: str) -> list[str]:
    tbody = re.search(r"<tbody>(.*?)</tbody>", table_html, re.S).group(1)
    return re.findall(r"<tr[^>]*>.*?</tr>", tbody, re.S)


# -- the definition: pure ------------------------------------------------------------------------

VERDICTS = {
    # predicted: {observed: verdict}
    "continues": {"confirmed": "as_predicted", "silent": "wrong", "replaced": "wrong"},
    "redirect": {"confirmed": "as_predicted", "silent": "wrong", "replaced": "wrong"},
    "full_resync": {"confirmed": "as_predicted", "silent": "wrong", "replaced": "wrong"},
    "repartner": {"replaced": "as_predicted", "confirmed": "wrong", "silent": "not_yet"},
    "blocked": {"silent": "as_predicted", "confirmed": "wrong", "replaced": "wrong"},
    "unknown": {
        "confirmed": "no_prediction",
        "silent": "no_prediction",
        "replaced": "no_prediction",
    },
}


@pytest.mark.parametrize(
    ("predicted", "observed", "expected"),
    [(p, o, v) for p, row in VERDICTS.items() for o, v in row.items()]
    + [(p, "pending", "pending") for p in VERDICTS]
    + [(p, "gone", "gone" if p != "unknown" else "no_prediction") for p in VERDICTS],
)
def test_each_prediction_and_observation_gets_one_verdict(predicted, observed, expected):
    assert accuracy.verdict(predicted, observed) == expected


def test_deciding_rules_are_the_reasons_with_the_predicted_outcome_and_not_warnings():
    reasons = [
        {"rule": "M-XORG", "outcome": "repartner"},
        {"rule": "X-CERT", "outcome": "continues", "is_warning": True},
        {"rule": "M-XORG", "outcome": "repartner"},
        {"rule": "X-ABQ", "outcome": "repartner", "is_warning": True},
    ]
    assert accuracy.deciding_rules(reasons, "repartner") == ["M-XORG"]
    assert accuracy.deciding_rules(reasons, "continues") == []
    assert Verdict.WRONG.rank == 0, "wrong predictions sort first"


# -- the batch page ------------------------------------------------------------------------------


def test_the_batch_page_counts_continuity_against_the_prediction_wrong_first(
    client, admin_user, wave
):
    batch, _ = wave
    client.force_login(admin_user)
    panel = section(get(client, "migrations_plan:batch_detail", batch.pk), "after-move")

    summary = re.search(r'<table class="continuity-summary">.*?</table>', panel, re.S).group(0)
    rows = [cells(r) for r in body_rows(summary)]
    # (what happened, predicted, observed, verdict, phones), the wrong ones first.
    assert [r[1:] for r in rows] == [
        ["Re-partner", "confirmed", "⚠ Wrong prediction", "1"],
        ["Continues", "replaced", "⚠ Wrong prediction", "1"],
        ["Continues", "silent", "⚠ Wrong prediction", "1"],
        ["Re-partner", "silent", "Not re-partnered yet", "1"],
        ["Blocked", "silent", "As predicted", "1"],
        ["Re-partner", "replaced", "As predicted", "1"],
        ["Continues", "confirmed", "As predicted", "1"],
        ["Continues", "gone", "No longer listed", "1"],
    ]
    assert rows[0][0] == "Predicted to need re-partnering: synced after the move (confirmed)"
    assert rows[2][0] == "Predicted to keep syncing: still silent"
    assert rows[5][0] == "Predicted to need re-partnering: re-partnered (replaced)"
    assert rows[6][0] == "Predicted to keep syncing: synced after the move (confirmed)"
    assert all('class="verdict-row-wrong"' in r for r in body_rows(summary)[:3])
    assert "3 wrong predictions" in panel

    phones = re.search(r'<table class="continuity-phones">.*?</table>', panel, re.S).group(0)
    listed = [cells(r) for r in body_rows(phones)]
    people = [r[0].split(" ")[0] for r in listed]
    assert people[:3] == ["Bob", "Cid", "Rex"], "wrong predictions first, then by name"
    assert people[3] == "Ray" and set(people[4:]) == {"Ann", "Quinn", "Rita", "Dee"}
    assert "replaced by" in phones and device_id("rita") + "N" in phones
    assert reverse("helpdesk:person", args=[wave[1]["bob"].pk]) in phones
    # The friendly name from the export is text, never markup.
    assert XSS_NAME not in panel and "&lt;script&gt;alert(1)&lt;/script&gt;" in panel


def test_the_panel_waits_for_a_moved_mailbox(client, admin_user, lab):
    mailbox = MailboxFactory(server=lab["contoso"])
    batch = services.batch_create(
        name="Later",
        target_server=lab["target"],
        start_at=NOW + timedelta(days=5),
        mailboxes=[mailbox],
        actor=None,
    )
    client.force_login(admin_user)
    page = get(client, "migrations_plan:batch_detail", batch.pk)
    assert 'id="after-move"' not in page
    assert "Silent after" in page and 'name="grace_hours"' in page


# -- the accuracy page ---------------------------------------------------------------------------


def test_the_accuracy_page_shows_the_rule_whose_phones_went_silent_first(
    client, helpdesk_user, wave
):
    client.force_login(helpdesk_user)
    page = get(client, "migrations_plan:accuracy")
    table = section(page, "rules")
    rows = {cells(r)[0]: cells(r) for r in body_rows(table)}
    order = list(rows)
    # rule, predicted, phones, decided, as predicted, wrong, not yet, wrong share
    assert rows["M-2010-2013P"][2:] == ["4", "4", "1", "⚠ 2", "0", "67 %"]
    assert rows["M-XORG"][2:] == ["3", "3", "1", "⚠ 1", "1", "50 %"]
    assert rows["X-ABQ"][2:] == ["1", "1", "1", "0", "0", "0 %"]
    assert order == ["M-2010-2013P", "M-XORG", "X-ABQ"], "the most wrong rule first"
    # Only deciding rules count: Quinn's continues reason did not decide her blocked phone,
    # the repartner predictions' unchecked warnings decided nothing.
    assert "X-CERT" not in rows and "X-POLICY" not in rows
    assert 'aria-current="page">Accuracy</a>' in page
    assert 'href="?rule=M-2010-2013P#wrong"' in table
    assert "?rule=X-ABQ" not in table, "a rule without a wrong phone has nothing to list"

    wrong = section(get(client, "migrations_plan:accuracy", rule="M-2010-2013P"), "wrong")
    listed = [cells(r) for r in body_rows(wrong)]
    assert sorted(r[0].split(" ")[0] for r in listed) == ["Bob", "Cid"]
    assert all(r[2] == "Wave 1" for r in listed)
    assert XSS_NAME not in wrong and "&lt;script&gt;" in wrong
    xorg = section(get(client, "migrations_plan:accuracy", rule="M-XORG"), "wrong")
    assert [cells(r)[0].split(" ")[0] for r in body_rows(xorg)] == ["Rex"]


def test_the_accuracy_page_says_when_nothing_moved_yet(client, helpdesk_user):
    client.force_login(helpdesk_user)
    assert "No mailbox has been recorded as moved yet" in get(client, "migrations_plan:accuracy")


# -- the helpdesk: the queue, the search filter, the person's page -------------------------------


def test_the_silent_queue_lists_people_with_a_silent_phone_oldest_move_first(
    client, helpdesk_user, wave
):
    _, people = wave
    client.force_login(helpdesk_user)
    page = get(client, "helpdesk:silent")
    names = re.findall(r'<h2 id="silent-\d+"><a href="/people/(\d+)/">', page)
    assert [int(pk) for pk in names] == [people[k].pk for k in ("quinn", "bob", "ray")]
    assert "3 people" in page
    ray = page.split(f'href="/people/{people["ray"].pk}/"', 1)[1]
    assert "Re-partner" in ray and "Tell the user:" in ray
    assert 'class="steps"' in ray, "the steps of re-creating the account, for the platform"
    assert "Wave 1" in ray and "none" in ray  # no sync since the move
    assert BEFORE.astimezone(timezone.get_current_timezone()).strftime("%Y-%m-%d") in ray
    bob = page.split(f'href="/people/{people["bob"].pk}/"', 1)[1].split("</article>")[0]
    assert "Wrong prediction" in bob, "predicted to keep syncing: its advice may not help"
    assert "Wrong prediction" not in ray
    assert XSS_NAME not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Ann Person" not in page and "Rita Person" not in page


def test_the_search_filter_keeps_people_with_a_silent_phone(client, helpdesk_user, wave):
    everyone = {p.display_name for p in search.people("contoso.com")}
    assert len(everyone) == len(CAST)
    silent = {p.display_name for p in search.people("contoso.com", silent_only=True)}
    assert silent == {"Bob Person", "Ray Person", "Quinn Person"}
    # Found by the phone too: Bob's phone name is the query.
    assert [p.display_name for p in search.people(XSS_NAME, silent_only=True)] == ["Bob Person"]
    assert search.people("Ann Person", silent_only=True).people == []

    client.force_login(helpdesk_user)
    page = get(client, "helpdesk:search", q="person", silent="on")
    assert 'name="silent" value="on" checked' in page
    assert sorted(re.findall(r'<a href="/people/\d+/">(\w+) Person</a>', page)) == [
        "Bob",
        "Quinn",
        "Ray",
    ]
    unfiltered = get(client, "helpdesk:search", q="person")
    assert len(re.findall(r'<a href="/people/\d+/">', unfiltered)) == len(CAST)


def test_the_person_page_shows_each_phone_since_the_move(client, helpdesk_user, wave):
    _, people = wave
    client.force_login(helpdesk_user)
    bob = get(client, "helpdesk:person", people["bob"].pk)
    assert '<span class="continuity continuity-silent"' in bob
    assert "no successful sync since the move" in bob
    ann = get(client, "helpdesk:person", people["ann"].pk)
    assert '<span class="continuity continuity-confirmed"' in ann
    assert "last successful sync" in ann
    rita = get(client, "helpdesk:person", people["rita"].pk)
    assert "continuity-replaced" in rita and f"replaced by <code>{device_id('rita')}N" in rita
    assert "Set up after the move to Wave 1" in rita, "her new phone was never predicted"


# -- who may do what -----------------------------------------------------------------------------


def test_the_pages_need_a_login_and_helpdesk_reads_them(client, helpdesk_user, wave):
    batch, _ = wave
    urls = [
        reverse("migrations_plan:accuracy"),
        reverse("helpdesk:silent"),
        reverse("migrations_plan:batch_detail", args=[batch.pk]),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url
    client.force_login(helpdesk_user)
    for url in urls:
        assert client.get(url).status_code == 200, url
    page = client.get(urls[2]).content.decode()
    assert 'id="after-move"' in page and 'name="grace_hours"' not in page
    response = client.post(
        reverse("migrations_plan:batch_grace", args=[batch.pk]), {"grace_hours": 1}
    )
    assert response.status_code == 403
    assert MoveBatch.objects.get(pk=batch.pk).grace_hours == 24
    assert client.post(urls[0]).status_code == 405 and client.post(urls[1]).status_code == 405


def test_an_admin_lengthens_the_grace_period_and_silent_phones_are_pending_again(
    client, admin_user, wave
):
    batch, _ = wave
    client.force_login(admin_user)
    url = reverse("migrations_plan:batch_grace", args=[batch.pk])
    response = client.post(url, {"grace_hours": 24 * 5})
    assert response.status_code == 302
    batch.refresh_from_db()
    assert batch.grace_hours == 120
    states = dict(
        Continuity.objects.filter(member__batch=batch).values_list(
            "member__mailbox__alias", "state"
        )
    )
    # Moved two days ago (Quinn three): within five days nobody is silent yet.
    assert states["bob"] == states["ray"] == states["quinn"] == "pending"
    assert states["ann"] == "confirmed"
    entry = AuditEntry.objects.get(batch=batch, action="grace_changed")
    assert entry.detail == {"before": 24, "after": 120}
    assert client.post(url, {"grace_hours": 0}).status_code == 302
    batch.refresh_from_db()
    assert batch.grace_hours == 120, "an invalid value changes nothing"


def test_the_create_form_takes_the_grace_period(client, admin_user, lab):
    MailboxFactory(server=lab["contoso"])
    client.force_login(admin_user)
    assert 'name="grace_hours"' in get(client, "migrations_plan:batch_create")
    response = client.post(
        reverse("migrations_plan:batch_create"),
        {
            "request_token": "6f1c2c1e-4a5b-4c3d-9e8f-0a1b2c3d4e5f",
            "name": "Slow wave",
            "target_server": lab["target"].pk,
            "start_at": (NOW + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M"),
            "notice_leads": "72, 2",
            "source_server": lab["contoso"].pk,
            "grace_hours": "48",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert MoveBatch.objects.get(name="Slow wave").grace_hours == 48


# -- queries do not grow with the people ---------------------------------------------------------

ROTATION = ["bob", "rita", "ann", "quinn", "ray", "cid", "rex", "dee"]


def cast_of(prefix: str, n: int) -> dict[str, tuple[str, bool, str]]:
    return {f"{prefix}{CAST[k][0][:1]}{i}": CAST[k] for i, k in enumerate(ROTATION[:n])}


def test_the_pages_run_a_bounded_number_of_queries_for_2_or_6_people(
    client, admin_user, lab, tmp_path, django_assert_max_num_queries
):
    small_cast, large_cast = cast_of("s", 2), cast_of("l", 6)
    small, small_people = moved_wave(tmp_path, lab, small_cast, name="Small", partial=True)
    client.force_login(admin_user)

    def pages(batch, person):
        return [
            reverse("migrations_plan:batch_detail", args=[batch.pk]),
            reverse("migrations_plan:accuracy"),
            reverse("migrations_plan:accuracy") + "?rule=M-2010-2013P",
            reverse("helpdesk:silent"),
            reverse("helpdesk:person", args=[person.pk]),
            reverse("helpdesk:search") + "?q=person&silent=on",
        ]

    def counted(urls):
        counts = []
        for url in urls:
            client.get(url)  # warm the batch page's cached impact
            with CaptureQueriesContext(connection) as queries:
                assert client.get(url).status_code == 200, url
            counts.append(len(queries))
        return counts

    silent_small = next(m for k, m in small_people.items() if small_cast[k][2] == "silent")
    before = counted(pages(small, silent_small))
    large, large_people = moved_wave(tmp_path, lab, large_cast, name="Large", partial=True)
    assert Continuity.objects.filter(member__batch=large, state="silent").count() == 3
    silent_large = next(m for k, m in large_people.items() if large_cast[k][2] == "silent")
    for url, most in zip(pages(large, silent_large), before, strict=True):
        client.get(url)
        with django_assert_max_num_queries(most):
            assert client.get(url).status_code == 200, url
