"""A helpdesk agent takes a call in a real browser: search the caller from the dashboard's top
bar, open their page and read the steps for their phone. Drives Debian's Chromium through
Playwright, like test_browser_flow.py."""

from __future__ import annotations

import importlib
import uuid

import pytest
from django.apps import apps as django_apps

from migrations_plan.models import BatchState, Explanation, Prediction
from tests.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.factories import (
    BatchMailboxFactory,
    ExchangeServerFactory,
    MailboxFactory,
    MobileDeviceFactory,
    MoveBatchFactory,
    PartnershipFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SEED = importlib.import_module("helpdesk.migrations.0001_initial")


def test_helpdesk_finds_a_caller_and_reads_the_steps_for_their_iphone(
    live_server, transactional_db, helpdesk_user, monkeypatch
):
    # Playwright's sync API keeps an event loop running in this thread; the ORM calls the test
    # makes itself would otherwise raise SynchronousOnlyOperation.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect, sync_playwright

    SEED.seed(django_apps)  # a transactional test starts from a flushed database
    source = ExchangeServerFactory(name="EX2010A", ex2010=True)
    kim = MailboxFactory(
        display_name="Kim Jensen",
        alias="kjensen",
        primary_smtp_address="kim.jensen@contoso.com",
        server=source,
    )
    MailboxFactory(display_name="Kim Berg", primary_smtp_address="kim.berg@contoso.com")
    member = BatchMailboxFactory(
        mailbox=kim,
        batch=MoveBatchFactory(name="Wave 1", state=BatchState.SCHEDULED),
        source_server=source,
    )
    phone = PartnershipFactory(
        mailbox=kim, device=MobileDeviceFactory(friendly_name="Kim's iPhone"), eas_version="14.1"
    )
    explanation = Explanation.objects.create(
        digest=uuid.uuid4().hex,
        outcome="repartner",
        possible=["repartner"],
        reasons=[
            {
                "rule": "M-2010-2016-XS",
                "outcome": "repartner",
                "text": "The phone does not follow the redirect.",
                "user_action": "Delete the Exchange account on the phone and add it again.",
                "admin_action": "Tell the users before the move.",
                "source": "eas-moves.md",
                "confidence": "S",
                "is_warning": False,
            }
        ],
        user_text="After the move, delete the Exchange account on this phone and add it again.",
        admin_text="Tell the users before the move.",
    )
    Prediction.objects.create(
        member=member, partnership=phone, outcome="repartner", explanation=explanation
    )
    ARTIFACTS.mkdir(exist_ok=True)
    title, body = SEED.SEED[("ios_mail", "recreate_account")]

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(10_000)
            failed = []  # any 4xx/5xx (a missing stylesheet, a server error) fails the test
            page.on(
                "response",
                lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None,
            )

            page.goto(f"{live_server.url}/accounts/login/")
            page.get_by_label("User name").fill(helpdesk_user.username)
            page.get_by_label("Password").fill("pw-for-tests")
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_role("button", name="Log out")).to_be_visible()

            page.goto(f"{live_server.url}/")
            box = page.locator('header form[role="search"] input[name="q"]')
            expect(box).to_be_visible()
            box.fill("Jensen")
            box.press("Enter")
            page.wait_for_url("**/people/?q=Jensen")

            results = page.get_by_role("table").filter(has_text="kim.jensen@contoso.com")
            expect(results.get_by_role("row").filter(has_text="Kim Berg")).to_have_count(0)
            results.get_by_role("link", name="Kim Jensen").click()

            expect(page.get_by_role("heading", name="Kim Jensen", level=1)).to_be_visible()
            card = page.get_by_role("article", name="Kim's iPhone")
            expect(card).to_contain_text("iPhone / iPad Mail")
            expect(card.locator(".verdict .badge")).to_have_text("Re-partner")
            expect(card).to_contain_text(
                "Tell the user: After the move, delete the Exchange account on this phone"
            )
            steps = card.get_by_role(
                "group", name="Instructions for iPhone / iPad Mail: Re-create the mail account"
            )
            expect(steps.get_by_role("heading", level=4)).to_contain_text(title)
            expect(steps).to_contain_text("Tap Add Account → Microsoft Exchange.")
            expect(steps).to_contain_text("Enter the e-mail address kim.jensen@contoso.com")
            assert steps.inner_text().count("\n") >= body.count("\n")  # one step a line
            expect(card).to_contain_text("What the admin must do: Tell the users before the move.")
            expect(card.locator("details")).not_to_have_attribute("open", "")
            expect(page.get_by_role("region", name="Move batches")).to_contain_text("Wave 1")
            expect(page.get_by_role("region", name="Notices")).to_contain_text("No notices yet.")

            page.screenshot(path=ARTIFACTS / "person.png", full_page=True)
            assert failed == []
        finally:
            browser.close()
