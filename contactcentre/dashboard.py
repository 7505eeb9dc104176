"""The operations dashboard: partner scorecards, the next-job recommendation, contact-centre figures."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import date
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import dateformat, timezone

from contactcentre import figures as cx
from hub.errors import error_body
from partners.scorecards import BANDS, Totals, latency_label, recommend
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


def _rate(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _figure(value: float | None, suffix: str = "") -> str:
    return "—" if value is None else f"{value:.1f}{suffix}"


def _cx_row(label: str, f: cx.DayFigures, *, no_jobs: bool = False) -> dict[str, str]:
    """One row of a contact-centre table, formatted here: a year by day is 365 rows."""
    return {
        "label": label,
        "shipments": "—" if no_jobs else str(f.shipments),
        "contacts": str(f.contacts),
        "wismo": str(f.wismo),
        "wismo_per_100": _figure(f.wismo_per_100),
        "first_contact": "—" if f.first_contact_rate is None else f"{100 * f.first_contact_rate:.0f}%",
        "resolved": str(f.resolved),
        "close": f"{f.median_close_label} / {f.mean_close_hours:.1f} h"
        if f.mean_close_hours is not None
        else "—",
        "proactive_sent": str(f.proactive_sent),
        "after": str(f.contacts_after_proactive),
        "after_per_100": _figure(f.contacts_per_100_proactive, " per 100"),
    }


def _chart_data(
    totals: dict[str, Totals],
    trend: dict[str, dict[date, float | None]],
    cx_days: dict[date, cx.DayFigures],
    cx_partners: dict[str, cx.DayFigures],
) -> dict[str, Any]:
    """Each chart's type, labels and named series, for dashboard.js (every figure is also in a table)."""
    labels = sorted({d for by_period in trend.values() for d in by_period})
    days = [d.isoformat() for d in cx_days]
    partners = [p for p in cx_partners if p != cx.NO_HOLDER]
    return {
        "trend": {
            "type": "line",
            "labels": [d.isoformat() for d in labels],
            "series": {
                partner: [_rate(by_period.get(d)) for d in labels]
                for partner, by_period in sorted(trend.items())
            },
        },
        "silence": {
            "type": "bar",
            "labels": list(totals),
            "series": {
                "Silent minutes per job": [_round(t.silent_minutes_per_job) or 0 for t in totals.values()]
            },
        },
        "cases": {
            "type": "bar",
            "labels": list(totals),
            "series": {"Cases per 100 jobs": [_round(t.cases_per_100_jobs) or 0 for t in totals.values()]},
        },
        "wismo": {
            "type": "line",
            "labels": days,
            "series": {
                "WISMO contacts per 100 shipments": [_round(f.wismo_per_100) for f in cx_days.values()]
            },
        },
        "proactive": {
            "type": "line",
            "labels": days,
            "series": {
                "Contacts per 100 shipments": [_round(f.contacts_per_100) for f in cx_days.values()],
                "Contacts within 24 h per 100 proactive messages": [
                    _round(f.contacts_per_100_proactive) for f in cx_days.values()
                ],
            },
        },
        "partner-wismo": {
            "type": "bar",
            "labels": partners,
            "series": {
                "WISMO contacts per 100 jobs": [_round(cx_partners[p].wismo_per_100) for p in partners]
            },
        },
        "partner-proactive": {
            "type": "bar",
            "labels": partners,
            "series": {
                "Contacts per 100 jobs": [_round(cx_partners[p].contacts_per_100) for p in partners],
                "Contacts within 24 h per 100 proactive messages": [
                    _round(cx_partners[p].contacts_per_100_proactive) for p in partners
                ],
            },
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
    totals = dict(sorted(scorecards.partner_totals(query).items()))
    trend = scorecards.on_time_trend(query)
    # The totals already are this area's and band's: rank them, no second query.
    recommendation = (
        recommend({p: t for p, t in totals.items() if t.jobs}) if (query.area or query.band) else []
    )
    cx_days = cx.by_day(query.first_day, query.last_day)
    cx_partners = cx.by_partner(query.first_day, query.last_day)
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
            "silent": _round(t.silent_minutes_per_job),
        }
        for partner, t in totals.items()
    ]
    context = {
        "form": form,
        "query": query,
        "rows": rows,
        "recommendation": recommendation,
        "cx_days": [_cx_row(dateformat.format(d, "D j M"), f) for d, f in cx_days.items()],
        "cx_partners": [
            _cx_row("No partner held it", f, no_jobs=True) if p == cx.NO_HOLDER else _cx_row(p, f)
            for p, f in cx_partners.items()
        ],
        "charts": _chart_data(totals, trend, cx_days, cx_partners),
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


class ScorecardExportForm(DashboardForm):
    by = forms.ChoiceField(
        label="Figures by",
        choices=[("period", "Partner and period (the trend)"), ("partner", "Partner (the table)")],
        required=False,
    )


class ContactCentreExportForm(DashboardForm):
    by = forms.ChoiceField(
        label="Figures by", choices=[("day", "Day"), ("partner", "Partner")], required=False
    )


def _invalid(form: forms.Form) -> JsonResponse:
    """400 with the shape of every other bad request: a code, a message naming the field, the fields."""
    fields = {name: [str(message) for message in messages] for name, messages in form.errors.items()}
    name, messages = next(iter(fields.items()))
    return JsonResponse(error_body("invalid", f"{name}: {messages[0]}", fields), status=400)


@login_required
@permission_required(OPERATE, raise_exception=True)
def scorecards_csv(request: HttpRequest) -> HttpResponseBase:
    form = ScorecardExportForm(request.GET)
    if not form.is_valid():
        return _invalid(form)
    by = form.cleaned_data.get("by") or "period"
    rows = scorecards.csv_rows(form.query(), by=by)
    return _csv_response(rows, f"partner-scorecards-by-{by}-{timezone.localdate().isoformat()}.csv")


@login_required
@permission_required(OPERATE, raise_exception=True)
def contact_centre_csv(request: HttpRequest) -> HttpResponseBase:
    form = ContactCentreExportForm(request.GET)
    if not form.is_valid():
        return _invalid(form)
    query, by = form.query(), form.cleaned_data.get("by") or "day"
    rows = cx.csv_rows(query.first_day, query.last_day, by=by)
    return _csv_response(rows, f"contact-centre-by-{by}-{timezone.localdate().isoformat()}.csv")
