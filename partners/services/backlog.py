"""How far behind ingest is: waiting messages, acceptance-to-timeline lag, what needs a replay."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Aggregate, Count, DurationField, ExpressionWrapper, F, Min, QuerySet
from django.utils import timezone

from partners.models import InboundMessage, Partner

WAITING = InboundMessage.State.RECEIVED
# Messages that need a person (or a replay): stored, but not on any timeline.
UNRESOLVED = (InboundMessage.State.UNMATCHED, InboundMessage.State.FAILED)
# Lag is read from messages received within this window, so the received_at index bounds the scan.
LAG_SCAN_WINDOW = timedelta(days=1)


@dataclass(frozen=True)
class Backlog:
    waiting: int
    oldest_received_at: datetime | None

    def oldest_age_seconds(self, now: datetime | None = None) -> float:
        if self.oldest_received_at is None:
            return 0.0
        return max(0.0, ((now or timezone.now()) - self.oldest_received_at).total_seconds())


@dataclass(frozen=True)
class PartnerProblems:
    """One partner's messages that reached no timeline."""

    partner: Partner
    failed: int
    unmatched: int


def inbound_backlog() -> Backlog:
    """Messages waiting for the worker and when the oldest arrived (one query on the state index)."""
    row = InboundMessage.objects.filter(state=WAITING).aggregate(
        waiting=Count("*"), oldest=Min("received_at")
    )
    return Backlog(waiting=row["waiting"], oldest_received_at=row["oldest"])


def unresolved_counts() -> dict[str, int]:
    """How many messages are unmatched and failed right now."""
    counts: dict[str, int] = {str(state): 0 for state in UNRESOLVED}
    rows = InboundMessage.objects.filter(state__in=UNRESOLVED).values("state").annotate(n=Count("*"))
    counts.update({row["state"]: row["n"] for row in rows})
    return counts


def unresolved_by_partner() -> list[PartnerProblems]:
    """Failed and unmatched messages per partner, partners with none left out."""
    # Grouped on the messages (the state indexes), not joined from partners: only unresolved rows are read.
    rows = (
        InboundMessage.objects.filter(state__in=UNRESOLVED).values("partner", "state").annotate(n=Count("*"))
    )
    counts: dict[int, dict[str, int]] = {}
    for row in rows:
        counts.setdefault(row["partner"], {})[row["state"]] = row["n"]
    partners = Partner.objects.filter(pk__in=counts).order_by("slug")
    return [
        PartnerProblems(
            p,
            counts[p.pk].get(InboundMessage.State.FAILED, 0),
            counts[p.pk].get(InboundMessage.State.UNMATCHED, 0),
        )
        for p in partners
    ]


class PercentileDisc(Aggregate):
    """PostgreSQL's PERCENTILE_DISC(p) WITHIN GROUP (ORDER BY expression): the nearest-rank percentile."""

    function = "PERCENTILE_DISC"
    template = "%(function)s(%(percentile)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: Any, percentile: float) -> None:
        super().__init__(expression, percentile=float(percentile), output_field=DurationField())


LAG = ExpressionWrapper(F("processed_at") - F("received_at"), output_field=DurationField())


def _finished_since(since: datetime) -> QuerySet[InboundMessage]:
    return InboundMessage.objects.filter(processed_at__gte=since, received_at__gte=since - LAG_SCAN_WINDOW)


def lag_percentiles(
    *, since: datetime, percentiles: tuple[float, ...] = (0.5, 0.99)
) -> dict[float, float | None]:
    """Nearest-rank percentiles of processed_at - received_at (seconds) for messages finished since `since`.

    Computed in SQL, never loading the window into Python: one PERCENTILE_DISC query on PostgreSQL; on
    SQLite, which lacks it, the row at each rank of the window ordered by lag.
    """
    finished = _finished_since(since)
    result: dict[float, float | None] = dict.fromkeys(percentiles)
    if connection.vendor == "postgresql":
        row = finished.aggregate(**{f"p{i}": PercentileDisc(LAG, p) for i, p in enumerate(percentiles)})
        for i, p in enumerate(percentiles):
            lag = row[f"p{i}"]
            result[p] = None if lag is None else lag.total_seconds()
        return result
    total = finished.count()
    if not total:
        return result
    for p in percentiles:
        rank = min(total, max(1, math.ceil(p * total))) - 1
        lag = finished.order_by(LAG).values_list(LAG, flat=True)[rank]
        result[p] = lag.total_seconds()
    return result


def finished_count(*, since: datetime) -> int:
    return _finished_since(since).count()
