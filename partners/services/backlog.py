"""How far behind ingest is: waiting messages, acceptance-to-timeline lag, what needs a replay."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, QuerySet
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
    partner: Partner
    failed: int
    unmatched: int


def inbound_backlog() -> Backlog:
    """Messages waiting for the worker and when the oldest arrived (one query on the state index)."""
    row = InboundMessage.objects.filter(state=WAITING).aggregate(
        waiting=Count("pk"), oldest=Min("received_at")
    )
    return Backlog(waiting=row["waiting"], oldest_received_at=row["oldest"])


def unresolved_counts() -> dict[str, int]:
    """How many messages are unmatched and failed right now."""
    counts: dict[str, int] = {str(state): 0 for state in UNRESOLVED}
    rows = InboundMessage.objects.filter(state__in=UNRESOLVED).values("state").annotate(n=Count("pk"))
    counts.update({row["state"]: row["n"] for row in rows})
    return counts


def unresolved_by_partner() -> list[PartnerProblems]:
    """Failed and unmatched messages per partner, partners with none left out."""
    partners = Partner.objects.annotate(
        failed=Count("messages", filter=Q(messages__state=InboundMessage.State.FAILED)),
        unmatched=Count("messages", filter=Q(messages__state=InboundMessage.State.UNMATCHED)),
    ).filter(Q(failed__gt=0) | Q(unmatched__gt=0))
    return [PartnerProblems(p, p.failed, p.unmatched) for p in partners.order_by("slug")]


LAG = ExpressionWrapper(F("processed_at") - F("received_at"), output_field=DurationField())


def _finished_since(since: datetime) -> QuerySet[InboundMessage]:
    return InboundMessage.objects.filter(processed_at__gte=since, received_at__gte=since - LAG_SCAN_WINDOW)


def lag_percentiles(
    *, since: datetime, percentiles: tuple[float, ...] = (0.5, 0.99)
) -> dict[float, float | None]:
    """Nearest-rank percentiles of processed_at - received_at (seconds) for messages finished since `since`.

    Computed in SQL by ordering on the lag and reading one row per percentile, so it works the same on
    PostgreSQL and SQLite and never loads the window into Python.
    """
    finished = _finished_since(since)
    total = finished.count()
    result: dict[float, float | None] = dict.fromkeys(percentiles)
    if not total:
        return result
    for p in percentiles:
        rank = min(total, max(1, math.ceil(p * total))) - 1
        lag = finished.order_by(LAG).values_list(LAG, flat=True)[rank]
        result[p] = lag.total_seconds()
    return result


def finished_count(*, since: datetime) -> int:
    return _finished_since(since).count()
