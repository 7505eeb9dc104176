import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from partners.adapters.base import InboundRequest, NormalizedEvent, VerificationError
from partners.adapters.doordash_drive import DoordashDriveAdapter

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "partners" / "doordash_drive"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
HEADER = MANIFEST["auth"]["test_value"]
CREDENTIAL = HEADER.split(" ", 1)[1]
REFERENCE = "BRS-ORD-55120"
adapter = DoordashDriveAdapter()


def request(body: bytes, authorization: str | None) -> InboundRequest:
    headers = {"content-type": "application/json"}
    if authorization is not None:
        headers["authorization"] = authorization
    return InboundRequest(body=body, headers=headers)


def sample(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def extra(name: str) -> bytes:
    return (FIXTURES / "extra" / name).read_bytes()


def parse_one(body: bytes) -> NormalizedEvent:
    (event,) = adapter.parse(body, headers={}, tz=UTC)
    return event


@pytest.mark.parametrize("entry", MANIFEST["files"], ids=lambda e: e["file"])
def test_every_sample_verifies_with_manifest_headers_and_parses_to_expected_status(
    entry: dict[str, Any],
) -> None:
    body = sample(entry["file"])
    headers = {k.lower(): v for k, v in entry["headers"].items()}
    adapter.verify(InboundRequest(body=body, headers=headers), [HEADER])
    events = adapter.parse(body, headers=headers, tz=UTC)
    assert [(e.kind, e.status) for e in events] == [("status", entry["expected_status"])]
    assert events[0].reference == REFERENCE


def test_full_header_value_and_bare_credential_are_both_accepted_as_secret() -> None:
    body = sample("01_DASHER_CONFIRMED.json")
    adapter.verify(request(body, HEADER), [HEADER])
    adapter.verify(request(body, HEADER), [CREDENTIAL])


def test_decoded_basic_user_password_is_accepted_as_secret() -> None:
    body = sample("01_DASHER_CONFIRMED.json")
    adapter.verify(request(body, HEADER), [base64.b64decode(CREDENTIAL).decode()])


def test_custom_authorization_scheme_is_accepted() -> None:
    body = sample("01_DASHER_CONFIRMED.json")
    adapter.verify(request(body, "Bearer s3cr3t-token"), ["s3cr3t-token"])


def test_wrong_credential_is_refused() -> None:
    body = sample("01_DASHER_CONFIRMED.json")
    with pytest.raises(VerificationError):
        adapter.verify(request(body, "Basic " + base64.b64encode(b"dd-webhook:wrong").decode()), [HEADER])


def test_missing_authorization_header_is_refused() -> None:
    with pytest.raises(VerificationError, match="Authorization"):
        adapter.verify(request(sample("01_DASHER_CONFIRMED.json"), None), [HEADER])


def test_empty_secret_never_matches() -> None:
    with pytest.raises(VerificationError):
        adapter.verify(request(sample("01_DASHER_CONFIRMED.json"), "Basic"), [""])


def test_rotated_second_credential_is_accepted() -> None:
    body = sample("01_DASHER_CONFIRMED.json")
    adapter.verify(request(body, HEADER), ["Basic b2xkOm9sZA==", HEADER])


def test_external_delivery_id_is_the_reference_and_support_reference_an_alt() -> None:
    event = parse_one(sample("01_DASHER_CONFIRMED.json"))
    assert event.reference == REFERENCE
    assert event.alt_references == ("1849203317",)
    assert event.event_id == ""


def test_pickup_arrival_is_assigned_with_at_pickup_sub_status() -> None:
    event = parse_one(sample("02_DASHER_CONFIRMED_PICKUP_ARRIVAL.json"))
    assert (event.status, event.sub_status) == ("assigned", "at_pickup")


def test_picked_up_uses_actual_pickup_time_and_dasher_location_lat_lng() -> None:
    event = parse_one(sample("03_DASHER_PICKED_UP.json"))
    assert event.occurred_at == datetime(2025, 6, 12, 17, 16, 2, tzinfo=UTC)
    assert (event.latitude, event.longitude) == (51.449688, -2.59842)
    assert event.eta == datetime(2025, 6, 12, 17, 34, tzinfo=UTC)


def test_redelivered_webhook_parses_to_the_same_event() -> None:
    body = sample("04_DASHER_CONFIRMED_DROPOFF_ARRIVAL.json")
    assert adapter.parse(body, headers={}, tz=UTC) == adapter.parse(body, headers={}, tz=UTC)


def test_dropped_off_is_delivered_with_photo_and_signature_proof() -> None:
    event = parse_one(extra("05_DASHER_DROPPED_OFF.json"))
    assert event.status == "delivered"
    assert event.occurred_at == datetime(2025, 6, 12, 17, 33, 9, tzinfo=UTC)
    assert event.proof == {
        "signature_url": "https://doordash-static.s3.amazonaws.com/media/signatures/7c2e91a4-signature.png",
        "photo_urls": ["https://doordash-static.s3.amazonaws.com/media/photos/pod/7c2e91a4-dropoff.jpg"],
    }


def test_cancelled_by_creator_is_cancelled_by_merchant() -> None:
    event = parse_one(extra("06_DELIVERY_CANCELLED.json"))
    assert (event.status, event.reason) == ("cancelled", "cancelled_by_merchant")


def test_return_initialized_is_returning_with_reason_and_returned_is_terminal() -> None:
    returning = parse_one(extra("07_DELIVERY_RETURN_INITIALIZED.json"))
    returned = parse_one(extra("08_DELIVERY_RETURNED.json"))
    assert (returning.status, returning.reason) == ("returning", "recipient_not_home")
    assert returned.status == "returned"
    assert returned.occurred_at == datetime(2025, 6, 12, 17, 57, 36, tzinfo=UTC)
    assert returning.reference == returned.reference == REFERENCE


def test_failed_to_return_cancellation_is_an_exception_not_a_clean_cancel() -> None:
    event = parse_one(extra("09_DELIVERY_CANCELLED_failed_to_return.json"))
    assert (event.status, event.reason, event.raw_status) == ("exception", "lost", "DELIVERY_CANCELLED")


def test_enroute_tracking_ping_is_location_only() -> None:
    event = parse_one(extra("10_DASHER_ENROUTE_TO_DROPOFF.json"))
    assert (event.kind, event.status) == ("location", None)
    assert (event.latitude, event.longitude) == (51.458812, -2.600913)


def test_batched_event_is_ignored() -> None:
    assert adapter.parse(extra("11_DELIVERY_BATCHED.json"), headers={}, tz=UTC) == []


def test_delivery_status_is_used_when_event_name_is_absent() -> None:
    payload = json.loads(sample("03_DASHER_PICKED_UP.json"))
    del payload["event_name"]
    assert parse_one(json.dumps(payload).encode()).status == "picked_up"


def test_dasher_and_recipient_surnames_and_phones_never_appear() -> None:
    for body in (sample("01_DASHER_CONFIRMED.json"), extra("05_DASHER_DROPPED_OFF.json")):
        text = repr(adapter.parse(body, headers={}, tz=UTC))
        assert "Pryce" not in text
        assert "+44" not in text
