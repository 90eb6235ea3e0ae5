"""The adapter between the inventory (ORM rows) and the pure planner (plain facts).

Facts exsync does not hold stay None so the planner can say they are missing: nothing here
invents a value. Where exsync derives a fact from the inventory, the comment says how:

- the forest of a server: declared by an admin, else derived from its exports (Site, DN, Fqdn);
- the host name phones use: the namespace recorded as "phones use it" for the mailbox's site
  (Organisation -> Namespaces), never the mailbox server's own virtual directory or an
  InternalUrl; when none is recorded the planner answers under each namespace of the forest;
- the hybrid server of an organisation: only as an admin recorded it on the Organisation page;
- whether a site publishes an EAS ExternalUrl: yes when a server of the site has one; no
  when every client-access server of the site had its directory imported without one;
- the certificate on a host name: the newest probe of the name that read a certificate
  (manage.py probe_endpoints), else the IIS certificate of the servers answering it;
- what a client can do (EAS capability, HTTP 451, modern auth, policy compliance): the most
  specific client profile an admin recorded for its DeviceType / model / OS;
- whether the target allows or blocks a device: the mailbox's personal lists (Get-CASMailbox,
  only when the mailbox stays in its organisation) and the target organisation's device access
  rules (Get-ActiveSyncDeviceAccessRule), in the order Exchange applies them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlparse

from django.db.models import OuterRef, Subquery

from devices.models import (
    Certificate,
    ClientProfile,
    DeviceAccessRule,
    EndpointProbe,
    ExchangeServer,
    Generation,
    MobileDevicePolicy,
    Namespace,
    Organisation,
    PersonalAccess,
    ProbeOutcome,
)
from exchange.versions import parse_version

from .fact_key import FactKey
from .planner.facts import (
    EXCHANGE_ONLINE,
    AccessLevel,
    CertificateFacts,
    DeviceFacts,
    EndpointFacts,
    MoveFacts,
    MoveKind,
    OrgFacts,
    ServerFacts,
)
from .planner.predict import Prediction, derive_move_kind
from .planner.ranges import predict_range

ACCESS = {
    "allowed": AccessLevel.ALLOW,
    "quarantined": AccessLevel.QUARANTINE,
    "blocked": AccessLevel.BLOCK,
    "allow": AccessLevel.ALLOW,
    "quarantine": AccessLevel.QUARANTINE,
    "block": AccessLevel.BLOCK,
}
# The id of Exchange Online in an Inventory before it has a row of its own (never saved).
EXCHANGE_ONLINE_UNSAVED = -1
# Kinds after which the target mailbox is a new object: it holds none of today's partnerships.
NEW_MAILBOX_KINDS = {MoveKind.CROSS_FOREST, MoveKind.STAGED_OR_CUTOVER_OR_IMAP}
# Mailbox servers where Allow/Block/Quarantine decides (Exchange 2010 and later, and EXO).
# Probe outcomes after which no certificate was read: such a probe says nothing about it.
NO_CERTIFICATE = (
    ProbeOutcome.REFUSED,
    ProbeOutcome.TIMEOUT,
    ProbeOutcome.NOT_FOUND,
    ProbeOutcome.TLS_ERROR,
)
ABQ_GENERATIONS = {
    Generation.EX2010,
    Generation.EX2013,
    Generation.EX2016,
    Generation.EX2019,
    Generation.SE,
    Generation.EXO,
}


def _build_key(build: str) -> tuple[int, ...]:
    parsed = parse_version(build)
    return (parsed.major, parsed.minor, parsed.build, parsed.revision) if parsed else (0,)


def _host(url: str) -> str | None:
    return (urlparse(url).hostname or None) if url else None


def _same_forest(a: str, b: str) -> bool:
    """Whether two servers may be of one forest: an unrecorded forest matches any."""
    return not a or not b or a == b


def _in_site(site: str, entries: list[str]) -> bool:
    """Whether a server's AD site (contoso.local/Configuration/Sites/EMEA, as exported) is one of
    the sites an admin listed, by full path or by the site's own name (EMEA)."""
    site = site.strip().lower()
    name = site.rsplit("/", 1)[-1]
    return bool(site) and any(e.strip().lower() in (site, name) for e in entries)


def serves_client_access(server: ExchangeServer) -> bool:
    """Whether a server has an ActiveSync directory of its own to import: the Client Access
    role (2007/2010), any 2013+ server, or a server whose roles were not exported."""
    if not server.roles:
        return True
    if server.generation in (
        Generation.EX2013,
        Generation.EX2016,
        Generation.EX2019,
        Generation.SE,
    ):
        return True
    return "clientaccess" in server.roles.replace(" ", "").lower()


@dataclass(frozen=True)
class BatchContext:
    """What is the same for every partnership of one batch."""

    target_id: int
    move_date: date
    move_kind: str = ""
    target_policy_id: int | None = None


class Inventory:
    """The whole inventory once, as facts: a batch is planned against a handful of servers."""

    def __init__(
        self,
        servers: Iterable[ExchangeServer],
        *,
        namespaces: Iterable[Namespace] = (),
        certificates: Iterable[Certificate] = (),
        organisations: Iterable[Organisation] = (),
        profiles: Iterable[ClientProfile] = (),
        policies: Iterable[MobileDevicePolicy] = (),
        access_rules: Iterable[DeviceAccessRule] = (),
        probes: Iterable[EndpointProbe] = (),
    ) -> None:
        self.servers = {s.pk: s for s in servers}
        self.certificates = {c.thumbprint.upper(): c for c in certificates}
        # The newest probe of each host name that read a certificate.
        self.probes: dict[str, EndpointProbe] = {}
        for probe in sorted(probes, key=lambda p: (p.probed_at, p.pk)):
            if probe.outcome not in NO_CERTIFICATE and probe.thumbprint:
                self.probes[probe.host.lower()] = probe
        self.organisations = {o.forest: o for o in organisations}
        self.profiles = sorted(profiles, key=lambda p: -p.specificity)
        self.policies = {p.pk: p for p in policies}
        self.facts = {pk: self._server_facts(s) for pk, s in self.servers.items()}
        self.namespaces = [self._namespace(n) for n in namespaces]
        self._profile_cache: dict[tuple[str, str, str], ClientProfile | None] = {}
        # Facts derived from the snapshot alone, per server or per target: a plan asks for them
        # once per fact key, a comparison of targets once per key and target (compare.py).
        self._endpoint_cache: dict[int | None, EndpointFacts | None] = {}
        self._target_endpoint_cache: dict[int, EndpointFacts | None] = {}
        self._org_cache: dict[tuple[str, int, int | None], OrgFacts] = {}
        self.access_rules: dict[int, list[DeviceAccessRule]] = {}
        for rule in access_rules:
            self.access_rules.setdefault(rule.organisation_id, []).append(rule)

    @classmethod
    def load(cls) -> Inventory:
        """Everything the planner may ask, in a fixed number of queries."""
        return cls(
            ExchangeServer.objects.all(),
            namespaces=Namespace.objects.prefetch_related("servers"),
            certificates=Certificate.objects.all(),
            organisations=Organisation.objects.all(),
            profiles=ClientProfile.objects.all(),
            policies=MobileDevicePolicy.objects.select_related("organisation"),
            access_rules=DeviceAccessRule.objects.all(),
            probes=cls._newest_probes(),
        )

    @staticmethod
    def _newest_probes():
        """The newest probe that read a certificate, of each recorded namespace: one query,
        whatever the probe history holds."""
        read = EndpointProbe.objects.exclude(outcome__in=NO_CERTIFICATE).exclude(thumbprint="")
        newest = read.filter(host=OuterRef("host")).order_by("-probed_at", "-id").values("pk")[:1]
        return read.filter(host__in=Namespace.objects.values("host"), pk=Subquery(newest))

    # -- servers and sites ---------------------------------------------------------------------

    def _site_publishes(self, server: ExchangeServer) -> bool | None:
        """Whether the CAS of this server's AD site publishes an EAS ExternalUrl."""
        if not server.site:
            return True if server.eas_external_url else None
        site = [s for s in self.servers.values() if s.site == server.site]
        if any(s.eas_external_url for s in site):
            return True
        cas = [s for s in site if serves_client_access(s)]
        if cas and all(s.eas_vdir_imported for s in cas):
            return False  # imported without ExternalUrl: the site proxies
        return None

    def _server_facts(self, server: ExchangeServer) -> ServerFacts:
        if server.generation == Generation.EXO:
            return EXCHANGE_ONLINE
        return ServerFacts(
            name=server.name,
            admin_display_version=server.admin_display_version or (server.build or None),
            exsetup_version=server.exsetup_version or None,
            site=server.site or None,
            organization=server.effective_forest or None,
            eas_external_url_set=self._site_publishes(server),
            iwa_on_eas_vdir=server.iwa_enabled,
            block_legacy_mailboxes=server.block_legacy_mailboxes,
        )

    def exchange_online_id(self) -> int:
        """Exchange Online's id in this snapshot. Until an admin first picks it as a target it
        has no row; a comparison of targets offers it all the same, as an unsaved server with
        id EXCHANGE_ONLINE_UNSAVED (never written: nothing here writes)."""
        for pk, server in self.servers.items():
            if server.generation == Generation.EXO:
                return pk
        cloud = ExchangeServer(
            pk=EXCHANGE_ONLINE_UNSAVED, name=EXCHANGE_ONLINE.name, generation=Generation.EXO
        )
        self.servers[cloud.pk] = cloud
        self.facts[cloud.pk] = EXCHANGE_ONLINE
        return cloud.pk

    def forest_of(self, server_id: int | None) -> str:
        server = self.servers.get(server_id) if server_id else None
        return server.effective_forest if server else ""

    # -- namespaces and certificates -----------------------------------------------------------

    def _certificate(self, server: ExchangeServer) -> CertificateFacts | None:
        if not server.cert_thumbprint:
            return None
        row = self.certificates.get(server.cert_thumbprint.upper())
        names: tuple[str, ...] | None = None
        self_signed = None
        if row is not None:
            self_signed = row.is_self_signed
            domains = [d.strip() for d in row.domains.splitlines() if d.strip()]
            subject_cn = [
                part.split("=", 1)[1].strip()
                for part in row.subject.split(",")
                if part.strip().upper().startswith("CN=")
            ]
            # CertificateDomains lists the subject and SANs; an export without it says nothing.
            names = tuple(dict.fromkeys(domains + subject_cn)) if domains else None
        return CertificateFacts(
            thumbprint=server.cert_thumbprint,
            not_after=server.cert_not_after.date() if server.cert_not_after else None,
            names=names,
            issuer=server.cert_issuer or None,
            self_signed=self_signed,
        )

    def _probed(self, host: str) -> CertificateFacts | None:
        """What the newest probe of the host read: what phones are served today, preferred to
        the imported Get-ExchangeCertificate facts."""
        probe = self.probes.get(host.lower())
        if probe is None:
            return None
        return CertificateFacts(
            thumbprint=probe.thumbprint,
            not_after=probe.not_after.date() if probe.not_after else None,
            names=tuple(probe.name_list()),
            issuer=probe.issuer or None,
            self_signed=probe.self_signed,
        )

    def _namespace(self, namespace: Namespace) -> tuple[Namespace, EndpointFacts]:
        answering = sorted(
            (s for s in namespace.servers.all() if s.pk in self.servers),
            key=lambda s: _build_key(s.build),
        )
        # In coexistence the newest front end answers the name (the namespace moved to it).
        front = answering[-1] if answering else None
        return namespace, EndpointFacts(
            host=namespace.host,
            server=self.facts[front.pk] if front else None,
            legacy_namespace=namespace.is_legacy,
            certificate=self._probed(namespace.host)
            or (self._certificate(self.servers[front.pk]) if front else None),
            reaches_mailbox_after_move=not namespace.retired,
        )

    def _forest_namespaces(self, forest: str) -> list[tuple[Namespace, EndpointFacts]]:
        def in_forest(namespace: Namespace) -> bool:
            forests = {
                self.servers[s.pk].effective_forest
                for s in namespace.servers.all()
                if s.pk in self.servers
            }
            return not forests or any(_same_forest(forest, f) for f in forests)

        return [(n, e) for n, e in self.namespaces if in_forest(n)]

    def _candidate_endpoints(self, forest: str) -> tuple[EndpointFacts, ...]:
        """What phones of this forest may be talking to, when nobody recorded it: every known
        namespace, and every client-access server whose ActiveSync directory was not imported
        (it may publish a name exsync has not seen)."""
        known = self._forest_namespaces(forest)
        answering = {s.pk for n, _ in known for s in n.servers.all()}
        unseen = tuple(
            EndpointFacts(server=self.facts[s.pk])
            for s in self.servers.values()
            if s.generation != Generation.EXO
            and _same_forest(forest, s.effective_forest)
            and serves_client_access(s)
            and not s.eas_vdir_imported
            and s.pk not in answering
        )
        return tuple(e for _, e in known) + unseen

    def device_endpoint(self, server_id: int | None) -> EndpointFacts | None:
        """The host name phones of mailboxes on this server use, when recorded unambiguously."""
        if server_id not in self._endpoint_cache:
            self._endpoint_cache[server_id] = self._device_endpoint(server_id)
        return self._endpoint_cache[server_id]

    def _device_endpoint(self, server_id: int | None) -> EndpointFacts | None:
        server = self.servers.get(server_id) if server_id else None
        if server is None:
            return None
        used = [
            (n, e)
            for n, e in self._forest_namespaces(server.effective_forest)
            if n.devices_use and (not n.site_list() or _in_site(server.site, n.site_list()))
        ]
        # A namespace scoped to the mailbox's site wins over one for every site.
        scoped = [(n, e) for n, e in used if n.site_list()]
        chosen = scoped or used
        return chosen[0][1] if len(chosen) == 1 else None

    def target_endpoint(self, target_id: int) -> EndpointFacts | None:
        """The namespace published for the target: where a redirect sends a phone.

        The target's own ExternalUrl, else that of the newest front end of its AD site; a
        legacy name (kept on an older front end during a transition) is never a redirect's
        destination."""
        if target_id not in self._target_endpoint_cache:
            self._target_endpoint_cache[target_id] = self._target_endpoint(target_id)
        return self._target_endpoint_cache[target_id]

    def _target_endpoint(self, target_id: int) -> EndpointFacts | None:
        target = self.servers[target_id]
        if target.generation == Generation.EXO:
            return EndpointFacts(host="outlook.office365.com", server=EXCHANGE_ONLINE)
        by_host = {n.host: e for n, e in self.namespaces if not n.is_legacy}
        site = [s for s in self.servers.values() if target.site and s.site == target.site]
        fronts = sorted(
            (s for s in site if s.eas_external_url and s.pk != target.pk),
            key=lambda s: _build_key(s.build),
            reverse=True,
        )
        for server in (target, *fronts):
            endpoint = by_host.get(_host(server.eas_external_url) or "")
            if endpoint is not None:
                return endpoint
        return None

    # -- organisations ---------------------------------------------------------------------------

    def _org_facts(self, *, source_id: int | None, target_id: int, policy) -> OrgFacts:
        # Depends on the source only through its forest: one OrgFacts per forest and target.
        key = (self.forest_of(source_id), target_id, policy.pk if policy else None)
        if key not in self._org_cache:
            self._org_cache[key] = self._org_facts_uncached(
                source_id=source_id, target_id=target_id, policy=policy
            )
        return self._org_cache[key]

    def _org_facts_uncached(self, *, source_id: int | None, target_id: int, policy) -> OrgFacts:
        target = self.servers[target_id]
        org = self.organisations.get(target.effective_forest)
        # The source's forest bounds which servers and names can be answering its phones; an
        # unrecorded forest bounds nothing.
        forest = self.forest_of(source_id)
        servers = tuple(
            self.facts[s.pk]
            for s in self.servers.values()
            if s.generation != Generation.EXO and _same_forest(forest, s.effective_forest)
        )
        level = ACCESS.get((org.default_access_level or "").lower()) if org else None
        return OrgFacts(
            name=(org.name or org.forest) if org else (target.effective_forest or None),
            default_access_level=level,
            hybrid_configured=org.hybrid_configured if org else None,
            eas_max_devices=org.eas_max_devices if org else None,
            allow_non_provisionable_devices=policy.allow_non_provisionable_devices
            if policy
            else None,
            servers=servers or None,
            namespaces=self._candidate_endpoints(forest) or None,
        )

    def _target_policy(
        self, batch: BatchContext, source_id: int | None
    ) -> MobileDevicePolicy | None:
        """The batch's policy, else (for a move to another organisation) the target's default."""
        if batch.target_policy_id:
            return self.policies.get(batch.target_policy_id)
        target_forest = self.servers[batch.target_id].effective_forest
        if target_forest and target_forest != self.forest_of(source_id):
            org = self.organisations.get(target_forest)
            defaults = [p for p in self.policies.values() if p.organisation == org and p.is_default]
            return defaults[0] if len(defaults) == 1 else None
        return None

    def _policy_differs(
        self, policy: MobileDevicePolicy | None, applied: str, batch: BatchContext, source_id
    ) -> bool | None:
        """Whether the target policy differs from the one the phone applied last: by name within
        one organisation; across organisations by their settings (a "Default" here and a
        "Default" there are different policies), unknown when either is not imported."""
        source_forest = self.forest_of(source_id)
        if policy is None:
            if batch.target_policy_id is None and _same_forest(
                source_forest, self.servers[batch.target_id].effective_forest
            ):
                return False  # same organisation, no new policy chosen: it moves unchanged
            return None
        if not applied:
            return None
        source_org = self.organisations.get(source_forest)
        source_org_id = source_org.pk if source_org else None
        if policy.organisation_id == source_org_id:
            return applied.strip().casefold() != policy.name.strip().casefold()
        current = next(
            (
                p
                for p in self.policies.values()
                if p.organisation_id == source_org_id
                and p.name.strip().casefold() == applied.strip().casefold()
            ),
            None,
        )
        if current is None:
            return None
        pairs = list(zip(current.settings_key(), policy.settings_key(), strict=True))
        if any(a is not None and b is not None and a != b for a, b in pairs):
            return True  # one setting known on both sides differs
        if all(a is not None and b is not None for a, b in pairs):
            return False
        return None

    # -- devices ---------------------------------------------------------------------------------

    def profile(self, device_type: str, model: str, os: str) -> ClientProfile | None:
        key = (device_type, model, os)
        if key not in self._profile_cache:
            self._profile_cache[key] = next(
                (p for p in self.profiles if p.matches(device_type, model, os)), None
            )
        return self._profile_cache[key]

    def target_access(
        self, key: FactKey, batch: BatchContext
    ) -> tuple[bool | None, bool | None, AccessLevel | None, bool | None]:
        """(allowed_on_target, blocked_on_target, what blocks it, blocked_personally) of a
        partnership moving as `batch` says; blocked_personally is True when the user's own
        block list is what blocks it, False when a rule does and the lists imported do not name
        it, None when nothing blocks it.

        Exchange 2010 SP1 and later decide in this order: the user's personal block list, the
        personal allow list, a matching Block rule, a Quarantine rule, an Allow rule, then the
        organisation's DefaultAccessLevel (which the planner reads from OrgFacts). [V-3p: the
        sequence in "Understanding Exchange ActiveSync mobile device access", TechNet ff959225]
        A Quarantine rule counts as blocked_on_target, as the facts define it. None where the
        answer is not known: never a guess.
        """
        target = self.servers[batch.target_id]
        if target.generation not in ABQ_GENERATIONS:
            return None, None, None, None  # no Allow/Block/Quarantine there (or version unknown)
        target_forest = target.effective_forest
        source_forest = self.forest_of(key.server_id or None)
        kind = MoveKind(batch.move_kind) if batch.move_kind else None
        # The personal lists are attributes of the mailbox's own AD object: they stay behind
        # when the mailbox moves to another forest or Exchange Online (a new object there).
        same_org = (
            bool(source_forest) and source_forest == target_forest and kind not in NEW_MAILBOX_KINDS
        )
        personal = key.personal_access if same_org else PersonalAccess.NONE
        if personal == PersonalAccess.BLOCKED:
            return None, True, AccessLevel.BLOCK, True
        if personal == PersonalAccess.ALLOWED:
            return True, None, None, None
        org = self.organisations.get(target_forest)
        rules = self.access_rules.get(org.pk, []) if org else []
        # Rules compare QueryString with the whole DeviceType, DeviceModel or DeviceOS, in any
        # case (DeviceAccessRule.matches). UserAgent (and XMSWLHeader) rules are ignored: the
        # user agent is not among the facts a prediction is keyed by (fact_key.KEY).
        levels = {
            ACCESS[rule.access_level.lower()]
            for rule in rules
            if rule.matches(key.device_type, key.model, key.os)
        }
        if levels & {AccessLevel.BLOCK, AccessLevel.QUARANTINE}:
            # Blocked whatever other rules say (and a partial import shows this one too); only
            # a personal allow list the export did not show could still let it in.
            level = AccessLevel.BLOCK if AccessLevel.BLOCK in levels else AccessLevel.QUARANTINE
            # A Block rule, not the user's own block list (checked first, above).
            return None, True, level, False
        if org is None or org.device_access_rules_imported_at is None:
            return None, None, None, None  # rules never imported in full: one may block it
        if AccessLevel.ALLOW in levels:
            if any(not r.evaluable and r.access_level != "Allow" for r in rules):
                # A UserAgent rule that blocks or quarantines would win over this allow, and
                # exsync cannot tell whether it matches.
                return None, None, None, None
            return True, None, None, None
        return None, None, None, None

    def device(self, key: FactKey, batch: BatchContext | None = None) -> DeviceFacts:
        """The device's facts; with `batch`, also what the target's access control says."""
        profile = self.profile(key.device_type, key.model, key.os)
        allowed, blocked, level, personally = (
            self.target_access(key, batch) if batch else (None, None, None, None)
        )
        return DeviceFacts(
            device_type=key.device_type or None,
            model=key.model or None,
            os=key.os or None,
            eas_version=key.eas_version or None,
            max_eas_version=(profile.max_eas_version or None) if profile else None,
            client_type=key.client_type or None,
            client_honours_451=profile.honours_451 if profile else None,
            supports_modern_auth=profile.supports_modern_auth if profile else None,
            can_comply_with_target_policy=profile.can_comply_with_policy if profile else None,
            endpoint=self.device_endpoint(key.server_id),
            access_state=ACCESS.get(key.access_state.lower()) if key.access_state else None,
            allowed_on_target=allowed,
            blocked_on_target=blocked,
            target_access=level,
            blocked_personally=personally,
        )

    def move(self, key: FactKey, batch: BatchContext) -> MoveFacts:
        source_id = key.server_id or None
        source = self.facts.get(source_id) if source_id else None
        kind = MoveKind(batch.move_kind) if batch.move_kind else None
        policy = self._target_policy(batch, source_id)
        source_org = self.organisations.get(self.forest_of(source_id))
        source = source or ServerFacts(name="(no server recorded)")
        target = self.facts[batch.target_id]
        # A move into a new mailbox object (another forest, a staged migration) leaves today's
        # partnerships behind, whether the kind was chosen on the batch or derived.
        new_mailbox = (kind or derive_move_kind(source, target)) in NEW_MAILBOX_KINDS
        return MoveFacts(
            source=source,
            target=target,
            kind=kind,
            move_date=batch.move_date,
            target_endpoint=self.target_endpoint(batch.target_id),
            target_partnership_count=0 if new_mailbox else key.partnerships,
            target_policy_differs=self._policy_differs(
                policy, key.policy_applied, batch, source_id
            ),
            hybrid_configured=source_org.hybrid_configured if source_org else None,
            hybrid_server=self._hybrid_server(source_org),
        )

    def _hybrid_server(self, org: Organisation | None) -> ServerFacts | None:
        """The hybrid server an admin recorded for the organisation (Organisation page);
        nothing is derived from the versions: the newest server is not necessarily it."""
        if org is None or org.hybrid_server_id is None:
            return None
        return self.facts.get(org.hybrid_server_id)

    def planner_inputs(
        self, key: FactKey, batch: BatchContext
    ) -> tuple[MoveFacts, DeviceFacts, OrgFacts]:
        """The planner's three inputs for one fact key moving as `batch` says."""
        policy = self._target_policy(batch, key.server_id or None)
        return (
            self.move(key, batch),
            self.device(key, batch),
            self._org_facts(
                source_id=key.server_id or None, target_id=batch.target_id, policy=policy
            ),
        )

    def predict(self, key: FactKey, batch: BatchContext) -> Prediction:
        """The planner's answer, with its range, for one fact key moving as `batch` says."""
        return predict_range(*self.planner_inputs(key, batch))
