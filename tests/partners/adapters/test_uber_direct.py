import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from partners.adapters.base import InboundRequest, NormalizedEvent, VerificationError
from partners.adapters.uber_direct import UberDirectAdapter

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "partners" / "uber_direct"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
KEY = MANIFEST["auth"]["test_signing_key"]
OTHER_KEY = "rotated-signing-key-0002"
DELIVERY = "del_Qm7fK2xLr9TbVw4nP8cYzA"
RETURN = "ret_Tz8pQ3kLw6XmV1nRc9HyBd"
adapter = UberDirectAdapter()


def sign(body: bytes, key: str = KEY) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def request(body: bytes, **headers: str) -> InboundRequest:
    return InboundRequest(body=body, headers={"content-type": "application/json", **headers})


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
    adapter.verify(InboundRequest(body=body, headers=headers), [KEY])
    events = adapter.parse(body, headers=headers, tz=UTC)
    assert [e.reference for e in events] == [DELIVERY]
    if entry["expected_effect"] == "location_only":
        assert [(e.kind, e.status) for e in events] == [("location", None)]
    else:
        assert [(e.kind, e.status) for e in events] == [("status", entry["expected_status"])]


def test_newer_header_alone_is_accepted() -> None:
    body = sample("02_delivery_status_pickup.json")
    adapter.verify(request(body, **{"x-uber-signature": sign(body)}), [KEY])


def test_older_postmates_header_alone_is_accepted() -> None:
    body = sample("02_delivery_status_pickup.json")
    adapter.verify(request(body, **{"x-postmates-signature": sign(body).upper()}), [KEY])


def test_tampered_body_is_refused() -> None:
    body = sample("02_delivery_status_pickup.json")
    tampered = body.replace(b'"status": "pickup"', b'"status": "delivered"')
    with pytest.raises(VerificationError):
        adapter.verify(request(tampered, **{"x-uber-signature": sign(body)}), [KEY])


def test_wrong_signing_key_is_refused() -> None:
    body = sample("02_delivery_status_pickup.json")
    with pytest.raises(VerificationError):
        adapter.verify(request(body, **{"x-uber-signature": sign(body, "not-the-key")}), [KEY])


def test_missing_signature_headers_are_refused() -> None:
    with pytest.raises(VerificationError, match="missing"):
        adapter.verify(request(sample("02_delivery_status_pickup.json")), [KEY])


def test_rotated_second_signing_key_is_accepted() -> None:
    body = sample("02_delivery_status_pickup.json")
    adapter.verify(request(body, **{"x-uber-signature": sign(body, OTHER_KEY)}), [KEY, OTHER_KEY])


def test_delivery_id_is_reference_external_id_is_alt_and_event_id_is_uber_event_id() -> None:
    event = parse_one(sample("01_delivery_status_pending.json"))
    assert event.reference == DELIVERY
    assert event.alt_references == ("GRN-FLW-2291",)
    assert event.event_id == "evt_Kq3Lm8Xz2Vn7Tw1Rb5Hc9P"


def test_redelivered_webhook_keeps_its_event_id() -> None:
    body = sample("04_delivery_status_pickup_imminent.json")
    assert parse_one(body) == parse_one(body)


def test_courier_update_is_location_only_with_lat_lng_object() -> None:
    event = parse_one(sample("03_courier_update.json"))
    assert (event.kind, event.status) == ("location", None)
    assert (event.latitude, event.longitude) == (51.484102, -0.015521)


def test_pickup_imminent_stays_assigned_and_dropoff_imminent_is_arriving() -> None:
    assert parse_one(sample("04_delivery_status_pickup_imminent.json")).status == "assigned"
    event = parse_one(extra("07_delivery_status_dropoff_imminent.json"))
    assert (event.status, event.raw_status) == ("arriving", "dropoff:imminent")


def test_dropoff_arriving_before_earlier_pickup_complete_still_orders_by_created() -> None:
    dropoff = parse_one(sample("05_delivery_status_dropoff.json"))
    pickup_complete = parse_one(extra("06_delivery_status_pickup_complete.json"))
    assert pickup_complete.status == "picked_up"
    assert pickup_complete.occurred_at is not None
    assert dropoff.occurred_at is not None
    assert pickup_complete.occurred_at < dropoff.occurred_at
    assert pickup_complete.event_id != dropoff.event_id


def test_status_event_carries_dropoff_eta() -> None:
    assert parse_one(sample("05_delivery_status_dropoff.json")).eta == datetime(
        2025, 6, 12, 10, 38, 40, tzinfo=UTC
    )


def test_delivered_carries_proof_with_signer_first_name_only() -> None:
    event = parse_one(extra("08_delivery_status_delivered.json"))
    assert event.status == "delivered"
    assert event.proof == {
        "signature_url": "https://storage.googleapis.com/uber-direct-pod/sig_8f3c1b72.png",
        "recipient_name": "Nadia",
        "photo_urls": ["https://storage.googleapis.com/uber-direct-pod/pic_8f3c1b72.jpg"],
    }
    assert "Haddad" not in repr(event)


def test_courier_surname_initial_and_phone_never_appear() -> None:
    for body in (sample("02_delivery_status_pickup.json"), extra("08_delivery_status_delivered.json")):
        text = repr(adapter.parse(body, headers={}, tz=UTC))
        assert "Tomasz" not in text
        assert "+44" not in text


def test_canceled_maps_undeliverable_reason() -> None:
    event = parse_one(extra("09_delivery_status_canceled.json"))
    assert (event.status, event.reason, event.note) == (
        "cancelled",
        "recipient_not_home",
        "CUSTOMER_UNAVAILABLE",
    )


def test_returned_on_the_original_leg_means_goods_are_returning() -> None:
    event = parse_one(extra("10_delivery_status_returned.json"))
    assert (event.reference, event.status, event.reason) == (DELIVERY, "returning", "recipient_not_home")
    assert event.alt_references == ("GRN-FLW-2291", RETURN)


def test_return_leg_under_ret_id_carries_the_original_delivery_id_first() -> None:
    event = parse_one(extra("11_return_leg_dropoff.json"))
    assert event.reference == RETURN
    assert event.alt_references == (DELIVERY, "GRN-FLW-2291")
    assert event.status == "returning"


def test_return_leg_delivered_is_returned_to_sender() -> None:
    event = parse_one(extra("12_return_leg_delivered.json"))
    assert (event.status, event.references[:2]) == ("returned", (RETURN, DELIVERY))
    assert event.proof == {
        "photo_urls": ["https://storage.googleapis.com/uber-direct-pod/pic_ret_8f3c1b72.jpg"]
    }


def test_refund_request_is_ignored() -> None:
    assert adapter.parse(extra("13_refund_request.json"), headers={}, tz=UTC) == []
