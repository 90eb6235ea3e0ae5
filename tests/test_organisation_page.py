"""The organisation page: every fact the predictions read, who recorded what, and who may."""

from __future__ import annotations

from datetime import timedelta
from html.parser import HTMLParser

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from devices.models import (
    ClientProfile,
    DeviceAccessRule,
    ExchangeServer,
    FactChange,
    Namespace,
    Organisation,
)
from devices.services import (
    client_profile_save,
    namespace_save,
    organisation_record_facts,
    server_record_facts,
)
from migrations_plan.models import MoveBatch, Prediction
from migrations_plan.services import batch_create
from tests.factories import (
    ClientProfileFactory,
    ExchangeServerFactory,
    MailboxFactory,
    MobileDevicePolicyFactory,
    NamespaceFactory,
    OrganisationFactory,
    PartnershipFactory,
)

pytestmark = pytest.mark.django_db
ORGANISATION = reverse("devices:organisation")


class _FormReader(HTMLParser):
    """What a browser would submit for one form of a page: every field with the value the
    page shows (selected option, typed text, ticked box)."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action, self.inside, self.select, self.textarea = action, False, None, None
        self.values: dict[str, str | list[str]] = {}
        self.found = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            self.inside = a.get("action") == self.action
            self.found = self.found or self.inside
        if not self.inside:
            return
        if tag == "input" and a.get("name"):
            if a.get("type") == "checkbox":
                if "checked" in a:
                    self.values[a["name"]] = a.get("value") or "on"
            else:
                self.values[a["name"]] = a.get("value") or ""
        elif tag == "select":
            self.select = a["name"]
            if "multiple" in a:
                self.values[self.select] = []
        elif tag == "option" and self.select and "selected" in a:
            if isinstance(self.values.get(self.select), list):
                self.values[self.select].append(a["value"])
            else:
                self.values[self.select] = a["value"]
        elif tag == "textarea":
            self.textarea = a["name"]
            self.values[self.textarea] = ""

    def handle_data(self, data: str) -> None:
        if self.inside and self.textarea:
            self.values[self.textarea] += data.lstrip("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea = None


def form_as_shown(client: Client, page: str, action: str) -> dict[str, str | list[str]]:
    reader = _FormReader(action)
    reader.feed(client.get(page).content.decode())
    assert reader.found, f"no form posting to {action} on {page}"
    reader.values.pop("csrfmiddlewaretoken", None)
    return reader.values


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def eager_worker(settings):
    """Plan tasks (if re-planning is queued) run in-process when their on_commit fires."""
    from exsync.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def test_the_organisation_page_shows_each_fact_where_other_pages_can_link_to_it(admin_client):
    org = OrganisationFactory(forest="contoso.local")
    MobileDevicePolicyFactory(
        organisation=org, name="Strict", allow_non_provisionable_devices=False
    )
    server = ExchangeServerFactory(name="EX2010A", ex2010=True, forest="contoso.local")
    NamespaceFactory(host="mail.contoso.com", servers=[server])
    ClientProfileFactory(name="iOS Mail", honours_451=None)

    page = admin_client.get(ORGANISATION).content.decode()

    for anchor in (
        f"org-{org.pk}",
        "namespaces",
        "client-profiles",
        "servers",
        f"server-{server.pk}",
    ):
        assert f'id="{anchor}"' in page
    assert "Strict" in page and "mail.contoso.com" in page and "iOS Mail" in page
    assert "unknown — not recorded" in page
    assert "Get-ActiveSyncOrganizationSettings | Export-Csv" in page
    assert "(Get-Command ExSetup.exe).FileVersionInfo.FileVersion" in page
    assert 'href="/inventory/organisation/"' in page, "the main navigation links the page"


def test_helpdesk_reads_the_organisation_page_but_cannot_change_it(client, helpdesk_user):
    org = OrganisationFactory()
    server = ExchangeServerFactory(iwa_enabled=None)
    namespace = NamespaceFactory(servers=[server])
    profile = ClientProfileFactory()
    client.force_login(helpdesk_user)

    page = client.get(ORGANISATION)
    assert page.status_code == 200
    body = page.content.decode()
    assert body.count("<form") == 2, "only the header's search and log-out forms"
    assert "/edit/" not in body and "/add/" not in body
    server_page = client.get(reverse("devices:server_detail", args=[server.pk])).content.decode()
    assert server_page.count("<form") == 2

    writes = {
        reverse("devices:organisation_edit", args=[org.pk]): {"default_access_level": "Block"},
        reverse("devices:namespace_add"): {"host": "evil.example.com"},
        reverse("devices:namespace_edit", args=[namespace.pk]): {"host": "evil.example.com"},
        reverse("devices:namespace_delete", args=[namespace.pk]): {},
        reverse("devices:client_profile_add"): {"name": "x"},
        reverse("devices:client_profile_edit", args=[profile.pk]): {"name": "x"},
        reverse("devices:client_profile_delete", args=[profile.pk]): {},
        reverse("devices:server_facts", args=[server.pk]): {"iwa_enabled": "true"},
    }
    for url, data in writes.items():
        assert client.post(url, data).status_code == 403, url
    assert not FactChange.objects.exists()
    assert Namespace.objects.count() == 1 and ClientProfile.objects.count() == 1
    assert ExchangeServer.objects.get().iwa_enabled is None


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    org = OrganisationFactory()
    for url in (
        ORGANISATION,
        reverse("devices:organisation_edit", args=[org.pk]),
        reverse("devices:namespace_add"),
        reverse("devices:client_profile_add"),
    ):
        for response in (client.get(url), client.post(url, {"name": "x"})):
            assert response.status_code == 302
            assert response["Location"].startswith(reverse("login"))
    assert not FactChange.objects.exists()


def test_saving_an_exsetup_version_keeps_the_recorded_iwa(admin_client):
    server = ExchangeServerFactory(name="EX2010A", ex2010=True)
    server_record_facts(server=server, actor=None, iwa_enabled=True)
    page = reverse("devices:server_detail", args=[server.pk])
    action = reverse("devices:server_facts", args=[server.pk])

    shown = form_as_shown(admin_client, page, action)
    assert shown["iwa_enabled"] == "true", "the select starts at the stored value"
    response = admin_client.post(action, {**shown, "exsetup_version": "14.3.235.1"})

    assert response.status_code == 302
    server.refresh_from_db()
    assert server.iwa_enabled is True
    assert server.exsetup_version == "14.3.235.1"
    through_the_page = FactChange.objects.filter(actor__isnull=False)
    assert list(through_the_page.values_list("fact", flat=True)) == ["ExSetup.exe file version"]


def test_saving_one_fact_through_a_service_never_touches_the_others():
    server = ExchangeServerFactory(
        generation="2007", iwa_enabled=False, block_legacy_mailboxes=True, forest_recorded="x.local"
    )
    server_record_facts(server=server, actor=None, exsetup_version="8.3.83.6")
    server.refresh_from_db()
    assert (server.iwa_enabled, server.block_legacy_mailboxes, server.forest_recorded) == (
        False,
        True,
        "x.local",
    )
    with pytest.raises(TypeError):
        server_record_facts(server=server, actor=None, generation="2016")


def test_an_admin_records_the_hybrid_server_among_the_organisations_own_servers(
    admin_client, admin_user, helpdesk_user, django_capture_on_commit_callbacks
):
    org = OrganisationFactory(forest="contoso.local")
    OrganisationFactory(forest="exchange online", name="", is_exchange_online=True)
    ex07 = ExchangeServerFactory(name="EX07", forest="contoso.local", generation="2007")
    ex2016 = ExchangeServerFactory(name="EX2016A", forest="contoso.local")
    other = ExchangeServerFactory(name="FAB16", forest="fabrikam.local")
    declared = ExchangeServerFactory(name="EX16B", forest="", forest_recorded="contoso.local")
    url = reverse("devices:organisation_edit", args=[org.pk])
    shown = form_as_shown(admin_client, url, url)
    form = admin_client.get(url).context["form"]
    assert list(form.fields["hybrid_server"].queryset) == [ex07, declared, ex2016]

    refused = admin_client.post(url, {**shown, "hybrid_server": str(other.pk)})
    assert refused.status_code == 400 and not FactChange.objects.exists()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(url, {**shown, "hybrid_server": str(ex2016.pk)})

    assert response.status_code == 302 and len(callbacks) == 1, "active batches are re-planned"
    org.refresh_from_db()
    assert org.hybrid_server == ex2016
    change = FactChange.objects.get()
    assert (change.subject, change.fact, change.old_value, change.new_value) == (
        "Organisation contoso.local",
        "hybrid server",
        "unknown",
        "EX2016A",
    )
    assert change.actor == admin_user
    page = admin_client.get(ORGANISATION).content.decode()
    assert f'<a href="#server-{ex2016.pk}">EX2016A</a>' in page

    admin_client.force_login(helpdesk_user)
    denied = admin_client.post(url, {**shown, "hybrid_server": str(ex07.pk)})
    assert denied.status_code == 403
    org.refresh_from_db()
    assert org.hybrid_server == ex2016 and FactChange.objects.count() == 1


def test_the_exchange_online_tenant_has_no_hybrid_server_to_record(admin_client):
    exo = OrganisationFactory(forest="exchange online", name="", is_exchange_online=True)
    ExchangeServerFactory(name="EX2016A", forest="contoso.local")
    url = reverse("devices:organisation_edit", args=[exo.pk])

    assert "hybrid_server" not in admin_client.get(url).context["form"].fields
    with pytest.raises(ValueError, match="not an on-premises server"):
        organisation_record_facts(
            organisation=exo, actor=None, hybrid_server=ExchangeServer.objects.get()
        )


def test_each_changed_fact_is_recorded_with_who_when_and_the_previous_value(
    admin_client, admin_user
):
    org = OrganisationFactory(forest="contoso.local", name="Contoso", eas_max_devices=None)
    url = reverse("devices:organisation_edit", args=[org.pk])
    shown = form_as_shown(admin_client, url, url)
    before = timezone.now()

    response = admin_client.post(
        url, {**shown, "default_access_level": "Quarantine", "eas_max_devices": "10"}
    )

    assert response.status_code == 302
    assert response["Location"] == f"{ORGANISATION}#org-{org.pk}"
    org.refresh_from_db()
    assert (org.default_access_level, org.eas_max_devices, org.name) == (
        "Quarantine",
        10,
        "Contoso",
    )
    changes = {c.fact: c for c in FactChange.objects.all()}
    assert set(changes) == {"DefaultAccessLevel", "EasMaxDevices"}, "the name did not change"
    level = changes["DefaultAccessLevel"]
    assert (level.subject, level.old_value, level.new_value) == (
        "Organisation contoso.local",
        "unknown",
        "Quarantine",
    )
    assert level.actor == admin_user and level.via == "web" and level.at >= before
    assert changes["EasMaxDevices"].old_value == "unknown"
    assert changes["EasMaxDevices"].new_value == "10"

    history = admin_client.get(ORGANISATION).content.decode()
    assert admin_user.username in history
    assert "unknown → <strong>Quarantine</strong>" in history


def test_an_unchanged_form_records_nothing(admin_client, django_capture_on_commit_callbacks):
    org = OrganisationFactory(default_access_level="Allow", eas_max_devices=100)
    server = ExchangeServerFactory(iwa_enabled=True, exsetup_version="")
    org_url = reverse("devices:organisation_edit", args=[org.pk])
    server_page = reverse("devices:server_detail", args=[server.pk])
    server_action = reverse("devices:server_facts", args=[server.pk])
    org_form = form_as_shown(admin_client, org_url, org_url)
    server_form = form_as_shown(admin_client, server_page, server_action)

    with django_capture_on_commit_callbacks() as callbacks:
        assert admin_client.post(org_url, org_form).status_code == 302
        assert admin_client.post(server_action, server_form).status_code == 302

    assert not FactChange.objects.exists()
    assert callbacks == [], "nothing changed: nothing to re-plan"
    server.refresh_from_db()
    assert server.iwa_enabled is True


def test_recording_a_fact_replans_active_batches(django_capture_on_commit_callbacks, eager_worker):
    # A cross-site 2010 move of a phone speaking EAS 12.1: whether it keeps syncing depends on
    # the rollup of the CAS it reaches, which only the ExSetup.exe version shows (both shown
    # as 2010 SP2; both have RU6).
    sp2 = {"generation": "2010", "build": "14.2.247.5"}
    source = ExchangeServerFactory(
        name="EX2010A", admin_display_version="Version 14.2 (Build 247.5)", **sp2
    )
    target = ExchangeServerFactory(
        name="EX2010B",
        admin_display_version="Version 14.2 (Build 247.5)",
        site="contoso.local/Configuration/Sites/Munich",
        eas_external_url="https://mail-eu.contoso.com/Microsoft-Server-ActiveSync",
        **sp2,
    )
    mailbox = MailboxFactory(server=source)
    PartnershipFactory(mailbox=mailbox, eas_version="12.1")
    batch = batch_create(
        name="Wave 1",
        target_server=target,
        start_at=timezone.now() + timedelta(days=7),
        mailboxes=[mailbox],
        actor=None,
    )
    planned_at = MoveBatch.objects.get(pk=batch.pk).planned_at
    assert Prediction.objects.get().outcome == "unknown"

    with django_capture_on_commit_callbacks(execute=True):
        for server in (source, target):
            server_record_facts(server=server, actor=None, exsetup_version="14.2.342.3")

    assert MoveBatch.objects.get(pk=batch.pk).planned_at > planned_at
    assert Prediction.objects.get().outcome == "continues"


def test_an_admin_adds_edits_and_deletes_a_namespace_and_the_history_keeps_it(
    admin_client, admin_user
):
    ex2010 = ExchangeServerFactory(name="EX2010A", ex2010=True)
    ex2016 = ExchangeServerFactory(name="EX2016A")
    add = reverse("devices:namespace_add")

    bad = admin_client.post(add, {"host": "https://mail.contoso.com/owa"})
    assert bad.status_code == 400 and b"host name only" in bad.content
    response = admin_client.post(
        add,
        {
            "host": "Legacy.Contoso.COM.",
            "servers": [ex2010.pk],
            "is_legacy": "on",
            "devices_use": "on",
            "sites": "  HQ \n\n Munich ",
        },
    )
    assert response.status_code == 302 and response["Location"].endswith("#namespaces")
    namespace = Namespace.objects.get()
    assert namespace.host == "legacy.contoso.com"
    assert namespace.site_list() == ["HQ", "Munich"]
    assert not namespace.imported

    edit = reverse("devices:namespace_edit", args=[namespace.pk])
    shown = form_as_shown(admin_client, edit, edit)
    assert shown["servers"] == [str(ex2010.pk)] and shown["is_legacy"] == "on"
    FactChange.objects.all().delete()
    admin_client.post(edit, {**shown, "servers": [ex2010.pk, ex2016.pk]})
    change = FactChange.objects.get()
    assert (change.subject, change.fact) == ("Namespace legacy.contoso.com", "servers")
    assert (change.old_value, change.new_value) == ("EX2010A", "EX2010A, EX2016A")

    admin_client.post(reverse("devices:namespace_delete", args=[namespace.pk]))
    assert not Namespace.objects.exists()
    deleted = FactChange.objects.get(new_value="deleted")
    assert deleted.actor == admin_user and "EX2010A, EX2016A" in deleted.old_value


def test_a_client_profile_needs_an_eas_version_the_planner_can_read(admin_client):
    add = reverse("devices:client_profile_add")
    bad = admin_client.post(add, {"name": "Old Android", "max_eas_version": "12.x"})
    assert bad.status_code == 400 and b"EAS protocol version" in bad.content
    response = admin_client.post(
        add,
        {
            "name": "Old Android",
            "device_type": "Android",
            "max_eas_version": "12",
            "honours_451": "false",
            "supports_modern_auth": "unknown",
            "can_comply_with_policy": "true",
        },
    )
    assert response.status_code == 302
    profile = ClientProfile.objects.get()
    assert profile.max_eas_version == "12.0"
    assert (profile.honours_451, profile.supports_modern_auth, profile.can_comply_with_policy) == (
        False,
        None,
        True,
    )

    edit = reverse("devices:client_profile_edit", args=[profile.pk])
    shown = form_as_shown(admin_client, edit, edit)
    assert shown["honours_451"] == "false" and shown["can_comply_with_policy"] == "true"
    admin_client.post(reverse("devices:client_profile_delete", args=[profile.pk]))
    assert not ClientProfile.objects.exists()
    assert FactChange.objects.filter(subject="Client profile Old Android", new_value="deleted")


def test_an_admin_declares_a_forest_and_block_legacy_mailboxes_on_the_server_page(admin_client):
    server = ExchangeServerFactory(name="EX2007", generation="2007", forest="", site="")
    action = reverse("devices:server_facts", args=[server.pk])
    page = reverse("devices:server_detail", args=[server.pk])
    shown = form_as_shown(admin_client, page, action)

    bad = admin_client.post(action, {**shown, "forest_recorded": "not a forest!"})
    assert bad.status_code == 400
    admin_client.post(
        action, {**shown, "forest_recorded": "Fabrikam.Local", "block_legacy_mailboxes": "true"}
    )

    server.refresh_from_db()
    assert server.forest_recorded == "fabrikam.local"
    assert server.effective_forest == "fabrikam.local"
    assert server.block_legacy_mailboxes is True
    assert set(FactChange.objects.values_list("fact", flat=True)) == {
        "forest (declared)",
        "BlockLegacyMailboxes (2007 CAS web.config)",
    }


def test_each_server_page_shows_only_its_own_history():
    one = ExchangeServerFactory(name="EX03A", generation="2003")
    two = ExchangeServerFactory(name="EX03B", generation="2003")
    server_record_facts(server=one, actor=None, iwa_enabled=True)
    server_record_facts(server=two, actor=None, iwa_enabled=False, exsetup_version="6.5.7638.2")
    from tests.factories import UserFactory

    client = Client()
    client.force_login(UserFactory(role="helpdesk"))
    page = client.get(reverse("devices:server_detail", args=[one.pk])).content.decode()

    assert "IWA on Microsoft-Server-ActiveSync" in page and "unknown → <strong>yes</strong>" in page
    assert "unknown → <strong>no</strong>" not in page
    assert "6.5.7638.2" not in page


def test_the_history_is_paginated(admin_client):
    org = OrganisationFactory()
    for limit in range(1, 31):
        organisation_record_facts(organisation=org, actor=None, eas_max_devices=limit)

    first = admin_client.get(ORGANISATION).content.decode()
    second = admin_client.get(ORGANISATION, {"page": 2}).content.decode()

    assert "29 → <strong>30</strong>" in first and "Page 1 of 2" in first
    assert "unknown → <strong>1</strong>" in second and "29 → <strong>30</strong>" not in second


def _inventory(first: int, rows: int) -> None:
    org = OrganisationFactory()
    for i in range(first, first + rows):
        server = ExchangeServerFactory(forest="contoso.local")
        MobileDevicePolicyFactory(organisation=org)
        NamespaceFactory(servers=[server])
        ClientProfileFactory()
        DeviceAccessRule.objects.create(
            organisation=org,
            characteristic="DeviceModel",
            query_string=f"Model{i}",
            access_level="Allow",
        )
        server_record_facts(server=server, actor=None, exsetup_version=f"15.1.2507.{i}")
        namespace_save(actor=None, host=f"ns{i}.contoso.com", servers=[server])
        client_profile_save(actor=None, name=f"Client {i}", max_eas_version="16.1")


def test_the_organisation_page_runs_the_same_queries_for_2_and_20_rows(
    client, helpdesk_user, django_assert_max_num_queries
):
    client.force_login(helpdesk_user)
    _inventory(0, 2)
    with CaptureQueriesContext(connection) as few:
        assert client.get(ORGANISATION).status_code == 200
    _inventory(2, 18)
    with django_assert_max_num_queries(len(few)):
        page = client.get(ORGANISATION)

    assert page.content.decode().count('id="server-') == 20
    assert len(few) <= 15, [q["sql"] for q in few.captured_queries]


def test_recorded_values_are_escaped_on_every_page(admin_client):
    server = ExchangeServerFactory(name="<script>alert(1)</script>")
    namespace_save(actor=None, host="mail.contoso.com", servers=[server], sites="<b>HQ</b>")
    client_profile_save(actor=None, name="<img src=x onerror=alert(2)>")
    organisation_record_facts(organisation=OrganisationFactory(), actor=None, name="<i>Contoso</i>")

    for url in (ORGANISATION, reverse("devices:server_detail", args=[server.pk])):
        body = admin_client.get(url).content.decode()
        assert "<script>alert(1)</script>" not in body
        assert "<img src=x" not in body and "<b>HQ</b>" not in body and "<i>Contoso" not in body
        assert "&lt;script&gt;" in body


def test_every_form_needs_its_csrf_token(admin_user):
    org = OrganisationFactory()
    server = ExchangeServerFactory()
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(admin_user)
    pages = {
        reverse("devices:organisation_edit", args=[org.pk]): reverse(
            "devices:organisation_edit", args=[org.pk]
        ),
        reverse("devices:namespace_add"): reverse("devices:namespace_add"),
        reverse("devices:client_profile_add"): reverse("devices:client_profile_add"),
        reverse("devices:server_detail", args=[server.pk]): reverse(
            "devices:server_facts", args=[server.pk]
        ),
    }
    for page, action in pages.items():
        assert "csrfmiddlewaretoken" in strict.get(page).content.decode()
        assert strict.post(action, {"name": "x", "host": "x.example"}).status_code == 403
    assert not FactChange.objects.exists() and not Namespace.objects.exists()
    assert Organisation.objects.get().default_access_level == ""


def test_a_recorded_fact_is_announced_only_once_it_commits(django_capture_on_commit_callbacks):
    from devices.signals import inventory_changed

    heard = []

    def listener(sender, *, kinds, **kwargs):
        heard.append(kinds)

    inventory_changed.connect(listener, dispatch_uid="test-listener")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            organisation_record_facts(
                organisation=OrganisationFactory(), actor=None, hybrid_configured=True
            )
            assert heard == [], "not before the commit"
    finally:
        inventory_changed.disconnect(dispatch_uid="test-listener")
    assert heard == [{"recorded_facts"}]


def test_a_stale_form_does_not_revert_what_another_admin_recorded_meanwhile(admin_client):
    from django.urls import reverse

    from devices.models import Organisation

    organisation = OrganisationFactory(default_access_level="Quarantine", name="Contoso")
    url = reverse("devices:organisation_edit", args=[organisation.pk])
    shown = admin_client.get(url).content.decode()
    assert 'name="initial-default_access_level"' in shown  # what this admin saw travels along

    # Another admin records Block; this admin, on the page loaded before, only renames.
    Organisation.objects.filter(pk=organisation.pk).update(default_access_level="Block")
    admin_client.post(
        url,
        {
            "name": "Contoso Ltd",
            "initial-name": "Contoso",
            "default_access_level": "Quarantine",
            "initial-default_access_level": "Quarantine",
            "eas_max_devices": "",
            "initial-eas_max_devices": "",
            "hybrid_configured": "unknown",
            "initial-hybrid_configured": "unknown",
        },
    )

    organisation.refresh_from_db()
    assert organisation.name == "Contoso Ltd"
    assert organisation.default_access_level == "Block"
