"""The Endpoints page: the certificate each published EAS URL serves, and probing them again.

Everyone with a role reads it; Exchange admins (devices.add_proberun, devices.add_probetarget)
may start a probe run and add URLs. Helpdesk gets a 403 on those POSTs.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST, require_safe

from .models import ProbeRun, ProbeTarget
from .probe_services import (
    ProbeRunRefused,
    endpoints_page,
    probe_run_latest,
    probe_run_request,
    probe_target_add,
    probe_target_delete,
    url_key,
)

PROBE_PERMISSION = "devices.add_proberun"
TARGET_PERMISSION = "devices.add_probetarget"
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class ProbeTargetForm(forms.Form):
    url = forms.CharField(
        label="URL",
        max_length=ProbeTarget._meta.get_field("url").max_length,
        help_text="e.g. https://legacy.contoso.com/Microsoft-Server-ActiveSync",
    )
    note = forms.CharField(max_length=255, required=False)

    def clean_url(self) -> str:
        url = self.cleaned_data["url"].strip()
        parts = urlsplit(url)
        if parts.scheme.lower() != "https":
            raise forms.ValidationError("Only https URLs are probed.")
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            raise forms.ValidationError("Leave user names and passwords out of the URL.")
        try:
            parts.port  # noqa: B018 -- raises for a port that is not 1-65535
        except ValueError as exc:
            raise forms.ValidationError("The port is not a number from 1 to 65535.") from exc
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise forms.ValidationError("Give a host name, e.g. https://mail.contoso.com/.")
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            raise forms.ValidationError(
                "Give the host name phones use: certificates name hosts, not addresses."
            )
        labels = host.split(".")
        if len(host) > 253 or len(labels) < 2 or not all(_LABEL.match(lab) for lab in labels):
            raise forms.ValidationError(f"{host} is not a host name such as mail.contoso.com.")
        if parts.query or parts.fragment:
            raise forms.ValidationError("Leave the query (?…) and fragment (#…) out of the URL.")
        if any(
            url_key(url) == url_key(t) for t in ProbeTarget.objects.values_list("url", flat=True)
        ):
            raise forms.ValidationError("This URL is on the list already.")
        return url


def _page(request: HttpRequest, form: ProbeTargetForm, status: int = 200) -> HttpResponse:
    run = probe_run_latest()
    context = {
        "rows": endpoints_page(),
        "run": run,
        "running": run is not None and run.state in (ProbeRun.State.QUEUED, ProbeRun.State.RUNNING),
        "can_probe": request.user.has_perm(PROBE_PERMISSION),
        "can_add": request.user.has_perm(TARGET_PERMISSION),
        "targets": ProbeTarget.objects.select_related("added_by"),
        "form": form,
    }
    return render(request, "devices/endpoint_probes.html", context, status=status)


@require_safe
def endpoint_probes(request: HttpRequest) -> HttpResponse:
    return _page(request, ProbeTargetForm())


@require_POST
def endpoint_probe_now(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(PROBE_PERMISSION):
        raise PermissionDenied("Only Exchange admins may probe endpoints.")
    try:
        probe_run_request(actor=request.user)
    except ProbeRunRefused as exc:
        messages.info(request, f"{exc} This page follows it.")
    else:
        messages.info(request, "Probing the endpoints in the background; this page follows it.")
    return redirect("devices:endpoint_probes")


@require_POST
def probe_target_create(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(TARGET_PERMISSION):
        raise PermissionDenied("Only Exchange admins may add URLs to probe.")
    form = ProbeTargetForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=400)
    target = probe_target_add(
        url=form.cleaned_data["url"], note=form.cleaned_data["note"], actor=request.user
    )
    messages.success(request, f"Added {target.url}; the next probe run includes it.")
    return redirect("devices:endpoint_probes")


@require_POST
def probe_target_remove(request: HttpRequest, pk: int) -> HttpResponse:
    if not request.user.has_perm("devices.delete_probetarget"):
        raise PermissionDenied("Only Exchange admins may remove URLs to probe.")
    target = get_object_or_404(ProbeTarget, pk=pk)
    probe_target_delete(target=target)
    messages.success(request, f"Removed {target.url}; its probes are kept.")
    return redirect("devices:endpoint_probes")
