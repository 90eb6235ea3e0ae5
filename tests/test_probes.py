"""Endpoint certificate probes against real TLS servers on 127.0.0.1 (threads of this process).

Certificates come from trustme CAs; the probe trusts them through settings.PROBE_CA_FILE, as an
admin would point it at an internal CA. Servers answer on https://localhost:PORT/; where a test
needs the host names phones use (mail.contoso.com), `resolve` makes them resolve to a local
server, so the probe's real path (DNS, connect, SNI, verification) runs unchanged.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path

import pytest
import trustme
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from devices import probes
from devices.models import EndpointProbe, ProbeOutcome, ProbeRun, ProbeTarget
from devices.probe_services import (
    ProbeRunRefused,
    endpoints_probe,
    probe_run_request,
    probe_urls,
)
from devices.signals import inventory_changed
from devices.tasks import endpoints_probe_task
from migrations_plan.models import Prediction
from migrations_plan.services import batch_create, batch_plan
from tests.factories import (
    ClientProfileFactory,
    ExchangeServerFactory,
    MailboxFactory,
    NamespaceFactory,
    PartnershipFactory,
)

pytestmark = pytest.mark.django_db
EAS = "/Microsoft-Server-ActiveSync"


class TLSServer:
    """Serves one certificate (which a test may swap) to every TLS client; `silent` accepts
    connections and never answers."""

    def __init__(self, cert: trustme.LeafCert | None, *, silent: bool = False) -> None:
        self.silent = silent
        self.held: list[socket.socket] = []
        self.serve(cert)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def serve(self, cert: trustme.LeafCert | None) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        if cert is not None:
            cert.configure_cert(context)
        self.context = context

    def url(self, host: str = "localhost") -> str:
        return f"https://{host}:{self.port}{EAS}"

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.silent:
                self.held.append(conn)
                continue
            conn.settimeout(2)
            try:
                with self.context.wrap_socket(conn, server_side=True):
                    pass
            except OSError:  # the client gave up on our certificate: expected
                conn.close()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=2)
        self.listener.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def tls_server() -> Iterator[Callable[..., TLSServer]]:
    servers: list[TLSServer] = []

    def start(cert: trustme.LeafCert | None = None, *, silent: bool = False) -> TLSServer:
        servers.append(TLSServer(cert, silent=silent))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def cas(settings, tmp_path: Path) -> tuple[trustme.CA, trustme.CA]:
    """Two CAs the probe trusts (an internal CA and "another issuer")."""
    first = trustme.CA(organization_name="Contoso Issuing CA")
    second = trustme.CA(organization_name="Fabrikam Issuing CA")
    bundle = tmp_path / "cas.pem"
    bundle.write_bytes(first.cert_pem.bytes() + second.cert_pem.bytes())
    settings.PROBE_CA_FILE = str(bundle)
    settings.PROBE_TIMEOUT_SECONDS = 2
    return first, second


@pytest.fixture
def resolve(monkeypatch) -> Callable[[str, int], None]:
    """Make a host name on port 443 reach a local server (a test's DNS and port forward)."""
    real = socket.getaddrinfo
    table: dict[str, int] = {}

    def getaddrinfo(host, port, *args, **kwargs):
        if isinstance(host, str) and host.lower() in table and int(port or 443) == 443:
            return real("127.0.0.1", table[host.lower()], *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    def add(host: str, port: int) -> None:
        table[host.lower()] = port

    return add


def probe(url: str) -> probes.ProbeResult:
    from django.conf import settings

    return probes.probe(url, timeout=settings.PROBE_TIMEOUT_SECONDS, ca_file=settings.PROBE_CA_FILE)


def newest(url: str) -> EndpointProbe:
    return EndpointProbe.objects.filter(url=url).order_by("-probed_at", "-id").first()


# -- what one probe finds -----------------------------------------------------------------------


def test_the_same_certificate_on_two_probes_is_the_same_thumbprint_and_changes_nothing(
    cas, tls_server, django_capture_on_commit_callbacks
):
    ca, _ = cas
    server = tls_server(ca.issue_cert("localhost"))
    received: list[set[str]] = []

    def receiver(sender, *, kinds, **kwargs):
        received.append(kinds)

    inventory_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            first = endpoints_probe(urls=[server.url()], via="test")
        with django_capture_on_commit_callbacks(execute=True):
            second = endpoints_probe(urls=[server.url()], via="test")
    finally:
        inventory_changed.disconnect(receiver)

    a, b = first.probes.get(), second.probes.get()
    assert a.outcome == b.outcome == ProbeOutcome.OK
    assert a.trusted is True and a.covers_host is True and a.self_signed is False
    assert a.thumbprint == b.thumbprint and len(a.thumbprint) == 40 and a.thumbprint.isupper()
    assert a.names == "localhost" and "Contoso Issuing CA" in a.issuer
    assert a.chain[0] == a.subject
    assert a.not_after > timezone.now() and a.not_before < timezone.now()
    assert first.state == second.state == ProbeRun.State.DONE
    assert (first.urls_total, first.urls_done) == (1, 1)
    # The first probe of a host re-plans active batches; the second, finding the same
    # certificate, does not.
    assert received == [{"endpoint probes"}]


def test_a_renewal_by_the_same_issuer_has_a_new_thumbprint_and_the_same_issuer(cas, tls_server):
    ca, _ = cas
    server = tls_server(ca.issue_cert("localhost"))
    before = probe(server.url())
    server.serve(ca.issue_cert("localhost"))
    after = probe(server.url())

    assert before.outcome == after.outcome == ProbeOutcome.OK
    assert before.certificate.thumbprint != after.certificate.thumbprint
    assert before.certificate.issuer == after.certificate.issuer


def test_a_certificate_from_another_issuer_is_told_apart(cas, tls_server):
    ca, other = cas
    server = tls_server(ca.issue_cert("localhost"))
    before = probe(server.url())
    server.serve(other.issue_cert("localhost"))
    after = probe(server.url())

    assert after.outcome == ProbeOutcome.OK
    assert "Fabrikam" in after.certificate.issuer and "Contoso" in before.certificate.issuer


def test_a_self_signed_certificate_is_recorded_as_untrusted_and_self_signed(cas, tls_server):
    # A CA's own certificate served as the leaf: issuer == subject, and nobody trusts it.
    alone = trustme.CA(organization_name="EX2010A self-signed")
    leaf = trustme.LeafCert(
        private_key_pem=alone.private_key_pem.bytes(),
        server_cert_pem=alone.cert_pem.bytes(),
        chain_to_ca=[],
    )
    server = tls_server(leaf)

    result = probe(server.url())

    assert result.outcome == ProbeOutcome.UNTRUSTED
    assert result.trusted is False
    assert result.certificate.self_signed is True
    assert result.certificate.subject == result.certificate.issuer
    assert "verify code" in result.error


def test_an_expired_certificate_is_expired_and_still_recorded(cas, tls_server):
    ca, _ = cas
    past = datetime.now(UTC) - timedelta(days=30)
    server = tls_server(
        ca.issue_cert("localhost", not_before=past - timedelta(days=365), not_after=past)
    )

    result = probe(server.url())

    assert result.outcome == ProbeOutcome.EXPIRED
    assert result.certificate.not_after < datetime.now(UTC)
    assert result.certificate.thumbprint


def test_a_certificate_for_another_name_is_a_name_mismatch_with_its_names(cas, tls_server):
    ca, _ = cas
    server = tls_server(ca.issue_cert("mail.contoso.test", "autodiscover.contoso.test"))

    result = probe(server.url())

    assert result.outcome == ProbeOutcome.NAME_MISMATCH
    assert result.covers_host is False
    assert result.certificate.names == ("mail.contoso.test", "autodiscover.contoso.test")
    assert "localhost" in result.error


def test_nothing_listening_is_refused(cas):
    with socket.create_server(("127.0.0.1", 0)) as sock:
        port = sock.getsockname()[1]

    result = probe(f"https://localhost:{port}{EAS}")

    assert result.outcome == ProbeOutcome.REFUSED
    assert result.certificate is None


def test_an_unknown_host_name_is_not_found(cas, monkeypatch):
    def getaddrinfo(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    result = probe(f"https://mail.contoso.invalid{EAS}")

    assert result.outcome == ProbeOutcome.NOT_FOUND
    assert "not found" in result.error


def test_a_host_name_that_cannot_be_looked_up_is_not_found_and_the_run_goes_on(cas, tls_server):
    server = tls_server(cas[0].issue_cert("localhost"))
    bad = f"https://mail..contoso.com{EAS}"  # an empty label: the resolver cannot encode it

    run = endpoints_probe(urls=[bad, server.url()], via="test")

    outcomes = dict(run.probes.values_list("url", "outcome"))
    assert outcomes[bad] == ProbeOutcome.NOT_FOUND
    assert outcomes[server.url()] == ProbeOutcome.OK
    assert run.state == ProbeRun.State.DONE and run.urls_done == 2


def test_a_server_that_accepts_and_never_answers_times_out(cas, tls_server, settings):
    settings.PROBE_TIMEOUT_SECONDS = 1
    server = tls_server(silent=True)

    started = time.monotonic()
    run = endpoints_probe(urls=[server.url()], via="test")
    elapsed = time.monotonic() - started

    row = run.probes.get()
    assert row.outcome == ProbeOutcome.TIMEOUT
    assert "1 s" in row.error
    assert elapsed < 5
    assert run.state == ProbeRun.State.DONE


def test_only_https_urls_are_probed():
    with pytest.raises(probes.NotProbeable):
        probes.probe("http://mail.contoso.com/Microsoft-Server-ActiveSync", timeout=1)
    with pytest.raises(probes.NotProbeable):
        endpoints_probe(urls=["ftp://mail.contoso.com/"], via="test")
    assert not ProbeRun.objects.exists()


# -- which URLs ---------------------------------------------------------------------------------


def test_probe_urls_lists_vdir_urls_namespaces_and_admin_urls_and_nothing_else():
    ex = ExchangeServerFactory(
        name="EX2016A",
        eas_external_url="https://mail.contoso.com/Microsoft-Server-ActiveSync",
        eas_internal_url="https://ex2016a.contoso.local/Microsoft-Server-ActiveSync",
    )
    ExchangeServerFactory(
        name="EX2010A",
        eas_external_url="http://plain.contoso.com/Microsoft-Server-ActiveSync",  # not https
        eas_internal_url="",
    )
    NamespaceFactory(host="mail.contoso.com", servers=[ex])  # the same URL as EX2016A's
    NamespaceFactory(host="legacy.contoso.com", servers=[])
    ProbeTarget.objects.create(url="https://autodiscover.contoso.com/Autodiscover/")
    PartnershipFactory(mailbox=MailboxFactory(server=ex))  # mailboxes and phones add no URL

    urls = dict(probe_urls())

    assert list(urls) == [
        "https://mail.contoso.com/Microsoft-Server-ActiveSync",
        "https://ex2016a.contoso.local/Microsoft-Server-ActiveSync",
        "https://legacy.contoso.com/Microsoft-Server-ActiveSync",
        "https://autodiscover.contoso.com/Autodiscover/",
    ]
    assert urls["https://mail.contoso.com/Microsoft-Server-ActiveSync"] == (
        "EX2016A external URL, namespace mail.contoso.com"
    )


# -- the command --------------------------------------------------------------------------------


def test_the_command_prints_thumbprint_expiry_and_failures_and_exits_zero(cas, tls_server):
    ca, _ = cas
    cert = ca.issue_cert("localhost")
    good = tls_server(cert)
    with socket.create_server(("127.0.0.1", 0)) as sock:
        closed = f"https://localhost:{sock.getsockname()[1]}{EAS}"
    out = StringIO()

    call_command("probe_endpoints", "--url", good.url(), "--url", closed, stdout=out)

    text = out.getvalue()
    row = EndpointProbe.objects.get(url=good.url())
    assert row.thumbprint in text
    assert f"expires {row.not_after:%Y-%m-%d}" in text
    assert "Contoso Issuing CA" in text and "names localhost" in text
    assert f"{closed}: refused" in text
    assert "1 with a problem" in text
    assert ProbeRun.objects.get().via == "cli"


def test_the_command_prints_json(cas, tls_server):
    ca, _ = cas
    good = tls_server(ca.issue_cert("localhost"))
    out = StringIO()

    call_command("probe_endpoints", "--url", good.url(), "--json", stdout=out)

    rows = json.loads(out.getvalue())
    assert [r["outcome"] for r in rows] == ["ok"]
    assert rows[0]["thumbprint"] == EndpointProbe.objects.get().thumbprint
    assert rows[0]["not_after"] and rows[0]["names"] == ["localhost"]


# -- the page and the task ----------------------------------------------------------------------


def test_an_admin_double_click_on_probe_now_queues_one_run(
    client, admin_user, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks() as sent:
        first = client.post(reverse("devices:endpoint_probe_now"))
        second = client.post(reverse("devices:endpoint_probe_now"))

    assert first.status_code == second.status_code == 302
    run = ProbeRun.objects.get()
    assert run.state == ProbeRun.State.QUEUED and run.requested_by == admin_user
    assert len(sent) == 1
    page = client.get(reverse("devices:endpoint_probes"))
    assert b'http-equiv="refresh"' in page.content
    assert b"already queued" in page.content


def test_the_task_runs_a_queued_run_once(cas, tls_server, admin_user):
    ca, _ = cas
    server = tls_server(ca.issue_cert("localhost"))
    ProbeTarget.objects.create(url=server.url())
    run = probe_run_request(actor=admin_user)

    endpoints_probe_task(run.pk)
    again = endpoints_probe_task(run.pk)  # the message delivered twice

    run.refresh_from_db()
    assert run.state == ProbeRun.State.DONE and (run.urls_done, run.urls_total) == (1, 1)
    assert EndpointProbe.objects.get().outcome == ProbeOutcome.OK
    assert "left alone" in again
    # Finished: a new request is accepted.
    assert probe_run_request(actor=admin_user).pk != run.pk


def test_a_second_request_while_one_runs_is_refused_and_a_stale_one_does_not_block(admin_user):
    run = probe_run_request(actor=admin_user)
    with pytest.raises(ProbeRunRefused, match="already queued"):
        probe_run_request(actor=admin_user)
    ProbeRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(hours=1))

    fresh = probe_run_request(actor=admin_user)

    run.refresh_from_db()
    assert run.state == ProbeRun.State.FAILED and "never started" in run.error
    assert fresh.state == ProbeRun.State.QUEUED


def test_the_page_lists_the_newest_probe_per_url_for_helpdesk_without_buttons(
    client, helpdesk_user, cas, tls_server, django_assert_max_num_queries
):
    ca, _ = cas
    server = tls_server(ca.issue_cert("localhost"))
    ProbeTarget.objects.create(url=server.url())
    endpoints_probe(via="test")
    server.serve(ca.issue_cert("localhost"))
    endpoints_probe(via="test")
    client.force_login(helpdesk_user)

    with django_assert_max_num_queries(12):
        page = client.get(reverse("devices:endpoint_probes"))

    body = page.content.decode()
    assert page.status_code == 200
    assert newest(server.url()).thumbprint in body
    assert EndpointProbe.objects.order_by("id").first().thumbprint not in body
    assert "Probe now" not in body and "<form" not in body.split("<main")[1]
    assert 'http-equiv="refresh"' not in body


def test_helpdesk_may_neither_probe_nor_add_urls(client, helpdesk_user):
    client.force_login(helpdesk_user)

    assert client.post(reverse("devices:endpoint_probe_now")).status_code == 403
    response = client.post(
        reverse("devices:probe_target_add"), {"url": "https://mail.contoso.com/"}
    )
    assert response.status_code == 403
    assert not ProbeRun.objects.exists() and not ProbeTarget.objects.exists()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://mail.contoso.com/Microsoft-Server-ActiveSync", "Only https"),
        ("https://admin:secret@mail.contoso.com/", "passwords"),
        ("https://10.0.0.5/Microsoft-Server-ActiveSync", "host name"),
        ("https://mail_contoso/", "not a host name"),
        ("https://mail.contoso.com/" + "a" * 600, "at most 512"),
    ],
)
def test_an_added_url_must_be_https_with_a_host_name_and_no_credentials(
    client, admin_user, url, problem
):
    client.force_login(admin_user)

    response = client.post(reverse("devices:probe_target_add"), {"url": url})

    assert response.status_code == 400
    assert problem in response.content.decode()
    assert not ProbeTarget.objects.exists()


def test_an_admin_adds_a_url_and_it_is_probed_next(client, admin_user):
    client.force_login(admin_user)

    response = client.post(
        reverse("devices:probe_target_add"),
        {"url": "https://Legacy.Contoso.com/Microsoft-Server-ActiveSync", "note": "2007 CAS"},
    )

    assert response.status_code == 302
    target = ProbeTarget.objects.get()
    assert target.added_by == admin_user
    assert ("https://Legacy.Contoso.com/Microsoft-Server-ActiveSync", "added by an admin") in (
        probe_urls()
    )
    again = client.post(
        reverse("devices:probe_target_add"),
        {"url": "https://legacy.contoso.com/microsoft-server-activesync/"},
    )
    assert again.status_code == 400 and ProbeTarget.objects.count() == 1


# -- the planner reads the probes ---------------------------------------------------------------

SOON = timezone.now() + timedelta(days=7)


def _cross_site_2010():
    """2010 → 2010 across sites: phones use mail.contoso.com (HQ) and follow the 451 to
    mail-branch.contoso.com, the Branch site's ExternalUrl. Both servers' imported
    Get-ExchangeCertificate facts are the factory's one certificate (no change)."""
    hq = ExchangeServerFactory(
        name="EX2010A",
        ex2010=True,
        eas_external_url=f"https://mail.contoso.com{EAS}",
    )
    branch = ExchangeServerFactory(
        name="EX2010B",
        ex2010=True,
        site="contoso.local/Configuration/Sites/Branch",
        eas_external_url=f"https://mail-branch.contoso.com{EAS}",
    )
    NamespaceFactory(host="mail.contoso.com", servers=[hq], devices_use=True)
    NamespaceFactory(host="mail-branch.contoso.com", servers=[branch], devices_use=False)
    ClientProfileFactory(device_type="iPhone", honours_451=True)
    mailbox = MailboxFactory(server=hq)
    PartnershipFactory(mailbox=mailbox, eas_version="14.1")
    batch = batch_create(
        name="To Branch", target_server=branch, start_at=SOON, mailboxes=[mailbox], actor=None
    )
    return batch


def _x_cert(batch) -> list[dict]:
    prediction = Prediction.objects.select_related("explanation").get(member__batch=batch)
    return [r for r in prediction.explanation.reasons if r["rule"] == "X-CERT"]


@pytest.mark.parametrize("renewal", ["same issuer", "another issuer"])
def test_the_planner_blocks_when_a_probe_finds_a_certificate_from_another_issuer(
    cas, tls_server, resolve, django_capture_on_commit_callbacks, renewal
):
    ca, other = cas
    hq, branch = (
        tls_server(ca.issue_cert("mail.contoso.com")),
        tls_server(ca.issue_cert("mail-branch.contoso.com")),
    )
    resolve("mail.contoso.com", hq.port)
    resolve("mail-branch.contoso.com", branch.port)
    batch = _cross_site_2010()
    assert not [r for r in _x_cert(batch) if r["outcome"] == "blocked"]

    # Both names probed: today's certificates, one issuer.
    with django_capture_on_commit_callbacks() as sent:
        endpoints_probe(via="test")
    assert len(sent) == 1  # first probes of both hosts: active batches re-plan
    assert set(EndpointProbe.objects.values_list("outcome", flat=True)) == {"ok"}
    batch_plan(batch=batch)
    assert not [r for r in _x_cert(batch) if r["outcome"] == "blocked"]
    prediction = Prediction.objects.get(member__batch=batch)
    assert prediction.outcome == "redirect", prediction.explanation.reasons

    # The Branch name's certificate is replaced before the move.
    issuer = ca if renewal == "same issuer" else other
    branch.serve(issuer.issue_cert("mail-branch.contoso.com"))
    with django_capture_on_commit_callbacks() as sent:
        endpoints_probe(via="test")
    assert len(sent) == 1  # the Branch host's certificate changed
    batch_plan(batch=batch)

    blocking = [r for r in _x_cert(batch) if r["outcome"] == "blocked"]
    if renewal == "same issuer":
        assert not blocking
    else:
        assert len(blocking) == 1 and "issuer" in blocking[0]["text"]
        assert "Fabrikam" in blocking[0]["text"]
        assert Prediction.objects.get(member__batch=batch).outcome == "blocked"


def test_a_probe_that_read_no_certificate_leaves_the_imported_facts(cas, tls_server, resolve):
    # Nothing answers mail-branch.contoso.com: the planner keeps the imported certificate.
    ca, _ = cas
    hq = tls_server(ca.issue_cert("mail.contoso.com"))
    resolve("mail.contoso.com", hq.port)
    with socket.create_server(("127.0.0.1", 0)) as sock:
        resolve("mail-branch.contoso.com", sock.getsockname()[1])
    batch = _cross_site_2010()

    endpoints_probe(via="test")
    batch_plan(batch=batch)

    assert EndpointProbe.objects.get(host="mail-branch.contoso.com").outcome == "refused"
    # The imported issuer (Contoso Issuing CA, the factory's) against the probed one (trustme's
    # "Contoso Issuing CA" organisation, another DN): a change of issuer, which blocks.
    texts = " ".join(r["text"] for r in _x_cert(batch))
    assert "CN=Contoso Issuing CA" in texts


def test_inventory_load_reads_the_probes_in_a_fixed_number_of_queries():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from migrations_plan.facts_from_inventory import Inventory

    def probed(host: str, thumbprint: str, outcome: str = ProbeOutcome.OK) -> None:
        NamespaceFactory(host=host, servers=[])
        EndpointProbe.objects.create(
            url=f"https://{host}{EAS}", host=host, outcome=outcome, thumbprint=thumbprint
        )

    probed("mail.contoso.com", "A" * 40)
    with CaptureQueriesContext(connection) as few:
        Inventory.load()
    for n in range(12):
        probed(f"mail{n}.contoso.com", f"{n:040d}")
        EndpointProbe.objects.create(
            url=f"https://mail{n}.contoso.com{EAS}",
            host=f"mail{n}.contoso.com",
            outcome=ProbeOutcome.TIMEOUT,  # newer, but read no certificate
        )
    with CaptureQueriesContext(connection) as many:
        inventory = Inventory.load()

    assert len(many) == len(few)
    assert len(inventory.probes) == 13
    assert inventory.probes["mail3.contoso.com"].thumbprint == f"{3:040d}"
