"""Comparing targets and the prerequisites that change the answer (issue 17), through the real
path: Export-Csv files -> import_inventory -> create_batch -> plan_batch --compare-targets, then
the fact an admin records once a prerequisite is done, and the comparison again.

Each scenario also checks that comparing writes no prediction and that a prerequisite is only
credited with what the planner decides from recorded facts.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from devices.models import ExchangeServer
from devices.services import server_record_facts
from migrations_plan.compare import Selection, TargetResult, batch_target_plan
from migrations_plan.compare import _count as count_answers
from migrations_plan.comparisons import inventory_version
from migrations_plan.models import (
    AuditEntry,
    BatchState,
    Explanation,
    MoveBatch,
    PlanState,
    Prediction,
)
from migrations_plan.planner.outcomes import Confidence, Outcome
from migrations_plan.planner.predict import Prediction as PlannerPrediction
from migrations_plan.planner.predict import Reason
from migrations_plan.services import BatchError, batch_create, batch_retarget, batch_transition
from migrations_plan.tasks import comparison_task
from migrations_plan.waves import waves_suggest
from tests.factories import (
    ExchangeServerFactory,
    MailboxFactory,
    PartnershipFactory,
)
from tests.real_path import (
    EXO,
    V2003,
    V2007RTM,
    V2007SP1,
    V2007SP3,
    V2010SP3,
    V2016,
    V2019,
    Lab,
    cas_mailboxes,
    device_access_rules,
    hybrid_relationship,
    run,
)
from tests.test_batch_views import START, org  # the same small organisation as the batch pages

pytestmark = pytest.mark.django_db

POCKETPC = {"device_type": "PocketPC", "user_agent": "MSFT-PPC/5.2.5082", "eas": None}


__all__ = ["org"]  # a fixture, shared with the batch page tests


@pytest.fixture
def lab(tmp_path: Path) -> Lab:
    return Lab(tmp_path)


def compare(name: str = "Wave", *options: str) -> dict[str, Any]:
    """plan_batch NAME --compare-targets --json, checking that it writes no prediction."""
    before = (
        Prediction.objects.count(),
        Explanation.objects.count(),
        ExchangeServer.objects.count(),
    )
    document = json.loads(run("plan_batch", name, "--compare-targets", "--json", *options))
    after = (
        Prediction.objects.count(),
        Explanation.objects.count(),
        ExchangeServer.objects.count(),
    )
    assert after == before, "comparing targets writes nothing"
    return document


def target(document: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in document["targets"] if t["target"] == name)


def prerequisite(document: dict[str, Any], change: str) -> dict[str, Any]:
    items = [p for p in document["prerequisites"]["items"] if p["id"] == change]
    assert len(items) == 1, json.dumps(document["prerequisites"], indent=1)
    return items[0]


def _pocketpcs_on_2003(lab: Lab, target_version: str, *, iwa: bool | None) -> None:
    """Two 2003 mailboxes whose Windows Mobile phones use mail.contoso.com, published with its
    certificate by EX07, the 2007 target (recorded, so a credit rests on no missing fact)."""
    ex03 = lab.server("EX03", V2003)
    ex07 = lab.server("EX07", target_version)
    for n, alias in enumerate(("kakers", "dlee")):
        mailbox = lab.mailbox(alias, ex03)
        lab.device(mailbox, f"6F24CAD599A5BF1A690246B8C68FAE8{n}", **POCKETPC)
    lab.vdir(ex07, "mail.contoso.com")
    lab.cert(ex07, "5A1B2C3D4E5F60718293A4B5C6D7E8F901234567", "mail.contoso.com")
    lab.import_exports()
    lab.phones_use("mail.contoso.com")
    if iwa is not None:
        lab.record_server("EX03", iwa_enabled=iwa)
    lab.plan("EX07", *lab.mailboxes_named("kakers", "dlee"))


# -- the field note: 2003 mailboxes, a 2007 RTM target, the SP1 prerequisite ---------------------


def test_the_field_note_sp1_on_the_2007_target_turns_repartner_into_continues(lab: Lab) -> None:
    _pocketpcs_on_2003(lab, V2007RTM, iwa=True)

    document = compare()

    ex07 = target(document, "EX07")
    assert ex07["current"] and ex07["people"]["repartner"] == 2
    assert ex07["devices"]["repartner"] == 2 and ex07["people_needing_action"] == 2
    sp1 = prerequisite(document, "target-service-pack")
    assert sp1["subject"] == "EX07" and "M-2003-2007RTM" in sp1["rules"]
    assert sp1["from_to"] == [{"from": "repartner", "to": "continues", "devices": 2}]
    assert sp1["uncredited_devices"] == 0
    assert "Exchange 2007 SP1" in sp1["detail"]
    server = ExchangeServer.objects.get(name="EX07")
    assert sp1["where"] == reverse("devices:server_detail", args=[server.pk]) + "#facts"
    # Exchange Online is offered though nobody picked it yet (and comparing created no row).
    assert target(document, "Exchange Online")["choice"] == "exo"

    # Done: the admin records the SP1 build where the link points (the server's facts).
    lab.record_server("EX07", exsetup_version="8.1.240.6")
    after = compare()

    assert target(after, "EX07")["devices"]["continues"] == 2
    assert target(after, "EX07")["people_needing_action"] == 0
    assert after["targets"][0]["target"] == "EX07", "the fewest people needing action first"
    assert not [p for p in after["prerequisites"]["items"] if p["id"] == "target-service-pack"]


def test_targets_are_sorted_by_people_needing_action_and_unsupported_paths_are_marked(
    lab: Lab,
) -> None:
    ex2010 = lab.server("EX2010A", V2010SP3)
    lab.server("EX2016A", V2016)
    lab.server("EX2019A", V2019)
    tony = lab.mailbox("tsmith", ex2010, "Tony Smith")
    lab.device(tony, "ApplF17LTTCGFFG8", eas="14.1")
    lab.vdir(lab.servers["EX2016A"], "mail.contoso.com")
    lab.import_exports()
    lab.phones_use("mail.contoso.com")
    lab.plan("EX2016A", tony)

    document = compare()

    counts = [
        (t["people_needing_action"], t["people_needing_action_range"][1])
        for t in document["targets"]
    ]
    assert counts == sorted(counts)
    ex2019 = target(document, "EX2019A")
    assert (
        ex2019["unsupported"]
        and "not a supported coexistence path" in ex2019["unsupported_paths"][0]
    )
    assert not target(document, "EX2016A")["unsupported"]


# -- an IWA fix ----------------------------------------------------------------------------------------


def test_enabling_iwa_on_the_2003_activesync_directory_unblocks_the_phones(lab: Lab) -> None:
    _pocketpcs_on_2003(lab, V2007SP1, iwa=False)

    document = compare()

    assert target(document, "EX07")["devices"]["blocked"] == 2
    iwa = prerequisite(document, "iwa-2003")
    assert iwa["subject"] == "EX03" and iwa["rules"] == ["X-IWA-2003"]
    assert iwa["from_to"] == [{"from": "blocked", "to": "continues", "devices": 2}]
    ex03 = ExchangeServer.objects.get(name="EX03")
    assert iwa["where"] == reverse("devices:server_detail", args=[ex03.pk]) + "#facts"

    lab.record_server("EX03", iwa_enabled=True)
    after = compare()

    assert target(after, "EX07")["devices"] == {**target(after, "EX07")["devices"], "continues": 2}
    assert target(after, "EX07")["people_needing_action"] == 0


def test_sp1_alone_is_not_credited_while_iwa_still_blocks(lab: Lab) -> None:
    # One fact at a time: with IWA off, SP1 would still leave the phones blocked.
    _pocketpcs_on_2003(lab, V2007RTM, iwa=False)

    document = compare()

    assert target(document, "EX07")["devices"]["blocked"] == 2
    assert not [p for p in document["prerequisites"]["items"] if p["id"] == "target-service-pack"]
    assert prerequisite(document, "iwa-2003")["from_to"] == [
        {"from": "blocked", "to": "repartner", "devices": 2}
    ]


# -- a certificate reissue -------------------------------------------------------------------------------


def test_reissuing_the_certificate_before_it_expires_unblocks_the_phones(lab: Lab) -> None:
    """2010 -> 2016; phones use mail.contoso.com on the 2016 front end, whose IIS certificate
    expires four days before the move (X-CERT)."""
    ex2010 = lab.server("EX2010A", V2010SP3)
    ex2016 = lab.server("EX2016A", V2016)
    tony = lab.mailbox("tsmith", ex2010, "Tony Smith")
    lab.device(tony, "ApplF17LTTCGFFG8", eas="14.1")
    lab.vdir(ex2016, "mail.contoso.com")
    lab.cert(ex2016, "0D4E8F2A6C1B3D5E7F9A0B2C4D6E8F1A3B5C7D9E", "mail.contoso.com",
             not_after="12/1/2026 11:59:59 PM")  # fmt: skip
    lab.import_exports()
    lab.phones_use("mail.contoso.com")
    lab.plan("EX2016A", tony)

    document = compare()

    assert target(document, "EX2016A")["devices"]["blocked"] == 1
    cert = prerequisite(document, "certificate")
    assert cert["subject"] == "mail.contoso.com" and cert["rules"] == ["X-CERT"]
    assert cert["from_to"] == [{"from": "blocked", "to": "continues", "devices": 1}]
    assert "reissue from CN=DigiCert" in cert["detail"]
    # M-2010-2013P is an inference ([I], Q-2010-2013): the credit says so.
    assert cert["low_confidence_devices"] == 1
    assert cert["where"] == reverse("devices:endpoint_probes")

    # Done: the renewal from the same CA is bound on the front end and imported.
    lab.cert(ex2016, "9F3C1B27A4E05D6C8B1F2A3E4D5C6B7A8F9E0D1C", "mail.contoso.com",
             not_after="12/1/2027 11:59:59 PM")  # fmt: skip
    lab.import_exports()
    after = compare()

    ex2016_after = target(after, "EX2016A")
    assert ex2016_after["devices"]["blocked"] == 0 and ex2016_after["devices"]["continues"] == 1
    # Low confidence shows as a range: the one person may still need to act.
    assert ex2016_after["people_needing_action_range"] == [0, 1]
    assert ex2016_after["low_confidence_devices"] == 1


# -- a namespace move ---------------------------------------------------------------------------------


def _namespace_on_2010(lab: Lab, *, recorded: bool) -> None:
    """2010 -> 2016; mail.contoso.com is still published by the 2010 server."""
    ex2010 = lab.server("EX2010A", V2010SP3)
    lab.server("EX2016A", V2016)
    tony = lab.mailbox("tsmith", ex2010, "Tony Smith")
    lab.device(tony, "ApplF17LTTCGFFG8", eas="14.1")
    lab.vdir(ex2010, "mail.contoso.com")
    lab.cert(ex2010, "5A1B2C3D4E5F60718293A4B5C6D7E8F901234567", "mail.contoso.com")
    lab.import_exports()
    if recorded:
        lab.phones_use("mail.contoso.com")
    lab.plan("EX2016A", tony)


def test_moving_the_namespace_to_the_2016_front_end_decides_the_move(lab: Lab) -> None:
    _namespace_on_2010(lab, recorded=True)

    document = compare()

    assert target(document, "EX2016A")["devices"]["unknown"] == 1
    move = prerequisite(document, "namespace-move")
    assert move["subject"] == "mail.contoso.com" and "M-2010-2013P" in move["rules"]
    assert move["detail"] == "EX2010A → EX2016A"
    assert move["from_to"] == [{"from": "unknown", "to": "continues", "devices": 1}]
    assert move["low_confidence_devices"] == 1  # M-2010-2013P is [I]
    assert move["where"] == reverse("devices:organisation") + "#namespaces"

    # Done: on Organisation -> Namespaces the name is now answered by EX2016A.
    lab.phones_use("mail.contoso.com", servers=["EX2016A"])
    after = compare()

    assert target(after, "EX2016A")["devices"]["continues"] == 1
    assert target(after, "EX2016A")["people_needing_action_range"] == [0, 1]


def test_a_prerequisite_is_not_credited_when_it_rests_on_a_missing_fact(lab: Lab) -> None:
    # Nobody recorded which host name the phones use: which name to move is not known.
    _namespace_on_2010(lab, recorded=False)

    document = compare()

    ex2016 = target(document, "EX2016A")
    assert ex2016["devices"]["unknown"] == 1
    possible = [o for o, n in ex2016["devices_possible"].items() if n]
    assert len(possible) > 1, "the range is shown, not a single guess"
    move = prerequisite(document, "namespace-move")
    assert move["devices"] == 0 and move["from_to"] == []
    assert move["uncredited_devices"] == 1
    assert [m["question"] for m in move["missing"]] == ["namespace"]


def _2007_phones_on_the_legacy_name_to_exchange_online(lab: Lab) -> None:
    """M-2007-EXO-LEGACY: a 2007 mailbox moving to Exchange Online through hybrid; its iPhone
    still uses legacy.contoso.com, answered by the 2007 CAS, which cannot send the on-boarding
    451. EX2016A is the server the Hybrid Configuration Wizard configured."""
    ex07 = lab.server("EX07", V2007SP3)
    ex2016 = lab.server("EX2016A", V2016)
    anna = lab.mailbox("anna", ex07, "Anna Lidman")
    lab.device(anna, "ApplF17LTTCGFFG8", eas="12.1")  # the most 2007 offers
    lab.vdir(ex07, "legacy.contoso.com")
    lab.vdir(ex2016, "mail.contoso.com")
    lab.export("relationships.csv", hybrid_relationship("contoso.local"))
    lab.import_exports()
    lab.phones_use("legacy.contoso.com")
    lab.client_profile(
        "Mail app",
        device_type="iPhone",
        honours_451=True,
        supports_modern_auth=True,
        max_eas_version="16.1",
    )
    lab.plan(EXO, anna, options=("--move-kind", "hybrid_onboard"))


def test_the_namespace_move_to_exchange_online_waits_for_the_recorded_hybrid_server(
    lab: Lab,
) -> None:
    _2007_phones_on_the_legacy_name_to_exchange_online(lab)

    document = compare()

    assert target(document, EXO)["devices"]["repartner"] == 1
    move = prerequisite(document, "namespace-move")
    assert "M-2007-EXO-LEGACY" in move["rules"]
    assert move["devices"] == 0 and move["uncredited_devices"] == 1
    assert [m["question"] for m in move["missing"]] == ["hybrid-server"]
    assert move["missing"][0]["url"] == reverse("devices:organisation")

    # Recorded on the Organisation page: the planner now evaluates the move to EX2016A. It
    # reaches `redirect`, but only credits it once the target's facts are recorded too.
    version = inventory_version()
    lab.record_organisation("contoso.local", hybrid_server="EX2016A")
    assert inventory_version() != version, "a kept comparison is not reused"
    after = prerequisite(compare(), "namespace-move")

    assert after["subject"] == "legacy.contoso.com"
    assert after["detail"] == "EX07 → EX2016A"
    assert after["uncredited_possible"] == ["redirect"]
    missing = [m["question"] for m in after["missing"]]
    assert "hybrid-server" not in missing
    assert missing == ["default-access", "target-policy"]


# -- the command line's other forms -----------------------------------------------------------------------


def test_the_prerequisites_of_another_target_and_the_plain_text_table(lab: Lab) -> None:
    _pocketpcs_on_2003(lab, V2007SP1, iwa=False)
    lab.server("EX07RTM", V2007RTM)
    lab.import_exports()

    document = compare("Wave", "--target", "EX07RTM")
    text = run("plan_batch", "Wave", "--compare-targets")

    assert document["prerequisites"]["target"] == "EX07RTM"
    assert {p["id"] for p in document["prerequisites"]["items"]} == {"iwa-2003"}
    assert "people needing action per target" in text and "Prerequisites on EX07:" in text
    assert "Enable IWA" in text


# -- the pages -------------------------------------------------------------------------------------------


class Worker:
    """Plays the Celery worker for the comparison pages: `get`/`post` make the request with its
    on-commit callbacks run (what the page queues lands in `sent`), `run` does the queued work."""

    def __init__(self, client, capture) -> None:
        self.client, self.capture, self.sent = client, capture, []

    def get(self, url: str, data: dict | None = None):
        with self.capture(execute=True):
            return self.client.get(url, data)

    def post(self, url: str, data: dict):
        with self.capture(execute=True):
            return self.client.post(url, data)

    def run(self) -> None:
        sent, self.sent = self.sent, []
        for key, spec in sent:
            comparison_task(key, spec)

    def page(self, url: str, data: dict | None = None):
        """The page once the worker has answered: asked, computed, shown."""
        self.get(url, data)
        self.run()
        return self.get(url, data)


@pytest.fixture
def worker(client, monkeypatch, django_capture_on_commit_callbacks) -> Worker:
    worker = Worker(client, django_capture_on_commit_callbacks)
    monkeypatch.setattr(comparison_task, "delay", lambda *args: worker.sent.append(args))
    return worker


def test_the_comparison_page_says_comparing_until_the_worker_answers_and_queues_once(
    client, admin_user, org, worker
) -> None:
    _, ex2016, mailboxes = org
    batch = batch_create(
        name="W", target_server=ex2016, start_at=START, mailboxes=mailboxes, actor=None
    )
    client.force_login(admin_user)
    url = reverse("migrations_plan:batch_compare", args=[batch.pk])

    first, second = worker.get(url), worker.get(url)  # a double click, or the reload

    for page in (first, second):
        body = page.content.decode()
        assert page.status_code == 200 and "Comparing 3 targets" in body
        assert '<meta http-equiv="refresh" content="2">' in body
        assert "compare-targets" not in body
    assert len(worker.sent) == 1, "one task however many requests ask"
    before = Prediction.objects.count()
    worker.run()
    done = worker.get(url).content.decode()

    assert "compare-targets" in done and 'http-equiv="refresh"' not in done
    assert 'data-target="EX2016A"' in done and "current target" in done
    assert "Prerequisites that change the answer on EX2016A" in done
    assert Prediction.objects.count() == before and not worker.sent


def test_a_target_not_offered_starts_no_comparison(client, helpdesk_user, org, worker) -> None:
    # A read-only user must not start one comparison per made-up ?target=: only the targets
    # the comparison lists (servers holding mailboxes, Exchange Online) are keyed and queued.
    ex2010, ex2016, mailboxes = org
    cas = ExchangeServerFactory(name="CAS2016", roles="ClientAccess")
    batch = batch_create(
        name="W", target_server=ex2016, start_at=START, mailboxes=mailboxes, actor=None
    )
    client.force_login(helpdesk_user)
    url = reverse("migrations_plan:batch_compare", args=[batch.pk])
    worker.page(url)

    for made_up in ("999999", str(cas.pk), "12345678901234567890123", "\u0663"):
        assert worker.get(url, {"target": made_up}).status_code == 200
    assert worker.sent == [], "each was the batch's own, kept comparison"
    worker.get(url, {"target": ex2010.pk})
    worker.get(url, {"target": "exo"})
    assert len(worker.sent) == 2


def test_a_recorded_fact_gives_a_new_comparison(client, admin_user, org, worker) -> None:
    ex2010, ex2016, mailboxes = org
    batch = batch_create(
        name="W", target_server=ex2016, start_at=START, mailboxes=mailboxes, actor=None
    )
    client.force_login(admin_user)
    url = reverse("migrations_plan:batch_compare", args=[batch.pk])
    assert "compare-targets" in worker.page(url).content.decode()

    server_record_facts(server=ex2010, actor=admin_user, iwa_enabled=True)
    page = worker.get(url).content.decode()

    assert "Comparing" in page and "compare-targets" not in page
    assert len(worker.sent) == 1
    worker.run()
    assert "compare-targets" in worker.get(url).content.decode()


def test_an_import_gives_a_new_comparison(lab: Lab) -> None:
    from migrations_plan.comparisons import batch_comparison

    _pocketpcs_on_2003(lab, V2007RTM, iwa=True)
    batch = MoveBatch.objects.get(name="Wave")
    key = batch_comparison(batch=batch).key
    assert batch_comparison(batch=batch).key == key, "nothing changed: the same comparison"

    lab.device(lab.mailbox("newby", lab.servers["EX03"]), "NEW0000000000001")
    lab.import_exports()

    assert batch_comparison(batch=batch).key != key


def test_a_failed_comparison_is_shown_and_not_reloaded(
    client, admin_user, org, worker, monkeypatch
) -> None:
    from migrations_plan import compare as compare_module

    def broken(**kwargs):
        raise RuntimeError("the inventory could not be read")

    monkeypatch.setattr(compare_module, "batch_target_plan", broken)
    _, ex2016, mailboxes = org
    batch = batch_create(
        name="W", target_server=ex2016, start_at=START, mailboxes=mailboxes, actor=None
    )
    client.force_login(admin_user)

    page = worker.page(reverse("migrations_plan:batch_compare", args=[batch.pk]))

    body = page.content.decode()
    assert "The comparison failed: RuntimeError: the inventory could not be read" in body
    assert 'http-equiv="refresh"' not in body and not worker.sent


def test_a_comparison_delivered_twice_is_computed_once(org, monkeypatch) -> None:
    from migrations_plan import compare as compare_module
    from migrations_plan.comparisons import batch_comparison

    _, ex2016, mailboxes = org
    batch = batch_create(
        name="W", target_server=ex2016, start_at=START, mailboxes=mailboxes, actor=None
    )
    calls = []
    real = compare_module.batch_target_plan
    monkeypatch.setattr(
        compare_module, "batch_target_plan", lambda **kw: calls.append(kw) or real(**kw)
    )
    spec = {"kind": "batch", "batch": batch.pk, "chosen": ""}
    key = batch_comparison(batch=batch).key

    assert comparison_task(key, spec) == comparison_task(key, spec) == "done"
    assert len(calls) == 1 and batch_comparison(batch=batch).done


def test_the_comparison_page_needs_a_login(client, org) -> None:
    _, ex2016, mailboxes = org
    batch = batch_create(
        name="W", target_server=ex2016, start_at=START, mailboxes=mailboxes, actor=None
    )

    response = client.get(reverse("migrations_plan:batch_compare", args=[batch.pk]))

    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert (
        client.post(reverse("migrations_plan:batch_retarget", args=[batch.pk])).status_code == 302
    )


def test_helpdesk_reads_the_comparison_but_cannot_change_the_target(
    client, helpdesk_user, org, worker
) -> None:
    ex2010, ex2016, mailboxes = org
    batch = batch_create(
        name="W", target_server=ex2016, start_at=START, mailboxes=mailboxes, actor=None
    )
    client.force_login(helpdesk_user)

    page = worker.page(reverse("migrations_plan:batch_compare", args=[batch.pk]))
    retarget = client.post(
        reverse("migrations_plan:batch_retarget", args=[batch.pk]), {"target": ex2010.pk}
    )
    new = client.post(
        reverse("migrations_plan:batch_create"), {"action": "compare", "source_server": ex2010.pk}
    )

    assert page.status_code == 200
    body = page.content.decode()
    assert "EX2010A" in body and "Exchange Online" in body and "Use this target" not in body
    assert retarget.status_code == 403 and new.status_code == 403
    batch.refresh_from_db()
    assert batch.target_server == ex2016


def test_an_admin_uses_another_target_for_a_draft_and_it_is_planned_again(
    client, admin_user, org, django_capture_on_commit_callbacks, worker
) -> None:
    _, ex2016, mailboxes = org
    ex2019 = ExchangeServerFactory(name="EX2019A", admin_display_version="Version 15.2 (Build 1748.10)",
                                   build="15.2.1748.10", generation="2019")  # fmt: skip
    batch = batch_create(name="W", target_server=ex2016, start_at=START, mailboxes=mailboxes,
                         actor=None, target_database="DB2016-01")  # fmt: skip
    client.force_login(admin_user)

    page = worker.page(reverse("migrations_plan:batch_compare", args=[batch.pk])).content.decode()
    assert page.count("Use this target") >= 2  # every other supported target
    refused = client.post(
        reverse("migrations_plan:batch_retarget", args=[batch.pk]),
        {"target": ex2019.pk},
        follow=True,
    )
    assert "not a supported coexistence path" in refused.content.decode()
    with django_capture_on_commit_callbacks() as sent:
        done = client.post(
            reverse("migrations_plan:batch_retarget", args=[batch.pk]),
            {"target": "exo"},
            follow=True,
        )

    batch.refresh_from_db()
    assert batch.target_server.name == "Exchange Online" and batch.target_database == ""
    assert batch.plan_state == PlanState.QUEUED and len(sent) == 1
    assert "now moves to Exchange Online" in done.content.decode()
    entry = AuditEntry.objects.get(batch=batch, action="retargeted")
    assert entry.actor == admin_user and entry.detail == {
        "before": "EX2016A",
        "after": "Exchange Online",
    }


def test_only_a_draft_gets_another_target(org) -> None:
    ex2010, ex2016, mailboxes = org
    batch = batch_create(
        name="W", target_server=ex2016, start_at=START, mailboxes=mailboxes, actor=None
    )
    batch_transition(batch=batch, action="schedule", actor=None, check_readiness=False)

    with pytest.raises(BatchError, match="only a draft"):
        batch_retarget(batch=batch, target_server=ex2010, actor=None)
    assert MoveBatch.objects.get(pk=batch.pk).state == BatchState.SCHEDULED


def test_the_new_batch_form_compares_targets_and_one_click_picks_one(
    client, admin_user, org, worker
) -> None:
    ex2010, ex2016, _ = org
    client.force_login(admin_user)
    form = {"name": "", "source_server": ex2010.pk, "start_at": START.strftime("%Y-%m-%dT%H:%M")}
    url = reverse("migrations_plan:batch_create")

    asked = worker.post(url, {**form, "action": "compare"})
    again = worker.post(url, {**form, "action": "compare"})  # a double click
    refresh = asked.context["refresh_url"]
    assert 'http-equiv="refresh"' in asked.content.decode() and "Comparing 3 targets" in (
        asked.content.decode()
    )
    assert len(worker.sent) == 1 and again.context["refresh_url"] == refresh
    worker.run()
    compared = client.get(refresh)  # the page's own reload, a GET with the form's values
    picked = worker.post(url, {**form, "use_target": ex2016.pk})
    worker.run()
    picked = client.get(picked.context["refresh_url"])

    assert compared.status_code == 200 and picked.status_code == 200
    body = compared.content.decode()
    assert "Compare targets" in body and body.count('name="use_target"') >= 3
    assert 'http-equiv="refresh"' not in body
    assert "This field is required" not in body, "comparing does not ask for the batch's name"
    assert f'<option value="{ex2010.pk}" selected>EX2010A</option>' in body, "values kept"
    chosen = picked.content.decode()
    assert f'<option value="{ex2016.pk}" selected>EX2016A</option>' in chosen
    assert "Prerequisites that change the answer on EX2016A" in chosen
    assert MoveBatch.objects.count() == 0


def test_the_new_batch_forms_comparison_is_asked_again_after_a_fact_changes(
    client, admin_user, org, worker
) -> None:
    # The form reloads itself to ?compare=<key>; a later GET of that address must not show
    # the comparison made before the fact was recorded.
    ex2010, _, _ = org
    client.force_login(admin_user)
    form = {"name": "", "source_server": ex2010.pk, "start_at": START.strftime("%Y-%m-%dT%H:%M")}
    url = reverse("migrations_plan:batch_create")
    refresh = worker.post(url, {**form, "action": "compare"}).context["refresh_url"]
    worker.run()
    assert worker.get(refresh).context["comparing"].done

    server_record_facts(server=ex2010, actor=admin_user, iwa_enabled=True)
    page = worker.get(refresh)

    assert not page.context["comparing"].done and len(worker.sent) == 1
    assert page.context["refresh_url"] != refresh, "reloads to the new comparison's key"
    worker.run()
    again = worker.get(page.context["refresh_url"])
    assert again.context["comparing"].done and again.context["refresh_url"] == ""


def test_use_this_target_after_comparing_a_csv_keeps_the_csvs_mailboxes(
    client, admin_user, org, worker
) -> None:
    # A file input is empty again once the page comes back: "Use this target" must compare
    # the CSV's two mailboxes, not fall back to the source server's four.
    ex2010, ex2016, _ = org
    client.force_login(admin_user)
    form = {"name": "", "source_server": ex2010.pk, "start_at": START.strftime("%Y-%m-%dT%H:%M")}
    url = reverse("migrations_plan:batch_create")
    csv = SimpleUploadedFile("batch.csv", b"EmailAddress\nuser0@contoso.com\nuser1@contoso.com\n")
    refresh = worker.post(url, {**form, "action": "compare", "mailboxes_csv": csv}).context[
        "refresh_url"
    ]
    worker.run()
    compared = worker.get(refresh)
    assert compared.context["plan"]["comparison"]["mailboxes"] == 2
    assert f'name="compared" value="{compared.context["comparing"].key}"' in (
        compared.content.decode()
    )

    picked = worker.post(
        url, {**form, "use_target": ex2016.pk, "compared": compared.context["comparing"].key}
    )
    worker.run()
    shown = worker.get(picked.context["refresh_url"]).context["plan"]

    assert shown["comparison"]["mailboxes"] == 2
    assert shown["chosen"]["name"] == "EX2016A"


def test_the_new_batch_form_says_when_a_comparison_is_no_longer_kept(client, admin_user) -> None:
    client.force_login(admin_user)

    response = client.get(reverse("migrations_plan:batch_create"), {"compare": "gone"})

    assert "no longer kept: compare the targets again" in response.content.decode()


def test_the_new_batch_form_asks_for_mailboxes_before_comparing(client, admin_user, org) -> None:
    client.force_login(admin_user)

    response = client.post(reverse("migrations_plan:batch_create"), {"action": "compare"})

    assert "Choose the mailboxes first" in response.content.decode()
    assert MoveBatch.objects.count() == 0


def test_the_comparison_page_costs_the_same_queries_for_more_mailboxes(
    client, admin_user, org, worker
) -> None:
    ex2010, ex2016, mailboxes = org
    batch = batch_create(
        name="W", target_server=ex2016, start_at=START, mailboxes=mailboxes, actor=None
    )
    client.force_login(admin_user)
    url = reverse("migrations_plan:batch_compare", args=[batch.pk])
    worker.page(url)  # sessions, content types: warmed once; the comparison made

    with CaptureQueriesContext(connection) as small:
        assert "compare-targets" in worker.get(url).content.decode()
    more = [
        MailboxFactory(server=ex2010, primary_smtp_address=f"more{n}@contoso.com")
        for n in range(30)
    ]
    for n, mailbox in enumerate(more):
        PartnershipFactory(mailbox=mailbox, eas_version="14.1" if n % 2 else "16.1")
    from migrations_plan.services import batch_add_mailboxes

    batch_add_mailboxes(batch=batch, mailboxes=more, actor=None)
    assert "Comparing" in worker.get(url).content.decode(), "new members: a new comparison"
    worker.run()
    with CaptureQueriesContext(connection) as large:
        page = worker.get(url).content.decode()

    assert "34 mailboxes" in page
    assert len(large) == len(small) <= 12
    assert not worker.sent, "a page whose comparison is kept asks the worker for nothing"


def test_comparing_from_python_matches_the_command(lab: Lab) -> None:
    _pocketpcs_on_2003(lab, V2007RTM, iwa=True)
    batch = MoveBatch.objects.get(name="Wave")

    plan = batch_target_plan(batch=batch)

    assert plan.as_dict()["targets"] == compare()["targets"]


# -- waves of an organisation-wide migration ------------------------------------------------------------


def _three_source_servers(lab: Lab, *, quarantined: tuple[str, ...] = ("bea",)) -> None:
    """2010 SP3 in two sites and a 2007 SP3 server, all to move to one 2016 server; phones use
    mail.contoso.com, answered by the 2016 server with its certificate. The Branch phone is
    quarantined today."""
    hq = lab.server("EX2010A", V2010SP3)
    branch = lab.server("EX2010B", V2010SP3, site="Branch")
    ex07 = lab.server("EX07", "Version 8.3 (Build 83.6)")
    ex2016 = lab.server("EX2016A", V2016)
    for alias, server, device_id in (
        ("tsmith", hq, "ApplHQ0000000001"),
        ("adam", hq, "ApplHQ0000000002"),
        ("bea", branch, "ApplBR0000000001"),
        ("kim", ex07, "ApplEX0700000001"),
    ):
        access = "Quarantined" if alias in quarantined else "Allowed"
        lab.device(lab.mailbox(alias, server), device_id, eas="14.1", access=access)
    lab.vdir(ex2016, "mail.contoso.com")
    lab.cert(ex2016, "5A1B2C3D4E5F60718293A4B5C6D7E8F901234567", "mail.contoso.com")
    lab.import_exports()
    lab.phones_use("mail.contoso.com")


def test_waves_put_the_quiet_server_first_and_the_unsupported_one_last(
    lab: Lab, client, admin_user, helpdesk_user, worker
) -> None:
    _three_source_servers(lab)
    ex2016 = ExchangeServer.objects.get(name="EX2016A")
    query = {
        "target": ex2016.pk,
        "start_at": "2026-12-05T22:00",
        "days_between": 7,
        "name_prefix": "Move",
    }
    client.force_login(helpdesk_user)
    url = reverse("migrations_plan:waves")

    assert "Suggesting waves" in worker.get(url, query).content.decode()
    with CaptureQueriesContext(connection) as queries:
        worker.run()
    page = worker.get(url, query)
    refused = client.post(reverse("migrations_plan:waves_create"), {**query, "server": []})

    assert page.status_code == 200 and refused.status_code == 403
    assert len(queries) <= 25, "one read for the whole organisation, not one per server"
    waves = page.context["plan"]["waves"]
    assert [w["server"] for w in waves] == ["EX2010A", "EX2010B", "EX07"]
    assert [w["breaks"] for w in waves[:2]] == [0, 1] and waves[2]["unsupported"]
    assert [(p["change"], p["devices"]) for p in waves[1]["first_needed"]] == [
        ("abq-preapprove", 1)
    ]
    assert waves[1]["first_needed"][0]["from_to"] == [
        {"from": "blocked", "to": "continues", "devices": 1}
    ]
    assert "Create the ticked waves" not in page.content.decode()

    client.force_login(admin_user)
    ids = [w["server_id"] for w in waves]
    created = client.post(
        reverse("migrations_plan:waves_create"), {**query, "server": ids}, follow=True
    )

    batches = list(MoveBatch.objects.order_by("start_at"))
    assert [b.name for b in batches] == ["Move 1: EX2010A", "Move 2: EX2010B"]
    assert batches[1].start_at - batches[0].start_at == timedelta(days=7)
    assert {m.mailbox.alias for m in batches[0].members.all()} == {"tsmith", "adam"}
    assert all(b.state == BatchState.DRAFT and b.target_server == ex2016 for b in batches)
    assert "2 draft batches created" in created.content.decode()
    # What is in a batch now is not suggested again; the unsupported server is left.
    again = worker.page(url, query).context["plan"]["waves"]
    assert [w["server"] for w in again] == ["EX07"]


# -- counting people and the range of "needs action" -----------------------------------------------


def _answer(outcome: Outcome, possible: tuple[Outcome, ...] = ()) -> PlannerPrediction:
    """A confident prediction ([V], no open question) with this outcome and range."""
    reason = Reason(
        rule="F-NO-ROW" if outcome is Outcome.UNKNOWN else "M-2010-2010-XS-451",
        outcome=outcome,
        text="",
        user_action="",
        admin_action="",
        source="",
        confidence=Confidence.VERIFIED,
    )
    return PlannerPrediction(
        outcome=outcome, reasons=(reason,), low_confidence=False, possible=possible or (outcome,)
    )


def _counted(answers: list[PlannerPrediction], holdings: dict) -> TargetResult:
    result = TargetResult(
        server_id=1, choice="1", name="T", generation="", is_exchange_online=False
    )
    selection = Selection(
        keys=(),
        devices=tuple(1 for _ in answers),
        holdings=holdings,
        mailboxes=sum(holdings.values()),
        per_server={},
    )
    count_answers(result, selection, answers)
    return result


def test_one_person_with_two_phones_of_different_outcomes_is_counted_once_under_the_worst() -> None:
    result = _counted([_answer(Outcome.BLOCKED), _answer(Outcome.CONTINUES)], {(0, 1): 1})

    assert result.devices[Outcome.BLOCKED] == 1 and result.devices[Outcome.CONTINUES] == 1
    assert result.people == {Outcome.BLOCKED.value: 1}
    assert (result.needing_action, result.needing_action_min, result.needing_action_max) == (
        1,
        1,
        1,
    )


def test_an_unknown_outcome_is_not_counted_as_surely_needing_action() -> None:
    # "At least" counts decided, confident answers: a bare `unknown` may turn out `continues`.
    result = _counted([_answer(Outcome.UNKNOWN)], {(0,): 1})

    assert result.needing_action == 1, "the batch page's measure: not simply continues"
    assert (result.needing_action_min, result.needing_action_max) == (0, 1)
    assert result.is_range


def test_pre_approving_one_waves_phones_is_not_done_for_another_waves_phones(lab: Lab) -> None:
    # Pre-approval is per device (its subject is the target): each wave's quarantined phones
    # need their own, where a server or host name change is done once for every later wave.
    _three_source_servers(lab, quarantined=("adam", "bea"))
    ex2016 = ExchangeServer.objects.get(name="EX2016A")

    plan = waves_suggest(target=str(ex2016.pk), move_date=START.date())

    waves = {w.server: w for w in plan.waves if not w.unsupported}
    for name in ("EX2010A", "EX2010B"):
        assert [(p.change, p.devices) for p in waves[name].first_needed] == [
            ("abq-preapprove", 1)
        ], name
        assert waves[name].also_needs == [], name


def test_pre_approval_is_offered_against_a_block_rule_but_not_a_personal_block(lab: Lab) -> None:
    # Both phones match a Block rule of the organisation; Kim's is also on her own block list
    # (Get-CASMailbox ActiveSyncBlockedDeviceIDs), which her allow list cannot override.
    ex2010 = lab.server("EX2010A", V2010SP3)
    ex2016 = lab.server("EX2016A", V2016)
    tony, kim = lab.mailbox("tsmith", ex2010), lab.mailbox("kim", ex2010)
    lab.device(tony, "ApplF17LTTCGFFG8", eas="14.1")
    lab.device(kim, "ApplC39XK2LPJC6Q", eas="14.1")
    lab.vdir(ex2016, "mail.contoso.com")
    lab.cert(ex2016, "5A1B2C3D4E5F60718293A4B5C6D7E8F901234567", "mail.contoso.com")
    lab.export(
        "contoso-rules.csv",
        device_access_rules("contoso.local", [("DeviceModel", "iPhone15C2", "Block")]),
    )
    lab.export("cas-mailboxes.csv", cas_mailboxes([(kim, "", ["ApplC39XK2LPJC6Q"])]))
    lab.import_exports()
    lab.phones_use("mail.contoso.com")
    lab.plan("EX2016A", tony, kim)

    document = compare()

    assert target(document, "EX2016A")["devices"]["blocked"] == 2
    approve = prerequisite(document, "abq-preapprove")
    assert approve["from_to"] == [{"from": "blocked", "to": "continues", "devices": 1}]
    assert approve["uncredited_devices"] == 0
