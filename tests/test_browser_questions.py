"""An open question answered in a real browser: the batch page shows a device's range and the
fact that decides it, the admin follows "Answer it" to the namespaces, ticks the host name the
phones use, and after the re-plan the range has become an answer. Drives Debian's Chromium
through Playwright, like test_browser_flow.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from migrations_plan.models import Prediction
from migrations_plan.services import batch_create
from migrations_plan.tasks import batch_plan_task
from tests.browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from tests.factories import UserFactory
from tests.test_questions_page import coexistence

pytestmark = [pytest.mark.browser, pytest.mark.slow]

RANGE = "depending on which EAS host name the phones use"


def test_an_admin_answers_the_open_question_and_the_range_becomes_an_answer(
    live_server, transactional_db, monkeypatch
):
    # Playwright's sync API keeps an event loop running in this thread; the ORM calls the test
    # makes itself (factories, the checks) would otherwise raise SynchronousOnlyOperation.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect, sync_playwright

    sent = []  # plan tasks the saved fact queues; this test plays the worker
    monkeypatch.setattr(batch_plan_task, "delay", sent.append)

    _, ex2016, mailboxes = coexistence()
    batch = batch_create(
        name="Wave",
        target_server=ex2016,
        start_at=timezone.now() + timedelta(days=10),
        mailboxes=mailboxes,
        actor=None,
        via="cli",
        plan="now",
    )
    assert set(Prediction.objects.values_list("outcome", flat=True)) == {"unknown"}
    admin = UserFactory(role="admin")
    helpdesk = UserFactory(role="helpdesk")
    batch_url = f"{live_server.url}/batches/{batch.pk}/"
    organisation_url = f"{live_server.url}/inventory/organisation/"
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        failed = []  # any 4xx/5xx (a missing stylesheet, a broken link) fails the test

        def open_as(user):
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.set_default_timeout(10_000)
            page.on(
                "response",
                lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None,
            )
            page.goto(f"{live_server.url}/accounts/login/")
            page.get_by_label("User name").fill(user.username)
            page.get_by_label("Password").fill("pw-for-tests")
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_role("button", name="Log out")).to_be_visible()
            return page

        try:
            # -- the helpdesk reads the questions and the namespaces, and can change nothing --
            desk = open_as(helpdesk)
            desk.goto(batch_url)
            desk_questions = desk.get_by_role("region", name="Open questions")
            expect(desk_questions.get_by_role("row").nth(1)).to_contain_text(
                "Which EAS host name the phones use"
            )
            desk.goto(organisation_url)
            desk_namespaces = desk.get_by_role("table", name="EAS namespaces")
            for host in ("legacy.contoso.com", "mail.contoso.com"):
                expect(desk_namespaces.get_by_role("row").filter(has_text=host)).to_have_count(1)
            expect(desk_namespaces.get_by_role("link", name="Edit")).to_have_count(0)
            expect(desk.get_by_role("link", name="Edit")).to_have_count(0)
            expect(desk.get_by_role("link", name="Add a namespace")).to_have_count(0)
            expect(desk.locator("a[href*='/edit/'], a[href*='/add/']")).to_have_count(0)
            # The only button a helpdesk user gets on this page is the one to log out.
            expect(desk.get_by_role("button")).to_have_text(["Log out"])
            desk.context.close()

            # -- the admin: the range and the question that decides it --------------------
            page = open_as(admin)
            page.goto(batch_url)
            devices = page.get_by_role("region", name="People and their phones")
            device_rows = devices.locator("tr.phone")
            expect(device_rows).to_have_count(3)
            for n in range(3):
                row = device_rows.nth(n)
                expect(row.locator(".range")).to_contain_text("Could be")
                expect(row.locator(".range .badge")).to_have_text(["Unknown", "Continues"])
                expect(row.locator(".range")).to_contain_text(RANGE)
                expect(row).to_contain_text("IT is still checking")
            questions = page.get_by_role("region", name="Open questions")
            first = questions.get_by_role("row").nth(1)  # after the header row
            expect(first.get_by_role("cell").nth(0)).to_contain_text(
                "Which EAS host name the phones use"
            )
            expect(first.get_by_role("cell").nth(1)).to_have_text("3")
            page.screenshot(path=ARTIFACTS / "questions-before.png", full_page=True)

            # -- answer it: the namespaces, mail.contoso.com is the name the phones use ----
            first.get_by_role("link", name="Answer it").click()
            expect(page).to_have_url(f"{organisation_url}#namespaces")
            expect(page.get_by_role("heading", name="Namespaces", exact=True)).to_be_in_viewport()
            namespaces = page.get_by_role("table", name="EAS namespaces")
            namespaces.get_by_role("row").filter(has_text="mail.contoso.com").get_by_role(
                "link", name="Edit"
            ).click()
            expect(page.get_by_role("heading", name="Namespace mail.contoso.com")).to_be_visible()
            phones_use_it = page.get_by_label("Phones use it")
            expect(phones_use_it).not_to_be_checked()
            phones_use_it.check()
            page.get_by_role("button", name="Record").click()
            expect(page).to_have_url(f"{organisation_url}#namespaces")
            expect(page.get_by_role("status")).to_contain_text(
                "Recorded the facts of mail.contoso.com. Active batches are being planned again"
            )
            expect(
                namespaces.get_by_role("row").filter(has_text="mail.contoso.com")
            ).to_contain_text("yes")

            # -- the save queued a re-plan: play the worker, then read the batch again -----
            assert sent == [batch.pk]
            assert batch_plan_task(sent[0]).startswith("planned 3 devices")
            page.goto(batch_url)
            expect(page.locator(".plan-status")).to_contain_text("Planned at")
            expect(device_rows).to_have_count(3)
            for n in range(3):
                expect(device_rows.nth(n).locator(".badge").first).to_have_text("Continues")
            expect(devices.locator(".range")).to_have_count(0)
            expect(devices).not_to_contain_text(RANGE)
            expect(devices).not_to_contain_text("IT is still checking")
            decides = questions.locator("tbody tr td:nth-child(2)")
            if decides.count():
                expect(decides).to_have_text(["0"] * decides.count())
            else:
                expect(questions).to_contain_text("None: every prediction")
            expect(questions).not_to_contain_text("Which EAS host name the phones use")
            page.screenshot(path=ARTIFACTS / "questions-after.png", full_page=True)
            assert failed == []
        finally:
            browser.close()

    assert set(Prediction.objects.values_list("outcome", flat=True)) == {"continues"}
