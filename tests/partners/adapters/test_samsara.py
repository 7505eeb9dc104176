import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from partners.adapters.base import EventKind, InboundRequest, Reason, Status, VerificationError, hmac_digest
from partners.adapters.samsara import SamsaraAdapter

FIXTURES = Path(__file__).parents[2] / "fixtures" / "partners" / "samsara"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
SECRET = MANIFEST["auth"]["test_webhook_secret_base64"]
LONDON = ZoneInfo("Europe/London")
ADAPTER = SamsaraAdapter()


def sample(name: str) -> dict:
    entry = next(f for f in MANIFEST["files"] if f["file"] == name)
    return {
        "body": (FIXTURES / name).read_bytes(),
        "headers": {k.lower(): v for k, v in entry["headers"].items()},
    }


def signed(body: bytes, secret: str = SECRET, at: datetime | None = None) -> InboundRequest:
    at = at or datetime(2025, 6, 12, 9, 0, tzinfo=UTC)
    ts = str(int(at.timestamp()))
    sig = "v1=" + hmac_digest(base64.b64decode(secret), b"v1:" + ts.encode() + b":" + body).hex()
    headers = {"x-samsara-timestamp": ts, "x-samsara-signature": sig}
    return InboundRequest(body=body, headers=headers, now=at + timedelta(seconds=3))


def parse(body: bytes) -> list:
    return ADAPTER.parse(body, headers={}, tz=LONDON)


def extra(name: str) -> bytes:
    return (FIXTURES / "extra" / name).read_bytes()


@pytest.mark.parametrize("entry", MANIFEST["files"], ids=lambda e: e["file"])
def test_every_sample_verifies_and_parses_to_its_expected_status(entry):
    s = sample(entry["file"])
    now = datetime.fromtimestamp(int(s["headers"]["x-samsara-timestamp"]), UTC) + timedelta(seconds=2)
    ADAPTER.verify(InboundRequest(body=s["body"], headers=s["headers"], now=now), [SECRET])
    statuses = [e.status for e in parse(s["body"]) if e.kind == EventKind.STATUS]
    if entry["expected_effect"] == "info_only":
        assert statuses == []
    else:
        assert statuses == [entry["expected_status"]]


def test_tampered_body_is_refused():
    request = signed(b'{"eventType": "RouteStopArrival"}')
    with pytest.raises(VerificationError):
        ADAPTER.verify(
            InboundRequest(body=request.body + b" ", headers=request.headers, now=request.now), [SECRET]
        )


def test_wrong_secret_is_refused():
    other = base64.b64encode(b"not-the-samsara-secret").decode()
    with pytest.raises(VerificationError):
        ADAPTER.verify(signed(b"{}", secret=other), [SECRET])


def test_stale_timestamp_is_refused_even_with_a_good_signature():
    request = signed(b"{}")
    late = InboundRequest(body=request.body, headers=request.headers, now=request.now + timedelta(minutes=6))
    with pytest.raises(VerificationError, match="5-minute"):
        ADAPTER.verify(late, [SECRET])


def test_missing_signature_header_is_refused():
    request = signed(b"{}")
    headers = {"x-samsara-timestamp": request.headers["x-samsara-timestamp"]}
    with pytest.raises(VerificationError, match="missing"):
        ADAPTER.verify(InboundRequest(body=b"{}", headers=headers, now=request.now), [SECRET])


def test_rotated_second_secret_is_accepted():
    new = base64.b64encode(b"rotated-samsara-secret-2025").decode()
    ADAPTER.verify(signed(b"{}", secret=new), [SECRET, new])


def test_stop_arrival_uses_stop_id_with_order_ref_and_route_group():
    (event,) = parse(sample("02_RouteStopArrival_stop1.json")["body"])
    assert event.reference == "8810021"
    assert event.alt_references == ("MCR-ORD-9001",)
    assert event.group_reference == "2891001122"
    assert event.applies_to_group is False
    assert event.event_id == "a1c04e72-5f3b-4d28-b9e6-0d14f7c2a853"
    assert event.occurred_at == datetime(2025, 6, 12, 8, 31, 52, tzinfo=UTC)


def test_arrival_does_not_touch_other_customers_stops_repeated_in_the_route():
    events = parse(sample("05_RouteStopArrival_stop2.json")["body"])
    assert {e.reference for e in events} == {"8810022"}


def test_redelivered_webhook_keeps_the_same_event_id():
    body = sample("03_DocumentSubmitted_pod_stop1.json")["body"]
    assert [e.event_id for e in parse(body)] == [e.event_id for e in parse(body)]


def test_departure_gives_only_the_eta_of_the_next_en_route_stop():
    (event,) = parse(sample("04_RouteStopDeparture_stop1.json")["body"])
    assert event.kind == EventKind.ETA
    assert event.status is None
    assert event.reference == "8810022"
    assert event.alt_references == ("MCR-ORD-9002",)
    assert event.eta == datetime(2025, 6, 12, 8, 56, 40, tzinfo=UTC)


def test_pod_delivered_carries_signature_and_recipient_name_only():
    (event,) = parse(sample("03_DocumentSubmitted_pod_stop1.json")["body"])
    assert event.status == Status.DELIVERED
    assert event.proof == {
        "signature_url": "https://samsara-driver-media.example/6e1a9d34",
        "recipient_name": "P.",
    }
    assert "Mensah" not in repr(event)
    assert "Llewellyn" not in repr(event)


def test_failed_pod_maps_no_answer_to_recipient_not_home_with_photo():
    (event,) = parse(sample("06_DocumentSubmitted_failed_stop2.json")["body"])
    assert event.status == Status.ATTEMPT_FAILED
    assert event.reason == Reason.RECIPIENT_NOT_HOME
    assert event.proof == {"photo_urls": ["https://samsara-driver-media.example/2c7e9a41"]}
    assert event.reference == "8810022"
    assert event.alt_references == ("MCR-ORD-9002",)


def test_refused_outcome_maps_to_refused_reason():
    (event,) = parse(extra("DocumentSubmitted_refused_stop2.json"))
    assert (event.status, event.reason) == (Status.ATTEMPT_FAILED, Reason.REFUSED)


def test_pod_without_outcome_question_but_signed_means_delivered():
    (event,) = parse(extra("DocumentSubmitted_signature_only_stop1.json"))
    assert event.status == Status.DELIVERED


def test_document_not_linked_to_a_stop_is_ignored():
    assert parse(extra("DocumentSubmitted_fuel_receipt.json")) == []


def test_geofence_exit_means_out_for_delivery_for_every_stop_of_the_route():
    (event,) = parse(extra("GeofenceExit_depot.json"))
    assert event.status == Status.OUT_FOR_DELIVERY
    assert event.applies_to_group is True
    assert event.group_reference == event.reference == "2891001122"


def test_geofence_exit_without_route_names_the_vehicle():
    (event,) = parse(extra("GeofenceExit_vehicle_only.json"))
    assert event.applies_to_group is True
    assert (event.group_reference, event.vehicle_reference) == ("", "281474982109331")


def test_webhooks_1_alerts_and_unknown_event_types_are_ignored():
    assert parse(b'{"eventId": "x", "eventMs": 1749717114000, "eventType": "Alert", "event": {}}') == []
    assert parse(b'{"eventId": "y", "eventType": "VehicleUpdated", "data": {"vehicle": {"id": "1"}}}') == []
