import json
from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from django.utils.timezone import localtime

from tests.factories import CustodyFactory, PartnerFactory, ShipmentFactory
from tracking.models import Shipment, TrackingEvent, hash_token

pytestmark = pytest.mark.django_db(transaction=True)


def new_shipment(**overrides):
    return {
        "reference": "ORD-2001",
        "customer_name": "Ada Lovelace",
        "customer_email": "ada@example.com",
        "customer_phone": "+44 7700 900123",
        "address": "12 Baker Street, London",
        "postcode": "nw1 6xe",
        "latitude": 51.5237,
        "longitude": -0.1585,
        **overrides,
    }


def test_ops_creates_a_shipment_and_gets_the_tracking_link_once(agent_client):
    response = agent_client.post("/api/v1/shipments", new_shipment(), format="json")

    assert response.status_code == 201
    body = response.json()
    token = body["tracking_url"].rsplit("/", 1)[1]
    shipment = Shipment.objects.get(reference="ORD-2001")
    assert shipment.postcode == "NW1 6XE"
    assert shipment.tracking_token_hash == hash_token(token)
    assert token not in json.dumps(agent_client.get("/api/v1/shipments/ORD-2001").json())


def test_tracking_token_has_256_bits_and_only_its_hash_is_stored(db):
    shipment = ShipmentFactory()

    assert len(shipment.token) >= 43  # 32 random bytes, base64url
    assert shipment.token not in shipment.tracking_token_hash
    assert Shipment.objects.filter(tracking_token_hash=hash_token(shipment.token)).exists()


def test_duplicate_reference_is_a_400(agent_client):
    agent_client.post("/api/v1/shipments", new_shipment(), format="json")

    response = agent_client.post("/api/v1/shipments", new_shipment(), format="json")

    assert response.status_code == 400
    assert "reference" in response.json()["fields"]


def test_assignment_gives_the_shipment_to_a_partner(agent_client):
    PartnerFactory(slug="gig")
    agent_client.post("/api/v1/shipments", new_shipment(), format="json")

    response = agent_client.post(
        "/api/v1/shipments/ORD-2001/assignments",
        {"partner": "gig", "partner_reference": "G-1"},
        format="json",
    )

    assert response.status_code == 201
    detail = agent_client.get("/api/v1/shipments/ORD-2001").json()
    assert detail["current_partner"] == "gig"
    assert [link["partner_reference"] for link in detail["custody_chain"]] == ["G-1"]


def test_assignment_to_unknown_partner_is_a_400(agent_client):
    agent_client.post("/api/v1/shipments", new_shipment(), format="json")

    response = agent_client.post(
        "/api/v1/shipments/ORD-2001/assignments",
        {"partner": "ghost", "partner_reference": "G-1"},
        format="json",
    )

    assert response.status_code == 400
    assert "partner" in response.json()["fields"]


@pytest.mark.parametrize(
    "term",
    [
        "ORD-3003",
        "ord-3003",
        "SWIFT-9",
        "swift-9",
        "Swift-9",
        "sam@example.com",
        "SAM@EXAMPLE.COM",
        "07700 900555",
        "e1 6an",
        "E16AN",
        "e16an",
        " E1  6AN ",
    ],
)
def test_agent_finds_a_shipment_by_anything_the_caller_knows(agent_client, term):
    target = ShipmentFactory(
        reference="ORD-3003",
        customer_email="sam@example.com",
        customer_phone="+44 7700 900555",
        postcode="E1 6AN",
    )
    CustodyFactory(shipment=target, partner_reference="SWIFT-9")
    ShipmentFactory.create_batch(3)

    response = agent_client.get("/api/v1/shipments", {"search": term})

    assert response.status_code == 200
    assert [s["reference"] for s in response.json()["results"]] == ["ORD-3003"]


def test_a_postcode_stored_without_its_space_is_found_either_way(agent_client):
    ShipmentFactory(reference="ORD-N1", postcode="n10pq")
    legacy = ShipmentFactory(reference="ORD-LEGACY")
    Shipment.objects.filter(pk=legacy.pk).update(postcode="N10PQ")  # saved before the space came back

    found = {
        term: sorted(
            s["reference"] for s in agent_client.get("/api/v1/shipments", {"search": term}).json()["results"]
        )
        for term in ("N1 0PQ", "N10PQ", "n1 0pq")
    }

    assert found == {key: ["ORD-LEGACY", "ORD-N1"] for key in found}


def test_agent_api_requires_staff(client, db, django_user_model):
    assert client.get("/api/v1/shipments").status_code in (401, 403)
    client.force_login(django_user_model.objects.create_user("cust", password="pw"))
    assert client.get("/api/v1/shipments").status_code == 403


def test_unknown_shipment_is_a_json_404(agent_client):
    response = agent_client.get("/api/v1/shipments/NOPE/timeline")

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_timeline_shows_source_custodian_and_flags(agent_client, custody, partner_client):
    client = partner_client(custody.partner)
    client.post(
        "/api/partner/v1/events",
        {
            "reference": "SWIFT-77",
            "status": "picked_up",
            "occurred_at": (timezone.now() - timedelta(hours=1)).isoformat(),
            "event_id": "1",
        },
        format="json",
    )

    timeline = agent_client.get(f"/api/v1/shipments/{custody.shipment.reference}/timeline").json()

    [entry] = timeline["entries"]
    assert entry["status"] == "picked_up"
    assert entry["source"]["partner"] == custody.partner.slug
    assert entry["source"]["channel"] == "api"
    assert entry["custodian"]["partner"] == custody.partner.slug
    assert entry["flags"] == []
    assert timeline["custody_chain"][0]["last_heard_at"] is not None


def test_last_heard_means_the_same_in_the_list_the_detail_and_the_console(
    agent_client, custody, partner_client, client, django_user_model
):
    courier = partner_client(custody.partner)
    reported = timezone.now() - timedelta(hours=3)  # reported late: it happened three hours ago
    body = {"reference": "SWIFT-77", "status": "picked_up", "occurred_at": reported.isoformat()}
    assert courier.post("/api/partner/v1/events", body, format="json").status_code == 202
    reference = custody.shipment.reference

    [listed] = agent_client.get("/api/v1/shipments", {"search": reference}).json()["results"]
    [link] = agent_client.get(f"/api/v1/shipments/{reference}").json()["custody_chain"]
    client.force_login(django_user_model.objects.get(username="agent"))
    console = client.get("/console/find/", {"search": reference}).content.decode()

    received = TrackingEvent.objects.get().received_at
    assert listed["last_heard_at"] == link["last_heard_at"]
    assert datetime.fromisoformat(listed["last_heard_at"]) == received
    assert "Baton last received anything from the current holder about this job" in console
    assert localtime(received).strftime("%-d %b %H:%M") in console
    assert localtime(reported).strftime("%-d %b %H:%M") not in console


def test_a_limit_or_offset_past_what_the_database_holds_is_a_400_not_a_500(agent_client):
    for query in ("limit=4023040875765514595467264", "offset=99999999999999999999999"):
        response = agent_client.get(f"/api/v1/shipments?{query}")

        assert response.status_code == 400, query
        assert set(response.json()["fields"]) <= {"limit", "offset"}
