"""Contact-centre figures by day and by partner: WISMO contacts, first-contact resolution, time to close,
cases per partner, and proactive messages with the contacts that followed them.

Definitions (also on the dashboard):
- a *contact* is a case opened through a customer channel (not by a Baton rule);
- *WISMO* contacts are contacts with the reason "Where is my order" or "Running late";
- a contact is *resolved at first contact* when it was resolved within FIRST_CONTACT_MINUTES of being
  opened and never escalated;
- a *proactive message* is one of Baton's own customer notifications (a message template's purpose,
  not an agent's message or a tracking link an agent resent), sent; a contact *followed* it when it
  was opened on the same shipment within FOLLOW_HOURS;
- a partner's share is what happened while it held the shipment (the contact's opening, the
  message's sending); its shipments are the jobs it took.

`materialise_day` counts one local day into `ContactDayFigures` rows (everyone, and one per partner);
a beat job runs it for the last days and pages read only those rows, so a page costs the same
whatever the size of the shipments, cases and outbox tables.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery, Sum
from django.utils import timezone

from contactcentre.models import CLOSE_BUCKETS, Case, ContactDayFigures, MessageTemplate
from partners.models import Custody, Partner
from partners.scorecards import latency_percentile
from partners.services.scorecards import day_bounds
from tracking.models import OutboundMessage, Shipment

FIRST_CONTACT_MINUTES = 30
FOLLOW_HOURS = 24
WISMO_REASONS = [Case.Reason.WHERE_IS_MY_ORDER, Case.Reason.LATE]
# Baton's own notifications; an agent's message (template or free text) and a resent link are replies.
PROACTIVE_PURPOSES = [
    f"customer.{purpose}"
    for purpose in MessageTemplate.Purpose.values
    if purpose != MessageTemplate.Purpose.AGENT_MESSAGE
]
NO_HOLDER = "(no holder)"


@dataclass
class DayFigures:
    """Summed counts for a day, a partner or a whole period; the rates are computed from them."""

    shipments: int = 0
    contacts: int = 0
    wismo: int = 0
    resolved: int = 0
    first_contact: int = 0
    close_seconds: int = 0
    proactive_sent: int = 0
    contacts_after_proactive: int = 0
    close: list[int] = field(default_factory=lambda: [0] * (len(CLOSE_BUCKETS) + 1))

    @classmethod
    def from_sums(cls, sums: Mapping[str, Any]) -> DayFigures:
        counts = {name: int(sums.get(name) or 0) for name in COUNT_NAMES}
        return cls(**counts, close=[int(sums.get(f"close_{i}") or 0) for i in range(len(CLOSE_BUCKETS) + 1)])

    def add(self, other: DayFigures) -> None:
        for name in COUNT_NAMES:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.close = [a + b for a, b in zip(self.close, other.close, strict=True)]

    def minus(self, other: DayFigures) -> DayFigures:
        """What is left of these figures once `other` (a part of them) is taken away."""
        left = DayFigures(**{name: getattr(self, name) - getattr(other, name) for name in COUNT_NAMES})
        left.close = [a - b for a, b in zip(self.close, other.close, strict=True)]
        return left

    @property
    def wismo_per_100(self) -> float | None:
        return None if not self.shipments else 100 * self.wismo / self.shipments

    @property
    def contacts_per_100(self) -> float | None:
        return None if not self.shipments else 100 * self.contacts / self.shipments

    @property
    def first_contact_rate(self) -> float | None:
        return None if not self.resolved else self.first_contact / self.resolved

    @property
    def mean_close_hours(self) -> float | None:
        return None if not self.resolved else self.close_seconds / 3600 / self.resolved

    @property
    def median_close_hours(self) -> float | None:
        """The upper bound (hours) of the time-to-close bucket holding the median; beyond a week, inf."""
        bound = latency_percentile(self.close, 0.5, bounds=CLOSE_BUCKETS)
        return None if bound is None else math.inf if bound < 0 else bound / 3600

    @property
    def median_close_label(self) -> str:
        bound = latency_percentile(self.close, 0.5, bounds=CLOSE_BUCKETS)
        if bound is None:
            return "no data"
        if bound < 0:
            return "over a week"
        return f"≤ {bound // 60} min" if bound < 3600 else f"≤ {bound // 3600} h"

    @property
    def contacts_per_100_proactive(self) -> float | None:
        return None if not self.proactive_sent else 100 * self.contacts_after_proactive / self.proactive_sent


COUNT_NAMES = [f.name for f in fields(DayFigures) if f.name != "close"]
SUMMED_FIELDS = [*COUNT_NAMES, *[f"close_{i}" for i in range(len(CLOSE_BUCKETS) + 1)]]


def close_bucket(seconds: float) -> int:
    return next((i for i, bound in enumerate(CLOSE_BUCKETS) if seconds <= bound), len(CLOSE_BUCKETS))


# --- materialising --------------------------------------------------------------------------------


def _contacts() -> QuerySet[Case]:
    return Case.objects.exclude(channel=Case.Channel.PROACTIVE).filter(opened_by_rule="")


def _holder_at(moment: str) -> Subquery:
    """The partner holding the row's shipment at the row's `moment` (the latest job started by then)."""
    return Subquery(
        Custody.objects.filter(shipment=OuterRef("shipment"), started_at__lte=OuterRef(moment))
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=OuterRef(moment)))
        .order_by("-started_at", "-id")
        .values("partner_id")[:1]
    )


def count_day(day: date) -> dict[int | None, DayFigures]:
    """One local day's figures: key None for everyone, else per partner id (four grouped queries)."""
    start, end = day_bounds(day)
    rows: dict[int | None, DayFigures] = defaultdict(DayFigures)
    everyone = rows[None]
    everyone.shipments = Shipment.objects.filter(created_at__gte=start, created_at__lt=end).count()
    for partner_id, jobs in (
        Custody.objects.filter(started_at__gte=start, started_at__lt=end)
        .values("partner")
        .annotate(n=Count("id"))
        .values_list("partner", "n")
    ):
        rows[partner_id].shipments = jobs

    def share(holder: int | None) -> list[DayFigures]:
        return [everyone] if holder is None else [everyone, rows[holder]]

    for holder, contacts, wismo in (
        _contacts()
        .filter(created_at__gte=start, created_at__lt=end)
        .annotate(holder=_holder_at("created_at"))
        .values("holder")
        .annotate(n=Count("id"), wismo=Count("id", filter=Q(reason__in=WISMO_REASONS)))
        .values_list("holder", "n", "wismo")
    ):
        for figures in share(holder):
            figures.contacts += contacts
            figures.wismo += wismo
    resolved = (
        _contacts()
        .filter(status=Case.Status.RESOLVED, resolved_at__gte=start, resolved_at__lt=end)
        .annotate(holder=_holder_at("created_at"))
        .values_list("holder", "created_at", "resolved_at", "escalated")
    )
    for holder, opened, closed, escalated in resolved.iterator():
        seconds = max(((closed or opened) - opened).total_seconds(), 0.0)  # closed is never None here
        for figures in share(holder):
            figures.resolved += 1
            figures.close_seconds += round(seconds)
            figures.close[close_bucket(seconds)] += 1
            if not escalated and seconds <= FIRST_CONTACT_MINUTES * 60:
                figures.first_contact += 1
    followed = _contacts().filter(
        shipment=OuterRef("shipment"),
        created_at__gte=OuterRef("sent_at"),
        created_at__lt=OuterRef("sent_at") + timedelta(hours=FOLLOW_HOURS),
    )
    for holder, sent, after in (
        OutboundMessage.objects.filter(
            purpose__in=PROACTIVE_PURPOSES,
            state=OutboundMessage.State.SENT,
            sent_at__gte=start,
            sent_at__lt=end,
            shipment__isnull=False,
        )
        .annotate(holder=_holder_at("sent_at"), followed=Exists(followed))
        .values("holder")
        .annotate(n=Count("id"), after=Count("id", filter=Q(followed=True)))
        .values_list("holder", "n", "after")
    ):
        for figures in share(holder):
            figures.proactive_sent += sent
            figures.contacts_after_proactive += after
    return dict(rows)


def materialise_day(day: date) -> int:
    """Recompute one local day's contact-centre figures; return the rows written."""
    rows = count_day(day)
    with transaction.atomic():
        ContactDayFigures.objects.filter(day=day).delete()
        ContactDayFigures.objects.bulk_create(
            [
                ContactDayFigures(
                    day=day,
                    partner_id=partner_id,
                    **{name: getattr(f, name) for name in COUNT_NAMES},
                    **{f"close_{i}": count for i, count in enumerate(f.close)},
                )
                for partner_id, f in rows.items()
            ]
        )
    return len(rows)


def materialise_recent(*, days: int = 3, now: datetime | None = None) -> int:
    """Today and the days before it: a contact can follow a message sent yesterday, cases close later."""
    today = timezone.localtime(now or timezone.now()).date()
    return sum(materialise_day(today - timedelta(days=back)) for back in range(days))


# --- reading --------------------------------------------------------------------------------------


def _sums() -> dict[str, Any]:
    return {name: Sum(name) for name in SUMMED_FIELDS}


def by_day(first_day: date, last_day: date) -> dict[date, DayFigures]:
    """Everyone's figures per local day from `first_day` to `last_day` (one query)."""
    rows = ContactDayFigures.objects.filter(partner__isnull=True, day__gte=first_day, day__lte=last_day)
    return {
        row["day"]: DayFigures.from_sums(row) for row in rows.order_by("day").values("day", *SUMMED_FIELDS)
    }


def by_partner(first_day: date, last_day: date) -> dict[str, DayFigures]:
    """Per partner slug, its share over the days (one query), then what happened with no holder."""
    names = dict(Partner.objects.values_list("pk", "slug"))
    grouped = (
        ContactDayFigures.objects.filter(day__gte=first_day, day__lte=last_day)
        .values("partner")
        .annotate(**_sums())
        .order_by("partner")
    )
    everyone, partners = DayFigures(), DayFigures()
    result: dict[str, DayFigures] = {}
    for row in grouped:
        figures = DayFigures.from_sums(row)
        if row["partner"] is None:
            everyone = figures
        else:
            result[names[row["partner"]]] = figures
            partners.add(figures)
    result = dict(sorted(result.items()))
    rest = everyone.minus(partners)
    rest.shipments = 0  # shipments nobody took are not a denominator for anything
    if any(getattr(rest, name) for name in COUNT_NAMES):
        result[NO_HOLDER] = rest
    return result


CSV_HEADER = [
    "shipments",
    "contacts",
    "wismo_contacts",
    "wismo_per_100_shipments",
    "contacts_per_100_shipments",
    "resolved",
    "first_contact_resolution",
    "median_hours_to_close_at_most",
    "mean_hours_to_close",
    "proactive_sent",
    "contacts_within_24h_of_proactive",
    "contacts_per_100_proactive",
    # The time-to-close histogram: contacts closed in (low, high] minutes.
    *[
        f"closed_{low // 60}_{high // 60}_min"
        for low, high in zip([0, *CLOSE_BUCKETS], CLOSE_BUCKETS, strict=False)
    ],
    f"closed_over_{CLOSE_BUCKETS[-1] // 60}_min",
]


def csv_rows(first_day: date, last_day: date, *, by: str = "day") -> Iterable[list[Any]]:
    """Every figure per day (or per partner, where `shipments` are the jobs it took), header first."""
    if by == "partner":
        yield ["partner", *CSV_HEADER]
        keyed: Iterable[tuple[str, DayFigures]] = by_partner(first_day, last_day).items()
    else:
        yield ["day", *CSV_HEADER]
        keyed = ((d.isoformat(), f) for d, f in by_day(first_day, last_day).items())
    for key, f in keyed:
        yield [
            key,
            f.shipments,
            f.contacts,
            f.wismo,
            _num(f.wismo_per_100),
            _num(f.contacts_per_100),
            f.resolved,
            _num(f.first_contact_rate),
            _num(f.median_close_hours),
            _num(f.mean_close_hours),
            f.proactive_sent,
            f.contacts_after_proactive,
            _num(f.contacts_per_100_proactive),
            *f.close,
        ]


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
