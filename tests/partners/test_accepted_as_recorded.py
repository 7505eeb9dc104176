"""Whatever JSON a partner puts in an event, the API refuses it (a 4xx JSON error) or records exactly
what it acknowledged: one parser decides, when the event is accepted."""

import json
from datetime import UTC, datetime, timedelta
from datetime import timezone as fixed_offset
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from partners import services
from partners.adapters.native import EVENT_FIELDS
from tests.factories import CustodyFactory
from tracking.models import TrackingEvent
from tracking.statuses import EventKind, Reason, Status

pytestmark = pytest.mark.django_db  # each example's stored message is processed by the test itself

HELD = "A-3"
# Text as JSON can carry it, including what PostgreSQL cannot store (NUL, unpaired surrogates).
TEXT = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=10),
    st.sampled_from(
        ["", " ", "\x00", "a\x00b", "\ud800", "x\udfff", HELD, f" {HELD} ", "a" * 201, "line\nbreak"]
    ),
)
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=6,
)
ODD_TIMES = st.sampled_from(
    [
        "2026-11-30T9:5:00Z",  # hours and minutes unpadded
        "20260101",  # a date in ISO 8601's basic format; once read as epoch seconds (1970)
        "2026-01-01",  # a date, not a moment
        "2026-11-30T09:05:00",  # no offset
        "2026-11-30T24:00:00Z",
        "2026-02-30T09:00:00Z",
        "2026-11-30T09:05:00+24:00",
        "1999-12-31T23:59:59Z",
        "9998-12-31T23:59:59Z",
        "9999-12-31T23:59:59-05:00",
        "2026-11-30t09:05:00.123456789z",
        "1764493500",
        "yesterday",
    ]
)
ZONES = [UTC, fixed_offset(timedelta(hours=1)), fixed_offset(-timedelta(hours=5, minutes=30))]


@st.composite
def moments(draw) -> str:
    """A time near now (the suite runs on any day), written as partners write them."""
    moment = timezone.now() + timedelta(
        minutes=draw(st.integers(-60 * 24 * 30, 60 * 24)), microseconds=draw(st.integers(0, 999_999))
    )
    local = moment.astimezone(draw(st.sampled_from(ZONES)))
    style = draw(st.sampled_from(["isoformat", "z", "no-seconds", "space", "basic-offset", "millis"]))
    if style == "isoformat":
        return local.isoformat()
    if style == "z":
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if style == "no-seconds":
        return local.strftime("%Y-%m-%dT%H:%M") + local.isoformat()[-6:]
    if style == "space":
        return local.isoformat(sep=" ")
    if style == "basic-offset":
        return local.strftime("%Y-%m-%dT%H:%M:%S%z")
    return local.isoformat(timespec="milliseconds")


def choices(values) -> st.SearchStrategy:
    return st.one_of(st.sampled_from(sorted(values)), ANY_JSON)


COORDINATE = st.one_of(st.floats(-200, 200), st.integers(-200, 200), ANY_JSON)
VALUES = {
    "reference": st.one_of(st.just(HELD), st.sampled_from([f" {HELD}", HELD.lower(), 3, ""]), ANY_JSON),
    "event_id": st.one_of(TEXT, st.integers(), ANY_JSON),
    "kind": choices({*EventKind.values, "other"}),
    "status": choices(Status.values),
    "reason": choices(Reason.values),
    "sub_status": st.one_of(TEXT, ANY_JSON),
    "raw_status": st.one_of(TEXT, ANY_JSON),
    "note": st.one_of(TEXT, ANY_JSON),
    "occurred_at": st.one_of(moments(), ODD_TIMES, ANY_JSON),
    "eta": st.one_of(moments(), st.none(), ODD_TIMES, ANY_JSON),
    "location": st.one_of(
        st.fixed_dictionaries({"lat": COORDINATE, "lng": COORDINATE}),
        st.dictionaries(st.sampled_from(["lat", "lng", "alt"]), COORDINATE, max_size=3),
        ANY_JSON,
    ),
    "proof": st.one_of(st.dictionaries(TEXT, ANY_JSON, max_size=3), ANY_JSON),
    "applied": ANY_JSON,  # only Baton decides this
}
assert set(VALUES) == {*EVENT_FIELDS, "applied"}


@st.composite
def events(draw) -> object:
    """A good status report with a few of its fields changed, added or taken away; rarely, not an object."""
    if draw(st.integers(0, 30)) == 0:
        return draw(ANY_JSON)
    event: dict = {"reference": HELD, "status": "in_transit", "occurred_at": draw(moments())}
    for name in draw(st.lists(st.sampled_from(sorted(VALUES)), max_size=4, unique=True)):
        if name in event and draw(st.booleans()):
            del event[name]
        else:
            event[name] = draw(VALUES[name])
    return event


def instant(text: str) -> datetime:
    """The moment an RFC 3339 time names (fractions past the microsecond dropped)."""
    return datetime.fromisoformat(text.upper())


def canonical(value: object) -> object:
    """JSON as a JSON store gives it back: numbers by value, however they were written."""
    return json.loads(json.dumps(value), parse_float=Decimal, parse_int=Decimal)


def as_recorded(sent: dict) -> dict:
    """What the documented format says the stored event holds for what was sent."""
    kind = sent.get("kind", "status")
    location = sent.get("location") or {}
    return {
        "kind": kind,
        "status": sent.get("status", ""),
        "reason": sent.get("reason", ""),
        "sub_status": sent.get("sub_status", ""),
        "raw_status": sent.get("raw_status") or sent.get("status") or kind,
        "occurred_at": instant(sent["occurred_at"]),
        "eta": instant(sent["eta"]) if sent.get("eta") is not None else None,
        "event_id": str(sent.get("event_id", "")),
        "latitude": float(location["lat"]) if location else None,
        "longitude": float(location["lng"]) if location else None,
        "proof": canonical(sent.get("proof") or None),
        "note": sent.get("note", ""),
    }


def stored(event: TrackingEvent) -> dict:
    return {
        "kind": event.kind,
        "status": event.status,
        "reason": event.reason,
        "sub_status": event.sub_status,
        "raw_status": event.raw_status,
        "occurred_at": event.occurred_at,
        "eta": event.eta,
        "event_id": event.event_id,
        "latitude": event.latitude,
        "longitude": event.longitude,
        "proof": canonical(event.proof),
        "note": event.note,
    }


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sent=events())
def test_any_json_in_any_field_is_refused_as_json_or_recorded_exactly_as_acknowledged(sent, partner_client):
    custody = CustodyFactory(partner_reference=HELD)  # a partner and a job of their own per example
    response = partner_client(custody.partner).post(
        "/api/partner/v1/events", data=json.dumps(sent), content_type="application/json"
    )

    if 400 <= response.status_code < 500:
        body = response.json()
        assert set(body) >= {"error", "message"}, body
        assert response.status_code in (400, 404), body
        return
    assert response.status_code == 202, response.content
    acknowledged = response.json()
    assert acknowledged["accepted"] == 1
    assert services.process_inbound(acknowledged["message_id"]) == "processed"
    [event] = TrackingEvent.objects.filter(message_id=acknowledged["message_id"])
    assert event.shipment_id == custody.shipment_id
    assert stored(event) == as_recorded(sent)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("occurred_at", "2026-11-30T9:5:00Z"),
        ("occurred_at", "20260101"),
        ("occurred_at", "2026-11-30T09:05:00"),
        ("reference", f" {HELD} "),
        ("proof", {"signed_by": "A\x00"}),
        ("note", "\ud800"),
    ],
)
def test_what_the_worker_could_not_record_as_sent_is_a_400_naming_the_field(partner_client, field, value):
    custody = CustodyFactory(partner_reference=HELD)
    sent = {
        "reference": HELD,
        "status": "in_transit",
        "occurred_at": timezone.now().isoformat(),
        field: value,
    }

    response = partner_client(custody.partner).post(
        "/api/partner/v1/events", data=json.dumps(sent), content_type="application/json"
    )

    assert response.status_code == 400
    assert list(response.json()["fields"]) == [field]
    assert not TrackingEvent.objects.exists()


@pytest.mark.parametrize("url", ["/api/partner/v1/events", "/api/partner/v1/handoffs"])
def test_an_unknown_field_named_with_an_unpaired_surrogate_is_a_400_that_quotes_it_escaped(
    partner_client, url
):
    custody = CustodyFactory(partner_reference=HELD)
    sent = {"reference": HELD, "status": "in_transit", "occurred_at": timezone.now().isoformat(), "\ud800": 1}

    response = partner_client(custody.partner).post(
        url, data=json.dumps(sent), content_type="application/json"
    )

    assert response.status_code == 400
    assert "\\ud800" in response.json()["fields"]
