"""Placing a newer fact at the end of a timeline gives exactly what rebuilding the whole timeline gives."""

from dataclasses import replace
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from tests.tracking.test_timeline_properties import DESTINATION, MODERATE, at, journeys
from tracking.statuses import EventKind
from tracking.timeline import CustodyLink, EventFact, build_timeline, extend_timeline


@MODERATE
@given(journeys(), st.randoms(use_true_random=False), st.data())
def test_incremental_and_full_reconciliation_agree_for_any_sequence_of_facts(journey, rng, data):
    facts, custody = journey
    # Positions and ETAs trailing the journey, as couriers send them, some with an ETA of their own.
    last = max((f.occurred_at for f in facts), default=at(0))
    for n in range(data.draw(st.integers(0, 6))):
        moment = last + timedelta(minutes=data.draw(st.integers(-20, 30)))
        partner = data.draw(st.sampled_from([None, *(link.partner_id for link in custody), 7]))
        eta = moment + timedelta(minutes=30) if data.draw(st.booleans()) else None
        facts.append(
            EventFact(
                id=1000 + n,
                partner_id=partner,
                kind=data.draw(st.sampled_from([EventKind.LOCATION, EventKind.ETA, EventKind.NOTE])),
                occurred_at=moment,
                received_at=moment + timedelta(minutes=data.draw(st.integers(-10, 5))),
                dedupe_key=f"tail{n}",
                latitude=52.5,
                longitude=13.4,
                eta=eta,
            )
        )
    rng.shuffle(facts)  # any order of arrival

    extended = 0
    state = build_timeline([], custody, destination=DESTINATION)
    for i, fact in enumerate(facts):
        full = build_timeline(facts[: i + 1], custody, destination=DESTINATION)
        incremental = extend_timeline(state, fact, custody)
        if incremental is not None:
            extended += 1
            assert incremental == full
            # The persisted path keeps no entries: the state and the new entry are still right.
            summary = extend_timeline(replace(state, entries=()), fact, custody)
            assert summary == replace(full, entries=full.entries[-1:])
        state = full
    assert extended <= len(facts)


def test_a_newer_position_from_the_holder_is_appended_and_an_older_one_is_not():
    custody = [CustodyLink(1, 5, at(0), None)]
    first = EventFact(1, 5, EventKind.STATUS, at(10), at(10), "a", status="picked_up")
    state = build_timeline([first], custody)
    newer = EventFact(2, 5, EventKind.LOCATION, at(20), at(20), "b", latitude=1.0, longitude=2.0, eta=at(90))
    older = replace(newer, id=3, occurred_at=at(5), received_at=at(5), dedupe_key="c")

    appended = extend_timeline(state, newer, custody)

    assert appended == build_timeline([first, newer], custody)
    assert appended is not None
    assert appended.eta == at(90)
    assert appended.last_event_at == at(20)
    assert extend_timeline(state, older, custody) is None
    assert extend_timeline(state, replace(newer, kind=EventKind.STATUS, status="delivered"), custody) is None
    assert extend_timeline(state, newer, [*custody, CustodyLink(2, 6, at(15), None, 1)]) is None
