import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import CustodyFactory, ShipmentFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def out_for_delivery(custody, partner_client):
    shipment = custody.shipment
    shipment.customer_name = "Grace Hopper"
    shipment.address = "221B Baker Street, London"
    shipment.postcode = "NW1 6XE"
    shipment.save()
    client = partner_client(custody.partner)
    client.post(
        "/api/partner/v1/events",
        {
            "events": [
                {
                    "reference": "SWIFT-77",
                    "status": "out_for_delivery",
                    "occurred_at": "2026-11-23T08:00:00Z",
                    "note": "Driver Bob Smithson +447700900999",
                },
                {
                    "reference": "SWIFT-77",
                    "kind": "location",
                    "location": {"lat": 51.52371, "lng": -0.15851},
                    "occurred_at": "2026-11-23T08:05:00Z",
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
    assert body["courier_location"] == {"lat": 51.5237, "lng": -0.1585}
    text = response.content.decode()
    for private in ("Smithson", "447700900999", "Baker Street", "221B", "NW1 6XE", "Grace", "SWIFT-77"):
        assert private not in text


def test_customer_page_shows_progress_without_private_data(client, out_for_delivery):
    response = client.get(f"/t/{out_for_delivery.token}")

    assert response.status_code == 200
    text = response.content.decode()
    assert "Out for delivery" in text
    for private in ("Smithson", "447700900999", "Baker Street", "NW1 6XE", "SWIFT-77", "http://", "https://"):
        assert private not in text


def test_courier_position_is_hidden_once_delivered(client, out_for_delivery, partner_client, custody):
    partner_client(custody.partner).post(
        "/api/partner/v1/events",
        {"reference": "SWIFT-77", "status": "delivered", "occurred_at": "2026-11-23T08:10:00Z"},
        format="json",
    )

    body = client.get(f"/api/public/v1/track/{out_for_delivery.token}").json()

    assert body["status"] == "delivered"
    assert body["courier_location"] is None
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
                    "occurred_at": f"2026-11-23T08:{10 + i}:00Z",
                }
                for i in range(20)
            ]
        },
        format="json",
    )
    with CaptureQueriesContext(connection) as after:
        client.get(f"/api/public/v1/track/{out_for_delivery.token}")

    assert len(after) == len(before) <= 3
