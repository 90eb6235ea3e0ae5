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


@OUTBOX
def test_a_report_in_the_outbox_shows_its_html_sandboxed_and_offers_its_csv(client, admin_user):
    from django.core.mail import EmailMultiAlternatives

    message = EmailMultiAlternatives(
        "Batch report",
        "See attached.",
        "exsync@localhost",
        ["ops@contoso.com"],
        reply_to=["helpdesk@contoso.com"],
        headers={"Message-ID": "<n-1@contoso.com>"},
    )
    message.attach_alternative('<p onclick="x()">Hi</p><script>alert(1)</script>', "text/html")
    message.attach("people.csv", "\ufeffName\r\n'=HYPERLINK(1)\r\n", "text/csv")
    message.send()

    kept = OutboxMessage.objects.get()
    assert kept.headers == {"Message-ID": "<n-1@contoso.com>", "Reply-To": "helpdesk@contoso.com"}
    client.force_login(admin_user)
    answer = client.get(reverse("outbox_message", args=[kept.pk]))
    assert "script-src 'none'" in answer["Content-Security-Policy"]
    page = answer.content.decode()
    assert 'sandbox srcdoc="&lt;p onclick=&quot;x()&quot;&gt;Hi&lt;/p&gt;&lt;script&gt;' in page
    assert "<script>alert(1)" not in page
    download = client.get(reverse("outbox_attachment", args=[kept.pk, 0]))
    assert download["Content-Disposition"] == 'attachment; filename="people.csv"'
    assert download.content.decode() == "\ufeffName\r\n'=HYPERLINK(1)\r\n"
    assert client.get(reverse("outbox_attachment", args=[kept.pk, 1])).status_code == 404


@OUTBOX
def test_helpdesk_cannot_download_outbox_attachments(client, helpdesk_user):
    from django.core.mail import EmailMessage

    message = EmailMessage("Report", "x", "exsync@localhost", ["ops@contoso.com"])
    message.attach("people.csv", "Name\r\n", "text/csv")
    message.send()
    client.force_login(helpdesk_user)

    answer = client.get(reverse("outbox_attachment", args=[OutboxMessage.objects.get().pk, 0]))
    assert answer.status_code == 403
