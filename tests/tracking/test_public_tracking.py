from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import CustodyFactory, ShipmentFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def out_for_delivery(custody, partner_client):
    shipment = custody.shipment
    shipment.customer_name = "Grace Hopper"
    shipment.address = "221B Baker Street, London"
    shipment.postcode = "NW1 6XE"
    shipment.latitude, shipment.longitude = 51.5238, -0.1586
    shipment.save()
    client = partner_client(custody.partner)
    now = timezone.now()
    client.post(
        "/api/partner/v1/events",
        {
            "events": [
                {
                    "reference": "SWIFT-77",
                    "status": "out_for_delivery",
                    "occurred_at": (now - timedelta(minutes=20)).isoformat(),
                    "note": "Driver Bob Smithson +447700900999",
                },
                {
                    "reference": "SWIFT-77",
                    "kind": "location",
                    "location": {"lat": 51.52371, "lng": -0.15851},
                    "occurred_at": (now - timedelta(minutes=5)).isoformat(),
                },
            ]
        },
        format="json",
    )
    return shipment


def test_customer_json_shows_progress_without_private_data(client, out_for_delivery):
    response = client.get(f"/api/public/v1/track/{out_for_delivery.token}")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "out_for_delivery"
    assert body["postcode_district"] == "NW1"
    # Coordinates are never published: a distance (100 m steps) and a map offset instead.
    assert body["courier_location"] is None
    assert body["courier_nearby"]["distance_m"] == 100
    assert body["holder"]["name"] == "Swift Couriers"
    text = response.content.decode()
    for private in (
        "Smithson",
        "447700900999",
        "Baker Street",
        "221B",
        "NW1 6XE",
        "Grace",
        "SWIFT-77",
        "51.52",
        "-0.158",
    ):
        assert private not in text


def test_customer_page_shows_progress_without_private_data(client, out_for_delivery):
    response = client.get(f"/t/{out_for_delivery.token}")

    assert response.status_code == 200
    text = response.content.decode()
    assert "Out for delivery" in text
    for private in ("Smithson", "447700900999", "Baker Street", "NW1 6XE", "SWIFT-77", "51.52", "-0.158"):
        assert private not in text


def test_courier_position_is_hidden_once_delivered(client, out_for_delivery, partner_client, custody):
    partner_client(custody.partner).post(
        "/api/partner/v1/events",
        {"reference": "SWIFT-77", "status": "delivered", "occurred_at": timezone.now().isoformat()},
        format="json",
    )

    body = client.get(f"/api/public/v1/track/{out_for_delivery.token}").json()

    assert body["status"] == "delivered"
    assert body["courier_location"] is None
    assert body["courier_nearby"] is None
    assert body["eta"] is None


def test_a_token_shows_only_its_own_shipment(client, out_for_delivery):
    other = ShipmentFactory(reference="ORD-OTHER")
    CustodyFactory(shipment=other)

    body = client.get(f"/api/public/v1/track/{other.token}").json()

    assert body["reference"] == "ORD-OTHER"
    assert body["steps"] == []
    assert body["courier_location"] is None


@pytest.mark.parametrize("token", ["nope", "x" * 43, "x" * 500])
def test_unknown_token_is_a_404(client, db, token):
    assert client.get(f"/api/public/v1/track/{token}").status_code == 404
    assert client.get(f"/t/{token}").status_code == 404


def test_expired_token_is_a_404(client, db):
    from datetime import timedelta

    from django.utils import timezone

    shipment = ShipmentFactory(tracking_token_expires_at=timezone.now() - timedelta(days=1))
    shipment.tracking_token_expires_at = timezone.now() - timedelta(days=1)
    shipment.save()

    assert client.get(f"/api/public/v1/track/{shipment.token}").status_code == 404


def test_tracking_page_uses_a_constant_number_of_queries(client, out_for_delivery, partner_client, custody):
    with CaptureQueriesContext(connection) as before:
        client.get(f"/api/public/v1/track/{out_for_delivery.token}")
    partner_client(custody.partner).post(
        "/api/partner/v1/events",
        {
            "events": [
                {
                    "reference": "SWIFT-77",
                    "kind": "location",
                    "location": {"lat": 51.5, "lng": -0.1 - i / 100},
                    "occurred_at": (timezone.now() - timedelta(minutes=4, seconds=-i)).isoformat(),
                }
                for i in range(20)
            ]
        },
        format="json",
    )
    with CaptureQueriesContext(connection) as after:
        client.get(f"/api/public/v1/track/{out_for_delivery.token}")

    # The shipment by token, its events, its custody chain, the customer's requests.
    assert len(after) == len(before) <= 4
