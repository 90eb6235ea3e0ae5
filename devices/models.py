"""The Exchange inventory, shaped after what Exchange Management Shell reports.

Field names follow the cmdlets (Get-ExchangeServer, Get-Mailbox, Get-MobileDeviceStatistics)
so that an admin recognises them; see ../shared/domain/formats.md.
"""

from __future__ import annotations

from django.db import models
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


class ExchangeServer(models.Model):
    """One Exchange server (Get-ExchangeServer), with its published EAS endpoint."""

    name = models.CharField(max_length=64, help_text="Name as Exchange prints it, e.g. EX2016A.")
    fqdn = models.CharField("FQDN", max_length=255, blank=True)
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

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["display_name"]
        verbose_name_plural = "mailboxes"
        indexes = [models.Index(fields=["server", "database"])]

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
    device_type = models.CharField(max_length=64, blank=True)
    model = models.CharField(max_length=128, blank=True)
    os = models.CharField("OS", max_length=128, blank=True)
    user_agent = models.CharField(max_length=255, blank=True)
    friendly_name = models.CharField(max_length=255, blank=True)
    imei = models.CharField("IMEI", max_length=32, blank=True)

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
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
