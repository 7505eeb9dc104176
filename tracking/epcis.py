"""EPCIS 2.0 JSON-LD from a shipment's custody chain and status events (pure: no ORM, no settings).

Each change of custody is an ObjectEvent with the CBV step `accepting` and source/destination lists
naming the owning party (the merchant) and the possessing party before and after; each applied status
report is an ObjectEvent with a CBV business step and disposition, a `geo:` read point where the
partner gave a position, and the merchant's order as a business transaction. Identifiers are URIs
under Baton's namespace (`base`), and event ids are UUIDs derived from Baton's own row ids, so the
same fact always exports with the same `eventID`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import quote

CONTEXT_URL = "https://ref.gs1.org/standards/epcis/epcis-context.jsonld"
SCHEMA_VERSION = "2.0"
# One namespace for all of Baton's event ids: uuid5(namespace, "<reference>/<kind>/<row id>").
_EVENT_NAMESPACE = uuid.UUID("6f1c1c52-3f43-4a4e-9a41-8f7b8d0c2e16")

# Canonical status -> (CBV business step, CBV disposition or None when no CBV disposition fits).
STATUS_STEPS: dict[str, tuple[str, str | None]] = {
    "info_received": ("accepting", "in_progress"),
    "assigned": ("staging_outbound", "in_progress"),
    "picked_up": ("departing", "in_transit"),
    "in_transit": ("transporting", "in_transit"),
    "out_for_delivery": ("transporting", "in_transit"),
    "arriving": ("arriving", "in_transit"),
    "attempt_failed": ("holding", "in_progress"),
    "available_for_pickup": ("storing", "available"),
    # CBV has no "delivered to the consignee" disposition; the step says it and baton:status names it.
    "delivered": ("receiving", None),
    "exception": ("holding", "unknown"),
    "returning": ("departing", "returned"),
    "returned": ("receiving", "returned"),
    "cancelled": ("void_shipping", "inactive"),
}
# A reason that changes the disposition whatever the status (damaged goods are damaged).
REASON_DISPOSITIONS = {"damaged": "damaged", "lost": "unknown"}


@dataclass(frozen=True)
class CustodyFact:
    id: int
    partner: str
    partner_reference: str
    started_at: datetime
    ended_at: datetime | None
    handed_off_by: int | None


@dataclass(frozen=True)
class StatusFact:
    id: int
    status: str
    reason: str
    raw_status: str
    occurred_at: datetime
    received_at: datetime
    partner: str | None
    partner_reference: str | None
    latitude: float | None
    longitude: float | None


@dataclass(frozen=True)
class ShipmentFacts:
    reference: str
    merchant: str
    custody: Sequence[CustodyFact]
    statuses: Sequence[StatusFact]


@dataclass(frozen=True)
class Namespace:
    """Where Baton's identifiers live and which zone event times are reported in."""

    base: str
    tz: tzinfo

    def _join(self, *parts: str) -> str:
        return "/".join([self.base.rstrip("/"), *(quote(part, safe="") for part in parts)])

    def shipment(self, reference: str) -> str:
        return self._join("shipment", reference)

    def order(self, merchant: str, reference: str) -> str:
        return self._join("merchant", merchant, "order", reference)

    def merchant(self, merchant: str) -> str:
        return self._join("merchant", merchant)

    def partner(self, slug: str) -> str:
        return self._join("partner", slug)

    def partner_job(self, slug: str, partner_reference: str) -> str:
        return self._join("partner", slug, "job", partner_reference)

    @property
    def vocabulary(self) -> str:
        return self.base.rstrip("/") + "/vocab#"


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _offset(moment: datetime, tz: tzinfo) -> str:
    offset = moment.astimezone(tz).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _event_id(reference: str, kind: str, row_id: int) -> str:
    return uuid.uuid5(_EVENT_NAMESPACE, f"{reference}/{kind}/{row_id}").urn


def _transactions(
    facts: ShipmentFacts, ns: Namespace, partner: str | None, partner_reference: str | None
) -> list[dict[str, str]]:
    transactions = [{"type": "po", "bizTransaction": ns.order(facts.merchant, facts.reference)}]
    if partner and partner_reference:  # the custodian's own job: its consignment note
        transactions.append({"type": "bol", "bizTransaction": ns.partner_job(partner, partner_reference)})
    return transactions


def custody_event(facts: ShipmentFacts, link: CustodyFact, ns: Namespace) -> dict[str, Any]:
    """One change of custody: from the previous holder (or the merchant) to this link's partner."""
    previous = next((c for c in facts.custody if c.id == link.handed_off_by), None)
    if previous is None:  # not a hand-on: the holder before is the last link that ended by now
        ended = [c for c in facts.custody if c.ended_at is not None and c.ended_at <= link.started_at]
        previous = max(ended, key=lambda c: (c.ended_at, c.id)) if ended else None
    owner = ns.merchant(facts.merchant)
    giver = ns.partner(previous.partner) if previous is not None else owner
    return {
        "type": "ObjectEvent",
        "eventID": _event_id(facts.reference, "custody", link.id),
        "eventTime": _time(link.started_at),
        "eventTimeZoneOffset": _offset(link.started_at, ns.tz),
        "epcList": [ns.shipment(facts.reference)],
        "action": "OBSERVE",
        "bizStep": "accepting",
        "disposition": "in_transit" if previous is not None else "in_progress",
        "bizTransactionList": _transactions(facts, ns, link.partner, link.partner_reference),
        "sourceList": [
            {"type": "owning_party", "source": owner},
            {"type": "possessing_party", "source": giver},
        ],
        "destinationList": [
            {"type": "owning_party", "destination": owner},
            {"type": "possessing_party", "destination": ns.partner(link.partner)},
        ],
        "baton:custodian": link.partner,
        "baton:handedOn": previous is not None,
    }


def status_event(facts: ShipmentFacts, fact: StatusFact, ns: Namespace) -> dict[str, Any]:
    """One applied status report, with its CBV step, disposition and (if known) where it happened."""
    step, disposition = STATUS_STEPS.get(fact.status, ("other", None))
    disposition = REASON_DISPOSITIONS.get(fact.reason, disposition)
    event: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventID": _event_id(facts.reference, "status", fact.id),
        "eventTime": _time(fact.occurred_at),
        "recordTime": _time(fact.received_at),
        "eventTimeZoneOffset": _offset(fact.occurred_at, ns.tz),
        "epcList": [ns.shipment(facts.reference)],
        "action": "OBSERVE",
        "bizStep": step,
    }
    if disposition:
        event["disposition"] = disposition
    if fact.latitude is not None and fact.longitude is not None:
        event["readPoint"] = {"id": f"geo:{fact.latitude:.6f},{fact.longitude:.6f}"}
    event["bizTransactionList"] = _transactions(facts, ns, fact.partner, fact.partner_reference)
    event["baton:status"] = fact.status
    if fact.reason:
        event["baton:reason"] = fact.reason
    if fact.raw_status:
        event["baton:rawStatus"] = fact.raw_status
    if fact.partner:
        event["baton:reportedBy"] = ns.partner(fact.partner)
    return event


def shipment_events(
    facts: ShipmentFacts, ns: Namespace, *, since: datetime | None = None, until: datetime | None = None
) -> list[dict[str, Any]]:
    """Every custody change and applied status report of one shipment in [since, until), in time order.

    The whole custody chain stays in `facts` even when the range cuts it, to name the previous holder.
    """

    def wanted(moment: datetime) -> bool:
        return (since is None or moment >= since) and (until is None or moment < until)

    timed: list[tuple[datetime, int, int, dict[str, Any]]] = [
        (link.started_at, 0, link.id, custody_event(facts, link, ns))
        for link in facts.custody
        if wanted(link.started_at)
    ]
    timed += [
        (fact.occurred_at, 1, fact.id, status_event(facts, fact, ns))
        for fact in facts.statuses
        if wanted(fact.occurred_at)
    ]
    timed.sort(key=lambda item: item[:3])
    return [event for *_, event in timed]


def context(ns: Namespace) -> list[Any]:
    return [CONTEXT_URL, {"baton": ns.vocabulary}]


def document_head(ns: Namespace, *, created: datetime, document_id: str) -> dict[str, Any]:
    return {
        "@context": context(ns),
        "id": document_id,
        "type": "EPCISDocument",
        "schemaVersion": SCHEMA_VERSION,
        "creationDate": _time(created),
    }


def document(
    events: Iterable[dict[str, Any]], ns: Namespace, *, created: datetime, document_id: str
) -> dict[str, Any]:
    """A whole EPCIS document (for one shipment: small enough to build in memory)."""
    return {
        **document_head(ns, created=created, document_id=document_id),
        "epcisBody": {"eventList": list(events)},
    }


def stream_document(
    events: Iterable[dict[str, Any]], ns: Namespace, *, created: datetime, document_id: str
) -> Iterator[str]:
    """The same document as text chunks, one event at a time: memory stays flat however many events."""
    head = json.dumps(document_head(ns, created=created, document_id=document_id))
    yield head[:-1] + ', "epcisBody": {"eventList": ['
    first = True
    for event in events:
        yield ("" if first else ",") + json.dumps(event, separators=(",", ":"))
        first = False
    yield "]}}"
