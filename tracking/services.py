"""Shipments and their reconciled timeline: load, call the pure engine, persist the result."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

from django.conf import settings
from django.core import signing
from django.db import connection, transaction
from django.db.models import Count, F, Field, Max, Model
from django.utils import timezone

from tracking import changes, timeline
from tracking.flags import Flag
from tracking.models import Activity, OutboundMessage, Shipment, TrackingEvent
from tracking.statuses import EventKind


def create_shipment(**fields: Any) -> tuple[Shipment, str]:
    """Create a shipment; return it with its customer tracking token (shown once, stored hashed)."""
    shipment = Shipment(**fields)
    token = shipment.issue_tracking_token()
    shipment.save()
    return shipment, token


def find_by_tracking_token(token: str, *, now: datetime | None = None) -> Shipment | None:
    """The shipment a customer's token or signed link opens (see tracking.public)."""
    from tracking import public

    return public.find_shipment(token, now=now)


def timeline_rules() -> timeline.Rules:
    config = settings.BATON
    return timeline.Rules(
        clock_skew_tolerance=timedelta(seconds=config["CLOCK_SKEW_TOLERANCE_SECONDS"]),
        conflict_window=timedelta(seconds=config["CONFLICT_WINDOW_SECONDS"]),
        delivered_max_distance_m=float(config["DELIVERED_MAX_DISTANCE_M"]),
    )


def _as_fact(event: TrackingEvent, fact_id: int | None = None) -> timeline.EventFact:
    return timeline.EventFact(
        id=event.pk if fact_id is None else fact_id,
        partner_id=event.partner_id,
        kind=event.kind,
        occurred_at=event.occurred_at,
        received_at=event.received_at,
        timed=event.timed,
        dedupe_key=event.dedupe_key,
        status=event.status or None,
        reason=event.reason or None,
        sub_status=event.sub_status,
        latitude=event.latitude,
        longitude=event.longitude,
        eta=event.eta,
        proof=event.proof,
    )


def build_shipment_timeline(
    shipment: Shipment, *, events: Sequence[TrackingEvent] | None = None, new: Sequence[TrackingEvent] = ()
) -> tuple[timeline.Timeline, list[TrackingEvent]]:
    """Run the engine over everything stored for the shipment (two queries); return it with the rows.

    Pass `events` when every stored event of the shipment is loaded already, to save a query, and
    `new` for rows not stored yet: their entries carry the ids -1, -2, ... in their order.
    """
    events = list(shipment.events.all()) if events is None else list(events)
    facts = [_as_fact(e) for e in events] + [_as_fact(row, -n) for n, row in enumerate(new, start=1)]
    links = [
        timeline.CustodyLink(
            id=c.pk,
            partner_id=c.partner_id,
            started_at=c.started_at,
            ended_at=c.ended_at,
            parent_id=c.handed_off_by_id,
        )
        for c in shipment.custody.all()
    ]
    destination = (
        (shipment.latitude, shipment.longitude)
        if shipment.latitude is not None and shipment.longitude is not None
        else None
    )
    return timeline.build_timeline(facts, links, destination=destination, rules=timeline_rules()), events


def _custody_links(custodies: Iterable[Any]) -> list[timeline.CustodyLink]:
    return [
        timeline.CustodyLink(
            id=c.pk,
            partner_id=c.partner_id,
            started_at=c.started_at,
            ended_at=c.ended_at,
            parent_id=c.handed_off_by_id,
        )
        for c in custodies
    ]


def _destination(shipment: Shipment) -> tuple[float, float] | None:
    if shipment.latitude is None or shipment.longitude is None:
        return None
    return (shipment.latitude, shipment.longitude)


# Silence ends the moment the holder speaks, or the job changes hands: the sweep would clear these
# within a minute, but a proactive rule must not chase a holder that has just reported.
_SILENCE_ALERTS = frozenset({Flag.STALE_CUSTODIAN, Flag.UNACKNOWLEDGED})


def _alerts_after(shipment: Shipment, heard_before: datetime | None, custody_before: int | None) -> list[str]:
    """The sweep's alerts that still hold after a reconciliation; the sweep raises, this only clears."""
    if shipment.is_terminal:
        return []
    alerts = list(shipment.alerts)
    if shipment.last_heard_at != heard_before or shipment.current_custody_id != custody_before:
        alerts = [alert for alert in alerts if alert not in _SILENCE_ALERTS]
    if Flag.ETA_PASSED in alerts and shipment.eta is not None and shipment.eta > timezone.now():
        alerts.remove(Flag.ETA_PASSED)
    return alerts


def _apply_result(shipment: Shipment, result: timeline.Timeline) -> None:
    heard_before, custody_before = shipment.last_heard_at, shipment.current_custody_id
    shipment.status = result.status
    shipment.reason = result.reason or ""
    shipment.sub_status = result.sub_status
    shipment.status_at = result.status_at
    shipment.current_custody_id = result.custody_id
    shipment.eta = result.eta
    shipment.last_event_at = result.last_event_at
    shipment.last_heard_at = result.last_heard_at
    shipment.proof = dict(result.proof) if result.proof else None
    shipment.flags = list(result.flags)
    shipment.alerts = _alerts_after(shipment, heard_before, custody_before)


def _stored_result(shipment: Shipment) -> timeline.Timeline:
    """The persisted reconciliation of the shipment, without its entries (for `extend_timeline`)."""
    return timeline.Timeline(
        entries=(),
        status=shipment.status,
        reason=shipment.reason or None,
        sub_status=shipment.sub_status,
        custody_id=shipment.current_custody_id,
        partner_id=None,
        eta=shipment.eta,
        proof=shipment.proof,
        status_at=shipment.status_at,
        last_event_at=shipment.last_event_at,
        last_heard_at=shipment.last_heard_at,
        flags=tuple(shipment.flags),
    )


def _close_ended_custody(shipment: Shipment, result: timeline.Timeline) -> None:
    """The job has ended, so its holder's custody ends: route or vehicle events no longer reach it."""
    if result.closes_custody_at is not None and result.custody_id is not None:
        shipment.custody.filter(pk=result.custody_id, ended_at__isnull=True).update(
            ended_at=result.closes_custody_at
        )


def update_rows(rows: Sequence[Model], fields: Sequence[str]) -> None:
    """Write `fields` of each row (all of one model) as one UPDATE per row, sent together.

    Django's `bulk_update` builds one CASE with a WHEN per row for every field: for the ~200
    shipments of a worker batch that was about 1 s of CPU, most of the worker's time. The same
    statement with each row's values (`executemany`, pipelined by psycopg) costs a few ms.
    """
    if not rows:
        return
    meta = type(rows[0])._meta
    columns = [cast(Field, meta.get_field(name)) for name in fields]  # concrete fields, by name
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(cast(str, field.column))} = %s" for field in columns)
    key = quote(cast(str, cast(Field, meta.pk).column))
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {key} = %s"  # noqa: S608
    params = [
        [*(field.get_db_prep_save(getattr(row, field.attname), connection) for field in columns), row.pk]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def save_reconciled(changed: Sequence[tuple[Shipment, changes.Snapshot]]) -> None:
    """Persist the reconciled fields of shipments and publish each change (every path goes through here).

    `changed` pairs each shipment, its new state already set, with its snapshot from before.
    """
    moment = timezone.now()
    for shipment, _before in changed:
        shipment.updated_at = moment
    update_rows([shipment for shipment, _before in changed], [*Shipment.RECONCILED_FIELDS, "updated_at"])
    for shipment, before in changed:
        changes.publish(shipment, before)


def reconcile_shipment(
    shipment: Shipment, *, events: Sequence[TrackingEvent] | None = None, new: Sequence[TrackingEvent] = ()
) -> Shipment:
    """Recompute the timeline and persist it; the caller holds the shipment's row lock.

    `new` rows are stored with it, each inserted already in its place. Work is proportional to this
    shipment's events: it never scans other shipments.
    """
    before = changes.Snapshot.of(shipment)
    result, events = build_shipment_timeline(shipment, events=events, new=new)
    _save_entries(shipment, events, result, new=new)
    _apply_result(shipment, result)
    _close_ended_custody(shipment, result)
    save_reconciled([(shipment, before)])
    return shipment


# Sequences moved out of the way while ranges are shifted: above any real one, within a 32-bit integer.
_SHIFT_PARKING = 1_000_000_000
# More runs than this and per-row updates are as cheap as range updates.
_MAX_SHIFT_RUNS = 32


def _save_entries(
    shipment: Shipment,
    events: Sequence[TrackingEvent],
    result: timeline.Timeline,
    *,
    new: Sequence[TrackingEvent] = (),
) -> None:
    """Write back what the rebuild changed on each event, and insert the `new` rows in their places, in
    a number of statements that does not grow with the timeline's length.

    A fact landing in the past moves every later entry one place down; written row by row that was
    seconds of work under the shipment's lock for a shipment with thousands of events. Entries whose
    only change is their place are moved by ranges of their old places instead (one UPDATE per run of
    consecutive places moved by the same amount; usually one or two); the others row by row.
    """
    by_id = {e.pk: e for e in events}
    by_id.update((-n, row) for n, row in enumerate(new, start=1))
    holders: dict[int, int] = {}
    for event in events:
        holders[event.sequence] = holders.get(event.sequence, 0) + 1
    changed: list[TrackingEvent] = []
    moved: list[tuple[int, int, TrackingEvent]] = []  # (old place, shift, event): only the place changes
    for sequence, entry in enumerate(result.entries, start=1):
        event = by_id[entry.event_id]
        flags = list(entry.flags)
        same = (event.applied, event.flags, event.custody_id, event.effective_at) == (
            entry.applied,
            flags,
            entry.custody_id,
            entry.effective_at,
        )
        if entry.event_id < 0 or (same and event.sequence == sequence):
            if entry.event_id < 0:  # inserted below, in its place: nothing to update afterwards
                event.sequence, event.applied, event.flags = sequence, entry.applied, flags
                event.custody_id, event.effective_at = entry.custody_id, entry.effective_at
            continue
        if same and event.sequence > 0 and holders[event.sequence] == 1:
            moved.append((event.sequence, sequence - event.sequence, event))
        else:
            event.applied, event.flags = entry.applied, flags
            event.custody_id, event.effective_at = entry.custody_id, entry.effective_at
            changed.append(event)
        event.sequence = sequence
    runs: list[list[int]] = []  # [first old place, last old place, shift]
    for old, shift, _event in sorted(moved, key=lambda item: item[0]):
        if runs and runs[-1][1] == old - 1 and runs[-1][2] == shift:
            runs[-1][1] = old
        else:
            runs.append([old, old, shift])
    if len(runs) > _MAX_SHIFT_RUNS:
        changed.extend(event for _old, _shift, event in moved)
    elif runs:
        rows = TrackingEvent.objects.filter(shipment_id=shipment.pk)
        # With several runs, each is parked first so that no range picks up rows another has just
        # moved into it; a single run (one fact landing in the past) moves in one statement.
        parking = _SHIFT_PARKING if len(runs) > 1 else 0
        for first, last, shift in runs:
            rows.filter(sequence__gte=first, sequence__lte=last).update(
                sequence=F("sequence") + (shift + parking)
            )
        if parking:
            rows.filter(sequence__gte=parking // 2).update(sequence=F("sequence") - parking)
    update_rows(changed, ["sequence", "applied", "flags", "custody", "effective_at"])
    if new:  # after the ranges moved, so that none of them picks up a new row
        TrackingEvent.objects.bulk_create(new)


# Kinds a batch may place at the end of a timeline without a rebuild (`timeline.extend_timeline`).
_APPENDABLE_KINDS = frozenset({EventKind.LOCATION, EventKind.ETA, EventKind.NOTE})


class Added(NamedTuple):
    stored: int
    # New facts not stored because their shipment holds `ceiling` events already.
    over_ceiling: list[TrackingEvent]


def add_facts_and_reconcile(
    rows_by_shipment: Mapping[int, Sequence[TrackingEvent]], *, ceiling: int | None = None
) -> Added:
    """Store new facts for several shipments and reconcile each shipment once.

    One transaction with the shipments' row locks taken in id order (so concurrent batches wait,
    never deadlock). A fact newer than everything its shipment has, of a kind that touches no other
    entry (a position, an ETA, a note), is placed at the end (`timeline.extend_timeline`): one insert,
    nothing reloaded. Anything else (a status, a fact landing in the past) rebuilds that shipment's
    whole timeline (`reconcile_shipment`). Duplicates (same dedupe key) are dropped; on the rebuild
    path a step already known (same key or same meaning) gains the message as evidence instead.

    A shipment keeps at most `ceiling` events (MAX_EVENTS_PER_SHIPMENT by default): every rebuild
    reads them all, and the worker pool is shared by every tenant. New facts past it are returned.
    """
    ids = sorted(rows_by_shipment)
    if not ids:
        return Added(0, [])
    limit = settings.BATON["MAX_EVENTS_PER_SHIPMENT"] if ceiling is None else ceiling
    rules = timeline_rules()
    stored = 0
    over_ceiling: list[TrackingEvent] = []
    # Within a caller's transaction (the worker's, which commits the messages' outcomes with the
    # facts) no savepoint: an error here undoes the whole transaction anyway.
    with transaction.atomic(savepoint=False):
        shipments = list(
            Shipment.objects.select_for_update().filter(pk__in=ids).order_by("pk").prefetch_related("custody")
        )
        keys = {r.dedupe_key for rows in rows_by_shipment.values() for r in rows}
        seen = set(
            TrackingEvent.objects.filter(shipment_id__in=ids, dedupe_key__in=keys).values_list(
                "shipment_id", "dedupe_key"
            )
        )
        counts = {
            sid: (n, top or 0)
            for sid, n, top in TrackingEvent.objects.filter(shipment_id__in=ids)
            .values("shipment_id")
            .annotate(n=Count("id"), top=Max("sequence"))
            .values_list("shipment_id", "n", "top")
        }
        appended: list[TrackingEvent] = []
        changed: list[tuple[Shipment, changes.Snapshot]] = []
        for shipment in shipments:
            rows = rows_by_shipment[shipment.pk]
            new: list[TrackingEvent] = []
            for row in rows:
                if (shipment.pk, row.dedupe_key) not in seen:  # the first copy is the fact
                    seen.add((shipment.pk, row.dedupe_key))
                    new.append(row)
            appendable = all(row.kind in _APPENDABLE_KINDS for row in rows)
            if not new and appendable:
                continue  # positions, ETAs and notes already known: no step to merge them into
            count, top = counts.get(shipment.pk, (0, 0))
            if count + len(new) > limit:
                refused = new[max(0, limit - count) :]
                over_ceiling.extend(refused)
                new = new[: len(new) - len(refused)]
                refused_ids = {id(row) for row in refused}
                rows = [row for row in rows if id(row) not in refused_ids]
                if not new:
                    continue
            placed = (
                _append(shipment, new, count, top, rules) if new and appendable and count == top else None
            )
            if placed is None:
                # A status (or a fact landing in the past): merge reports of a step already known
                # (`_keep_evidence`) using the events the rebuild loads anyway.
                events = list(shipment.events.all())
                fresh = _keep_evidence(events, rows)
                if not fresh:
                    continue
                stored += len(fresh)
                reconcile_shipment(shipment, events=events, new=fresh)
            else:
                stored += len(new)
                appended.extend(new)
                before = changes.Snapshot.of(shipment)
                _apply_result(shipment, placed)
                _close_ended_custody(shipment, placed)
                changed.append((shipment, before))
        TrackingEvent.objects.bulk_create(appended)
        save_reconciled(changed)
    return Added(stored, over_ceiling)


def _step_meaning(event: TrackingEvent) -> tuple[object, ...] | None:
    """What a vendor-dated status says: this source saw this step at this instant, whatever its id."""
    if event.kind != EventKind.STATUS or not event.status or not event.timed:
        return None
    return (event.partner_id, event.status, event.reason, event.occurred_at)


def _keep_evidence(known: Sequence[TrackingEvent], rows: Sequence[TrackingEvent]) -> list[TrackingEvent]:
    """Return the rows that are new facts; a known fact reported again records the message as evidence.

    One step is one entry whichever webhook type or topic reported it; every message stays linked.
    """
    by_key = {event.dedupe_key: event for event in known}
    by_meaning = {meaning: event for event in known if (meaning := _step_meaning(event)) is not None}
    new: list[TrackingEvent] = []
    changed: dict[int, TrackingEvent] = {}
    for row in rows:
        meaning = _step_meaning(row)
        kept = by_key.get(row.dedupe_key) or (by_meaning.get(meaning) if meaning is not None else None)
        if kept is None:
            by_key[row.dedupe_key] = row
            if meaning is not None:
                by_meaning[meaning] = row
            new.append(row)
            continue
        also = list((kept.details or {}).get("also_reported_in", []))
        if row.message_id is not None and row.message_id != kept.message_id and row.message_id not in also:
            kept.details = {**(kept.details or {}), "also_reported_in": [*also, row.message_id]}
            if kept.pk is not None:
                changed[kept.pk] = kept
    if changed:
        TrackingEvent.objects.bulk_update(list(changed.values()), ["details"])
    return new


def _append(
    shipment: Shipment, rows: Sequence[TrackingEvent], count: int, top: int, rules: timeline.Rules
) -> timeline.Timeline | None:
    """Place the rows after the shipment's stored timeline, or None when it must be rebuilt."""
    links = _custody_links(shipment.custody.all())
    result = _stored_result(shipment)
    for row in sorted(rows, key=lambda r: r.occurred_at):
        extended = timeline.extend_timeline(result, _as_fact(row), links, rules=rules)
        if extended is None:
            return None
        result = extended
    for sequence, (row, entry) in enumerate(
        zip(sorted(rows, key=lambda r: r.occurred_at), result.entries, strict=True), start=count + 1
    ):
        row.sequence, row.applied, row.flags = sequence, entry.applied, list(entry.flags)
        row.custody_id, row.effective_at = entry.custody_id, entry.effective_at
    return result


def public_tracking(shipment: Shipment, *, proof_unlocked: bool = False) -> dict[str, Any]:
    """What the customer may see (see tracking.public)."""
    from tracking import public

    return public.public_tracking(shipment, proof_unlocked=proof_unlocked)


def last_heard_by_partner(rows: Iterable[Mapping[str, Any]]) -> dict[int, datetime]:
    """Each partner's latest report (received_at) among a shipment's event rows (dicts)."""
    last_heard: dict[int, datetime] = {}
    for row in rows:
        partner_id, received_at = row["partner_id"], row["received_at"]
        if partner_id is not None and (partner_id not in last_heard or received_at > last_heard[partner_id]):
            last_heard[partner_id] = received_at
    return last_heard


def custody_chain(
    shipment: Shipment,
    *,
    events: Sequence[TrackingEvent] | None = None,
    last_heard: Mapping[int, datetime] | None = None,
) -> list[dict[str, object]]:
    """Who held the shipment, from when to when, and when each was last heard from.

    Pass the shipment's `events` (or `last_heard_by_partner` of its rows) when they are loaded
    anyway, to save the query for "last heard".
    """
    # Plain tuples: model instances of each link and its partner cost about 0.4 ms more a timeline.
    links = shipment.custody.order_by("started_at", "id").values_list(
        "id",
        "partner_id",
        "partner__slug",
        "partner__name",
        "partner__kind",
        "partner_reference",
        "handed_off_by_id",
        "started_at",
        "ended_at",
    )
    if last_heard is None and events is not None:
        last_heard = last_heard_by_partner(
            {"partner_id": e.partner_id, "received_at": e.received_at} for e in events
        )
    if last_heard is None:
        last_heard = dict(
            shipment.events.exclude(partner=None)
            .values("partner")
            .annotate(last=Max("received_at"))
            .values_list("partner", "last")
        )
    return [
        {
            "id": pk,
            "partner": slug,
            "partner_name": name,
            "partner_kind": kind,
            "partner_reference": reference,
            "handed_off_by": handed_off_by,
            "started_at": started_at,
            "ended_at": ended_at,
            "is_current": ended_at is None,
            "last_heard_at": last_heard.get(partner_id),
        }
        for pk, partner_id, slug, name, kind, reference, handed_off_by, started_at, ended_at in links
    ]


def record_activity(
    shipment: Shipment,
    *,
    kind: str,
    actor: str,
    summary: str,
    actor_label: str = "",
    user: Any = None,
    channel: str = "",
    outbound: OutboundMessage | None = None,
    case: Any = None,
    details: Mapping[str, Any] | None = None,
) -> Activity:
    """Put Baton's own entry on the shipment's timeline (a chase, a message, an instruction, a case)."""
    return Activity.objects.create(
        shipment=shipment,
        kind=kind,
        actor=actor,
        actor_label=actor_label,
        user=user,
        channel=channel or (outbound.transport if outbound else ""),
        summary=summary,
        outbound=outbound,
        case=case,
        details=dict(details or {}),
    )


PROOF_SALT = "baton.proof-file"


def proof_file_url(path: str) -> str:
    """A link to a stored proof-of-delivery file that works for a limited time (PROOF_LINK_SECONDS)."""
    return f"/proof/{signing.dumps(path, salt=PROOF_SALT, compress=True)}"


def proof_file_path(signed: str) -> str | None:
    """The storage path behind a proof link, or None when it was tampered with or has expired."""
    try:
        path = signing.loads(signed, salt=PROOF_SALT, max_age=settings.BATON["PROOF_LINK_SECONDS"])
    except signing.BadSignature:
        return None
    return path if isinstance(path, str) else None
