"""The console in a real browser: an agent's whole call, a supervisor's SLA queue, keyboard only, axe-core."""

import os
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from contactcentre import roles, services
from tests.browser.conftest import assert_accessible, log_in
from tests.factories import CustodyFactory, PartnerFactory, ShipmentFactory, give_role

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def user_with_role(django_user_model, username, role):
    user = django_user_model.objects.create_user(username, f"{username}@example.com", "correct horse")
    give_role(user, role)
    return user


@pytest.fixture
def caller_shipment(db):
    partner = PartnerFactory(slug="swift", name="Swift Couriers", ops_email="ops@swift.example")
    shipment = ShipmentFactory(
        reference="ORD-4242", customer_phone="+44 7700 900461", customer_name="Ann Caller"
    )
    shipment.current_custody = CustodyFactory(partner=partner, shipment=shipment, partner_reference="SW-42")
    shipment.alerts = ["stale_custodian"]
    shipment.save()
    return shipment


def test_an_agent_owns_a_call_from_login_to_resolution(
    desktop, live_server, django_user_model, caller_shipment
):
    user_with_role(django_user_model, "alice", roles.AGENT)
    page = desktop.new_page()

    page.goto(f"{live_server.url}/console/")
    expect(page.get_by_role("heading", name="Log in to Baton")).to_be_visible()
    assert_accessible(page)
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("correct horse")
    page.get_by_role("button", name="Log in").click()

    expect(page.get_by_role("heading", name="Queues", exact=True)).to_be_visible()
    assert_accessible(page)
    page.get_by_role("searchbox", name="Find a shipment").fill("07700 900461")
    page.get_by_role("button", name="Find").click()
    expect(page.get_by_role("heading", name="Shipments matching “07700 900461”")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("link", name="ORD-4242").click()

    expect(page.get_by_role("heading", name="Shipment ORD-4242")).to_be_visible()
    expect(page.get_by_text("Holder silent")).to_be_visible()
    assert_accessible(page)
    page.get_by_label("How they got in touch").select_option("phone")
    page.get_by_label("Contact reason").select_option("where_is_my_order")
    page.get_by_label("I own this case").uncheck()
    page.get_by_role("button", name="Open case").click()

    # Case ids are not reset between tests on PostgreSQL: match the case by its words, not its number.
    expect(page.get_by_role("heading", name=re.compile(r"^Case \d+: Where is my order$"))).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text(re.compile(r"Case \d+ opened\."))
    assert_accessible(page)
    page.get_by_role("button", name="Take ownership").click()
    expect(page.get_by_role("status")).to_contain_text("You own this case now.")
    expect(page.get_by_role("status")).to_be_focused()  # the form was sent in place (htmx); focus follows
    page.get_by_label("Note", exact=True).fill("Customer has been waiting in since 8am.")
    page.get_by_role("button", name="Add note").click()
    expect(page.get_by_text("Customer has been waiting in since 8am.")).to_be_visible()
    page.get_by_role("button", name="Chase the holder").click()
    expect(page.get_by_role("status")).to_contain_text("Chased Swift Couriers")

    timeline = page.get_by_role("table", name="Timeline, oldest first")
    expect(timeline.get_by_role("row").filter(has_text="Chased Swift Couriers")).to_contain_text("Sent")
    assert_accessible(page)
    page.get_by_label("Resolution").select_option(label="Redelivery booked")
    page.get_by_role("button", name="Resolve case").click()

    expect(page.get_by_role("status")).to_contain_text("Case resolved: redelivery booked.")
    expect(page.get_by_text("Resolved — Redelivery booked")).to_be_visible()
    history = page.get_by_role("list").filter(has_text="opened the case")
    for words in ["took ownership", "added a note", "Chased Swift Couriers", "resolved the case"]:
        expect(history).to_contain_text(words)


def test_a_supervisor_sees_the_case_past_its_sla(desktop, live_server, django_user_model, caller_shipment):
    agent = user_with_role(django_user_model, "alice", roles.AGENT)
    supervisor = user_with_role(django_user_model, "sam", roles.SUPERVISOR)
    case = services.open_case(
        caller_shipment,
        channel="email",
        reason="late",
        opened_by=agent,
        owner=agent,
        sla_due_at=timezone.now() - timedelta(hours=2),
    )
    log_in(desktop, live_server, supervisor)
    page = desktop.new_page()

    page.goto(f"{live_server.url}/console/?queue=past_sla")

    queue = page.get_by_role("link", name="Cases past their SLA")
    expect(queue).to_have_attribute("aria-current", "page")
    expect(queue).to_contain_text("1")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=f"Case {case.pk}"))
    expect(row).to_contain_text("Overdue since")
    expect(row).to_contain_text("alice")
    assert_accessible(page)


def test_the_queue_page_works_with_the_keyboard_alone(
    desktop, live_server, django_user_model, caller_shipment
):
    agent = user_with_role(django_user_model, "alice", roles.AGENT)
    case = services.open_case(caller_shipment, channel="phone", reason="late", opened_by=agent)
    log_in(desktop, live_server, agent)
    page = desktop.new_page()
    page.goto(f"{live_server.url}/console/")

    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()
    page.keyboard.press("Enter")
    target = page.get_by_role("link", name="Unassigned cases")
    for _ in range(30):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            break
    expect(target).to_be_focused()
    outline = target.evaluate("el => getComputedStyle(el).outlineStyle")
    assert outline != "none"
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Unassigned cases", level=2)).to_be_visible()
    expect(page).to_have_url(f"{live_server.url}/console/?queue=unassigned&partner=&area=&age=")
    expect(page.get_by_role("link", name="Unassigned cases")).to_be_focused()  # htmx kept the focus
    case_link = page.get_by_role("link", name=f"Case {case.pk}")
    for _ in range(30):
        page.keyboard.press("Tab")
        if case_link.evaluate("el => el === document.activeElement"):
            break
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=f"Case {case.pk}: Running late")).to_be_visible()


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_every_console_page_passes_axe_and_fits_the_screen(
    request, width, live_server, django_user_model, caller_shipment
):
    context = request.getfixturevalue(width)
    operator = user_with_role(django_user_model, "olly", roles.OPERATIONS)
    give_role(operator, roles.SUPERVISOR)
    case = services.open_case(
        caller_shipment, channel="phone", reason="late", opened_by=operator, owner=operator
    )
    services.chase_holder(caller_shipment, by_user=operator, case=case)
    resolved = services.open_case(caller_shipment, channel="chat", reason="other", opened_by=operator)
    services.resolve_case(resolved, resolution="informed", by=operator)
    page = context.new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    assert_accessible(page)
    log_in(context, live_server, operator)
    urls = [
        "/console/",
        "/console/?queue=unmatched",
        "/console/?queue=past_sla",
        "/console/?queue=escalated",
        "/console/find/?search=ORD-4242",
        "/console/shipments/ORD-4242/",
        f"/console/cases/{case.pk}/",
        f"/console/cases/{resolved.pk}/",
    ]
    for url in urls:
        page.goto(f"{live_server.url}{url}")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        assert_accessible(page)
        if width == "phone":
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, url
        if os.environ.get("SCREENSHOT_DIR"):  # to look at the pages by eye
            name = url.strip("/").replace("/", "_").replace("?", "_") or "console"
            page.screenshot(path=f"{os.environ['SCREENSHOT_DIR']}/{width}-{name}.png", full_page=True)


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_a_supervisor_sees_a_rules_escalation_and_what_baton_already_did(
    request, width, live_server, django_user_model, caller_shipment
):
    from contactcentre import proactive
    from partners.services.sweep import run_sweep
    from tracking.models import Shipment

    proactive.ensure_default_rules()
    silent = Shipment.objects.filter(pk=caller_shipment.pk)
    silent.update(alerts=[], last_heard_at=timezone.now() - timedelta(minutes=180))
    run_sweep()  # first silence: chased
    silent.update(alerts=[], last_heard_at=timezone.now() - timedelta(minutes=130))
    run_sweep()  # heard from since, silent again: chased again and escalated
    context = request.getfixturevalue(width)
    log_in(context, live_server, user_with_role(django_user_model, "sam", roles.SUPERVISOR))
    page = context.new_page()

    page.goto(f"{live_server.url}/console/?queue=escalated")

    row = page.get_by_role("row").filter(has_text="Escalated")
    expect(row).to_contain_text("Holder not reporting")
    expect(row).to_contain_text("Swift Couriers has gone silent again on this job")
    assert_accessible(page)
    row.get_by_role("link", name=re.compile(r"^Case \d+$")).click()
    expect(page.get_by_role("heading", name=re.compile(r"^Case \d+: Holder not reporting$"))).to_be_visible()
    page.goto(f"{live_server.url}/console/shipments/ORD-4242/")
    done = page.get_by_role("table", name="Actions taken by Baton's rules, newest first")
    expect(done.get_by_role("row").filter(has_text="Chase a silent holder")).to_have_count(2)
    escalation = done.get_by_role("row").filter(has_text="escalated to a supervisor")
    expect(escalation).to_contain_text("Escalate a holder silent a second time")
    assert_accessible(page)
    if width == "phone":
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    if os.environ.get("SCREENSHOT_DIR"):
        page.screenshot(path=f"{os.environ['SCREENSHOT_DIR']}/{width}-rules.png", full_page=True)
