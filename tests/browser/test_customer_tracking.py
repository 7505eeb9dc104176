"""A customer opens the link, subscribes, leaves instructions, sees "running late", unlocks proof."""

import os
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

from contactcentre.models import Subscription
from tests.browser.conftest import PHONE, assert_accessible
from tests.factories import CustodyFactory, PartnerFactory, ShipmentFactory
from tracking.models import Activity, TrackingEvent

pytestmark = pytest.mark.django_db(transaction=True)
SHOTS = os.environ.get("BATON_SCREENSHOTS", "")


def shot(page, name):
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)


def fits(page, width):
    assert page.evaluate("document.documentElement.scrollWidth") <= width


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()


@pytest.fixture
def late_delivery(db):
    now = timezone.now()
    shipment = ShipmentFactory(
        reference="ORD-4242",
        postcode="SW1A 2AA",
        promised_from=now - timedelta(hours=3),
        promised_until=now - timedelta(minutes=30),
        eta_earliest=now + timedelta(minutes=20),
        eta_latest=now + timedelta(minutes=70),
        eta_source="baton",
        status="out_for_delivery",
        status_at=now - timedelta(hours=1),
        last_event_at=now - timedelta(minutes=5),
        alerts=["eta_passed"],
    )
    fleet = PartnerFactory(name="Acme Fleet")
    swift = PartnerFactory(name="Swift Couriers", ops_email="ops@swift.example")
    first = CustodyFactory(
        shipment=shipment,
        partner=fleet,
        started_at=now - timedelta(hours=4),
        ended_at=now - timedelta(hours=2),
    )
    custody = CustodyFactory(
        shipment=shipment, partner=swift, started_at=now - timedelta(hours=2), handed_off_by=first
    )
    shipment.current_custody = custody
    shipment.save()
    TrackingEvent.objects.create(
        shipment=shipment,
        partner=swift,
        custody=custody,
        kind="location",
        occurred_at=now - timedelta(minutes=3),
        received_at=now - timedelta(minutes=3),
        latitude=51.5070,
        longitude=-0.1300,
        dedupe_key="loc-1",
        sequence=2,
    )
    TrackingEvent.objects.create(
        shipment=shipment,
        partner=swift,
        custody=custody,
        kind="status",
        status="out_for_delivery",
        occurred_at=now - timedelta(hours=1),
        received_at=now - timedelta(hours=1),
        dedupe_key="ofd-1",
        sequence=1,
    )
    return shipment


@pytest.mark.parametrize("device", ["phone", "desktop"])
def test_customer_follows_a_late_delivery_subscribes_and_leaves_instructions(
    device, request, live_server, late_delivery
):
    context = request.getfixturevalue(device)
    width = 390 if device == "phone" else 1280
    page = context.new_page()
    page.goto(f"{live_server.url}/t/{late_delivery.token}")

    assert page.get_by_role("heading", level=1).inner_text() == "Out for delivery"
    assert page.get_by_text("Running late: now expected between").is_visible()
    assert page.get_by_text("With our delivery partner Swift Couriers since").is_visible()
    assert page.get_by_role("img", name="Your courier is about").is_visible()
    assert "51.50" not in page.content()
    fits(page, width)
    assert_accessible(page)
    shot(page, f"{device}-1-late")

    page.get_by_label("E-mail address").fill("grace@example.com")
    page.get_by_role("button", name="Send me updates").click()
    assert page.get_by_role("status").get_by_text("We will send you an update").is_visible()
    assert Subscription.objects.get().address == "grace@example.com"
    assert Subscription.objects.get().time_zone  # filled by the page's script from the browser

    page.get_by_text("Leave delivery instructions").click()
    page.get_by_label("Safe place").fill("Behind the <b>green</b> bin")
    page.get_by_label("Access or gate code").fill("1234")
    page.get_by_role("button", name="Send instructions").click()
    assert page.get_by_text("Your instructions are on their way").is_visible()
    assert page.get_by_text("Received by Swift Couriers.").is_visible()
    assert page.get_by_text("safe place: Behind the <b>green</b> bin").is_visible()
    assert Activity.objects.get(kind="instruction").outcome == "sent"
    fits(page, width)
    assert_accessible(page)
    shot(page, f"{device}-2-after-instructions")


@pytest.mark.parametrize("device", ["phone", "desktop"])
def test_customer_fails_the_second_factor_then_sees_the_proof(device, request, live_server, late_delivery):
    shipment = late_delivery
    shipment.status, shipment.alerts = "delivered", []
    shipment.proof = {"photo_urls": ["https://img.example.com/p/1.jpg"], "recipient_name": "Grace Hopper"}
    shipment.save()
    context = request.getfixturevalue(device)
    page = context.new_page()
    page.goto(f"{live_server.url}/t/{shipment.token}")
    assert page.get_by_role("heading", level=1).inner_text() == "Delivered"
    assert page.get_by_role("link", name="Delivery photo 1").count() == 0

    page.get_by_label("Order reference").fill("ORD-4242")
    page.get_by_label("Delivery postcode").fill("E1 6AN")
    page.get_by_role("button", name="Show proof of delivery").click()
    assert page.get_by_text("do not match this delivery").is_visible()
    assert page.get_by_role("link", name="Delivery photo 1").count() == 0
    assert_accessible(page)
    shot(page, f"{device}-3-wrong-postcode")

    page.get_by_label("Order reference").fill("ord-4242")
    page.get_by_label("Delivery postcode").fill("sw1a2aa")
    page.get_by_role("button", name="Show proof of delivery").click()
    assert page.get_by_role("link", name="Delivery photo 1").is_visible()
    assert page.get_by_text("Received by Grace").is_visible()
    assert "Hopper" not in page.content()
    fits(page, 390 if device == "phone" else 1280)
    assert_accessible(page)
    shot(page, f"{device}-4-proof")


def test_lookup_page_finds_the_delivery(phone, live_server, late_delivery):
    page = phone.new_page()
    page.goto(f"{live_server.url}/track/")
    assert_accessible(page)
    page.get_by_label("Order reference").fill("ORD-4242")
    page.get_by_label("Delivery postcode").fill("SW1A 2AA")
    page.get_by_role("button", name="Find my delivery").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Out for delivery"
    fits(page, 390)
    shot(page, "phone-5-lookup")


def test_page_in_french(browser, live_server, late_delivery):
    context = browser.new_context(viewport=PHONE, bypass_csp=True, locale="fr-FR")
    page = context.new_page()
    page.goto(f"{live_server.url}/t/{late_delivery.token}")
    assert page.get_by_role("heading", level=1).inner_text() == "En cours de livraison"
    assert page.get_by_text("En retard : prévue maintenant entre").is_visible()
    assert_accessible(page)
    shot(page, "phone-6-french")
    context.close()
