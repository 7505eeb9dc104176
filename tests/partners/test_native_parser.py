"""One parser for native events and CSV rows, used when a report is accepted and again by the worker."""

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from partners import services
from partners.adapters.native import EVENT_FIELDS, InvalidEvent, NativeAdapter, parse_csv_row, parse_event
from partners.models import InboundMessage
from partners.serializers import NativeEventSerializer
from tests.clock import MORNING, at
from tracking.models import TrackingEvent

LONDON = ZoneInfo("Europe/London")


def fields_refused(item, **kwargs) -> list[str]:
    with pytest.raises(InvalidEvent) as refused:
        parse_event(item, **kwargs)
    return sorted(refused.value.fields)


def good(**changes) -> dict:
    return {"reference": "A-3", "status": "in_transit", "occurred_at": "2026-11-30T09:05:00Z", **changes}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"occurred_at": "2026-11-30T9:5:00Z"}, "occurred_at"),  # accepted by DRF, refused by the adapter
        ({"occurred_at": "20260101"}, "occurred_at"),  # once recorded as 1970-08-23 (epoch seconds)
        ({"occurred_at": "2026-01-01"}, "occurred_at"),  # a date is not a moment
        ({"occurred_at": 1764493500}, "occurred_at"),
        ({"occurred_at": "2026-11-30T09:05:00"}, "occurred_at"),  # no offset: ambiguous
        ({"occurred_at": "1999-12-31T23:59:59Z"}, "occurred_at"),
        ({"occurred_at": "9999-12-31T23:59:59-05:00"}, "occurred_at"),  # past what can be stored
        ({"reference": " A-3 "}, "reference"),  # once checked trimmed, then matched untrimmed
        ({"reference": ["A-3"]}, "reference"),
        ({"reference": True}, "reference"),
        ({"event_id": "e\n1"}, "event_id"),
        ({"note": "a\x00b"}, "note"),
        ({"raw_status": "\udc80"}, "raw_status"),
        ({"proof": {"signed_by": "A\x00"}}, "proof"),
        ({"proof": {"\ud800": 1}}, "proof"),
        ({"proof": {"score": float("nan")}}, "proof"),
        ({"proof": {"photo": "proof/1/photo-0.jpg"}}, "proof"),  # a file in Baton's storage
        ({"proof": {"photo_url": "proof/1/photo-0.jpg"}}, "proof"),
        ({"location": {"lat": float("nan"), "lng": 0}}, "location.lat"),
        ({"location": {"lat": 51.5, "lng": -0.1, "alt": 3}}, "location.alt"),
        ({"location": {"lat": True, "lng": 0}}, "location.lat"),
        ({"status": "flying"}, "status"),
        ({"kind": "handoff"}, "kind"),
        ({"applied": True}, "applied"),
        ({"eta": ""}, "eta"),
    ],
)
def test_what_cannot_be_recorded_as_sent_is_refused_naming_the_field(changes, field):
    assert fields_refused(good(**changes)) == [field]


def test_every_kind_names_the_field_it_needs():
    assert fields_refused({"reference": "A-3", "occurred_at": "2026-11-30T09:05:00Z"}) == ["status"]
    assert fields_refused(good(kind="location")) == ["location"]
    assert fields_refused(good(kind="eta", eta=None)) == ["eta"]
    assert fields_refused({}) == ["occurred_at", "reference", "status"]


def test_an_event_is_recorded_as_sent():
    event = parse_event(
        good(
            reference=1042,
            event_id=7,
            occurred_at="2026-11-30T10:05:00.123456789+01:00",
            eta="2026-11-30 11:00Z",
            location={"lat": 51, "lng": -0.1246},
            note=" Left with neighbour\n",
            proof={"signed_by": "Ann"},
        )
    )

    assert (event.reference, event.event_id, event.note) == ("1042", "7", " Left with neighbour\n")
    assert event.occurred_at == datetime(2026, 11, 30, 9, 5, 0, 123456, tzinfo=UTC)
    assert event.eta == datetime(2026, 11, 30, 11, 0, tzinfo=UTC)
    assert (event.latitude, event.longitude, event.raw_status) == (51.0, -0.1246, "in_transit")
    assert event.proof == {"signed_by": "Ann"}


def test_a_time_without_offset_is_read_in_the_zone_given_to_the_parser():
    event = parse_event(good(occurred_at="2026-07-01T09:05:00"), tz=LONDON)

    assert event.occurred_at == datetime(2026, 7, 1, 8, 5, tzinfo=UTC)


def test_a_batch_names_each_refused_field_by_its_index():
    batch = {"events": [good(), good(status="flying"), "x"], "extra": 1}

    with pytest.raises(InvalidEvent) as refused:
        NativeAdapter().parse(json.dumps(batch).encode(), headers={}, tz=UTC)

    assert refused.value.fields == {
        "extra": ["Unknown field."],
        "events[1].status": ['"flying" is not a valid choice.'],
        "events[2]": ["Expected an object."],
    }
    assert refused.value.permanent


def test_a_csv_row_reads_its_columns_and_names_them_in_errors():
    row = {"reference": "A-3", "status": "delivered", "occurred_at": "2026-07-01 09:05", "latitude": "51.5"}

    with pytest.raises(InvalidEvent) as refused:
        parse_csv_row(row, tz=LONDON)
    event = parse_csv_row({**row, "longitude": "-0.12", "kind": "handoff"}, tz=LONDON)

    assert refused.value.fields == {"longitude": ["Give both latitude and longitude, or neither."]}
    assert (event.kind, event.occurred_at) == ("status", datetime(2026, 7, 1, 8, 5, tzinfo=UTC))
    assert (event.latitude, event.longitude) == (51.5, -0.12)


def test_the_documented_event_shape_has_exactly_the_fields_the_parser_reads():
    assert set(NativeEventSerializer().fields) == EVENT_FIELDS


@pytest.mark.django_db(transaction=True)
def test_an_upload_accepts_exactly_the_rows_it_records(custody, partner_client):
    # Before, both rows were accepted (`accepted: 2`) and the worker skipped the one it could not read.
    text = (
        "reference,status,occurred_at\n"
        f"SWIFT-77,picked_up,{at(0)}\n"
        f"SWIFT-77,in_transit,{MORNING + timedelta(minutes=5):%Y-%m-%dT%H:%M}:0Z\n"  # one-digit seconds
        f"SWIFT-77,out_for_delivery,{MORNING:%Y%m%d}\n"  # was read as epoch seconds
    )

    response = partner_client(custody.partner).post(
        "/api/partner/v1/uploads", data=text, content_type="text/csv"
    )

    report = response.json()
    assert (report["rows"], report["accepted"]) == (3, 1)
    assert [(e["row"], list(e["fields"])) for e in report["errors"]] == [
        (3, ["occurred_at"]),
        (4, ["occurred_at"]),
    ]
    message = InboundMessage.objects.get()
    assert (message.state, message.events_recorded) == ("processed", 1)
    assert list(TrackingEvent.objects.values_list("status", flat=True)) == ["picked_up"]


@pytest.mark.django_db  # the message waits for this test to process it
def test_an_upload_s_times_without_offset_are_read_in_the_zone_of_the_day_it_was_accepted(custody):
    custody.partner.timezone = "America/New_York"
    custody.partner.save(update_fields=["timezone"])
    local = (MORNING - timedelta(hours=1)).astimezone(ZoneInfo("America/New_York")).replace(tzinfo=None)
    body = f"reference,status,occurred_at\nSWIFT-77,picked_up,{local.isoformat()}\n".encode()
    result = services.accept_upload(custody.partner, body=body, headers={})
    custody.partner.timezone = "Asia/Tokyo"  # changed before the worker got to the message
    custody.partner.save(update_fields=["timezone"])

    services.process_inbound(result.message.pk)

    assert TrackingEvent.objects.get().occurred_at == MORNING - timedelta(hours=1)


def test_only_the_driver_link_s_own_reports_name_files_in_baton_s_storage():
    stored = {"photo": "proof/1/photo-0.jpg", "signed_by": "Ann"}

    event = parse_event(good(proof=stored), stored_files=True)

    assert event.proof == stored
    assert fields_refused(good(proof=stored)) == ["proof"]
