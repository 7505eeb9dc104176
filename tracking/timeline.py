"""Timeline reconciliation: a pure function from a set of partner facts and custody links to one story."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from tracking.statuses import TERMINAL_STATUSES, EventKind, Status

FLAG_CLOCK_SKEW = "clock_skew"
FLAG_FORMER_CUSTODIAN = "former_custodian"
FLAG_NOT_CUSTODIAN = "not_custodian"
FLAG_REGRESSION = "regression"
FLAG_CONFLICT = "conflict"
FLAG_FAR_FROM_DESTINATION = "far_from_destination"
FLAG_BEFORE_CUSTODY = "before_custody"

# Only a tiebreak for facts at the same instant: the journey order is the likeliest true order.
_JOURNEY_RANK: dict[str, int] = {
    status: rank
    for rank, status in enumerate(
        (
            Status.PENDING,
            Status.INFO_RECEIVED,
            Status.ASSIGNED,
            Status.PICKED_UP,
            Status.IN_TRANSIT,
            Status.OUT_FOR_DELIVERY,
            Status.ARRIVING,
            Status.EXCEPTION,
            Status.ATTEMPT_FAILED,
            Status.AVAILABLE_FOR_PICKUP,
            Status.DELIVERED,
            Status.CANCELLED,
            Status.RETURNING,
            Status.RETURNED,
        )
    )
}
# Statuses that each claim a different outcome of an attempt; two of them at once contradict.
_OUTCOMES = frozenset(
    {
        Status.DELIVERED,
        Status.ATTEMPT_FAILED,
        Status.EXCEPTION,
        Status.RETURNED,
        Status.CANCELLED,
        Status.AVAILABLE_FOR_PICKUP,
    }
)
# After these, an earlier ETA is no longer a promise anyone keeps.
_SETBACKS = frozenset({Status.ATTEMPT_FAILED, Status.EXCEPTION})
# After a cancellation the goods may still travel back: this is the only way on from a terminal.
_RETURN_PATH: dict[str, int] = {Status.CANCELLED: 0, Status.RETURNING: 1, Status.RETURNED: 2}
_EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class CustodyLink:
    """One partner's spell of holding the shipment; ended_at None means it still holds it."""

    id: int
    partner_id: int
    started_at: datetime
    ended_at: datetime | None
    parent_id: int | None = None


@dataclass(frozen=True)
class EventFact:
    """One normalised fact about a shipment, as stored; partner_id None means Baton itself."""

    id: int
    partner_id: int | None
    kind: str
    occurred_at: datetime
    received_at: datetime
    dedupe_key: str
    status: str | None = None
    reason: str | None = None
    sub_status: str = ""
    latitude: float | None = None
    longitude: float | None = None
    eta: datetime | None = None
    proof: Mapping[str, Any] | None = None
    # False when the source gave no time for the fact and our receipt time stands in for it.
    timed: bool = True


@dataclass(frozen=True)
class Rules:
    """Tolerances the reconciliation applies."""

    clock_skew_tolerance: timedelta = timedelta(minutes=5)
    conflict_window: timedelta = timedelta(minutes=15)
    delivered_max_distance_m: float = 1000.0


@dataclass(frozen=True)
class Entry:
    """One distinct fact placed on the timeline, with what the reconciliation made of it."""

    event_id: int
    effective_at: datetime
    custody_id: int | None
    applied: bool
    flags: tuple[str, ...]


@dataclass(frozen=True)
class Timeline:
    """The reconciled story of a shipment and its current state."""

    entries: tuple[Entry, ...]
    status: str
    reason: str | None
    sub_status: str
    custody_id: int | None
    partner_id: int | None
    eta: datetime | None
    proof: Mapping[str, Any] | None
    status_at: datetime | None
    last_event_at: datetime | None
    flags: tuple[str, ...]
    # When Baton last received anything from the current holder about this job ("last heard").
    last_heard_at: datetime | None = None
    # The job has ended (a terminal status) while the current custody is still open: close it then.
    closes_custody_at: datetime | None = None


@dataclass
class _Row:
    fact: EventFact
    effective_at: datetime
    custody_id: int | None = None
    custody_ok: bool = True
    applied: bool = False
    flags: set[str] = field(default_factory=set)


_DEFAULT_RULES = Rules()


def build_timeline(
    events: Iterable[EventFact],
    custody: Sequence[CustodyLink],
    *,
    destination: tuple[float, float] | None = None,
    rules: Rules = _DEFAULT_RULES,
) -> Timeline:
    """Reconcile events with custody links; the result depends only on the set of events."""
    links = sorted(custody, key=lambda link: (link.started_at, link.id))
    rows = sorted(_place_all(_dedupe(events), rules), key=_sort_key)
    for row in rows:
        _check_custody(row, links)

    status: str = Status.PENDING
    reason: str | None = None
    sub_status = ""
    status_at: datetime | None = None
    locked = False  # an applied terminal has been seen; from here only confirmations and the return path
    for row in rows:
        fact = row.fact
        row.applied = row.custody_ok
        if fact.kind != EventKind.STATUS or fact.status is None or not row.custody_ok:
            continue
        refusal = _refusal(status, locked, fact.status)
        if refusal is not None:
            # An undated report we received after the job ended is a late echo, not a contradiction.
            if fact.timed:
                row.flags.add(refusal)
            row.applied = False
            continue
        if fact.status == status:
            reason, sub_status = fact.reason, fact.sub_status
        elif not (locked and _RETURN_PATH.get(fact.status, 0) < _RETURN_PATH.get(status, 0)):
            # A late "cancelled" while already returning confirms the cancellation without going back.
            status, reason, sub_status = fact.status, fact.reason, fact.sub_status
            status_at = row.effective_at
        locked = locked or fact.status in TERMINAL_STATUSES

    _flag_conflicts(rows, rules.conflict_window)
    if destination is not None:
        _flag_far_deliveries(rows, destination, rules.delivered_max_distance_m)

    current = _current_link(links)
    partner_id = current.partner_id if current else None
    terminal = status in TERMINAL_STATUSES
    applied = [row.fact for row in rows if row.applied]
    eta = None
    if current is not None and not terminal:
        # A failed attempt or an exception voids every promise made before it.
        setbacks = [
            row.effective_at
            for row in rows
            if row.applied and row.fact.kind == EventKind.STATUS and row.fact.status in _SETBACKS
        ]
        since = max(setbacks, default=None)
        etas = [
            row.fact.eta
            for row in rows
            if row.applied
            and row.fact.partner_id == partner_id
            and row.fact.eta is not None
            and (since is None or row.effective_at >= since)
        ]
        eta = etas[-1] if etas else None

    entries = tuple(
        Entry(row.fact.id, row.effective_at, row.custody_id, row.applied, tuple(sorted(row.flags)))
        for row in rows
    )
    flags = {flag for entry in entries for flag in entry.flags}
    last_heard = last_heard_from((row.fact for row in rows), current.partner_id) if current else None

    return Timeline(
        entries=entries,
        status=status,
        reason=reason,
        sub_status=sub_status,
        custody_id=current.id if current else None,
        partner_id=partner_id,
        eta=eta,
        proof=_proof(applied),
        status_at=status_at,
        last_event_at=rows[-1].effective_at if rows else None,
        flags=tuple(sorted(flags)),
        last_heard_at=last_heard,
        closes_custody_at=(
            max(status_at or current.started_at, current.started_at)
            if terminal and current is not None and current.ended_at is None
            else None
        ),
    )


def last_heard_from(facts: Iterable[EventFact], partner_id: int | None) -> datetime | None:
    """When Baton last received anything from this partner: receipt time, not the time it reports."""
    return max(
        (f.received_at for f in facts if f.partner_id == partner_id and partner_id is not None), default=None
    )


# Kinds that only ever affect their own entry, the ETA and the last-event time: a newer one of these
# can be placed at the end of a timeline without revisiting any other entry.
_APPENDABLE_KINDS = frozenset({EventKind.LOCATION, EventKind.ETA, EventKind.NOTE})


def extend_timeline(
    previous: Timeline,
    fact: EventFact,
    custody: Sequence[CustodyLink],
    *,
    rules: Rules = _DEFAULT_RULES,
) -> Timeline | None:
    """`previous` with one more fact placed last, or None when only `build_timeline` can tell.

    `previous` is `build_timeline` of the other facts with the same custody and rules
    (its entries may be left out: they are neither read nor revisited). The fact must be new (no
    earlier fact shares its dedupe key). Covers the common case, a position or ETA newer than
    everything else: then `extend_timeline(build_timeline(facts), fact)` is `build_timeline(facts + [fact])`.
    """
    if fact.kind not in _APPENDABLE_KINDS:
        return None
    row = _place(fact, rules)
    if previous.last_event_at is not None and row.effective_at <= previous.last_event_at:
        return None  # it lands in the past: the entries after it move
    links = sorted(custody, key=lambda link: (link.started_at, link.id))
    current = _current_link(links)
    if (current.id if current else None) != previous.custody_id:
        return None  # the custody changed since `previous` was built
    heard_from_holder = current is not None and fact.partner_id == current.partner_id
    if (
        heard_from_holder
        and fact.timed
        and previous.last_heard_at is not None
        and fact.received_at < previous.last_heard_at
    ):
        return None  # an undated report of its source received since may have to move after it
    _check_custody(row, links)
    row.applied = row.custody_ok
    eta = previous.eta
    if (
        row.applied
        and current is not None
        and previous.status not in TERMINAL_STATUSES
        and fact.partner_id == current.partner_id
        and fact.eta is not None
    ):
        eta = fact.eta
    entry = Entry(fact.id, row.effective_at, row.custody_id, row.applied, tuple(sorted(row.flags)))
    return replace(
        previous,
        entries=(*previous.entries, entry),
        eta=eta,
        last_event_at=row.effective_at,
        flags=tuple(sorted({*previous.flags, *row.flags})),
        # Receipt time from the holder, as `last_heard_from` takes it (the custody is unchanged, so is
        # `closes_custody_at`).
        last_heard_at=(
            max(filter(None, (previous.last_heard_at, fact.received_at)))
            if heard_from_holder
            else previous.last_heard_at
        ),
    )


def haversine_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in metres between two (latitude, longitude) points."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * _EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h)))


def _dedupe(events: Iterable[EventFact]) -> list[EventFact]:
    # The first copy we received is the fact; later copies (retries, replays) add nothing.
    chosen: dict[str, EventFact] = {}
    for fact in events:
        kept = chosen.get(fact.dedupe_key)
        if kept is None or (fact.received_at, fact.id) < (kept.received_at, kept.id):
            chosen[fact.dedupe_key] = fact
    return list(chosen.values())


def is_skewed(occurred_at: datetime, received_at: datetime, rules: Rules = _DEFAULT_RULES) -> bool:
    """A source cannot know the future: a time well after we received it comes from a wrong clock."""
    return occurred_at > received_at + rules.clock_skew_tolerance


def effective_time(occurred_at: datetime, received_at: datetime, rules: Rules = _DEFAULT_RULES) -> datetime:
    """When a claimed moment is taken to be: our receipt time bounds a skewed clock.

    The same rule places events on the timeline and dates hand-offs and assignments.
    """
    return received_at if is_skewed(occurred_at, received_at, rules) else occurred_at


def _place(fact: EventFact, rules: Rules) -> _Row:
    if is_skewed(fact.occurred_at, fact.received_at, rules):
        return _Row(fact, fact.received_at, flags={FLAG_CLOCK_SKEW})
    return _Row(fact, fact.occurred_at)


def _place_all(facts: Sequence[EventFact], rules: Rules) -> list[_Row]:
    rows = [_place(fact, rules) for fact in facts]
    # An undated fact stands at its receipt time, but never before a vendor-dated fact of the same
    # source that reached us first: the source said that one before this one.
    dated: dict[int | None, list[tuple[datetime, datetime]]] = {}
    for row in rows:
        if row.fact.timed:
            dated.setdefault(row.fact.partner_id, []).append((row.fact.received_at, row.effective_at))
    latest: dict[int | None, tuple[list[datetime], list[datetime]]] = {}
    for partner_id, pairs in dated.items():
        pairs.sort()
        running: list[datetime] = []
        for _received, at in pairs:
            running.append(max(running[-1], at) if running else at)
        latest[partner_id] = ([received for received, _at in pairs], running)
    for row in rows:
        if row.fact.timed or row.fact.partner_id not in latest:
            continue
        received, running = latest[row.fact.partner_id]
        reached = bisect_right(received, row.fact.received_at)
        if reached:
            row.effective_at = max(row.effective_at, running[reached - 1])
    return rows


def _sort_key(row: _Row) -> tuple[datetime, int, str, str]:
    fact = row.fact
    rank = _JOURNEY_RANK.get(fact.status or "", len(_JOURNEY_RANK)) if fact.kind == EventKind.STATUS else -1
    return (row.effective_at, rank, fact.kind, fact.dedupe_key)


def _covers(link: CustodyLink, at: datetime, earliest: bool, latest: bool) -> bool:
    # The first link reaches back forever: a partner's first scan can predate our record of the
    # assignment. The last one reaches forward: it closes only when the job ends, and its holder
    # may still confirm or add proof afterwards (nobody else holds the job).
    started = earliest or link.started_at <= at
    return started and (latest or link.ended_at is None or at < link.ended_at)


def _check_custody(row: _Row, links: Sequence[CustodyLink]) -> None:
    fact, at = row.fact, row.effective_at
    last = len(links) - 1
    covering = [link for i, link in enumerate(links) if _covers(link, at, i == 0, i == last)]
    own = [link for link in covering if link.partner_id == fact.partner_id]
    held = (own or covering)[-1:]
    row.custody_id = held[0].id if held else None
    # Dated before the first holder's custody began: kept (its first scan may predate our record of
    # the assignment) but said. A later holder's early report is not its custodian's, flagged below.
    if own and own[-1] is links[0] and at < links[0].started_at:
        row.flags.add(FLAG_BEFORE_CUSTODY)
    # Hand-offs are kept whoever reports them: both sides of a hand-off are entitled to describe it.
    if fact.partner_id is None or own or fact.kind == EventKind.HANDOFF:
        return
    row.custody_ok = False
    former = any(
        link.partner_id == fact.partner_id and link.ended_at is not None and link.ended_at <= at
        for link in links
    )
    row.flags.add(FLAG_FORMER_CUSTODIAN if former else FLAG_NOT_CUSTODIAN)


def _refusal(current: str, locked: bool, new: str) -> str | None:
    # Before any terminal, every move is believed: carriers legitimately step back and loop.
    if not locked or new == current:
        return None
    if current in (Status.CANCELLED, Status.RETURNING) and new in _RETURN_PATH:
        return None
    return FLAG_CONFLICT if new in TERMINAL_STATUSES else FLAG_REGRESSION


def _contradicts(first: str, second: str) -> bool:
    if first == second or _RETURN_PATH.get(first, 9) < _RETURN_PATH.get(second, -1):
        return False
    if first in _OUTCOMES and second in _OUTCOMES:
        return True
    return first in TERMINAL_STATUSES and second not in TERMINAL_STATUSES


def _flag_conflicts(rows: Sequence[_Row], window: timedelta) -> None:
    """Flag contradictory reports from different sources within the window of each other.

    Near-linear: one pass forward (does an earlier report contradict this one?) and one backward
    (does a later one?), each keeping per status the sources heard within the window, so a report
    is compared with the few statuses in the window rather than with every report in it.
    """
    # Only sources entitled to speak can contradict each other; the rest is flagged by custody already.
    reports = [r for r in rows if r.custody_ok and r.fact.kind == EventKind.STATUS and r.fact.status]
    _flag_against_window(reports, window, earlier=True)
    _flag_against_window(reports[::-1], window, earlier=False)


def _flag_against_window(reports: Sequence[_Row], window: timedelta, *, earlier: bool) -> None:
    # `reports` run in the pass's direction; `seen` holds, per status, how many reports each source
    # made within the window behind the current one (those leaving the window are taken out).
    seen: dict[str, dict[int | None, int]] = defaultdict(dict)
    tail = 0
    for row in reports:
        while abs(row.effective_at - reports[tail].effective_at) > window:
            old = reports[tail].fact
            sources = seen[old.status or ""]
            sources[old.partner_id] -= 1
            if not sources[old.partner_id]:
                del sources[old.partner_id]
            tail += 1
        fact = row.fact
        status = fact.status or ""
        for other, sources in seen.items():
            if not sources or (len(sources) == 1 and fact.partner_id in sources):
                continue  # no other source said `other` within the window
            if _contradicts(other, status) if earlier else _contradicts(status, other):
                row.flags.add(FLAG_CONFLICT)
                break
        seen[status][fact.partner_id] = seen[status].get(fact.partner_id, 0) + 1


def _flag_far_deliveries(rows: Sequence[_Row], destination: tuple[float, float], max_m: float) -> None:
    for row in rows:
        fact = row.fact
        if fact.kind != EventKind.STATUS or fact.status != Status.DELIVERED:
            continue
        if fact.latitude is None or fact.longitude is None:
            continue
        if haversine_m((fact.latitude, fact.longitude), destination) > max_m:
            row.flags.add(FLAG_FAR_FROM_DESTINATION)


def _current_link(links: Sequence[CustodyLink]) -> CustodyLink | None:
    open_links = [link for link in links if link.ended_at is None]
    candidates = open_links or list(links)
    return candidates[-1] if candidates else None


def _proof(applied: Sequence[EventFact]) -> Mapping[str, Any] | None:
    # The delivery's own proof outranks a separately sent one: it is what the courier signed off.
    delivered = [
        f.proof
        for f in applied
        if f.kind == EventKind.STATUS and f.status == Status.DELIVERED and f.proof is not None
    ]
    sent = [f.proof for f in applied if f.kind == EventKind.PROOF and f.proof is not None]
    proofs = delivered or sent
    return proofs[-1] if proofs else None
