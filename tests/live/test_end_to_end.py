"""The whole path on the production stack: HTTP in, a real Celery worker, the agent and customer views out."""

import pytest

from tests.clock import at
from tests.conftest import wait_for
from tests.factories import CustodyFactory, PartnerFactory, ShipmentFactory
from tracking.models import Shipment

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]


def test_partner_events_reach_the_agent_timeline_and_customer_page(
    live_worker, live_server, partner_client, agent_client
):
    import requests

    partner = PartnerFactory(slug="zoom-gig", name="Zoom Gig")
    shipment = ShipmentFactory(reference="E2E-1", postcode="N1 0PQ", address="14 Upper Street, London")
    CustodyFactory(partner=partner, shipment=shipment, partner_reference="ZG-1")
    headers = {"Authorization": f"Bearer {partner.api_key}"}
    events = [
        {"reference": "ZG-1", "event_id": "e1", "status": "picked_up", "occurred_at": at(0)},
        {
            "reference": "ZG-1",
            "event_id": "e2",
            "status": "out_for_delivery",
            "occurred_at": at(60),
        },
    ]

    first = requests.post(
        f"{live_server.url}/api/partner/v1/events", json={"events": events}, headers=headers, timeout=10
    )
    again = requests.post(
        f"{live_server.url}/api/partner/v1/events", json=events[1], headers=headers, timeout=10
    )

    assert (first.status_code, again.status_code) == (202, 202)
    assert wait_for(lambda: Shipment.objects.get(pk=shipment.pk).status == "out_for_delivery")
    timeline = agent_client.get("/api/v1/shipments/E2E-1/timeline").json()
    assert [(e["status"], e["source"]["partner"]) for e in timeline["entries"]] == [
        ("picked_up", "zoom-gig"),
        ("out_for_delivery", "zoom-gig"),
    ]
    page = requests.get(f"{live_server.url}/t/{shipment.token}", timeout=10)
    assert page.status_code == 200
    assert "Out for delivery" in page.text
    assert "Upper Street" not in page.text
    public = requests.get(f"{live_server.url}/api/public/v1/track/{shipment.token}", timeout=10).json()
    assert [s["status"] for s in public["steps"]] == ["picked_up", "out_for_delivery"]
