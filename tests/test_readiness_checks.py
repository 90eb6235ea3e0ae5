"""Readiness checks as pure functions: for each check, the ok, warning, blocking and unknown
cases (facts in, findings out; migrations_plan/readiness/)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from migrations_plan.readiness import checks
from migrations_plan.readiness.facts import (
    AcceptedDomain,
    Database,
    Endpoint,
    Hygiene,
    Inventory,
    OwaBackup,
    Probe,
    Server,
    VdirChange,
)
from migrations_plan.readiness.findings import Result

TODAY = date(2026, 11, 30)
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def probe(**changes) -> Probe:
    values = {
        "outcome": "ok",
        "probed_at": NOW,
        "thumbprint": "A" * 40,
        "issuer": "CN=Contoso CA",
        "subject": "CN=mail.contoso.com",
        "not_after": NOW + timedelta(days=300),
        "names": ("mail.contoso.com",),
        "self_signed": False,
        "trusted": True,
        "covers_host": True,
    }
    return Probe(**{**values, **changes})


def endpoint(
    current: Probe | None, previous: Probe | None = None, last_read: Probe | None = None
) -> Endpoint:
    read = current if current is not None and current.thumbprint else last_read
    return Endpoint(
        url="https://mail.contoso.com/Microsoft-Server-ActiveSync",
        host="mail.contoso.com",
        source="ExternalUrl of EX2016A",
        servers=frozenset({1}),
        probe=current,
        last_read=read,
        previous=previous,
    )


def results(findings) -> list[tuple[str, Result]]:
    return [(f.check, f.result) for f in findings]


@pytest.mark.parametrize(
    ("current", "previous", "expected", "words"),
    [
        (None, None, Result.UNKNOWN, "never probed"),
        (probe(), probe(), Result.OK, "certificate valid"),
        (probe(thumbprint="B" * 40), probe(), Result.WARNING, "renewed by the same issuer"),
        (
            probe(thumbprint="B" * 40, issuer="CN=Other CA"),
            probe(),
            Result.BLOCKING,
            "issuer changed",
        ),
        (
            probe(outcome="expired", not_after=NOW - timedelta(days=1)),
            None,
            Result.BLOCKING,
            "expired",
        ),
        (probe(outcome="name_mismatch", covers_host=False), None, Result.BLOCKING, "do not cover"),
        (
            probe(outcome="untrusted", trusted=False, self_signed=True),
            None,
            Result.BLOCKING,
            "self-signed",
        ),
        (probe(not_after=NOW + timedelta(days=10)), None, Result.WARNING, "expires on"),
        (
            probe(outcome="timeout", error="no answer in 5 s", thumbprint=""),
            None,
            Result.WARNING,
            "no answer",
        ),
        (
            probe(outcome="refused", error="connection refused", thumbprint=""),
            None,
            Result.WARNING,
            "refused",
        ),
    ],
)
def test_the_certificate_of_each_published_endpoint(current, previous, expected, words):
    (finding,) = checks.certificate_findings(
        Inventory(today=TODAY, endpoints=(endpoint(current, previous),))
    )
    assert finding.result is expected
    assert words in finding.message
    if expected is Result.UNKNOWN:
        assert "probe_endpoints" in finding.missing
    if current is not None:
        assert ("thumbprint", current.thumbprint or "none read") in finding.facts


def coexistence(iwa: bool | None, *, front: str = "2007", block_legacy: bool | None = None):
    return Inventory(
        today=TODAY,
        servers=(
            Server(id=1, name="EX2003A", generation="2003", has_mailboxes=True, iwa_enabled=iwa),
            Server(
                id=2,
                name="EX2007CAS",
                generation=front,
                serves_client_access=True,
                block_legacy_mailboxes=block_legacy,
            ),
        ),
    )


def test_iwa_on_every_2003_activesync_directory_once_a_newer_cas_fronts_it():
    assert results(checks.coexistence_findings(coexistence(True))) == [("X-IWA-2003", Result.OK)]
    (blocking,) = checks.coexistence_findings(coexistence(False))
    assert (
        blocking.result is Result.BLOCKING and "Enable Integrated Windows" in blocking.admin_action
    )
    (unknown,) = checks.coexistence_findings(coexistence(None, front="2010"))
    assert unknown.result is Result.UNKNOWN and "record it on the server's page" in unknown.missing
    assert "Q-IWA-2010" in unknown.confidence  # 2010 in front of 2003 is inferred
    alone = Inventory(today=TODAY, servers=coexistence(False).servers[:1])
    assert checks.coexistence_findings(alone) == [], "no newer CAS: nothing proxies yet"
    legacy = checks.coexistence_findings(coexistence(True, block_legacy=True))
    assert ("X-BLOCKLEGACY", Result.BLOCKING) in results(legacy)


def test_a_shared_domain_must_be_external_relay():
    def one(domain_type: str, shared: bool | None):
        inventory = Inventory(
            today=TODAY,
            domains=(AcceptedDomain("contoso.local", "fabrikam.com", domain_type, shared),),
            domains_imported=True,
        )
        return checks.shared_address_space_findings(inventory)[0]

    assert one("Authoritative", True).result is Result.BLOCKING
    assert "-DomainType ExternalRelay" in one("Authoritative", True).admin_action
    assert one("InternalRelay", True).result is Result.WARNING
    assert one("ExternalRelay", True).result is Result.OK
    assert one("Authoritative", False).result is Result.OK
    assert one("Authoritative", None).result is Result.UNKNOWN
    (missing,) = checks.shared_address_space_findings(Inventory(today=TODAY))
    assert missing.result is Result.UNKNOWN and "Get-AcceptedDomain" in missing.missing


def test_circular_logging_with_a_third_party_backup_and_sbs_called_out():
    def one(circular: bool | None, third_party: bool | None, *, sbs: bool | None = None):
        server = Server(
            id=7,
            name="SBS01",
            generation="2007",
            has_mailboxes=True,
            is_sbs=sbs,
            third_party_backup=third_party,
        )
        inventory = Inventory(
            today=TODAY,
            servers=(server,),
            databases=(Database(7, "SBS01", "Mailbox Database", "First Storage Group", circular),),
            databases_imported=True,
        )
        return checks.circular_logging_findings(inventory)[0]

    blocking = one(True, True, sbs=True)
    assert blocking.result is Result.BLOCKING
    assert "Small Business Server 2008" in blocking.message and "wizard" in blocking.admin_action
    assert blocking.subject == "SBS01\\First Storage Group\\Mailbox Database"
    assert one(True, None).result is Result.UNKNOWN and "third-party" in one(True, None).missing
    assert one(False, True).result is Result.OK
    assert one(True, False).result is Result.OK
    assert one(None, True).result is Result.UNKNOWN
    holder = Server(id=7, name="EX2010A", generation="2010", has_mailboxes=True)
    (not_imported,) = checks.circular_logging_findings(Inventory(today=TODAY, servers=(holder,)))
    assert not_imported.result is Result.UNKNOWN and "Get-MailboxDatabase" in not_imported.missing


def test_owa_customisations_are_a_checklist_item_with_who_and_when():
    cas = Server(id=3, name="EX2007CAS", generation="2007", serves_client_access=True)
    (todo,) = checks.owa_backup_findings(Inventory(today=TODAY, servers=(cas,)))
    assert todo.result is Result.WARNING and "Update Rollup" in todo.message
    done = Server(
        id=3,
        name="EX2007CAS",
        generation="2007",
        serves_client_access=True,
        owa_backup=OwaBackup(by="alice", at=NOW, update="SP3 RU23"),
    )
    (ok,) = checks.owa_backup_findings(Inventory(today=TODAY, servers=(done,)))
    assert ok.result is Result.OK and "alice" in ok.message and "SP3 RU23" in ok.message


def test_a_reimported_directory_that_lost_its_url_or_authentication_is_a_finding():
    def one(setting: str, old: str, new: str):
        change = VdirChange(2, "EX2007CAS", setting, old, new, NOW)
        return checks.vdir_reset_findings(Inventory(today=TODAY, vdir_changes=(change,)))

    (lost,) = one("ExternalUrl", "https://mail.contoso.com/Microsoft-Server-ActiveSync", "")
    assert lost.result is Result.BLOCKING and "Set-ActiveSyncVirtualDirectory" in lost.admin_action
    (auth,) = one("IWA", "True", "False")
    assert auth.result is Result.BLOCKING
    assert one("ExternalUrl", "", "https://mail.contoso.com/x") == [], "a URL set is no reset"
    assert one("IWA", "False", "True") == []


def test_hygiene_lists_are_warnings_when_not_empty():
    inventory = Inventory(
        today=TODAY,
        hygiene=(
            Hygiene("HYG-STALE", 4, 3, "4 partnerships have not synced for 30 days", "/h/stale/"),
            Hygiene("HYG-DUP", 0, 0, "no duplicates", "/h/dup/"),
        ),
    )
    assert results(checks.hygiene_findings(inventory)) == [
        ("HYG-STALE", Result.WARNING),
        ("HYG-DUP", Result.OK),
    ]


def test_every_check_runs_and_blocking_findings_come_first():
    inventory = Inventory(
        today=TODAY,
        servers=coexistence(False).servers,
        endpoints=(endpoint(probe()),),
        domains=(AcceptedDomain("contoso.local", "contoso.com", "Authoritative", False),),
        domains_imported=True,
    )
    found = checks.run_checks(inventory)
    assert found[0].result is Result.BLOCKING and found[0].check == "X-IWA-2003"
    assert [f.result.rank for f in found] == sorted(f.result.rank for f in found)
    assert len({f.digest for f in found}) == len(found)


def test_a_failed_probe_does_not_make_a_known_bad_certificate_good():
    expired = probe(
        outcome="expired", not_after=NOW - timedelta(days=3), probed_at=NOW - timedelta(days=1)
    )
    failed = probe(outcome="timeout", error="no answer in 5 s", thumbprint="", issuer="")

    (finding,) = checks.certificate_findings(
        Inventory(today=TODAY, endpoints=(endpoint(failed, last_read=expired),))
    )

    assert finding.result is Result.BLOCKING
    assert "the last certificate read" in finding.message and "no answer" in finding.message
    (fine,) = checks.certificate_findings(
        Inventory(today=TODAY, endpoints=(endpoint(failed, last_read=probe()),))
    )
    assert fine.result is Result.WARNING and "was fine" in fine.message


def test_an_issuer_change_stays_blocking_however_often_the_new_certificate_is_probed():
    old = probe(issuer="CN=Contoso CA", probed_at=NOW - timedelta(days=9))
    # The adapter keeps, as `previous`, the newest probe of another certificate: probing the
    # new one again (a later probed_at) does not replace it.
    for probed_at in (NOW, NOW + timedelta(days=1)):
        current = probe(thumbprint="B" * 40, issuer="CN=Other CA", probed_at=probed_at)
        (finding,) = checks.certificate_findings(
            Inventory(today=TODAY, endpoints=(endpoint(current, previous=old),))
        )
        assert finding.result is Result.BLOCKING and "issuer changed" in finding.message


def test_a_new_probe_of_the_same_certificate_keeps_the_acknowledged_digest():
    def finding(probed_at):
        current = probe(outcome="expired", probed_at=probed_at)
        inventory = Inventory(today=TODAY, endpoints=(endpoint(current),))
        return checks.certificate_findings(inventory)[0]

    first, later = finding(NOW), finding(NOW + timedelta(hours=5))
    assert first.result is Result.BLOCKING and first.digest == later.digest


def test_the_shared_domain_command_quotes_the_imported_name():
    hostile = "evil.com' ; Remove-Mailbox * ; '"
    inventory = Inventory(
        today=TODAY,
        domains=(AcceptedDomain("contoso.local", hostile, "Authoritative", True),),
        domains_imported=True,
    )
    (finding,) = checks.shared_address_space_findings(inventory)
    expected = "-Identity 'evil.com'' ; Remove-Mailbox * ; ''' -DomainType ExternalRelay"
    assert expected in finding.admin_action
