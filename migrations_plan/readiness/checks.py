"""The checks: each reads the Inventory and returns its findings (eas-moves.md §3, §4).

Where the domain file is unsure, the finding says so (`confidence`) and no rule is invented:
a fact nobody recorded gives `unknown` with where to record it, never a guess.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from exchange.powershell import quote_literal

from .facts import Endpoint, Inventory, Probe, Server
from .findings import Finding, Result, ordered

NEWER_CAS = {"2007", "2010"}  # X-IWA-2003: a 2007 or 2010 CAS fronting 2003 mailboxes
FAILED_PROBES = {"refused", "timeout", "not_found", "tls_error"}
BAD_CERTIFICATE = {"name_mismatch", "untrusted", "expired"}


def _on_off(value: bool | None) -> str:
    return "not recorded" if value is None else ("on" if value else "off")


def _day(value) -> str:
    return f"{value:%Y-%m-%d}" if value else "not recorded"


# --- X-CERT: the certificates on the published endpoints -----------------------------------------


def _probe_facts(probe: Probe) -> tuple[tuple[str, str], ...]:
    return (
        ("probed at", f"{probe.probed_at:%Y-%m-%d %H:%M} UTC"),
        ("outcome", probe.outcome),
        ("thumbprint", probe.thumbprint or "none read"),
        ("issuer", probe.issuer or "none read"),
        ("expires", _day(probe.not_after)),
        ("names", ", ".join(probe.names) or "none read"),
    )


def _problems(read: Probe, previous: Probe | None, endpoint: Endpoint, today) -> list[str]:
    """What makes a certificate blocking (X-CERT): expired, names not covering the host, a
    chain not trusted, an issuer other than the certificate's before it."""
    problems = []
    if read.outcome == "expired" or (read.not_after is not None and read.not_after.date() < today):
        problems.append(f"it expired on {_day(read.not_after)}")
    if read.outcome == "name_mismatch" or read.covers_host is False:
        problems.append(
            f"its names ({', '.join(read.names) or 'none'}) do not cover {endpoint.host}"
        )
    if read.outcome == "untrusted" or read.trusted is False:
        problems.append(
            "its chain is not trusted"
            + (" (self-signed)" if read.self_signed else "")
            + (f": {read.error}" if read.error else "")
        )
    if previous is not None and previous.issuer and read.issuer and previous.issuer != read.issuer:
        problems.append(f"its issuer changed from {previous.issuer} to {read.issuer}")
    return problems


def _certificate(endpoint: Endpoint, inventory: Inventory) -> Finding:
    base = {
        "check": "X-CERT",
        "title": "Certificate on a published EAS endpoint",
        "subject": endpoint.url,
        "servers": endpoint.servers,
        "hosts": frozenset({endpoint.host}),
        "link": inventory.links.get("probes", ""),
    }
    action = (
        "Keep the same certificate, or one from a public CA the phones trust, covering every "
        "EAS and Autodiscover name (legacy.*, mail.*, autodiscover.*)."
    )
    probe = endpoint.probe
    if probe is None:
        return Finding(
            **base,
            result=Result.UNKNOWN,
            message=f"{endpoint.url} ({endpoint.source}) was never probed.",
            missing="The certificate this endpoint serves: run probe_endpoints or press "
            "'Probe now' on the Endpoints page.",
        )
    # The certificate judged: the newest probe's, else (that probe failed) the last one read.
    read = endpoint.last_read if probe.outcome in FAILED_PROBES else probe
    facts = _probe_facts(read or probe)
    problems = _problems(read, endpoint.previous, endpoint, inventory.today) if read else []
    if probe.outcome in FAILED_PROBES:
        failure = f"the newest probe could not read its certificate: {probe.error or probe.outcome}"
        if problems:  # a failed probe does not make a known-bad certificate good
            return Finding(
                **base,
                result=Result.BLOCKING,
                facts=facts,
                message=f"{endpoint.url}: the last certificate read ({_day(read.probed_at)}): "
                f"{'; '.join(problems)}; {failure}.",
                admin_action=action,
                confidence="[S] + [I]",
            )
        return Finding(
            **base,
            result=Result.WARNING,
            facts=facts,
            message=f"{endpoint.url}: {failure}. Phones reaching it from outside may fare "
            "differently; "
            + (
                f"the last certificate read ({_day(read.probed_at)}) was fine."
                if read
                else "nothing about its certificate is known."
            ),
            missing="A probe that reaches the endpoint (from a network that can), or the "
            "Get-ExchangeCertificate export of the servers behind it.",
            admin_action="Check that the endpoint answers, then probe again.",
        )
    if problems:
        return Finding(
            **base,
            result=Result.BLOCKING,
            facts=facts,
            message=f"{endpoint.url}: {'; '.join(problems)}. Phones will refuse to sync there.",
            admin_action=action,
            confidence="[S] + [I]",
        )
    previous = endpoint.previous
    if previous is not None and previous.thumbprint and previous.thumbprint != probe.thumbprint:
        return Finding(
            **base,
            result=Result.WARNING,
            facts=facts,
            message=f"{endpoint.url}: the certificate was renewed by the same issuer "
            f"({previous.thumbprint} → {probe.thumbprint}). Not blocking; phones that trusted "
            "a self-signed or private-CA certificate by installing it (older Windows Mobile) "
            "must accept the new one.",
            admin_action="Tell users of older phones to accept the new certificate.",
            confidence="[I]",
        )
    soon = inventory.today + timedelta(days=inventory.expiry_warning_days)
    if probe.not_after is not None and probe.not_after.date() <= soon:
        return Finding(
            **base,
            result=Result.WARNING,
            facts=facts,
            message=f"{endpoint.url}: the certificate expires on {_day(probe.not_after)}, "
            f"within {inventory.expiry_warning_days} days.",
            admin_action="Renew it from the same issuer, covering the same names, before then.",
        )
    return Finding(
        **base, result=Result.OK, facts=facts, message=f"{endpoint.url}: certificate valid."
    )


def certificate_findings(inventory: Inventory) -> list[Finding]:
    return [_certificate(endpoint, inventory) for endpoint in inventory.endpoints]


# --- X-IWA-2003 and X-BLOCKLEGACY: coexistence with Exchange 2003 ------------------------------


def _fronts(inventory: Inventory, server: Server) -> list[Server]:
    return [
        s
        for s in inventory.servers
        if s.generation in NEWER_CAS
        and s.serves_client_access
        and (not s.forest or not server.forest or s.forest == server.forest)
    ]


def coexistence_findings(inventory: Inventory) -> list[Finding]:
    """Organisation-wide: every 2003 mailbox server, as soon as a 2007/2010 CAS fronts it,
    not only those with mailboxes already in a batch."""
    findings = []
    for server in inventory.servers:
        if server.generation != "2003" or not server.has_mailboxes:
            continue
        fronts = _fronts(inventory, server)
        if not fronts:
            continue
        names = ", ".join(sorted(f.name for f in fronts))
        facts = (
            (f"IWA on {server.name}'s Microsoft-Server-ActiveSync", _on_off(server.iwa_enabled)),
            ("newer Client Access servers", names),
        )
        common = {
            "check": "X-IWA-2003",
            "title": "Integrated Windows Authentication on Exchange 2003 ActiveSync",
            "subject": server.name,
            "facts": facts,
            "servers": frozenset({server.id, *(f.id for f in fronts)}),
            "link": server.page,
            # [V] for a 2007 CAS; the 2010 case is inferred (Q-IWA-2010).
            "confidence": "[S] [V]"
            if all(f.generation == "2007" for f in fronts)
            else "[S] [V] (2007) / [I] (2010: Q-IWA-2010)",
        }
        action = (
            f"Enable Integrated Windows Authentication on the Microsoft-Server-ActiveSync "
            f"virtual directory of {server.name} (IIS Manager), then record it here."
        )
        if server.iwa_enabled is None:
            findings.append(
                Finding(
                    **common,
                    result=Result.UNKNOWN,
                    message=f"{names} front(s) {server.name}; whether IWA is enabled on its "
                    "ActiveSync directory is not recorded (no export carries it for 2003).",
                    missing=f"IWA on {server.name}: record it on the server's page.",
                    admin_action=action,
                )
            )
        elif server.iwa_enabled is False:
            findings.append(
                Finding(
                    **common,
                    result=Result.BLOCKING,
                    message=f"{names} front(s) {server.name}, whose ActiveSync directory has no "
                    "IWA: the newer CAS cannot proxy its users' phones, which stop syncing.",
                    admin_action=action,
                )
            )
        else:
            findings.append(
                Finding(**common, result=Result.OK, message=f"IWA is on for {server.name}.")
            )
        for front in fronts:
            if front.generation == "2007" and front.block_legacy_mailboxes:
                findings.append(
                    Finding(
                        check="X-BLOCKLEGACY",
                        title="BlockLegacyMailboxes on a 2007 CAS",
                        subject=front.name,
                        result=Result.BLOCKING,
                        message=f"{front.name} has BlockLegacyMailboxes = true: phones of "
                        f"mailboxes still on {server.name} are refused behind it.",
                        admin_action="Set BlockLegacyMailboxes to false in the CAS web.config.",
                        facts=(("BlockLegacyMailboxes", "true"),),
                        servers=frozenset({front.id, server.id}),
                        link=front.page,
                        confidence="[V]",
                    )
                )
    return findings


# --- the field note's other situations (§4) -------------------------------------------------------


def shared_address_space_findings(inventory: Inventory) -> list[Finding]:
    link = inventory.links.get("domains", "")
    if not inventory.domains_imported:
        return [
            Finding(
                check="O-SAS",
                title="Shared address space",
                subject="accepted domains",
                result=Result.UNKNOWN,
                message="No accepted domains were imported, so a domain shared with another "
                "mail system cannot be checked.",
                missing="Import Get-AcceptedDomain (DomainName, DomainType, Default).",
                link=link,
            )
        ]
    findings = []
    for domain in inventory.domains:
        common = {
            "check": "O-SAS",
            "title": "Shared address space",
            "subject": domain.domain,
            "facts": (
                ("DomainType", domain.domain_type),
                (
                    "shared with another mail system",
                    _on_off(domain.shared).replace("on", "yes").replace("off", "no"),
                ),
            ),
            "link": link,
            "confidence": "[S]",
        }
        quoted = quote_literal(domain.domain)
        action = (
            f"Set-AcceptedDomain -Identity {quoted} -DomainType ExternalRelay"
            if quoted
            else f"Make {domain.domain!r} an External Relay domain (Set-AcceptedDomain)."
        )
        if domain.shared is None:
            findings.append(
                Finding(
                    **common,
                    result=Result.UNKNOWN,
                    message=f"Whether another mail system also receives mail for {domain.domain} "
                    "is not recorded.",
                    missing=f"Mark {domain.domain} as shared or not on the organisation page.",
                )
            )
        elif domain.shared and domain.domain_type == "Authoritative":
            findings.append(
                Finding(
                    **common,
                    result=Result.BLOCKING,
                    message=f"{domain.domain} is shared with another mail system but Exchange "
                    "holds it as Authoritative: mail to recipients Exchange does not have is "
                    "refused (NDR) instead of routed on.",
                    admin_action=action,
                )
            )
        elif domain.shared and domain.domain_type != "ExternalRelay":
            findings.append(
                Finding(
                    **common,
                    result=Result.WARNING,
                    message=f"{domain.domain} is shared and {domain.domain_type}; the field note "
                    "asks for External Relay.",
                    admin_action=action,
                )
            )
        else:
            findings.append(
                Finding(**common, result=Result.OK, message=f"{domain.domain}: as it should be.")
            )
    return findings


def circular_logging_findings(inventory: Inventory) -> list[Finding]:
    link = inventory.links.get("databases", "")
    servers = {s.id: s for s in inventory.servers}
    if not inventory.databases_imported:
        holders = [
            s for s in inventory.servers if s.has_mailboxes and s.generation not in ("2003", "EXO")
        ]
        if not holders:
            return []
        return [
            Finding(
                check="O-SBS-CIRC",
                title="Circular logging and backups",
                subject="mailbox databases",
                result=Result.UNKNOWN,
                message="No mailbox databases or storage groups were imported, so circular "
                "logging was not checked.",
                missing="Import Get-MailboxDatabase -Status (2010 and later) or Get-StorageGroup "
                "(2007).",
                link=link,
            )
        ]
    findings = []
    for database in inventory.databases:
        server = servers.get(database.server_id) if database.server_id else None
        parts = [database.server_name, database.storage_group, database.name]
        name = "\\".join(part for part in parts if part)
        sbs = server is not None and server.is_sbs is True
        third_party = server.third_party_backup if server is not None else None
        common = {
            "check": "O-SBS-CIRC",
            "title": "Circular logging and backups",
            "subject": name,
            "facts": (
                ("CircularLoggingEnabled", _on_off(database.circular_logging)),
                ("LastFullBackup", _day(database.last_full_backup)),
                ("third-party backup", _on_off(third_party)),
                ("Small Business Server", _on_off(server.is_sbs if server else None)),
            ),
            "servers": frozenset({database.server_id}) if database.server_id else frozenset(),
            "link": server.page if server else link,
            "confidence": "[S]",
        }
        action = (
            "Turn circular logging off on this storage group or database"
            + (
                " (SBS 2008 turns it on by default; only its own backup wizard turns it off)"
                if sbs
                else ""
            )
            + ", so the third-party backup can truncate logs and restore to a point in time."
        )
        if database.circular_logging is None:
            findings.append(
                Finding(
                    **common,
                    result=Result.UNKNOWN,
                    message=f"{name}: the export did not say whether circular logging is on.",
                    missing="Import Get-MailboxDatabase -Status or Get-StorageGroup with "
                    "CircularLoggingEnabled.",
                )
            )
        elif not database.circular_logging:
            findings.append(
                Finding(**common, result=Result.OK, message=f"{name}: circular logging is off.")
            )
        elif third_party is None:
            findings.append(
                Finding(
                    **common,
                    result=Result.UNKNOWN,
                    message=f"{name}: circular logging is on"
                    + (" on a Small Business Server" if sbs else "")
                    + "; whether a third-party backup is in use is not recorded.",
                    missing=f"Record on {database.server_name}'s page whether a third-party "
                    "backup is in use.",
                    admin_action=action,
                )
            )
        elif third_party:
            findings.append(
                Finding(
                    **common,
                    result=Result.BLOCKING,
                    message=f"{name}: circular logging is on while a third-party backup is in use"
                    + (" (Small Business Server 2008: on by default)" if sbs else "")
                    + ". A move writes many logs; with circular logging they cannot be backed up.",
                    admin_action=action,
                )
            )
        else:
            findings.append(
                Finding(
                    **common,
                    result=Result.OK,
                    message=f"{name}: circular logging is on and no third-party backup is in use.",
                )
            )
    return findings


def owa_backup_findings(inventory: Inventory) -> list[Finding]:
    """O-UR-OWA: before an Update Rollup or CU on a server that serves OWA, back up the OWA
    customisations. A checklist item: ticked (with who and when) or not."""
    findings = []
    for server in inventory.servers:
        if not server.serves_client_access or server.generation in ("2003", "EXO", ""):
            continue
        common = {
            "check": "O-UR-OWA",
            "title": "OWA customisations backed up before an update",
            "subject": server.name,
            "servers": frozenset({server.id}),
            "link": server.page,
            "confidence": "[S]",
        }
        backup = server.owa_backup
        if backup is None:
            findings.append(
                Finding(
                    **common,
                    result=Result.WARNING,
                    message=f"Before the next Update Rollup or CU on {server.name}, back up its "
                    "OWA files (ClientAccess\\OWA): updates overwrite customised files, and "
                    "the field note's fix for a broken OWA, re-creating the virtual directory, "
                    "resets its URLs and authentication.",
                    admin_action="Copy the ClientAccess\\OWA folder, then tick it on the server "
                    "page.",
                    facts=(("backup confirmed", "no"),),
                )
            )
        else:
            findings.append(
                Finding(
                    **common,
                    result=Result.OK,
                    message=f"OWA customisations of {server.name} backed up"
                    + (f" before {backup.update}" if backup.update else "")
                    + f" ({backup.by}, {backup.at:%Y-%m-%d}).",
                    facts=(("backup confirmed", f"{backup.by}, {backup.at:%Y-%m-%d %H:%M}"),),
                )
            )
    return findings


def vdir_reset_findings(inventory: Inventory) -> list[Finding]:
    """A re-imported ActiveSync directory that lost its ExternalUrl or an authentication
    method: what re-creating a virtual directory does (the field note's OWA fix)."""
    findings = []
    for change in inventory.vdir_changes:
        lost = change.old and not change.new
        turned_off = change.setting in ("IWA", "Basic authentication") and change.new.lower() in (
            "false",
            "off",
        )
        if not (lost or turned_off):
            continue
        findings.append(
            Finding(
                check="VDIR-RESET",
                title="ActiveSync directory reset",
                subject=f"{change.server_name}: {change.setting}",
                result=Result.BLOCKING,
                message=f"The latest Get-ActiveSyncVirtualDirectory of {change.server_name} "
                f"shows {change.setting} {'empty' if lost else change.new}, where it was "
                f"{change.old} (imported {change.at:%Y-%m-%d}). A re-created virtual directory "
                "loses its URLs and authentication settings; phones using it stop syncing.",
                admin_action=f"Set {change.setting} back on {change.server_name} "
                "(Set-ActiveSyncVirtualDirectory), then import the directory again.",
                facts=(
                    (f"{change.setting} before", change.old),
                    (f"{change.setting} now", change.new or "empty"),
                ),
                servers=frozenset({change.server_id}) if change.server_id else frozenset(),
                link=inventory.links.get("imports", ""),
                confidence="[S] + [I]",
            )
        )
    return findings


def hygiene_findings(inventory: Inventory) -> list[Finding]:
    titles = {
        "HYG-STALE": "Stale partnerships",
        "HYG-DUP": "Duplicate partnerships",
        "HYG-LIMIT": "Mailboxes near the partnership limit",
        "HYG-EASVER": "EAS versions the target will not accept",
    }
    return [
        Finding(
            check=item.check,
            title=titles.get(item.check, item.check),
            subject=titles.get(item.check, item.check).lower(),
            result=Result.WARNING if item.count else Result.OK,
            message=item.detail,
            admin_action="Review the list and the Exchange Management Shell lines it offers."
            if item.count
            else "",
            facts=(("partnerships", str(item.count)), ("mailboxes", str(item.mailboxes))),
            servers=item.servers,
            link=item.link,
        )
        for item in inventory.hygiene
    ]


CHECKS: tuple[Callable[[Inventory], list[Finding]], ...] = (
    certificate_findings,
    coexistence_findings,
    shared_address_space_findings,
    circular_logging_findings,
    owa_backup_findings,
    vdir_reset_findings,
    hygiene_findings,
)


def run_checks(inventory: Inventory) -> list[Finding]:
    """Every check's findings, blocking first."""
    return ordered([finding for check in CHECKS for finding in check(inventory)])
