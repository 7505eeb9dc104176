"""The agent console: find a shipment by anything the caller knows, read its whole timeline."""

from __future__ import annotations

from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from tracking.filters import ShipmentFilter
from tracking.models import Shipment, TrackingEvent
from tracking.services import custody_chain, flags_at
from tracking.views import get_shipment


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
