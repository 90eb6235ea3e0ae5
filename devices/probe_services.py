"""Endpoint certificate probes: which URLs exsync probes, running a probe, asking for one.

The page's "Probe now" (through a Celery task) and `manage.py probe_endpoints` share
`endpoints_probe`. Only URLs the inventory publishes (the ActiveSync directories' external and
internal URLs, the recorded namespaces) and those an admin added are probed, and only https.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from exsync.setsql import advisory_xact_lock

from . import probes
from .models import EndpointProbe, ExchangeServer, Namespace, ProbeOutcome, ProbeRun, ProbeTarget
from .signals import inventory_changed

log = logging.getLogger(__name__)

EAS_PATH = "/Microsoft-Server-ActiveSync"
# The kind inventory_changed carries after probes changed a host's certificate facts.
PROBE_KIND = "endpoint probes"
# Outcomes after which no certificate was read: the planner keeps the previous facts.
NO_CERTIFICATE = (
    ProbeOutcome.REFUSED,
    ProbeOutcome.TIMEOUT,
    ProbeOutcome.NOT_FOUND,
    ProbeOutcome.TLS_ERROR,
)
ACTIVE = (ProbeRun.State.QUEUED, ProbeRun.State.RUNNING)
PROBE_LOCK = 0x50524F42  # "PROB": the advisory-lock class of probe run requests
# A run still queued after this lost its message; one running longer than this lost its worker
# (a probe takes at most twice PROBE_TIMEOUT_SECONDS per URL, plus the name lookup). Either stops blocking new runs.
QUEUED_STALE = timedelta(minutes=10)
RUNNING_STALE = timedelta(hours=1)


class ProbeRunRefused(Exception):
    """A run is already queued or running: the new request joins it."""

    def __init__(self, run: ProbeRun) -> None:
        super().__init__(f"Probe run {run.pk} is already {run.get_state_display().lower()}.")
        self.run = run


# -- which URLs ---------------------------------------------------------------------------------


def url_key(url: str) -> str:
    """The form two spellings of one URL share: lower-case scheme, host and path (IIS paths
    are case-insensitive), no default port, no trailing slash, query or fragment."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").rstrip(".")
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, 443) else f"{host}:{port}"
    return urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/").lower(), "", ""))


def namespace_url(host: str) -> str:
    return f"https://{host.strip().lower()}{EAS_PATH}"


def _https(url: str) -> bool:
    try:
        probes.url_host_port(url)
    except probes.NotProbeable:
        return False
    return True


def probe_urls() -> list[tuple[str, str]]:
    """Every https URL exsync knows to be a published EAS endpoint, with where it comes from:
    (url, source), one per normalised URL, in the order servers, namespaces, admin URLs."""
    found: dict[str, tuple[str, list[str]]] = {}

    def add(url: str, source: str) -> None:
        if not url or not _https(url):
            return
        key = url_key(url)
        _, sources = found.setdefault(key, (url.strip(), []))
        if source not in sources:
            sources.append(source)

    for server in ExchangeServer.objects.only("name", "eas_external_url", "eas_internal_url"):
        add(server.eas_external_url, f"{server.name} external URL")
        add(server.eas_internal_url, f"{server.name} internal URL")
    for host in Namespace.objects.values_list("host", flat=True):
        add(namespace_url(host), f"namespace {host}")
    for url in ProbeTarget.objects.values_list("url", flat=True):
        add(url, "added by an admin")
    return [(url, ", ".join(sources)) for url, sources in found.values()]


# -- running probes -----------------------------------------------------------------------------


def _store(run: ProbeRun, result: probes.ProbeResult) -> EndpointProbe:
    cert = result.certificate
    return EndpointProbe.objects.create(
        run=run,
        url=result.url,
        host=result.host,
        port=result.port,
        probed_at=result.probed_at,
        outcome=result.outcome,
        error=result.error,
        subject=cert.subject if cert else "",
        names="\n".join(cert.names) if cert else "",
        issuer=cert.issuer if cert else "",
        thumbprint=cert.thumbprint if cert else "",
        not_before=cert.not_before if cert else None,
        not_after=cert.not_after if cert else None,
        self_signed=cert.self_signed if cert else None,
        trusted=result.trusted,
        covers_host=result.covers_host,
        chain=list(cert.chain) if cert else [],
    )


def _facts(probe: EndpointProbe) -> tuple:
    """What the planner reads of a probe (facts_from_inventory): a change re-plans batches."""
    return (probe.outcome, probe.thumbprint, probe.issuer, probe.not_after, probe.names)


def _hosts_changed(run: ProbeRun) -> list[str]:
    """Hosts whose newest probe in this run differs from their newest probe before it (a host
    never probed before has changed too: the planner now reads the probe). Two queries."""
    previous = (
        EndpointProbe.objects.filter(host=OuterRef("host"))
        .exclude(run=run)
        .order_by("-probed_at", "-id")
        .values("pk")[:1]
    )
    newest: dict[str, EndpointProbe] = {}
    for probe in run.probes.annotate(previous_id=Subquery(previous)).order_by("probed_at", "id"):
        newest[probe.host] = probe  # the run's last probe of each host
    before = EndpointProbe.objects.in_bulk(
        [p.previous_id for p in newest.values() if p.previous_id]
    )
    return sorted(
        host
        for host, probe in newest.items()
        if probe.previous_id is None or _facts(before[probe.previous_id]) != _facts(probe)
    )


def endpoints_probe(
    *,
    urls: Iterable[str] | None = None,
    run: ProbeRun | None = None,
    actor: AbstractBaseUser | None = None,
    via: str = "web",
) -> ProbeRun:
    """Probe the given URLs (default: probe_urls()) one after the other, storing one
    EndpointProbe per URL and the run's progress as it goes, so a page can follow it.

    `urls` given (the CLI's --url) are the admin's explicit choice; each must be https
    (probes.NotProbeable otherwise, before anything is written). Afterwards, if any host's
    certificate facts changed, inventory_changed is sent on commit so active batches re-plan.
    """
    if urls is not None:
        urls = list({url_key(u): u.strip() for u in reversed(list(urls))}.values())[::-1]
        for url in urls:
            probes.url_host_port(url)  # raises NotProbeable
        targets = [(url, "given") for url in urls]
    else:
        targets = probe_urls()
    now = timezone.now()
    if run is None:
        run = ProbeRun.objects.create(
            state=ProbeRun.State.RUNNING, requested_by=actor, via=via, started_at=now
        )
    run.state, run.started_at = ProbeRun.State.RUNNING, run.started_at or now
    run.urls_total, run.urls_done = len(targets), 0
    run.save(update_fields=["state", "started_at", "urls_total", "urls_done"])
    try:
        for url, _source in targets:
            try:
                result = probes.probe(
                    url, timeout=settings.PROBE_TIMEOUT_SECONDS, ca_file=settings.PROBE_CA_FILE
                )
            except Exception as exc:  # a URL probes.probe could not even try: shown, not fatal
                log.exception("probe of %s failed", url)
                result = probes.unprobeable(url, f"{type(exc).__name__}: {exc}")
            _store(run, result)
            run.urls_done += 1
            run.save(update_fields=["urls_done"])
    except Exception as exc:
        run.state, run.error, run.finished_at = ProbeRun.State.FAILED, repr(exc), timezone.now()
        run.save(update_fields=["state", "error", "finished_at"])
        raise
    run.state, run.finished_at = ProbeRun.State.DONE, timezone.now()
    run.save(update_fields=["state", "finished_at"])
    if _hosts_changed(run):
        transaction.on_commit(
            lambda: inventory_changed.send(sender=EndpointProbe, kinds={PROBE_KIND})
        )
    return run


def probe_run_claim(*, run_id: int) -> ProbeRun | None:
    """The worker's claim of a queued run: only the conditional UPDATE that wins runs it, so a
    message delivered twice probes once. None when the run is not queued (any more)."""
    claimed = ProbeRun.objects.filter(pk=run_id, state=ProbeRun.State.QUEUED).update(
        state=ProbeRun.State.RUNNING, started_at=timezone.now()
    )
    return ProbeRun.objects.get(pk=run_id) if claimed else None


def _fail_stale() -> None:
    now = timezone.now()
    ProbeRun.objects.filter(state=ProbeRun.State.QUEUED, created_at__lt=now - QUEUED_STALE).update(
        state=ProbeRun.State.FAILED,
        finished_at=now,
        error="the run was never started (worker not running?)",
    )
    ProbeRun.objects.filter(
        state=ProbeRun.State.RUNNING, started_at__lt=now - RUNNING_STALE
    ).update(
        state=ProbeRun.State.FAILED,
        finished_at=now,
        error="the run did not finish (worker stopped?)",
    )


@transaction.atomic
def probe_run_request(*, actor: AbstractBaseUser | None) -> ProbeRun:
    """Queue a probe run for the worker (the page's button); the task is sent on commit.

    Raises ProbeRunRefused naming the run already queued or running: a double click makes one
    run. Requests are serialised by an advisory lock on PostgreSQL and by SQLite's write lock
    (transaction_mode IMMEDIATE), so two at once cannot both see no run.
    """
    advisory_xact_lock(PROBE_LOCK)
    _fail_stale()
    active = ProbeRun.objects.filter(state__in=ACTIVE).order_by("-created_at", "-id").first()
    if active is not None:
        raise ProbeRunRefused(active)
    run = ProbeRun.objects.create(state=ProbeRun.State.QUEUED, requested_by=actor, via="web")
    from .tasks import endpoints_probe_task  # the tasks module imports this one

    transaction.on_commit(lambda: endpoints_probe_task.delay(run.pk), robust=True)
    return run


@transaction.atomic
def probe_target_add(*, url: str, note: str = "", actor: AbstractBaseUser | None) -> ProbeTarget:
    """Remember a URL to probe besides the ones the exports name (validated by the form)."""
    target, _ = ProbeTarget.objects.get_or_create(
        url=url, defaults={"note": note, "added_by": actor}
    )
    return target


@transaction.atomic
def probe_target_delete(*, target: ProbeTarget) -> None:
    target.delete()


# -- reads --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EndpointRow:
    url: str
    source: str
    probe: EndpointProbe | None


def probes_newest() -> QuerySet[EndpointProbe]:
    """The newest probe of every URL ever probed, in one query."""
    newest = (
        EndpointProbe.objects.filter(url=OuterRef("url"))
        .order_by("-probed_at", "-id")
        .values("pk")[:1]
    )
    return EndpointProbe.objects.filter(pk=Subquery(newest)).order_by("host", "url")


def endpoints_page() -> list[EndpointRow]:
    """Every URL to probe with its newest probe, then URLs probed once but no longer configured
    (given on the command line, or a server or namespace since removed)."""
    newest = {url_key(p.url): p for p in probes_newest()}
    rows = [
        EndpointRow(url, source, newest.pop(url_key(url), None)) for url, source in probe_urls()
    ]
    rows += [EndpointRow(p.url, "no longer configured", p) for p in newest.values()]
    return rows


def probe_run_latest() -> ProbeRun | None:
    return ProbeRun.objects.select_related("requested_by").order_by("-created_at", "-id").first()
