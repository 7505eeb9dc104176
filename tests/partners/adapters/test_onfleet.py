import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from partners.adapters.base import InboundRequest, NormalizedEvent, VerificationError
from partners.adapters.onfleet import OnfleetAdapter

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "partners" / "onfleet"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
SECRET = MANIFEST["auth"]["test_webhook_secret_hex"]
OTHER_SECRET = "00112233445566778899aabbccddeeff"
TASK_ID = "tK9x~Fb3Lq7Rm2Wz8Pc4Nv1S"
CLONE_ID = "cL0n~Rq5Xw2Tz8Mk4Vb7Nh1D"
adapter = OnfleetAdapter()


def sign(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(bytes.fromhex(secret), body, hashlib.sha512).hexdigest()


def request(body: bytes, signature: str | None) -> InboundRequest:
    headers = {"content-type": "application/json"}
    if signature is not None:
        headers["x-onfleet-signature"] = signature
    return InboundRequest(body=body, headers=headers)


def parse(body: bytes, tz: Any = UTC) -> list[NormalizedEvent]:
    return adapter.parse(body, headers={}, tz=tz)


def extra(name: str) -> bytes:
    return (FIXTURES / "extra" / name).read_bytes()


def status_events(events: list[NormalizedEvent]) -> list[NormalizedEvent]:
    return [e for e in events if e.kind == "status"]


@pytest.mark.parametrize("entry", MANIFEST["files"], ids=lambda e: e["file"])
def test_every_sample_verifies_with_manifest_headers_and_parses_to_expected_status(
    entry: dict[str, Any],
) -> None:
    body = (FIXTURES / entry["file"]).read_bytes()
    headers = {k.lower(): v for k, v in entry["headers"].items()}
    adapter.verify(InboundRequest(body=body, headers=headers), [SECRET])
    events = adapter.parse(body, headers=headers, tz=UTC)
    assert events
    assert all(e.reference == TASK_ID for e in events)
    if entry["expected_effect"] == "info_only":
        assert status_events(events) == []
    else:
        assert [e.status for e in status_events(events)] == [entry["expected_status"]]


def test_tampered_body_is_refused() -> None:
    body = (FIXTURES / "02_taskAssigned.json").read_bytes()
    with pytest.raises(VerificationError):
        adapter.verify(request(body.replace(b'"state": 1', b'"state": 3'), sign(body)), [SECRET])


def test_wrong_secret_is_refused() -> None:
    body = (FIXTURES / "02_taskAssigned.json").read_bytes()
    with pytest.raises(VerificationError):
        adapter.verify(request(body, sign(body)), [OTHER_SECRET])


def test_missing_signature_header_is_refused() -> None:
    body = (FIXTURES / "02_taskAssigned.json").read_bytes()
    with pytest.raises(VerificationError, match="X-Onfleet-Signature"):
        adapter.verify(request(body, None), [SECRET])


def test_rotated_second_secret_is_accepted() -> None:
    body = (FIXTURES / "02_taskAssigned.json").read_bytes()
    adapter.verify(request(body, sign(body, OTHER_SECRET)), [SECRET, OTHER_SECRET])


def test_secret_is_hex_decoded_not_used_as_raw_text() -> None:
    body = (FIXTURES / "02_taskAssigned.json").read_bytes()
    raw_text_signature = hmac.new(SECRET.encode(), body, hashlib.sha512).hexdigest()
    with pytest.raises(VerificationError):
        adapter.verify(request(body, raw_text_signature), [SECRET])


def test_non_hex_secret_is_skipped_rather_than_crashing() -> None:
    body = (FIXTURES / "02_taskAssigned.json").read_bytes()
    adapter.verify(request(body, sign(body)), ["not-hex!", SECRET])


def test_url_validation_get_echoes_the_check_value() -> None:
    get = InboundRequest(body=b"", headers={}, query={"check": "a1b2c3"}, method="GET")
    assert adapter.challenge(get) == "a1b2c3"
    assert adapter.challenge(InboundRequest(body=b"{}", headers={})) is None


def test_merchant_reference_from_metadata_and_short_id_are_alt_references() -> None:
    (event,) = parse((FIXTURES / "01_taskCreated.json").read_bytes())
    assert event.alt_references == ("ORD-LDN-10482", "b4e21c9f")


def test_epoch_millisecond_time_becomes_aware_occurred_at() -> None:
    (event,) = parse((FIXTURES / "02_taskAssigned.json").read_bytes())
    assert event.occurred_at == datetime(2025, 6, 12, 10, 41, 10, 104000, tzinfo=UTC)


def test_redelivered_webhook_parses_to_the_same_event() -> None:
    body = (FIXTURES / "03_taskStarted.json").read_bytes()
    assert parse(body) == parse(body)
    assert parse(body)[0].event_id == ""  # Onfleet has no event id: Baton fingerprints the fact


def test_task_eta_is_an_eta_event_at_send_time_plus_eta_seconds() -> None:
    (event,) = parse((FIXTURES / "04_taskEta.json").read_bytes())
    assert event.kind == "eta"
    assert event.status is None
    sent = datetime(2025, 6, 12, 11, 9, 58, 402000, tzinfo=UTC)
    assert event.eta == sent + timedelta(seconds=297.29819)


def test_task_arrival_does_not_use_destination_as_courier_position() -> None:
    (event,) = parse((FIXTURES / "05_taskArrival.json").read_bytes())
    assert (event.latitude, event.longitude) == (None, None)


def test_completed_task_is_delivered_with_proof_and_lnglat_location_swapped() -> None:
    (event,) = parse(extra("06_taskCompleted.json"))
    assert event.status == "delivered"
    assert event.occurred_at == datetime(2025, 6, 12, 11, 16, 41, 250000, tzinfo=UTC)
    assert (event.latitude, event.longitude) == (51.499388, -0.081266)
    assert event.proof == {
        "signature_url": "https://d15p8tr8p0vffz.cloudfront.net/sG4n~Qw8Lk2Xv7Bm1Rt9Zc3P/282x.png",
        "photo_urls": ["https://d15p8tr8p0vffz.cloudfront.net/pH2o~Tz7Kq4Lm9Vx1Bn8Wc5R/800x.png"],
        "recipient_name": "Harriet",
    }


def test_no_recipient_surname_or_phone_leaks_into_events() -> None:
    for name in ("06_taskCompleted.json", "07_taskFailed.json", "08_taskCloned.json"):
        text = repr(parse(extra(name)))
        assert "Okafor" not in text
        assert "+4477" not in text


def test_failed_task_is_attempt_failed_with_mapped_reason() -> None:
    (event,) = parse(extra("07_taskFailed.json"))
    assert event.status == "attempt_failed"
    assert event.reason == "recipient_not_home"
    assert event.raw_status == "taskFailed"
    assert (event.latitude, event.longitude) == (51.499391, -0.081279)


def test_completed_with_success_false_is_a_failed_attempt() -> None:
    payload = json.loads(extra("06_taskCompleted.json"))
    payload["data"]["task"]["completionDetails"]["success"] = False
    payload["data"]["task"]["completionDetails"]["failureReason"] = "WRONG_ADDRESS"
    (event,) = parse(json.dumps(payload).encode())
    assert (event.status, event.reason) == ("attempt_failed", "address_not_found")


def test_cloned_task_carries_the_original_task_id_first() -> None:
    (event,) = parse(extra("08_taskCloned.json"))
    assert event.reference == CLONE_ID
    assert event.alt_references[0] == TASK_ID
    assert "ORD-LDN-10482" in event.alt_references
    assert event.status == "info_received"


def test_failed_original_then_delivered_clone_both_land_on_the_original_job() -> None:
    (failed,) = parse(extra("07_taskFailed.json"))
    (delivered,) = parse(extra("09_clone_taskCompleted.json"))
    assert TASK_ID in failed.references
    assert TASK_ID in delivered.references
    assert (failed.status, delivered.status) == ("attempt_failed", "delivered")
    assert failed.occurred_at is not None
    assert delivered.occurred_at is not None
    assert failed.occurred_at < delivered.occurred_at


def test_deleted_task_is_cancelled_by_merchant() -> None:
    (event,) = parse(extra("10_taskDeleted.json"))
    assert (event.reference, event.status, event.reason) == (
        "dE1e~Wm3Kq9Lx5Tb2Vn7Rc4H",
        "cancelled",
        "cancelled_by_merchant",
    )


def test_worker_and_bookkeeping_triggers_are_ignored() -> None:
    assert parse(extra("11_workerDuty.json")) == []
    payload = json.loads((FIXTURES / "02_taskAssigned.json").read_text())
    payload["triggerName"], payload["triggerId"] = "taskUpdated", 7
    assert parse(json.dumps(payload).encode()) == []


def test_pickup_task_completion_is_picked_up_and_arrival_is_at_pickup() -> None:
    done = json.loads(extra("06_taskCompleted.json"))
    done["data"]["task"]["pickupTask"] = True
    (event,) = parse(json.dumps(done).encode())
    assert event.status == "picked_up"
    arrival = json.loads((FIXTURES / "05_taskArrival.json").read_text())
    arrival["data"]["task"]["pickupTask"] = True
    (event,) = parse(json.dumps(arrival).encode())
    assert (event.status, event.sub_status) == ("assigned", "at_pickup")


def test_partner_timezone_does_not_shift_epoch_times() -> None:
    body = (FIXTURES / "02_taskAssigned.json").read_bytes()
    assert parse(body, tz=ZoneInfo("Europe/London"))[0].occurred_at == parse(body)[0].occurred_at
