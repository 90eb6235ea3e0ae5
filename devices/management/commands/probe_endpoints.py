"""manage.py probe_endpoints [--url URL ...] [--json]: read the certificates EAS endpoints serve."""

from __future__ import annotations

import json as jsonlib

from django.core.management.base import BaseCommand, CommandError, CommandParser

from devices.models import EndpointProbe, ProbeOutcome
from devices.probe_services import endpoints_probe
from devices.probes import NotProbeable


def _row(probe: EndpointProbe) -> dict:
    return {
        "url": probe.url,
        "host": probe.host,
        "port": probe.port,
        "outcome": probe.outcome,
        "thumbprint": probe.thumbprint or None,
        "not_after": probe.not_after.isoformat() if probe.not_after else None,
        "not_before": probe.not_before.isoformat() if probe.not_before else None,
        "subject": probe.subject or None,
        "issuer": probe.issuer or None,
        "names": probe.name_list(),
        "self_signed": probe.self_signed,
        "trusted": probe.trusted,
        "covers_host": probe.covers_host,
        "chain": probe.chain,
        "probed_at": probe.probed_at.isoformat(),
        "error": probe.error or None,
    }


def _line(probe: EndpointProbe) -> str:
    parts = [f"{probe.url}: {probe.outcome}"]
    if probe.thumbprint:
        parts.append(f"thumbprint {probe.thumbprint}")
    if probe.not_after:
        parts.append(f"expires {probe.not_after:%Y-%m-%d %H:%M} UTC")
    if probe.issuer:
        parts.append(f"issuer {probe.issuer}")
    if probe.names:
        parts.append(f"names {', '.join(probe.name_list())}")
    if probe.error:
        parts.append(f"error: {probe.error}")
    return " · ".join(parts)


class Command(BaseCommand):
    help = (
        "Connect over TLS to every published EAS endpoint (the ActiveSync directories' external "
        "and internal URLs, the recorded namespaces, the URLs added on the Endpoints page) and "
        "record the certificate each serves: subject, names, issuer, thumbprint, expiry. "
        "Failures (refused, timed out, name not found, name mismatch, untrusted, expired) are "
        "printed and recorded; the exit code is 0 all the same."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url",
            action="append",
            dest="urls",
            metavar="URL",
            help="Probe this https URL instead of the configured ones (repeatable).",
        )
        parser.add_argument("--json", action="store_true", help="Print the results as JSON.")

    def handle(self, *args, urls: list[str] | None, json: bool, **options) -> None:
        try:
            run = endpoints_probe(urls=urls, via="cli")
        except NotProbeable as exc:
            raise CommandError(str(exc)) from exc
        found = list(run.probes.order_by("id"))
        if json:
            self.stdout.write(jsonlib.dumps([_row(p) for p in found], indent=2))
            return
        if not found:
            self.stdout.write(
                "No https EAS endpoint is known: import Get-ActiveSyncVirtualDirectory, record "
                "a namespace, or give --url."
            )
            return
        for probe in found:
            ok = probe.outcome == ProbeOutcome.OK
            self.stdout.write(_line(probe), self.style.SUCCESS if ok else self.style.WARNING)
        failed = sum(p.outcome != ProbeOutcome.OK for p in found)
        self.stdout.write(f"{len(found)} URL(s) probed, {failed} with a problem (run {run.pk}).")
