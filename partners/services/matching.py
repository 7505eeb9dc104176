"""Matching a partner's events to shipments through custody, and recording them."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.db.models import F, Q

from partners.adapters.base import EventKind, NormalizedEvent
from partners.models import Custody, InboundMessage, Partner
from tracking.models import Shipment, TrackingEvent
from tracking.services import add_facts_and_reconcile


class NotHeld(Exception):
    """The partner does not hold (and never held) a shipment under the references it gave."""

    def __init__(self, references: Sequence[str]) -> None:
        self.references = list(references)
        super().__init__(f"no shipment held by this partner under: {', '.join(self.references)}")


class ShipmentFull(Exception):
    """The shipments under these references hold MAX_EVENTS_PER_SHIPMENT events already."""

    def __init__(self, references: Sequence[str], ceiling: int) -> None:
        self.references = list(references)
        self.ceiling = ceiling
        super().__init__(
            f"the shipment under {', '.join(self.references)} holds {ceiling} events, the most one "
            "shipment keeps (BATON_MAX_EVENTS_PER_SHIPMENT); nothing more is recorded on it"
        )


@dataclass
class Matched:
    """The events of one message grouped by the shipment they land on."""

    by_shipment: dict[int, list[tuple[NormalizedEvent, Custody]]] = field(default_factory=dict)
    unmatched: list[NormalizedEvent] = field(default_factory=list)


def find_custodies(partner: Partner, references: Iterable[str]) -> dict[str, Custody]:
    """Map each reference to the partner's custody: its own reference first, then the merchant's.

    An open custody wins over a closed one for the same reference. A reference another partner
    proposed in a hand-off counts only once the receiver confirmed it (or operations assigned it).
    """
    refs = {r for r in references if r}
    if not refs:
        return {}
    found: dict[str, Custody] = {}
    # A union of two index lookups: an OR across the join made PostgreSQL scan every custody the
    # partner ever had (745 ms per call for a partner with 133k jobs in bench/).
    own = (
        Custody.objects.filter(partner=partner, partner_reference__in=refs, reference_confirmed=True)
        .order_by()
        .values("pk")
    )
    merchants = Custody.objects.filter(partner=partner, shipment__reference__in=refs).order_by().values("pk")
    # The shipment's reference only: its whole row with each custody was half the CPU of a worker
    # batch's matching (about 5 ms for 200 references).
    candidates = Custody.objects.filter(pk__in=own.union(merchants)).annotate(
        shipment_reference=F("shipment__reference")
    )
    for custody in sorted(candidates, key=lambda c: (c.ended_at is None, c.started_at)):
        shipment_reference = custody.shipment_reference  # type: ignore[attr-defined]
        if custody.reference_confirmed:
            found[custody.partner_reference] = custody
        found.setdefault(shipment_reference, custody)
        if (custody.reference_confirmed and custody.partner_reference in refs) or custody.ended_at is None:
            found[shipment_reference] = custody
    return found


def match_events(partner: Partner, events: Sequence[NormalizedEvent], *, received_at: datetime) -> Matched:
    matched = Matched()
    custodies = find_custodies(partner, (r for e in events for r in e.references))
    fleet = _fleet_custodies(partner, [e for e in events if e.applies_to_group], received_at=received_at)
    for event in events:
        if event.applies_to_group:
            targets = _held_by_group(fleet, event, event.occurred_at or received_at)
        else:
            hit = next((custodies[r] for r in event.references if r in custodies), None)
            targets = [hit] if hit else []
        if not targets:
            matched.unmatched.append(event)
        for custody in targets:
            matched.by_shipment.setdefault(custody.shipment_id, []).append((event, custody))
    _learn_group_references(matched)
    return matched


def _fleet_custodies(
    partner: Partner, events: Sequence[NormalizedEvent], *, received_at: datetime
) -> list[Custody]:
    """The partner's custodies on the routes or vehicles the events name, held at any of their times."""
    if not events:
        return []
    groups = {e.group_reference for e in events if e.group_reference}
    vehicles = {e.vehicle_reference for e in events if e.vehicle_reference and not e.group_reference}
    earliest = min(e.occurred_at or received_at for e in events)
    return list(
        Custody.objects.filter(partner=partner)
        .filter(Q(group_reference__in=groups) | Q(vehicle_reference__in=vehicles))
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=earliest))
    )


def _held_by_group(fleet: Sequence[Custody], event: NormalizedEvent, at: datetime) -> list[Custody]:
    # Custody ends when the job ends, so a route's or van's later events skip yesterday's deliveries.
    return [
        custody
        for custody in fleet
        if (
            custody.group_reference == event.group_reference
            if event.group_reference
            else custody.vehicle_reference == event.vehicle_reference
        )
        and custody.started_at <= at
        and (custody.ended_at is None or at < custody.ended_at)
    ]


def _learn_group_references(matched: Matched) -> None:
    """A stop event names its route: remember it so later route-wide events reach the stop."""
    for pairs in matched.by_shipment.values():
        for event, custody in pairs:
            if event.group_reference and not event.applies_to_group and not custody.group_reference:
                custody.group_reference = event.group_reference
                Custody.objects.filter(pk=custody.pk).update(group_reference=event.group_reference)


def dedupe_key(
    partner_id: int | None, event: NormalizedEvent, *, fallback: str, custody_id: int | None = None
) -> str:
    """The partner's event id where it has one; else, for a status, its meaning; else the fact itself.

    A status with no event id is one step per custody, status, reason and vendor time (or, with no
    time either, per custody, status and reason: a repeat says nothing new). Reports of one step
    under different ids are merged by meaning when they are stored (`tracking.services`).
    """
    basis: list[object]
    interval = settings.BATON["POSITION_INTERVAL_SECONDS"]
    if interval > 0 and is_plain_position(event) and event.occurred_at is not None:
        # A trail is thinned: one position per source per interval is a fact, the first received.
        basis = ["position", partner_id, int(event.occurred_at.timestamp() // interval)]
    elif event.event_id:
        basis = ["id", partner_id, event.event_id, event.kind, event.status or ""]
    elif event.kind == EventKind.STATUS and event.status:
        holder = ["custody", custody_id] if custody_id is not None else ["partner", partner_id]
        when = event.occurred_at.isoformat() if event.occurred_at else "untimed"
        basis = ["step", *holder, event.status, event.reason or "", when]
    else:
        basis = [
            "fact",
            partner_id,
            event.kind,
            event.status or "",
            event.reason or "",
            event.sub_status,
            event.occurred_at.isoformat() if event.occurred_at else fallback,
            event.latitude,
            event.longitude,
            event.eta.isoformat() if event.eta else "",
            event.note,
        ]
    return hashlib.sha256(json.dumps(basis, default=str).encode()).hexdigest()


def is_plain_position(event: NormalizedEvent) -> bool:
    """A position and nothing else: thinning it loses no ETA, note, status or proof."""
    return (
        event.kind == EventKind.LOCATION
        and event.eta is None
        and not event.note
        and not event.proof
        and not event.status
    )


def event_row(
    event: NormalizedEvent,
    *,
    shipment_id: int,
    partner: Partner | None,
    message: InboundMessage | None,
    received_at: datetime,
    fallback_key: str,
    details: Mapping[str, object] | None = None,
    custody_id: int | None = None,
) -> TrackingEvent:
    return TrackingEvent(
        shipment_id=shipment_id,
        partner=partner,
        message=message,
        kind=event.kind,
        status=event.status or "",
        reason=event.reason or "",
        sub_status=event.sub_status,
        raw_status=event.raw_status[:200],
        occurred_at=event.occurred_at or received_at,
        timed=event.occurred_at is not None,
        received_at=received_at,
        latitude=event.latitude,
        longitude=event.longitude,
        eta=event.eta,
        proof=dict(event.proof) if event.proof else None,
        note=event.note,
        details=dict(details or {}),
        event_id=event.event_id[:200],
        dedupe_key=dedupe_key(
            partner.pk if partner else None, event, fallback=fallback_key, custody_id=custody_id
        ),
    )


def record_events(
    partner: Partner, events: Sequence[NormalizedEvent], *, message: InboundMessage
) -> list[NormalizedEvent]:
    """Record a message's events on the shipments they match; return those that matched none."""
    return record_message_events([(message, list(events))]).unmatched.get(message.pk, [])


@dataclass
class Recorded:
    """What recording several messages left undone, by message id."""

    unmatched: dict[int, list[NormalizedEvent]] = field(default_factory=lambda: defaultdict(list))
    # Events not recorded because their shipment reached MAX_EVENTS_PER_SHIPMENT, with its reference.
    over_ceiling: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))


def record_message_events(parsed: Sequence[tuple[InboundMessage, Sequence[NormalizedEvent]]]) -> Recorded:
    """Record the events of several messages, each shipment reconciled once."""
    rows: dict[int, list[TrackingEvent]] = defaultdict(list)
    recorded = Recorded()
    unmatched = recorded.unmatched
    by_partner: dict[int, list[tuple[InboundMessage, Sequence[NormalizedEvent]]]] = defaultdict(list)
    for message, events in parsed:
        by_partner[message.partner_id].append((message, events))
    for items in by_partner.values():
        partner = items[0][0].partner
        # A stop event teaches its route to the custody (`_learn_group_references`); a route-wide
        # event in a later message must see that, so with route-wide events match message by message.
        sequential = any(e.applies_to_group for _, events in items for e in events)
        for chunk in ([item] for item in items) if sequential else [items]:
            owner = {id(e): (message, i) for message, events in chunk for i, e in enumerate(events)}
            # Route-wide events come one message at a time, so their receipt time is that message's.
            received_at = min(message.received_at for message, _ in chunk)
            matched = match_events(
                partner, [e for _, events in chunk for e in events], received_at=received_at
            )
            for shipment_id, pairs in matched.by_shipment.items():
                for event, custody in pairs:
                    message, index = owner[id(event)]
                    # Events with no time of their own are fingerprinted by the bytes that carried
                    # them, so a byte-identical redelivery days later is still the same fact.
                    rows[shipment_id].append(
                        event_row(
                            event,
                            shipment_id=shipment_id,
                            partner=partner,
                            message=message,
                            received_at=message.received_at,
                            fallback_key=f"{message.content_hash}:{index}",
                            custody_id=custody.pk,
                        )
                    )
            for event in matched.unmatched:
                unmatched[owner[id(event)][0].pk].append(event)
    over = add_facts_and_reconcile(rows).over_ceiling
    if over:
        references = dict(
            Shipment.objects.filter(pk__in={row.shipment_id for row in over}).values_list("pk", "reference")
        )
        for row in over:
            recorded.over_ceiling[row.message_id or 0].append(references[row.shipment_id])
    return recorded


# (partner key hash, reference) -> [until when it is known to be held, events this process may still
# accept for it]: once held, a reference stays acceptable ("holds or held"), so remembering it for a
# while per process saves the custody lookup on the request path of every event after a job's first.
# Keyed by the partner's key hash, which no other partner row can share, rather than by a primary key
# a test database may hand out again.
_held_cache: dict[tuple[str, str], list[float]] = {}
_HELD_CACHE_MAX = 200_000
# A process accepts this share of a shipment's room under the ceiling before it counts again, so that
# several processes accepting for one shipment at once stay under the ceiling between them.
_ROOM_SHARE = 10


def held_shipments(partner: Partner, references: Iterable[str]) -> dict[str, tuple[int, int]]:
    """The shipment the partner holds or held under each of `references` it knows (as `find_custodies`),
    with how many events that shipment holds: {reference: (shipment id, events)}.

    On the request path of every job's first event, so plain statements rather than the ORM (its
    union and instances cost about 2 ms of CPU a request): the partner's own references first, with
    the count in the same statement (the usual case: one statement, about 0.18 ms of PostgreSQL CPU
    against 0.39 for a union and a separate count); the merchant's only for references still unknown.
    For a reference shared by several jobs an open custody, then the latest, wins, as in matching.
    """
    refs = sorted({r for r in references if r})
    if not refs:
        return {}
    custody, shipment, event = Custody._meta.db_table, Shipment._meta.db_table, TrackingEvent._meta.db_table
    events = f"(SELECT COUNT(*) FROM {event} e WHERE e.shipment_id = c.shipment_id)"  # noqa: S608
    # Only table names and placeholders are formatted in; every value is a parameter.
    own = (
        f"SELECT c.partner_reference, c.shipment_id, {events} FROM {custody} c"  # noqa: S608
        " WHERE c.partner_id = %s AND c.reference_confirmed AND c.partner_reference IN ({})"
        " ORDER BY c.ended_at IS NULL, c.started_at"
    )
    merchants = (
        f"SELECT s.reference, c.shipment_id, {events} FROM {custody} c"  # noqa: S608
        f" JOIN {shipment} s ON s.id = c.shipment_id WHERE c.partner_id = %s AND s.reference IN ({{}})"
    )
    found: dict[str, tuple[int, int]] = {}
    with connection.cursor() as cursor:
        for sql in (own, merchants):
            if not refs:
                break
            cursor.execute(sql.format(", ".join(["%s"] * len(refs))), [partner.pk, *refs])
            found.update(
                (reference, (shipment_id, count)) for reference, shipment_id, count in cursor.fetchall()
            )
            refs = [r for r in refs if r not in found]
    return found


def check_custody(partner: Partner, references: Iterable[str]) -> None:
    """Raise NotHeld unless the partner holds or held a shipment under every reference, ShipmentFull
    when a shipment has no room under MAX_EVENTS_PER_SHIPMENT for the events reported on it.

    `references` names one reference per event (repeated for several events of one job). A reference
    found held is remembered in the process for CUSTODY_CACHE_SECONDS, with a share of its shipment's
    room; once the process has accepted that many events for it, it counts again. So the ceiling is
    said here, refusing the report, and near it every report is counted.
    """
    now = time.monotonic()
    owner = partner.api_key_hash or f"pk:{partner.pk}"
    wanted = Counter(references)
    stale = set()
    for reference, count in wanted.items():
        known = _held_cache.get((owner, reference))
        if known is None or known[0] <= now or known[1] < count:
            stale.add(reference)
    if stale:
        held = held_shipments(partner, stale)
        missing = stale - held.keys()
        if missing:
            raise NotHeld(sorted(missing))
        ceiling = settings.BATON["MAX_EVENTS_PER_SHIPMENT"]
        room = {r: ceiling - held[r][1] for r in stale}
        full = sorted(r for r in stale if wanted[r] > room[r])
        if full:
            raise ShipmentFull(full, ceiling)
        if len(_held_cache) >= _HELD_CACHE_MAX:
            _held_cache.clear()
        until = now + settings.BATON["CUSTODY_CACHE_SECONDS"]
        _held_cache.update(((owner, r), [until, room[r] // _ROOM_SHARE]) for r in stale)
    for reference, count in wanted.items():
        _held_cache[(owner, reference)][1] -= count


def event_counts(shipment_ids: Iterable[int]) -> dict[int, int]:
    """How many events each shipment holds: one grouped count over the timeline index, as plain SQL
    (on the request path of a job's first event, like `held_shipments`)."""
    ids = sorted(set(shipment_ids))
    if not ids:
        return {}
    table = TrackingEvent._meta.db_table
    among = ", ".join(["%s"] * len(ids))
    sql = f"SELECT shipment_id, COUNT(*) FROM {table} WHERE shipment_id IN ({among}) GROUP BY shipment_id"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, ids)
        return dict(cursor.fetchall())
