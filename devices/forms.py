"""Forms of the inventory pages: uploading exports, recording server facts."""

from __future__ import annotations

from zoneinfo import available_timezones

from django import forms

from .importers import CULTURES
from .models import ExchangeServer


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one field (Django's documented recipe)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ".csv,.txt,text/csv"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, list | tuple):
            return [single(item, initial) for item in data]
        return [single(data, initial)]


class ImportUploadForm(forms.Form):
    files = MultipleFileField(
        help_text="CSV files from Export-Csv: servers, mailboxes, devices, virtual directories, "
        "certificates, move requests. Files uploaded together are imported in the right order."
    )
    full_export = forms.BooleanField(
        required=False,
        initial=True,
        label="Device files are full exports",
        help_text="Partnerships missing from a full device export are marked stale (never deleted).",
    )
    dry_run = forms.BooleanField(
        required=False, label="Dry run: report what would change, write nothing"
    )
    delimiter = forms.ChoiceField(
        required=False, choices=[("", "detect"), (",", ","), (";", ";"), ("tab", "tab")]
    )
    culture = forms.ChoiceField(
        required=False,
        choices=[("", "detect (asks when dates are ambiguous)")]
        + [(c, c) for c in sorted(CULTURES)],
        help_text="The culture of the PowerShell session that exported the dates.",
    )
    encoding = forms.CharField(
        required=False, max_length=32, help_text="Only for -Encoding Default exports, e.g. cp1252."
    )
    timezone = forms.CharField(
        required=False, max_length=64, help_text="Time zone of the export's dates; default UTC."
    )
    server = forms.CharField(
        required=False,
        max_length=64,
        help_text="Server of a Get-ExchangeCertificate export without a Server column.",
    )

    def clean_timezone(self) -> str:
        value = self.cleaned_data["timezone"].strip()
        if value and value not in available_timezones():
            raise forms.ValidationError(f"'{value}' is not a time zone name such as Europe/Berlin.")
        return value

    def clean_encoding(self) -> str:
        import codecs

        value = self.cleaned_data["encoding"].strip()
        if value:
            try:
                codecs.lookup(value)
            except LookupError as exc:
                raise forms.ValidationError(f"'{value}' is not an encoding Python knows.") from exc
        return value


class ServerFactsForm(forms.ModelForm):
    iwa_enabled = forms.NullBooleanField(
        label="IWA on Microsoft-Server-ActiveSync",
        widget=forms.Select(
            choices=[
                ("unknown", "Unknown (not checked)"),
                ("true", "Enabled"),
                ("false", "Disabled"),
            ]
        ),
        required=False,
    )

    class Meta:
        model = ExchangeServer
        fields = ["iwa_enabled", "exsetup_version"]

    def clean_exsetup_version(self) -> str:
        from exchange.versions import parse_version

        value = self.cleaned_data["exsetup_version"].strip()
        if value and parse_version(value) is None:
            raise forms.ValidationError(
                "Expected a build like 14.3.235.1 (the file version of ExSetup.exe)."
            )
        return value
