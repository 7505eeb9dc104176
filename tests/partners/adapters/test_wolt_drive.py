import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jwt
import pytest

from partners.adapters.base import InboundRequest, PartnerError, VerificationError
from partners.adapters.wolt_drive import WoltDriveAdapter

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "partners" / "wolt_drive"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
SECRET = MANIFEST["auth"]["test_client_secret"]
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2025, 6, 12, 9, 30, tzinfo=UTC)
adapter = WoltDriveAdapter()


def request(body: bytes, now: datetime = NOW) -> InboundRequest:
    return InboundRequest(body=body, headers={"content-type": "application/json"}, now=now)


def parse(body: bytes) -> list[Any]:
    return adapter.parse(body, headers={}, tz=BERLIN)


def extra(name: str) -> bytes:
    return (FIXTURES / "extra" / f"{name}.json").read_bytes()


def signed(claims: dict[str, Any], secret: str = SECRET) -> bytes:
    return json.dumps({"token": jwt.encode(claims, secret, algorithm="HS256")}).encode()


def decoded(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / "decoded" / name).read_text())


@pytest.mark.parametrize("entry", MANIFEST["files"], ids=lambda e: e["file"])
def test_every_sample_verifies_and_parses_to_its_expected_status(entry: dict[str, Any]) -> None:
    body = (FIXTURES / entry["file"]).read_bytes()
    adapter.verify(request(body), [SECRET])
    [event] = parse(body)
    assert event.status == entry["expected_status"]
    assert event.kind == ("location" if entry["expected_status"] is None else "status")
    assert event.raw_status == entry["event"]
    assert event.reference == "66a8f1c2e4b03d5a7c9e1f20"
    assert "BER-CAF-3310" in event.alt_references


def test_samples_verify_whatever_the_current_time_because_retries_reuse_the_token() -> None:
    body = (FIXTURES / "01_order.received.json").read_bytes()
    adapter.verify(request(body, now=datetime(2026, 1, 1, tzinfo=UTC)), [SECRET])


def test_a_rotated_second_secret_is_accepted() -> None:
    body = (FIXTURES / "02_order.pickup_started.json").read_bytes()
    adapter.verify(request(body), ["previous-wolt-drive-client-secret", SECRET])


def test_a_wrong_secret_is_refused() -> None:
    with pytest.raises(VerificationError, match="client_secret"):
        adapter.verify(
            request((FIXTURES / "01_order.received.json").read_bytes()),
            ["not-the-registered-client-secret-at-all"],
        )


def test_a_tampered_claim_is_refused() -> None:
    token = json.loads((FIXTURES / "04_order.picked_up.json").read_text())["token"]
    header, _, signature = token.split(".")
    forged = jwt.utils.base64url_encode(
        json.dumps(dict(decoded("04_order.picked_up.json"), type="order.delivered")).encode()
    )
    body = json.dumps({"token": f"{header}.{forged.decode()}.{signature}"}).encode()
    with pytest.raises(VerificationError):
        adapter.verify(request(body), [SECRET])


def test_a_body_without_a_token_is_refused() -> None:
    with pytest.raises(VerificationError):
        adapter.verify(request(json.dumps(decoded("01_order.received.json")).encode()), [SECRET])


def test_an_unsigned_alg_none_token_is_refused() -> None:
    token = jwt.encode(decoded("04_order.picked_up.json"), key=None, algorithm="none")
    with pytest.raises(VerificationError):
        adapter.verify(request(json.dumps({"token": token}).encode()), [SECRET])


def test_an_expired_token_is_refused_relative_to_the_request_time() -> None:
    claims = dict(decoded("04_order.picked_up.json"), exp=int(NOW.timestamp()) - 600)
    with pytest.raises(VerificationError, match="expired"):
        adapter.verify(request(signed(claims)), [SECRET])
    adapter.verify(request(signed(claims), now=datetime(2025, 6, 12, 9, 21, tzinfo=UTC)), [SECRET])


def test_dispatched_at_in_utc_is_the_occurrence_time_and_dropoff_window_end_the_eta() -> None:
    [event] = parse((FIXTURES / "01_order.received.json").read_bytes())
    assert event.occurred_at == datetime(2025, 6, 12, 9, 12, 3, 481920, tzinfo=UTC)
    assert event.eta == datetime(2025, 6, 12, 9, 46, tzinfo=UTC)
    assert event.alt_references == ("66a8f1c2e4b03d5a7c9e1f21", "WDB7K2Q9", "BER-CAF-3310")


def test_location_update_reads_lat_lon_and_tracking_id() -> None:
    [event] = parse((FIXTURES / "05_order.location_updated.json").read_bytes())
    assert (event.latitude, event.longitude) == (52.531027, 13.404411)
    assert "WDB7K2Q9" in event.alt_references


def test_events_out_of_order_keep_their_own_dispatch_times() -> None:
    [location] = parse((FIXTURES / "05_order.location_updated.json").read_bytes())
    [dropoff] = parse((FIXTURES / "06_order.dropoff_started.json").read_bytes())
    assert dropoff.occurred_at is not None
    assert location.occurred_at is not None
    assert dropoff.occurred_at < location.occurred_at


def test_pickup_arrival_is_assigned_at_pickup() -> None:
    [event] = parse((FIXTURES / "03_order.pickup_arrival.json").read_bytes())
    assert (event.status, event.sub_status) == ("assigned", "at_pickup")


def test_dropoff_arrival_is_arriving() -> None:
    [event] = parse(extra("order.dropoff_arrival"))
    assert event.status == "arriving"


def test_dropoff_completed_and_delivered_are_two_terminal_events_at_the_completion_time() -> None:
    [completed] = parse(extra("order.dropoff_completed"))
    [delivered] = parse(extra("order.delivered"))
    assert completed.status == delivered.status == "delivered"
    assert completed.raw_status != delivered.raw_status
    assert completed.occurred_at == delivered.occurred_at == datetime(2025, 6, 12, 9, 34, 40, tzinfo=UTC)
    assert delivered.eta is None


def test_customer_no_show_is_a_failed_attempt_with_recipient_not_home() -> None:
    [event] = parse(extra("order.customer_no_show"))
    assert (event.status, event.reason) == ("attempt_failed", "recipient_not_home")


def test_rejected_is_cancelled_and_keeps_wolts_reason_as_a_note() -> None:
    [event] = parse(extra("order.rejected"))
    assert (event.status, event.reason) == ("cancelled", "unknown")
    assert event.note == "No couriers available in the area"


def test_dropoff_eta_update_is_an_eta_event_only() -> None:
    [event] = parse(extra("order.dropoff_eta_updated"))
    assert (event.kind, event.status) == ("eta", None)
    assert event.eta == datetime(2025, 6, 12, 9, 44, tzinfo=UTC)


def test_handshake_delivery_is_ignored_and_its_pin_is_not_kept() -> None:
    assert parse(extra("order.handshake_delivery")) == []


def test_every_extra_fixture_is_signed_with_the_test_secret() -> None:
    for path in (FIXTURES / "extra").glob("*.json"):
        adapter.verify(request(path.read_bytes()), [SECRET])


def test_tz_less_times_are_read_in_the_partner_zone() -> None:
    claims = dict(decoded("04_order.picked_up.json"), dispatched_at="2025-06-12T11:25:36")
    [event] = parse(signed(claims))
    assert event.occurred_at == datetime(2025, 6, 12, 9, 25, 36, tzinfo=UTC)


def test_redelivery_of_the_same_token_parses_identically() -> None:
    body = (FIXTURES / "04_order.picked_up.json").read_bytes()
    assert parse(body) == parse(body)


def test_an_unknown_event_type_is_a_permanent_error() -> None:
    claims = dict(decoded("04_order.picked_up.json"), type="order.teleported")
    with pytest.raises(PartnerError) as caught:
        parse(signed(claims))
    assert caught.value.permanent
