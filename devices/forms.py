"""Forms of the inventory pages: uploading exports, recording facts no export carries."""

from __future__ import annotations

import re
from zoneinfo import available_timezones

from django import forms
from django.conf import settings

from .importers import CULTURES
from .importers.community import PROFILE_KEYS, profile_problems
from .models import ClientProfile, ExchangeServer, Namespace, Organisation
from .selectors import hybrid_server_choices
from .timezones import iana_names, zone_name


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files in one field (Django's documented recipe)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ".csv,.txt,.log,text/csv"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        items = data if isinstance(data, list | tuple) else [data]
        cleaned = []
        for item in items:
            try:
                cleaned.append(super().clean(item, initial))
            except forms.ValidationError as error:
                if getattr(error, "code", None) != "empty":
                    raise
                # Django's own message names no file; with several uploads the admin must know
                # which one (worded as import_inventory words it).
                name = getattr(item, "name", "") or "the file"
                raise forms.ValidationError(
                    f"{name}: the file is empty; expected an Export-Csv file with a header line",
                    code="empty",
                ) from None
        return cleaned


class ImportUploadForm(forms.Form):
    files = MultipleFileField(
        help_text="CSV files from Export-Csv: servers, mailboxes, devices, virtual directories, "
        "certificates, move requests, mailbox databases (Get-MailboxDatabase -Status) and "
        "storage groups (Get-StorageGroup); for Exchange 2003 also the Exchange_Mailbox WMI export and "
        "the front end's IIS logs (exYYMMDD.log). Files uploaded together are imported in the "
        "right order."
    )
    full_export = forms.BooleanField(
        required=False,
        initial=False,
        label="Device files are full exports",
        help_text="Tick only when a device file lists every phone of the servers it covers: "
        "partnerships of mailboxes on those servers that it does not list are then marked "
        "stale (never deleted). If that is more than {share:.0%} of them, you are asked to "
        "confirm first. Unticked, nothing is marked stale.",
    )
    partial = forms.BooleanField(
        required=False,
        initial=False,
        label="Organisation-wide files list only part of it",
        help_text="Device access rules, organisation relationships and accepted domains are "
        "read as the whole organisation's (what they do not list is removed); tick this to "
        "only add and change. For IIS logs: skip, with a warning, users that match no mailbox.",
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
    organisation = forms.CharField(
        required=False,
        max_length=255,
        help_text="Forest (e.g. contoso.local, or 'exchange online') of organisation settings, "
        "throttling, policy, relationship or accepted-domain exports without a "
        "DistinguishedName column.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["full_export"]
        field.help_text = field.help_text.format(share=settings.STALE_CONFIRM_SHARE)

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


class TriStateSelect(forms.NullBooleanSelect):
    """Yes / no / unknown, initialised from the stored True / False / None.

    A plain Select renders True as "True", which matches none of its options: the page then
    showed "unknown" for a recorded fact and saving any other field on it wiped the fact.
    """

    def __init__(self, yes: str = "Yes", no: str = "No", unknown: str = "Unknown (not recorded)"):
        super().__init__()
        self.choices = [("unknown", unknown), ("true", yes), ("false", no)]


def tri_state(label: str, yes: str = "Yes", no: str = "No", **kwargs) -> forms.NullBooleanField:
    return forms.NullBooleanField(
        label=label, required=False, widget=TriStateSelect(yes=yes, no=no), **kwargs
    )


# A DNS host name: labels of letters, digits and inner hyphens, 253 characters at most.
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
HOST_NAME = re.compile(rf"{_LABEL}(\.{_LABEL})*")


def clean_host_name(value: str, *, example: str = "mail.contoso.com") -> str:
    """Lower case, no trailing dot; refuse URLs, ports and anything not a host name."""
    host = value.strip().lower().rstrip(".")
    if "://" in host or "/" in host or ":" in host:
        raise forms.ValidationError(
            f"Enter the host name only, e.g. {example}: no https://, port or path."
        )
    if len(host) > 253 or not HOST_NAME.fullmatch(host):
        raise forms.ValidationError(
            f"'{value.strip()}' is not a host name; expected letters, digits, hyphens and dots, "
            f"e.g. {example}."
        )
    return host


class ChangedOnly:
    """Each field carries the value the admin saw (a hidden initial), so `changed_data` is what
    this admin changed, not what differs from a row another admin saved meanwhile: saving a
    stale form never reverts someone else's fact."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.show_hidden_initial = True


class ServerFactsForm(ChangedOnly, forms.ModelForm):
    """The facts of one server that no export carries; every field shows the stored value."""

    forest_recorded = forms.CharField(
        label="Forest (declared)",
        required=False,
        max_length=255,
        help_text="Root domain of the AD forest, e.g. contoso.local; empty = use the exports'.",
    )
    iwa_enabled = tri_state("IWA on Microsoft-Server-ActiveSync", yes="Enabled", no="Disabled")
    block_legacy_mailboxes = tri_state("BlockLegacyMailboxes (2007 CAS web.config)")
    is_sbs = tri_state("Small Business Server 2008")
    third_party_backup = tri_state("Third-party backup in use")

    class Meta:
        model = ExchangeServer
        fields = [
            "forest_recorded",
            "iwa_enabled",
            "exsetup_version",
            "block_legacy_mailboxes",
            "is_sbs",
            "third_party_backup",
        ]

    def clean_forest_recorded(self) -> str:
        value = self.cleaned_data["forest_recorded"]
        return clean_host_name(value, example="contoso.local") if value.strip() else ""

    def clean_exsetup_version(self) -> str:
        from exchange.versions import parse_version

        value = self.cleaned_data["exsetup_version"].strip()
        if value and parse_version(value) is None:
            raise forms.ValidationError(
                "Expected a build like 14.3.235.1 (the file version of ExSetup.exe)."
            )
        return value


class OwaBackupForm(forms.Form):
    """An admin ticks that the OWA customisations were backed up before an update (O-UR-OWA)."""

    backed_up = forms.BooleanField(
        label="OWA customisations backed up",
        help_text="A copy of C:\\Program Files\\Microsoft\\Exchange Server\\ClientAccess\\OWA "
        "(logon.aspx and the other customised files) exists.",
    )
    update = forms.CharField(
        label="Before which update",
        max_length=128,
        help_text="The Update Rollup or CU about to be installed, e.g. Exchange 2007 SP3 RU23.",
    )
    note = forms.CharField(
        required=False, max_length=255, help_text="Optional: where the copy is, what it holds."
    )

    def clean_update(self) -> str:
        value = self.cleaned_data["update"].strip()
        if not value:
            raise forms.ValidationError("Name the Update Rollup or CU.")
        return value


class AcceptedDomainSharedForm(forms.Form):
    """Whether another mail system also receives mail for an accepted domain (O-SAS)."""

    shared_with_other_system = tri_state(
        "Shared with another mail system", yes="Shared", no="Not shared"
    )


class OrganisationFactsForm(ChangedOnly, forms.ModelForm):
    """What Get-ActiveSyncOrganizationSettings, throttling and hybrid settings would say, and
    the time zone move times are told in to people whose mailbox has none."""

    hybrid_configured = tri_state("Hybrid configured")

    class Meta:
        model = Organisation
        fields = [
            "name",
            "default_access_level",
            "eas_max_devices",
            "hybrid_configured",
            "hybrid_server",
            "time_zone",
        ]
        help_texts = {
            "hybrid_server": "The on-premises server the Hybrid Configuration Wizard configured "
            "(phones' host name moves to it before a move to Exchange Online); empty = unknown.",
            "eas_max_devices": "Partnerships one user may hold; empty = unknown.",
            "default_access_level": "What a device no rule matches gets.",
            "time_zone": "For people whose mailbox has no time zone of its own: an IANA name "
            "(Europe/Berlin) or a Windows one as Exchange prints it (W. Europe Standard Time); "
            "empty = unknown.",
        }
        widgets = {
            "time_zone": forms.TextInput(
                attrs={"list": "time-zones", "autocomplete": "off", "spellcheck": "false"}
            )
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.is_exchange_online:
            del self.fields["hybrid_server"]  # the tenant has no on-premises server
            return
        field = self.fields["hybrid_server"]
        field.queryset = hybrid_server_choices(organisation=self.instance)
        field.empty_label = "unknown — not recorded"
        field.label_from_instance = lambda s: (
            f"{s.name} ({s.get_generation_display() or 'version unknown'})"
        )

    def clean_time_zone(self) -> str:
        value = self.cleaned_data["time_zone"].strip()
        if not value:
            return ""
        name = zone_name(value)
        if name is None:
            raise forms.ValidationError(
                f"'{value}' is not a time zone name; expected an IANA name such as Europe/Berlin "
                "or a Windows one such as W. Europe Standard Time."
            )
        return name

    @property
    def time_zone_names(self) -> list[str]:
        """Suggestions for the time zone field (the template's datalist)."""
        return iana_names()


class NamespaceForm(ChangedOnly, forms.ModelForm):
    """An EAS host name and what answers it."""

    class Meta:
        model = Namespace
        fields = ["host", "servers", "is_legacy", "devices_use", "sites", "retired"]
        labels = {"is_legacy": "Legacy name (kept on the old front end)"}
        widgets = {"sites": forms.Textarea(attrs={"rows": 3})}
        help_texts = {"servers": "The servers whose front end answers this name."}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["servers"].queryset = ExchangeServer.objects.order_by("name")
        self.fields["servers"].label_from_instance = lambda s: (
            f"{s.name} ({s.get_generation_display() or 'version unknown'})"
        )

    def clean_host(self) -> str:
        return clean_host_name(self.cleaned_data["host"])

    def clean_sites(self) -> str:
        return "\n".join(s.strip() for s in self.cleaned_data["sites"].splitlines() if s.strip())


class ClientProfileForm(ChangedOnly, forms.ModelForm):
    """Facts about a mail client that no export carries."""

    honours_451 = tri_state("Follows HTTP 451")
    supports_modern_auth = tri_state("Modern authentication")
    can_comply_with_policy = tri_state("Can comply with a stricter policy")

    class Meta:
        model = ClientProfile
        fields = [
            "name",
            "device_type",
            "model_prefix",
            "os_prefix",
            "max_eas_version",
            "honours_451",
            "supports_modern_auth",
            "can_comply_with_policy",
        ]
        help_texts = {
            "device_type": "DeviceType exactly (any case), e.g. iPhone; empty = any.",
            "model_prefix": "DeviceModel starts with, e.g. iPhone15; empty = any.",
            "os_prefix": "DeviceOS starts with, e.g. iOS 17; empty = any.",
        }

    def clean_max_eas_version(self) -> str:
        from exchange.versions import parse_eas_version

        value = self.cleaned_data["max_eas_version"].strip()
        if not value:
            return ""
        parsed = parse_eas_version(value)
        if parsed is None:
            raise forms.ValidationError("Expected an EAS protocol version such as 14.1 or 16.1.")
        return f"{parsed[0]}.{parsed[1]}"


class ImportMappingForm(forms.Form):
    """Which of an unrecognised file's columns holds each device fact (issue 16): saved as a
    named import profile. A display name is never a mailbox key, so none is offered as one."""

    name = forms.CharField(max_length=100, help_text="e.g. 'MDM console export'.")

    def __init__(self, *args, header: list[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.header = header
        choices = [("", "—"), *((column, column) for column in header)]
        for key, label in PROFILE_KEYS.items():
            self.fields[f"map_{key}"] = forms.ChoiceField(
                label=label, choices=choices, required=False
            )

    @property
    def mapping(self) -> dict[str, str]:
        return {key: self.cleaned_data.get(f"map_{key}") or "" for key in PROFILE_KEYS}

    def clean(self) -> dict:
        cleaned = super().clean()
        for problem in profile_problems({k: v for k, v in self.mapping.items() if v}, self.header):
            self.add_error(None, problem)
        return cleaned
