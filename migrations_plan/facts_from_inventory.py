"""The adapter between the inventory (ORM rows) and the pure planner (plain facts).

Facts exsync does not hold stay None so the planner can say they are missing: nothing here
invents a value. Where exsync infers a fact from the inventory, the comment says how.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from urllib.parse import urlparse

from devices.models import ExchangeServer, Generation
from exchange.versions import parse_version

from .planner.facts import (
    EXCHANGE_ONLINE,
    AccessLevel,
    CertificateFacts,
    DeviceFacts,
    EndpointFacts,
    MoveFacts,
    OrgFacts,
    ServerFacts,
)
from .planner.predict import Prediction, predict

ACCESS = {
    "allowed": AccessLevel.ALLOW,
    "quarantined": AccessLevel.QUARANTINE,
    "blocked": AccessLevel.BLOCK,
}


def _build_key(build: str) -> tuple[int, ...]:
    parsed = parse_version(build)
    return (parsed.major, parsed.minor, parsed.build, parsed.revision) if parsed else (0,)


class Inventory:
    """Every server once, as facts: a batch is planned against a handful of servers."""

    def __init__(self, servers: Iterable[ExchangeServer]) -> None:
        self.servers = {s.pk: s for s in servers}
        published_sites = {s.site for s in self.servers.values() if s.site and s.eas_external_url}
        self.facts = {pk: self._server_facts(s, published_sites) for pk, s in self.servers.items()}
        self.endpoints = {pk: self._endpoint(s) for pk, s in self.servers.items()}
        self.org = OrgFacts(
            servers=tuple(f for f in self.facts.values() if not f.is_exchange_online),
        )

    @staticmethod
    def _server_facts(server: ExchangeServer, published_sites: set[str]) -> ServerFacts:
        if server.generation == Generation.EXO:
            return EXCHANGE_ONLINE
        return ServerFacts(
            name=server.name,
            admin_display_version=server.admin_display_version or (server.build or None),
            exsetup_version=server.exsetup_version or None,
            site=server.site or None,
            # Whether the CAS of this server's AD site publishes an EAS ExternalUrl: known for
            # sites where some server has one; unknown (None) for sites without any record.
            eas_external_url_set=True if server.site in published_sites else None,
            iwa_on_eas_vdir=server.iwa_enabled,
        )

    def _endpoint_server(self, server: ExchangeServer) -> ExchangeServer | None:
        """The server whose published EAS URL a mailbox on `server` is reached through: its own,
        else one in the same AD site. 2003 servers have no site: their front end is unknown."""
        if server.eas_url:
            return server
        if not server.site:
            return None
        # In coexistence the newest front end in the site answers the published namespace.
        fronts = [o for o in self.servers.values() if o.site == server.site and o.eas_external_url]
        return max(fronts, key=lambda o: _build_key(o.build), default=None)

    def _endpoint(self, server: ExchangeServer) -> EndpointFacts | None:
        front = self._endpoint_server(server)
        if front is None:
            return None
        host = urlparse(front.eas_url).hostname
        certificate = None
        if front.cert_thumbprint:
            certificate = CertificateFacts(
                thumbprint=front.cert_thumbprint,
                not_after=front.cert_not_after.date() if front.cert_not_after else None,
                issuer=front.cert_issuer or None,
            )
        return EndpointFacts(
            host=host,
            server=self.facts[front.pk],
            legacy_namespace=True if host and host.startswith("legacy.") else None,
            certificate=certificate,
        )

    def move(self, *, source_id: int | None, target_id: int, move_date: date) -> MoveFacts:
        """The move of one mailbox; an unknown source server stays a server without a version."""
        source = self.facts.get(source_id) if source_id else None
        target_endpoint = self.endpoints.get(target_id)
        return MoveFacts(
            source=source or ServerFacts(name="(no server recorded)"),
            target=self.facts[target_id],
            move_date=move_date,
            target_endpoint=target_endpoint,
        )

    def device(
        self,
        *,
        source_id: int | None,
        eas_version: str,
        client_type: str,
        access_state: str,
    ) -> DeviceFacts:
        # The device talks to the endpoint its mailbox is published on today.
        return DeviceFacts(
            eas_version=eas_version or None,
            client_type=client_type or None,
            endpoint=self.endpoints.get(source_id) if source_id else None,
            access_state=ACCESS.get(access_state.lower()) if access_state else None,
        )

    def predict(
        self,
        *,
        source_id: int | None,
        target_id: int,
        move_date: date,
        eas_version: str,
        client_type: str,
        access_state: str,
    ) -> Prediction:
        """The planner's answer for one phone-fact combination moving to `target_id`."""
        return predict(
            self.move(source_id=source_id, target_id=target_id, move_date=move_date),
            self.device(
                source_id=source_id,
                eas_version=eas_version,
                client_type=client_type,
                access_state=access_state,
            ),
            self.org,
        )
