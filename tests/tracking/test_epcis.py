import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import jsonschema
import pytest
from django.utils import timezone

from hub import demo
from partners.services import assign_shipment, hand_off
from tests.factories import CustodyFactory, PartnerFactory, ShipmentFactory
from tracking import epcis, exports
from tracking.models import Shipment, TrackingEvent

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "epcis"
SCHEMA = json.loads((FIXTURES / "EPCIS-JSON-Schema.json").read_text())
VALIDATOR = jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
NS = epcis.Namespace(base="https://track.example.com/id", tz=ZoneInfo("Europe/London"))


def assert_valid(document):
    errors = sorted(VALIDATOR.iter_errors(document), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


def test_the_uri_format_is_really_checked():
    """Without a URI format checker installed the schema would accept anything as an identifier."""
    broken = epcis.document([], NS, created=datetime.now(UTC), document_id="not a uri")
    assert list(VALIDATOR.iter_errors(broken))


def at(minutes):
    return datetime(2026, 6, 1, 8, 0, tzinfo=UTC) + timedelta(minutes=minutes)


def facts():
    return epcis.ShipmentFacts(
        reference="ORD 1/7",
        merchant="acme",
        custody=[
            epcis.CustodyFact(1, "fleet", "F-1", at(0), at(30), None),
            epcis.CustodyFact(2, "gig", "G-9", at(30), None, 1),
        ],
        statuses=[
            epcis.StatusFact(10, "picked_up", "", "PICKED", at(10), at(11), "fleet", "F-1", None, None),
            epcis.StatusFact(
                11, "attempt_failed", "recipient_not_home", "FAIL", at(60), at(61), "gig", "G-9", 51.5, -0.1
            ),
            epcis.StatusFact(12, "exception", "damaged", "DMG", at(90), at(91), "gig", "G-9", None, None),
        ],
    )


def test_custody_changes_name_the_owner_and_the_holders_before_and_after():
    events = epcis.shipment_events(facts(), NS)
    first, handoff = (e for e in events if e["bizStep"] == "accepting")
    owner = "https://track.example.com/id/merchant/acme"
    assert first["sourceList"] == [
        {"type": "owning_party", "source": owner},
        {"type": "possessing_party", "source": owner},
    ]
    assert handoff["sourceList"][1] == {
        "type": "possessing_party",
        "source": "https://track.example.com/id/partner/fleet",
    }
    assert handoff["destinationList"] == [
        {"type": "owning_party", "destination": owner},
        {"type": "possessing_party", "destination": "https://track.example.com/id/partner/gig"},
    ]


def test_status_events_carry_cbv_steps_read_points_and_the_order():
    events = epcis.shipment_events(facts(), NS)
    assert [e["bizStep"] for e in events] == ["accepting", "departing", "accepting", "holding", "holding"]
    failed = events[3]
    assert failed["disposition"] == "in_progress"
    assert failed["readPoint"] == {"id": "geo:51.500000,-0.100000"}
    assert failed["bizTransactionList"] == [
        {"type": "po", "bizTransaction": "https://track.example.com/id/merchant/acme/order/ORD%201%2F7"},
        {"type": "bol", "bizTransaction": "https://track.example.com/id/partner/gig/job/G-9"},
    ]
    assert events[4]["disposition"] == "damaged"  # the reason overrides the status's disposition
    assert "readPoint" not in events[1]
    assert events[1]["eventTimeZoneOffset"] == "+01:00"  # London summer time
    assert events[1]["eventTime"] == "2026-06-01T08:10:00.000Z"


def test_event_ids_are_stable_and_distinct():
    one, two = epcis.shipment_events(facts(), NS), epcis.shipment_events(facts(), NS)
    assert [e["eventID"] for e in one] == [e["eventID"] for e in two]
    assert len({e["eventID"] for e in one}) == len(one)


def test_a_range_keeps_the_previous_holder_it_cuts_off():
    events = epcis.shipment_events(facts(), NS, since=at(20), until=at(70))
    assert [e["bizStep"] for e in events] == ["accepting", "holding"]
    assert events[0]["sourceList"][1]["source"].endswith("/partner/fleet")


def test_every_status_maps_to_the_cbv_vocabulary_and_validates():
    statuses = [
        epcis.StatusFact(i, status, "", "", at(i), at(i), "fleet", "F-1", None, None)
        for i, status in enumerate(epcis.STATUS_STEPS, start=1)
    ]
    document = epcis.document(
        epcis.shipment_events(epcis.ShipmentFacts("R", "m", [], statuses), NS),
        NS,
        created=at(0),
        document_id="urn:uuid:6f1c1c52-3f43-4a4e-9a41-8f7b8d0c2e16",
    )
    assert_valid(document)


def test_the_streamed_document_is_the_built_document():
    events = epcis.shipment_events(facts(), NS)
    built = epcis.document(events, NS, created=at(0), document_id="urn:uuid:1")
    streamed = json.loads(
        "".join(epcis.stream_document(iter(events), NS, created=at(0), document_id="urn:uuid:1"))
    )
    assert streamed == built
    assert json.loads("".join(epcis.stream_document(iter([]), NS, created=at(0), document_id="urn:uuid:1")))[
        "epcisBody"
    ] == {"eventList": []}


@pytest.mark.django_db
def test_every_demo_journey_exports_a_valid_epcis_document(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        demo.seed_day(shipments=60, seed=7)
    shipments = list(Shipment.objects.all())
    assert len(shipments) == 60
    kinds = set()
    for shipment in shipments:
        document = exports.shipment_document(shipment)
        assert_valid(document)
        events = document["epcisBody"]["eventList"]
        applied = TrackingEvent.objects.filter(shipment=shipment, kind="status", applied=True).count()
        custody = shipment.custody.count()
        assert len(events) == applied + custody
        kinds.update(
            e.get("baton:status", "hand-on" if e.get("baton:handedOn") else "custody") for e in events
        )
    # The demo's journeys (carrier, fleet, subcontracted, failed, redelivered, in transit) are all there.
    assert {"custody", "hand-on", "delivered", "attempt_failed", "out_for_delivery", "in_transit"} <= kinds


@pytest.mark.django_db
def test_the_shipment_endpoint_is_for_operations_only(operations_client, agent_client):
    shipment = ShipmentFactory(reference="ORD-9")
    partner = PartnerFactory(slug="fleet")
    assign_shipment(shipment, partner=partner, partner_reference="F-9", started_at=timezone.now())
    assert agent_client.get("/api/v1/shipments/ORD-9/epcis").status_code == 403
    response = operations_client.get("/api/v1/shipments/ORD-9/epcis")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/ld+json"
    document = json.loads(response.content)
    assert_valid(document)
    assert document["epcisBody"]["eventList"][0]["destinationList"][1]["destination"].endswith(
        "/partner/fleet"
    )
    assert operations_client.get("/api/v1/shipments/NOPE/epcis").status_code == 404


@pytest.mark.django_db
def test_the_bulk_export_streams_the_events_of_the_range(operations_client):
    now = timezone.now()
    fleet, gig = PartnerFactory(slug="fleet"), PartnerFactory(slug="gig")
    inside = ShipmentFactory(reference="IN-1")
    assign_shipment(inside, partner=fleet, partner_reference="F-1", started_at=now - timedelta(hours=5))
    hand_off(fleet, reference="F-1", to_partner=gig, to_reference="G-1", occurred_at=now - timedelta(hours=1))
    outside = ShipmentFactory(reference="OUT-1")
    CustodyFactory(
        shipment=outside, partner=fleet, partner_reference="F-2", started_at=now - timedelta(days=3)
    )
    start, end = (now - timedelta(hours=2)).isoformat(), now.isoformat()
    response = operations_client.get("/api/v1/epcis/events", {"from": start, "to": end})
    assert response.status_code == 200
    assert response.streaming
    document = json.loads(b"".join(response.streaming_content))
    assert_valid(document)
    events = document["epcisBody"]["eventList"]
    assert [e["epcList"] for e in events] == [["http://127.0.0.1:8000/id/shipment/IN-1"]]
    assert events[0]["sourceList"][1]["source"].endswith("/partner/fleet")  # held before the range


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({}, "from"),
        ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "to"),
        ({"from": "2026-01-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}, "to"),
        ({"from": "yesterday", "to": "2026-01-01T00:00:00Z"}, "from"),
        ({"from": "2026-01-01T00:00:00", "to": "2026-01-02T00:00:00Z"}, "from"),
        # Before the first instant UTC can hold: found by the schemathesis run (it was a 500).
        ({"from": "0001-01-01T00:00:00+00:01", "to": "0001-01-01T00:00:00Z"}, "from"),
        ({"from": "9999-12-31T00:00:00Z", "to": "9999-12-31T23:59:00-00:01"}, "to"),
    ],
)
def test_the_bulk_export_refuses_a_bad_range(operations_client, query, field):
    response = operations_client.get("/api/v1/epcis/events", query)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert field in body["fields"]


@pytest.mark.django_db
def test_the_bulk_export_is_for_operations_only(agent_client):
    query = {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}
    assert agent_client.get("/api/v1/epcis/events", query).status_code == 403
