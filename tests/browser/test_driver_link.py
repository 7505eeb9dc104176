"""A contractor with no system reports a job in a few taps on a phone, and the agent sees each step."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from PIL import Image

from partners.models import DriverLink
from partners.services import assign_shipment, driver_links
from tests.browser.conftest import PHONE, assert_accessible, log_in, new_context
from tests.factories import PartnerFactory, ShipmentFactory
from tracking.models import OutboundMessage

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def driver(browser):
    context = new_context(
        browser,
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        permissions=["geolocation"],
        geolocation={"latitude": 51.5034, "longitude": -0.1276},
    )
    yield context
    context.close()


@pytest.fixture
def job():
    van = PartnerFactory(
        slug="van-co", name="Van Co", sends_driver_links=True, driver_contact="+447700900123"
    )
    return assign_shipment(ShipmentFactory(reference="ORD-3001"), partner=van, partner_reference="VAN-9")


def token_of(job):
    body = OutboundMessage.objects.get(purpose="driver.link", shipment=job.shipment).body
    return re.search(r"/d/([\w-]+)", body).group(1)


def test_a_driver_reports_a_job_from_pickup_to_delivery_and_the_agent_sees_it(
    driver, desktop, live_server, job, tmp_path
):
    page = driver.new_page()
    page.goto(f"{live_server.url}/d/{token_of(job)}")
    assert_accessible(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    page.get_by_label("Share my location with each update").check()
    page.get_by_text("Your location is shared with each update.").wait_for()
    page.get_by_role("button", name="Picked up").click()
    page.get_by_role("status").get_by_text("Marked as picked up").wait_for()
    page.get_by_role("button", name="On the way").click()
    page.get_by_role("status").get_by_text("Marked as on the way").wait_for()

    photo = tmp_path / "doorstep.jpg"
    Image.new("RGB", (64, 48), "teal").save(photo, format="JPEG")
    page.get_by_text("Delivered: add proof").click()
    page.get_by_label("Photo of the delivery").set_input_files(str(photo))
    page.get_by_label("Received by (name)").fill("J. Bloggs")
    pad = page.get_by_role("img", name="Signature pad")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + 20)
    page.mouse.down()
    page.mouse.move(box["x"] + 120, box["y"] + 60, steps=5)
    page.mouse.up()
    page.wait_for_function("document.querySelector('input[name=signature]').files.length === 1")
    page.get_by_role("button", name="Delivered").click()
    page.get_by_role("status").get_by_text("Marked as delivered").wait_for()
    assert page.get_by_text("This job is finished").is_visible()
    assert_accessible(page)
    page.screenshot(path=str(tmp_path / "driver.png"), full_page=True)

    agent = get_user_model().objects.create_superuser("agent", "agent@example.com", "pw")
    log_in(desktop, live_server, agent)
    console = desktop.new_page()
    console.goto(f"{live_server.url}/console/shipments/ORD-3001/")
    rows = console.get_by_role("row").filter(has_text="Driver link")
    assert rows.count() >= 3
    for status in ("Picked up", "Out for delivery", "Delivered"):
        assert rows.filter(has_text=status).count() >= 1
    proof = job.shipment.events.get(status="delivered").proof
    assert proof["location"] == {"lat": 51.5034, "lng": -0.1276}
    assert {"photo", "signature", "signed_by"} <= set(proof)


def test_revoked_and_expired_links_are_refused_with_a_page(driver, live_server, job, settings):
    token = token_of(job)
    page = driver.new_page()

    driver_links.revoke_driver_links(DriverLink.objects.all())
    page.goto(f"{live_server.url}/d/{token}")
    assert page.get_by_role("heading", name="This link no longer works").is_visible()
    assert_accessible(page)

    DriverLink.objects.update(revoked_at=None, expires_at=timezone.now() - timedelta(seconds=1))
    page.goto(f"{live_server.url}/d/{token}")
    assert page.get_by_role("heading", name="This link has expired").is_visible()
