import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from partners.adapters.aftership import AftershipAdapter
from partners.adapters.base import (
    EventKind,
    InboundRequest,
    PartnerError,
    Reason,
    Status,
    VerificationError,
    hmac_digest,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "partners" / "aftership"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
SECRET = MANIFEST["auth"]["test_webhook_secret"]
LONDON = ZoneInfo("Europe/London")
ADAPTER = AftershipAdapter()
TRACKING_ID = "m7xq2k9vbr3tlw8zd4nh1pcy"


def body_of(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def signed(body: bytes, secret: str = SECRET) -> InboundRequest:
    sig = base64.b64encode(hmac_digest(secret.encode(), body)).decode()
    return InboundRequest(body=body, headers={"aftership-hmac-sha256": sig})


def parse(body: bytes, tz=LONDON) -> list:
    return ADAPTER.parse(body, headers={}, tz=tz)


def statuses(events: list) -> list:
    return [e.status for e in events if e.kind == EventKind.STATUS]


@pytest.mark.parametrize("entry", MANIFEST["files"], ids=lambda e: e["file"])
def test_every_sample_verifies_and_its_latest_checkpoint_has_the_expected_status(entry):
    body = body_of(entry["file"])
    headers = {k.lower(): v for k, v in entry["headers"].items()}
    ADAPTER.verify(InboundRequest(body=body, headers=headers), [SECRET])
    assert statuses(parse(body))[-1] == entry["expected_status"]


def test_tampered_body_is_refused():
    request = signed(body_of("01_InfoReceived.json"))
    with pytest.raises(VerificationError):
        ADAPTER.verify(
            InboundRequest(body=request.body.replace(b"DPD", b"DHL"), headers=request.headers), [SECRET]
        )


def test_wrong_secret_is_refused():
    with pytest.raises(VerificationError):
        ADAPTER.verify(signed(b"{}", secret="not-it"), [SECRET])


def test_missing_header_is_refused():
    with pytest.raises(VerificationError, match="missing"):
        ADAPTER.verify(InboundRequest(body=b"{}", headers={}), [SECRET])


def test_rotated_second_secret_is_accepted():
    ADAPTER.verify(signed(b"{}", secret="next-aftership-secret"), [SECRET, "next-aftership-secret"])


def test_reference_is_aftership_id_with_tracking_number_and_merchant_ref():
    event = parse(body_of("01_InfoReceived.json"))[0]
    assert event.reference == TRACKING_ID
    assert event.alt_references == ("15501234567896", "OXF-SHOP-55821")


def test_merchant_ref_is_found_through_order_number_in_the_2025_01_shape():
    event = parse(body_of("extra/Exception_returned_2025-01.json"))[0]
    assert "OXF-SHOP-55821" in event.alt_references


def test_checkpoint_time_without_offset_is_read_in_the_partner_zone():
    event = parse(body_of("01_InfoReceived.json"))[0]
    assert event.occurred_at == datetime(2025, 6, 10, 15, 24, tzinfo=UTC)
    in_utc = parse(body_of("01_InfoReceived.json"), tz=UTC)[0]
    assert in_utc.occurred_at == datetime(2025, 6, 10, 16, 24, tzinfo=UTC)


def test_checkpoint_time_with_offset_keeps_its_offset():
    last = parse(body_of("04_AttemptFail.json"))[-1]
    assert last.occurred_at == datetime(2025, 6, 11, 13, 47, tzinfo=timezone(timedelta(hours=1)))


def test_coordinates_are_lat_lng_in_v4_and_object_in_2025_01():
    ofd = parse(body_of("03_OutForDelivery.json"))[-1]
    assert (ofd.latitude, ofd.longitude) == (51.7227, -1.2183)
    returned = parse(body_of("extra/Exception_returned_2025-01.json"))[-1]
    assert (returned.latitude, returned.longitude) == (51.7520, -1.2577)


def test_snapshot_gives_one_event_per_checkpoint_with_stable_ids():
    earlier = {e.event_id for e in parse(body_of("02_InTransit.json"))}
    later = parse(body_of("04_AttemptFail.json"))
    assert len(later) == 4
    assert len({e.event_id for e in later}) == 4
    assert earlier <= {e.event_id for e in later}
    assert [e.event_id for e in later] == [e.event_id for e in parse(body_of("04_AttemptFail.json"))]


def test_failed_attempt_reason_is_read_from_the_carrier_message():
    last = parse(body_of("04_AttemptFail.json"))[-1]
    assert (last.status, last.reason, last.sub_status) == (
        Status.ATTEMPT_FAILED,
        Reason.RECIPIENT_NOT_HOME,
        "AttemptFail_001",
    )


def test_delivered_carries_recipient_name_as_proof():
    last = parse(body_of("extra/Delivered.json"))[-1]
    assert last.status == Status.DELIVERED
    assert last.proof == {"recipient_name": "Ellie"}
    assert "Marchetti" not in repr(parse(body_of("extra/Delivered.json")))


def test_attempt_fail_then_redelivery_then_delivered_are_all_kept():
    assert statuses(parse(body_of("extra/Delivered.json")))[-3:] == [
        Status.ATTEMPT_FAILED,
        Status.OUT_FOR_DELIVERY,
        Status.DELIVERED,
    ]


def test_returning_and_returned_subtags_refine_the_exception_tag():
    assert statuses(parse(body_of("extra/Exception_returned_2025-01.json")))[-2:] == [
        Status.RETURNING,
        Status.RETURNED,
    ]


def test_other_webhook_events_are_ignored():
    assert parse(b'{"event": "tracking_edd_update", "msg": {"id": "x"}}') == []


class FakeClient:
    def __init__(self, answer):
        self.answer, self.calls = answer, []

    def get_json(self, url, *, headers=None):
        self.calls.append((url, dict(headers or {})))
        return self.answer


def test_fetch_gets_the_tracking_by_id_and_parses_it_like_the_webhook():
    tracking = json.loads(body_of("04_AttemptFail.json"))["msg"]
    client = FakeClient({"meta": {"code": 200}, "data": tracking})
    events = ADAPTER.fetch(client, config={"api_key": "asat_test"}, reference=TRACKING_ID, tz=LONDON)
    ((url, headers),) = client.calls
    assert url == f"https://api.aftership.com/tracking/2025-01/trackings/{TRACKING_ID}"
    assert headers["as-api-key"] == "asat_test"
    assert events == parse(body_of("04_AttemptFail.json"))
    assert ADAPTER.can_fetch is True


def test_fetch_by_slug_and_number_unwraps_the_v4_envelope():
    tracking = json.loads(body_of("02_InTransit.json"))["msg"]
    client = FakeClient({"meta": {"code": 200}, "data": {"tracking": tracking}})
    config = {"api_key": "k", "base_url": "https://api.aftership.com/v4"}
    events = ADAPTER.fetch(client, config=config, reference="dpd-uk/15501234567896", tz=LONDON)
    assert client.calls[0][0] == "https://api.aftership.com/v4/trackings/dpd-uk/15501234567896"
    assert statuses(events)[-1] == Status.IN_TRANSIT


def test_fetch_answer_without_data_is_an_error():
    with pytest.raises(PartnerError):
        ADAPTER.fetch(FakeClient({"meta": {"code": 404}}), config={"api_key": "k"}, reference="x", tz=LONDON)
