import itertools
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from tracking.statuses import SUB_STATUS_AT_PICKUP, EventKind, Reason, Status
from tracking.timeline import (
    FLAG_BEFORE_CUSTODY,
    FLAG_CLOCK_SKEW,
    FLAG_CONFLICT,
    FLAG_FAR_FROM_DESTINATION,
    FLAG_FORMER_CUSTODIAN,
    FLAG_NOT_CUSTODIAN,
    FLAG_REGRESSION,
    CustodyLink,
    EventFact,
    Rules,
    Timeline,
    build_timeline,
    haversine_m,
)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
FLEET, THREE_PL, GIG, OTHER_COURIER, STRANGER = 1, 2, 3, 4, 99
BATON = None
DESTINATION = (52.5200, 13.4050)  # Berlin, Alexanderplatz-ish
_ids = itertools.count(1)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def fact(
    status: str | None = None,
    *,
    minute: float,
    partner: int | None = FLEET,
    kind: str = EventKind.STATUS,
    received: float | None = None,
    key: str | None = None,
    **extra: Any,
) -> EventFact:
    return EventFact(
        id=next(_ids),
        partner_id=partner,
        kind=kind,
        occurred_at=at(minute),
        received_at=at(minute if received is None else received),
        dedupe_key=key or f"{partner}:{kind}:{status}:{minute}",
        status=status,
        **extra,
    )


def link(
    id: int, partner: int, start: float, end: float | None = None, parent: int | None = None
) -> CustodyLink:
    return CustodyLink(id, partner, at(start), None if end is None else at(end), parent)


FLEET_ONLY = [link(1, FLEET, 0)]


def entry_for(timeline: Timeline, event: EventFact) -> Any:
    return next(e for e in timeline.entries if e.event_id == event.id)


# --- Idempotence and order ---------------------------------------------------------------------


def test_nothing_reported_yet_is_pending():
    timeline = build_timeline([], [])

    assert timeline.status == Status.PENDING
    assert timeline.entries == ()
    assert timeline.status_at is None
    assert timeline.last_event_at is None
    assert timeline.flags == ()


def test_the_same_webhook_three_times_is_one_entry_from_the_first_receipt():
    first = fact(Status.PICKED_UP, minute=10, received=11, key="onfleet:abc")
    retry = fact(Status.PICKED_UP, minute=10, received=40, key="onfleet:abc")
    replay = fact(Status.PICKED_UP, minute=10, received=60 * 72, key="onfleet:abc")

    timeline = build_timeline([replay, first, retry], FLEET_ONLY)

    assert [e.event_id for e in timeline.entries] == [first.id]
    assert timeline.status == Status.PICKED_UP


def test_duplicates_received_at_the_same_moment_keep_the_smallest_id():
    a = fact(Status.IN_TRANSIT, minute=5, key="k")
    b = fact(Status.IN_TRANSIT, minute=5, key="k")

    assert build_timeline([b, a], FLEET_ONLY) == build_timeline([a, b], FLEET_ONLY)
    assert build_timeline([b, a], FLEET_ONLY).entries[0].event_id == a.id


def test_happy_path_reads_as_a_journey_with_when_and_why():
    events = [
        fact(Status.INFO_RECEIVED, minute=0, partner=BATON),
        fact(Status.ASSIGNED, minute=5, sub_status=SUB_STATUS_AT_PICKUP),
        fact(Status.PICKED_UP, minute=12),
        fact(Status.OUT_FOR_DELIVERY, minute=30),
        fact(Status.DELIVERED, minute=55, proof={"photo": "p.jpg"}),
    ]

    timeline = build_timeline(events, FLEET_ONLY)

    assert timeline.status == Status.DELIVERED
    assert timeline.status_at == at(55)
    assert timeline.last_event_at == at(55)
    assert timeline.proof == {"photo": "p.jpg"}
    assert timeline.custody_id == 1
    assert timeline.partner_id == FLEET
    assert all(e.applied and e.flags == () for e in timeline.entries)


def test_a_late_scan_slots_into_place_without_moving_the_status():
    picked = fact(Status.PICKED_UP, minute=10)
    out = fact(Status.OUT_FOR_DELIVERY, minute=40)
    late_transit = fact(Status.IN_TRANSIT, minute=20, received=90)

    timeline = build_timeline([picked, out, late_transit], FLEET_ONLY)

    assert [e.event_id for e in timeline.entries] == [picked.id, late_transit.id, out.id]
    assert timeline.status == Status.OUT_FOR_DELIVERY
    assert timeline.entries[1].applied


def test_same_minute_scans_follow_the_journey_order_whatever_the_arrival_order():
    in_transit = fact(Status.IN_TRANSIT, minute=10)
    picked = fact(Status.PICKED_UP, minute=10)

    timeline = build_timeline([in_transit, picked], FLEET_ONLY)

    assert [e.event_id for e in timeline.entries] == [picked.id, in_transit.id]
    assert timeline.status == Status.IN_TRANSIT


def test_tie_break_gives_one_answer_for_every_arrival_order():
    events = [
        fact(Status.OUT_FOR_DELIVERY, minute=10),
        fact(Status.ARRIVING, minute=10, eta=at(20)),
        fact(kind=EventKind.LOCATION, minute=10, latitude=1.0, longitude=2.0),
        fact(kind=EventKind.ETA, minute=10, eta=at(25)),
        fact(kind=EventKind.NOTE, minute=10, key="note-a"),
        fact(kind=EventKind.NOTE, minute=10, key="note-b"),
    ]
    expected = build_timeline(events, FLEET_ONLY)

    for order in itertools.permutations(events):
        assert build_timeline(order, FLEET_ONLY) == expected


def test_a_clock_from_the_future_is_clamped_to_when_we_received_it():
    skewed = fact(Status.PICKED_UP, minute=180, received=10)
    slightly_fast = fact(Status.IN_TRANSIT, minute=24, received=20)

    timeline = build_timeline([skewed, slightly_fast], FLEET_ONLY)

    assert entry_for(timeline, skewed).effective_at == at(10)
    assert entry_for(timeline, skewed).flags == (FLAG_CLOCK_SKEW,)
    assert entry_for(timeline, skewed).applied
    assert entry_for(timeline, slightly_fast).effective_at == at(24)
    assert entry_for(timeline, slightly_fast).flags == ()
    assert timeline.status == Status.IN_TRANSIT
    assert timeline.flags == (FLAG_CLOCK_SKEW,)


# --- No silent regression ----------------------------------------------------------------------


def test_a_stale_arriving_that_happened_after_delivered_is_kept_and_flagged():
    delivered = fact(Status.DELIVERED, minute=30)
    arriving = fact(Status.ARRIVING, minute=31, received=45)

    timeline = build_timeline([delivered, arriving], FLEET_ONLY)

    assert timeline.status == Status.DELIVERED
    assert timeline.status_at == at(30)
    assert entry_for(timeline, arriving).flags == (FLAG_REGRESSION,)
    assert not entry_for(timeline, arriving).applied
    assert timeline.flags == (FLAG_REGRESSION,)


def test_an_arriving_that_happened_before_delivered_slots_in_quietly():
    delivered = fact(Status.DELIVERED, minute=30)
    arriving = fact(Status.ARRIVING, minute=25, received=45)

    timeline = build_timeline([delivered, arriving], FLEET_ONLY)

    assert timeline.status == Status.DELIVERED
    assert [e.event_id for e in timeline.entries] == [arriving.id, delivered.id]
    assert all(e.applied and e.flags == () for e in timeline.entries)


def test_a_failed_attempt_loops_back_to_out_for_delivery_and_then_delivers():
    events = [
        fact(Status.OUT_FOR_DELIVERY, minute=0),
        fact(Status.ATTEMPT_FAILED, minute=20, reason=Reason.RECIPIENT_NOT_HOME),
        fact(Status.OUT_FOR_DELIVERY, minute=60 * 24),
        fact(Status.DELIVERED, minute=60 * 24 + 30),
    ]

    timeline = build_timeline(events, FLEET_ONLY)

    assert timeline.status == Status.DELIVERED
    assert timeline.flags == ()
    assert all(e.applied for e in timeline.entries)


def test_a_failed_attempt_keeps_its_reason_while_it_is_the_status():
    timeline = build_timeline(
        [fact(Status.ATTEMPT_FAILED, minute=20, reason=Reason.ADDRESS_NOT_FOUND)], FLEET_ONLY
    )

    assert timeline.reason == Reason.ADDRESS_NOT_FOUND


def test_an_exception_can_lead_anywhere():
    events = [
        fact(Status.EXCEPTION, minute=0, reason=Reason.VEHICLE_ISSUE),
        fact(Status.IN_TRANSIT, minute=30),
    ]

    timeline = build_timeline(events, FLEET_ONLY)

    assert timeline.status == Status.IN_TRANSIT
    assert timeline.reason is None


def test_a_parcel_at_a_pickup_point_can_be_collected():
    events = [fact(Status.AVAILABLE_FOR_PICKUP, minute=0), fact(Status.DELIVERED, minute=60 * 30)]

    assert build_timeline(events, FLEET_ONLY).status == Status.DELIVERED


def test_carriers_stepping_back_a_stage_is_believed():
    events = [fact(Status.OUT_FOR_DELIVERY, minute=0), fact(Status.IN_TRANSIT, minute=40)]

    timeline = build_timeline(events, FLEET_ONLY)

    assert timeline.status == Status.IN_TRANSIT
    assert timeline.flags == ()


def test_goods_come_back_after_a_cancellation():
    events = [
        fact(Status.PICKED_UP, minute=0),
        fact(Status.CANCELLED, minute=30, partner=BATON, reason=Reason.CANCELLED_BY_CUSTOMER),
        fact(Status.RETURNING, minute=60),
        fact(Status.RETURNED, minute=120),
    ]

    timeline = build_timeline(events, FLEET_ONLY)

    assert timeline.status == Status.RETURNED
    assert timeline.status_at == at(120)
    assert timeline.flags == ()


def test_a_late_cancellation_echo_while_returning_does_not_undo_the_return():
    events = [
        fact(Status.CANCELLED, minute=0, partner=BATON),
        fact(Status.RETURNING, minute=60),
        fact(Status.CANCELLED, minute=90, key="merchant-echo"),
    ]

    timeline = build_timeline(events, FLEET_ONLY)

    assert timeline.status == Status.RETURNING
    assert timeline.flags == ()


def test_a_cancellation_does_not_go_back_on_the_road():
    events = [fact(Status.CANCELLED, minute=0, partner=BATON), fact(Status.OUT_FOR_DELIVERY, minute=60)]

    timeline = build_timeline(events, FLEET_ONLY)

    assert timeline.status == Status.CANCELLED
    assert timeline.flags == (FLAG_REGRESSION,)


def test_cancelling_a_delivered_parcel_is_a_conflict_not_an_overwrite():
    delivered = fact(Status.DELIVERED, minute=0)
    cancelled = fact(Status.CANCELLED, minute=60 * 5, partner=BATON)

    timeline = build_timeline([delivered, cancelled], FLEET_ONLY)

    assert timeline.status == Status.DELIVERED
    assert entry_for(timeline, cancelled).flags == (FLAG_CONFLICT,)
    assert not entry_for(timeline, cancelled).applied
    assert entry_for(timeline, delivered).flags == ()


def test_delivered_reported_again_is_a_quiet_confirmation():
    first = fact(Status.DELIVERED, minute=30, proof={"signature": "A. Smith"})
    again = fact(Status.DELIVERED, minute=33)

    timeline = build_timeline([first, again], FLEET_ONLY)

    assert entry_for(timeline, again).applied
    assert timeline.flags == ()
    assert timeline.status_at == at(30)
    assert timeline.proof == {"signature": "A. Smith"}


# --- Custody -----------------------------------------------------------------------------------


def test_after_a_handoff_the_fleet_cannot_speak_for_the_contractor():
    custody = [link(1, FLEET, 0, 60), link(2, GIG, 60, parent=1)]
    events = [
        fact(Status.PICKED_UP, minute=10),
        fact(kind=EventKind.HANDOFF, minute=60),
        fact(Status.IN_TRANSIT, minute=65, partner=GIG),
    ]
    fleet_after_handoff = fact(Status.DELIVERED, minute=90)

    timeline = build_timeline([*events, fleet_after_handoff], custody)

    assert timeline.status == Status.IN_TRANSIT
    assert timeline.custody_id == 2
    assert timeline.partner_id == GIG
    assert entry_for(timeline, fleet_after_handoff).flags == (FLAG_FORMER_CUSTODIAN,)
    assert not entry_for(timeline, fleet_after_handoff).applied
    # Silence is the sweep's to judge (tests/partners/test_sweep.py): reconciliation never raises it.
    assert timeline.flags == (FLAG_FORMER_CUSTODIAN,)


def test_a_partner_that_never_held_the_parcel_is_not_believed():
    stranger = fact(Status.DELIVERED, minute=10, partner=STRANGER)

    timeline = build_timeline([stranger], FLEET_ONLY)

    assert timeline.status == Status.PENDING
    assert entry_for(timeline, stranger).flags == (FLAG_NOT_CUSTODIAN,)
    assert entry_for(timeline, stranger).custody_id == 1


def test_a_courier_reporting_before_its_turn_is_not_custodian_yet():
    custody = [link(1, FLEET, 0, 60), link(2, GIG, 60)]
    early = fact(Status.PICKED_UP, minute=30, partner=GIG)

    timeline = build_timeline([early], custody)

    assert entry_for(timeline, early).flags == (FLAG_NOT_CUSTODIAN,)
    assert timeline.status == Status.PENDING


def test_the_first_custodian_may_scan_before_we_recorded_the_assignment():
    early_scan = fact(Status.PICKED_UP, minute=-5)

    timeline = build_timeline([early_scan], [link(1, FLEET, 0)])

    assert entry_for(timeline, early_scan).applied
    assert entry_for(timeline, early_scan).custody_id == 1
    assert timeline.status == Status.PICKED_UP


def test_operations_speak_for_the_shipment_even_before_anyone_holds_it():
    timeline = build_timeline([fact(Status.CANCELLED, minute=0, partner=BATON)], [])

    assert timeline.status == Status.CANCELLED
    assert timeline.custody_id is None
    assert timeline.entries[0].applied


def test_a_handoff_is_an_entry_but_not_a_status():
    handoff = fact(kind=EventKind.HANDOFF, minute=60, partner=FLEET)
    custody = [link(1, FLEET, 0, 60), link(2, GIG, 60)]

    timeline = build_timeline([fact(Status.IN_TRANSIT, minute=10), handoff], custody)

    assert entry_for(timeline, handoff).applied
    assert entry_for(timeline, handoff).custody_id == 2
    assert timeline.status == Status.IN_TRANSIT


def test_a_nested_chain_fleet_3pl_gig_courier_and_another_courier_each_report_in_their_own_interval():
    custody = [
        link(1, FLEET, 0, 60),
        link(2, THREE_PL, 60, 120, parent=1),
        link(3, GIG, 120, 180, parent=2),
        link(4, OTHER_COURIER, 180, parent=3),
    ]
    events = [
        fact(Status.PICKED_UP, minute=5),
        fact(kind=EventKind.HANDOFF, minute=60),
        fact(Status.IN_TRANSIT, minute=70, partner=THREE_PL),
        fact(kind=EventKind.HANDOFF, minute=120, partner=THREE_PL),
        fact(Status.OUT_FOR_DELIVERY, minute=130, partner=GIG),
        fact(Status.ATTEMPT_FAILED, minute=150, partner=GIG, reason=Reason.ACCESS_RESTRICTED),
        fact(kind=EventKind.HANDOFF, minute=180, partner=GIG),
        fact(Status.OUT_FOR_DELIVERY, minute=200, partner=OTHER_COURIER),
    ]
    three_pl_meddling = fact(Status.DELIVERED, minute=140, partner=THREE_PL)

    timeline = build_timeline([*events, three_pl_meddling], custody)

    assert [entry_for(timeline, e).custody_id for e in events] == [1, 2, 2, 3, 3, 3, 4, 4]
    assert all(entry_for(timeline, e).applied for e in events)
    assert entry_for(timeline, three_pl_meddling).flags == (FLAG_FORMER_CUSTODIAN,)
    assert timeline.status == Status.OUT_FOR_DELIVERY
    assert (timeline.custody_id, timeline.partner_id) == (4, OTHER_COURIER)


def test_the_same_partner_taking_the_parcel_back_is_custodian_again():
    custody = [link(1, FLEET, 0, 60), link(2, GIG, 60, 120), link(3, FLEET, 120)]
    back = fact(Status.OUT_FOR_DELIVERY, minute=130)

    timeline = build_timeline([back], custody)

    assert entry_for(timeline, back).applied
    assert entry_for(timeline, back).custody_id == 3


# --- Conflicts and far deliveries ---------------------------------------------------------------


def test_a_courier_reporting_delivered_3km_from_the_address_is_flagged_but_believed():
    three_km_north = (DESTINATION[0] + 0.027, DESTINATION[1])
    delivered = fact(Status.DELIVERED, minute=40, latitude=three_km_north[0], longitude=three_km_north[1])

    timeline = build_timeline([delivered], FLEET_ONLY, destination=DESTINATION)

    assert 2900 < haversine_m(three_km_north, DESTINATION) < 3100
    assert timeline.status == Status.DELIVERED
    assert entry_for(timeline, delivered).applied
    assert timeline.flags == (FLAG_FAR_FROM_DESTINATION,)


def test_a_delivery_at_the_door_is_not_flagged():
    delivered = fact(Status.DELIVERED, minute=40, latitude=52.5205, longitude=13.4049)

    assert build_timeline([delivered], FLEET_ONLY, destination=DESTINATION).flags == ()


def test_a_failed_attempt_and_a_delivery_minutes_apart_from_two_partners_are_both_flagged():
    custody = [link(1, THREE_PL, 0, 60), link(2, GIG, 60)]
    failed = fact(Status.ATTEMPT_FAILED, minute=55, partner=THREE_PL)
    delivered = fact(Status.DELIVERED, minute=65, partner=GIG)

    timeline = build_timeline([failed, delivered], custody)

    assert entry_for(timeline, failed).flags == (FLAG_CONFLICT,)
    assert entry_for(timeline, delivered).flags == (FLAG_CONFLICT,)
    assert timeline.status == Status.DELIVERED


def test_operations_saying_lost_while_the_courier_says_delivered_is_a_conflict():
    lost = fact(Status.EXCEPTION, minute=30, partner=BATON, reason=Reason.LOST)
    delivered = fact(Status.DELIVERED, minute=40)

    timeline = build_timeline([lost, delivered], FLEET_ONLY)

    assert timeline.flags == (FLAG_CONFLICT,)
    assert timeline.status == Status.DELIVERED


def test_a_non_terminal_report_right_after_another_sources_delivery_is_both_regression_and_conflict():
    delivered = fact(Status.DELIVERED, minute=30, partner=BATON)
    out = fact(Status.OUT_FOR_DELIVERY, minute=35)

    timeline = build_timeline([delivered, out], FLEET_ONLY)

    assert entry_for(timeline, out).flags == (FLAG_CONFLICT, FLAG_REGRESSION)
    assert entry_for(timeline, delivered).flags == (FLAG_CONFLICT,)
    assert timeline.status == Status.DELIVERED


def test_contradictions_outside_the_window_or_from_one_partner_are_not_conflicts():
    custody = [link(1, THREE_PL, 0, 60), link(2, GIG, 60)]
    same_partner = [fact(Status.ATTEMPT_FAILED, minute=5), fact(Status.DELIVERED, minute=10)]
    far_apart = [
        fact(Status.ATTEMPT_FAILED, minute=44, partner=THREE_PL),
        fact(Status.DELIVERED, minute=60, partner=GIG),
    ]

    assert build_timeline(same_partner, FLEET_ONLY).flags == ()
    assert build_timeline(far_apart, custody).flags == ()


def test_a_return_after_cancellation_from_different_sources_is_not_a_conflict():
    events = [fact(Status.CANCELLED, minute=0, partner=BATON), fact(Status.RETURNING, minute=5)]

    assert build_timeline(events, FLEET_ONLY).flags == ()


# --- ETA, proof, sub-status ----------------------------------------------------------------------


def test_eta_is_the_current_custodians_latest_promise():
    custody = [link(1, FLEET, 0, 60), link(2, GIG, 60)]
    events = [
        fact(kind=EventKind.ETA, minute=10, eta=at(300)),
        fact(kind=EventKind.ETA, minute=70, partner=GIG, eta=at(200)),
        fact(Status.OUT_FOR_DELIVERY, minute=90, partner=GIG, eta=at(150)),
        fact(kind=EventKind.ETA, minute=80, partner=GIG, eta=at(180), received=95),
    ]

    assert build_timeline(events, custody).eta == at(150)


def test_eta_is_forgotten_once_delivered():
    events = [fact(kind=EventKind.ETA, minute=10, eta=at(60)), fact(Status.DELIVERED, minute=50)]

    assert build_timeline(events, FLEET_ONLY).eta is None


def test_proof_comes_from_the_delivery_else_from_a_proof_message():
    photo = fact(kind=EventKind.PROOF, minute=41, proof={"photo": "door.jpg"})
    signed = fact(Status.DELIVERED, minute=40, proof={"signature": "B. Jones"})
    bare = fact(Status.DELIVERED, minute=40)

    assert build_timeline([photo, signed], FLEET_ONLY).proof == {"signature": "B. Jones"}
    assert build_timeline([photo, bare], FLEET_ONLY).proof == {"photo": "door.jpg"}


def test_location_eta_and_notes_never_move_the_status():
    events = [
        fact(Status.IN_TRANSIT, minute=0),
        fact(kind=EventKind.LOCATION, minute=5, latitude=52.0, longitude=13.0),
        fact(kind=EventKind.NOTE, minute=6),
        fact(kind=EventKind.ETA, minute=7, eta=at(60)),
    ]

    timeline = build_timeline(events, FLEET_ONLY)

    assert timeline.status == Status.IN_TRANSIT
    assert timeline.status_at == at(0)
    assert timeline.last_event_at == at(7)
    assert all(e.applied for e in timeline.entries)


def test_a_courier_waiting_at_pickup_shows_the_sub_status():
    events = [
        fact(Status.ASSIGNED, minute=0),
        fact(Status.ASSIGNED, minute=5, sub_status=SUB_STATUS_AT_PICKUP),
    ]

    timeline = build_timeline(events, FLEET_ONLY)

    assert (timeline.status, timeline.sub_status, timeline.status_at) == (
        Status.ASSIGNED,
        SUB_STATUS_AT_PICKUP,
        at(0),
    )


def test_rules_are_tunable():
    skewed = fact(Status.PICKED_UP, minute=20, received=10)

    lenient = build_timeline([skewed], FLEET_ONLY, rules=Rules(clock_skew_tolerance=timedelta(minutes=15)))
    strict = build_timeline([skewed], FLEET_ONLY)

    assert lenient.flags == ()
    assert strict.flags == (FLAG_CLOCK_SKEW,)


def test_a_big_shuffled_journey_gives_one_answer():
    custody = [link(1, FLEET, 0, 60), link(2, GIG, 60)]
    events = [
        fact(Status.PICKED_UP, minute=5),
        fact(kind=EventKind.HANDOFF, minute=60),
        fact(Status.OUT_FOR_DELIVERY, minute=70, partner=GIG),
        fact(Status.ATTEMPT_FAILED, minute=80, partner=GIG),
        fact(Status.OUT_FOR_DELIVERY, minute=200, partner=GIG),
        fact(Status.DELIVERED, minute=230, partner=GIG, latitude=52.6, longitude=13.4),
        fact(Status.ARRIVING, minute=231, partner=GIG),
        fact(Status.DELIVERED, minute=100, partner=FLEET),
    ]
    expected = build_timeline(events, custody, destination=DESTINATION)
    rng = random.Random(7)

    for _ in range(50):
        shuffled = rng.sample(events, len(events))
        assert build_timeline(shuffled, custody, destination=DESTINATION) == expected


# --- Wave-1 follow-ups (issue 9) ------------------------------------------------------------------


def test_a_failed_attempt_voids_the_eta_promised_before_it():
    events = [
        fact(Status.OUT_FOR_DELIVERY, minute=0, eta=at(120)),
        fact(Status.ATTEMPT_FAILED, minute=125, reason=Reason.RECIPIENT_NOT_HOME),
    ]

    assert build_timeline(events, FLEET_ONLY).eta is None


def test_an_exception_voids_the_eta_but_a_later_promise_stands():
    events = [
        fact(kind=EventKind.ETA, minute=0, eta=at(120)),
        fact(Status.EXCEPTION, minute=30, reason=Reason.VEHICLE_ISSUE),
        fact(kind=EventKind.ETA, minute=40, eta=at(200)),
    ]

    assert build_timeline(events, FLEET_ONLY).eta == at(200)


def test_the_job_ending_closes_the_open_custody_at_that_moment():
    events = [fact(Status.PICKED_UP, minute=10), fact(Status.DELIVERED, minute=50)]

    assert build_timeline(events, FLEET_ONLY).closes_custody_at == at(50)
    assert build_timeline(events[:1], FLEET_ONLY).closes_custody_at is None
    assert build_timeline(events, [link(1, FLEET, 0, 50)]).closes_custody_at is None


def test_the_last_holder_may_still_report_after_its_custody_closed_with_the_job():
    proof = fact(kind=EventKind.PROOF, minute=55, proof={"photo_urls": ["p.jpg"]})
    events = [fact(Status.DELIVERED, minute=50), proof]

    timeline = build_timeline(events, [link(1, FLEET, 0, 50)])

    assert entry_for(timeline, proof).applied is True
    assert entry_for(timeline, proof).flags == ()
    assert timeline.custody_id == 1


def test_an_event_dated_before_the_first_custody_began_is_kept_and_flagged():
    early = fact(Status.PICKED_UP, minute=-30)

    timeline = build_timeline([early], [link(1, FLEET, 0)])

    assert entry_for(timeline, early).applied is True
    assert entry_for(timeline, early).flags == (FLAG_BEFORE_CUSTODY,)


def test_an_undated_report_stands_after_the_dated_ones_the_source_sent_before_it():
    # The vendor's clock runs a little ahead; the undated delivery reached us after the dated step.
    dated = fact(Status.OUT_FOR_DELIVERY, minute=12, received=10)
    undated = fact(Status.DELIVERED, minute=11, received=11, timed=False)

    timeline = build_timeline([dated, undated], FLEET_ONLY)

    assert timeline.status == Status.DELIVERED
    assert [e.event_id for e in timeline.entries] == [dated.id, undated.id]
    assert all(e.flags == () and e.applied for e in timeline.entries)


def test_an_undated_retry_days_later_is_no_regression():
    delivered = fact(Status.DELIVERED, minute=60)
    retried = fact(Status.OUT_FOR_DELIVERY, minute=3 * 24 * 60, timed=False)

    timeline = build_timeline([delivered, retried], FLEET_ONLY)

    assert timeline.status == Status.DELIVERED
    assert entry_for(timeline, retried).applied is False
    assert entry_for(timeline, retried).flags == ()
    assert timeline.flags == ()


def test_last_heard_is_when_we_received_the_holders_latest_report_not_the_time_it_reports():
    late = fact(Status.PICKED_UP, minute=10, received=95)
    other = fact(Status.IN_TRANSIT, minute=100, partner=STRANGER)

    timeline = build_timeline([late, other], FLEET_ONLY, rules=Rules())

    # The sweep measures silence from this same moment.
    assert timeline.last_heard_at == at(95)
