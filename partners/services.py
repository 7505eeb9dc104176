"""Partner ingest: store what arrived, match it to shipments through custody, record events."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from hub.errors import flatten_errors
from partners.adapters import get_adapter
from partners.adapters.base import NormalizedEvent, PartnerError
from partners.http import PartnerHttpClient
from partners.models import Custody, IdempotencyKey, InboundMessage, Partner
from partners.serializers import NativeEventSerializer
from tracking.models import EventKind, Shipment, TrackingEvent
from tracking.services import add_events_and_reconcile, reconcile_shipment
from tracking.statuses import TERMINAL_STATUSES

log = logging.getLogger(__name__)


class NotHeld(Exception):
    """The partner does not hold (and never held) a shipment under the references it gave."""

    def __init__(self, references: Sequence[str]) -> None:
        self.references = list(references)
        super().__init__(f"no shipment held by this partner under: {', '.join(self.references)}")


class HandOffError(Exception):
    """A hand-off that cannot be made as asked (for example to an unknown partner)."""


# --- storing what arrived --------------------------------------------------------------------------


def record_inbound(
    partner: Partner,
    *,
    channel: str,
    body: bytes,
    headers: Mapping[str, str],
    state: str = InboundMessage.State.RECEIVED,
    error: str = "",
    enqueue: bool = True,
) -> InboundMessage:
    """Store a partner's raw message; when it is to be processed, enqueue that once it is committed."""
    message = InboundMessage.objects.create(
        partner=partner,
        channel=channel,
        body=body,
        headers=dict(headers),
        content_hash=hashlib.sha256(body).hexdigest(),
        received_at=timezone.now(),
        state=state,
        error=error,
    )
    if enqueue and state == InboundMessage.State.RECEIVED:
        enqueue_processing([message.pk])
    return message


def enqueue_processing(message_ids: Iterable[int]) -> None:
    ids = list(message_ids)
    transaction.on_commit(lambda: _send_to_broker(ids))


def _send_to_broker(ids: list[int]) -> None:
    from partners.tasks import process_inbound_message

    for message_id in ids:
        try:
            process_inbound_message.delay(message_id)
        except KombuOperationalError:
            # The messages are committed, so the partner's 2xx stands: the sweep enqueues them once
            # the broker is back. Stop here rather than wait out the publish retries for each id.
            log.warning("broker down; %d stored message(s) left for the sweep", len(ids), exc_info=True)
            return


# --- matching and recording ---------------------------------------------------------------------------


@dataclass
class Matched:
    """The events of one message grouped by the shipment they land on."""

    by_shipment: dict[int, list[tuple[NormalizedEvent, Custody]]] = field(default_factory=dict)
    unmatched: list[NormalizedEvent] = field(default_factory=list)


def find_custodies(partner: Partner, references: Iterable[str]) -> dict[str, Custody]:
    """Map each reference to the partner's custody: its own reference first, then the merchant's.

    An open custody wins over a closed one for the same reference.
    """
    refs = {r for r in references if r}
    if not refs:
        return {}
    found: dict[str, Custody] = {}
    # A union of two index lookups: an OR across the join made PostgreSQL scan every custody the
    # partner ever had (745 ms per call for a partner with 133k jobs in bench/).
    own = Custody.objects.filter(partner=partner, partner_reference__in=refs).order_by().values("pk")
    merchants = Custody.objects.filter(partner=partner, shipment__reference__in=refs).order_by().values("pk")
    candidates = Custody.objects.filter(pk__in=own.union(merchants)).select_related("shipment")
    for custody in sorted(candidates, key=lambda c: (c.ended_at is None, c.started_at)):
        found[custody.partner_reference] = custody
        found.setdefault(custody.shipment.reference, custody)
        if custody.partner_reference in refs or custody.ended_at is None:
            found[custody.shipment.reference] = custody
    return found


def match_events(partner: Partner, events: Sequence[NormalizedEvent]) -> Matched:
    matched = Matched()
    custodies = find_custodies(partner, (r for e in events for r in e.references))
    groups = {e.group_reference for e in events if e.applies_to_group and e.group_reference}
    group_members: dict[str, list[Custody]] = defaultdict(list)
    if groups:
        for custody in Custody.objects.open().filter(partner=partner, group_reference__in=groups):
            group_members[custody.group_reference].append(custody)
    for event in events:
        if event.applies_to_group:
            targets = group_members.get(event.group_reference, [])
        else:
            hit = next((custodies[r] for r in event.references if r in custodies), None)
            targets = [hit] if hit else []
        if not targets:
            matched.unmatched.append(event)
        for custody in targets:
            matched.by_shipment.setdefault(custody.shipment_id, []).append((event, custody))
    _learn_group_references(matched)
    return matched


def _learn_group_references(matched: Matched) -> None:
    """A stop event names its route: remember it so later route-wide events reach the stop."""
    for pairs in matched.by_shipment.values():
        for event, custody in pairs:
            if event.group_reference and not event.applies_to_group and not custody.group_reference:
                custody.group_reference = event.group_reference
                Custody.objects.filter(pk=custody.pk).update(group_reference=event.group_reference)


def dedupe_key(partner_id: int | None, event: NormalizedEvent, *, fallback: str) -> str:
    """The partner's event id where it has one, else a fingerprint of the fact itself."""
    basis: list[object]
    if event.event_id:
        basis = ["id", partner_id, event.event_id, event.kind, event.status or ""]
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


def event_row(
    event: NormalizedEvent,
    *,
    shipment_id: int,
    partner: Partner | None,
    message: InboundMessage | None,
    received_at: datetime,
    fallback_key: str,
    details: Mapping[str, object] | None = None,
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
        received_at=received_at,
        latitude=event.latitude,
        longitude=event.longitude,
        eta=event.eta,
        proof=dict(event.proof) if event.proof else None,
        note=event.note,
        details=dict(details or {}),
        event_id=event.event_id[:200],
        dedupe_key=dedupe_key(partner.pk if partner else None, event, fallback=fallback_key),
    )


def record_events(
    partner: Partner, events: Sequence[NormalizedEvent], *, message: InboundMessage
) -> list[NormalizedEvent]:
    """Record a message's events on the shipments they match; return those that matched none."""
    matched = match_events(partner, events)
    # Events with no time of their own are fingerprinted by the bytes that carried them, so a
    # byte-identical redelivery days later is still the same fact.
    index = {id(e): i for i, e in enumerate(events)}
    for shipment_id in sorted(matched.by_shipment):  # a fixed lock order: no deadlocks
        rows = [
            event_row(
                event,
                shipment_id=shipment_id,
                partner=partner,
                message=message,
                received_at=message.received_at,
                fallback_key=f"{message.content_hash}:{index[id(event)]}",
            )
            for event, _custody in matched.by_shipment[shipment_id]
        ]
        add_events_and_reconcile(shipment_id, rows)
    return matched.unmatched


def adapter_for(message: InboundMessage) -> str:
    """API calls and hand-offs speak Baton's format, uploads CSV, webhooks and polls the vendor's."""
    by_channel = {InboundMessage.Channel.API: "native", InboundMessage.Channel.UPLOAD: "csv"}
    return by_channel.get(InboundMessage.Channel(message.channel), message.partner.adapter)


def process_inbound(message_id: int) -> str:
    """Parse and apply one stored message. Safe to run again: facts are deduplicated."""
    message = InboundMessage.objects.select_related("partner").filter(pk=message_id).first()
    if message is None:
        return "missing"
    if message.state in (InboundMessage.State.PROCESSED, InboundMessage.State.REJECTED):
        return message.state
    partner = message.partner
    InboundMessage.objects.filter(pk=message.pk).update(attempts=message.attempts + 1)
    try:
        events = get_adapter(adapter_for(message)).parse(
            bytes(message.body), headers=message.headers, tz=partner.tzinfo
        )
    except PartnerError as exc:
        if not exc.permanent:
            raise
        return finish_message(message, InboundMessage.State.FAILED, f"cannot parse: {exc.message}", 0)
    unmatched = record_events(partner, events, message=message)
    if unmatched:
        refs = sorted({r for e in unmatched for r in (e.references or (e.group_reference,))})
        reason = f"no shipment held by {partner.slug} under: {', '.join(refs)[:500]}"
        return finish_message(message, InboundMessage.State.UNMATCHED, reason, len(events) - len(unmatched))
    return finish_message(message, InboundMessage.State.PROCESSED, "", len(events))


def finish_message(message: InboundMessage, state: str, error: str, recorded: int = 0) -> str:
    InboundMessage.objects.filter(pk=message.pk).update(
        state=state, error=error, events_recorded=recorded, processed_at=timezone.now()
    )
    return state


def replay_messages(
    *,
    partner: Partner | None = None,
    states: Sequence[str] = (InboundMessage.State.UNMATCHED, InboundMessage.State.FAILED),
    since: datetime | None = None,
    until: datetime | None = None,
) -> int:
    """Put matching messages back in the queue (for example once a missing assignment exists)."""
    messages = InboundMessage.objects.filter(state__in=states)
    if partner is not None:
        messages = messages.filter(partner=partner)
    if since is not None:
        messages = messages.filter(received_at__gte=since)
    if until is not None:
        messages = messages.filter(received_at__lt=until)
    ids = list(messages.values_list("pk", flat=True))
    if ids:
        InboundMessage.objects.filter(pk__in=ids).update(state=InboundMessage.State.RECEIVED, error="")
        enqueue_processing(ids)
    return len(ids)


def sweep_unprocessed(*, older_than: timedelta | None = None) -> int:
    """Re-enqueue messages still waiting after a while: a lost broker message delays, never loses."""
    age = older_than or timedelta(seconds=settings.BATON["SWEEP_AFTER_SECONDS"])
    ids = list(
        InboundMessage.objects.filter(
            state=InboundMessage.State.RECEIVED, received_at__lt=timezone.now() - age
        ).values_list("pk", flat=True)[:5000]
    )
    if ids:
        enqueue_processing(ids)
    return len(ids)


# --- custody ------------------------------------------------------------------------------------------


def assign_shipment(
    shipment: Shipment,
    *,
    partner: Partner,
    partner_reference: str,
    group_reference: str = "",
    started_at: datetime | None = None,
) -> Custody:
    """Give the shipment to a partner (ending the current holder's custody) and replay its backlog."""
    moment = started_at or timezone.now()
    with transaction.atomic():
        locked = Shipment.objects.select_for_update().get(pk=shipment.pk)
        current = locked.custody.open().first()
        if current and (current.partner_id, current.partner_reference) == (partner.pk, partner_reference):
            return current
        if current:
            current.ended_at = max(moment, current.started_at)
            current.save(update_fields=["ended_at"])
        custody = Custody.objects.create(
            partner=partner,
            shipment=locked,
            partner_reference=partner_reference,
            group_reference=group_reference,
            started_at=moment,
        )
        reconcile_shipment(locked)
        replay_messages(partner=partner, states=[InboundMessage.State.UNMATCHED])
    return custody


def hand_off(
    partner: Partner,
    *,
    reference: str,
    to_partner: Partner,
    to_reference: str,
    occurred_at: datetime | None = None,
    note: str = "",
    message: InboundMessage | None = None,
) -> Custody:
    """The current custodian passes the job on; the hand-off is itself a timeline entry."""
    moment = occurred_at or timezone.now()
    held = find_custodies(partner, [reference]).get(reference)
    if held is None or held.ended_at is not None:
        raise NotHeld([reference])
    if to_partner.pk == partner.pk:
        raise HandOffError("a partner cannot hand a shipment to itself")
    with transaction.atomic():
        shipment = Shipment.objects.select_for_update().get(pk=held.shipment_id)
        current = shipment.custody.open().first()
        if current is None or current.pk != held.pk:
            raise NotHeld([reference])
        if moment < current.started_at:
            raise HandOffError("occurred_at is before this partner's custody began")
        current.ended_at = moment
        current.save(update_fields=["ended_at"])
        try:
            with transaction.atomic():
                custody = Custody.objects.create(
                    partner=to_partner,
                    shipment=shipment,
                    partner_reference=to_reference,
                    started_at=moment,
                    handed_off_by=current,
                    group_reference="",
                )
        except IntegrityError as exc:
            raise HandOffError(f"{to_partner.slug} already holds another job as {to_reference!r}") from exc
        handoff = NormalizedEvent(
            reference=reference,
            kind=EventKind.HANDOFF,
            raw_status="handoff",
            occurred_at=moment,
            note=note,
        )
        row = event_row(
            handoff,
            shipment_id=shipment.pk,
            partner=partner,
            message=message,
            received_at=timezone.now(),
            fallback_key=f"handoff:{custody.pk}",
            details={"to_partner": to_partner.slug, "to_reference": to_reference, "custody": custody.pk},
        )
        TrackingEvent.objects.bulk_create([row], ignore_conflicts=True)
        reconcile_shipment(shipment)
        replay_messages(partner=to_partner, states=[InboundMessage.State.UNMATCHED])
    return custody


def custody_chain(
    shipment: Shipment, *, events: Sequence[TrackingEvent] | None = None
) -> list[dict[str, object]]:
    """Who held the shipment, from when to when, and when each was last heard from.

    Pass the shipment's `events` when they are loaded anyway, to save the query for "last heard".
    """
    links = list(shipment.custody.select_related("partner").order_by("started_at", "id"))
    last_heard: dict[int | None, datetime] = {}
    if events is None:
        last_heard = dict(
            shipment.events.exclude(partner=None)
            .values("partner")
            .annotate(last=Max("received_at"))
            .values_list("partner", "last")
        )
    else:
        for event in events:
            seen = last_heard.get(event.partner_id)
            if event.partner_id is not None and (seen is None or event.received_at > seen):
                last_heard[event.partner_id] = event.received_at
    return [
        {
            "id": link.pk,
            "partner": link.partner.slug,
            "partner_name": link.partner.name,
            "partner_kind": link.partner.kind,
            "partner_reference": link.partner_reference,
            "handed_off_by": link.handed_off_by_id,
            "started_at": link.started_at,
            "ended_at": link.ended_at,
            "is_current": link.ended_at is None,
            "last_heard_at": last_heard.get(link.partner_id),
        }
        for link in links
    ]


# --- polling partners that only offer a pull API ---------------------------------------------------


def poll_pull_partners() -> int:
    """Queue one poll per open custody of every active pull partner."""
    from partners.adapters import REGISTRY
    from partners.tasks import poll_custody

    pull_adapters = [name for name, cls in REGISTRY.items() if cls.can_fetch]
    ids = list(
        Custody.objects.open()
        .filter(partner__is_active=True, partner__adapter__in=pull_adapters)
        .exclude(shipment__status__in=TERMINAL_STATUSES)
        .values_list("pk", flat=True)
    )
    for custody_id in ids:
        poll_custody.delay(custody_id)
    return len(ids)


def poll_custody(custody_id: int, *, client: PartnerHttpClient | None = None) -> int:
    """Fetch one job's history from its holder, store the answer as received, record its events."""
    custody = Custody.objects.select_related("partner").get(pk=custody_id)
    partner = custody.partner
    client = client or PartnerHttpClient()
    events = get_adapter(partner.adapter).fetch(
        client, config=partner.config, reference=custody.partner_reference, tz=partner.tzinfo
    )
    message = record_inbound(
        partner,
        channel=InboundMessage.Channel.POLL,
        body=client.last_body,
        headers={"x-baton-polled-reference": custody.partner_reference},
        enqueue=False,
    )
    unmatched = record_events(partner, events, message=message)
    finish_message(message, InboundMessage.State.PROCESSED, "", len(events) - len(unmatched))
    return len(events)


# --- the native API's door ---------------------------------------------------------------------------


def check_custody(partner: Partner, references: Iterable[str]) -> None:
    """Raise NotHeld unless the partner holds or held a shipment under every reference."""
    refs = set(references)
    missing = refs - set(find_custodies(partner, refs))
    if missing:
        raise NotHeld(sorted(missing))


def run_idempotent(
    partner: Partner, key: str, body: bytes, produce: Callable[[], tuple[int, dict[str, Any]]]
) -> tuple[int, dict[str, Any]]:
    """Stripe-style `Idempotency-Key`: the same key and body replay the first response.

    Raises IdempotencyMismatch (same key, other body) or IdempotencyInProgress (still running).
    A request that fails before it produced a response frees its key, so the partner can retry.
    """
    request_hash = hashlib.sha256(body).hexdigest()
    try:
        with transaction.atomic():
            record = IdempotencyKey.objects.create(partner=partner, key=key, request_hash=request_hash)
    except IntegrityError:
        existing = IdempotencyKey.objects.get(partner=partner, key=key)
        if existing.request_hash != request_hash:
            raise IdempotencyMismatch(key) from None
        if existing.status_code is None:
            raise IdempotencyInProgress(key) from None
        return existing.status_code, existing.response_body or {}
    try:
        status_code, payload = produce()
    except BaseException:
        record.delete()
        raise
    IdempotencyKey.objects.filter(pk=record.pk).update(status_code=status_code, response_body=payload)
    return status_code, payload


class IdempotencyMismatch(Exception):
    pass


class IdempotencyInProgress(Exception):
    pass


UPLOAD_FIELDS = {"reference", "status", "occurred_at", "reason", "event_id", "raw_status", "eta", "note"}


def check_upload_rows(partner: Partner, rows: Sequence[Mapping[str, str]]) -> list[dict[str, Any]]:
    """Validate CSV rows like API events; return a per-row error report (line numbers from 2)."""
    report: list[dict[str, Any]] = []
    held = find_custodies(partner, {row.get("reference", "") for row in rows})
    for line, row in enumerate(rows, start=2):
        data: dict[str, Any] = {k: v for k, v in row.items() if v and k in UPLOAD_FIELDS}
        if row.get("latitude") or row.get("longitude"):
            data["location"] = {"lat": row.get("latitude"), "lng": row.get("longitude")}
        serializer = NativeEventSerializer(data=data)
        if not serializer.is_valid():
            fields = flatten_errors(serializer.errors)
            name, messages = next(iter(fields.items()))
            report.append({"row": line, "message": f"{name}: {messages[0]}", "fields": fields})
        elif data["reference"] not in held:
            message = f"no shipment held by you under {data['reference']!r}"
            report.append({"row": line, "message": message, "fields": {"reference": [message]}})
    return report
