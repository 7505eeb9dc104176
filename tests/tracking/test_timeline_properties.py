from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tracking.statuses import TERMINAL_STATUSES, EventKind, Reason, Status
from tracking.timeline import CustodyLink, EventFact, Timeline, build_timeline

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
BATON = None
DESTINATION = (52.52, 13.405)
MODERATE = settings(max_examples=200, deadline=None)

ON_THE_ROAD = [
    Status.INFO_RECEIVED,
    Status.ASSIGNED,
    Status.PICKED_UP,
    Status.IN_TRANSIT,
    Status.OUT_FOR_DELIVERY,
]


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@st.composite
def status_paths(draw: st.DrawFn) -> list[str]:
    """A realistic sequence of statuses, possibly cut short because the journey is still under way."""
    story = draw(st.sampled_from(["happy", "reattempts", "return", "cancel", "pickup_point"]))
    path: list[str] = list(ON_THE_ROAD)
    if story == "happy":
        path += [Status.ARRIVING, Status.DELIVERED]
    elif story == "reattempts":
        loops = draw(st.integers(1, 3))
        path += [Status.ATTEMPT_FAILED, Status.OUT_FOR_DELIVERY] * loops + [Status.DELIVERED]
    elif story == "return":
        path += [Status.ATTEMPT_FAILED, Status.EXCEPTION, Status.RETURNING, Status.RETURNED]
    elif story == "cancel":
        path = [*path[: draw(st.integers(0, len(path)))], Status.CANCELLED, Status.RETURNING, Status.RETURNED]
    else:
        path += [Status.ATTEMPT_FAILED, Status.AVAILABLE_FOR_PICKUP, Status.DELIVERED]
    # Half the journeys are finished, the rest are still under way.
    return path[: draw(st.one_of(st.just(len(path)), st.integers(0, len(path))))]


@st.composite
def journeys(draw: st.DrawFn) -> tuple[list[EventFact], list[CustodyLink]]:
    """Status, hand-off, location, ETA, proof and note facts along a chain of custodians, plus noise."""
    holders = draw(st.lists(st.integers(1, 5), min_size=1, max_size=4))
    handoffs = sorted(
        draw(
            st.lists(st.integers(10, 900), min_size=len(holders) - 1, max_size=len(holders) - 1, unique=True)
        )
    )
    starts = [draw(st.integers(-30, 30)), *handoffs]
    ends: list[int | None] = [*handoffs, draw(st.one_of(st.none(), st.integers(901, 1200)))]
    custody = [
        CustodyLink(i + 1, p, at(s), None if e is None else at(e), i or None)
        for i, (p, s, e) in enumerate(zip(holders, starts, ends, strict=True))
    ]

    def holder_at(minute: int) -> int:
        return next((p for p, e in zip(holders, ends, strict=True) if e is None or minute < e), holders[-1])

    specs: list[dict] = []
    minute = 0
    for status in draw(status_paths()):
        minute += draw(st.integers(0, 120))
        partner: int | None = BATON if status == Status.CANCELLED else holder_at(minute)
        if draw(st.integers(0, 9)) == 0:  # now and then operations, a former holder or a stranger speaks
            partner = draw(st.one_of(st.none(), st.integers(1, 7)))
        extra: dict = {}
        if status == Status.DELIVERED and draw(st.booleans()):
            extra = {
                "latitude": 52.52 + draw(st.floats(-0.05, 0.05)),
                "longitude": 13.405,
                "proof": {"p": minute},
            }
        if status == Status.ATTEMPT_FAILED:
            extra = {"reason": draw(st.sampled_from([Reason.RECIPIENT_NOT_HOME, Reason.ADDRESS_NOT_FOUND]))}
        specs.append(
            {"kind": EventKind.STATUS, "status": status, "minute": minute, "partner_id": partner, **extra}
        )
    for boundary, giver in zip(handoffs, holders, strict=False):
        specs.append({"kind": EventKind.HANDOFF, "minute": boundary, "partner_id": giver})
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from([EventKind.LOCATION, EventKind.ETA, EventKind.PROOF, EventKind.NOTE]))
        when = draw(st.integers(-10, 1000))
        spec: dict = {"kind": kind, "minute": when, "partner_id": holder_at(when)}
        if kind == EventKind.ETA:
            spec["eta"] = at(when + draw(st.integers(5, 300)))
        elif kind == EventKind.LOCATION:
            spec |= {"latitude": 52.5, "longitude": 13.4}
        elif kind == EventKind.PROOF:
            spec["proof"] = {"photo": f"{when}.jpg"}
        specs.append(spec)
    for _ in range(draw(st.integers(0, 3))):  # stale or contradictory reports, from anyone at any time
        specs.append(
            {
                "kind": EventKind.STATUS,
                "status": draw(st.sampled_from(list(Status))),
                "minute": draw(st.integers(0, 1200)),
                "partner_id": draw(st.one_of(st.none(), st.sampled_from(holders))),
            }
        )

    events = []
    for i, spec in enumerate(specs):
        occurred = spec.pop("minute")
        delay = draw(st.integers(-30, 240))  # negative: the partner's clock runs fast
        events.append(
            EventFact(
                id=i, occurred_at=at(occurred), received_at=at(occurred + delay), dedupe_key=f"k{i}", **spec
            )
        )
    return events, custody


def build(events: list[EventFact], custody: list[CustodyLink]) -> Timeline:
    return build_timeline(events, custody, destination=DESTINATION)


@MODERATE
@given(journey=journeys(), data=st.data())
def test_any_arrival_order_with_any_retries_gives_the_same_timeline(journey, data):
    events, custody = journey
    copies = data.draw(st.lists(st.sampled_from(events), max_size=10)) if events else []
    retries = [
        replace(
            e, id=10_000 + n, received_at=e.received_at + timedelta(minutes=data.draw(st.integers(0, 5000)))
        )
        for n, e in enumerate(copies)
    ]

    delivered = data.draw(st.permutations(events + retries))
    assigned = data.draw(st.permutations(custody))

    assert build(delivered, assigned) == build(events, custody)


@MODERATE
@given(journey=journeys())
def test_an_applied_terminal_status_is_never_undone(journey):
    events, custody = journey
    timeline = build(events, custody)
    by_id = {e.id: e for e in events}

    applied_statuses = [
        by_id[entry.event_id].status
        for entry in timeline.entries
        if entry.applied and by_id[entry.event_id].kind == EventKind.STATUS and by_id[entry.event_id].status
    ]
    terminal_seen = [s for s in applied_statuses if s in TERMINAL_STATUSES]
    if terminal_seen:
        coming_back = terminal_seen[0] == Status.CANCELLED and timeline.status == Status.RETURNING
        assert timeline.status in TERMINAL_STATUSES or coming_back
        assert timeline.eta is None or coming_back
    if Status.DELIVERED in terminal_seen:
        assert timeline.status == Status.DELIVERED


@MODERATE
@given(journey=journeys())
def test_entries_are_one_per_fact_in_time_order_and_nothing_is_ignored_silently(journey):
    events, custody = journey
    timeline = build(events, custody)
    by_id = {e.id: e for e in events}

    keys = [by_id[entry.event_id].dedupe_key for entry in timeline.entries]
    assert len(keys) == len(set(keys)) == len({e.dedupe_key for e in events})
    assert [e.effective_at for e in timeline.entries] == sorted(e.effective_at for e in timeline.entries)
    assert all(entry.flags for entry in timeline.entries if not entry.applied)
    assert set(timeline.flags) >= {flag for entry in timeline.entries for flag in entry.flags}
