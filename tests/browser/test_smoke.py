"""The browser harness works: a customer's tracking page at phone width passes axe-core."""

import pytest

from tests.browser.conftest import assert_accessible
from tests.factories import ShipmentFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_tracking_page_opens_at_phone_width_and_passes_axe(phone, live_server):
    shipment = ShipmentFactory()
    page = phone.new_page()

    page.goto(f"{live_server.url}/t/{shipment.token}")

    assert page.get_by_role("heading", level=1).is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert_accessible(page)
