"""Move batches, the mailboxes in them, stored predictions, notices and the audit trail."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from devices.models import ExchangeServer, Mailbox, Partnership


class BatchState(models.TextChoices):
    DRAFT = "draft", "Draft"
    SCHEDULED = "scheduled", "Scheduled"
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_BATCH_STATES = (BatchState.DRAFT, BatchState.SCHEDULED, BatchState.IN_PROGRESS)


class PlanState(models.TextChoices):
    """Where a batch's next plan is: the worker computes predictions, not the web request."""

    IDLE = "idle", "Idle"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    FAILED = "failed", "Failed"


def default_notice_leads() -> list[int]:
    """Minutes before the start at which users get their notice: 3 days and 2 hours."""
    return [3 * 24 * 60, 2 * 60]


class MoveBatch(models.Model):
    """A set of mailboxes moved together to one target, like New-MigrationBatch."""

    name = models.CharField(max_length=128, unique=True)
    target_server = models.ForeignKey(ExchangeServer, on_delete=models.PROTECT, related_name="+")
    target_database = models.CharField(max_length=255, blank=True)
    # Empty: derived from the two servers (forest, site, Exchange Online); set when it cannot
    # be derived, e.g. a staged / cutover / IMAP migration to Exchange Online.
    move_kind = models.CharField(
        max_length=32,
        blank=True,
        choices=[
            ("hybrid_onboard", "Hybrid remote move (MRS) to Exchange Online"),
            ("staged_or_cutover_or_imap", "Staged, cutover or IMAP migration"),
            ("hybrid_offboard", "Hybrid remote move back from Exchange Online"),
            ("cross_forest", "Cross-forest move"),
        ],
        help_text="Empty: derived from the source and target servers.",
    )
    target_policy = models.ForeignKey(
        "devices.MobileDevicePolicy",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The mobile device mailbox policy on the target; empty: the target "
        "organisation's default when it is another organisation, else unchanged.",
    )
    start_at = models.DateTimeField("scheduled start")
    complete_by = models.DateTimeField("completion time", null=True, blank=True)
    state = models.CharField(max_length=16, choices=BatchState.choices, default=BatchState.DRAFT)
    notification_emails = models.TextField(
        blank=True, help_text="Report recipients, comma separated (like NotificationEmails)."
    )
    notice_leads_minutes = models.JSONField(default=default_notice_leads)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Empty for batches created with manage.py create_batch.",
    )
    planned_at = models.DateTimeField(
        null=True, blank=True, help_text="When predictions were last computed."
    )
    # The plan queued for the worker (services.batch_plan_request / batch_plan_run). Only
    # conditional UPDATEs change these, so one plan of a batch runs at a time.
    plan_state = models.CharField(
        max_length=8, choices=PlanState.choices, default=PlanState.IDLE, editable=False
    )
    plan_requested_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="When the batch was queued for a plan."
    )
    plan_started_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When the running (or last) plan started; it also identifies that plan.",
    )
    plan_rerun = models.BooleanField(
        default=False, editable=False, help_text="Asked again while a plan ran: plan once more."
    )
    plan_done = models.PositiveIntegerField(default=0, editable=False)
    plan_total = models.PositiveIntegerField(
        default=0, editable=False, help_text="Pending mailboxes the running plan covers."
    )
    plan_error = models.TextField(blank=True, editable=False)
    # The create form carries a token; a double-submitted form finds its batch instead of
    # making a second one.
    request_token = models.UUIDField(null=True, blank=True, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-start_at", "name"]
        verbose_name_plural = "move batches"
        permissions = [("schedule_movebatch", "Can schedule, change and cancel move batches")]
        constraints = [
            models.CheckConstraint(
                condition=Q(complete_by__isnull=True) | Q(complete_by__gte=models.F("start_at")),
                name="batch_completes_after_start",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_BATCH_STATES


class MemberState(models.TextChoices):
    PENDING = "pending", "Pending"
    MOVED = "moved", "Moved"
    FAILED = "failed", "Failed"
    REMOVED = "removed", "Removed"


class BatchMailbox(models.Model):
    """A mailbox's place in a batch, with where it was when it joined."""

    batch = models.ForeignKey(MoveBatch, on_delete=models.CASCADE, related_name="members")
    mailbox = models.ForeignKey(Mailbox, on_delete=models.PROTECT, related_name="batch_memberships")
    state = models.CharField(
        max_length=16, choices=MemberState.choices, default=MemberState.PENDING
    )
    # True while this row holds the mailbox (batch active and member not removed). Kept by the
    # services in the same transaction as the state change; the partial unique index below makes
    # the database itself refuse a second active batch for one mailbox.
    is_active = models.BooleanField(default=True)
    source_server = models.ForeignKey(
        ExchangeServer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source_database = models.CharField(max_length=255, blank=True)
    moved_at = models.DateTimeField(null=True, blank=True)
    added_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["batch_id", "mailbox_id"]
        verbose_name_plural = "batch mailboxes"
        constraints = [
            models.UniqueConstraint(fields=["batch", "mailbox"], name="mailbox_once_per_batch"),
            models.UniqueConstraint(
                fields=["mailbox"], condition=Q(is_active=True), name="one_active_batch_per_mailbox"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.mailbox_id} in {self.batch_id}"


class Outcome(models.TextChoices):
    """Closed vocabulary from eas-moves.md, worst first."""

    BLOCKED = "blocked", "Blocked"
    REPARTNER = "repartner", "Re-partner"
    UNKNOWN = "unknown", "Unknown"
    REDIRECT = "redirect", "Redirect"
    FULL_RESYNC = "full_resync", "Full resync"
    CONTINUES = "continues", "Continues"


class Explanation(models.Model):
    """One distinct planner answer (outcome + reasons), shared by every partnership it fits.

    Thousands of phones of the same model on the same servers get the same reasons; storing
    them once keeps a 100,000-partnership plan to narrow rows.
    """

    digest = models.CharField(max_length=64, unique=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    low_confidence = models.BooleanField(default=False)
    reasons = models.JSONField(default=list)
    # The range: outcomes possible under the missing facts, the questions that decide between
    # them, and which answer leads where (planner/ranges.py).
    possible = models.JSONField(default=list)
    depends_on = models.JSONField(default=list)
    branches = models.JSONField(default=list)
    # One sentence each, composed from the reasons (planner/wording.py).
    user_text = models.TextField(blank=True)
    admin_text = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    def __str__(self) -> str:
        return f"{self.outcome} ({len(self.reasons)} reasons)"


class Prediction(models.Model):
    """What the batch's move will do to one partnership; the why is in its explanation.

    Predictions are derived rows, rebuilt set-based by batch_plan() (100,000 at a time), so
    each one costs as little to write as it can (`make bench-plan`):
    - the primary key is (member, partnership): one index, no id sequence;
    - no index on partnership alone: a plan reads predictions by member, and deleting a
      partnership (admin only; imports mark them stale) may scan;
    - foreign keys are not checked by the database: PostgreSQL's deferred checks cost more
      at commit than writing the rows. Integrity comes from how they are written (one
      INSERT ... SELECT joining the live members and partnerships) and from Django's
      on_delete=CASCADE, which removes them with their member or partnership (tested).
    """

    pk = models.CompositePrimaryKey("member", "partnership")
    member = models.ForeignKey(
        BatchMailbox,
        on_delete=models.CASCADE,
        related_name="predictions",
        db_index=False,
        db_constraint=False,
    )
    partnership = models.ForeignKey(
        Partnership,
        on_delete=models.CASCADE,
        related_name="predictions",
        db_index=False,
        db_constraint=False,
    )
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    explanation = models.ForeignKey(
        Explanation, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    computed_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.partnership_id}: {self.outcome}"


class NoticeKind(models.TextChoices):
    BEFORE_MOVE = "before", "Before the move"
    REMINDER = "reminder", "Reminder"
    AFTER_MOVE = "after", "After the move"
    CHASE = "chase", "Not synced since the move"
    REPORT = "report", "Batch report"


class NoticeState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Notice(models.Model):
    """The log of notices: one row per (batch, mailbox, kind), claimed before it is sent."""

    batch = models.ForeignKey(MoveBatch, on_delete=models.CASCADE, related_name="notices")
    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="notices")
    kind = models.CharField(max_length=16, choices=NoticeKind.choices)
    due_at = models.DateTimeField()
    state = models.CharField(
        max_length=16, choices=NoticeState.choices, default=NoticeState.PENDING
    )
    recipient = models.CharField(max_length=320)
    subject = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["due_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["batch", "mailbox", "kind"], name="one_notice_per_kind"
            ),
        ]
        indexes = [models.Index(fields=["state", "due_at"])]

    def __str__(self) -> str:
        return f"{self.kind} to {self.recipient}"


class AuditEntry(models.Model):
    """Who changed what in a batch, and when."""

    batch = models.ForeignKey(MoveBatch, on_delete=models.CASCADE, related_name="audit")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=64)
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action}"


class OutboxMessage(models.Model):
    """Every e-mail exsync sent while no SMTP server is configured, kept so the UI can show it."""

    from_email = models.CharField(max_length=320)
    to = models.TextField()
    cc = models.TextField(blank=True)
    subject = models.CharField(max_length=998)
    body = models.TextField()
    html_body = models.TextField(blank=True)
    headers = models.JSONField(default=dict, blank=True)
    sent_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-sent_at", "-id"]

    def __str__(self) -> str:
        return f"{self.subject} → {self.to}"
