"""The quick check of a single native event never accepts what the serializer would refuse."""

from hypothesis import given, settings
from hypothesis import strategies as st

from partners.serializers import NativeEventSerializer, quick_native_event

MOMENTS = st.sampled_from(
    [
        "2026-11-23T08:00:00Z",
        "2026-11-23T08:00:00+01:00",
        "2026-11-23T08:00:00",  # naive
        "2026-13-23T08:00:00Z",
        "1999-12-31T23:59:59Z",
        "9999-12-31T23:59:59-05:00",
        "yesterday",
        "",
    ]
)
TEXT = st.one_of(
    st.sampled_from(["SW-1", " SW-1", "", "a" * 129, "x\x00y", "line\nbreak", "ok"]),
    st.text(max_size=8),
    st.integers(),
    st.none(),
)
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-200, 200), st.booleans(), st.text(max_size=3)
)


BASES = [
    {"reference": "SW-1", "event_id": "e1", "status": "in_transit", "occurred_at": "2026-11-23T08:00:00Z"},
    {
        "reference": "SW-1",
        "kind": "location",
        "location": {"lat": 51.5, "lng": -0.1},
        "eta": "2026-11-23T09:00:00Z",
        "occurred_at": "2026-11-23T08:00:00+01:00",
    },
    {"reference": "SW-1", "kind": "note", "note": "gate code 12", "occurred_at": "2026-11-23T08:00:00Z"},
]
FIELDS = {
    "reference": TEXT,
    "event_id": TEXT,
    "kind": st.sampled_from(["status", "location", "eta", "note", "proof", "handoff", "other", 3]),
    "status": st.sampled_from(["delivered", "flying", "", None]),
    "reason": st.sampled_from(["recipient_not_home", "bad", None]),
    "sub_status": TEXT,
    "raw_status": TEXT,
    "occurred_at": MOMENTS,
    "eta": st.one_of(MOMENTS, st.none()),
    "note": TEXT,
    "location": st.one_of(
        st.fixed_dictionaries({"lat": NUMBERS, "lng": NUMBERS}),
        st.fixed_dictionaries({"lat": NUMBERS}),
        st.fixed_dictionaries({"lat": NUMBERS, "lng": NUMBERS, "alt": NUMBERS}),
        st.just([51.5, -0.1]),
    ),
    "proof": st.just({"signed_by": "A"}),
    "status_code": st.just(1),
}


@st.composite
def events(draw):
    """A valid event with one or two fields changed, added or removed: near the edge of valid."""
    data = dict(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 2))):
        name = draw(st.sampled_from(sorted(FIELDS)))
        if name in data and draw(st.booleans()):
            del data[name]
        else:
            data[name] = draw(FIELDS[name])
    return data


@settings(max_examples=600, deadline=None)
@given(events())
def test_what_the_quick_check_accepts_the_serializer_accepts_with_the_same_reference(data):
    if quick_native_event(data):
        serializer = NativeEventSerializer(data=data)
        assert serializer.is_valid(), serializer.errors
        assert serializer.validated_data["reference"] == data["reference"]


def test_the_usual_status_and_position_events_take_the_quick_path():
    status = {
        "reference": "SW-1",
        "event_id": "e1",
        "status": "in_transit",
        "occurred_at": "2026-11-23T08:00:00Z",
    }
    position = {
        "reference": "SW-1",
        "event_id": "e2",
        "kind": "location",
        "location": {"lat": 51.5, "lng": -0.1},
        "occurred_at": "2026-11-23T08:00:00+00:00",
    }

    assert quick_native_event(status)
    assert quick_native_event(position)
    assert not quick_native_event({**position, "location": {"lat": 91, "lng": 0}})
    assert not quick_native_event({**status, "status": None})
    assert not quick_native_event({**status, "applied": True})
