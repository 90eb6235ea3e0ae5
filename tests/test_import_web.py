"""Admins upload exports in the browser; the import runs as a Celery task and is listed."""

from __future__ import annotations

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from devices.models import ImportState, InventoryImport, Mailbox
from tests import exports

pytestmark = pytest.mark.django_db


def uploads():
    return [
        SimpleUploadedFile("devices.csv", exports.DEVICES.encode("utf-8-sig"), "text/csv"),
        SimpleUploadedFile("mailboxes.csv", exports.MAILBOXES.encode("utf-8-sig"), "text/csv"),
        SimpleUploadedFile("servers.csv", exports.SERVERS.encode("utf-16"), "text/csv"),
    ]


def test_admin_uploads_exports_and_sees_the_result(
    client, admin_user, media_root, django_capture_on_commit_callbacks, settings
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from exsync.celery import app

    app.conf.task_always_eager = True
    client.force_login(admin_user)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                reverse("devices:import_list"), {"files": uploads(), "full_export": "on"}
            )
    finally:
        app.conf.task_always_eager = False

    assert response.status_code == 302
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert Mailbox.objects.count() == 3
    records = InventoryImport.objects.all()
    assert {r.state for r in records} == {ImportState.SUCCEEDED}
    assert all(r.created_by == admin_user and r.source == "web" for r in records)
    assert b"devices.csv" in page.content and b"Imported" in page.content


def test_helpdesk_cannot_upload(client, helpdesk_user, media_root):
    client.force_login(helpdesk_user)
    response = client.post(reverse("devices:import_list"), {"files": uploads()})
    assert response.status_code == 403
    assert not InventoryImport.objects.exists()
    assert b"<form" not in client.get(reverse("devices:import_list")).content.split(b"<main")[1]


def test_a_rejected_upload_shows_each_problem_with_its_line(
    client, admin_user, media_root, django_capture_on_commit_callbacks
):
    from exsync.celery import app

    app.conf.task_always_eager = True
    client.force_login(admin_user)
    bad = SimpleUploadedFile("servers.csv", b'"Name","Fqdn"\r\n"EX1","a","b"\r\n', "text/csv")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                reverse("devices:import_list"), {"files": [bad], "full_export": "on"}
            )
    finally:
        app.conf.task_always_eager = False
    page = client.get(response["Location"]).content.decode()
    assert "Rejected" in page and "servers.csv:2:" in page


def test_import_list_queries_do_not_grow_with_imports(
    client, helpdesk_user, django_assert_max_num_queries
):
    import uuid

    from tests.factories import UserFactory

    user = UserFactory()
    for n in range(30):
        InventoryImport.objects.create(
            group=uuid.uuid4(), filename=f"f{n}.csv", sha256="0" * 64, created_by=user
        )
    client.force_login(helpdesk_user)
    with django_assert_max_num_queries(8):
        assert client.get(reverse("devices:import_list")).status_code == 200


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_upload_is_imported_by_a_real_worker_through_redis(client, admin_user, worker_queue):
    client.force_login(admin_user)
    response = client.post(
        reverse("devices:import_list"), {"files": uploads(), "full_export": "on"}
    )
    assert response.status_code == 302

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not InventoryImport.objects.exclude(state=ImportState.SUCCEEDED).exists():
            break
        time.sleep(0.3)
    assert set(InventoryImport.objects.values_list("state", flat=True)) == {ImportState.SUCCEEDED}
    assert Mailbox.objects.count() == 3


def test_admin_records_iwa_and_exsetup_on_the_server_page_and_helpdesk_cannot(
    client, admin_user, helpdesk_user
):
    from devices.models import ExchangeServer
    from tests.factories import ExchangeServerFactory

    server = ExchangeServerFactory(name="EX03", generation="2003", iwa_enabled=None)
    url = reverse("devices:server_facts", args=[server.pk])

    client.force_login(helpdesk_user)
    assert client.post(url, {"iwa_enabled": "false", "exsetup_version": ""}).status_code == 403
    client.force_login(admin_user)
    bad = client.post(url, {"iwa_enabled": "false", "exsetup_version": "14.3"})
    assert bad.status_code == 400 and b"Expected a build like" in bad.content
    client.post(url, {"iwa_enabled": "false", "exsetup_version": "14.3.235.1"})

    server = ExchangeServer.objects.get(pk=server.pk)
    assert server.iwa_enabled is False and server.exsetup_version == "14.3.235.1"
    page = client.get(reverse("devices:server_detail", args=[server.pk])).content.decode()
    assert "disabled" in page
