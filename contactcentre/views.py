"""The agent console: find a shipment by anything the caller knows, read its whole timeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from partners.models import InboundMessage, Partner
from partners.services import backlog, replay_messages
from tracking.filters import ShipmentFilter
from tracking.models import Shipment, TrackingEvent
from tracking.services import custody_chain, flags_at
from tracking.views import get_shipment

# The operations page reads lag over this window (the "last hour").
LAG_WINDOW = timedelta(hours=1)
OPERATE = "contactcentre.operate"


@staff_member_required
def console(request: HttpRequest) -> HttpResponse:
    queryset = Shipment.objects.select_related("current_custody__partner").order_by("-updated_at", "-id")
    shipments = ShipmentFilter(request.GET, queryset=queryset).qs[:50]
    return render(
        request,
        "contactcentre/console.html",
        {
            "shipments": shipments,
            "search": request.GET.get("search", ""),
            "flag": request.GET.get("flag", ""),
        },
    )


@staff_member_required
def shipment_page(request: HttpRequest, reference: str) -> HttpResponse:
    shipment = get_shipment(reference)
    entries = list(TrackingEvent.objects.filter(shipment=shipment).with_sources())
    chain = custody_chain(shipment, events=entries)
    shipment.flags = flags_at(shipment, chain)
    return render(
        request,
        "contactcentre/shipment.html",
        {"shipment": shipment, "entries": entries, "chain": chain},
    )


@dataclass(frozen=True)
class ProblemRow:
    partner: Partner
    failed: int
    unmatched: int
    failed_url: str
    unmatched_url: str


def duration_text(seconds: float | None) -> str:
    """A lag or an age as a person reads it at a glance: 1 h 5 min, 3 min 20 s, 0.4 s."""
    if seconds is None:
        return "no data"
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def messages_url(state: str, partner: Partner | None = None) -> str:
    """The admin's list of stored partner messages in this state (and from this partner)."""
    query: dict[str, object] = {"state__exact": state}
    if partner is not None:
        query["partner__id__exact"] = partner.pk
    return f"{reverse('admin:partners_inboundmessage_changelist')}?{urlencode(query)}"


class ReplayForm(forms.Form):
    partner = forms.ModelChoiceField(queryset=Partner.objects.all(), to_field_name="slug")
    state = forms.ChoiceField(
        choices=[(s.value, s.label) for s in (InboundMessage.State.FAILED, InboundMessage.State.UNMATCHED)]
    )


@staff_member_required
@permission_required(OPERATE, raise_exception=True)
def operations(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    since = now - LAG_WINDOW
    waiting = backlog.inbound_backlog()
    lag = backlog.lag_percentiles(since=since)
    problems = [
        ProblemRow(
            row.partner,
            row.failed,
            row.unmatched,
            messages_url(InboundMessage.State.FAILED, row.partner),
            messages_url(InboundMessage.State.UNMATCHED, row.partner),
        )
        for row in backlog.unresolved_by_partner()
    ]
    return render(
        request,
        "contactcentre/operations.html",
        {
            "waiting": waiting.waiting,
            "oldest_at": waiting.oldest_received_at,
            "oldest_age": duration_text(waiting.oldest_age_seconds(now)) if waiting.waiting else "",
            "finished": backlog.finished_count(since=since),
            "lag_p50": duration_text(lag[0.5]),
            "lag_p99": duration_text(lag[0.99]),
            "problems": problems,
            "waiting_url": messages_url(InboundMessage.State.RECEIVED),
        },
    )


@staff_member_required
@permission_required(OPERATE, raise_exception=True)
@require_POST
def replay(request: HttpRequest) -> HttpResponse:
    form = ReplayForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a partner and failed or unmatched messages to replay.")
        return redirect("contactcentre:operations")
    partner = form.cleaned_data["partner"]
    state = form.cleaned_data["state"]
    count = replay_messages(partner=partner, states=[state])
    label = InboundMessage.State(state).name.lower()
    messages.success(request, f"{count} {label} message(s) from {partner.name} queued again.")
    return redirect("contactcentre:operations")
