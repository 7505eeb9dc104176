"""The customer's forms on the tracking page (posted to `/t/<token>/...`) and the unsubscribe link.

Each is CSRF-protected, rate-limited per tracking link and per IP, validated by a length-limited
form, and calls one service; errors go back to the page with the form, successes redirect to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from contactcentre import notifications, selfservice
from tracking import services as tracking_services
from tracking.forms import CancelForm, InstructionsForm, ProblemForm, RescheduleForm, SubscribeForm
from tracking.models import Shipment
from tracking.views import customer_rate_ok, render_tracking_page, too_many


def _handle(
    request: HttpRequest,
    token: str,
    *,
    name: str,
    make_form: Callable[[Shipment], Form],
    act: Callable[[Shipment, dict[str, Any]], str],
) -> HttpResponse:
    shipment = tracking_services.find_by_tracking_token(token)
    if shipment is None:
        return render(request, "tracking/not_found.html", status=404)
    if not customer_rate_ok(request, token, name):
        return too_many(request)
    form = make_form(shipment)
    if not form.is_valid():
        return render_tracking_page(request, shipment, token, bound={name: form}, status=400)
    try:
        messages.success(request, act(shipment, form.cleaned_data))
    except selfservice.Refused as refused:
        messages.error(request, refused.message)
    return redirect(f"/t/{token}")


@require_POST
def instructions(request: HttpRequest, token: str) -> HttpResponse:
    def act(shipment: Shipment, data: dict[str, Any]) -> str:
        selfservice.leave_instructions(shipment, **data)
        return _("Thank you. Your instructions are on their way to the courier.")

    return _handle(
        request, token, name="instructions", make_form=lambda s: InstructionsForm(request.POST), act=act
    )


@require_POST
def reschedule(request: HttpRequest, token: str) -> HttpResponse:
    def act(shipment: Shipment, data: dict[str, Any]) -> str:
        selfservice.request_reschedule(shipment, window=data["window"])
        return _("Thank you. We have asked for delivery on the day you chose.")

    return _handle(
        request,
        token,
        name="reschedule",
        make_form=lambda s: RescheduleForm(request.POST, shipment=s),
        act=act,
    )


@require_POST
def cancel(request: HttpRequest, token: str) -> HttpResponse:
    def act(shipment: Shipment, data: dict[str, Any]) -> str:
        selfservice.request_cancellation(shipment, reason=data["reason"])
        return _("We have asked to cancel your delivery. This page will show when it is cancelled.")

    return _handle(request, token, name="cancel", make_form=lambda s: CancelForm(request.POST), act=act)


@require_POST
def subscribe(request: HttpRequest, token: str) -> HttpResponse:
    def act(shipment: Shipment, data: dict[str, Any]) -> str:
        selfservice.subscribe(
            shipment,
            email=data["email"],
            phone=data["phone"],
            time_zone=data["time_zone"],
            language=get_language() or "",
        )
        return _("Done. We will send you an update when something changes.")

    return _handle(request, token, name="subscribe", make_form=lambda s: SubscribeForm(request.POST), act=act)


@require_POST
def problem(request: HttpRequest, token: str) -> HttpResponse:
    def act(shipment: Shipment, data: dict[str, Any]) -> str:
        case = selfservice.report_problem(
            shipment, reason=data["reason"], description=data["description"], contact=data["contact"]
        )
        return _("Thank you. Our team has your report (number %(case)s) and will look into it.") % {
            "case": case.pk
        }

    return _handle(request, token, name="problem", make_form=lambda s: ProblemForm(request.POST), act=act)


@csrf_exempt  # the signed link is the authority; mail clients' one-click POST carries no CSRF token
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, signed: str) -> HttpResponse:
    """GET asks (link scanners must not unsubscribe anyone); POST (the button, or RFC 8058) stops updates."""
    subscription = notifications.subscription_for_unsubscribe(signed)
    if subscription is None:
        return render(request, "contactcentre/unsubscribe.html", {"invalid": True}, status=404)
    done = False
    if request.method == "POST":
        notifications.unsubscribe(subscription)
        done = True
    return render(
        request,
        "contactcentre/unsubscribe.html",
        {
            "done": done or subscription.unsubscribed_at is not None,
            "reference": subscription.shipment.reference,
            "channel": subscription.get_channel_display(),
        },
    )
