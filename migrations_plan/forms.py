"""Forms of the batch pages."""

from __future__ import annotations

import math
import re
import uuid

from django import forms
from django.core.validators import validate_email
from django.db.models import QuerySet

from devices.models import ExchangeServer, Generation, Mailbox, MobileDevicePolicy
from devices.services import exchange_online_ensure

from .models import MoveBatch, NoticeKind, NoticeState, NoticeTemplate, Outcome

EXCHANGE_ONLINE_CHOICE = "exo"


class TargetChoiceField(forms.ChoiceField):
    """The on-premises servers, and Exchange Online (created the first time it is chosen)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(choices=self._choices, **kwargs)

    @staticmethod
    def _choices() -> list[tuple[str, str]]:
        servers = ExchangeServer.objects.exclude(generation=Generation.EXO).order_by("name")
        return [
            ("", "---------"),
            *((str(s.pk), s.name) for s in servers),
            (EXCHANGE_ONLINE_CHOICE, "Exchange Online (Microsoft 365)"),
        ]

    def clean(self, value):
        value = super().clean(value)
        if value == EXCHANGE_ONLINE_CHOICE:
            return exchange_online_ensure()
        return ExchangeServer.objects.get(pk=int(value)) if value else None


MAX_LEAD_HOURS = 24 * 60  # services.clean_notice_leads accepts up to 60 days


def hours_text(minutes: list[int] | None) -> str:
    """Lead times in minutes as the form shows them: "72, 2" (1.5 for 90 minutes)."""
    return ", ".join(f"{m / 60:g}" for m in sorted(set(minutes or []), reverse=True))


class NoticeLeadsField(forms.CharField):
    """ "72, 24, 2": when people get a notice, in hours before the start -> minutes, largest
    first. Any number of lead times; each error names the value it is about."""

    default_error_messages = {"required": "Give at least one lead time, e.g. 72, 2."}

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("label", "Notify people (hours before the start)")
        kwargs.setdefault("initial", "72, 2")
        kwargs.setdefault("max_length", 200)
        kwargs.setdefault(
            "help_text",
            "Any number of lead times, comma separated, e.g. 72, 24, 2. People whose phones need "
            "something get a notice at each; hours may have decimals (0.5 = 30 minutes).",
        )
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return hours_text(list(value))
        return value

    def clean(self, value) -> list[int]:
        text = super().clean(value)
        minutes: set[int] = set()
        for raw in (part.strip() for part in re.split(r"[,;\s]+", text)):
            if not raw:
                continue
            try:
                hours = float(raw.removesuffix("h"))
            except ValueError:
                raise forms.ValidationError(
                    "“%(value)s” is not a number of hours.", params={"value": raw}
                ) from None
            if not math.isfinite(hours) or hours <= 0 or hours > MAX_LEAD_HOURS:
                raise forms.ValidationError(
                    "“%(value)s” cannot be a lead time: give hours above 0 and at most "
                    "%(max)s (60 days) before the start.",
                    params={"value": raw, "max": MAX_LEAD_HOURS},
                )
            minutes.add(max(1, round(hours * 60)))
        if not minutes:
            raise forms.ValidationError(self.error_messages["required"])
        return sorted(minutes, reverse=True)


class NotifyUnaffectedField(forms.BooleanField):
    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("initial", True)
        kwargs.setdefault("label", "People whose phones all keep syncing get one short notice")
        kwargs.setdefault("help_text", "At the first lead time. Untick: they get none.")
        super().__init__(**kwargs)


class GraceHoursField(forms.IntegerField):
    """Hours after its move a phone may go without a successful sync before it is silent
    (MoveBatch.grace_hours); at most the time a moved mailbox is watched."""

    def __init__(self, **kwargs) -> None:
        from django.conf import settings

        kwargs.setdefault("label", "Silent after (hours)")
        kwargs.setdefault("initial", 24)
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", settings.CONTINUITY_WATCH_DAYS * 24)
        kwargs.setdefault(
            "help_text",
            "A phone with no successful sync this long after its mailbox moved is silent: "
            "its person gets one follow-up and appears in the helpdesk queue.",
        )
        super().__init__(**kwargs)


class GraceForm(forms.Form):
    """The batch page's grace period form (any state: it matters most after the move)."""

    grace_hours = GraceHoursField()


class BatchForm(forms.Form):
    request_token = forms.UUIDField(widget=forms.HiddenInput, initial=uuid.uuid4)
    name = forms.CharField(max_length=128)
    target_server = TargetChoiceField()
    target_database = forms.CharField(max_length=255, required=False)
    move_kind = forms.ChoiceField(
        required=False,
        label="Move kind",
        choices=[
            ("", "derive it from the servers (forest, site, Exchange Online)"),
            *MoveBatch._meta.get_field("move_kind").choices,
        ],
        help_text="Set it when the servers cannot tell, e.g. a staged, cutover or IMAP "
        "migration to Exchange Online (the default for Exchange Online is a hybrid move).",
    )
    target_policy = forms.ModelChoiceField(
        queryset=MobileDevicePolicy.objects.select_related("organisation").order_by("name"),
        required=False,
        label="Mobile device policy on the target",
        help_text="Empty: unchanged within the organisation; the target organisation's default "
        "policy when moving to another one.",
    )
    allow_unsupported = forms.BooleanField(
        required=False,
        label="Create it even if a source server cannot coexist with the target",
        help_text="Unsupported paths (2003 → 2013+, 2007 → 2016+, 2010 → 2019/SE, 2013 → SE) "
        "are refused unless ticked; the batch is then flagged and planned as unknown.",
    )
    start_at = forms.DateTimeField(
        label="Scheduled start",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="In the site's time zone.",
    )
    complete_by = forms.DateTimeField(
        label="Complete by (optional)",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    notification_emails = forms.CharField(
        label="Report recipients",
        required=False,
        max_length=2000,
        help_text="Comma-separated addresses, like New-MigrationBatch -NotificationEmails.",
    )
    notice_leads = NoticeLeadsField()
    notify_unaffected = NotifyUnaffectedField()
    grace_hours = GraceHoursField(required=False)  # empty: the default, 24 hours
    # Choosing mailboxes: by filter, or with the CSV New-MigrationBatch takes.
    source_server = forms.ModelChoiceField(
        queryset=ExchangeServer.objects.order_by("name"),
        required=False,
        label="Mailboxes on server",
    )
    source_database = forms.CharField(required=False, max_length=255, label="…in database")
    organizational_unit = forms.CharField(
        required=False, max_length=512, label="…in OU (starts with)"
    )
    device_outcomes = forms.MultipleChoiceField(
        required=False,
        choices=Outcome.choices,
        widget=forms.CheckboxSelectMultiple,
        label="…whose phones would",
        help_text="Keep only mailboxes whose worst phone outcome on this target is one of these "
        "(a mailbox without a phone counts as continues). None ticked: all of them.",
    )
    mailboxes_csv = forms.FileField(
        required=False,
        label="Or a New-MigrationBatch CSV",
        help_text="One column EmailAddress, one primary SMTP address a row.",
    )

    def clean_notification_emails(self) -> str:
        addresses = [
            a.strip() for a in self.cleaned_data["notification_emails"].split(",") if a.strip()
        ]
        for address in addresses:
            validate_email(address)
        return ", ".join(addresses)

    def clean(self) -> dict:
        data = super().clean()
        target, kind = data.get("target_server"), data.get("move_kind") or ""
        if target is not None and kind:
            to_cloud = target.generation == Generation.EXO
            if kind in ("hybrid_onboard", "staged_or_cutover_or_imap") and not to_cloud:
                self.add_error("move_kind", "This kind of move goes to Exchange Online.")
            if kind in ("hybrid_offboard", "cross_forest") and to_cloud:
                self.add_error("move_kind", "This kind of move goes to an on-premises server.")
        start, end = data.get("start_at"), data.get("complete_by")
        if start and end and end < start:
            self.add_error("complete_by", "The completion time must be after the start.")
        if not (
            data.get("mailboxes_csv")
            or data.get("source_server")
            or data.get("organizational_unit")
        ):
            raise forms.ValidationError(
                "Choose the mailboxes: a source server, an OU, or a CSV file."
            )
        return data

    def filtered_mailboxes(self) -> QuerySet[Mailbox]:
        """The mailboxes the server / database / OU filters choose (device outcome aside)."""
        return mailboxes_filtered(self.cleaned_data)


def mailboxes_filtered(data: dict) -> QuerySet[Mailbox]:
    """The mailboxes a server / database / OU filter of the new-batch form chooses."""
    mailboxes = Mailbox.objects.all()
    if data.get("source_server"):
        mailboxes = mailboxes.filter(server=data["source_server"])
    if data.get("source_database"):
        mailboxes = mailboxes.filter(database__iexact=data["source_database"])
    if data.get("organizational_unit"):
        mailboxes = mailboxes.filter(organizational_unit__istartswith=data["organizational_unit"])
    return mailboxes


class CompareForm(forms.Form):
    """The new-batch form's fields a comparison of targets reads (same names, so the one form
    on the page serves both): which mailboxes, when, how they move. Nothing else is checked,
    so an admin can compare before naming the batch."""

    source_server = BatchForm.base_fields["source_server"]
    source_database = BatchForm.base_fields["source_database"]
    organizational_unit = BatchForm.base_fields["organizational_unit"]
    mailboxes_csv = BatchForm.base_fields["mailboxes_csv"]
    start_at = forms.DateTimeField(required=False)
    move_kind = forms.ChoiceField(
        required=False, choices=BatchForm.base_fields["move_kind"].choices
    )
    target_policy = BatchForm.base_fields["target_policy"]
    # The comparison shown ("Use this target" keeps its mailboxes: a CSV is not sent again).
    compared = forms.CharField(required=False, max_length=200)

    def clean(self) -> dict:
        data = super().clean()
        if not (
            data.get("mailboxes_csv")
            or data.get("compared")
            or data.get("source_server")
            or data.get("source_database")
            or data.get("organizational_unit")
        ):
            raise forms.ValidationError(
                "Choose the mailboxes first (a source server, a database, an OU or a CSV file), "
                "then compare the targets for them."
            )
        return data


class RetargetForm(forms.Form):
    """The comparison's "Use this target" on a draft batch."""

    target = TargetChoiceField()


class AddMailboxesForm(forms.Form):
    mailboxes_csv = forms.FileField(required=False, label="New-MigrationBatch CSV")
    addresses = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Or primary SMTP addresses, one a line.",
    )


class PredictionFilterForm(forms.Form):
    outcome = forms.ChoiceField(required=False, choices=[("", "all outcomes"), *Outcome.choices])
    q = forms.CharField(
        required=False,
        label="Search",
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "mailbox, device id, model"}),
    )
    rule = forms.CharField(required=False, max_length=64, label="Rule id")
    sort = forms.ChoiceField(
        required=False,
        choices=[
            ("mailbox", "mailbox"),
            ("outcome", "outcome (worst first)"),
            ("device", "device"),
            ("model", "model"),
            ("last_sync", "last sync"),
        ],
    )


class RescheduleForm(forms.Form):
    """Another time for a draft or scheduled batch, and when (and whether) people hear of it."""

    start_at = forms.DateTimeField(
        label="Scheduled start",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="In the site's time zone.",
    )
    complete_by = forms.DateTimeField(
        label="Complete by (optional)",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    notice_leads = NoticeLeadsField()
    notify_unaffected = NotifyUnaffectedField()

    @classmethod
    def for_batch(cls, batch: MoveBatch) -> RescheduleForm:
        from django.utils import timezone

        return cls(
            initial={
                "start_at": timezone.localtime(batch.start_at),
                "complete_by": timezone.localtime(batch.complete_by) if batch.complete_by else None,
                "notice_leads": hours_text(batch.notice_leads_minutes),
                "notify_unaffected": batch.notify_unaffected,
            }
        )

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("start_at"), data.get("complete_by")
        if start and end and end < start:
            self.add_error("complete_by", "The completion time must be after the start.")
        return data


class NoticeFilterForm(forms.Form):
    """The notice log's filters (always bound: an unknown value is ignored, not an error page)."""

    state = forms.ChoiceField(required=False, choices=[("", "all states"), *NoticeState.choices])
    kind = forms.ChoiceField(required=False, choices=[("", "all kinds"), *NoticeKind.choices])


class NoticeTemplateForm(forms.ModelForm):
    """An admin's wording of one template name; each part must compile (the error is shown on
    the part), so a broken template is never stored."""

    class Meta:
        model = NoticeTemplate
        fields = ["subject", "body_text", "body_html"]
        widgets = {
            "subject": forms.Textarea(attrs={"rows": 3, "class": "source", "spellcheck": "false"}),
            "body_text": forms.Textarea(
                attrs={"rows": 18, "class": "source", "spellcheck": "false"}
            ),
            "body_html": forms.Textarea(
                attrs={"rows": 18, "class": "source", "spellcheck": "false"}
            ),
        }

    def __init__(self, *args, sample: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sample = sample
        self.rendered = None  # the chosen sample rendered, once the parts are valid
        self.render_error = ""

    def _render(self, source: dict[str, str], variant: str):
        from .notice_samples import sample_context
        from .notices.wording import render

        try:
            return render(
                self.instance.name, sample_context(self.instance.name, variant), source=source
            )
        except Exception as error:  # an edited template is the admin's input: say what broke
            self.render_error = f"{type(error).__name__}: {error}"
            return None

    def render_sample(self):
        """The sample rendered with the source the unbound form shows (the current wording)."""
        from .notices.wording import PARTS

        return self._render({part: self.initial.get(part) or "" for part in PARTS}, self.sample)

    def clean(self) -> dict:
        from .notice_samples import VARIANTS
        from .notices.wording import PARTS

        data = super().clean()
        if self.errors or not all(part in data for part in PARTS):
            return data
        source = {part: data[part] for part in PARTS}
        # Every situation the template must handle has to render, not only the one shown:
        # a template that fails at send time would fail every notice of its kind.
        for variant, label in VARIANTS[self.instance.name]:
            rendered = self._render(source, variant)
            if rendered is None:
                raise forms.ValidationError(
                    "This wording fails when rendered for %(label)s: %(error)s",
                    params={"label": label, "error": self.render_error},
                )
            if variant == self.sample or self.rendered is None:
                self.rendered = rendered
        return data

    def _checked(self, part: str) -> str:
        from .notices.wording import check_source

        source = self.cleaned_data[part]
        problem = check_source(part, source)
        if problem:
            raise forms.ValidationError(
                "This template does not compile: %(problem)s", params={"problem": problem}
            )
        return source

    def clean_subject(self) -> str:
        return self._checked("subject")

    def clean_body_text(self) -> str:
        return self._checked("body_text")

    def clean_body_html(self) -> str:
        return self._checked("body_html")


class WavesForm(forms.Form):
    """Which target an organisation-wide migration goes to, and from when (the waves page)."""

    target = forms.ChoiceField(label="Target", choices=TargetChoiceField._choices)
    start_at = forms.DateTimeField(
        label="First wave starts",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="In the site's time zone.",
    )
    days_between = forms.IntegerField(label="Days between waves", min_value=0, initial=7)
    name_prefix = forms.CharField(label="Batch names start with", max_length=80, initial="Wave")
