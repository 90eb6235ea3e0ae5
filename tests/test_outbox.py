"""Without SMTP, sent e-mail is kept in the database outbox and shown in the UI."""

import pytest
from django.core import mail
from django.core.mail import BadHeaderError
from django.test import override_settings
from django.urls import reverse

from migrations_plan.models import OutboxMessage

pytestmark = pytest.mark.django_db
OUTBOX = override_settings(EMAIL_BACKEND="migrations_plan.outbox.DatabaseEmailBackend")


@OUTBOX
def test_sent_mail_lands_in_the_outbox_and_on_its_page(client, admin_user):
    mail.send_mail(
        "Your phone and the move", "Nothing to do.", "exsync@localhost", ["kim@contoso.com"]
    )

    message = OutboxMessage.objects.get()
    assert (message.to, message.subject) == ("kim@contoso.com", "Your phone and the move")
    client.force_login(admin_user)
    page = client.get(reverse("outbox_message", args=[message.pk]))
    assert b"Nothing to do." in page.content


@OUTBOX
def test_a_subject_with_a_newline_is_refused_not_stored():
    with pytest.raises((BadHeaderError, ValueError)):
        mail.send_mail("Hi\nBcc: victim@evil.test", "x", "exsync@localhost", ["kim@contoso.com"])
    assert not OutboxMessage.objects.exists()
