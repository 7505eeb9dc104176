import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from partners.adapters.base import (
    EventKind,
    InboundRequest,
    PartnerError,
    Reason,
    Status,
    VerificationError,
    hmac_digest,
)
from partners.adapters.easypost import EasypostAdapter

FIXTURES = Path(__file__).parents[2] / "fixtures" / "partners" / "easypost"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
SECRET = MANIFEST["auth"]["test_webhook_secret"]
LONDON = ZoneInfo("Europe/London")
ADAPTER = EasypostAdapter()
TRACKER_ID = "trk_5c1e9a4f7b2d4e08a63f9d21c7b08e54"


def body_of(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def signed(body: bytes, secret: str = SECRET) -> InboundRequest:
    sig = "hmac-sha256-hex=" + hmac_digest(secret.encode(), body).hex()
    return InboundRequest(body=body, headers={"x-hmac-signature": sig})


def parse(body: bytes) -> list:
    return ADAPTER.parse(body, headers={}, tz=LONDON)


def statuses(events: list) -> list:
    return [e.status for e in events if e.kind == EventKind.STATUS]


@pytest.mark.parametrize("entry", MANIFEST["files"], ids=lambda e: e["file"])
def test_every_sample_verifies_and_its_latest_entry_has_the_expected_status(entry):
    body = body_of(entry["file"])
    headers = {k.lower(): v for k, v in entry["headers"].items()}
    ADAPTER.verify(InboundRequest(body=body, headers=headers), [SECRET])
    assert statuses(parse(body))[-1] == entry["expected_status"]


def test_tampered_body_is_refused():
    request = signed(body_of("02_tracker.updated_in_transit.json"))
    with pytest.raises(VerificationError):
        ADAPTER.verify(InboundRequest(body=request.body[:-2] + b"}}", headers=request.headers), [SECRET])


def test_wrong_secret_is_refused():
    with pytest.raises(VerificationError):
        ADAPTER.verify(signed(b"{}", secret="someone-else"), [SECRET])


def test_missing_header_is_refused():
    with pytest.raises(VerificationError, match="missing"):
        ADAPTER.verify(InboundRequest(body=b"{}", headers={}), [SECRET])


def test_rotated_second_secret_is_accepted():
    ADAPTER.verify(signed(b"{}", secret="new-easypost-secret"), [SECRET, "new-easypost-secret"])


def test_secret_is_nfkd_normalised_before_use():
    # EasyPost keys the HMAC with NFKD(secret): the U+FB01 ligature decomposes to "fi"
    ADAPTER.verify(signed(b"{}", secret="fi-secret"), ["\ufb01-secret"])


def test_reference_is_tracker_id_with_tracking_code_and_shipment_as_alternatives():
    event = parse(body_of("01_tracker.created.json"))[-1]
    assert event.reference == TRACKER_ID
    assert event.alt_references == ("TT481503672GB", "shp_9d2b7f4e1a6c4e3b8f05d7a2c1e9b364")


def test_snapshot_gives_one_event_per_history_entry_with_stable_ids():
    earlier = {
        e.event_id: e for e in parse(body_of("02_tracker.updated_in_transit.json")) if e.kind == "status"
    }
    later = [e for e in parse(body_of("04_tracker.updated_out_for_delivery.json")) if e.kind == "status"]
    assert len(later) == 4
    assert len({e.event_id for e in later}) == 4
    assert set(earlier) <= {e.event_id for e in later}
    for e in later:
        if e.event_id in earlier:
            assert earlier[e.event_id] == e


def test_mixed_offsets_in_one_history_are_all_read_correctly():
    events = [e for e in parse(body_of("03_tracker.updated_departed.json")) if e.kind == "status"]
    assert events[0].occurred_at == datetime(2025, 6, 12, 14, 2, 11, tzinfo=UTC)
    assert events[2].occurred_at == datetime(2025, 6, 13, 0, 18, tzinfo=timezone(timedelta(hours=1)))
    assert events[2].sub_status == "departed_facility"


def test_estimated_delivery_is_an_eta_event_until_delivered():
    (eta,) = [e for e in parse(body_of("01_tracker.created.json")) if e.kind == EventKind.ETA]
    assert eta.status is None
    assert eta.eta == datetime(2025, 6, 13, 21, 0, tzinfo=UTC)
    assert not [e for e in parse(body_of("extra/tracker.updated_delivered.json")) if e.kind == EventKind.ETA]


def test_delivered_carries_recipient_name_as_proof():
    last = parse(body_of("extra/tracker.updated_delivered.json"))[-1]
    assert last.status == Status.DELIVERED
    assert last.proof == {"recipient_name": "ASHWORTH"}


def test_failed_attempt_then_return_to_sender():
    tail = statuses(parse(body_of("extra/tracker.updated_return_to_sender.json")))[-2:]
    assert tail == [Status.ATTEMPT_FAILED, Status.RETURNING]


def test_two_terminal_events_in_one_snapshot_both_come_through():
    data = json.loads(body_of("extra/tracker.updated_delivered.json"))
    again = dict(
        data["result"]["tracking_details"][-1], datetime="2025-06-13T12:25:00+01:00", carrier_code="EVKSX"
    )
    data["result"]["tracking_details"].append(again)
    delivered = [e for e in parse(json.dumps(data).encode()) if e.status == Status.DELIVERED]
    assert len(delivered) == 2
    assert delivered[0].event_id != delivered[1].event_id


def test_weather_failure_is_an_exception_with_weather_reason():
    data = json.loads(body_of("01_tracker.created.json"))
    data["result"]["tracking_details"][0].update(status="failure", status_detail="weather_delay")
    event = parse(json.dumps(data).encode())[-1]
    assert (event.status, event.reason) == (Status.EXCEPTION, Reason.WEATHER)


def test_non_tracker_events_are_ignored():
    assert parse(body_of("extra/batch.created.json")) == []


class FakeClient:
    def __init__(self, answer):
        self.answer, self.calls = answer, []

    def get_json(self, url, *, headers=None):
        self.calls.append((url, dict(headers or {})))
        return self.answer


def test_fetch_gets_the_tracker_by_id_with_basic_auth_and_parses_it_like_the_webhook():
    tracker = json.loads(body_of("04_tracker.updated_out_for_delivery.json"))["result"]
    client = FakeClient(tracker)
    events = ADAPTER.fetch(client, config={"api_key": "EZAK_test"}, reference=TRACKER_ID, tz=LONDON)
    ((url, headers),) = client.calls
    assert url == f"https://api.easypost.com/v2/trackers/{TRACKER_ID}"
    assert headers["Authorization"] == "Basic RVpBS190ZXN0Og=="
    assert events == parse(body_of("04_tracker.updated_out_for_delivery.json"))
    assert ADAPTER.can_fetch is True


def test_fetch_by_tracking_code_uses_the_list_endpoint_and_base_url():
    tracker = json.loads(body_of("02_tracker.updated_in_transit.json"))["result"]
    client = FakeClient({"trackers": [tracker], "has_more": False})
    config = {"api_key": "k", "base_url": "https://ep.example/v2/"}
    events = ADAPTER.fetch(client, config=config, reference="TT481503672GB", tz=LONDON)
    assert client.calls[0][0] == "https://ep.example/v2/trackers?tracking_code=TT481503672GB"
    assert statuses(events)[-1] == Status.IN_TRANSIT


def test_fetch_without_api_key_is_a_permanent_error():
    with pytest.raises(PartnerError) as info:
        ADAPTER.fetch(FakeClient({}), config={}, reference=TRACKER_ID, tz=LONDON)
    assert info.value.permanent
