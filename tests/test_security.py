"""Read views refuse writes, the outbox is for Exchange admins, failed logins are throttled."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from devices.models import InventoryImport
from migrations_plan.models import OutboxMessage
from tests.factories import ExchangeServerFactory, MailboxFactory, MoveBatchFactory, UserFactory

pytestmark = pytest.mark.django_db

LOCKED = "Too many failed log-ins"


@pytest.fixture
def objects(db) -> dict[str, object]:
    """One row behind every read page that takes an argument."""
    group = uuid.uuid4()
    InventoryImport.objects.create(group=group, filename="devices.csv", sha256="0" * 64)
    message = OutboxMessage.objects.create(
        to="kim@contoso.com", subject="Your phone and the move", body="Nothing to do."
    )
    return {
        "server": ExchangeServerFactory().pk,
        "group": group,
        "batch": MoveBatchFactory().pk,
        "mailbox": MailboxFactory().pk,
        "message": message.pk,
    }


READ_PAGES = [
    ("dashboard", None),
    ("outbox", None),
    ("outbox_message", "message"),
    ("devices:server_list", None),
    ("devices:server_detail", "server"),
    ("devices:import_group", "group"),
    ("devices:organisation", None),
    ("migrations_plan:batch_list", None),
    ("migrations_plan:batch_detail", "batch"),
    ("helpdesk:search", None),
    ("helpdesk:person", "mailbox"),
    ("helpdesk:affected", None),
]


def _url(name: str, arg: str | None, objects: dict[str, object]) -> str:
    return reverse(name, args=[objects[arg]] if arg else [])


@pytest.mark.parametrize(("name", "arg"), READ_PAGES)
def test_read_pages_answer_a_post_with_405(client, admin_user, objects, name, arg):
    client.force_login(admin_user)
    url = _url(name, arg, objects)

    response = client.post(url, {"anything": "1"})

    assert response.status_code == 405, f"POST {url}"
    assert response["Allow"] == "GET, HEAD"


@pytest.mark.parametrize(("name", "arg"), READ_PAGES[:9])
def test_read_pages_still_answer_get_and_head(client, admin_user, objects, name, arg):
    client.force_login(admin_user)
    url = _url(name, arg, objects)
    assert client.get(url).status_code == 200
    assert client.head(url).status_code == 200


@pytest.mark.parametrize("name", ["outbox", "outbox_message"])
def test_helpdesk_may_not_read_the_outbox(client, helpdesk_user, objects, name):
    client.force_login(helpdesk_user)

    response = client.get(_url(name, "message" if name == "outbox_message" else None, objects))

    assert response.status_code == 403
    assert b"for Exchange admins" in response.content
    assert b"Your phone and the move" not in response.content


def test_exchange_admins_read_the_outbox(client, admin_user, objects):
    client.force_login(admin_user)
    assert b"Your phone and the move" in client.get(reverse("outbox")).content
    message = client.get(reverse("outbox_message", args=[objects["message"]]))
    assert b"Nothing to do." in message.content


def test_only_exchange_admins_see_the_outbox_link(client, admin_user, helpdesk_user):
    outbox = f'href="{reverse("outbox")}"'.encode()
    client.force_login(helpdesk_user)
    assert outbox not in client.get(reverse("dashboard")).content
    client.force_login(admin_user)
    assert outbox in client.get(reverse("dashboard")).content


def _log_in(client, username: str, password: str, address: str = "192.0.2.10"):
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address
    )


def test_five_wrong_passwords_lock_the_user_name_even_for_the_right_one(client, admin_user):
    for _ in range(4):
        assert _log_in(client, admin_user.username, "wrong").status_code == 200

    fifth = _log_in(client, admin_user.username, "wrong")
    right = _log_in(client, admin_user.username, "pw-for-tests")

    assert fifth.status_code == 429
    assert right.status_code == 429, "locked: the right password is refused too"
    assert LOCKED in right.content.decode()
    assert "locked for 15 minutes" in right.content.decode()
    assert '<form method="post"' in right.content.decode(), "the login page, not a bare text"
    assert "_auth_user_id" not in client.session


def test_a_locked_user_name_does_not_lock_another_user(client, admin_user, helpdesk_user):
    for _ in range(5):
        _log_in(client, admin_user.username, "wrong")

    other = _log_in(client, helpdesk_user.username, "pw-for-tests")

    assert other.status_code == 302
    assert client.session["_auth_user_id"] == str(helpdesk_user.pk)


def test_the_lock_is_per_address_too(client, admin_user):
    for _ in range(5):
        _log_in(client, admin_user.username, "wrong", address="192.0.2.10")

    elsewhere = _log_in(client, admin_user.username, "pw-for-tests", address="198.51.100.7")

    assert elsewhere.status_code == 302


def test_a_successful_login_forgets_earlier_failures(client):
    user = UserFactory(role="helpdesk")
    for _ in range(4):
        _log_in(client, user.username, "wrong")
    assert _log_in(client, user.username, "pw-for-tests").status_code == 302
    client.logout()

    for _ in range(4):
        assert _log_in(client, user.username, "wrong").status_code == 200
    assert _log_in(client, user.username, "pw-for-tests").status_code == 302


def test_the_admin_login_is_throttled_too(client, admin_user):
    admin_user.is_staff = True
    admin_user.save()
    for _ in range(5):
        client.post(reverse("admin:login"), {"username": admin_user.username, "password": "x"})

    response = client.post(
        reverse("admin:login"), {"username": admin_user.username, "password": "pw-for-tests"}
    )

    assert response.status_code == 429
    assert LOCKED in response.content.decode()


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("203.0.113.9:5555", "203.0.113.9"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("not-an-address", "10.0.0.2"),
    ],
)
def test_the_forwarded_client_address_is_an_address_or_the_proxys(forwarded, expected):
    from types import SimpleNamespace

    from exsync.config import client_ip

    request = SimpleNamespace(
        META={"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": f"198.51.100.7, {forwarded}"}
    )
    assert client_ip(request, trusted_proxies=1) == expected


@pytest.mark.django_db
def test_helpdesk_holds_no_permission_on_the_outbox_or_the_notice_log(helpdesk_user):
    assert not helpdesk_user.has_perm("migrations_plan.view_outboxmessage")
    assert not helpdesk_user.has_perm("migrations_plan.view_notice")
    assert helpdesk_user.has_perm("migrations_plan.view_movebatch")
