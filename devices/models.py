"""The Exchange inventory, shaped after what Exchange Management Shell reports.

Field names follow the cmdlets (Get-ExchangeServer, Get-Mailbox, Get-MobileDeviceStatistics)
so that an admin recognises them; see ../shared/domain/formats.md.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone


class Generation(models.TextChoices):
    EX2003 = "2003", "Exchange 2003"
    EX2007 = "2007", "Exchange 2007"
    EX2010 = "2010", "Exchange 2010"
    EX2013 = "2013", "Exchange 2013"
    EX2016 = "2016", "Exchange 2016"
    EX2019 = "2019", "Exchange 2019"
    SE = "SE", "Exchange Server SE"
    EXO = "EXO", "Exchange Online"


class AccessLevel(models.TextChoices):
    """Get-ActiveSyncOrganizationSettings DefaultAccessLevel; empty = not recorded."""

    ALLOW = "Allow"
    QUARANTINE = "Quarantine"
    BLOCK = "Block"
    UNKNOWN = "", "Unknown (not recorded)"


class Organisation(models.Model):
    """One Exchange organisation (an AD forest), or the Exchange Online tenant.

    Keyed by the forest's root domain as the exports show it (the domain part of a server's
    Site, DistinguishedName or Fqdn). Facts nobody recorded stay empty/None: the planner reports
    them as questions instead of assuming a default.
    """

    forest = models.CharField(
        max_length=255, unique=True, help_text="Root domain, lower case, e.g. contoso.local."
    )
    name = models.CharField(max_length=255, blank=True)
    is_exchange_online = models.BooleanField(default=False)
    default_access_level = models.CharField(
        "DefaultAccessLevel", max_length=16, choices=AccessLevel.choices, blank=True
    )
    eas_max_devices = models.PositiveIntegerField(
        "EasMaxDevices",
        null=True,
        blank=True,
        help_text="Throttling policy limit; empty = unknown.",
    )
    hybrid_configured = models.BooleanField(
        "hybrid configured",
        null=True,
        blank=True,
        help_text="An organisation relationship to the Exchange Online tenant (HCW) exists.",
    )
    # Which server the Hybrid Configuration Wizard set up (M-2007-EXO-LEGACY: phones' host name
    # moves to it before mailboxes go to Exchange Online). No export names it reliably and the
    # newest server is not necessarily it, so only an admin records it.
    hybrid_server = models.ForeignKey(
        "ExchangeServer",
        verbose_name="hybrid server",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The on-premises server the Hybrid Configuration Wizard configured; "
        "empty = not recorded.",
    )
    # Set by a full Get-ActiveSyncDeviceAccessRule import (an organisation may have no rule at
    # all); until then its rules are not known and no device is told "allowed by a rule".
    device_access_rules_imported_at = models.DateTimeField(
        "device access rules imported", null=True, blank=True
    )
    time_zone = models.CharField(
        "time zone",
        max_length=64,
        blank=True,
        default="",
        db_default="",
        help_text="IANA name, e.g. Europe/Berlin; empty = unknown. Move times are given in it "
        "to people whose mailbox has no time zone of its own.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["is_exchange_online", "forest"]

    def __str__(self) -> str:
        return self.name or self.forest


class ExchangeServer(models.Model):
    """One Exchange server (Get-ExchangeServer), with its published EAS endpoint."""

    name = models.CharField(max_length=64, help_text="Name as Exchange prints it, e.g. EX2016A.")
    fqdn = models.CharField("FQDN", max_length=255, blank=True)
    distinguished_name = models.CharField("DistinguishedName", max_length=512, blank=True)
    # The forest as the exports show it (Site, DistinguishedName, Fqdn), and as an admin
    # declared it; a declared forest wins and imports never overwrite it.
    forest = models.CharField(max_length=255, blank=True, help_text="Derived from the exports.")
    forest_source = models.CharField(max_length=32, blank=True)
    forest_recorded = models.CharField(
        "forest (declared)", max_length=255, blank=True, help_text="Declared by an admin."
    )
    roles = models.CharField(max_length=255, blank=True, help_text="ServerRole, e.g. 'Mailbox'.")
    site = models.CharField(max_length=255, blank=True, help_text="AD site; empty for 2003.")
    edition = models.CharField(max_length=64, blank=True)
    admin_display_version = models.CharField(
        max_length=128,
        blank=True,
        help_text="Raw AdminDisplayVersion, e.g. 'Version 15.1 (Build 2507.6)'.",
    )
    generation = models.CharField(
        max_length=8, choices=Generation.choices, blank=True, help_text="Empty = not known."
    )
    build = models.CharField(
        max_length=32,
        blank=True,
        help_text="Parsed 4-part build, e.g. 15.1.2507.6; empty = unknown.",
    )
    exsetup_version = models.CharField(
        "ExSetup.exe file version",
        max_length=32,
        blank=True,
        help_text="2007/2010 show only the SP build in AdminDisplayVersion; the rollup needs this.",
    )
    legacy_dn = models.CharField("ExchangeLegacyDN", max_length=512, blank=True)

    # The endpoint devices talk to when this server publishes ActiveSync.
    eas_internal_url = models.CharField("EAS internal URL", max_length=512, blank=True)
    eas_external_url = models.CharField("EAS external URL", max_length=512, blank=True)
    cert_thumbprint = models.CharField("certificate thumbprint", max_length=64, blank=True)
    cert_subject = models.CharField("certificate subject", max_length=512, blank=True)
    cert_issuer = models.CharField("certificate issuer", max_length=512, blank=True)
    cert_not_after = models.DateTimeField("certificate expires", null=True, blank=True)
    # Tri-state: None means nobody has recorded it (no export carries it for Exchange 2003).
    iwa_enabled = models.BooleanField(
        "IWA on Microsoft-Server-ActiveSync",
        null=True,
        blank=True,
        help_text="Integrated Windows Authentication on the EAS vdir; unknown until recorded.",
    )
    basic_auth_enabled = models.BooleanField(null=True, blank=True)
    # Set once a Get-ActiveSyncVirtualDirectory row of this server was imported: from then on
    # an empty ExternalUrl means "none" (the site proxies), not "unknown".
    eas_vdir_imported = models.BooleanField(default=False)
    block_legacy_mailboxes = models.BooleanField(
        "BlockLegacyMailboxes (2007 CAS web.config)",
        null=True,
        blank=True,
        help_text="Exchange 2007 CAS only; no export carries it. Unknown until recorded.",
    )
    # Readiness checks (issue 15). No export says either: recorded by an admin.
    is_sbs = models.BooleanField(
        "Small Business Server",
        null=True,
        blank=True,
        help_text="SBS 2008 turns circular logging on; unknown until recorded.",
    )
    third_party_backup = models.BooleanField(
        "third-party backup in use",
        null=True,
        blank=True,
        help_text="A backup product other than Windows Server Backup; unknown until recorded.",
    )

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(Lower("name"), name="server_name_unique_ci"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def eas_url(self) -> str:
        return self.eas_external_url or self.eas_internal_url

    @property
    def effective_forest(self) -> str:
        if self.generation == Generation.EXO:
            return EXCHANGE_ONLINE_FOREST
        return (self.forest_recorded or self.forest).strip().lower()


EXCHANGE_ONLINE_FOREST = "exchange online"


class Namespace(models.Model):
    """An EAS host name phones talk to (mail.contoso.com), and what answers it.

    Imported from the ExternalUrls of Get-ActiveSyncVirtualDirectory, or recorded by an admin.
    `devices_use` says phones are configured with it; `sites` limits that to the mailboxes of
    some AD sites (empty: every site). A legacy name (legacy.contoso.com) is the one kept on
    the old front end during a transition.
    """

    host = models.CharField(max_length=255, unique=True, help_text="Lower case, no scheme.")
    servers = models.ManyToManyField(ExchangeServer, related_name="namespaces", blank=True)
    is_legacy = models.BooleanField(default=False)
    devices_use = models.BooleanField(
        "phones use it",
        default=False,
        help_text="Phones are configured with this host name.",
    )
    sites = models.TextField(
        blank=True, help_text="AD sites whose phones use it, one per line; empty = every site."
    )
    retired = models.BooleanField(
        default=False, help_text="Will not reach moved mailboxes (name retired or changed)."
    )
    imported = models.BooleanField(default=False, help_text="Seen as an ExternalUrl in an import.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["host"]

    def __str__(self) -> str:
        return self.host

    def site_list(self) -> list[str]:
        return [s.strip() for s in self.sites.splitlines() if s.strip()]


class MobileDevicePolicy(models.Model):
    """A mobile device mailbox policy (Get-MobileDeviceMailboxPolicy / Get-ActiveSyncMailboxPolicy)."""

    organisation = models.ForeignKey(
        Organisation, null=True, blank=True, on_delete=models.CASCADE, related_name="policies"
    )
    name = models.CharField(max_length=255)
    is_default = models.BooleanField(null=True, blank=True)
    allow_non_provisionable_devices = models.BooleanField(
        "AllowNonProvisionableDevices", null=True, blank=True
    )
    password_enabled = models.BooleanField("PasswordEnabled", null=True, blank=True)
    require_device_encryption = models.BooleanField(
        "RequireDeviceEncryption", null=True, blank=True
    )
    min_password_length = models.PositiveIntegerField("MinPasswordLength", null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "mobile device policies"
        constraints = [
            models.UniqueConstraint(
                "organisation", Lower("name"), name="one_policy_name_per_organisation"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def settings_key(self) -> tuple:
        return (self.password_enabled, self.require_device_encryption, self.min_password_length)


class DomainType(models.TextChoices):
    """Get-AcceptedDomain DomainType."""

    AUTHORITATIVE = "Authoritative"
    INTERNAL_RELAY = "InternalRelay"
    EXTERNAL_RELAY = "ExternalRelay"


class AcceptedDomain(models.Model):
    """An SMTP domain the organisation accepts mail for (Get-AcceptedDomain).

    `shared_with_other_system` is recorded by an admin (no export carries it): a domain shared
    with another mail system must be ExternalRelay, not Authoritative (check O-SAS).
    """

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="accepted_domains"
    )
    domain_name = models.CharField(
        "DomainName", max_length=255, help_text="Lower case, e.g. contoso.com or *.contoso.com."
    )
    domain_type = models.CharField("DomainType", max_length=16, choices=DomainType.choices)
    is_default = models.BooleanField("Default", null=True, blank=True)
    shared_with_other_system = models.BooleanField(
        "shared with another mail system",
        null=True,
        blank=True,
        help_text="Another system also receives mail for this domain; unknown until recorded.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organisation_id", "domain_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "domain_name"], name="one_accepted_domain_per_organisation"
            ),
        ]

    def __str__(self) -> str:
        return self.domain_name


class DeviceCharacteristic(models.TextChoices):
    """Get-ActiveSyncDeviceAccessRule Characteristic: what QueryString is compared with."""

    DEVICE_TYPE = "DeviceType", "DeviceType"
    DEVICE_MODEL = "DeviceModel", "DeviceModel"
    DEVICE_OS = "DeviceOS", "DeviceOS"
    USER_AGENT = "UserAgent", "UserAgent"
    XMSWL_HEADER = "XMSWLHeader", "XMSWLHeader"  # 2013+ [I]


class DeviceAccessRule(models.Model):
    """An organisation's device access rule (Get-ActiveSyncDeviceAccessRule): every phone whose
    Characteristic equals QueryString (whole value, any case) is allowed, blocked or
    quarantined, unless the user's personal lists decide first."""

    organisation = models.ForeignKey(
        Organisation, on_delete=models.CASCADE, related_name="device_access_rules"
    )
    name = models.CharField("Name", max_length=255, blank=True)
    characteristic = models.CharField(
        "Characteristic", max_length=16, choices=DeviceCharacteristic.choices
    )
    query_string = models.CharField("QueryString", max_length=255)
    access_level = models.CharField(
        "AccessLevel", max_length=16, choices=[c for c in AccessLevel.choices if c[0]]
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["organisation_id", "characteristic", "query_string"]
        constraints = [
            models.UniqueConstraint(
                "organisation",
                "characteristic",
                Lower("query_string"),
                name="one_device_access_rule_per_query",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.characteristic} {self.query_string}: {self.access_level}"

    # What each characteristic is compared with; UserAgent and XMSWLHeader are not among the
    # facts a prediction is keyed by (migrations_plan/fact_key.py), so they match nothing here.
    KEYED = {
        DeviceCharacteristic.DEVICE_TYPE: 0,
        DeviceCharacteristic.DEVICE_MODEL: 1,
        DeviceCharacteristic.DEVICE_OS: 2,
    }

    @property
    def evaluable(self) -> bool:
        return self.characteristic in self.KEYED

    def matches(self, device_type: str, model: str, os: str) -> bool:
        """Whether the rule applies to a phone with these facts: Exchange compares QueryString
        with the whole value, not a prefix; an empty fact matches no rule."""
        index = self.KEYED.get(self.characteristic)
        if index is None:
            return False
        value = (device_type, model, os)[index] or ""
        return bool(value) and value.casefold() == self.query_string.casefold()


class ClientProfile(models.Model):
    """Facts about a mail client that no export carries, recorded by an admin per model family.

    A partnership matches a profile when its DeviceType equals `device_type` (if set) and its
    DeviceModel / DeviceOS start with the prefixes (if set); the most specific match wins.
    """

    name = models.CharField(max_length=128, help_text="e.g. 'iOS Mail on iOS 16 and later'.")
    device_type = models.CharField(max_length=64, blank=True, help_text="Exact, any case.")
    model_prefix = models.CharField(max_length=128, blank=True)
    os_prefix = models.CharField(max_length=128, blank=True)
    max_eas_version = models.CharField(
        "highest EAS version it speaks", max_length=8, blank=True, help_text="e.g. 16.1"
    )
    honours_451 = models.BooleanField("follows HTTP 451", null=True, blank=True)
    supports_modern_auth = models.BooleanField("modern authentication", null=True, blank=True)
    can_comply_with_policy = models.BooleanField(
        "can comply with a stricter policy", null=True, blank=True
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def matches(self, device_type: str, model: str, os: str) -> bool:
        return (
            (not self.device_type or self.device_type.lower() == (device_type or "").lower())
            and (
                not self.model_prefix or (model or "").lower().startswith(self.model_prefix.lower())
            )
            and (not self.os_prefix or (os or "").lower().startswith(self.os_prefix.lower()))
        )

    @property
    def specificity(self) -> int:
        return (100 if self.device_type else 0) + len(self.model_prefix) + len(self.os_prefix)


class FactChange(models.Model):
    """One recorded fact changed: what, the value before and after, who, when, how."""

    subject = models.CharField(max_length=255, help_text="e.g. 'Organisation contoso.local'.")
    fact = models.CharField(max_length=128)
    old_value = models.TextField(blank=True)
    new_value = models.TextField(blank=True)
    actor = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    via = models.CharField(max_length=16, default="web", help_text="web, import or cli")
    at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.subject}: {self.fact} {self.old_value!r} -> {self.new_value!r}"


class Mailbox(models.Model):
    """One mailbox (Get-Mailbox). Keyed by ExchangeGuid, else by primary SMTP address."""

    identity = models.CharField(
        max_length=512,
        blank=True,
        help_text="Canonical name: domain/OU path/CN, as Get-Mailbox prints it.",
    )
    # Lower-cased identity: device Identity strings are matched against it case-insensitively.
    identity_key = models.CharField(max_length=512, blank=True, db_index=True, editable=False)
    name = models.CharField(
        max_length=255, blank=True, help_text="The CN; may differ from the display name."
    )
    display_name = models.CharField(max_length=255)
    alias = models.CharField(max_length=128, blank=True, db_index=True)
    primary_smtp_address = models.CharField(
        "primary SMTP address", max_length=320, unique=True, help_text="Stored lower-case."
    )
    user_principal_name = models.CharField("UPN", max_length=320, blank=True)
    sam_account_name = models.CharField(max_length=64, blank=True)
    exchange_guid = models.UUIDField("ExchangeGuid", null=True, blank=True, unique=True)
    database = models.CharField(max_length=255, blank=True)
    server = models.ForeignKey(
        ExchangeServer, null=True, blank=True, on_delete=models.SET_NULL, related_name="mailboxes"
    )
    organizational_unit = models.CharField("OU", max_length=512, blank=True)
    recipient_type = models.CharField(max_length=64, blank=True)
    legacy_dn = models.CharField("LegacyExchangeDN", max_length=512, blank=True)
    # db_default: the import writers insert mailboxes with SQL that does not name this column.
    time_zone = models.CharField(
        "time zone",
        max_length=64,
        blank=True,
        default="",
        db_default="",
        help_text="IANA name from Get-MailboxRegionalConfiguration TimeZone, e.g. "
        "Europe/Berlin; empty = unknown.",
    )
    # Set when the mailbox is recorded as moved (by move planning): until then each device
    # import keeps what it saw of the mailbox's partnerships (PartnershipObservation), so the
    # move's effect is verified against what each export said. db_default: the import
    # writers insert mailboxes with SQL that does not name this column.
    watch_until = models.DateTimeField(null=True, blank=True, editable=False, db_default=None)

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["display_name"]
        verbose_name_plural = "mailboxes"
        indexes = [
            models.Index(fields=["server", "database"]),
            # The affected-people list pages by (name, id): read in index order, not sorted.
            models.Index(fields=["display_name", "id"], name="mailbox_name_order"),
            # The device import joins the (few) watched mailboxes only.
            models.Index(
                fields=["watch_until"],
                condition=Q(watch_until__isnull=False),
                name="mailbox_watched",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} <{self.primary_smtp_address}>"

    def save(self, *args, **kwargs) -> None:
        self.primary_smtp_address = self.primary_smtp_address.strip().lower()
        self.identity_key = self.identity.lower()
        super().save(*args, **kwargs)


class MobileDevice(models.Model):
    """One physical device (or app install), identified by the DeviceId it sends."""

    # Unique through Meta.constraints, not unique=True: that would add a second
    # (varchar_pattern_ops) index on PostgreSQL that nothing uses and every import maintains.
    device_id = models.CharField("DeviceId", max_length=128)
    # What the device reports about itself (EAS Settings/DeviceInformation, the User-Agent
    # header): free text of any length, so unbounded; DeviceId keeps its limit (a key).
    device_type = models.TextField(blank=True)
    model = models.TextField(blank=True)
    os = models.TextField("OS", blank=True)
    user_agent = models.TextField(blank=True)
    friendly_name = models.TextField(blank=True)
    imei = models.TextField("IMEI", blank=True)
    # DevicePhoneNumber; the IIS-log import's INSERT does not name it, hence db_default.
    phone_number = models.TextField(blank=True, default="", db_default="")

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # The searched columns have trigram (gin_trgm_ops) indexes on PostgreSQL only:
        # migration 0007, helpdesk/search.py.
        ordering = ["device_id"]
        constraints = [models.UniqueConstraint(fields=["device_id"], name="one_device_per_id")]

    def __str__(self) -> str:
        return f"{self.device_type or 'device'} {self.device_id}"


class AccessState(models.TextChoices):
    ALLOWED = "Allowed"
    BLOCKED = "Blocked"
    QUARANTINED = "Quarantined"
    DEVICE_DISCOVERY = "DeviceDiscovery"
    UNKNOWN = "", "Unknown"


class PersonalAccess(models.TextChoices):
    """Where a device stands on its mailbox's personal lists (the block list wins)."""

    ALLOWED = "allowed", "On ActiveSyncAllowedDeviceIDs"
    BLOCKED = "blocked", "On ActiveSyncBlockedDeviceIDs"
    NONE = "", "Not listed, or not known"


class Partnership(models.Model):
    """The EAS partnership of one device with one mailbox: sync state lives per pair."""

    # No index of its own: the unique (device, mailbox) index leads with it.
    device = models.ForeignKey(
        MobileDevice, on_delete=models.CASCADE, related_name="partnerships", db_index=False
    )
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="partnerships")
    identity = models.CharField(
        max_length=768,
        blank=True,
        help_text="e.g. contoso.local/Users/Kim/ExchangeActiveSyncDevices/iPhone§Appl…",
    )
    client_type = models.CharField(
        max_length=32, blank=True, help_text="EAS, Outlook, REST (2013+)."
    )
    eas_version = models.CharField("EAS protocol version", max_length=16, blank=True)
    first_sync_at = models.DateTimeField(null=True, blank=True)
    last_success_sync_at = models.DateTimeField(null=True, blank=True)
    last_sync_attempt_at = models.DateTimeField(null=True, blank=True)
    access_state = models.CharField(max_length=32, choices=AccessState.choices, blank=True)
    access_state_reason = models.CharField(max_length=32, blank=True)
    policy_applied = models.CharField(max_length=128, blank=True)
    policy_status = models.CharField(
        max_length=64, blank=True, help_text="Status / DevicePolicyApplicationStatus."
    )
    # From Get-CASMailbox ActiveSyncAllowedDeviceIDs / ActiveSyncBlockedDeviceIDs: whether the
    # mailbox's personal lists name this device. Written by that import only.
    personal_access = models.CharField(
        "personal allow/block list",
        max_length=8,
        choices=PersonalAccess.choices,
        blank=True,
        # The device import's set-based INSERT does not name this column.
        default="",
        db_default="",
        help_text="Empty: not on either list, or the lists were not exported.",
    )
    # Absent from a newer full export: kept (history matters for verification), but flagged.
    is_stale = models.BooleanField(default=False)

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["mailbox_id", "device_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["device", "mailbox"], name="one_partnership_per_device_mailbox"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.device_id} ↔ {self.mailbox_id}"


class PartnershipObservation(models.Model):
    """What one device import saw of one partnership of a watched mailbox (Mailbox.watch_until).

    Imports update partnerships in place; these rows keep, per import, the last successful sync
    and the first sync it reported, so "did it sync after the move" and "was it re-created"
    are answered from what each export said, not from whatever the latest one overwrote.
    Written set-based by the device import (devices/writers.py), one INSERT per import.
    """

    pk = models.CompositePrimaryKey("partnership", "inventory_import")
    # No index of its own: the primary key (partnership, import) leads with it.
    partnership = models.ForeignKey(
        Partnership, on_delete=models.CASCADE, related_name="observations", db_index=False
    )
    inventory_import = models.ForeignKey(
        "InventoryImport", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    observed_at = models.DateTimeField(help_text="When the import ran.")
    last_success_sync_at = models.DateTimeField(null=True, blank=True)
    first_sync_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["partnership_id", "observed_at"]

    def __str__(self) -> str:
        return f"{self.partnership_id} seen {self.observed_at:%Y-%m-%d %H:%M}"


class Certificate(models.Model):
    """A certificate from Get-ExchangeCertificate; the one bound to IIS is the EAS endpoint's."""

    thumbprint = models.CharField(
        max_length=64, unique=True, help_text="40 hex digits, upper case."
    )
    server = models.ForeignKey(
        ExchangeServer,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="certificates",
    )
    subject = models.CharField(max_length=512, blank=True)
    issuer = models.CharField(max_length=512, blank=True)
    not_before = models.DateTimeField(null=True, blank=True)
    not_after = models.DateTimeField(null=True, blank=True)
    services = models.CharField(
        max_length=128, blank=True, help_text="e.g. 'IMAP, POP, IIS, SMTP'."
    )
    domains = models.TextField(
        blank=True, help_text="CertificateDomains, one per line; empty = not exported."
    )
    status = models.CharField(max_length=32, blank=True)
    is_self_signed = models.BooleanField(null=True, blank=True)
    friendly_name = models.CharField(max_length=255, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["server_id", "-not_after"]

    def __str__(self) -> str:
        return f"{self.thumbprint} ({self.subject})"

    @property
    def serves_iis(self) -> bool:
        return "IIS" in {s.strip().upper() for s in self.services.split(",")}


class MoveRequest(models.Model):
    """The latest move request of a mailbox (Get-MoveRequest / Get-MoveRequestStatistics)."""

    mailbox = models.OneToOneField(Mailbox, on_delete=models.CASCADE, related_name="move_request")
    status = models.CharField(max_length=32, help_text="Queued, InProgress, Completed, Failed, …")
    status_detail = models.CharField(max_length=64, blank=True)
    source_database = models.CharField(max_length=255, blank=True)
    target_database = models.CharField(max_length=255, blank=True)
    source_server = models.CharField(max_length=255, blank=True)
    target_server = models.CharField(max_length=255, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    batch_name = models.CharField(max_length=255, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.mailbox_id}: {self.status}"


class ImportState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Imported"
    REJECTED = "rejected", "Rejected"
    FAILED = "failed", "Failed"


def import_upload_path(instance: InventoryImport, filename: str) -> str:
    return f"imports/{instance.group}/{filename}"


class InventoryImport(models.Model):
    """One file imported (or refused): who, when, which file, what it changed, what was wrong."""

    group = models.UUIDField(
        db_index=True, help_text="Files uploaded together are imported in order."
    )
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(max_length=16, default="web", help_text="web or cli")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    filename = models.CharField(max_length=255)
    upload = models.FileField(upload_to=import_upload_path, blank=True)
    sha256 = models.CharField("SHA-256", max_length=64)
    size_bytes = models.BigIntegerField(default=0)
    kind = models.CharField(max_length=32, blank=True)
    state = models.CharField(max_length=16, choices=ImportState.choices, default=ImportState.QUEUED)
    dry_run = models.BooleanField(default=False)
    full_export = models.BooleanField(
        default=True, help_text="Partnerships missing from a full device export are marked stale."
    )
    options = models.JSONField(default=dict, blank=True)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)
    problems = models.JSONField(default=list, blank=True)
    warnings = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.filename} ({self.state})"

    @property
    def is_finished(self) -> bool:
        return self.state in (ImportState.SUCCEEDED, ImportState.REJECTED, ImportState.FAILED)


def exchange_online_server() -> ExchangeServer:
    """The Exchange Online row (and its organisation), created the first time it is needed."""
    Organisation.objects.get_or_create(
        forest=EXCHANGE_ONLINE_FOREST,
        defaults={"name": "Exchange Online", "is_exchange_online": True},
    )
    server = ExchangeServer.objects.filter(generation=Generation.EXO).order_by("pk").first()
    if server is None:
        # get_or_create: two admins picking it at once both end with the one row.
        server, _ = ExchangeServer.objects.get_or_create(
            name="Exchange Online",
            defaults={"generation": Generation.EXO, "forest": EXCHANGE_ONLINE_FOREST},
        )
    return server


# --- readiness facts (issue 15) -----------------------------------------------------------------


class MailboxDatabase(models.Model):
    """A mailbox database or storage group (Get-MailboxDatabase -Status / Get-StorageGroup):
    circular logging while a third-party backup is in use is check O-SBS-CIRC."""

    server = models.ForeignKey(
        ExchangeServer, null=True, blank=True, on_delete=models.CASCADE, related_name="databases"
    )
    name = models.CharField(max_length=255)
    storage_group = models.CharField(max_length=255, blank=True)
    circular_logging_enabled = models.BooleanField(null=True, blank=True)
    last_full_backup = models.DateTimeField(null=True, blank=True)
    imported_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["server_id", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["server", "storage_group", "name"], name="one_database_per_server_group"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class OwaBackupConfirmation(models.Model):
    """An admin confirmed the OWA customisations of a server were backed up before an Update
    Rollup or CU (check O-UR-OWA): who, when, before which update."""

    server = models.ForeignKey(ExchangeServer, on_delete=models.CASCADE, related_name="owa_backups")
    update = models.CharField(
        max_length=128, blank=True, help_text="e.g. 'Exchange 2007 SP3 RU23'."
    )
    note = models.CharField(max_length=255, blank=True)
    confirmed_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    confirmed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-confirmed_at", "-id"]

    def __str__(self) -> str:
        return f"OWA backup of {self.server} ({self.confirmed_at:%Y-%m-%d})"


class ProbeOutcome(models.TextChoices):
    OK = "ok", "Certificate read and trusted"
    NAME_MISMATCH = "name_mismatch", "Certificate does not cover the host name"
    UNTRUSTED = "untrusted", "Certificate chain not trusted"
    EXPIRED = "expired", "Certificate expired"
    REFUSED = "refused", "Connection refused"
    TIMEOUT = "timeout", "No answer within the timeout"
    NOT_FOUND = "not_found", "Host name not found"
    TLS_ERROR = "tls_error", "TLS handshake failed"


class ProbeTarget(models.Model):
    """A URL an admin asked exsync to probe besides the ones the exports name."""

    url = models.CharField(max_length=512, unique=True)
    note = models.CharField(max_length=255, blank=True)
    added_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["url"]

    def __str__(self) -> str:
        return self.url


class ProbeRun(models.Model):
    """One run of probe_endpoints (the page's button, the CLI): its progress and its end."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED)
    requested_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    via = models.CharField(max_length=16, default="web")
    urls_total = models.PositiveIntegerField(default=0)
    urls_done = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"probe run {self.pk} ({self.state})"


class EndpointProbe(models.Model):
    """What one TLS connection to a published EAS endpoint found: the certificate it was
    served (subject, names, issuer, SHA-1 thumbprint as Exchange prints it, validity), or why
    there was none. The newest row per host is what the planner's X-CERT uses."""

    run = models.ForeignKey(
        ProbeRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="probes"
    )
    url = models.CharField(max_length=512)
    host = models.CharField(max_length=255, help_text="Lower case.")
    port = models.PositiveIntegerField(default=443)
    probed_at = models.DateTimeField(default=timezone.now)
    outcome = models.CharField(max_length=16, choices=ProbeOutcome.choices)
    error = models.TextField(blank=True)
    subject = models.CharField(max_length=1024, blank=True)
    names = models.TextField(blank=True, help_text="Subject CN and DNS SANs, one a line.")
    issuer = models.CharField(max_length=1024, blank=True)
    thumbprint = models.CharField(max_length=64, blank=True, help_text="SHA-1, upper-case hex.")
    not_before = models.DateTimeField(null=True, blank=True)
    not_after = models.DateTimeField(null=True, blank=True)
    self_signed = models.BooleanField(null=True, blank=True)
    trusted = models.BooleanField(null=True, blank=True, help_text="Chain verified by exsync.")
    covers_host = models.BooleanField(null=True, blank=True)
    chain = models.JSONField(default=list, blank=True, help_text="Subjects, leaf first.")

    class Meta:
        ordering = ["host", "-probed_at", "-id"]
        indexes = [models.Index(fields=["host", "-probed_at"], name="probe_host_latest")]

    def __str__(self) -> str:
        return f"{self.url} {self.outcome}"

    def name_list(self) -> list[str]:
        return [n for n in self.names.splitlines() if n.strip()]


class ImportProfile(models.Model):
    """A named column mapping an admin saved for an export exsync did not recognise (issue 16):
    which of the file's columns holds each of an export kind's keys. The Imports page and
    `import_inventory --profile NAME` read a file through it."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=32, help_text="The export kind the file is read as.")
    mapping = models.JSONField(default=dict, help_text="{key: the file's column name}")
    header = models.JSONField(default=list, blank=True, help_text="The columns it was made from.")
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
