"""The operations dashboard: partner scorecards, the next-job recommendation, contact-centre figures."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone

from contactcentre import figures as cx
from partners.scorecards import BANDS, latency_label
from partners.services import scorecards

OPERATE = "contactcentre.operate"


class DashboardForm(forms.Form):
    days = forms.TypedChoiceField(
        label="Period",
        coerce=int,
        choices=[(7, "Last 7 days"), (28, "Last 28 days"), (90, "Last 90 days"), (365, "Last 365 days")],
        initial=28,
        required=False,
    )
    grain = forms.ChoiceField(
        label="Trend by",
        choices=[("day", "Day"), ("week", "Week"), ("month", "Month")],
        initial="day",
        required=False,
    )
    area = forms.RegexField(
        label="Postcode district",
        regex=r"^[A-Za-z]{1,2}[0-9][0-9A-Za-z]?$",
        max_length=4,
        required=False,
        help_text="For example N1 or SW2; empty for every area.",
        error_messages={"invalid": "Enter a postcode district such as N1 or SW2."},
    )
    band = forms.ChoiceField(label="Time of day", choices=[("", "Any time"), *BANDS.items()], required=False)

    def query(self) -> scorecards.ScorecardQuery:
        data = self.cleaned_data
        return scorecards.ScorecardQuery(
            days=data.get("days") or 28,
            grain=data.get("grain") or "day",
            area=(data.get("area") or "").upper(),
            band=data.get("band") or "",
        )


def _period(query: scorecards.ScorecardQuery) -> tuple[datetime, datetime]:
    zone = ZoneInfo(settings.TIME_ZONE)
    return (
        datetime.combine(query.first_day, time.min, tzinfo=zone),
        datetime.combine(query.last_day + timedelta(days=1), time.min, tzinfo=zone),
    )


def _rate(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


def _chart_data(
    query: scorecards.ScorecardQuery, totals: dict[str, Any], days: dict[date, Any]
) -> dict[str, Any]:
    series = scorecards.partner_series(query)
    labels = sorted({d for by_period in series.values() for d in by_period})
    return {
        "trend": {
            "title": "On-time rate (%) by partner",
            "labels": [d.isoformat() for d in labels],
            "series": {
                partner: [_rate(by_period[d].on_time_rate) if d in by_period else None for d in labels]
                for partner, by_period in sorted(series.items())
            },
        },
        "silence": {
            "title": "Silent minutes per job",
            "labels": list(totals),
            "values": [round(t.silent_minutes_per_job or 0, 1) for t in totals.values()],
        },
        "cases": {
            "title": "Cases per 100 jobs",
            "labels": list(totals),
            "values": [round(t.cases_per_100_jobs or 0, 1) for t in totals.values()],
        },
        "wismo": {
            "title": "WISMO contacts per 100 shipments",
            "labels": [d.isoformat() for d in days],
            "values": [
                round(f.wismo_per_100, 1) if f.wismo_per_100 is not None else None for f in days.values()
            ],
        },
    }


@login_required
@permission_required(OPERATE, raise_exception=True)
def dashboard(request: HttpRequest) -> HttpResponse:
    form = DashboardForm(request.GET or None)
    if request.GET and not form.is_valid():
        return render(request, "contactcentre/dashboard.html", {"form": form}, status=400)
    if not request.GET:
        form = DashboardForm({"days": 28, "grain": "day"})
        form.is_valid()
    query = form.query()
    start, end = _period(query)
    totals = dict(sorted(scorecards.partner_totals(query).items()))
    days = cx.by_day(start, end)
    recommendation = (
        scorecards.recommend_partner(area=query.area, band=query.band, days=query.days)
        if (query.area or query.band)
        else []
    )
    rows = [
        {
            "partner": partner,
            "t": t,
            "on_time": _rate(t.on_time_rate),
            "first_attempt": _rate(t.first_attempt_rate),
            "pod": _rate(t.pod_coverage),
            "conflict": _rate(t.conflict_rate),
            "unmatched": _rate(t.unmatched_rate),
            "p50": latency_label(t.latency_p50),
            "p90": latency_label(t.latency_p90),
            "silent": None if t.silent_minutes_per_job is None else round(t.silent_minutes_per_job, 1),
        }
        for partner, t in totals.items()
    ]
    context = {
        "form": form,
        "query": query,
        "rows": rows,
        "recommendation": recommendation,
        "days": days,
        "by_partner": cx.cases_by_partner(start, end),
        "charts": _chart_data(query, totals, days),
        "band_label": BANDS.get(query.band, "any time"),
        "export_query": request.GET.urlencode(),
        "first_contact_minutes": cx.FIRST_CONTACT_MINUTES,
        "follow_hours": cx.FOLLOW_HOURS,
    }
    return render(request, "contactcentre/dashboard.html", context)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_response(rows: Iterable[list[Any]], filename: str) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse((writer.writerow(row) for row in rows), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _valid_query(request: HttpRequest) -> scorecards.ScorecardQuery | None:
    form = DashboardForm(request.GET)
    return form.query() if form.is_valid() else None


@login_required
@permission_required(OPERATE, raise_exception=True)
def scorecards_csv(request: HttpRequest) -> HttpResponseBase:
    query = _valid_query(request)
    if query is None:
        return HttpResponse("Invalid period, area or time of day.", status=400, content_type="text/plain")
    stamp = timezone.localdate().isoformat()
    return _csv_response(scorecards.csv_rows(query), f"partner-scorecards-{stamp}.csv")


@login_required
@permission_required(OPERATE, raise_exception=True)
def contact_centre_csv(request: HttpRequest) -> HttpResponseBase:
    query = _valid_query(request)
    if query is None:
        return HttpResponse("Invalid period.", status=400, content_type="text/plain")
    start, end = _period(query)
    return _csv_response(cx.csv_rows(start, end), f"contact-centre-{timezone.localdate().isoformat()}.csv")
