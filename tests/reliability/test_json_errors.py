"""Every API route answers in the JSON error shape: the client's mistakes 4xx, a database outage 503."""

import json

import pytest
from django.db import IntegrityError, OperationalError
from django.test import Client

from partners import services
from partners.models import Partner
from tests.factories import ShipmentFactory

pytestmark = pytest.mark.django_db

EVENTS_URL = "/api/partner/v1/events"


def assert_json_error(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert {"error", "message"} <= set(body)
    assert "Traceback" not in response.content.decode()
    return body


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000 + b"]" * 100_000, b'{"reference": ' + b"9" * 5000 + b"}"],
    ids=["deeply-nested", "huge-integer"],
)
def test_pathological_json_to_the_partner_api_is_a_400(custody, partner_client, body):
    response = partner_client(custody.partner).post(EVENTS_URL, data=body, content_type="application/json")

    assert_json_error(response, 400)


def test_deeply_nested_json_to_the_agent_api_is_a_400(agent_client):
    response = agent_client.post("/api/v1/shipments", data=b"[" * 100_000, content_type="application/json")

    assert_json_error(response, 400)


def test_a_csv_field_over_the_csv_limit_is_a_400(custody, partner_client):
    csv_body = (
        "reference,status,occurred_at,note\nSWIFT-77,in_transit,2026-11-23T09:00:00Z,"
        + '"'
        + "x" * 140_000
        + '"\n'
    )

    response = partner_client(custody.partner).post(
        "/api/partner/v1/uploads", data=csv_body.encode(), content_type="text/csv"
    )

    assert_json_error(response, 400)


def test_a_multipart_upload_with_too_many_fields_is_a_400(custody, partner_client):
    fields = {f"f{n}": "x" for n in range(1100)}

    response = partner_client(custody.partner).post("/api/partner/v1/uploads", data=fields)

    assert_json_error(response, 400)


def test_an_integrity_error_is_a_409(agent_client, monkeypatch, partner):
    ShipmentFactory(reference="ORD-INT")

    def collide(*args, **kwargs):
        raise IntegrityError("duplicate key value violates unique constraint")

    monkeypatch.setattr(services, "assign_shipment", collide)
    response = agent_client.post(
        "/api/v1/shipments/ORD-INT/assignments",
        {"partner": partner.slug, "partner_reference": "R-1"},
        format="json",
    )

    body = assert_json_error(response, 409)
    assert "duplicate key" not in json.dumps(body)


def test_a_database_outage_is_a_503_with_retry_after(custody, partner_client, monkeypatch):
    def down(*args, **kwargs):
        raise OperationalError("connection to server at 127.0.0.1, port 5432 failed: Connection refused")

    monkeypatch.setattr(Partner, "for_api_key", down)
    response = partner_client(custody.partner).post(EVENTS_URL, data=b"{}", content_type="application/json")

    body = assert_json_error(response, 503)
    assert response["Retry-After"] == "30"
    assert "5432" not in json.dumps(body)


def test_an_error_outside_the_api_views_is_still_json(custody, monkeypatch):
    from hub import middleware

    def down(self, request):
        raise OperationalError("could not connect")

    client = Client(raise_request_exception=False)
    monkeypatch.setattr(middleware.RequestObservabilityMiddleware, "__call__", down)
    response = client.get("/api/v1/shipments")

    assert_json_error(response, 503)


def test_a_nul_character_in_a_query_parameter_is_a_400_not_a_database_error(agent_client):
    response = agent_client.get("/api/v1/cases?owner=%00x")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_query"


def test_a_nul_character_in_a_json_value_is_a_400_not_a_server_error(partner_client, custody):
    body = {"reference": "SWIFT-77", "to_partner": "x\u0000y", "to_reference": "N-1"}

    response = partner_client(custody.partner).post("/api/partner/v1/handoffs", body, format="json")

    assert response.status_code in (400, 404)
    assert "error" in response.json()
