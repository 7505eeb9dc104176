"""The agent timeline written from plain dicts is byte for byte what the DRF serializers wrote."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from partners import services as partner_services
from partners.models import Partner
from tests.factories import PartnerFactory, ShipmentFactory
from tracking import services
from tracking.models import TrackingEvent
from tracking.serializers import TimelineSerializer, timeline_document

pytestmark = pytest.mark.django_db(transaction=True)

MORNING = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def post(client, body) -> None:
    response = client.post("/api/partner/v1/events", body, format="json")
    assert response.status_code == 202, response.content


@pytest.fixture
def rich_timeline(partner_client):
    """Every kind of entry: a hand-off, flags, a location, an ETA, a proof, a note by Baton itself."""
    fleet = PartnerFactory(slug="fleet", name="Fleet")
    gig = PartnerFactory(slug="gig", name="Gig Co")
    stranger = PartnerFactory(slug="stranger")
    shipment = ShipmentFactory(reference="ORD-RICH")
    partner_services.assign_shipment(shipment, partner=fleet, partner_reference="VAN-1", started_at=MORNING)
    client = partner_client(fleet)
    post(client, {"reference": "VAN-1", "status": "picked_up", "occurred_at": MORNING.isoformat()})
    post(
        client,
        {
            "reference": "VAN-1",
            "kind": "location",
            "location": {"lat": 51.5, "lng": -0.12},
            "eta": (MORNING + timedelta(hours=3)).isoformat(),
            "occurred_at": (MORNING + timedelta(minutes=5)).isoformat(),
        },
    )
    response = client.post(
        "/api/partner/v1/handoffs",
        {
            "reference": "VAN-1",
            "to_partner": "gig",
            "to_reference": "G-1",
            "occurred_at": (MORNING + timedelta(minutes=10)).isoformat(),
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    partner_services.confirm_handoff(Partner.objects.get(slug="gig"), reference="G-1")
    # The former holder speaks after the hand-off (flagged), the new one delivers with proof.
    post(
        client,
        {
            "reference": "VAN-1",
            "status": "delivered",
            "occurred_at": (MORNING + timedelta(minutes=20)).isoformat(),
        },
    )
    post(
        partner_client(gig),
        {
            "reference": "G-1",
            "status": "delivered",
            "occurred_at": (MORNING + timedelta(minutes=30)).isoformat(),
            "location": {"lat": 51.5034, "lng": -0.1276},
            "proof": {"signed_by": "A. Customer"},
        },
    )
    TrackingEvent.objects.create(
        shipment=shipment,
        kind="note",
        note="Customer called",
        occurred_at=timezone.now(),
        received_at=timezone.now(),
        dedupe_key="note-1",
    )
    services.reconcile_shipment(shipment)
    assert stranger.pk
    return shipment


def drf_document(shipment) -> dict:
    """What the view returned before: DRF's ModelSerializer over model instances."""
    entries = list(TrackingEvent.objects.filter(shipment=shipment).with_sources())
    chain = services.custody_chain(shipment, events=entries)
    data = {
        "reference": shipment.reference,
        "status": shipment.status,
        "reason": shipment.reason,
        "flags": shipment.all_flags,
        "custody_chain": chain,
        "entries": entries,
    }
    return json.loads(json.dumps(TimelineSerializer(data).data))


def test_the_plain_timeline_document_equals_the_drf_serializers_output(rich_timeline, agent_client):
    shipment = rich_timeline
    shipment.refresh_from_db()
    kinds = set(shipment.events.values_list("kind", flat=True))
    assert {"status", "location", "handoff", "note"} <= kinds
    assert any(e.flags for e in shipment.events.all())

    served = agent_client.get(f"/api/v1/shipments/{shipment.reference}/timeline").json()

    assert served == drf_document(shipment)
    assert any(entry["source"]["partner"] is None for entry in served["entries"])  # Baton's own note
    assert any(entry["location"] for entry in served["entries"])


def test_the_plain_document_writes_times_in_the_current_time_zone_like_drf(rich_timeline, settings):
    shipment = rich_timeline
    rows = list(TrackingEvent.objects.filter(shipment=shipment).timeline_rows())
    chain = services.custody_chain(shipment, last_heard=services.last_heard_by_partner(rows))
    for zone in ("UTC", "Europe/London", "America/New_York"):
        settings.TIME_ZONE = zone
        with timezone.override(zone):
            plain = json.loads(json.dumps(timeline_document(shipment, flags=[], chain=chain, rows=rows)))
            assert plain["entries"] == drf_document(shipment)["entries"]


def test_the_timeline_costs_the_same_queries_for_1_or_50_entries(rich_timeline, agent_client):
    shipment = rich_timeline
    url = f"/api/v1/shipments/{shipment.reference}/timeline"
    few: list[str] = []
    with connection.execute_wrapper(lambda execute, sql, *args: few.append(sql) or execute(sql, *args)):
        agent_client.get(url)
    TrackingEvent.objects.bulk_create(
        TrackingEvent(
            shipment=shipment,
            partner=shipment.current_custody.partner,
            kind="location",
            latitude=51.5,
            longitude=-0.1,
            occurred_at=MORNING + timedelta(minutes=40 + n),
            received_at=MORNING + timedelta(minutes=40 + n),
            dedupe_key=f"loc-{n}",
        )
        for n in range(50)
    )
    many: list[str] = []
    with connection.execute_wrapper(lambda execute, sql, *args: many.append(sql) or execute(sql, *args)):
        response = agent_client.get(url)

    assert len(response.json()["entries"]) >= 50
    assert 0 < len(few) == len(many) <= 5
