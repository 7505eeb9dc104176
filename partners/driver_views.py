"""The driver link's mobile page: the jobs of one link, each with big buttons for what just happened."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from partners.models import DriverLink
from partners.services import driver_links
from partners.services.driver_links import DRIVER_ACTIONS, FAILURE_REASONS, DriverReportError, LinkRefused
from tracking.statuses import Reason

REFUSED_STATUS = {"unknown": 404, "revoked": 410, "expired": 410}


class DriverReportForm(forms.Form):
    action = forms.ChoiceField(choices=[(k, a.label) for k, a in DRIVER_ACTIONS.items()])
    tap_id = forms.UUIDField(help_text="Made by the page: a double tap or a retry is the same report.")
    reason = forms.ChoiceField(
        choices=[("", "")] + [(r.value, r.label) for r in FAILURE_REASONS], required=False
    )
    note = forms.CharField(max_length=500, required=False)
    latitude = forms.FloatField(min_value=-90, max_value=90, required=False)
    longitude = forms.FloatField(min_value=-180, max_value=180, required=False)
    recipient = forms.CharField(max_length=100, required=False)
    photo = forms.FileField(required=False)
    signature = forms.FileField(required=False)


class HandOnForm(forms.Form):
    to_partner = forms.SlugField(max_length=64)


def refused(request: HttpRequest, reason: str) -> HttpResponse:
    return render(
        request, "partners/driver_refused.html", {"reason": reason}, status=REFUSED_STATUS.get(reason, 404)
    )


def page_context(link: DriverLink, *, errors: dict[int, str] | None = None) -> dict[str, Any]:
    jobs = driver_links.link_jobs(link)
    return {
        "link": link,
        "jobs": [
            {
                "custody": job,
                "shipment": job.shipment,
                "finished": driver_links.job_is_finished(job),
                "tap_id": uuid.uuid4(),
                "error": (errors or {}).get(job.pk, ""),
            }
            for job in jobs
        ],
        "actions": DRIVER_ACTIONS,
        "reasons": [(r.value, Reason(r).label) for r in FAILURE_REASONS],
        "handoff_partners": list(link.partner.driver_handoff_partners.filter(is_active=True)),
    }


@never_cache
@require_http_methods(["GET", "HEAD"])
def driver_page(request: HttpRequest, token: str) -> HttpResponse:
    try:
        link = driver_links.open_driver_link(token)
    except LinkRefused as exc:
        return refused(request, exc.reason)
    return render(request, "partners/driver.html", page_context(link))


@never_cache
@require_POST
def driver_report(request: HttpRequest, token: str, custody_id: int) -> HttpResponse:
    try:
        link = driver_links.open_driver_link(token)
    except LinkRefused as exc:
        return refused(request, exc.reason)
    if not driver_links.check_rate(link):
        response = render(request, "partners/driver_refused.html", {"reason": "too_fast"}, status=429)
        response["Retry-After"] = "60"
        return response
    form = DriverReportForm(request.POST, request.FILES)
    if not form.is_valid():
        field, problems = next(iter(form.errors.items()))
        return invalid(request, link, custody_id, f"{field}: {problems[0]}")
    data = form.cleaned_data
    try:
        driver_links.record_driver_report(
            link,
            custody_id,
            action=data["action"],
            tap_id=str(data["tap_id"]),
            reason=data["reason"],
            note=data["note"],
            latitude=data["latitude"],
            longitude=data["longitude"],
            recipient=data["recipient"],
            photo=data["photo"],
            signature=data["signature"],
        )
    except LinkRefused as exc:
        return refused(request, exc.reason)
    except DriverReportError as exc:
        return invalid(request, link, custody_id, exc.message)
    messages.success(request, DRIVER_ACTIONS[data["action"]].done)
    return redirect(f"/d/{token}#job-{custody_id}")


@never_cache
@require_POST
def driver_hand_on(request: HttpRequest, token: str, custody_id: int) -> HttpResponse:
    try:
        link = driver_links.open_driver_link(token)
    except LinkRefused as exc:
        return refused(request, exc.reason)
    form = HandOnForm(request.POST)
    if not form.is_valid():
        return invalid(request, link, custody_id, "Choose one of the partners listed.")
    try:
        custody = driver_links.hand_on(link, custody_id, to_partner_slug=form.cleaned_data["to_partner"])
    except DriverReportError as exc:
        return invalid(request, link, custody_id, exc.message)
    messages.success(request, f"Handed on to {custody.partner.name}")
    return redirect(f"/d/{token}")


def invalid(request: HttpRequest, link: DriverLink, custody_id: int, message: str) -> HttpResponse:
    return render(
        request, "partners/driver.html", page_context(link, errors={custody_id: message}), status=400
    )
