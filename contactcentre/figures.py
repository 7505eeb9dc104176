"""Contact-centre figures by day and by partner: WISMO contacts, first-contact resolution, time to close,
cases per partner, and proactive messages with the contacts that followed them.

Definitions (also on the dashboard):
- a *contact* is a case opened through a customer channel (not by a Baton rule);
- *WISMO* contacts are contacts with the reason "Where is my order" or "Running late";
- a case is *resolved at first contact* when it was resolved within FIRST_CONTACT_MINUTES of being
  opened and never escalated;
- a *proactive message* is a customer e-mail or SMS Baton sent about a shipment (`customer.*`
  purposes, except an agent's message); a contact *followed* it when it was opened on the same
  shipment within FOLLOW_HOURS.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from statistics import median
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q
from django.db.models.functions import TruncDate

from contactcentre.models import Case
from partners.models import Custody
from tracking.models import OutboundMessage, Shipment

FIRST_CONTACT_MINUTES = 30
FOLLOW_HOURS = 24
AGENT_MESSAGE = "customer.agent_message"
WISMO_REASONS = [Case.Reason.WHERE_IS_MY_ORDER, Case.Reason.LATE]


@dataclass
class DayFigures:
    shipments: int = 0
    contacts: int = 0
    wismo: int = 0
    resolved: int = 0
    first_contact: int = 0
    close_hours: list[float] = field(default_factory=list)
    proactive_sent: int = 0
    contacts_after_proactive: int = 0

    @property
    def wismo_per_100(self) -> float | None:
        return None if not self.shipments else 100 * self.wismo / self.shipments

    @property
    def first_contact_rate(self) -> float | None:
        return None if not self.resolved else self.first_contact / self.resolved

    @property
    def median_close_hours(self) -> float | None:
        return median(self.close_hours) if self.close_hours else None

    @property
    def contacts_per_100_proactive(self) -> float | None:
        return None if not self.proactive_sent else 100 * self.contacts_after_proactive / self.proactive_sent


def _contacts() -> Any:
    return Case.objects.exclude(channel=Case.Channel.PROACTIVE).filter(opened_by_rule="")


def by_day(start: datetime, end: datetime) -> dict[date, DayFigures]:
    """Figures per local day for cases opened (and shipments created) in [start, end)."""
    days: dict[date, DayFigures] = {}

    def day(d: date) -> DayFigures:
        return days.setdefault(d, DayFigures())

    for row in (
        Shipment.objects.filter(created_at__gte=start, created_at__lt=end)
        .annotate(d=TruncDate("created_at"))
        .values("d")
        .annotate(n=Count("id"))
    ):
        day(row["d"]).shipments = row["n"]
    for row in (
        _contacts()
        .filter(created_at__gte=start, created_at__lt=end)
        .annotate(d=TruncDate("created_at"))
        .values("d")
        .annotate(n=Count("id"), wismo=Count("id", filter=Q(reason__in=WISMO_REASONS)))
    ):
        day(row["d"]).contacts, day(row["d"]).wismo = row["n"], row["wismo"]
    resolved = (
        Case.objects.filter(status=Case.Status.RESOLVED, resolved_at__gte=start, resolved_at__lt=end)
        .annotate(d=TruncDate("resolved_at"))
        .values_list("d", "created_at", "resolved_at", "escalated")
    )
    for d, opened, closed, escalated in resolved.iterator():
        figures = day(d)
        figures.resolved += 1
        hours = (closed - opened).total_seconds() / 3600 if closed is not None else 0.0
        figures.close_hours.append(hours)
        if not escalated and hours * 60 <= FIRST_CONTACT_MINUTES:
            figures.first_contact += 1
    followed = _contacts().filter(
        shipment=OuterRef("shipment"),
        created_at__gte=OuterRef("sent_at"),
        created_at__lt=OuterRef("sent_at") + timedelta(hours=FOLLOW_HOURS),
    )
    for row in (
        OutboundMessage.objects.filter(
            purpose__startswith="customer.",
            state=OutboundMessage.State.SENT,
            sent_at__gte=start,
            sent_at__lt=end,
            shipment__isnull=False,
        )
        .exclude(purpose=AGENT_MESSAGE)  # an agent's reply to a contact is not proactive
        .annotate(d=TruncDate("sent_at"), followed=Exists(followed))
        .values("d")
        .annotate(n=Count("id"), after=Count("id", filter=Q(followed=True)))
    ):
        day(row["d"]).proactive_sent, day(row["d"]).contacts_after_proactive = row["n"], row["after"]
    return dict(sorted(days.items()))


def cases_by_partner(start: datetime, end: datetime) -> dict[str, dict[str, int]]:
    """Per partner slug: contacts and WISMO contacts opened while that partner held the shipment."""
    holder = Custody.objects.filter(
        shipment=OuterRef("shipment"), started_at__lte=OuterRef("created_at")
    ).filter(Q(ended_at__isnull=True) | Q(ended_at__gt=OuterRef("created_at")))
    rows = (
        _contacts()
        .filter(created_at__gte=start, created_at__lt=end, shipment__isnull=False)
        .annotate(partner=holder.order_by("-started_at").values("partner__slug")[:1])
        .values("partner")
        .annotate(n=Count("id"), wismo=Count("id", filter=Q(reason__in=WISMO_REASONS)))
    )
    return {
        row["partner"] or "(no holder)": {"contacts": row["n"], "wismo": row["wismo"]}
        for row in rows.order_by(F("partner").asc(nulls_last=True))
    }


def csv_rows(start: datetime, end: datetime) -> Iterable[list[Any]]:
    yield [
        "day",
        "shipments",
        "contacts",
        "wismo_contacts",
        "wismo_per_100_shipments",
        "resolved",
        "first_contact_resolution",
        "median_hours_to_close",
        "proactive_sent",
        "contacts_within_24h_of_proactive",
    ]
    for d, f in by_day(start, end).items():
        yield [
            d.isoformat(),
            f.shipments,
            f.contacts,
            f.wismo,
            _num(f.wismo_per_100),
            f.resolved,
            _num(f.first_contact_rate),
            _num(f.median_close_hours),
            f.proactive_sent,
            f.contacts_after_proactive,
        ]


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
