"""The console's work queues: what each holds, who sees it, and its urgency order.

Every queue is one queryset over an index-friendly filter; all of them are counted in one query and
the chosen one is listed with one more, so the home page costs the same number of queries whatever
the data size.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connections, router
from django.db.models import Q, QuerySet
from django.utils import timezone

from contactcentre.models import Case
from contactcentre.presenters import flag_list
from partners.models import InboundMessage
from tracking.flags import Flag
from tracking.models import Shipment
from tracking.statuses import TERMINAL_STATUSES, Status

AGES = {"1h": timedelta(hours=1), "4h": timedelta(hours=4), "24h": timedelta(days=1), "3d": timedelta(days=3)}
AGE_LABELS = {
    "": "Any age",
    "1h": "Over 1 hour",
    "4h": "Over 4 hours",
    "24h": "Over a day",
    "3d": "Over 3 days",
}


@dataclass(frozen=True)
class Filters:
    """Narrow a queue by current holder (partner slug), area (postcode district) and age."""

    partner: str = ""
    area: str = ""
    age: str = ""

    @classmethod
    def from_query(cls, params: Any) -> Filters:
        age = params.get("age", "")
        return cls(
            partner=params.get("partner", "").strip(),
            area=params.get("area", "").strip().upper(),
            age=age if age in AGES else "",
        )

    def older_than(self, now: datetime) -> datetime | None:
        return now - AGES[self.age] if self.age else None


@dataclass(frozen=True)
class Queue:
    slug: str
    title: str
    explanation: str
    kind: str  # "shipment", "case" or "message"
    permission: str = "contactcentre.use_console"


QUEUES = [
    Queue(
        "blind_spots", "Blind spots", "The holder has gone silent; nobody knows where these are.", "shipment"
    ),
    Queue(
        "late_risk", "At risk of being late", "Baton predicts the promised window will be missed.", "shipment"
    ),
    Queue(
        "eta_passed",
        "ETA passed",
        "The estimated arrival is in the past and the job is not finished.",
        "shipment",
    ),
    Queue(
        "conflicts",
        "Conflicts",
        "Sources disagree, or delivery was reported far from the address.",
        "shipment",
    ),
    Queue(
        "failed_attempts",
        "Failed attempts",
        "A delivery attempt failed or the job is in exception.",
        "shipment",
    ),
    Queue(
        "unmatched",
        "Unmatched inbound messages",
        "Partner messages no shipment matched, or that could not be read.",
        "message",
        "contactcentre.operate",
    ),
    Queue("my_cases", "My open cases", "Cases you own, soonest SLA first.", "case"),
    Queue("unassigned", "Unassigned cases", "Open cases nobody owns yet.", "case"),
    Queue(
        "escalated",
        "Escalated cases",
        "Cases an agent asked a supervisor to look at.",
        "case",
        "contactcentre.supervise",
    ),
    Queue("past_sla", "Cases past their SLA", "Open cases whose response time has run out.", "case"),
]
BY_SLUG = {queue.slug: queue for queue in QUEUES}

FLAG_QUEUES: dict[str, list[str]] = {
    "blind_spots": [Flag.STALE_CUSTODIAN, Flag.UNACKNOWLEDGED],
    "late_risk": [Flag.LATE_RISK],
    "eta_passed": [Flag.ETA_PASSED],
    "conflicts": [Flag.CONFLICT, Flag.FAR_FROM_DESTINATION],
}
SHIPMENT_ORDER = {
    "blind_spots": ["last_event_at", "promised_until", "id"],
    "late_risk": ["promised_until", "id"],
    "eta_passed": ["eta", "promised_until", "id"],
    "conflicts": ["promised_until", "id"],
    "failed_attempts": ["status_at", "id"],
}


def visible_queues(user: Any) -> list[Queue]:
    return [queue for queue in QUEUES if user.has_perm(queue.permission)]


def shipments(slug: str, filters: Filters, *, now: datetime | None = None) -> QuerySet[Shipment]:
    now = now or timezone.now()
    # Sorted, so the SQL is the same every time: the partial indexes of tracking's migration 0011
    # carry this very condition, and PostgreSQL uses an index only if the query implies it.
    queryset = Shipment.objects.exclude(status__in=sorted(TERMINAL_STATUSES))
    if slug == "failed_attempts":
        queryset = queryset.filter(status__in=[Status.ATTEMPT_FAILED, Status.EXCEPTION])
    else:
        queryset = queryset.carrying(*FLAG_QUEUES[slug])
    if filters.partner:
        queryset = queryset.filter(current_custody__partner__slug=filters.partner)
    if filters.area:
        queryset = queryset.filter(Q(postcode=filters.area) | Q(postcode__startswith=f"{filters.area} "))
    cutoff = filters.older_than(now)
    if cutoff is not None:
        # Age of the problem: how long since anyone reported (or since creation, if nobody has).
        queryset = queryset.filter(
            Q(last_event_at__lt=cutoff) | Q(last_event_at__isnull=True, created_at__lt=cutoff)
        )
    order = SHIPMENT_ORDER[slug]
    if slug == "late_risk":
        return queryset.order_by("-late_risk", *order)
    return queryset.order_by(*order)


def cases(slug: str, filters: Filters, user: Any, *, now: datetime | None = None) -> QuerySet[Case]:
    now = now or timezone.now()
    queryset = Case.objects.exclude(status=Case.Status.RESOLVED)
    if slug == "my_cases":
        queryset = queryset.filter(owner=user)
    elif slug == "unassigned":
        queryset = queryset.filter(owner__isnull=True)
    elif slug == "escalated":
        queryset = queryset.filter(escalated=True)
    elif slug == "past_sla":
        queryset = queryset.filter(sla_due_at__lt=now)
    if filters.partner:
        queryset = queryset.filter(shipment__current_custody__partner__slug=filters.partner)
    if filters.area:
        queryset = queryset.filter(
            Q(shipment__postcode=filters.area) | Q(shipment__postcode__startswith=f"{filters.area} ")
        )
    cutoff = filters.older_than(now)
    if cutoff is not None:
        queryset = queryset.filter(created_at__lt=cutoff)
    return queryset.order_by("sla_due_at", "id")


def messages(filters: Filters, *, now: datetime | None = None) -> QuerySet[InboundMessage]:
    now = now or timezone.now()
    queryset = InboundMessage.objects.filter(
        state__in=[InboundMessage.State.UNMATCHED, InboundMessage.State.FAILED]
    )
    if filters.partner:
        queryset = queryset.filter(partner__slug=filters.partner)
    cutoff = filters.older_than(now)
    if cutoff is not None:
        queryset = queryset.filter(received_at__lt=cutoff)
    return queryset.order_by("received_at", "id")


def queryset_for(queue: Queue, filters: Filters, user: Any, *, now: datetime | None = None) -> QuerySet[Any]:
    if queue.kind == "shipment":
        return shipments(queue.slug, filters, now=now)
    if queue.kind == "case":
        return cases(queue.slug, filters, user, now=now)
    return messages(filters, now=now)


def rows(queue: Queue, filters: Filters, user: Any, *, limit: int = 50, offset: int = 0) -> list[Any]:
    """The queue's rows, most urgent first, with what the page shows of each (one query)."""
    queryset = queryset_for(queue, filters, user)
    if queue.kind == "shipment":
        queryset = queryset.select_related("current_custody__partner")
    elif queue.kind == "case":
        queryset = queryset.select_related("shipment", "owner")
    else:
        queryset = queryset.select_related("partner").defer("body", "headers")
    found = list(queryset[offset : offset + limit])
    now = timezone.now()
    for row in found:  # what the page shows, worked out here rather than in the template
        if isinstance(row, Shipment):
            row.flag_texts = flag_list(row.all_flags)  # type: ignore[attr-defined]
            row.late_risk_percent = round(row.late_risk * 100) if row.late_risk is not None else None  # type: ignore[attr-defined]
        elif isinstance(row, Case):
            row.past_sla = row.is_past_sla(now)  # type: ignore[attr-defined]
    return found


COUNT_CAP = 1000


def counts(queues: list[Queue], filters: Filters, user: Any) -> dict[str, int]:
    """How many each queue holds, up to COUNT_CAP + 1 (shown as "1000+"), in one statement.

    Each queue's capped count is a scalar subquery of one SELECT: ten round trips through the ORM's
    count() cost the home page about 15 ms at 1M shipments, two thirds of its server time.
    """
    now = timezone.now()
    parts: list[str] = []
    params: list[Any] = []
    for queue in queues:
        capped = queryset_for(queue, filters, user, now=now).order_by().values("pk")[: COUNT_CAP + 1]
        sql, part_params = capped.query.get_compiler(using=capped.db).as_sql()
        # The ORM's own SQL, its values bound as parameters: nothing from the request is pasted in.
        parts.append(f"(SELECT COUNT(*) FROM ({sql}) AS capped_{len(parts)})")  # noqa: S608
        params.extend(part_params)
    with connections[router.db_for_read(Shipment)].cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(parts)}", params)
        found = cursor.fetchone()
    return {queue.slug: int(count) for queue, count in zip(queues, found, strict=True)}
