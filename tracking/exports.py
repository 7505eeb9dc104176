"""EPCIS exports: load a shipment's (or a time range's) facts and hand them to the pure `epcis` mapping."""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby, islice
from typing import Any
from zoneinfo import ZoneInfo

from django.apps import apps
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from tracking import epcis
from tracking.models import Shipment, TrackingEvent
from tracking.statuses import EventKind

BATCH_SHIPMENTS = 200


def namespace() -> epcis.Namespace:
    return epcis.Namespace(base=settings.EPCIS_NAMESPACE, tz=ZoneInfo(settings.TIME_ZONE))


def _status_rows(
    shipment_ids: Iterable[int], start: datetime | None = None, end: datetime | None = None
) -> QuerySet[Any, Any]:
    rows = TrackingEvent.objects.filter(
        shipment_id__in=list(shipment_ids), kind=EventKind.STATUS, applied=True
    ).exclude(status="")
    if start is not None and end is not None:
        rows = rows.filter(occurred_at__gte=start, occurred_at__lt=end)
    return rows.order_by("shipment_id", "sequence", "id").values(
        "id",
        "shipment_id",
        "status",
        "reason",
        "raw_status",
        "occurred_at",
        "effective_at",
        "received_at",
        "partner__slug",
        "custody__partner_reference",
        "latitude",
        "longitude",
    )


def _custody_model() -> Any:
    return apps.get_model("partners", "Custody")  # partners' model: the core reads it by name


def _custody_rows(shipment_ids: Iterable[int]) -> QuerySet[Any, Any]:
    return (
        _custody_model()
        .objects.filter(shipment_id__in=list(shipment_ids))
        .order_by("shipment_id", "started_at", "id")
        .values(
            "id",
            "shipment_id",
            "partner__slug",
            "partner_reference",
            "started_at",
            "ended_at",
            "handed_off_by_id",
        )
    )


def _facts(
    shipment: Mapping[str, Any], custody: list[dict[str, Any]], statuses: list[dict[str, Any]]
) -> epcis.ShipmentFacts:
    return epcis.ShipmentFacts(
        reference=shipment["reference"],
        merchant=shipment["merchant"],
        custody=[
            epcis.CustodyFact(
                id=c["id"],
                partner=c["partner__slug"],
                partner_reference=c["partner_reference"],
                started_at=c["started_at"],
                ended_at=c["ended_at"],
                handed_off_by=c["handed_off_by_id"],
            )
            for c in custody
        ],
        statuses=[
            epcis.StatusFact(
                id=e["id"],
                status=e["status"],
                reason=e["reason"],
                raw_status=e["raw_status"],
                occurred_at=e["effective_at"] or e["occurred_at"],
                received_at=e["received_at"],
                partner=e["partner__slug"],
                partner_reference=e["custody__partner_reference"],
                latitude=e["latitude"],
                longitude=e["longitude"],
            )
            for e in statuses
        ],
    )


def shipment_document(shipment: Shipment, *, now: datetime | None = None) -> dict[str, Any]:
    """The EPCIS 2.0 document of one shipment's custody chain and status events (three queries)."""
    now = now or timezone.now()
    ns = namespace()
    facts = _facts(
        {"reference": shipment.reference, "merchant": shipment.merchant},
        list(_custody_rows([shipment.pk])),
        list(_status_rows([shipment.pk])),
    )
    return epcis.document(
        epcis.shipment_events(facts, ns), ns, created=now, document_id=f"urn:uuid:{uuid.uuid4()}"
    )


@dataclass(frozen=True)
class ExportRange:
    start: datetime
    end: datetime


class InvalidRange(ValueError):
    """A bulk export range that is missing, reversed or longer than allowed."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in fields.items()))
        self.fields = fields


def check_range(start: datetime | None, end: datetime | None) -> ExportRange:
    """A closed-open range of at most BATON_EPCIS_MAX_RANGE_DAYS days."""
    fields: dict[str, list[str]] = {}
    if start is None:
        fields["from"] = ["Required: an ISO 8601 date-time with an offset."]
    if end is None:
        fields["to"] = ["Required: an ISO 8601 date-time with an offset."]
    if start is not None and end is not None:
        limit = timedelta(days=settings.BATON["EPCIS_MAX_RANGE_DAYS"])
        if end <= start:
            fields["to"] = ["Must be after from."]
        elif end - start > limit:
            fields["to"] = [f"The range may span at most {limit.days} days."]
    if fields or start is None or end is None:
        raise InvalidRange(fields)
    return ExportRange(start=start, end=end)


def _shipment_ids_in_range(period: ExportRange) -> Iterator[int]:
    """Ids of shipments with a status event or a custody change in the range, ascending, once each."""
    with_events = (
        TrackingEvent.objects.filter(occurred_at__gte=period.start, occurred_at__lt=period.end)
        .order_by("shipment_id")
        .values_list("shipment_id", flat=True)
        .distinct()
        .iterator(chunk_size=5000)
    )
    with_custody = (
        _custody_model()
        .objects.filter(started_at__gte=period.start, started_at__lt=period.end)
        .order_by("shipment_id")
        .values_list("shipment_id", flat=True)
        .distinct()
        .iterator(chunk_size=5000)
    )
    for shipment_id, _ in groupby(heapq.merge(with_events, with_custody)):
        yield shipment_id


def range_events(period: ExportRange) -> Iterator[dict[str, Any]]:
    """Every EPCIS event in the range, shipment by shipment, loading BATCH_SHIPMENTS at a time."""
    ns = namespace()
    ids = _shipment_ids_in_range(period)
    while batch := list(islice(ids, BATCH_SHIPMENTS)):
        shipments = {
            row["id"]: row
            for row in Shipment.objects.filter(pk__in=batch).values("id", "reference", "merchant")
        }
        custody = {k: list(v) for k, v in groupby(_custody_rows(batch), key=lambda r: r["shipment_id"])}
        statuses = {
            k: list(v)
            for k, v in groupby(_status_rows(batch, period.start, period.end), key=lambda r: r["shipment_id"])
        }
        for shipment_id in batch:
            facts = _facts(
                shipments[shipment_id], custody.get(shipment_id, []), statuses.get(shipment_id, [])
            )
            yield from epcis.shipment_events(facts, ns, since=period.start, until=period.end)


def stream_range(period: ExportRange, *, now: datetime | None = None) -> Iterator[str]:
    """The range's EPCIS document as text chunks (for a StreamingHttpResponse)."""
    ns = namespace()
    return epcis.stream_document(
        range_events(period), ns, created=now or timezone.now(), document_id=f"urn:uuid:{uuid.uuid4()}"
    )
