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
    grace_hours = models.PositiveIntegerField(
        "silent after (hours)",
        default=24,
        help_text="A phone with no successful sync this long after its mailbox moved is silent.",
    )
    notify_unaffected = models.BooleanField(
        "short notice when all phones continue",
        default=True,
        help_text="People whose phones all keep syncing get one short notice (at the first "
        "lead time); off: they get none.",
    )
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


class ContinuityState(models.TextChoices):
    """Whether a phone synced again after its mailbox moved (issue 14), as the exports say."""

    PENDING = "pending", "Pending: no export since the move"
    CONFIRMED = "confirmed", "Confirmed: synced after the move"
    SILENT = "silent", "Silent: no sync since the move"
    REPLACED = "replaced", "Replaced: partnership re-created"
    GONE = "gone", "Gone: no longer in a full export"


class Continuity(models.Model):
    """One phone of a moved mailbox: what the plan predicted and what the exports then showed.

    Created for every predicted partnership when the mailbox is recorded as moved (with the
    move time: what was known at the move is the prediction and the partnership as it was),
    and brought up to date set-based after each device import (continuity.py).
    """

    # No index of its own: the unique (member, partnership) index leads with it.
    member = models.ForeignKey(
        BatchMailbox, on_delete=models.CASCADE, related_name="continuity", db_index=False
    )
    partnership = models.ForeignKey(
        Partnership, on_delete=models.CASCADE, related_name="continuity", db_index=False
    )
    moved_at = models.DateTimeField()
    # moved_at + the batch's grace: no sync by then is silent (kept here so one statement
    # decides every batch's phones).
    silent_after = models.DateTimeField()
    predicted = models.CharField(max_length=16, choices=Outcome.choices)
    # The prediction's reasons at the move: accuracy per rule reads them from here.
    explanation = models.ForeignKey(
        Explanation, null=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    # The partnership as known at the move.
    last_sync_at_move = models.DateTimeField(null=True, blank=True)
    first_sync_at_move = models.DateTimeField(null=True, blank=True)
    state = models.CharField(
        max_length=16, choices=ContinuityState.choices, default=ContinuityState.PENDING
    )
    last_success_sync_at = models.DateTimeField(
        null=True, blank=True, help_text="The newest successful sync an export reported."
    )
    observed_at = models.DateTimeField(
        null=True, blank=True, help_text="When an export after the move last listed it."
    )
    replaced_by = models.ForeignKey(
        Partnership, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    checked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["member_id", "partnership_id"]
        verbose_name_plural = "continuity"
        constraints = [
            models.UniqueConstraint(
                fields=["member", "partnership"], name="one_continuity_per_phone"
            )
        ]
        indexes = [models.Index(fields=["state", "member"], name="continuity_state")]

    def __str__(self) -> str:
        return f"{self.partnership_id}: {self.state}"


class NoticeKind(models.TextChoices):
    BEFORE_MOVE = "before", "Before the move"
    AFTER_MOVE = "after", "After the move"
    CORRECTION = "correction", "Correction"
    CHASE = "chase", "Not synced since the move"
    REPORT_SCHEDULED = "report_scheduled", "Report: batch scheduled"
    REPORT_STARTED = "report_started", "Report: batch started"
    REPORT_COMPLETED = "report_completed", "Report: batch completed"


PERSON_KINDS = (
    NoticeKind.BEFORE_MOVE,
    NoticeKind.AFTER_MOVE,
    NoticeKind.CORRECTION,
    NoticeKind.CHASE,
)
REPORT_KINDS = (
    NoticeKind.REPORT_SCHEDULED,
    NoticeKind.REPORT_STARTED,
    NoticeKind.REPORT_COMPLETED,
)


class NoticeState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Not needed"
    CANCELLED = "cancelled", "Withdrawn"


class Notice(models.Model):
    """One e-mail exsync owes somebody, and the log of what became of it.

    The row is the message's idempotency key: (batch, recipient, kind, lead time, revision) is
    unique in the database, so queueing twice queues once. A worker sends only the row it
    claimed with a conditional UPDATE (pending -> sending, `claimed_at`); a claim nobody
    confirmed is released by the sweeper (notices/delivery.py). `revision` is 0 except for
    corrections and resends, which are deliberate second messages.
    """

    # Both looked up through the indexes below, which start with them: an index of their own
    # would only be one more to write at every claim and every ending of a notice.
    batch = models.ForeignKey(
        MoveBatch, on_delete=models.CASCADE, related_name="notices", db_index=False
    )
    # Empty for the batch reports, which go to the batch's report recipients.
    mailbox = models.ForeignKey(
        Mailbox,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="notices",
        db_index=False,
    )
    # The person's place in the batch (one row per batch and mailbox), read with the notice.
    member = models.ForeignKey(
        BatchMailbox, null=True, blank=True, on_delete=models.CASCADE, related_name="notices"
    )
    kind = models.CharField(max_length=16, choices=NoticeKind.choices)
    lead_minutes = models.PositiveIntegerField(
        default=0, help_text="Minutes before the start (notices before the move); else 0."
    )
    revision = models.PositiveSmallIntegerField(
        default=0, help_text="0, or the number of the correction / resend / requeue."
    )
    # An admin's "send again": goes as it is, whatever notices went before it. A notice queued
    # again for a new start time (revision > 0 too) follows the usual rules.
    is_resend = models.BooleanField(default=False)
    due_at = models.DateTimeField()
    state = models.CharField(
        max_length=16, choices=NoticeState.choices, default=NoticeState.PENDING
    )
    # Lower-case address; part of the key, so a report recipient listed twice gets one.
    recipient = models.CharField(max_length=320)
    claimed_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(
        null=True, blank=True, help_text="When its id was last handed to the broker."
    )
    next_try_at = models.DateTimeField(
        null=True, blank=True, help_text="After a temporary failure: not before this time."
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    reason = models.CharField(
        max_length=255, blank=True, help_text="Why it was not needed, or withdrawn."
    )
    # What was (or was to be) sent, kept whole for the log.
    subject = models.CharField(max_length=998, blank=True)
    body_text = models.TextField(blank=True)
    body_html = models.TextField(blank=True)
    message_id = models.CharField(max_length=255, blank=True)
    # What it told the person (devices, outcomes, steps, the time): a later plan that
    # differs from it is a correction (notices/corrections.py).
    said_digest = models.CharField(max_length=64, blank=True)
    undecided = models.PositiveSmallIntegerField(
        default=0, help_text="Devices it called undecided (outcome unknown)."
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # A before-move notice rendered ahead of its time (notices/prepared.py): the person's
    # content and its renderings, used at send time only while `prepared_key` still matches
    # what they were made from; never shown as what was sent.
    prepared_key = models.CharField(max_length=64, blank=True)
    prepared = models.JSONField(null=True, blank=True, editable=False)
    # The e-mail itself, made ahead with the rendering (every header but Date): used only when
    # what the sender would build now has the same fingerprint (notices/message.py).
    prepared_mime = models.BinaryField(blank=True, default=b"", editable=False)

    class Meta:
        ordering = ["due_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["batch", "recipient", "kind", "lead_minutes", "revision"],
                name="one_notice_per_key",
            ),
        ]
        indexes = [
            # What beat looks for: due pending rows, and claims nobody confirmed.
            models.Index(
                fields=["due_at"], condition=Q(state="pending"), name="notice_pending_due"
            ),
            models.Index(
                fields=["claimed_at"], condition=Q(state="sending"), name="notice_sending_claim"
            ),
            models.Index(fields=["batch", "state"], name="notice_batch_state"),
            models.Index(fields=["mailbox", "batch"], name="notice_mailbox_batch"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.recipient}"

    @property
    def is_report(self) -> bool:
        return self.kind in REPORT_KINDS


class TemplateName(models.TextChoices):
    """The wordings an admin can edit; the three reports share one."""

    BEFORE = "before", "Before the move"
    AFTER = "after", "After the move"
    CORRECTION = "correction", "Correction"
    CHASE = "chase", "Not synced since the move"
    REPORT = "report", "Batch report"


class NoticeTemplate(models.Model):
    """An admin's own wording for one kind of notice; without a row the default files apply.

    Subject, plain-text and HTML parts are Django templates rendered with plain values only
    (notices/templates.py); the HTML part is autoescaped, the subject made one safe line.
    """

    name = models.CharField(max_length=16, choices=TemplateName.choices, unique=True)
    subject = models.TextField()
    body_text = models.TextField("plain-text part")
    body_html = models.TextField("HTML part")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.get_name_display()


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
    # [{"name", "mimetype", "size", "content"}]: text attachments (the reports' CSV) kept whole.
    attachments = models.JSONField(default=list, blank=True)
    sent_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-sent_at", "-id"]

    def __str__(self) -> str:
        return f"{self.subject} → {self.to}"


class FindingAcknowledgement(models.Model):
    """An admin read a blocking readiness finding of a batch and scheduled it anyway (issue
    15): which finding (check, subject and the digest of what it said), who, when, why. A
    finding that changes since needs acknowledging again."""

    batch = models.ForeignKey(MoveBatch, on_delete=models.CASCADE, related_name="acknowledgements")
    check_id = models.CharField(max_length=32)
    subject = models.CharField(max_length=512)
    digest = models.CharField(max_length=64)
    note = models.CharField(max_length=500, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-acknowledged_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["batch", "digest"], name="one_acknowledgement_per_finding"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.check_id} {self.subject}"
