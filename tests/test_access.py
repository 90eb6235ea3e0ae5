"""Nobody sees anything without logging in; the two roles get what they may."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from exsync.roles import can_schedule
from tests.factories import ExchangeServerFactory, PartnershipFactory

pytestmark = pytest.mark.django_db

PAGES = ["dashboard", "outbox", "devices:server_list"]


@pytest.mark.parametrize("name", PAGES)
def test_pages_send_anonymous_visitors_to_the_login_page(client, name):
    url = reverse(name)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


def test_server_page_needs_a_login_too(client):
    server = ExchangeServerFactory()
    response = client.get(reverse("devices:server_detail", args=[server.pk]))
    assert response.status_code == 302


def test_login_page_itself_is_public(client):
    assert client.get(reverse("login")).status_code == 200


@pytest.mark.parametrize("name", [p for p in PAGES if p != "outbox"])
def test_helpdesk_can_read_every_page(client, helpdesk_user, name):
    # The whole outbox is for Exchange admins (tests/test_security.py); helpdesk reads one
    # person's notices on that person's page.
    client.force_login(helpdesk_user)
    assert client.get(reverse(name)).status_code == 200


def test_exchange_admins_may_schedule_and_helpdesk_may_not(admin_user, helpdesk_user):
    assert can_schedule(admin_user)
    assert not can_schedule(helpdesk_user)
    assert helpdesk_user.has_perm("migrations_plan.view_movebatch")
    assert not helpdesk_user.has_perm("migrations_plan.change_movebatch")


def test_a_user_can_log_in_with_a_password(client, admin_user):
    response = client.post(
        reverse("login"), {"username": admin_user.username, "password": "pw-for-tests"}
    )
    assert response.status_code == 302
    assert client.get(reverse("dashboard")).status_code == 200


def test_dashboard_queries_do_not_grow_with_servers(client, helpdesk_user):
    client.force_login(helpdesk_user)
    ExchangeServerFactory()
    with CaptureQueriesContext(connection) as few:
        client.get(reverse("dashboard"))
    PartnershipFactory.create_batch(3)
    ExchangeServerFactory.create_batch(12)
    with CaptureQueriesContext(connection) as many:
        response = client.get(reverse("dashboard"))

    assert len(many) == len(few)
    assert response.content.count(b"/inventory/servers/") >= 15


def test_device_and_server_text_is_escaped(client, helpdesk_user):
    ExchangeServerFactory(name="<script>alert(1)</script>")
    client.force_login(helpdesk_user)
    body = client.get(reverse("devices:server_list")).content
    assert b"<script>alert(1)</script>" not in body
    assert b"&lt;script&gt;" in body


def test_a_signed_in_user_without_a_role_sees_nothing(client):
    from tests.factories import UserFactory

    client.force_login(UserFactory())
    response = client.get(reverse("dashboard"))
    assert response.status_code == 403
    assert b"no exsync role" in response.content


def test_there_is_no_self_service_password_reset(client):
    assert client.get("/accounts/password_reset/").status_code in (302, 404)
    client.post("/accounts/password_reset/", {"email": "admin@localhost"})
    from migrations_plan.models import OutboxMessage

    assert not OutboxMessage.objects.exists()
