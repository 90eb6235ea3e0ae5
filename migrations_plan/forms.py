"""Forms of the batch pages."""

from __future__ import annotations

import uuid

from django import forms
from django.core.validators import validate_email
from django.db.models import QuerySet

from devices.models import ExchangeServer, Generation, Mailbox, MobileDevicePolicy
from devices.services import exchange_online_ensure

from .models import MoveBatch, Outcome

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
    first_notice_hours = forms.IntegerField(
        label="First notice (hours before)", initial=72, min_value=1, max_value=24 * 30
    )
    reminder_hours = forms.IntegerField(
        label="Reminder (hours before)", initial=2, min_value=0, max_value=24 * 30
    )
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
        first, reminder = data.get("first_notice_hours"), data.get("reminder_hours")
        if first is not None and reminder is not None and reminder >= first:
            self.add_error(
                "reminder_hours",
                "The reminder comes after the first notice: fewer hours before the start.",
            )
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
        data = self.cleaned_data
        mailboxes = Mailbox.objects.all()
        if data.get("source_server"):
            mailboxes = mailboxes.filter(server=data["source_server"])
        if data.get("source_database"):
            mailboxes = mailboxes.filter(database__iexact=data["source_database"])
        if data.get("organizational_unit"):
            mailboxes = mailboxes.filter(
                organizational_unit__istartswith=data["organizational_unit"]
            )
        return mailboxes


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
