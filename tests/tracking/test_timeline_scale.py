"""Reconciliation stays near-linear in one shipment's events; the conflict check matches its definition."""

import time
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tracking import timeline
from tracking.statuses import EventKind, Status
from tracking.timeline import FLAG_CONFLICT, CustodyLink, EventFact, build_timeline

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=15)


def pairwise_conflicts(rows) -> set[int]:
    """The definition, checked pair by pair (quadratic): contradictory reports of different sources."""
    reports = [r for r in rows if r.custody_ok and r.fact.kind == EventKind.STATUS and r.fact.status]
    flagged: set[int] = set()
    for i, first in enumerate(reports):
        for second in reports[i + 1 :]:
            if second.effective_at - first.effective_at > WINDOW:
                break
            a, b = first.fact, second.fact
            if a.partner_id != b.partner_id and timeline._contradicts(a.status, b.status):
                flagged |= {a.id, b.id}
    return flagged


reports = st.lists(
    st.tuples(st.integers(0, 90), st.integers(1, 3), st.sampled_from(list(Status.values))), max_size=40
)


@settings(max_examples=300, deadline=None)
@given(reports)
def test_windowed_conflict_check_flags_exactly_the_contradictory_pairs(specs):
    rows = sorted(
        (
            timeline._Row(
                EventFact(n, partner, EventKind.STATUS, T0 + timedelta(minutes=m), T0, str(n), status=status),
                T0 + timedelta(minutes=m),
            )
            for n, (m, partner, status) in enumerate(specs)
        ),
        key=timeline._sort_key,
    )
    expected = pairwise_conflicts(rows)

    timeline._flag_conflicts(rows, WINDOW)

    assert {r.fact.id for r in rows if FLAG_CONFLICT in r.flags} == expected


def test_eight_thousand_reports_in_one_window_reconcile_in_seconds_not_minutes():
    statuses = [Status.IN_TRANSIT, Status.OUT_FOR_DELIVERY, Status.DELIVERED, Status.ATTEMPT_FAILED]
    events = [
        EventFact(
            n,
            1 + n % 2,
            EventKind.STATUS,
            T0 + timedelta(seconds=n % 600),
            T0 + timedelta(hours=1),
            f"k{n}",
            status=statuses[n % 4],
        )
        for n in range(8000)
    ]
    links = [CustodyLink(1, 1, T0 - timedelta(days=1), None), CustodyLink(2, 2, T0 - timedelta(days=1), None)]

    started = time.perf_counter()
    result = build_timeline(events, links)
    elapsed = time.perf_counter() - started

    assert FLAG_CONFLICT in result.flags
    # About 0.5 s here (the pairwise check took 70 s); the bound leaves room for a busy CI machine.
    assert elapsed < 10.0, f"{elapsed:.2f} s for 8,000 reports in one window"
