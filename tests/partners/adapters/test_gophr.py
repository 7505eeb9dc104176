import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from partners.adapters.base import InboundRequest, PartnerError, VerificationError
from partners.adapters.gophr import GophrAdapter

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "partners" / "gophr"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
KEY = MANIFEST["auth"]["test_value"]
LONDON = ZoneInfo("Europe/London")
ORIGINAL = "5b8e2f41-9c7a-4d13-a0e6-2f71c94b8d05"
adapter = GophrAdapter()


def request(body: bytes, headers: dict[str, str] | None = None) -> InboundRequest:
    given = {"API-KEY": KEY} if headers is None else headers
    return InboundRequest(body=body, headers={k.lower(): v for k, v in given.items()})


def parse(body: bytes) -> list[Any]:
    return adapter.parse(body, headers={}, tz=LONDON)


def sample(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def current(events: list[Any]) -> Any:
    """The event that carries the webhook's own status (the latest history entry)."""
    return max((e for e in events if e.kind == "status"), key=lambda e: e.occurred_at)


@pytest.mark.parametrize("entry", MANIFEST["files"], ids=lambda e: e["file"])
def test_every_sample_verifies_and_parses_to_its_expected_status(entry: dict[str, Any]) -> None:
    body = sample(entry["file"])
    adapter.verify(request(body, entry["headers"]), [KEY])
    events = parse(body)
    if entry["expected_status"] is None:
        assert {e.kind for e in events} == {"eta", "location"}
        assert all(e.status is None for e in events)
    else:
        assert current(events).status == entry["expected_status"]
        assert current(events).raw_status == entry["platform_status"]
    assert all(e.reference == ORIGINAL and "SDC-PRN-0042" in e.alt_references for e in events)


def test_a_rotated_second_key_is_accepted() -> None:
    adapter.verify(request(b"{}"), ["sand-old-key", KEY])


def test_a_wrong_key_is_refused() -> None:
    with pytest.raises(VerificationError):
        adapter.verify(request(b"{}"), ["sand-0000"])


def test_a_missing_api_key_header_is_refused() -> None:
    with pytest.raises(VerificationError, match="missing"):
        adapter.verify(request(b"{}", {"Content-Type": "application/json"}), [KEY])


def test_the_eta_webhook_is_never_a_status_change() -> None:
    events = parse(sample("02_eta_update.json"))
    location = next(e for e in events if e.kind == "location")
    eta = next(e for e in events if e.kind == "eta")
    assert (location.latitude, location.longitude) == (51.52197, -0.07966)
    assert eta.eta == datetime(2025, 6, 12, 13, 4, 30, tzinfo=UTC)


def test_the_cumulative_history_becomes_one_event_per_entry_with_epoch_second_times() -> None:
    events = parse(sample("04_status_EN_ROUTE.json"))
    assert [e.raw_status for e in events] == [
        "NEW",
        "CONFIRMED_BY_CUSTOMER",
        "ACCEPTED_BY_COURIER",
        "AT_PICKUP",
        "EN_ROUTE",
    ]
    assert events[-1].occurred_at == datetime(2025, 6, 12, 12, 56, 14, tzinfo=UTC)
    assert events[3].sub_status == "at_pickup"


def test_resending_the_snapshot_gives_the_same_event_ids() -> None:
    earlier = {e.event_id: e.status for e in parse(sample("03_status_AT_PICKUP.json"))}
    later = {e.event_id: e.status for e in parse(sample("04_status_EN_ROUTE.json"))}
    assert earlier.items() <= later.items()
    assert len(set(later)) == len(later)
    assert all(later)


def test_event_ids_do_not_depend_on_the_order_of_the_history() -> None:
    payload = json.loads(sample("04_status_EN_ROUTE.json"))
    payload["events"].reverse()
    shuffled = {e.event_id for e in parse(json.dumps(payload).encode())}
    assert shuffled == {e.event_id for e in parse(sample("04_status_EN_ROUTE.json"))}


def test_only_the_current_status_carries_location_and_eta() -> None:
    events = parse(sample("04_status_EN_ROUTE.json"))
    assert (events[-1].latitude, events[-1].longitude) == (51.52389, -0.07534)
    assert events[-1].eta == datetime(2025, 6, 12, 13, 4, 40, tzinfo=UTC)
    assert all(e.latitude is None and e.eta is None for e in events[:-1])


def test_metadata_order_reference_is_an_alternative_reference() -> None:
    payload = json.loads(sample("01_status_ACCEPTED_BY_COURIER.json"))
    payload["external_id"] = None
    payload["meta_data"] = [{"key": "order_ref", "value": "SHOP-77"}, {"key": "store", "value": "shoreditch"}]
    events = parse(json.dumps(payload).encode())
    assert events[-1].alt_references == ("SHOP-77",)


def test_the_misspelt_proof_of_pickup_key_is_tolerated() -> None:
    assert current(parse(sample("03_status_AT_PICKUP.json"))).status == "assigned"


def test_delivered_maps_photo_and_signature_proof() -> None:
    events = parse((FIXTURES / "extra" / "status_DELIVERED.json").read_bytes())
    done = current(events)
    assert (done.status, done.occurred_at) == ("delivered", datetime(2025, 6, 12, 13, 1, 2, tzinfo=UTC))
    assert done.proof == {
        "photo_urls": ["https://gophr-proofs.example/5b8e2f41/delivery-1.jpg"],
        "signature_url": "https://gophr-proofs.example/5b8e2f41/signature.png",
    }
    assert [e.status for e in events if e.raw_status == "AT_DELIVERY"] == ["arriving"]


def test_docs_schema_types_numbers_proof_object_and_tz_less_string_timestamps() -> None:
    events = parse((FIXTURES / "extra" / "status_DELIVERED_docs_types.json").read_bytes())
    done = current(events)
    assert (done.latitude, done.longitude) == (51.5275, -0.0711)
    assert done.proof == {"photo_urls": ["https://gophr-proofs.example/5b8e2f41/delivery-1.jpg"]}
    # "2025-06-12T14:01:02" has no offset: London wall clock (BST), so 13:01:02 UTC.
    assert done.occurred_at == datetime(2025, 6, 12, 13, 1, 2, tzinfo=UTC)


def test_epoch_milliseconds_are_read_as_milliseconds() -> None:
    payload = json.loads(sample("01_status_ACCEPTED_BY_COURIER.json"))
    payload["events"] = [{"timestamp": 1749732231000, "status": "ACCEPTED_BY_COURIER"}]
    [event] = parse(json.dumps(payload).encode())
    assert event.occurred_at == datetime(2025, 6, 12, 12, 43, 51, tzinfo=UTC)


def test_cancelled_by_customer_is_cancelled_by_the_merchant_with_the_comment() -> None:
    events = parse((FIXTURES / "extra" / "status_CANCELED_BY_CUSTOMER.json").read_bytes())
    done = current(events)
    assert (done.status, done.reason, done.note) == (
        "cancelled",
        "cancelled_by_merchant",
        "Shop closed early",
    )
    assert done.latitude is None
    assert done.eta is None


def test_a_return_leg_under_a_new_id_carries_the_original_delivery_and_ends_returned() -> None:
    events = parse((FIXTURES / "extra" / "return_leg_DELIVERED.json").read_bytes())
    assert all(e.reference == "c41d7a09-2e55-4b8f-9d31-6a0e2b7f1c88" for e in events)
    assert all(e.alt_references[:2] == ("SDC-PRN-0042", ORIGINAL) for e in events)
    assert [e.status for e in events] == ["returning", "returning", "returning", "returned"]


def test_a_status_missing_from_the_history_still_produces_an_event() -> None:
    payload = json.loads(sample("01_status_ACCEPTED_BY_COURIER.json"))
    payload["events"] = []
    [event] = parse(json.dumps(payload).encode())
    assert (event.status, event.event_id, event.occurred_at) == ("assigned", "", None)


def test_courier_name_and_phone_never_reach_an_event() -> None:
    for path in FIXTURES.glob("**/*.json"):
        if path.name != "manifest.json":
            assert "+447700900744" not in repr(parse(path.read_bytes()))


def test_an_unknown_status_is_a_permanent_error() -> None:
    payload = json.loads(sample("01_status_ACCEPTED_BY_COURIER.json"))
    payload["status"] = "LOST_IN_SPACE"
    with pytest.raises(PartnerError) as caught:
        parse(json.dumps(payload).encode())
    assert caught.value.permanent
