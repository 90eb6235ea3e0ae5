"""The TLS client of endpoint probes: which certificate an EAS URL serves, or why none was read.

One probe is one URL: connect to its host and port with certificate verification on (the
system trust store plus an optional extra CA bundle), and, when verification fails, connect
once more with verification off so that the failing certificate is still recorded. Every
network failure ends as a ProbeOutcome with the error text, never as an exception or a hang:
the timeout bounds the connection and the whole TLS handshake (a server that accepts and never
answers times out too). No ORM here: probe_services stores what this returns.
"""

from __future__ import annotations

import contextlib
import hashlib
import select
import socket
import ssl
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import NameOID

from .models import ProbeOutcome

# OpenSSL's X509_V_ERR_* codes that SSLCertVerificationError.verify_code carries.
VERIFY_HOSTNAME_MISMATCH = 62
VERIFY_CERT_HAS_EXPIRED = 10


@dataclass(frozen=True)
class CertificateInfo:
    """The leaf certificate an endpoint served, as Get-ExchangeCertificate would show it."""

    subject: str  # RFC 4514
    issuer: str  # RFC 4514
    names: tuple[str, ...]  # subject CN and DNS SANs, lower case, in certificate order
    thumbprint: str  # SHA-1 of the DER, upper-case hex, as Exchange prints it
    not_before: datetime
    not_after: datetime
    self_signed: bool
    chain: tuple[str, ...] = ()  # subjects as served, leaf first


@dataclass(frozen=True)
class ProbeResult:
    url: str
    host: str
    port: int
    outcome: ProbeOutcome
    probed_at: datetime
    error: str = ""
    certificate: CertificateInfo | None = None
    trusted: bool | None = None  # the chain verified (system store + extra CA bundle)
    covers_host: bool | None = None  # the certificate's names cover the URL's host
    elapsed: float = field(default=0.0, compare=False)


class NotProbeable(ValueError):
    """The URL is not one exsync connects to: only https URLs with a host name."""


def url_host_port(url: str) -> tuple[str, int]:
    """(host, port) of an https URL; raises NotProbeable for anything else."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() != "https":
        raise NotProbeable(f"{url}: only https URLs are probed")
    try:
        port = parts.port or 443
    except ValueError as exc:
        raise NotProbeable(f"{url}: the port is not a number from 1 to 65535") from exc
    if not parts.hostname:
        raise NotProbeable(f"{url}: no host name")
    return parts.hostname.lower().rstrip("."), port


def covers(names: tuple[str, ...], host: str) -> bool:
    """Whether a certificate for these names is valid for host: exact names, and a wildcard in
    the leftmost label standing for exactly one label (RFC 6125 §6.4.3, as browsers do)."""
    host = host.lower().rstrip(".")
    for name in names:
        name = name.lower().rstrip(".")
        if name == host:
            return True
        if name.startswith("*.") and "." in host:
            label, rest = host.split(".", 1)
            if label and rest == name[2:] and "." in rest:
                return True
    return False


def certificate_info(der: bytes, chain: tuple[str, ...] = ()) -> CertificateInfo:
    cert = x509.load_der_x509_certificate(der)
    common_names = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns_names = san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        dns_names = []
    names = tuple(dict.fromkeys(n.strip().lower() for n in [*common_names, *dns_names] if n))
    subject, issuer = cert.subject.rfc4514_string(), cert.issuer.rfc4514_string()
    return CertificateInfo(
        subject=subject,
        issuer=issuer,
        names=names,
        # SHA-1 because that is the thumbprint Exchange and Windows print, not for security.
        thumbprint=hashlib.sha1(der, usedforsecurity=False).hexdigest().upper(),
        not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc,
        self_signed=cert.issuer == cert.subject,
        chain=chain or (subject,),
    )


def _verifying_context(ca_file: str) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


def _reading_context() -> ssl.SSLContext:
    """Verification off and old protocols allowed: only to read what a failing (or old, TLS
    1.0-only Exchange 2007/2010) endpoint serves, never to trust it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with contextlib.suppress(ssl.SSLError):  # an OpenSSL without security levels
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    return context


def _wait(tls: ssl.SSLSocket, *, write: bool, deadline: float, timeout: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining > 0:
        ready = (
            select.select([], [tls], [], remaining)
            if write
            else select.select([tls], [], [], remaining)
        )
        if ready[0] or ready[1]:
            return
    raise TimeoutError(f"no TLS answer within {timeout:g} s")


def _connect(host: str, port: int, *, deadline: float, timeout: float) -> socket.socket:
    """A TCP connection to the first address of `host` that answers, all addresses together
    within the deadline (socket.create_connection would give each address the whole timeout).
    The name lookup itself is the system resolver's: it has no timeout of its own to give."""
    last: OSError | None = None
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(remaining)
            sock.connect(address)
            return sock
        except OSError as error:
            sock.close()
            last = error
    raise last or TimeoutError(f"no connection within {timeout:g} s")


def _handshake(host: str, port: int, *, context: ssl.SSLContext, timeout: float) -> ssl.SSLSocket:
    """Connect and finish the TLS handshake before the deadline, or raise.

    The handshake runs on a non-blocking socket against one deadline: a per-read timeout
    would let a server that answers one byte at a time hold the probe for ever.
    """
    deadline = time.monotonic() + timeout
    raw = _connect(host, port, deadline=deadline, timeout=timeout)
    try:
        raw.setblocking(False)
        tls = context.wrap_socket(raw, server_hostname=host, do_handshake_on_connect=False)
    except BaseException:
        raw.close()
        raise
    try:
        while True:
            try:
                tls.do_handshake()
                return tls
            except ssl.SSLWantReadError:
                _wait(tls, write=False, deadline=deadline, timeout=timeout)
            except ssl.SSLWantWriteError:
                _wait(tls, write=True, deadline=deadline, timeout=timeout)
    except BaseException:
        tls.close()
        raise


def _chain_subjects(tls: ssl.SSLSocket) -> tuple[str, ...]:
    """Subjects of the chain the server sent, leaf first; () where Python cannot say.

    Python 3.13 has SSLSocket.get_unverified_chain(); 3.10-3.12 only its private twin."""
    getter = getattr(tls, "get_unverified_chain", None) or getattr(
        getattr(tls, "_sslobj", None), "get_unverified_chain", None
    )
    if getter is None:
        return ()
    try:
        chain = getter() or []
        ders = [c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER) for c in chain]
        return tuple(x509.load_der_x509_certificate(d).subject.rfc4514_string() for d in ders)
    except (AttributeError, ValueError, ssl.SSLError):
        return ()


def _read(tls: ssl.SSLSocket) -> CertificateInfo | None:
    der = tls.getpeercert(binary_form=True)
    return certificate_info(der, _chain_subjects(tls)) if der else None


def _connect_failure(exc: OSError) -> tuple[ProbeOutcome, str]:
    if isinstance(exc, socket.gaierror):
        return ProbeOutcome.NOT_FOUND, f"host name not found: {exc.strerror or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return ProbeOutcome.REFUSED, "connection refused"
    if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError since Python 3.10
        return ProbeOutcome.TIMEOUT, f"no connection within the timeout ({exc})"
    # Host or network unreachable and the like: no connection was made.
    return ProbeOutcome.REFUSED, f"could not connect: {exc.strerror or exc}"


def _verify_failure(exc: ssl.SSLCertVerificationError) -> tuple[ProbeOutcome, bool | None]:
    if exc.verify_code == VERIFY_HOSTNAME_MISMATCH:
        return ProbeOutcome.NAME_MISMATCH, None  # OpenSSL stops before judging the chain
    if exc.verify_code == VERIFY_CERT_HAS_EXPIRED:
        return ProbeOutcome.EXPIRED, False
    return ProbeOutcome.UNTRUSTED, False


def probe(url: str, *, timeout: float, ca_file: str = "") -> ProbeResult:
    """Probe one https URL. Raises NotProbeable for a URL that is not https; every other
    failure is in the result's outcome and error."""
    host, port = url_host_port(url)
    started = time.monotonic()
    probed_at = datetime.now(UTC)

    def result(outcome: ProbeOutcome, error: str = "", **facts) -> ProbeResult:
        cert = facts.get("certificate")
        if cert is not None and "covers_host" not in facts:
            facts["covers_host"] = covers(cert.names, host)
        return ProbeResult(
            url=url,
            host=host,
            port=port,
            outcome=outcome,
            probed_at=probed_at,
            error=error,
            elapsed=time.monotonic() - started,
            **facts,
        )

    try:
        tls = _handshake(host, port, context=_verifying_context(ca_file), timeout=timeout)
    except UnicodeError as exc:  # mail..contoso.com, a label over 63 characters: no such name
        return result(ProbeOutcome.NOT_FOUND, f"not a host name that can be looked up: {exc}")
    except ssl.SSLCertVerificationError as exc:
        outcome, trusted = _verify_failure(exc)
        error = f"{exc.verify_message} (OpenSSL verify code {exc.verify_code})"
    except ssl.SSLError as exc:
        outcome, trusted, error = ProbeOutcome.TLS_ERROR, None, f"TLS handshake failed: {exc}"
    except TimeoutError as exc:
        return result(ProbeOutcome.TIMEOUT, f"no answer within {timeout:g} s ({exc})")
    except OSError as exc:  # before or during the handshake: refused, not found, reset...
        if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
            return result(ProbeOutcome.TLS_ERROR, f"the server closed the connection: {exc}")
        return result(*_connect_failure(exc))
    else:
        with tls:
            try:
                return result(ProbeOutcome.OK, certificate=_read(tls), trusted=True)
            except ValueError as exc:  # a certificate cryptography cannot parse
                return result(ProbeOutcome.TLS_ERROR, f"the certificate could not be read: {exc}")

    # Verification failed: read what is served anyway, so the failing certificate is recorded.
    try:
        with _handshake(host, port, context=_reading_context(), timeout=timeout) as tls:
            certificate = _read(tls)
    except (OSError, ValueError) as exc:  # ssl.SSLError, timeouts, an unparsable certificate
        return result(
            outcome, f"{error}; reading the certificate failed too: {exc}", trusted=trusted
        )
    return result(outcome, error, certificate=certificate, trusted=trusted)


def unprobeable(url: str, error: str) -> ProbeResult:
    """The result of a URL that could not be probed at all (shown as a failure, never lost)."""
    try:
        host, port = url_host_port(url)
    except NotProbeable:
        host, port = urlsplit(url).hostname or "", 443
    return ProbeResult(
        url=url,
        host=host,
        port=port,
        outcome=ProbeOutcome.TLS_ERROR,
        probed_at=datetime.now(UTC),
        error=error,
    )
